"""Activation kinds and softmax implementations of nnet_activation.h (hls4ml 1.3), bit for bit.

Each activation kind is one function ``(node, x, xt, xp) -> raw result`` registered in
:data:`fpga_gen.emulate.kernels.ACTIVATIONS`; softmax implementations are registered in
:data:`fpga_gen.emulate.kernels.SOFTMAX`.

The tables themselves are built in :mod:`fpga_gen.ir.tables` (shared with the precision pass and the
HLS writer).  The index of an input is ``int(x * N / 16)``: the exact product truncated towards zero
(ap_fixed division and ``to_int``), wrapped to 32 bits.
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import cast, from_float
from ..ir.graph import Node
from ..ir.tables import TABLE_RANGE, activation_table, legacy_tables
from ..ir.types import FixedType
from .kernels import ACTIVATIONS, SOFTMAX, activation

__all__ = ["param_raw"]


def _wide(frac: int) -> FixedType:
    """A source type for exact intermediate values on the grid 2**-frac (overflow is checked on the values)."""
    return FixedType(64, 64 - frac, True)


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
