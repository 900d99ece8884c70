"""Graph passes, run in this explicit order (see :mod:`fpga_gen.passes.base` for how to write one)."""
from .base import Pass, PassError, run_passes
from .distributed_arithmetic import ApplyDistributedArithmetic
from .fuse_batchnorm import FuseBatchNorm
from .infer_precision import InferPrecision
from .layer_config import ApplyLayerConfig
from .limits import CheckHlsLimits
from .remove_identity import RemoveIdentity
from .reuse import ApplyReuse
from .safe_casts import SafeCasts

DEFAULT_PASSES = (ApplyLayerConfig(), RemoveIdentity(), FuseBatchNorm(), ApplyReuse(), CheckHlsLimits(), InferPrecision(),
                  ApplyDistributedArithmetic(), SafeCasts())

__all__ = ["Pass", "PassError", "run_passes", "DEFAULT_PASSES", "ApplyLayerConfig", "RemoveIdentity",
           "ApplyReuse", "ApplyDistributedArithmetic", "FuseBatchNorm", "CheckHlsLimits", "InferPrecision"]
