"""The lookup tables of the generated C++, built once here for every stage that needs them (the emulator
runs on them, the precision pass sizes types from them, the HLS writer's native kernels embed them).

Activation tables (nnet_activation.h, hls4ml 1.3) rebuild nnet's tables with the same C arithmetic: the
table index ``ii`` becomes ``float in_val = 2 * 8.0 * (ii - float(N) / 2.0) / float(N)`` (double maths
rounded to float once), the function runs in C float/double exactly as the C++ writes it (the glibc
``expf``/``tanhf``/``log`` the compiled C++ calls, through ctypes), and the float is cast to ``table_t``
with its rounding and overflow.  Softmax tables are nnet::init_exp_table / init_invert_table (and their
legacy forms).  The quant_act table functions are the float functions QKeras computes for its monotonic
quantizers (quantized_tanh/sigmoid, quantized_po2, quantized_relu_po2), tabulated by
:mod:`fpga_gen.passes.quant_table` on the input grid and run by the float reference as they are.
"""

from __future__ import annotations

import functools

import numpy as np

from .fixed import c_expf, c_libm, ceillog2, from_float, raw_from_top_bits
from .types import FixedType

__all__ = ["activation_table", "legacy_tables", "softmax_tables", "table_function", "TABLE_FUNCTIONS",
           "TABLE_RANGE"]

_F32 = np.float32


def _in_val(n: int, span: float) -> np.ndarray:
    """float in_val = 2 * (span / 2) * (ii - float(N) / 2.0) / float(N): double maths, one rounding to float."""
    ii = np.arange(n, dtype=np.float64)
    return (span * (ii - float(n) / 2.0) / float(n)).astype(_F32)


def _sigmoid(n):
    x = _in_val(n, 16.0)
    e = c_expf(-x)                                                  # std::exp(float)
    s = _F32(1) + e                                                 # 1 + float: float
    return (1.0 / s.astype(np.float64)).astype(_F32)                # 1.0 / float: double, returned as float


def _tanh(n):
    return c_libm("tanhf", _in_val(n, 8.0))                         # tanh(float) picks tanhf


def _softplus(n):
    e = c_expf(_in_val(n, 16.0)).astype(np.float64)                 # std::exp(float) + 1.: double
    return c_libm("log", e + 1.0).astype(_F32)                      # std::log(double), returned as float


def _softsign(n):
    x = _in_val(n, 16.0)
    return (x.astype(np.float64) / (np.abs(x).astype(np.float64) + 1.0)).astype(_F32)


def _elu(n):
    x = (-8.0 * np.arange(n, dtype=np.float64) / float(n)).astype(_F32)   # range -8 to 0
    return (c_expf(x).astype(np.float64) - 1.0).astype(_F32)


# kind -> (table values as float32, input span of the table: index = int(x * N / span) + N/2)
TABLE_FUNCTIONS = {"sigmoid": (_sigmoid, 16), "tanh": (_tanh, 8), "softplus": (_softplus, 16),
                   "softsign": (_softsign, 16), "elu": (_elu, 8)}
TABLE_RANGE = {k: span for k, (_, span) in TABLE_FUNCTIONS.items()}


@functools.lru_cache(maxsize=128)
def activation_table(kind: str, n: int, table_t: FixedType) -> np.ndarray:
    """Raw integers of ``table_t``: nnet's init_<kind>_table for ``n`` entries."""
    fn, _ = TABLE_FUNCTIONS[kind]
    with np.errstate(over="ignore"):
        vals = fn(n).astype(np.float64)
    return from_float(vals, table_t)


@functools.lru_cache(maxsize=32)
def legacy_tables(n_exp: int, n_inv: int, table_t: FixedType):
    """init_exp_table_legacy (exp over [-8, 8), float) and init_invert_table_legacy (1/x over [0, 64), double)."""
    x = _in_val(n_exp, 16.0)
    exp_t = from_float(c_expf(x).astype(np.float64), table_t)
    iv = (64.0 * np.arange(n_inv, dtype=np.float64) / float(n_inv)).astype(_F32).astype(np.float64)
    with np.errstate(divide="ignore"):
        inv = np.where(iv > 0.0, 1.0 / np.where(iv > 0, iv, 1.0), 0.0)
    return exp_t, from_float(inv, table_t)


@functools.lru_cache(maxsize=64)
def softmax_tables(inp_norm: FixedType, exp_t: FixedType, inv_inp: FixedType, inv_t: FixedType,
                   exp_size: int, inv_size: int, exp_scale: float = 1.0, negative: bool = True):
    """The exp and 1/x tables exactly as nnet::init_exp_table / init_invert_table fill them."""
    n = ceillog2(exp_size)
    xs = np.array([raw_from_top_bits(i, inp_norm, n) for i in range(exp_size)], dtype=np.float64)
    xs = (xs * 2.0 ** -inp_norm.frac).astype(np.float32) * np.float32(exp_scale)
    exp_vals = c_expf(-xs if negative else xs).astype(np.float64)   # negative=true: exp(-x)
    exp_table = from_float(exp_vals, exp_t)
    m = ceillog2(inv_size)
    ys = np.array([raw_from_top_bits(i, inv_inp, m) for i in range(inv_size)], dtype=np.float64)
    ys = (ys * 2.0 ** -inv_inp.frac).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv_vals = (np.float32(1.0) / ys).astype(np.float64)        # float division, as in C++
    inv_table = from_float(inv_vals, inv_t)
    return exp_table, inv_table


# ---------------------------------------------------------------------------- quant_act table functions
_EPS = float(np.float32(1e-7))          # K.epsilon() as the float32 TensorFlow compares with


def _po2_exponent(a: np.ndarray, attrs: dict) -> np.ndarray:
    """QKeras' _clip_power_of_two on |x|, in float32 as TensorFlow computes it (the quadratic approximation
    puts exact ties log2(sqrt(2**(2k+1))) = k + 1/2 on the grid: float32's rounding of the sqrt decides them)."""
    min_exp, max_exp = int(attrs["min_exp"]), int(attrs["max_exp"])
    mv = attrs.get("max_value")
    a = np.asarray(a, dtype=np.float32)
    eps = np.float32(_EPS)
    af = np.where(a < eps, eps, a)
    if mv is not None:
        af = np.where(af >= np.float32(mv), np.float32(mv), af)
    q = 2.0 if attrs.get("quadratic") else 1.0
    xin = np.sqrt(af) if attrs.get("quadratic") else af
    lg = (np.log(xin) / np.float32(np.log(2.0))).astype(np.float32)
    lg = np.floor(lg) if attrs.get("log2_rounding") == "floor" else np.rint(lg)
    return np.where(a < eps, float(min_exp), q * np.clip(lg.astype(np.float64), min_exp, max_exp))


def table_function(attrs: dict):
    fn = attrs["fn"]
    bits = int(attrs["bits"])
    sym = bool(attrs.get("symmetric"))
    if fn == "tanh":
        m = 2.0 ** (bits - 1)
        return lambda v: np.clip(np.rint(np.tanh(v) * m) / m, -1.0 + sym / m, 1.0 - 1.0 / m)
    if fn == "sigmoid":
        m = 2.0 ** bits
        return lambda v: np.clip(np.rint(1.0 / (1.0 + np.exp(-v)) * m) / m, sym / m, 1.0 - 1.0 / m)
    if fn == "po2":
        return lambda v: np.where(v < 0, -1.0, 1.0) * 2.0 ** _po2_exponent(np.abs(v), attrs)
    if fn == "relu_po2":
        s = float(attrs.get("negative_slope") or 0.0)

        def relu_po2(v):
            pos = 2.0 ** _po2_exponent(np.maximum(v, 0.0), attrs)
            neg = -(2.0 ** _po2_exponent(np.maximum(-v, 0.0) * s, attrs))
            return np.where((v >= 0) | (s == 0), pos, neg)
        return relu_po2
    raise ValueError(f"quant_act table function {fn!r} is unknown")
