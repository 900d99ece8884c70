"""Activation kinds and softmax implementations of nnet_activation.h (hls4ml 1.3), bit for bit.

Each activation kind is one function ``(node, x, xt, xp) -> raw result`` registered in
:data:`fpga_gen.emulate.kernels.ACTIVATIONS`; softmax implementations are registered in
:data:`fpga_gen.emulate.kernels.SOFTMAX`.

Table functions rebuild nnet's lookup tables with the same C arithmetic: the table index ``ii``
becomes ``float in_val = 2 * 8.0 * (ii - float(N) / 2.0) / float(N)`` (double maths rounded to
float once), the function runs in C float/double exactly as the C++ writes it (the glibc
``expf``/``tanhf``/``log`` the compiled C++ calls, through ctypes), and the float is cast to
``table_t`` with its rounding and overflow.  The index of an input is ``int(x * N / 16)``: the
exact product truncated towards zero (ap_fixed division and ``to_int``), wrapped to 32 bits.
"""

from __future__ import annotations

import functools

import numpy as np

from ..ir.graph import Node
from ..ir.types import FixedType
from .fixed import c_expf, c_libm, cast, from_float
from .kernels import ACTIVATIONS, SOFTMAX, activation

__all__ = ["activation_table", "param_raw", "TABLE_RANGE"]

_F32 = np.float32


def _wide(frac: int) -> FixedType:
    """A source type for exact intermediate values on the grid 2**-frac (overflow is checked on the values)."""
    return FixedType(64, 64 - frac, True)


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


def _wrap32(v, xp):
    """A C ``int`` from an exact integer: the low 32 bits, two's complement."""
    return xp.mod(v + 2.0 ** 31, 2.0 ** 32) - 2.0 ** 31


def _int_of_product(x, xt: FixedType, n: int, div: int, xp):
    """int(x * n / div) for x of type xt: the exact quotient truncated towards zero, then 32-bit wrap.
    n and div are powers of two, so the scaling is exact in float64."""
    return _wrap32(xp.trunc(x * (float(n) / div * 2.0 ** -xt.frac)), xp)


def _table_kernel(kind):
    def run(node: Node, x, xt: FixedType, xp):
        n = int(node.attrs.get("table_size", 1024))
        tt = node.types["table"]
        table = activation_table(kind, n, tt)
        span = TABLE_RANGE[kind]
        idx = _wrap32(_int_of_product(x, xt, n, span, xp) + float(n // 2), xp)
        idx = xp.clip(idx, 0.0, float(n - 1))
        return cast(xp.take(table, idx), tt, node.types["result"], xp)
    return run


for _k in ("sigmoid", "tanh", "softplus", "softsign"):
    ACTIVATIONS[_k] = _table_kernel(_k)


def param_raw(node: Node) -> float:
    """The raw integer of the scalar param (alpha, theta) in the param type (written as an exact literal)."""
    pt = node.types["param"]
    return float(from_float(np.array([float(node.attrs["param"])]), pt)[0])


@activation("elu")
def _elu_kernel(node: Node, x, xt: FixedType, xp):
    n = int(node.attrs.get("table_size", 1024))
    tt, pt, rt = node.types["table"], node.types["param"], node.types["result"]
    table = activation_table("elu", n, tt)
    # index = datareg * N / -8: non-negative before the wrap; as unsigned, anything > N-1 becomes N-1
    idx = xp.mod(_int_of_product(-x, xt, n, 8, xp), 2.0 ** 32)
    idx = xp.minimum(idx, float(n - 1))
    neg = xp.take(table, idx) * param_raw(node)                      # alpha * table: exact product
    neg = cast(neg, _wide(tt.frac + pt.frac), rt, xp)
    return xp.where(x >= 0, cast(x, xt, rt, xp), neg)


@activation("relu_max")
def _relu_max(node: Node, x, xt: FixedType, xp):
    rt = node.types["result"]
    m = int(node.attrs["max_int"])
    top = cast(xp.zeros_like(x) + float(m), FixedType(32, 32, True), rt, xp)   # res = MAX_INT (an int)
    # x > MAX_INT compares exactly; x <= MAX_INT keeps x
    y = xp.where(x < 0, 0.0, x)
    return xp.where(x * 2.0 ** -xt.frac > m, top, cast(y, xt, rt, xp))


@activation("leaky_relu")
def _leaky_relu(node: Node, x, xt: FixedType, xp):
    rt, pt = node.types["result"], node.types["param"]
    neg = cast(x * param_raw(node), _wide(xt.frac + pt.frac), rt, xp)
    return xp.where(x > 0, cast(x, xt, rt, xp), neg)


@activation("prelu")
def _prelu(node: Node, x, xt: FixedType, xp):
    rt, pt = node.types["result"], node.types["param"]
    alpha = from_float(np.asarray(node.weights["alpha"], dtype=np.float64).reshape(1, -1), pt)
    neg = cast(x * xp.asarray(alpha), _wide(xt.frac + pt.frac), rt, xp)
    return xp.where(x > 0, cast(x, xt, rt, xp), neg)


@activation("thresholded_relu")
def _thresholded_relu(node: Node, x, xt: FixedType, xp):
    rt, pt = node.types["result"], node.types["param"]
    theta = param_raw(node) * 2.0 ** -pt.frac
    return xp.where(x * 2.0 ** -xt.frac > theta, cast(x, xt, rt, xp), 0.0)


def hard_consts(node: Node) -> tuple[float, float]:
    """(slope raw, shift raw) in their types: hls4ml writes them as decimal literals the C++ casts."""
    st, ht = node.types["slope"], node.types["shift"]
    s = float(from_float(np.array([float(node.attrs["slope"])]), st)[0])
    h = float(from_float(np.array([float(node.attrs["shift"])]), ht)[0])
    return s, h


def _hard_sigmoid_raw(node: Node, x, xt: FixedType, xp):
    """auto datareg = slope * x + shift, clipped to [0, 1]: raw on the grid 2**-frac (exact)."""
    st, ht = node.types["slope"], node.types["shift"]
    s, h = hard_consts(node)
    frac = max(xt.frac + st.frac, ht.frac)
    v = x * (s * 2.0 ** (frac - xt.frac - st.frac)) + h * 2.0 ** (frac - ht.frac)
    one = 2.0 ** frac
    return xp.clip(v, 0.0, one), frac


@activation("hard_sigmoid")
def _hard_sigmoid(node: Node, x, xt: FixedType, xp):
    v, frac = _hard_sigmoid_raw(node, x, xt, xp)
    return cast(v, _wide(frac), node.types["result"], xp)


@activation("hard_tanh")
def _hard_tanh(node: Node, x, xt: FixedType, xp):
    v, frac = _hard_sigmoid_raw(node, x, xt, xp)
    return cast(2.0 * v - 2.0 ** frac, _wide(frac), node.types["result"], xp)  # 2 * sigmoid - 1, exact


# ---------------------------------------------------------------------------- softmax implementations
@functools.lru_cache(maxsize=32)
def legacy_tables(n_exp: int, n_inv: int, table_t: FixedType):
    """init_exp_table_legacy (exp over [-8, 8), float) and init_invert_table_legacy (1/x over [0, 64), double)."""
    x = _in_val(n_exp, 16.0)
    exp_t = from_float(c_expf(x).astype(np.float64), table_t)
    iv = (64.0 * np.arange(n_inv, dtype=np.float64) / float(n_inv)).astype(_F32).astype(np.float64)
    with np.errstate(divide="ignore"):
        inv = np.where(iv > 0.0, 1.0 / np.where(iv > 0, iv, 1.0), 0.0)
    return exp_t, from_float(inv, table_t)


def _softmax_legacy(node: Node, x, xt: FixedType, xp):
    tt, rt = node.types["table"], node.types["result"]
    n_exp, n_inv = int(node.attrs["exp_table_size"]), int(node.attrs["inv_table_size"])
    exp_table, inv_table = legacy_tables(n_exp, n_inv, tt)
    n = x.shape[1]
    wide = FixedType(tt.width + 1, tt.integer + 1, tt.signed)
    one = cast(xp.zeros_like(x[:, :1]) + 1.0, FixedType(32, 32, True), tt, xp)
    cols = []
    for i in range(n):
        acc = xp.zeros_like(x[:, :1])
        for j in range(n):
            if i == j:
                e = one
            else:
                d = x[:, j:j + 1] - x[:, i:i + 1]                      # data_T - data_T: exact
                idx = _wrap32(_int_of_product(d, xt, n_exp, 16, xp) + float((8 * n_exp) // 16), xp)
                e = xp.take(exp_table, xp.clip(idx, 0.0, float(n_exp - 1)))
            acc = cast(acc + e, wide, tt, xp)                           # exp_res[ii] += ...: table_t
        idx = xp.clip(_int_of_product(acc, tt, n_inv, 64, xp), 0.0, float(n_inv - 1))
        cols.append(cast(xp.take(inv_table, idx), tt, rt, xp))
    return xp.concat(cols, axis=1)


def _softmax_argmax(node: Node, x, xt: FixedType, xp):
    rt = node.types["result"]
    n = x.shape[1]
    one = cast(xp.zeros_like(x[:, :1]) + 1.0, FixedType(32, 32, True), rt, xp)
    best = x[:, :1]
    idx = xp.zeros_like(best)
    for i in range(1, n):                                               # strict >: the first maximum wins
        better = x[:, i:i + 1] > best
        best = xp.where(better, x[:, i:i + 1], best)
        idx = xp.where(better, float(i), idx)
    cols = [xp.where(idx == float(i), one, 0.0 * one) for i in range(n)]
    return xp.concat(cols, axis=1)


SOFTMAX["legacy"] = _softmax_legacy
SOFTMAX["argmax"] = _softmax_argmax
