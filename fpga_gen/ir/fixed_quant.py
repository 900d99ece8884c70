"""The per-element constants of the fixed_quant op, one definition for the emulator kernel and the HLS writer.

Element j of a fixed_quant node (keep_negative k, integer bits i, fraction bits f; input type xt, result type rt)
is computed on raw integer codes: ``shift = xt.frac - f`` bits rounded off the input code (shift <= 0: the code
is multiplied by 2**-shift, exact), the rounded code R brought into [lo, hi] (SAT/SAT_SYM: clamped; WRAP:
reduced modulo 2**(k+i+f) into [-k 2**(i+f), 2**(i+f))), then multiplied by 2**out_shift, ``out_shift =
rt.frac - f``.  Elements with k + i + f <= 0 give 0 (``live`` False)."""

from __future__ import annotations

import numpy as np

from .types import FixedType

__all__ = ["fixed_quant_params", "FIXED_QUANT_ROUNDING", "FIXED_QUANT_OVERFLOW"]

FIXED_QUANT_ROUNDING = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
FIXED_QUANT_OVERFLOW = ("WRAP", "SAT", "SAT_SYM")


def fixed_quant_params(k, i, f, overflow: str, xt: FixedType, rt: FixedType) -> dict[str, np.ndarray]:
    """Per element (int64 arrays): shift, out_shift, lo, hi, bits (k + i + f, 0 for dead elements), live."""
    k, i, f = (np.asarray(a, dtype=np.float64).astype(np.int64) for a in (k, i, f))
    bits = k + i + f
    live = bits > 0
    i = np.maximum(i, -f)
    frac_bits = np.where(live, i + f, 0)
    hi = np.where(live, (np.int64(1) << frac_bits) - 1, 0)
    if overflow == "SAT_SYM":
        lo = -k * hi
    else:
        lo = -k * np.where(live, np.int64(1) << frac_bits, 0)
    return {"shift": np.where(live, xt.frac - f, 0), "out_shift": np.where(live, rt.frac - f, 0),
            "lo": np.where(live, lo, 0), "hi": hi, "bits": np.where(live, bits, 0), "live": live}


def softmax_diff_type(xt: FixedType) -> FixedType:
    """hgq_softmax's max(x) - x: non-negative, at most the input type's span (one more bit holds it exactly)."""
    return FixedType(min(xt.width + 1, 64), xt.integer + 1, True)
