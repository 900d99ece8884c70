"""What the tool sees of a constant weight matrix: how many products vanish, become shifts, need LUT adders or a DSP.

Computed once per (kernel array, weight type) and cached: everything that does not depend on the data width,
the reuse factor or the part is kept here as cumulative tables indexed by the constant's bit width, so that the
per-estimate cost is a few lookups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir.types import FixedType

__all__ = ["WeightStats", "weight_stats", "quantize_raw", "csd_digits", "clear_cache"]

MAXW = 66


def quantize_raw(w: np.ndarray, t: FixedType) -> np.ndarray:
    """The integers the C++ compiler stores for ``w`` in type ``t`` (its rounding and overflow modes)."""
    x = np.asarray(w, dtype=np.float64) * (2.0 ** t.frac)
    if t.rounding == "TRN":
        r = np.floor(x)
    elif t.rounding == "TRN_ZERO":
        r = np.trunc(x)
    elif t.rounding == "RND_CONV":
        r = np.round(x)
    elif t.rounding == "RND_ZERO":
        r = np.where(x >= 0, np.ceil(x - 0.5), np.floor(x + 0.5))
    elif t.rounding == "RND_MIN_INF":
        r = np.ceil(x - 0.5)
    else:       # RND, RND_INF
        r = np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5))
    r = r.astype(np.int64) if t.width < 63 else r
    lo, hi = t.raw_min, t.raw_max
    if t.saturation == "WRAP":
        span = 1 << t.width
        r = ((r - lo) % span) + lo
    else:
        if t.saturation == "SAT_SYM" and t.signed:
            lo = -hi
        r = np.clip(r, lo, hi)
    return np.asarray(r, dtype=np.int64)


def csd_digits(v: int) -> int:
    """Non-zero digits of the canonical signed-digit form of ``v`` (the adders of a shift-and-add multiply + 1)."""
    v = abs(int(v))
    n = 0
    while v:
        if v & 1:
            d = 2 - (v & 3)       # +1 or -1
            v -= d
            n += 1
        v >>= 1
    return n


@dataclass(frozen=True)
class WeightStats:
    n_in: int
    n_out: int
    n_total: int
    n_zero: int
    n_pow2: int                    # |c| a power of two: a shift
    max_col_nnz: int               # widest adder tree (non-zero products of one output)
    n_nonzero_bias: int
    #: count_ge[b] = products whose constant needs >= b bits (sign included, trailing zeros stripped),
    #: powers of two excluded
    count_ge: tuple
    #: lut_a[b] = sum over non-pow2 constants narrower than b bits of (csd - 1);  lut_b[b] = same, times width
    lut_a: tuple
    lut_b: tuple
    max_const_bits: int            # widest constant (for DSP cascades)

    def split(self, min_bits: int) -> tuple[int, int, float, float]:
        """(products on DSPs, products in LUT adders, sum of (csd-1), sum of (csd-1)*const_bits) for a threshold."""
        b = min(max(min_bits, 0), MAXW - 1)
        n_dsp = self.count_ge[b]
        n_nonzero = self.n_total - self.n_zero
        return n_dsp, n_nonzero - self.n_pow2 - n_dsp, self.lut_a[b], self.lut_b[b]


_CACHE: dict = {}


def clear_cache() -> None:
    _CACHE.clear()


def weight_stats(kernel: np.ndarray, wtype: FixedType, bias: np.ndarray | None = None,
                 btype: FixedType | None = None) -> WeightStats:
    """Stats of a 2-D (n_in, n_out) kernel quantized to ``wtype`` (cached per array object and type)."""
    key = (id(kernel), kernel.shape, wtype, id(bias), btype)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is kernel and hit[1] is bias:
        return hit[2]
    k2 = np.asarray(kernel).reshape(-1, kernel.shape[-1]) if kernel.ndim != 2 else np.asarray(kernel)
    raw = quantize_raw(k2, wtype)
    a = np.abs(raw)
    nz = a != 0
    # strip trailing zeros: odd part
    odd = a.copy()
    for _ in range(64):
        even = nz & ((odd & 1) == 0)
        if not even.any():
            break
        odd[even] >>= 1
    pow2 = nz & (odd == 1)
    # constant width: magnitude bits + sign bit
    bits = np.zeros(a.shape, dtype=np.int64)
    if nz.any():
        bits[nz] = np.floor(np.log2(odd[nz].astype(np.float64))).astype(np.int64) + 2
    other = nz & ~pow2
    hist = np.bincount(bits[other].ravel(), minlength=MAXW)[:MAXW]
    csd_m1 = np.zeros(MAXW)
    csd_w = np.zeros(MAXW)
    if other.any():
        vals, counts = np.unique(odd[other], return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist()):
            b = int(v).bit_length() + 1
            d = csd_digits(v) - 1
            csd_m1[b] += d * c
            csd_w[b] += d * c * b
    count_ge = np.cumsum(hist[::-1])[::-1]
    lut_a = np.concatenate([[0.0], np.cumsum(csd_m1)[:-1]])
    lut_b = np.concatenate([[0.0], np.cumsum(csd_w)[:-1]])
    nnz_bias = 0
    if bias is not None:
        nnz_bias = int(np.count_nonzero(quantize_raw(bias, btype or wtype)))
    st = WeightStats(
        n_in=int(k2.shape[0]), n_out=int(k2.shape[1]), n_total=int(raw.size), n_zero=int((~nz).sum()),
        n_pow2=int(pow2.sum()), max_col_nnz=int(nz.sum(axis=0).max()) if raw.size else 0,
        n_nonzero_bias=nnz_bias,
        count_ge=tuple(int(x) for x in count_ge), lut_a=tuple(float(x) for x in lut_a),
        lut_b=tuple(float(x) for x in lut_b), max_const_bits=int(bits.max()) if raw.size else 0)
    _CACHE[key] = (kernel, bias, st)
    return st
