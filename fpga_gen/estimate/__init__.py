"""Resource and latency estimators: read-only walkers over the layer graph.

``estimate(graph, config, part=..., board=...) -> Estimate`` costs every node with the model registered for its
op (:mod:`fpga_gen.estimate.layers`), sums the dataflow and reports per-layer and total DSP, LUT, FF, BRAM_18K,
URAM, latency and II.  All constants live in :mod:`fpga_gen.estimate.constants` with their sources; they are
calibrated on real csynth reports by ``benchmarks/calibrate_estimator.py`` (see docs/estimator.md).
"""

from .constants import DEFAULT, Constants, with_overrides
from .layers import ESTIMATORS, Context, Cost, register
from .model import RESOURCES, Estimate, EstimateError, estimate
from .parts import device_resources, part_family
from .weights import WeightStats, weight_stats

__all__ = ["estimate", "Estimate", "EstimateError", "RESOURCES", "Constants", "DEFAULT", "with_overrides",
           "register", "ESTIMATORS", "Context", "Cost", "part_family", "device_resources", "weight_stats",
           "WeightStats"]
