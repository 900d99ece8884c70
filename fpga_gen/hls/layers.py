"""One handler per op: a graph node -> the facts its C++ templates need.

A handler checks the node (sizes, weights, attributes the nnet_utils kernel supports)
and returns a :class:`LayerCode`; the templates under ``templates/hls/layers/<op>.j2``
turn that into a config struct (``parameters.h``) and a call (the top function).  Adding
an op means one handler here and one template there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.reuse import node_reuse, valid_reuse_factors
from ..ir.types import FixedType
from .names import Namer

__all__ = ["HlsWriteError", "LayerCode", "TypeDef", "WeightArray", "HANDLERS",
           "PRODUCT_HEADER", "PRODUCT_CLASSES", "product_params"]

#: the product class a layer's config struct names (``using product = ...``) for each mult_impl; the bound ones
#: live in firmware/fpga_gen_product.h (templates/hls/firmware/fpga_gen_product.h.j2), written when one is used
PRODUCT_HEADER = "fpga_gen_product.h"
PRODUCT_CLASSES = {"auto": "nnet::product::mult", "dsp": "fpga_gen::product::mult_dsp",
                   "lut": "fpga_gen::product::mult_lut"}


class HlsWriteError(ValueError):
    pass


@dataclass(frozen=True)
class TypeDef:
    name: str          # the C++ typedef name
    cpp: str           # what it stands for, e.g. ap_fixed<16,6>


@dataclass(frozen=True)
class WeightArray:
    name: str          # C++ array name, also the header's file stem
    type: str          # typedef name of its element type
    shape: tuple       # shape of the array as stored (after any transpose)
    values: tuple      # exact decimal literals, C order
    n_zeros: int
    values_name: str   # C simulation: the double array holding the literals
    loaded_name: str   # C simulation: the flag set when the array is filled


def weight_array(namer: Namer, name: str, type_name: str, node: Node, values: np.ndarray, t: FixedType,
                 what: str) -> WeightArray:
    name = namer.unique(name)
    return WeightArray(name, type_name, tuple(values.shape), exact_literals(node, values, t, what),
                       int(np.sum(values == 0)), namer.unique(f"{name}_values"), namer.unique(f"{name}_loaded"))


@dataclass
class LayerCode:
    node: str                    # the node's name in the graph
    op: str
    stem: str                    # identifier derived from the node name
    config: str                  # name of the config struct
    in_array: str
    in_type: str
    out_array: str
    out_type: str
    n_in: int
    n_out: int
    typedefs: list = field(default_factory=list)      # TypeDef, result type first
    weights: list = field(default_factory=list)       # WeightArray
    params: dict = field(default_factory=dict)        # op-specific template facts
    includes: tuple = ()                              # nnet_utils headers the layer needs
    is_output: bool = False                           # writes straight into the output port
    summary: str = ""                                 # one line for the project README
    in_arrays: list = field(default_factory=list)     # every input, in the node's input order (in_array is
    in_types: list = field(default_factory=list)      # the first one's): the arrays, their element typedefs
    in_sizes: list = field(default_factory=list)      # and sizes

    @property
    def template(self) -> str:
        return f"hls/layers/{self.params.get('template', self.op)}.j2"


HANDLERS: dict = {}


def handler(op: str):
    def deco(fn):
        HANDLERS[op] = fn
        return fn
    return deco


def _fail(node: Node, msg: str):
    raise HlsWriteError(f"layer {node.name!r} ({node.op}): {msg}")


def _type(node: Node, slot: str) -> FixedType:
    try:
        return node.types[slot]
    except KeyError:
        _fail(node, f"has no {slot!r} type; run precision inference before writing the HLS project")


def product_params(node: Node) -> dict:
    """``mult_impl`` and the ``product`` class of a dense/conv layer's config struct."""
    impl = str(node.attrs.get("mult_impl", "auto"))
    if impl not in PRODUCT_CLASSES:
        _fail(node, f"mult_impl must be one of {', '.join(PRODUCT_CLASSES)}, got {impl!r}")
    return {"mult_impl": impl, "product": PRODUCT_CLASSES[impl]}


def exact_literals(node: Node, values: np.ndarray, t: FixedType, what: str) -> tuple:
    """Decimal literals (``repr`` of the float64) of values exactly representable in ``t``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    raw = v * 2.0 ** t.frac
    if not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.floor(raw)) \
            or (v.size and (raw.min() < t.raw_min or raw.max() > t.raw_max)):
        _fail(node, f"{what} values are not exactly representable in {t.cpp()}; quantize them first")
    return tuple(repr(float(x)) for x in v)


# ---------------------------------------------------------------------------- handlers
# Each handler: (node, graph, namer, code) -> LayerCode, where ``code`` arrives with the
# names the writer already chose for the node (stem, arrays, result typedef) and leaves
# with the op's typedefs, weights, headers and template parameters.

@handler("dense")
def dense(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    n_in, n_out = code.n_in, node.size
    if tuple(node.shape) != (n_out,) or len(node.shape) != 1:
        _fail(node, f"io_parallel dense needs a 1-D output, got shape {node.shape}")
    kernel = np.asarray(node.weights.get("kernel"))
    bias = np.asarray(node.weights.get("bias"))
    if kernel.shape != (n_in, n_out):
        _fail(node, f"kernel has shape {kernel.shape}, expected ({n_in}, {n_out}) from its input size")
    if bias.shape != (n_out,):
        _fail(node, f"bias has shape {bias.shape}, expected ({n_out},)")
    strategy = str(node.attrs.get("strategy", "latency")).lower()
    if strategy == "distributed_arithmetic":      # da4ml's adder graph (layers_da.py)
        return _layers_da.dense_da(node, graph, namer, code)
    rf = node_reuse(node)
    valid = valid_reuse_factors(n_in, n_out)
    if rf not in valid:
        _fail(node, f"reuse factor {rf} is not supported by the dense kernels for {n_in}x{n_out}; "
                    f"valid: {', '.join(map(str, valid))}")
    if strategy == "latency":
        kernel_class = "nnet::DenseLatency"
        stored = kernel
    elif strategy == "resource":
        # hls4ml's resource kernels index the transposed kernel (n_out, n_in)
        kernel_class = "nnet::DenseResource_rf_leq_nin" if rf <= n_in else "nnet::DenseResource_rf_gt_nin_rem0"
        stored = kernel.T
    else:
        _fail(node, f"strategy must be 'latency' or 'resource', got {strategy!r}")
    slot_types = {s: _type(node, s) for s in ("weight", "bias", "accum")}
    td = {s: namer.unique(f"{code.stem}_{s}_t") for s in slot_types}
    code.typedefs += [TypeDef(td[s], slot_types[s].cpp()) for s in ("weight", "bias", "accum")]
    w = weight_array(namer, f"w_{code.stem}", td["weight"], node, stored, slot_types["weight"], "kernel")
    b = weight_array(namer, f"b_{code.stem}", td["bias"], node, bias, slot_types["bias"], "bias")
    code.weights += [w, b]
    code.includes = ("nnet_utils/nnet_dense.h",)
    code.summary = (f"{strategy}, reuse factor {rf}, weight {slot_types['weight'].cpp()}, "
                    f"bias {slot_types['bias'].cpp()}, accum {slot_types['accum'].cpp()}")
    code.params.update(strategy=strategy, reuse_factor=rf, kernel_class=kernel_class,
                       weight_t=td["weight"], bias_t=td["bias"], accum_t=td["accum"],
                       w=w.name, b=b.name, n_zeros=w.n_zeros, n_nonzeros=n_in * n_out - w.n_zeros,
                       **product_params(node))
    code.params["native"] = _native.plan(node, graph, namer, code, kernel, strategy == "resource", 1)
    return code


from . import layers_conv as _layers_conv  # noqa: E402,F401  (registers conv2d and pooling)
from . import layers_merge as _layers_merge  # noqa: E402,F401  (registers merge and concatenate)
from . import layers_reshaping as _layers_reshaping  # noqa: E402,F401  (zeropad, cropping, upsampling, transpose)
from . import layers_activation as _layers_activation  # noqa: E402,F401  (activation, softmax)
from . import layers_depthwise as _layers_depthwise  # noqa: E402,F401  (registers depthwise_conv2d)
from . import layers_norm as _layers_norm  # noqa: E402,F401  (registers batchnorm)
from . import layers_quant as _layers_quant  # noqa: E402,F401  (registers quant_act and apply_scale)
from . import layers_da as _layers_da  # noqa: E402  (distributed-arithmetic dense layers)
from . import native as _native  # noqa: E402  (the native back end's integer kernels)
from . import layers_fixed_quant as _layers_fixed_quant  # noqa: E402,F401  (registers fixed_quant, HGQ2)
