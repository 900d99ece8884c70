"""Quant nodes with float (non-power-of-two) scales, as FINN handles them: the FPGA computes on integer codes.

A tensor after such a Quant is held as its integer codes k (real value k * s).  A Gemm/Conv on codes multiplies
by the weights' integer codes (exact, small accumulators) and leaves a pending per-channel affine: real =
acc * S[c] + B[c], S = float32(s_x * s_w[c]), B the float bias (then maybe a Relu).  The next Quant (scale s')
is a monotonic step function of acc per channel: a quant_act 'multithreshold' whose thresholds are the smallest
accumulators reaching each level, found by evaluating the quantizer the way qonnx does (its own min_int,
max_int and rounding functions, float32 division) on float32(float32(acc * S) + B) -- so the levels equal
execute_onnx's wherever its float32 Gemm lands on the same side of a rounding boundary as this one (it sums
float32 products; test_qonnx measures the agreement).  A quantized tensor the model outputs becomes its
float32 values (codes -> float32(k * s), a 'table'); a pending affine at the output an exact apply_scale.
"""

from __future__ import annotations

import numpy as np

__all__ = ["quant_codes", "level_thresholds", "float_thresholds"]


def _qfuns(bitwidth: int, signed: bool, narrow: bool, mode: str):
    from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode
    lo, hi = int(min_int(signed, narrow, bitwidth)), int(max_int(signed, narrow, bitwidth))
    return lo, hi, resolve_rounding_mode(mode)


def quant_codes(y: np.ndarray, bitwidth: int, signed: bool, narrow: bool, mode: str) -> np.ndarray:
    """The integer code qonnx's int_quant gives for y = x / scale (already divided, float32; zero point 0)."""
    y = np.asarray(y, dtype=np.float32)
    if bitwidth == 1 and signed:
        return np.where(y >= 0.0, 1.0, -1.0)
    lo, hi, rnd = _qfuns(bitwidth, signed, narrow, mode)
    y = np.where(y > hi, np.float32(hi), y)
    y = np.where(y < lo, np.float32(lo), y)
    return np.asarray(rnd(y), dtype=np.float64)


def level_thresholds(real_of, lo_a: int, hi_a: int, n_chan: int, s: float, bitwidth: int, signed: bool,
                     narrow: bool, mode: str) -> tuple[np.ndarray, int, int]:
    """For integers a in [lo_a, hi_a]: (thresholds (n_chan, n_levels - 1), first level, last level) with
    code(a) = first + number of thresholds <= a, code(a) the quantizer on real_of(a, chan) (float32).
    Thresholds no a reaches are hi_a + 1; the function must be non-decreasing in a (positive scales).  Not for
    1-bit signed (bipolar) quantizers: their two codes are not consecutive."""
    first, last, _ = _qfuns(bitwidth, signed, narrow, mode)
    levels = np.arange(first + 1, last + 1)
    s32 = np.float32(s)

    def code(a, c):
        return quant_codes(np.asarray(real_of(a, c), np.float32) / s32, bitwidth, signed, narrow, mode)

    chans = np.repeat(np.arange(n_chan), len(levels))
    want = np.tile(levels, n_chan).astype(np.float64)
    lo = np.full(chans.shape, lo_a, dtype=np.int64)          # invariant: code(lo - 1) < want <= code(hi)
    hi = np.full(chans.shape, hi_a + 1, dtype=np.int64)
    # smallest a with code(a) >= want (hi_a + 1: none)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = code(mid.astype(np.float64), chans) >= want
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    return lo.reshape(n_chan, len(levels)).astype(np.float64), first, last


def float_thresholds(s: float, bitwidth: int, signed: bool, narrow: bool, mode: str) -> tuple[np.ndarray, int]:
    """A Quant on real float32 inputs: the smallest float32 x reaching each level (one channel), and the
    first level.  Binary search over float32 values in their order (not for 1-bit signed quantizers)."""
    first, last, _ = _qfuns(bitwidth, signed, narrow, mode)
    levels = np.arange(first + 1, last + 1, dtype=np.float64)
    s32 = np.float32(s)

    def to_f(k):            # ordered int -> float32 (negative floats: the bit pattern reversed)
        k = np.asarray(k, dtype=np.int64)
        bits = np.where(k >= 0, k, (-k - 1) | (1 << 31)).astype(np.uint32)
        return bits.view(np.float32)

    inf_key = 0x7F800000                     # +inf
    lo = np.full(levels.shape, -inf_key - 1, dtype=np.int64)
    hi = np.full(levels.shape, inf_key, dtype=np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = quant_codes(to_f(mid) / s32, bitwidth, signed, narrow, mode) >= levels
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    thr = to_f(lo).astype(np.float64)
    if not np.all(np.isfinite(thr)):
        raise ValueError("a level is reached only at infinity")
    return thr.reshape(1, -1), int(first)
