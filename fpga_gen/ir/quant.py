"""Intermediate types of the quant_act and apply_scale ops: one definition, used by the emulator
kernel and the HLS writer alike, so both compute with the same exact types."""

from __future__ import annotations

import math

import numpy as np

from .types import FixedType, exact_type_for_range

__all__ = ["value_frac", "exact_value_type", "affine_type", "leaky_types", "scale_sum_type", "multithreshold_type"]


def multithreshold_type(thresholds, xt: FixedType) -> FixedType:
    """The type of a quant_act 'multithreshold''s thresholds: the smallest signed type holding them all and every
    value of the input type xt exactly; the C++ compares in it (ap_fixed's own >= of an ap_ufixed with a negative
    ap_fixed of another type is wrong: ap_ufixed<8,2>(3.75) >= ap_fixed<33,2>(-1.5) gives false)."""
    t = exact_value_type(thresholds)
    frac = max(t.frac, xt.frac)
    integer = max(t.integer, xt.integer + (0 if xt.signed else 1), 1)
    return FixedType(integer + frac, integer, True)


def value_frac(v: float) -> int | None:
    """Fraction bits a nonzero dyadic value needs (negative for multiples of 2, 4, ...); None for 0."""
    if v == 0:
        return None
    m, e = math.frexp(abs(v))
    mant = int(m * 2 ** 53)
    tz = (mant & -mant).bit_length() - 1
    return 53 - e - tz


def exact_value_type(values) -> FixedType:
    """The smallest type (TRN, WRAP) that holds every (dyadic) value exactly."""
    vals = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()] or [0.0]
    frac = max([value_frac(v) for v in vals if v != 0] or [0])
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    return exact_type_for_range(math.floor(lo * 2 ** frac), math.ceil(hi * 2 ** frac), frac, force_signed=lo < 0)


def affine_type(xt: FixedType, shift: int, offset: float) -> FixedType:
    """The exact type of x * 2**-shift + offset, x anywhere in xt.  It also holds x itself (the C++
    assigns x, shifts it right in place, then adds offset), so it has xt's integer bits at least."""
    frac = max(xt.frac + shift, value_frac(offset) or 0)
    lo = min(xt.min * 2.0 ** -shift + offset, xt.min)
    hi = max(xt.max * 2.0 ** -shift + offset, xt.max)
    return exact_type_for_range(math.floor(lo * 2 ** frac), math.ceil(hi * 2 ** frac), frac, force_signed=True)


def leaky_types(xt: FixedType, shift: int, bits: int, integer: int) -> dict[str, FixedType]:
    """quantized_relu with negative_slope 2**-shift: 'pos' the positive branch's cast, 'negw' holds x
    and x * 2**-shift exactly, 'neg' rounds s*x to the step 2**(integer-bits+1) without overflow."""
    step_frac = bits - 1 - integer
    negw = FixedType(min(xt.width + shift + (0 if xt.signed else 1), 64), xt.integer + (0 if xt.signed else 1), True)
    lo = math.floor(min(xt.min, 0.0) * 2.0 ** -shift * 2 ** step_frac) - 1
    neg = exact_type_for_range(lo, 1, step_frac, force_signed=True).with_modes("RND_CONV", "WRAP")
    return {"pos": FixedType(bits - 1, integer, False, "RND_CONV", "SAT"), "negw": negw, "neg": neg}


def scale_sum_type(xt: FixedType, st: FixedType, bt: FixedType, scale, bias) -> FixedType:
    """The exact type of x * scale + bias (what nnet::normalize computes before the cast to the result)."""
    frac = max(xt.frac + st.frac, bt.frac)
    his, los = [], []
    for s, b in zip(scale, bias):
        a, c = xt.min * s, xt.max * s
        los.append(min(a, c) + b)
        his.append(max(a, c) + b)
    return exact_type_for_range(math.floor(min(los) * 2 ** frac), math.ceil(max(his) * 2 ** frac), frac,
                                force_signed=True)
