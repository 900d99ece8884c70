"""What the tool sees of a constant weight matrix: how many products vanish, become shifts, need LUT adders or a DSP.

Computed once per (kernel array, weight type) and cached: everything that does not depend on the data width,
the reuse factor or the part is kept here as cumulative tables indexed by the constant's bit width, so that the
per-estimate cost is a few lookups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir.fixed import quantize_raw  # noqa: F401  (re-exported: the estimator's weight codes)
from ..ir.types import FixedType

__all__ = ["WeightStats", "weight_stats", "quantize_raw", "csd_digits", "clear_cache"]

MAXW = 66


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


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    x = x.copy()
    n = np.zeros(x.shape, dtype=np.int64)
    while x.any():
        n += (x & 1).astype(np.int64)
        x >>= 1
    return n


def csd_digits_array(a: np.ndarray) -> np.ndarray:
    """Vectorised :func:`csd_digits` (non-adjacent-form weight = popcount(((3v) ^ v) >> 1))."""
    a = np.abs(np.asarray(a, dtype=np.int64))
    return _popcount(((3 * a) ^ a) >> 1)


@dataclass(frozen=True)
class WeightStats:
    """What constant folding leaves of a kernel.

    The calibration reports show the rule the tool follows (Vivado HLS 2020.1 and Vitis HLS 2022.2/2025.1 alike):
    a product by a constant whose canonical-signed-digit form has 1 non-zero digit is a shift, 2 digits one
    adder, 3 or more a DSP; and identical constants multiplying the same input share one product (CSE).  So the
    DSP products are the distinct signed constants per kernel row with >= 3 CSD digits."""

    n_in: int
    n_out: int
    n_total: int
    n_zero: int
    n_pow2: int                    # products that are shifts (1 CSD digit), before sharing
    max_col_nnz: int               # widest adder tree (non-zero products of one output)
    n_nonzero_bias: int
    #: uniq_ge[k] = distinct (row, signed constant) pairs whose constant has >= k CSD digits (k = 0..MAXW-1)
    uniq_ge: tuple
    #: lut_digits_lt[k] = sum over distinct (row, constant) pairs with 2 <= digits < k of (digits - 1): the
    #: shift-and-add adders of the products left to LUTs when the DSP threshold is k
    lut_digits_lt: tuple
    max_const_bits: int            # widest constant, sign included (for DSP cascades)

    @property
    def n_nonzero(self) -> int:
        return self.n_total - self.n_zero

    def split(self, min_digits: int) -> tuple[int, int, float]:
        """(DSP products, shift-and-add products, their adders) for a DSP threshold in CSD digits."""
        k = min(max(min_digits, 2), MAXW - 1)
        n_dsp = self.uniq_ge[k]
        return n_dsp, self.uniq_ge[2] - n_dsp, self.lut_digits_lt[k]


_CACHE: dict = {}


def clear_cache() -> None:
    _CACHE.clear()


def weight_stats(kernel: np.ndarray, wtype: FixedType, bias: np.ndarray | None = None,
                 btype: FixedType | None = None) -> WeightStats:
    """Stats of a (n_in, n_out) kernel quantized to ``wtype`` (cached per array object and types)."""
    key = (id(kernel), wtype, id(bias), btype)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is kernel and hit[1] is bias:
        return hit[2]
    k = np.asarray(kernel)
    k2 = k.reshape(-1, k.shape[-1]) if k.ndim != 2 else k
    raw = quantize_raw(k2, wtype)
    nz = raw != 0
    digits = csd_digits_array(raw)
    srt = np.sort(raw, axis=1)
    first = np.ones(srt.shape, dtype=bool)
    first[:, 1:] = srt[:, 1:] != srt[:, :-1]
    uniq = first & (srt != 0)
    ud = csd_digits_array(srt)[uniq]
    hist = np.bincount(ud, minlength=MAXW)[:MAXW]
    uniq_ge = np.cumsum(hist[::-1])[::-1]
    adders = np.where(np.arange(MAXW) >= 2, hist * (np.arange(MAXW) - 1), 0)
    lut_digits_lt = np.concatenate([[0], np.cumsum(adders)[:-1]])
    a = np.abs(raw)
    nnz_bias = 0
    if bias is not None:
        nnz_bias = int(np.count_nonzero(quantize_raw(bias, btype or wtype)))
    st = WeightStats(
        n_in=int(k2.shape[0]), n_out=int(k2.shape[1]), n_total=int(raw.size), n_zero=int((~nz).sum()),
        n_pow2=int((nz & (digits == 1)).sum()), max_col_nnz=int(nz.sum(axis=0).max()) if raw.size else 0,
        n_nonzero_bias=nnz_bias, uniq_ge=tuple(int(x) for x in uniq_ge),
        lut_digits_lt=tuple(int(x) for x in lut_digits_lt),
        max_const_bits=int(a.max()).bit_length() + 1 if raw.size else 0)
    _CACHE[key] = (kernel, bias, st)
    return st
