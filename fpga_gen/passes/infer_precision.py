"""Give every tensor an exact fixed-point type.

- Per-layer overrides from the config win (``layers.<name>.precision.<slot>``).
- Model inputs take ``input_precision`` (default: ``default_precision``).
- Float weights (layers without a QKeras quantizer) are rounded to ``default_precision``
  (round to nearest, saturate); quantized weights keep the quantizer's type.
- A dense accumulator is the smallest type that holds every possible sum exactly, computed
  from the input type's range and the actual weights.  The result of a quantized dense layer
  (QDense with a kernel quantizer) is that same exact type — a value computed from quantized
  operands is never silently rounded; a float Dense layer's result takes ``default_precision``
  (otherwise exact types would grow layer after layer of a float model).
- conv2d: a dense layer per output pixel over its (kh, kw, n_chan) patch; the same rule with the
  kernel reshaped to (kh * kw * n_chan, n_filt) (padded cells are 0, inside the input's range).
- depthwise_conv2d: per channel a dense layer over its kh * kw window cells (the kernel read as
  (kh * kw, n_chan)); the same rule.
- batchnorm: scale and bias are float (1/sqrt of the variance): in a float model they and the result
  take ``default_precision`` (as hls4ml); in a quantized model (a QBatchNormalization, or one after a
  quantized layer) scale and bias are rounded to ``BN_WEIGHT_WIDTH``-bit types whose integer bits fit
  their largest value, and the result is the exact type of x * scale + bias, so the only rounding is
  the next quantizer's.
- max pooling: accum and result are the input type.  average pooling: the sum is held exactly in
  accum, whose extra fraction bits make the division exact when every window size is a power of
  two, and otherwise leave ``AVG_GUARD_BITS`` guard bits below the input's; the result is accum.
- zeropad, cropping, transpose: they move values; the result is the input type (no rounding).
- upsampling: the input type itself (nnet::resize_nearest writes into an array of its input type); a result
  override that differs from it is refused.
- relu without a quantizer: the unsigned type that holds the non-negative part exactly (before a max
  pooling with padding='same': its signed input type, as nnet pads with the most negative value).
- merge: the smallest type holding every result exactly (:func:`merge_result_type`): add/subtract the
  exact sum/difference range (at most the union of the inputs plus one bit), average the same with one more
  fraction bit, multiply the exact product range, maximum/minimum the range of the larger/smaller input.
  concatenate: the smallest type holding both inputs exactly (the kernel casts each value to it).  Merges
  have no weights, so float and quantized models alike get exact types (one bit per add); a result wider
  than the emulator's 53 bits is refused, naming the layer, unless the config sets it.
- calibration (``calibrate=``): the :class:`~fpga_gen.passes.calibrate.Calibrate` pass sets the input, float
  weight/bias/result types as overrides beforehand, and a float layer's accumulator keeps the exact type's
  fraction bits with the calibrated integer bits.
- Activations without a quantizer (see :func:`activation_types`): the result holds the function's value
  exactly where the kernel computes exactly (relu family, leaky/prelu/elu products, hard_sigmoid/tanh up
  to 24 bits); table functions return the table type (default ``activations.table_precision`` or
  hls4ml's ap_fixed<18,8>, ``activations.table_size`` or 1024 entries).  Scalar params (leaky alpha,
  ELU alpha, PReLU alphas) are rounded to nearest with 12 significant bits (exact when they fit), the
  ReLU threshold keeps its float32 value exactly; hard_sigmoid's slope 0.2 is truncated to
  ap_ufixed<16,0> and its shift 0.5 is ap_ufixed<2,0>, as hls4ml writes them.
- softmax: table types chosen so argmax is preserved (see :func:`softmax_types`); implementation from
  ``layers.<name>.implementation``, ``softmax.implementation`` or 'stable'.
- float_activation (selu, swish, gelu, ...; CPU/GPU fallback only): ``default_precision`` with RND_CONV, SAT.
- quant_act, fixed_quant, hgq_softmax, lut: the quantizer's types from the frontend.  apply_scale: scale/bias types exact from their
  values, the result the exact type of x * scale + bias (see :mod:`fpga_gen.passes.quant_scale`).
"""

from __future__ import annotations

import numpy as np

from ..config import ProjectConfig
from ..config import SOFTMAX_KEYS
from ..ir.fixed import ceillog2, from_float
from ..ir.graph import Graph, Node
from ..ir.ops import SOFTMAX_IMPLEMENTATIONS, TABLE_ACTIVATIONS
from ..ir.spatial import window_indices
from ..ir.tables import activation_table
from ..ir.types import FixedType, exact_type_for_range
from .base import Pass, PassError
from .calibrate import narrowed_accum
from .quant_scale import apply_scale_types
from .quant_table import table_types

__all__ = ["InferPrecision", "softmax_types", "dense_accum_type",
           "pool_window_sizes", "AVG_GUARD_BITS", "merge_result_type", "MAX_EXACT_WIDTH", "BN_WEIGHT_WIDTH",
           "fitted_type"]

# fraction bits average pooling keeps below the input's when a window size is not a power of two
AVG_GUARD_BITS = 8
# width of a quantized model's batchnorm scale and bias: 18 bits, a DSP48's B port (one DSP per product)
BN_WEIGHT_WIDTH = 18


def fitted_type(values: np.ndarray, width: int) -> FixedType:
    """Signed ``width``-bit type whose integer bits (at least 1) just hold the largest |value|."""
    m = float(np.max(np.abs(values), initial=0.0))
    integer = max(1, int(np.floor(np.log2(m))) + 2) if m > 0 else 1
    return FixedType(width, integer, True)


# the widest exact type a merge may get (the emulator holds raw values in float64)
MAX_EXACT_WIDTH = 53


def _aligned(t: FixedType, frac: int) -> tuple[int, int]:
    """(raw_min, raw_max) of ``t`` on the grid of ``frac`` >= t.frac fraction bits."""
    return t.raw_min << (frac - t.frac), t.raw_max << (frac - t.frac)


def merge_result_type(mode: str, a: FixedType, b: FixedType) -> FixedType:
    """The smallest type holding every result of ``mode`` on inputs of types ``a`` and ``b`` exactly.

    mode: a :data:`~fpga_gen.ir.ops.MERGE_MODES` entry or 'concatenate' (a type holding both inputs).
    Raises PassError when it needs more than :data:`MAX_EXACT_WIDTH` bits."""
    frac = max(a.frac, b.frac)
    (a0, a1), (b0, b1) = _aligned(a, frac), _aligned(b, frac)
    if mode in ("add", "average"):
        lo, hi = a0 + b0, a1 + b1
    elif mode == "subtract":
        lo, hi = a0 - b1, a1 - b0
    elif mode == "maximum":
        lo, hi = max(a0, b0), max(a1, b1)
    elif mode == "minimum":
        lo, hi = min(a0, b0), min(a1, b1)
    elif mode == "concatenate":
        lo, hi = min(a0, b0), max(a1, b1)
    elif mode == "multiply":
        corners = [x * y for x in (a.raw_min, a.raw_max) for y in (b.raw_min, b.raw_max)]
        lo, hi, frac = min(corners), max(corners), a.frac + b.frac
    else:
        raise PassError(f"merge mode {mode!r} is not supported; use one of add, subtract, multiply, average, "
                        f"maximum, minimum")
    if mode == "average":
        frac += 1                      # (x + y) * ap_ufixed<1,0>(0.5): the same raw sum, one more fraction bit
    width = 1 + max((-lo - 1).bit_length(), hi.bit_length()) if lo < 0 else max(1, hi.bit_length())
    if width > MAX_EXACT_WIDTH:
        raise PassError(f"the exact {mode} of {a} and {b} needs {width} bits, more than the emulator's "
                        f"{MAX_EXACT_WIDTH}; set a narrower result type in the config")
    return exact_type_for_range(lo, hi, frac)


def _quantize_weights(values: np.ndarray, t: FixedType) -> np.ndarray:
    rt = t.with_modes("RND_CONV", "SAT")
    return from_float(values, rt) * 2.0 ** -t.frac


def _raw(values: np.ndarray, t: FixedType) -> np.ndarray:
    return np.asarray(values, dtype=np.float64) * 2.0 ** t.frac


def dense_accum_type(x: FixedType, w: FixedType, b: FixedType, kernel: np.ndarray, bias: np.ndarray) -> FixedType:
    """Smallest type holding every x @ kernel + bias exactly, for x anywhere in x's range."""
    frac = max(x.frac + w.frac, b.frac)
    wr = _raw(kernel, w) * 2.0 ** (frac - x.frac - w.frac)   # weights scaled so products land on frac
    br = _raw(bias, b) * 2.0 ** (frac - b.frac)
    lo_x, hi_x = float(x.raw_min), float(x.raw_max)
    hi = br + np.where(wr > 0, wr * hi_x, wr * lo_x).sum(axis=0)
    lo = br + np.where(wr > 0, wr * lo_x, wr * hi_x).sum(axis=0)
    t = None
    if max(np.abs(hi).max(initial=0), np.abs(lo).max(initial=0)) < 2.0 ** 53:
        t = exact_type_for_range(int(lo.min(initial=0)), int(hi.max(initial=0)), frac,
                                 force_signed=bool(lo.min(initial=0) < 0) or x.signed or w.signed)
    if t is None or t.width > 53:      # the emulator holds raw values in float64 (53 bits, sign included)
        raise PassError(f"its exact accumulator needs more than 53 bits (input {x}); quantize its input (e.g. a "
                        f"QActivation(quantized_bits) before it) or set its precision in the config (accum; "
                        f"batchnorm: result)")
    return t


def pool_window_sizes(attrs: dict) -> set[int]:
    """The numbers of cells inside the image over all pooling windows (what nnet divides by)."""
    idx = window_indices(int(attrs["in_height"]), int(attrs["in_width"]), 1, tuple(attrs["pool_size"]),
                         tuple(attrs["strides"]), tuple(attrs["pads"]))
    return {int(n) for n in np.unique((idx >= 0).sum(axis=1))}


def softmax_types(in_type: FixedType, n: int, exp_table_size: int, inv_table_size: int,
                  latency: bool = False) -> dict[str, FixedType]:
    """Softmax table types.  stable: d = max - x is indexed with its top log2(size) bits over [0, 8);
    exp values in (0, 1] with 17 fraction bits; the sum of n of them is held exactly.  latency: exp(x)
    of the input itself, in hls4ml's default ap_fixed<18,8,AP_RND,AP_SAT> range (unsigned: exp > 0),
    saturating above 256; 1/sum in the same range."""
    n_exp, n_inv = ceillog2(exp_table_size), ceillog2(inv_table_size)
    s = ceillog2(n)
    if latency:
        exp_t = FixedType(18, 8, False, "RND", "SAT")
        return {
            "inp_norm": FixedType(max(n_exp, 1), 3, False, "TRN", "SAT"),     # unused by latency
            "exp_table": exp_t,
            "accum": FixedType(18 + s, 8 + s, False),
            "inv_inp": FixedType(max(18 + s, n_inv), 8 + s, False),
            "inv_table": FixedType(18, 8, False, "RND", "SAT"),
            "result": FixedType(16, 1, False, "RND_CONV", "SAT"),
        }
    exp_t = FixedType(18, 1, False, "RND", "SAT")
    accum = FixedType(18 + s, 1 + s, False)
    return {
        "inp_norm": FixedType(max(n_exp, 1), 3, False, "TRN", "SAT"),
        "exp_table": exp_t,
        "accum": accum,
        "inv_inp": FixedType(max(18 + s, n_inv), 1 + s, False),
        "inv_table": FixedType(18, 1, False, "RND", "SAT"),
        "result": FixedType(16, 1, False, "RND_CONV", "SAT"),
    }


PARAM_SIGNIFICANT_BITS = 12
TABLE_DEFAULT = FixedType(18, 8)          # hls4ml's table_t
# legacy softmax: hls4ml's softmax table default, ap_fixed<18,8,AP_RND,AP_SAT>: exp(8) and the sums saturate
# instead of wrapping to small values (which would make a small logit win)
LEGACY_TABLE_DEFAULT = FixedType(18, 8, True, "RND", "SAT")
HARD_SLOPE_T, HARD_SHIFT_T = FixedType(16, 0, False), FixedType(2, 0, False)
MAX_HARD_WIDTH = 24


def param_type(values, significant_bits: int = PARAM_SIGNIFICANT_BITS) -> FixedType:
    """One type for the values: exact when they fit in ``significant_bits`` bits below the largest
    magnitude's top bit, else that many bits (round to nearest, ties to even; saturate)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    amax = float(np.abs(v).max(initial=0.0))
    signed = bool((v < 0).any())
    if amax == 0.0:
        return FixedType(1, 1, False)
    top = int(np.floor(np.log2(amax)))
    frac = significant_bits - 1 - top
    raw = np.rint(v * 2.0 ** frac)
    while frac > -60 and np.all(np.mod(raw, 2) == 0):      # drop fraction bits every value has as zeros
        raw, frac = raw / 2, frac - 1
    t = exact_type_for_range(int(raw.min()), int(raw.max()), frac, force_signed=signed)
    return t.with_modes("RND_CONV", "SAT")


def _value_frac(raw: float, frac: int) -> int:
    """The fraction bits a raw value on the grid 2**-frac really needs (its trailing zeros dropped)."""
    raw = int(raw)
    while raw and raw % 2 == 0 and frac > 0:
        raw //= 2
        frac -= 1
    return frac if raw else 0


def _capped(t: FixedType, max_width: int) -> FixedType:
    if t.width <= max_width:
        return t
    return FixedType(max_width, t.integer, t.signed, "RND_CONV", "SAT")


def activation_types(node: Node, x: FixedType, config: ProjectConfig, ov: dict) -> dict[str, FixedType]:
    """Types (result first) and quantized params of an activation node; see the module docstring."""
    act = node.attrs["activation"]
    acfg = config.activations or {}
    out = {}
    if act in TABLE_ACTIVATIONS:
        node.attrs.setdefault("table_size", int(acfg.get("table_size", 1024)))
        n = node.attrs["table_size"]
        if n < 2 or n & (n - 1):
            raise PassError(f"layer {node.name!r}: table_size must be a power of two >= 2, got {n}")
        table_t = ov.get("table") or node.types.get("table") or acfg.get("table_precision") or TABLE_DEFAULT
        out["table"] = table_t
    if act in ("leaky_relu", "elu", "thresholded_relu", "prelu"):
        pt = ov.get("param") or node.types.get("param")
        if act == "prelu":
            alpha = np.asarray(node.weights["alpha"], dtype=np.float64)
            pt = pt or param_type(alpha)
            node.weights["alpha"] = from_float(alpha, pt.with_modes("RND_CONV", "SAT")) * 2.0 ** -pt.frac
        else:
            p = float(node.attrs["param"])
            # the threshold is compared: keep its float32 value exactly; alphas multiply: 12 bits
            pt = pt or param_type([p], 24 if act == "thresholded_relu" else PARAM_SIGNIFICANT_BITS)
            q = float(from_float(np.array([p]), pt.with_modes("RND_CONV", "SAT"))[0]) * 2.0 ** -pt.frac
            node.attrs["param"] = q
        out["param"] = pt.plain()
    if act in ("hard_sigmoid", "hard_tanh"):
        node.attrs.setdefault("slope", 0.2 if act == "hard_sigmoid" else 0.5)
        node.attrs.setdefault("shift", 0.5)
        for slot, dflt in (("slope", HARD_SLOPE_T), ("shift", HARD_SHIFT_T)):
            t = ov.get(slot) or node.types.get(slot) or dflt
            out[slot] = t
            # the C++ casts the decimal constant with the type's own rounding (TRN): 0.2 -> 13107 / 2**16
            node.attrs[slot] = float(from_float(np.array([float(node.attrs[slot])]), t)[0]) * 2.0 ** -t.frac
    rule = RESULT_RULES.get(act)
    if rule is not None:
        out["result"] = rule(node, x, out)
    elif ov.get("result") or node.types.get("result"):
        out["result"] = ov.get("result") or node.types["result"]     # e.g. a quantizer's type
    else:
        raise PassError(f"layer {node.name!r}: activation {act!r} has no precision rule; give it a result type "
                        f"(layers.{node.name}.precision.result)")
    return out


def _relu_result(node, x, out):
    return FixedType(max(x.width - 1, 1), x.integer - 1, False) if x.signed else x.plain()


def _relu_max_result(node, x, out):
    m = int(node.attrs["max_int"])
    f = max(x.frac, 0)
    hi = min(x.raw_max * 2 ** (f - x.frac), m * 2 ** f)
    return exact_type_for_range(0, max(int(hi), 1), f, force_signed=False)


def _thresholded_result(node, x, out):
    return _relu_result(node, x, out) if float(node.attrs["param"]) >= 0 else x.plain()


def _product_result(node, x, out):
    """leaky_relu / prelu: x for x > 0, alpha * x otherwise, exactly."""
    pt = out["param"]
    alphas = np.asarray(node.weights["alpha"] if "alpha" in node.weights else [node.attrs["param"]], dtype=np.float64)
    a_raw = np.rint(alphas * 2.0 ** pt.frac)
    cands = [0, x.raw_max * 2 ** pt.frac] + [int(a) * x.raw_min for a in (a_raw.min(), a_raw.max())]
    return exact_type_for_range(min(cands), max(cands), x.frac + pt.frac, force_signed=min(cands) < 0)


def _elu_result(node, x, out):
    """x for x >= 0, alpha * table (in [-1, 0]) otherwise, exactly."""
    pt, table_t = out["param"], out["table"]
    table = activation_table("elu", node.attrs["table_size"], table_t)
    a_raw = int(np.rint(float(node.attrs["param"]) * 2.0 ** pt.frac))
    f = max(x.frac, table_t.frac + pt.frac)
    sh_x, sh_t = f - x.frac, f - table_t.frac - pt.frac
    cands = [0, x.raw_max * 2 ** sh_x] + [int(t) * a_raw * 2 ** sh_t for t in (table.min(), table.max())]
    return exact_type_for_range(min(cands), max(cands), f, force_signed=min(cands) < 0 or x.signed)


def _hard_result(node, x, out):
    """clip(slope * x + shift, 0, 1) (hard_tanh: 2 * that - 1) on the grid its values need, at most 24 bits."""
    st, ht = out["slope"], out["shift"]
    f = max(x.frac + _value_frac(node.attrs["slope"] * 2.0 ** st.frac, st.frac),
            _value_frac(node.attrs["shift"] * 2.0 ** ht.frac, ht.frac), 0)
    if node.attrs["activation"] == "hard_sigmoid":
        res = exact_type_for_range(0, 2 ** f, f, force_signed=False)
    else:
        res = exact_type_for_range(-(2 ** f), 2 ** f, f, force_signed=True)
    return _capped(res, MAX_HARD_WIDTH)


# activation kind -> fn(node, input type, the other slots' types) -> default result type
RESULT_RULES = {
    "linear": lambda node, x, out: x.plain(),
    "relu": _relu_result,
    "relu_max": _relu_max_result,
    "thresholded_relu": _thresholded_result,
    "leaky_relu": _product_result,
    "prelu": _product_result,
    "elu": _elu_result,
    "hard_sigmoid": _hard_result,
    "hard_tanh": _hard_result,
    **{k: (lambda node, x, out: out["table"].plain()) for k in TABLE_ACTIVATIONS if k != "elu"},
}


class InferPrecision(Pass):
    name = "infer-precision"
    max_iterations = 1

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            ov = node.meta.get("override", {})
            try:
                getattr(self, "_" + node.op)(graph, node, config, ov)
            except PassError as e:
                if str(e).startswith("layer "):
                    raise
                raise PassError(f"layer {node.name!r}: {e}") from None
            for slot, t in ov.items():
                if slot != "weight" and slot != "bias":
                    node.types[slot] = t
        return False

    def _input(self, graph, node: Node, config: ProjectConfig, ov):
        node.types["result"] = ov.get("result") or config.input_precision or config.default_precision

    def _weighted(self, graph, node: Node, config: ProjectConfig, ov, kernel_2d) -> None:
        """dense and conv: weight/bias types, exact accumulator, result type."""
        x = graph[node.inputs[0]].types["result"]
        quantized = "weight" in node.types          # set by the frontend from a QKeras kernel quantizer
        for slot, wname in (("weight", "kernel"), ("bias", "bias")):
            t = ov.get(slot) or node.types.get(slot) or config.default_precision
            node.weights[wname] = _quantize_weights(node.weights[wname], t)
            node.types[slot] = t.plain()
        if "accum" in ov:
            node.types["accum"] = ov["accum"]
        else:
            node.types["accum"] = dense_accum_type(x, node.types["weight"], node.types["bias"],
                                                   kernel_2d(node.weights["kernel"]), node.weights["bias"])
            if "calibrated_accum_integer" in node.meta:       # calibration: the observed range (see calibrate.py)
                node.types["accum"] = narrowed_accum(node.types["accum"], node.meta["calibrated_accum_integer"])
        # quantized layer: its exact value, never silently rounded; float layer: the default precision
        exact = node.types["accum"] if quantized else config.default_precision
        node.types["result"] = ov.get("result") or node.types.get("result") or exact

    def _dense(self, graph, node: Node, config: ProjectConfig, ov):
        self._weighted(graph, node, config, ov, lambda k: k)

    def _conv2d(self, graph, node: Node, config: ProjectConfig, ov):
        self._weighted(graph, node, config, ov, lambda k: k.reshape(-1, k.shape[-1]))

    def _depthwise_conv2d(self, graph, node: Node, config: ProjectConfig, ov):
        self._weighted(graph, node, config, ov, lambda k: k.reshape(-1, k.shape[-1]))

    def _batchnorm(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        quantized = bool(node.meta.get("quantized"))
        for slot in ("scale", "bias"):
            values = node.weights[slot]
            t = ov.get(slot) or node.types.get(slot) or \
                (fitted_type(values, BN_WEIGHT_WIDTH) if quantized else config.default_precision)
            node.weights[slot] = _quantize_weights(values, t)
            node.types[slot] = t.plain()
        if quantized:
            # x * scale + bias held exactly: a dense layer with one input per output
            exact = dense_accum_type(x, node.types["scale"], node.types["bias"],
                                     np.asarray(node.weights["scale"]).reshape(1, -1), node.weights["bias"])
        else:
            exact = config.default_precision
        node.types["result"] = ov.get("result") or node.types.get("result") or exact

    def _pooling(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        mode = node.attrs["mode"]
        if mode == "max":
            if not x.signed and any(node.attrs["pads"]):
                # nnet's pad value is the type's top bit: the most negative value only for a signed type
                raise PassError(f"layer {node.name!r}: max pooling with padding='same' needs a signed input, "
                                f"got {x}; use padding='valid' or a signed (quantized_bits) activation before it")
            node.types["accum"] = ov.get("accum") or x.plain()
        elif mode == "average":
            sizes = pool_window_sizes(node.attrs)
            extra = max(ceillog2(n) for n in sizes)
            guard = extra if all(n & (n - 1) == 0 for n in sizes) else extra + AVG_GUARD_BITS
            # the sum of max(sizes) inputs, with the guard bits as extra fraction bits
            lo, hi = x.raw_min * max(sizes), x.raw_max * max(sizes)
            t = exact_type_for_range(lo << guard, hi << guard, x.frac + guard, force_signed=x.signed)
            node.types["accum"] = ov.get("accum") or t
        else:
            raise PassError(f"layer {node.name!r}: pooling mode {mode!r} is not supported; use 'max' or 'average'")
        node.types["result"] = ov.get("result") or node.types.get("result") or node.types["accum"]

    def _moved(self, graph, node: Node, config: ProjectConfig, ov):
        """zeropad, cropping, transpose: values copied (and cast to result, the input type by default)."""
        x = graph[node.inputs[0]].types["result"]
        node.types["result"] = ov.get("result") or node.types.get("result") or x.plain()

    _zeropad = _cropping = _transpose = _moved

    def _upsampling(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        t = ov.get("result") or node.types.get("result") or x
        if t != x:
            raise PassError(f"layer {node.name!r}: upsampling copies its input (nnet::resize_nearest has one data "
                            f"type), so its result type must be the input type {x}, got {t}")
        node.types["result"] = x

    def _activation(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        lcfg = config.layer(node.name)
        if "table_size" in lcfg:
            node.attrs["table_size"] = int(lcfg["table_size"])
        types = activation_types(node, x, config, ov)
        for slot, t in types.items():
            if slot != "result":
                node.types[slot] = t
        # nnet pads max pooling with the type's most negative value, which only a signed type has: before a
        # padded max pooling, relu keeps its (signed) input type, which holds the non-negative part exactly
        padded_max = any(c.op == "pooling" and c.attrs.get("mode") == "max" and any(c.attrs.get("pads", ()))
                         for c in graph.consumers(node.name))
        if node.attrs["activation"] == "relu" and x.signed and padded_max:
            types["result"] = x.plain()
        node.types["result"] = ov.get("result") or node.types.get("result") or types["result"]

    def _merge(self, graph, node: Node, config: ProjectConfig, ov):
        self._two_input(graph, node, ov, node.attrs["mode"])

    def _concatenate(self, graph, node: Node, config: ProjectConfig, ov):
        self._two_input(graph, node, ov, "concatenate")

    def _two_input(self, graph, node: Node, ov, mode: str):
        if "result" in ov or "result" in node.types:
            node.types["result"] = ov.get("result") or node.types["result"]
            return
        a, b = graph.producer_types(node)
        node.types["result"] = merge_result_type(mode, a, b)

    def _fixed_quant(self, graph, node: Node, config: ProjectConfig, ov):
        if "result" not in node.types:
            raise PassError(f"layer {node.name!r}: {node.op} needs its result type from the frontend")

    _hgq_softmax = _fixed_quant
    _lut = _fixed_quant

    def _quant_act(self, graph, node: Node, config: ProjectConfig, ov):
        # the frontend sets the quantizer's exact type; a table's comes from the levels it reaches
        if node.attrs.get("function") == "table":
            table_types(node, graph[node.inputs[0]].types["result"])
            return
        node.types["result"] = ov.get("result") or node.types["result"]

    def _apply_scale(self, graph, node: Node, config: ProjectConfig, ov):
        apply_scale_types(graph, node, ov, config.default_precision)

    def _float_activation(self, graph, node: Node, config: ProjectConfig, ov):
        node.types["result"] = ov.get("result") or node.types.get("result") or \
            config.default_precision.with_modes("RND_CONV", "SAT")

    def _softmax(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        sm = dict(config.softmax or {})
        sm.update({k: v for k, v in config.layer(node.name).items() if k in SOFTMAX_KEYS})
        if "implementation" in sm:
            node.attrs["implementation"] = sm["implementation"]
        for k in ("exp_table_size", "inv_table_size"):
            if k in config.layer(node.name):
                node.attrs[k] = int(config.layer(node.name)[k])
        node.attrs.setdefault("implementation", "stable")
        impl = node.attrs["implementation"]
        if impl not in SOFTMAX_IMPLEMENTATIONS:
            raise PassError(f"layer {node.name!r}: softmax implementation {impl!r} is not supported; use one of "
                            f"{', '.join(SOFTMAX_IMPLEMENTATIONS)}")
        if impl in ("legacy", "argmax"):
            node.attrs.setdefault("exp_table_size", int(sm.get("exp_table_size", 1024)))
            node.attrs.setdefault("inv_table_size", int(sm.get("inv_table_size", 1024)))
            if impl == "legacy":
                node.types["table"] = ov.get("table") or node.types.get("table") or LEGACY_TABLE_DEFAULT
                node.types["result"] = ov.get("result") or node.types.get("result") or node.types["table"]
            else:
                node.types["result"] = ov.get("result") or node.types.get("result") or FixedType(1, 1, False)
            return
        # exp table: enough index bits to tell logits 2**-(frac) apart over [0, 8), between 1024 and 4096
        # entries (4096 x 18 bits = 4 BRAM_18K); ties below that resolution are what costs argmax agreement
        default_exp = min(max(1 << (3 + max(x.frac, 0)), 1024), 4096)
        node.attrs.setdefault("exp_table_size", int(sm.get("exp_table_size", default_exp)))
        node.attrs.setdefault("inv_table_size", int(sm.get("inv_table_size", 1024)))
        for k in ("exp_table_size", "inv_table_size"):
            v = node.attrs[k]
            if v < 2 or v & (v - 1):
                raise PassError(f"layer {node.name!r}: {k} must be a power of two >= 2, got {v}")
        types = softmax_types(x, node.size, node.attrs["exp_table_size"], node.attrs["inv_table_size"],
                              latency=impl == "latency")
        for slot, t in types.items():
            node.types[slot] = ov.get(slot) or node.types.get(slot) or t
        if impl == "latency" and x.width < ceillog2(node.attrs["exp_table_size"]):
            raise PassError(f"layer {node.name!r}: the latency softmax indexes its exp table with the input's "
                            f"{x.width} bits, fewer than the {ceillog2(node.attrs['exp_table_size'])} index bits "
                            f"of exp_table_size {node.attrs['exp_table_size']}; lower exp_table_size")
        if node.types["inp_norm"].width < ceillog2(node.attrs["exp_table_size"]):
            raise PassError(f"layer {node.name!r}: inp_norm type {node.types['inp_norm']} is narrower than the "
                            f"{ceillog2(node.attrs['exp_table_size'])} index bits of the exp table")
