"""QKeras quantizers -> exact fixed-point types.

quantized_bits(b, i, keep_negative=True, alpha=1|None)  -> ap_fixed<b, i+1, AP_RND_CONV, AP_SAT>
quantized_bits(b, i, keep_negative=False, ...)          -> ap_ufixed<b, i, AP_RND_CONV, AP_SAT>
quantized_relu(b, i)                                    -> ap_ufixed<b, i, AP_RND_CONV, AP_SAT> after a relu

QKeras rounds with tf.round (half to even) and clips: exactly AP_RND_CONV with AP_SAT.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.types import FixedType
from .loader import FrontendError

__all__ = ["QuantSpec", "quantizer_spec", "resolve_quantizer"]


@dataclass(frozen=True)
class QuantSpec:
    kind: str            # 'bits' (a cast) or 'relu' (relu, then a cast)
    type: FixedType
    text: str


def resolve_quantizer(q):
    """A quantizer object from what a QKeras layer holds (object, string or config dict)."""
    if q is None:
        return None
    if isinstance(q, (str, dict)):
        from qkeras.quantizers import get_quantizer
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


def quantizer_spec(q, layer: str, role: str) -> QuantSpec:
    """Map a QKeras quantizer to its exact type, or fail naming the layer and the unsupported option."""
    q = resolve_quantizer(q)
    cls = type(q).__name__
    text = str(q)
    if cls == "quantized_bits":
        bits = _as_int(q.bits, "bits", layer)
        integer = _as_int(q.integer, "integer", layer)
        keep_negative = bool(q.keep_negative)
        if bits < 1 or bits > 32:
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: bits must be between 1 and 32")
        if integer < 0:
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: integer={integer} is negative, which "
                                f"QKeras cannot compute (TensorFlow refuses the negative power); use integer >= 0")
        if bits - keep_negative < 1:
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: 1-bit quantized_bits (binary) is not "
                                f"supported yet; use bits >= 2")
        alpha = q.alpha
        if isinstance(alpha, str):
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: alpha={alpha!r} is not supported yet; "
                                f"use alpha=1")
        if alpha is not None and float(alpha) != 1.0:
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: alpha={alpha} is not supported yet; "
                                f"use alpha=1")
        if getattr(q, "use_stochastic_rounding", False):
            raise FrontendError(f"layer {layer!r}: {role} quantizer {text}: stochastic rounding has no hardware "
                                f"equivalent; set use_stochastic_rounding=False")
        if q.symmetric and role == "activation":
            raise FrontendError(f"layer {layer!r}: activation quantizer {text}: symmetric=True is not supported yet "
                                f"for activations; use symmetric=0")
        if keep_negative:
            t = FixedType(bits, integer + 1, True, "RND_CONV", "SAT")
        else:
            t = FixedType(bits, integer, False, "RND_CONV", "SAT")
        return QuantSpec("bits", t, text)
    if cls == "quantized_relu":
        bits = _as_int(q.bits, "bits", layer)
        integer = _as_int(q.integer, "integer", layer)
        if getattr(q, "use_sigmoid", 0):
            raise FrontendError(f"layer {layer!r}: {text}: use_sigmoid is not supported; use use_sigmoid=0")
        if getattr(q, "negative_slope", 0.0):
            raise FrontendError(f"layer {layer!r}: {text}: negative_slope is not supported yet; use 0")
        if getattr(q, "use_stochastic_rounding", False):
            raise FrontendError(f"layer {layer!r}: {text}: stochastic rounding has no hardware equivalent")
        if not getattr(q, "is_quantized_clip", True) or getattr(q, "relu_upper_bound", None):
            raise FrontendError(f"layer {layer!r}: {text}: relu_upper_bound / is_quantized_clip=False are not "
                                f"supported; use the defaults")
        if bits < 1 or bits > 32:
            raise FrontendError(f"layer {layer!r}: {text}: bits must be between 1 and 32")
        if integer < 0:
            raise FrontendError(f"layer {layer!r}: {text}: integer={integer} is negative, which QKeras cannot compute "
                                f"(TensorFlow refuses the negative power); use integer >= 0")
        return QuantSpec("relu", FixedType(bits, integer, False, "RND_CONV", "SAT"), text)
    raise FrontendError(f"layer {layer!r}: {role} quantizer {text or cls} ({cls}) is not supported yet; "
                        f"supported: quantized_bits, quantized_relu")
