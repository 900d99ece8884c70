"""QKeras quantizers -> exact fixed-point types and element-wise ops.

Weights (kernel and bias of QDense / QConv2D): QKeras itself quantizes the float weights
(the frontend calls the quantizer once, in TensorFlow) and the weight type is the exact type of
what it returns; a per-channel scale (alpha='auto_po2') is split off into its own exact op
(``apply_scale``), so the dense/conv multiplies by the small integers only:

quantized_bits(b, i, keep_negative=True, alpha=1|None) -> ap_fixed<b, i+1>   (symmetric: same type)
quantized_bits(b, i, keep_negative=False, ...)         -> ap_ufixed<b, i>
quantized_bits(1, i)                                   -> ap_int<2> (QKeras: +-1, the integer is ignored)
quantized_bits(b, i, alpha=a) (a number)               -> the exact type of the values QKeras gives (a * the grid)
quantized_bits(b, i, alpha='auto_po2')                 -> ap_fixed<b, i+1> and apply_scale(2**k per channel)
binary(), binary(alpha=a), binary(use_01=True)         -> the exact type of {-a, a} (ap_int<2> for +-1; ap_uint<1>)
ternary(alpha=None|a, threshold=t)                     -> the exact type of {-a, 0, a} (ap_int<2> for a=1)
binary/ternary(alpha='auto_po2')                       -> ap_int<2> and apply_scale(2**k per channel)
alpha='auto' (quantized_bits, binary, ternary)         -> the same with QKeras' float32 per-channel scale, held exactly
                                                          in apply_scale: exact fixed point, where QKeras multiplies
                                                          s*q into float32 weights and sums in float32 (so QKeras
                                                          may differ by its float32 rounding; tests measure it)
quantized_po2(b[, max_value])                          -> the exact type of the power-of-two values it gave

Activations (QActivation, or a layer's activation=):

quantized_bits(b, i, alpha=1|None)                     -> activation 'linear' into ap_fixed<b, i+1, AP_RND_CONV, AP_SAT>
quantized_bits(..., symmetric=True)                    -> the same with AP_SAT_SYM (QKeras clips at -(2**(b-1)-1))
quantized_bits(b, i, keep_negative=False)              -> ap_ufixed<b, i, AP_RND_CONV, AP_SAT>
quantized_relu(b, i)                                   -> activation 'relu' into ap_ufixed<b, i, AP_RND_CONV, AP_SAT>
quantized_relu(b, i, negative_slope=2**-k)             -> quant_act 'leaky' (below)
quantized_tanh(b[, symmetric]) (hard, QKeras' default)  -> activation 'linear' into ap_fixed<b, 1, AP_RND_CONV, AP_SAT[_SYM]>
quantized_tanh(use_real_tanh=True), quantized_sigmoid(use_real_sigmoid=True), quantized_po2, quantized_relu_po2
                                                       -> quant_act 'table': thresholds on the input grid where the
                                                          float function's quantized output changes (exact vs the
                                                          float64 function; QKeras' float32 may differ at a boundary)
quantized_sigmoid(b[, symmetric]) (hard, the default)  -> quant_act 'round': x/2 + 1/2 into ap_ufixed<b, 0, AP_RND_CONV, AP_SAT>
binary(...), binary_tanh, binary_sigmoid               -> quant_act 'step' (a comparison with an exact threshold)
ternary(alpha=None|a, threshold=t)                     -> quant_act 'step' (two comparisons)

QKeras rounds with tf.round (half to even) and clips: exactly AP_RND_CONV with AP_SAT.  Everything
here is fixed-point arithmetic in QKeras too (powers of two, additions of 1/2, comparisons), so the
emulator equals QKeras exactly, up to QKeras' own float32 rounding of inputs with more than 24
significant bits.  Refused, one line each: stochastic rounding and the stochastic/bernoulli
quantizers (no hardware equivalent), data-dependent alpha on activations, quantized_relu(use_sigmoid), quantized_ulaw / quantized_hswish.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field

import numpy as np

from ...ir.quant import exact_value_type
from ...ir.types import FixedType, exact_type_for_range
from ..registry import FrontendError

__all__ = ["QuantSpec", "quantizer_spec", "resolve_quantizer", "activation_spec", "quantize_weights",
           "WeightQuant", "QKERAS_FUNCTIONS"]

# QKeras' activation functions that are quantizers (activation='binary_tanh' etc.)
QKERAS_FUNCTIONS = ("binary_tanh", "binary_sigmoid")


@dataclass(frozen=True)
class QuantSpec:
    kind: str            # 'bits' (a cast), 'relu' (relu, then a cast) or 'quant_act' (see attrs)
    type: FixedType | None     # None: the precision pass derives it (quant_act 'table')
    text: str
    attrs: dict = field(default_factory=dict)


def resolve_quantizer(q):
    """A quantizer object from what a QKeras layer holds (object, string or config dict)."""
    if q is None:
        return None
    if isinstance(q, (str, dict)):
        from qkeras.quantizers import get_quantizer  # lazy: QKeras imports TensorFlow
        return get_quantizer(q)
    return q


def _as_int(v, what, layer):
    try:
        f = float(v.numpy() if hasattr(v, "numpy") else v)
    except (TypeError, ValueError):
        raise FrontendError(f"layer {layer!r}: quantizer {what} {v!r} is not a number") from None
    if f != int(f):
        raise FrontendError(f"layer {layer!r}: quantizer {what} must be an integer, got {f}")
    return int(f)


def _no_stochastic(q, layer, role, text):
    if getattr(q, "use_stochastic_rounding", False):
        raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: stochastic rounding has no hardware "
                            f"equivalent; set use_stochastic_rounding=False")


def _bits_and_integer(q, layer, role, text, lo_bits=1):
    bits = _as_int(q.bits, "bits", layer)
    integer = _as_int(q.integer, "integer", layer)
    what = text if type(q).__name__ == "quantized_relu" else f"{role} quantizer {text}"
    if bits < lo_bits or bits > 32:
        raise FrontendError(f"layer {layer!r}: {what}: bits must be between {lo_bits} and 32")
    if integer < 0:
        raise FrontendError(f"layer {layer!r}: {what}: integer={integer} is negative, which "
                            f"QKeras cannot compute (TensorFlow refuses the negative power); use integer >= 0")
    return bits, integer


def _hard_sigmoid_in_use() -> bool:
    import qkeras.quantizers as qq  # lazy: QKeras imports TensorFlow
    return qq._sigmoid is qq.hard_sigmoid


def quantizer_spec(q, layer: str, role: str) -> QuantSpec:
    """quantized_bits / quantized_relu as a type (weights and activations); fail naming the layer and option."""
    q = resolve_quantizer(q)
    cls = type(q).__name__
    text = str(q)
    if cls == "quantized_bits":
        bits, integer = _bits_and_integer(q, layer, role, text)
        keep_negative = bool(q.keep_negative)
        if bits - keep_negative < 1:
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: 1-bit quantized_bits (binary) is "
                                f"supported for weights only; use binary() or bits >= 2")
        alpha = q.alpha
        if isinstance(alpha, str):
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: alpha={alpha!r} is not supported "
                                f"for {role}s; use alpha=1")
        if alpha is not None and float(alpha) != 1.0:
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: alpha={alpha} is not supported yet; "
                                f"use alpha=1")
        _no_stochastic(q, layer, role, text)
        sat = "SAT_SYM" if (q.symmetric and keep_negative) else "SAT"
        if keep_negative:
            t = FixedType(bits, integer + 1, True, "RND_CONV", sat)
        else:
            t = FixedType(bits, integer, False, "RND_CONV", "SAT")
        return QuantSpec("bits", t, text)
    if cls == "quantized_relu":
        bits, integer = _bits_and_integer(q, layer, role, text)
        if getattr(q, "use_sigmoid", 0):
            raise FrontendError(f"layer {layer!r}: {text}: use_sigmoid is not supported; use use_sigmoid=0")
        _no_stochastic(q, layer, role, text)
        if not getattr(q, "is_quantized_clip", True) or getattr(q, "relu_upper_bound", None):
            raise FrontendError(f"layer {layer!r}: {text}: relu_upper_bound / is_quantized_clip=False are not "
                                f"supported; use the defaults")
        slope = float(getattr(q, "negative_slope", 0.0) or 0.0)
        if slope:
            if role != "activation":
                raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: negative_slope is supported for "
                                    f"activations only")
            return _leaky_spec(bits, integer, slope, layer, text)
        return QuantSpec("relu", FixedType(bits, integer, False, "RND_CONV", "SAT"), text)
    raise FrontendError(f"layer {layer!r}: {role} quantizer {text or cls} ({cls}) is not supported yet; "
                        f"supported: quantized_bits, quantized_relu")


def _leaky_spec(bits, integer, slope, layer, text) -> QuantSpec:
    """quantized_relu(b, i, negative_slope=s): x > 0 -> ap_ufixed<b-1, i, RND_CONV, SAT>(x);
    x <= 0 -> max(round(s*x to the step 2**(i-b+1)), -s * 2**i)."""
    k = -math.log2(slope)
    if bits < 2 or k != int(k) or k < 0:
        raise FrontendError(f"layer {layer!r}: {text}: negative_slope must be a power of two <= 1 and bits >= 2")
    k = int(k)
    step_frac = bits - 1 - integer
    neg_min = -(2.0 ** (integer - k))
    frac = max(step_frac, k - integer)
    pos_max = 2.0 ** integer - 2.0 ** -step_frac
    rt = exact_type_for_range(int(neg_min * 2 ** frac), int(pos_max * 2 ** frac), frac, force_signed=True)
    attrs = {"function": "leaky", "shift": k, "bits": bits, "integer": integer, "neg_min": neg_min}
    return QuantSpec("quant_act", rt, text, attrs)


def _value_type(values) -> FixedType:
    """The smallest type holding every value exactly (values must be dyadic rationals)."""
    return exact_value_type(values)


def _step_spec(lo: float, hi: float, mid: float | None, threshold: float, inclusive: bool, text: str) -> QuantSpec:
    vals = [lo, hi] + ([mid] if mid is not None else [])
    t = _value_type(vals)
    attrs = {"function": "step", "lo": float(lo), "hi": float(hi), "mid": None if mid is None else float(mid),
             "threshold": float(threshold), "inclusive": bool(inclusive)}
    return QuantSpec("quant_act", t, text, attrs)


def _float32_alpha(alpha, layer, role, text) -> float:
    a = float(alpha)
    if a <= 0 or float(np.float32(a)) != a or not np.isfinite(a):
        raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: alpha={alpha} must be a positive number "
                            f"that float32 holds exactly (e.g. 1 or 0.5)")
    return a


def activation_spec(q, layer: str) -> QuantSpec:
    """A QKeras quantizer (or quantizing function) used as an activation -> its exact op and type."""
    q = resolve_quantizer(q)
    role = "activation"
    if isinstance(q, types.FunctionType):
        name = getattr(q, "__name__", str(q))
        if name == "binary_tanh":        # 2*round(clip(x/2 + 1/2, 0, 1)) - 1: round(1/2) = 0, so x > 0 -> 1
            return _step_spec(-1.0, 1.0, None, 0.0, False, name)
        if name == "binary_sigmoid":     # round(clip(x/2 + 1/2, 0, 1)): x > 0 -> 1, else 0
            return _step_spec(0.0, 1.0, None, 0.0, False, name)
        raise FrontendError(f"layer {layer!r}: QKeras activation function {name!r} is not supported yet; "
                            f"supported: {', '.join(QKERAS_FUNCTIONS)}")
    cls = type(q).__name__
    text = str(q)
    if cls in ("quantized_bits", "quantized_relu"):
        return quantizer_spec(q, layer, role)
    if cls in ("quantized_tanh", "quantized_sigmoid"):
        bits = _as_int(q.bits, "bits", layer)
        _no_stochastic(q, layer, role, text)
        real = getattr(q, "use_real_tanh", False) or getattr(q, "use_real_sigmoid", False)
        if bits < 1 + (cls == "quantized_tanh") or bits > 16:
            raise FrontendError(f"layer {layer!r}: activation quantizer {text}: bits must be between "
                                f"{1 + (cls == 'quantized_tanh')} and 16")
        if real:
            # the float function, tabulated over the input type (exact thresholds; see passes/quant_table.py)
            return QuantSpec("quant_act", None, text, {"function": "table", "fn": cls.split("_")[1], "bits": bits,
                                                       "symmetric": bool(q.symmetric)})
        if not _hard_sigmoid_in_use():
            raise FrontendError(f"layer {layer!r}: activation quantizer {text}: QKeras' internal sigmoid is not the "
                                f"hard one; call set_internal_sigmoid('hard') or use use_real_tanh/use_real_sigmoid")
        if cls == "quantized_tanh":
            # 2*clip(x/2 + 1/2, 0, 1) - 1 == clip(x, -1, 1); rounding then clipping to [-1(+1 LSB), 1 - 1 LSB]
            # is the saturating cast
            if bits < 2 or bits > 32:
                raise FrontendError(f"layer {layer!r}: activation quantizer {text}: bits must be between 2 and 32")
            return QuantSpec("bits", FixedType(bits, 1, True, "RND_CONV", "SAT_SYM" if q.symmetric else "SAT"), text)
        if bits < 1 or bits > 32:
            raise FrontendError(f"layer {layer!r}: activation quantizer {text}: bits must be between 1 and 32")
        t = FixedType(bits, 0, False, "RND_CONV", "SAT")
        lo = 2.0 ** -bits if q.symmetric else None
        return QuantSpec("quant_act", t, text, {"function": "round", "shift": 1, "offset": 0.5, "lo": lo})
    if cls == "binary":
        _no_stochastic(q, layer, role, text)
        if isinstance(q.alpha, str):
            raise FrontendError(f"layer {layer!r}: activation quantizer {text}: alpha={q.alpha!r} scales by the data; "
                                f"use alpha=None or a number for activations")
        a = 1.0 if q.alpha is None else _float32_alpha(q.alpha, layer, role, text)
        lo = 0.0 if q.use_01 else -a
        hi = a
        return _step_spec(lo, hi, None, 0.0, True, text)       # sign(x), with sign(0) = +1
    if cls == "ternary":
        _no_stochastic(q, layer, role, text)
        if isinstance(q.alpha, str) or isinstance(q.threshold, str):
            raise FrontendError(f"layer {layer!r}: activation quantizer {text}: alpha/threshold 'auto' scale by "
                                f"the data; use numbers for activations")
        a = 1.0 if q.alpha is None else _float32_alpha(q.alpha, layer, role, text)
        thr = q.default_threshold if q.threshold is None else float(q.threshold)
        # |x| >= float32(threshold) -> sign(x) * alpha, else 0
        return _step_spec(-a, a, 0.0, float(np.float32(thr)), True, text)
    if cls in ("quantized_po2", "quantized_relu_po2"):
        _no_stochastic(q, layer, role, text)
        bits = _as_int(q.bits, "bits", layer)
        if bits < 2 or bits > 8:
            raise FrontendError(f"layer {layer!r}: activation quantizer {text}: bits must be between 2 and 8")
        attrs = {"function": "table", "fn": "po2" if cls == "quantized_po2" else "relu_po2", "bits": bits,
                 "min_exp": int(q._min_exp), "max_exp": int(q._max_exp),
                 "max_value": None if q.max_value is None else float(q.max_value),
                 "quadratic": bool(q.quadratic_approximation), "log2_rounding": str(q.log2_rounding),
                 "negative_slope": float(getattr(q, "negative_slope", 0.0) or 0.0)}
        return QuantSpec("quant_act", None, text, attrs)
    if cls.startswith(("stochastic", "bernoulli")):
        raise FrontendError(f"layer {layer!r}: activation quantizer {text} ({cls}) samples random numbers and has "
                            f"no hardware equivalent; use binary/ternary")
    raise FrontendError(f"layer {layer!r}: activation quantizer {text or cls} ({cls}) is not supported yet; supported: "
                        f"quantized_bits, quantized_relu, quantized_tanh, quantized_sigmoid, quantized_po2, quantized_relu_po2, binary, ternary, "
                        f"{', '.join(QKERAS_FUNCTIONS)}")


# ---------------------------------------------------------------------------- weights
@dataclass
class WeightQuant:
    values: np.ndarray           # the quantized values the multipliers see (scale divided out)
    type: FixedType              # their exact type (TRN, WRAP)
    text: str
    scale: np.ndarray | None     # per output channel power-of-two scale (apply_scale), or None


_WEIGHT_QUANTIZERS = ("quantized_bits", "binary", "ternary", "quantized_po2")


def quantize_weights(q, values: np.ndarray, layer: str, role: str) -> WeightQuant:
    """Quantize ``values`` (kernel: output channels last; bias) with QKeras' own quantizer, in TensorFlow."""
    q = resolve_quantizer(q)
    cls = type(q).__name__
    text = str(q)
    if cls.startswith(("stochastic", "bernoulli")):
        raise FrontendError(f"layer {layer!r}: {role} quantizer {text} ({cls}) samples random numbers and has no "
                            f"hardware equivalent; use {cls.replace('stochastic_', '') if cls != 'bernoulli' else 'binary'}()")
    if cls not in _WEIGHT_QUANTIZERS:
        raise FrontendError(f"layer {layer!r}: {role} quantizer {text or cls} ({cls}) is not supported yet; "
                            f"supported for weights: {', '.join(_WEIGHT_QUANTIZERS)}")
    _no_stochastic(q, layer, role, text)
    alpha = getattr(q, "alpha", None)
    spec_type = None
    if cls == "quantized_bits":
        bits, integer = _bits_and_integer(q, layer, role, text)
        if isinstance(alpha, str) and alpha not in ("auto", "auto_po2"):
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: alpha={alpha!r} is not supported")
        numeric = not isinstance(alpha, str) and alpha is not None and float(np.max(alpha)) != 1.0
        if numeric:                      # a fixed number (or per-channel array): the values carry it exactly
            for a in np.ravel(alpha):
                _float32_alpha(a, layer, role, text)
        elif bits - bool(q.keep_negative) >= 1:
            spec_type = quantizer_spec(_plain_bits(q), layer, role).type.plain()
    elif cls in ("binary", "ternary"):
        if isinstance(alpha, str) and alpha not in ("auto", "auto_po2"):
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: alpha={alpha!r} is not supported")
        if alpha is not None and not isinstance(alpha, str):
            _float32_alpha(alpha, layer, role, text)
    import tensorflow as tf  # lazy: seconds to import; only Keras models need it
    w = np.asarray(q(tf.constant(values, dtype=tf.float32)).numpy(), dtype=np.float64)
    scale = None
    if isinstance(alpha, str):          # 'auto'/'auto_po2': QKeras multiplies a per-channel scale in
        s = np.asarray(getattr(q, "scale", 1.0), dtype=np.float32).astype(np.float64)
        s = np.broadcast_to(s, (1,) * (values.ndim - s.ndim) + s.shape)
        if role == "bias" or values.ndim < 2 or s.size == 1 and values.ndim == 1:
            scale = None                # a bias is kept exactly as QKeras computed it (its own exact type)
        else:
            s = np.broadcast_to(s.reshape(-1), (values.shape[-1],)).copy()
            e = np.log2(s)
            if not np.all(np.isfinite(e)) or (alpha == "auto_po2" and not np.array_equal(e, np.round(e))):
                raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: QKeras' scale {s} is not a positive "
                                    f"{'power of two' if alpha == 'auto_po2' else 'number'}")
            unscaled = w / s
            grid = np.round(unscaled * 2 ** 20) / 2 ** 20
            if np.max(np.abs(unscaled - grid), initial=0) > 1e-6:
                raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: the weights are not the scale times "
                                    f"a quantized value")
            w, scale = grid, s
    if not np.all(np.isfinite(w)):
        raise FrontendError(f"layer {layer!r}: weights contain NaN or Inf; retrain or clean the model")
    t = _value_type(w)
    if spec_type is not None and spec_type.contains(t):
        t = spec_type                    # the quantizer's own type, when it holds the values (it always should)
    if t.width > 32:
        raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: the quantized values need {t.width} bits "
                            f"({t.cpp()}); use fewer bits or a smaller max_value")
    return WeightQuant(w, t, text, scale)


def _plain_bits(q):
    """quantized_bits without its data-dependent alpha (the type of the unscaled values)."""
    from qkeras.quantizers import quantized_bits  # lazy: QKeras imports TensorFlow
    return quantized_bits(q.bits, q.integer, symmetric=q.symmetric, keep_negative=q.keep_negative, alpha=1)
