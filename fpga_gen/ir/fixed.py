"""Bit-exact ap_fixed arithmetic on arrays: the specification every back end must meet.

A fixed-point tensor is carried as its *raw* integers (``value = raw * 2**-frac``) stored
in float64 arrays.  Every raw integer this code produces stays below 2**53 in magnitude,
so float64 holds it exactly, and float64 matrix products of such integers are exact as
long as every partial sum stays below 2**53 — :func:`fits_float64_matmul` checks that
from the types before a kernel relies on it.  Float64 is used (rather than int64) because
BLAS makes the matrix products fast, on numpy and on PyTorch alike.  Between the kernels that
accept them, the numpy emulator carries the codes of types of at most 24 bits in float32 instead
(:func:`is_narrow`), where every step of those kernels is exact in float32.

The functions take an ``xp`` namespace (numpy by default; :mod:`fpga_gen.emulate.torch_ops`
supplies the same names for PyTorch) so one definition serves every array library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import numpy as np

from .types import FixedType

__all__ = ["NumpyOps", "cast", "from_float", "to_float", "quantize_values", "quantize_raw", "fits_float64_matmul",
           "EXACT_LIMIT", "EXACT_LIMIT_FLOAT32", "EmulationRangeError", "is_narrow", "is_noop_cast",
           "float32_rounding_exact"]

EXACT_LIMIT = 2.0 ** 53
EXACT_LIMIT_FLOAT32 = 2.0 ** 24


class EmulationRangeError(ValueError):
    pass


class NumpyOps:
    """The handful of array operations the fixed-point kernels need."""

    name = "numpy"
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    trunc = staticmethod(np.trunc)
    rint = staticmethod(np.rint)          # round half to even
    abs = staticmethod(np.abs)
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    isfinite = staticmethod(np.isfinite)
    isnan = staticmethod(np.isnan)
    signbit = staticmethod(np.signbit)

    # float32 BLAS products of integers are exact while every partial sum stays below 2**24 (the dense
    # kernel checks that); numpy's sgemm is 2-3x faster than its dgemm on the emulator's shapes
    exact_float32 = True

    @staticmethod
    def asarray(x):
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def float32(x):
        """x as float32 (exact only for values with at most 24 significant bits: the caller checks)."""
        return np.asarray(x, dtype=np.float32)

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)

    @staticmethod
    def clip(x, lo, hi, out=None):
        return np.clip(x, lo, hi, out=out)

    @staticmethod
    def mod(x, m):
        return np.mod(x, m)

    @staticmethod
    def matmul(a, b):
        return a @ b

    @staticmethod
    def max(x, axis):
        return np.max(x, axis=axis, keepdims=True)

    @staticmethod
    def sum(x, axis):
        return np.sum(x, axis=axis)

    @staticmethod
    def take(table, idx):
        return np.asarray(table, dtype=np.float64)[idx.astype(np.int64)]

    @staticmethod
    def take_columns(x, idx):
        """``x[:, idx]`` of 2-D x for a 1-D integer index, C-contiguous (numpy's x[:, idx] is laid out
        column-major, and reshaping it afterwards costs a slow strided copy)."""
        return np.take(x, np.asarray(idx, dtype=np.intp), axis=1)

    @staticmethod
    def reshape(x, shape):
        return np.reshape(x, shape)

    @staticmethod
    def zeros_like(x):
        return np.zeros_like(x)

    @staticmethod
    def concat(arrays, axis=0):
        return np.concatenate(arrays, axis=axis)


NP = NumpyOps()


def _quantize_scaled(v, mode: str, xp, out=None):
    """Round real-valued ``v`` (= value * 2**frac) to an integer with ap_fixed quantization ``mode``.

    ``out=v`` rounds in place (``v`` must then be an array this code owns); the same float
    operations run in the same order, so the bits are those of the allocating form.
    """
    if mode == "TRN":
        return xp.floor(v) if out is None else xp.floor(v, out=out)
    if mode == "TRN_ZERO":
        return xp.trunc(v) if out is None else xp.trunc(v, out=out)
    if mode == "RND":                      # half towards +inf
        if out is None:
            return xp.floor(v + 0.5)
        out += 0.5
        return xp.floor(out, out=out)
    if mode == "RND_MIN_INF":              # half towards -inf
        if out is None:
            return xp.ceil(v - 0.5)
        out -= 0.5
        return xp.ceil(out, out=out)
    if mode == "RND_ZERO":                 # half towards zero
        return xp.where(v >= 0, xp.ceil(v - 0.5), xp.floor(v + 0.5))
    if mode == "RND_INF":                  # half away from zero
        return xp.where(v >= 0, xp.floor(v + 0.5), xp.ceil(v - 0.5))
    if mode == "RND_CONV":                 # half to even
        return xp.rint(v) if out is None else xp.rint(v, out=out)
    raise ValueError(f"unknown rounding mode {mode}")


def _is_array(v) -> bool:
    """True for an array of rank >= 1 (numpy or torch): one that in-place operations can write to."""
    return getattr(v, "ndim", 0) > 0


def _within(r, lo: float, hi: float) -> bool:
    """True when every element of r lies in [lo, hi] (two cheap reductions; the wrap costs more)."""
    try:
        return float(r.min()) >= lo and float(r.max()) <= hi
    except (ValueError, RuntimeError):      # empty array
        return True


def _overflow(r, t: FixedType, xp, inplace: bool = False):
    """Overflow handling of ``t`` on raw integers ``r`` (``inplace``: ``r`` is an array this code owns)."""
    lo, hi = float(t.sat_min), float(t.raw_max)
    if _within(r, lo, hi):
        return r
    if t.saturation == "WRAP":
        span = float(1 << t.width)
        return xp.mod(xp.mod(r, span) - lo, span) + lo   # inner mod first: exact even for |r| >= 2**53
    if t.saturation in ("SAT", "SAT_SYM"):    # SAT_SYM, signed, >= 2 bits: the most negative code is never produced (sat_min)
        return xp.clip(r, lo, hi, out=r) if inplace and _is_array(r) else xp.clip(r, lo, hi)
    if t.saturation == "SAT_ZERO":
        return xp.where((r < lo) | (r > hi), xp.zeros_like(r), r)
    raise ValueError(f"unknown saturation mode {t.saturation}")


def cast(raw, src: FixedType, dst: FixedType, xp=NP, inplace: bool = False):
    """Raw integers of ``src`` -> raw integers of ``dst``, exactly as ``(dst) x`` in C++.

    ``inplace=True``: ``raw`` is a temporary of the caller's, which the cast may overwrite and
    return (one buffer instead of a new array per step; the bits are the same).
    """
    shift = dst.frac - src.frac
    if shift == 0 and _in_range(src, dst, 0):
        return raw                          # same grid, no overflow possible: nothing to do
    if inplace and _is_array(raw):
        r = raw
        if shift != 0:
            r *= 2.0 ** shift               # exact: scaling by a power of two
    else:
        r = raw * (2.0 ** shift)            # a new array: the steps below may work in place on it
    if shift < 0:
        r = _quantize_scaled(r, dst.rounding, xp, out=r if _is_array(r) else None)
    if _in_range(src, dst, shift):
        return r
    return _overflow(r, dst, xp, inplace=True)


def _in_range(src: FixedType, dst: FixedType, shift: int) -> bool:
    """True when no value of src can overflow dst after the shift (so overflow handling is a no-op)."""
    if shift >= 0:
        lo, hi = src.raw_min << shift, src.raw_max << shift
    else:
        # rounding can push the value up by one LSB at most
        lo, hi = (src.raw_min >> -shift) - 1, (src.raw_max >> -shift) + 1
    dst_min = dst.sat_min
    return dst_min <= lo and hi <= dst.raw_max


# ---------------------------------------------------------------------------- narrow (float32) values
# Between the nodes that accept them (see kernels.NARROW_INPUTS), the numpy emulator may carry the raw codes of
# a type of width <= 24 in float32 instead of float64: every such code is exact in float32, half the memory.
def is_narrow(x) -> bool:
    """True for a float32 numpy array of raw codes (a narrow value; never produced on TorchOps)."""
    return isinstance(x, np.ndarray) and x.dtype == np.float32


def is_noop_cast(src: FixedType, dst: FixedType) -> bool:
    """True when ``cast(raw, src, dst)`` returns ``raw`` itself (same grid, no overflow possible)."""
    return dst.frac == src.frac and _in_range(src, dst, 0)


def float32_rounding_exact(src: FixedType, shift: int, mode: str) -> bool:
    """True when ``_quantize_scaled(raw * 2**shift, mode)`` on float32 raw codes of ``src`` (width <= 24) runs
    on exact float32 values only, so it gives the float64 form's bits: scaling by a power of two is exact while
    the exponent stays in float32's normal range, floor/ceil/trunc/rint are exact, and ``v +- 0.5`` is exact
    while the numerator |raw| + 2**(k-1) over 2**k (k = -shift) stays within 2**24."""
    if src.width > 24 or abs(shift) > 64:
        return False
    if shift >= 0 or mode in ("TRN", "TRN_ZERO", "RND_CONV"):
        return True
    return max(abs(src.raw_min), abs(src.raw_max)) + 2 ** (-shift - 1) <= 2 ** 24


def from_float(x, dst: FixedType, xp=NP):
    """Real numbers (float64) -> raw integers of ``dst``, as ``dst(double)`` in C++.

    Like the AMD headers, NaN and +-inf behave as a huge value of their sign bit: 0 under WRAP,
    the extreme value under SAT.
    """
    x = xp.asarray(x)
    scale = 2.0 ** dst.frac
    v = x * scale
    if _is_array(v):
        # the common case, in place on one buffer: every scaled value finite (a NaN or inf makes the
        # min or the max non-finite; then the general path below runs on x from the start)
        r = _quantize_scaled(v, dst.rounding, xp, out=v)
        try:
            lo, hi = float(r.min()), float(r.max())
        except (ValueError, RuntimeError):  # empty
            return r
        if math.isfinite(lo) and math.isfinite(hi):
            t_lo = float(dst.sat_min)
            if lo >= t_lo and hi <= float(dst.raw_max):
                return r                    # what _overflow returns when every value is in range
            return _overflow(r, dst, xp, inplace=True)
    finite = xp.isfinite(x * scale)         # a finite x near 1e308 can scale to inf: treat it as inf
    # exact: scaling by a power of two; floor/rint of a float >= 2**52 is the float itself, and
    # the wrap-around (fmod) is exact for every float, so huge values need no special case.
    all_finite = bool(finite.all())
    v = x * scale if all_finite else xp.where(finite, x, xp.zeros_like(x)) * scale
    if not all_finite:
        huge = 2.0 ** (dst.width + 8)
        v = xp.where(finite, v, xp.where(xp.signbit(x), -huge + xp.zeros_like(x), huge + xp.zeros_like(x)))
    return _overflow(_quantize_scaled(v, dst.rounding, xp), dst, xp)


def to_float(raw, t: FixedType):
    """Raw integers -> their real values (float64; exact).  A zero is always +0.0, as ap_fixed's to_double()
    gives it: a raw zero may carry either sign (ceil(-0.3), a clip to a bound of 0, a sum that cancels), and
    which sign depends on the library's kernel (numpy's clip and CUDA's clamp pick different ones), while the
    fixed-point value has none.  ``+ 0.0`` maps -0.0 to +0.0 and leaves every other value as it is."""
    return raw * (2.0 ** -t.frac) + 0.0


def quantize_values(values, t: FixedType) -> np.ndarray:
    """Real values -> the real values of ``t`` they convert to (numpy)."""
    return to_float(from_float(np.asarray(values, dtype=np.float64), t), t)


def fits_float64_matmul(x: FixedType, w_raw_abs_sum: float) -> bool:
    """True when sum_i |x_raw| * |w_raw| < 2**53 for any input: float64 BLAS is then exact."""
    return max(abs(x.raw_min), abs(x.raw_max)) * w_raw_abs_sum < EXACT_LIMIT


# ---------------------------------------------------------------------------- C float maths
@functools.lru_cache(maxsize=None)
def _libm():
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    lib.expf.restype = ctypes.c_float
    lib.expf.argtypes = [ctypes.c_float]
    return lib


def c_expf(values) -> np.ndarray:
    """std::exp(float) of the C library, element by element (the tables the C++ builds use it)."""
    lib = _libm()
    vals = np.asarray(values, dtype=np.float32)
    return np.array([lib.expf(float(v)) for v in vals.ravel()], dtype=np.float32).reshape(vals.shape)


def c_libm(name: str, values) -> np.ndarray:
    """A one-argument function of the C library (``tanhf``, ``log``, ...) element by element; the
    ``f``-suffixed ones in float, the others in double, as the compiled C++ calls them."""
    lib = _libm()
    ctype = ctypes.c_float if name.endswith("f") else ctypes.c_double
    dtype = np.float32 if name.endswith("f") else np.float64
    fn = getattr(lib, name)
    fn.restype, fn.argtypes = ctype, [ctype]
    vals = np.asarray(values, dtype=dtype)
    return np.array([fn(float(v)) for v in vals.ravel()], dtype=dtype).reshape(vals.shape)


def raw_from_top_bits(i: int, t: FixedType, n_bits: int) -> int:
    """The raw value of ``t`` whose top ``n_bits`` bits are ``i`` and whose other bits are 0."""
    bits = i << (t.width - n_bits)
    if t.signed and bits >= (1 << (t.width - 1)):
        bits -= 1 << t.width
    return bits


def ceillog2(n: int) -> int:
    return 0 if n <= 1 else math.ceil(math.log2(n))


def product_type(a: FixedType, b: FixedType) -> FixedType:
    """The type of ``a * b`` for ap_fixed operands: full precision, never rounds."""
    return FixedType(min(a.width + b.width, 64), a.integer + b.integer - max(0, a.width + b.width - 64),
                     a.signed or b.signed)


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
        r = np.clip(r, t.sat_min, hi)
    return np.asarray(r, dtype=np.int64)
