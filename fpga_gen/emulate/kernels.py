"""One bit-exact kernel per op: what the generated C++ computes, written as array code.

Each kernel takes the node, the raw input arrays (batch first), their types and the array
namespace ``xp``, and returns the raw output array in ``node.types['result']``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..ir.fixed import (EXACT_LIMIT, EXACT_LIMIT_FLOAT32, NP, EmulationRangeError, _in_range, _overflow,
                        _quantize_scaled, cast, ceillog2, float32_rounding_exact, from_float, is_narrow,
                        is_noop_cast, product_type)
from ..ir.graph import Node
from ..ir.reuse import node_reuse
from ..ir.tables import softmax_tables
from ..ir.types import FixedType

__all__ = ["KERNELS", "kernel", "product_type", "weight_raw", "ACTIVATIONS", "activation", "SOFTMAX",
           "NARROW_INPUTS"]

KERNELS: dict = {}
# ops whose kernels take narrow inputs (float32 raw codes of a type of width <= 24, see fixed.is_narrow) and
# compute exactly what they compute on float64 (upcasting where they cannot); the interpreter hands every other
# kernel float64.  A kernel may return a narrow value only when its result type has width <= 24.
NARROW_INPUTS = {"dense", "conv2d", "pooling", "activation"}
# activation kind -> fn(node, x_raw, x_type, xp) -> raw result (the 'activation' op dispatches on attrs.activation)
ACTIVATIONS: dict = {}
# softmax implementation -> fn(node, x_raw, x_type, xp) -> raw result
SOFTMAX: dict = {}


def activation(kind: str):
    def deco(fn):
        ACTIVATIONS[kind] = fn
        return fn
    return deco


def kernel(op: str):
    def deco(fn):
        KERNELS[op] = fn
        return fn
    return deco


def check_products_exact(xt: FixedType, wt: FixedType, w) -> tuple[int, float]:
    """Refuse raw weights ``w`` (inputs along axis 0) whose sum of |x * w| can reach 2**53 for x of type ``xt``;
    return (the largest raw |x|, the largest column sum of raw |w|)."""
    x_abs = max(abs(xt.raw_min), abs(xt.raw_max))
    col_abs = float(np.abs(w).sum(axis=0).max(initial=0.0))
    bound = x_abs * col_abs
    if bound >= EXACT_LIMIT:
        raise EmulationRangeError(
            f"the products of {xt} and {wt} can reach 2**{int(np.log2(bound))}; the emulator is exact "
            f"below 2**53: narrow the input or weight precision")
    return x_abs, col_abs


def weight_raw(values: np.ndarray, t: FixedType) -> np.ndarray:
    """Real weight values -> raw integers; they must be exactly representable."""
    raw = np.asarray(values, dtype=np.float64) * 2.0 ** t.frac
    if not np.array_equal(raw, np.floor(raw)) or raw.min(initial=0) < t.raw_min or raw.max(initial=0) > t.raw_max:
        raise EmulationRangeError(f"weights are not exactly representable in {t}")
    return raw


@kernel("input")
def input_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    return from_float(x, node.types["result"], xp)


def _accum_range(w: np.ndarray, b_acc: np.ndarray, xt: FixedType, scale: float):
    """Per output column, the least and the greatest value ``b_acc + scale * sum_i x_i * w_i`` can take for
    inputs of ``xt`` (float64, exact: every partial sum is below 2**53, and ``scale`` is a power of two)."""
    lo_x, hi_x = float(xt.raw_min), float(xt.raw_max)
    return (b_acc + np.minimum(lo_x * w, hi_x * w).sum(axis=0) * scale,
            b_acc + np.maximum(lo_x * w, hi_x * w).sum(axis=0) * scale)


def _batch_abs_max(x) -> float:
    """max |x| over the batch (NaN, which raw values never are, or an empty batch: inf)."""
    try:
        lo, hi = float(x.min()), float(x.max())
    except (ValueError, RuntimeError):
        return float("inf")
    return max(-lo, hi) if lo == lo and hi == hi else float("inf")


@kernel("dense")
def dense_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    wt, bt, at, rt = (node.types[k] for k in ("weight", "bias", "accum", "result"))
    plan = node.meta.get("_emu_dense")
    if plan is None or plan[0] is not xp:
        w = weight_raw(node.weights["kernel"], wt)
        b = weight_raw(node.weights["bias"], bt)
        pt = product_type(xt, wt)
        x_abs, col_abs = check_products_exact(xt, wt, w)
        exact_products = at.frac >= pt.frac
        b_acc = cast(b, bt, at)
        # accum never overflows when its range holds every value the sum can take: no overflow pass then
        acc_fits = False
        if exact_products and at.saturation == "WRAP":
            lo, hi = _accum_range(w, np.asarray(b_acc, dtype=np.float64), xt, 2.0 ** (at.frac - pt.frac))
            acc_fits = bool(lo.min(initial=0.0) >= at.raw_min and hi.max(initial=0.0) <= at.raw_max)
        # float32 products (see NumpyOps.exact_float32): x and w exact in float32, every partial sum below
        # 2**24 -- from the types, or else from the batch's largest |x| (checked per call)
        w32 = None
        if getattr(xp, "exact_float32", False) and exact_products and max(xt.width, wt.width) <= 24:
            w32 = xp.float32(w)
        f32_static = w32 is not None and x_abs * col_abs < EXACT_LIMIT_FLOAT32
        # the float32 products biased in float32, returned narrow: exact when the biased sum never leaves accum
        # (acc_fits) and accum has width <= 24 (every value of it, the bias and the sum, is exact in float32;
        # a sum that is 0 gets the same zero sign in float32 as in float64), and the cast to result is a no-op
        b32 = None
        if w32 is not None and acc_fits and at.width <= 24 and rt.width <= 24 and is_noop_cast(at, rt):
            b32 = xp.float32(b_acc)
        plan = (xp, xp.asarray(w), xp.asarray(b_acc), pt, exact_products, acc_fits, w32, f32_static, col_abs, b32)
        node.meta["_emu_dense"] = plan
    _, w, b_acc, pt, exact_products, acc_fits, w32, f32_static, col_abs, b32 = plan
    if at.saturation != "WRAP":
        # saturation is order dependent: add the products one by one in the C++ order
        wide = FixedType(at.width + 1, at.integer + 1, at.signed)
        acc = b_acc + xp.zeros_like(x[:, :1] * w[:1, :])
        n_in, rf = w.shape[0], node_reuse(node)
        if node.attrs.get("strategy") == "resource" and 1 < rf <= n_in:
            # dense_resource_rf_leq_nin: outer loop over ir < rf, inner over the inputs ir + k*rf
            order = [ir + k * rf for ir in range(rf) for k in range(n_in // rf)]
        else:
            order = range(n_in)
        for i in order:
            p = cast(x[:, i:i + 1] * w[i:i + 1, :], pt, at, xp, inplace=True)
            acc = cast(acc + p, wide, at, xp, inplace=True)
        return cast(acc, at, rt, xp, inplace=True)
    if exact_products and w32 is not None and (f32_static or _batch_abs_max(x) * col_abs < EXACT_LIMIT_FLOAT32):
        # the same integers as the float64 product below, from float32 BLAS (every partial sum < 2**24),
        # scaled by a power of two (exact) and biased in float64 (the float64 addition of the form below)
        acc32 = xp.matmul(xp.float32(x), w32)
        if at.frac != pt.frac:
            acc32 *= 2.0 ** (at.frac - pt.frac)
        if b32 is not None:
            acc32 += b32
            return acc32
        acc = xp.asarray(acc32)                   # float64 (a mixed float32 + float64 add is slow)
        acc += b_acc
    elif exact_products:
        # one buffer: the product matrix, scaled to the accum grid and biased in place (the same float
        # operations as ``matmul(x, w) * 2**k + b``, so the same bits)
        acc = xp.matmul(x, w)
        if at.frac != pt.frac:
            acc *= 2.0 ** (at.frac - pt.frac)
        acc += b_acc
    else:
        prods = cast(x[:, :, None] * w[None, :, :], pt, at, xp, inplace=True)
        acc = xp.sum(prods, axis=1) + b_acc
    # wrap-around is modular: wrapping the final sum equals wrapping every partial sum
    if not acc_fits:
        acc = _overflow(acc, at, xp, inplace=True)
    return cast(acc, at, rt, xp, inplace=True)


# the roundings that never turn a positive value into -0.0 (ceil(0.3 - 0.5) is -0.0)
_POSITIVE_ZERO_ROUNDING = ("TRN", "TRN_ZERO", "RND", "RND_CONV", "RND_INF")


@kernel("activation")
def activation_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    fn = ACTIVATIONS.get(node.attrs["activation"])
    if fn is None:
        raise NotImplementedError(f"activation {node.attrs['activation']!r} has no emulator kernel; "
                                  f"known: {', '.join(sorted(ACTIVATIONS))}")
    if is_narrow(x) and fn is not _relu:
        x = xp.asarray(x)                   # only relu takes narrow values (see NARROW_INPUTS)
    return fn(node, x, xt, xp)


@activation("linear")
def _linear(node: Node, x, xt: FixedType, xp):
    return cast(x, xt, node.types["result"], xp)


@activation("relu")
def _relu(node: Node, x, xt: FixedType, xp):
    rt = node.types["result"]
    shift = rt.frac - xt.frac
    fast = (rt.saturation in ("SAT", "SAT_SYM") or _in_range(xt, rt, shift)) and (
        shift >= 0 or rt.rounding in _POSITIVE_ZERO_ROUNDING)
    if is_narrow(x) and not (fast and rt.width <= 24 and float32_rounding_exact(xt, shift, rt.rounding)):
        x = xp.asarray(x)                   # float64 unless the float32 form below is exact
    if fast:
        # the cast is monotone with cast(0) = 0, so cast(max(x, 0)) = max(cast(x), 0): scale, round, and
        # saturate to [0, max] in one clip (every type's min is <= 0); "+ 0.0" turns the -0.0 of a
        # rounded negative (rint(-0.3)) into the relu's +0.0 (these roundings give no -0.0 for x > 0).
        # On narrow x every step is exact in float32 (checked above), and the result, in [0, max] of a type of
        # width <= 24, stays narrow
        r = x * 2.0 ** shift
        if shift < 0:
            r = _quantize_scaled(r, rt.rounding, xp, out=r)
        r = xp.clip(r, 0.0, float(rt.raw_max), out=r)
        r += 0.0
        return r
    # x > 0 ? x : 0, then the cast, on one buffer; "+ 0.0" turns the -0.0 that maximum may keep into +0.0
    r = xp.maximum(x, 0.0)
    r += 0.0
    return cast(r, xt, rt, xp, inplace=True)


def _gelu(v):
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * v * (1.0 + erf(v / math.sqrt(2.0)))


def _selu(v):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return scale * np.where(v > 0, v, alpha * np.expm1(np.minimum(v, 0.0)))


_FLOAT_FUNCTIONS = {"sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)), "tanh": np.tanh, "selu": _selu,
                    "swish": lambda v: v / (1.0 + np.exp(-v)), "gelu": _gelu, "exponential": np.exp,
                    "mish": lambda v: v * np.tanh(np.logaddexp(0.0, v))}


@kernel("float_activation")
def float_activation_kernel(node: Node, inputs, in_types, xp):
    """CPU/GPU fallback only: the function in float64 (numpy, on every xp, so torch gives the same bits)
    on the exact input value, cast to the result type with its rounding and saturation."""
    (x,) = inputs
    (xt,) = in_types
    fn = _FLOAT_FUNCTIONS.get(node.attrs["function"])
    if fn is None:
        raise NotImplementedError(f"float function {node.attrs['function']!r} has no emulator kernel; "
                                  f"known: {', '.join(_FLOAT_FUNCTIONS)}")
    v = np.asarray(xp.to_numpy(x), dtype=np.float64) * 2.0 ** -xt.frac
    with np.errstate(over="ignore"):
        y = fn(v)
    return from_float(xp.asarray(y), node.types["result"], xp)


# ---------------------------------------------------------------------------- softmax
def _top_bits_index(raw, t: FixedType, n_bits: int, xp):
    """The table index of raw values of ``t``: their top ``n_bits`` bits (as floats; for indexing only)."""
    if t.signed:
        raw = xp.mod(raw, float(1 << t.width))                      # two's complement bit pattern
    else:
        raw = raw * 1.0                # a raw value of an unsigned type is its own bit pattern; a copy to own
    raw *= 2.0 ** -(t.width - n_bits)
    return xp.floor(raw, out=raw)


def _reduce(values: list, op):
    """nnet::reduce's adder tree: split at the largest power of two below N."""
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        return op(values[0], values[1])
    left = 1 << ((n - 1).bit_length() - 1)
    return op(_reduce(values[:left], op), _reduce(values[left:], op))


FEW_COLUMNS = 64


def _columnwise(x, op):
    """op folded over the columns of 2-D x, left to right: (batch, 1)."""
    acc = x[:, 0:1]
    for j in range(1, x.shape[1]):
        acc = op(acc, x[:, j:j + 1])
    return acc * 1.0 if x.shape[1] == 1 else acc       # a new array either way: callers may write to it


# softmax inputs up to this width look the exp of x_max - x up in one table of 2**width entries
EXP_BY_DIFF_MAX_WIDTH = 18


@functools.lru_cache(maxsize=64)
def _exp_by_diff(xt: FixedType, inp_norm: FixedType, exp_t: FixedType, inv_inp: FixedType, inv_t: FixedType,
                 at: FixedType, exp_size: int, inv_size: int) -> np.ndarray:
    """exp_res for every difference x_max - x of raw values of ``xt``: the kernel's own steps (cast to
    inp_norm, top bits, exp table, cast to accum) run once on 0 .. 2**width - 1."""
    exp_table, _ = softmax_tables(inp_norm, exp_t, inv_inp, inv_t, exp_size, inv_size, negative=True)
    diff_t = FixedType(xt.width + 1, xt.integer + 1, True)
    d = cast(np.arange(float(1 << xt.width)), diff_t, inp_norm, inplace=True)
    idx = _top_bits_index(d, inp_norm, ceillog2(exp_size), NP).astype(np.int64)
    return cast(np.take(exp_table, idx), exp_t, at, inplace=True)


@kernel("softmax")
def softmax_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    impl = node.attrs.get("implementation", "stable")
    fn = SOFTMAX.get(impl)
    if fn is None:
        raise NotImplementedError(f"softmax implementation {impl!r} has no emulator kernel; "
                                  f"known: {', '.join(sorted(SOFTMAX))}")
    return fn(node, x, xt, xp)


def _softmax_tables(node: Node, x, xt: FixedType, xp, stable: bool):
    """softmax_stable (exp(-(max - x)) indexed by inp_norm) and softmax_latency (exp(x) indexed by x's type)."""
    ty = node.types
    exp_size, inv_size = node.attrs["exp_table_size"], node.attrs["inv_table_size"]
    idx_t = ty["inp_norm"] if stable else xt.plain()
    exp_table, inv_table = softmax_tables(idx_t, ty["exp_table"], ty["inv_inp"], ty["inv_table"],
                                          exp_size, inv_size, negative=stable)
    at = ty["accum"]
    n = x.shape[1]
    if stable:
        # the max of exact values: order does not matter (nor does the sign of a zero max: x_max - x only
        # indexes tables); a few columns are reduced column by column (numpy's row-wise reduce is slow on them)
        x_max = xp.max(x, 1) if n > FEW_COLUMNS else _columnwise(x, xp.maximum)
        diff_t = FixedType(xt.width + 1, xt.integer + 1, True)
    if stable and xt.width <= EXP_BY_DIFF_MAX_WIDTH:
        # x_max - x is an integer in [0, 2**width): one lookup in the whole chain below, tabulated per value
        exp_res = xp.take(_exp_by_diff(xt, ty["inp_norm"], ty["exp_table"], ty["inv_inp"], ty["inv_table"], at,
                                       exp_size, inv_size), x_max - x)
    else:
        d = cast(x_max - x, diff_t, ty["inp_norm"], xp, inplace=True) if stable else x
        idx = _top_bits_index(d, idx_t, ceillog2(exp_size), xp)
        exp_res = cast(xp.take(exp_table, idx), ty["exp_table"], at, xp, inplace=True)
    wide = FixedType(at.width + 1, at.integer + 1, at.signed)
    et = ty["exp_table"]
    if n * max(abs(et.raw_min), et.raw_max) * 2.0 ** (at.frac - et.frac) <= at.raw_max:
        # the accumulator holds any sum of n table values: the adder tree is exact in any order
        # exp_res >= +0.0 (table values): any order of the exact sum gives the same bits
        exp_sum = xp.sum(exp_res, 1)[:, None] if n > FEW_COLUMNS else _columnwise(exp_res, lambda a, b: a + b)
        owned = True
    else:
        cols = [exp_res[:, i:i + 1] for i in range(n)]
        exp_sum = _reduce(cols, lambda a, b: cast(a + b, wide, at, xp))
        owned = n > 1                                      # one column is a view of exp_res
    exp_sum = cast(exp_sum, at, ty["inv_inp"], xp, inplace=owned)
    inv = xp.take(inv_table, _top_bits_index(exp_sum, ty["inv_inp"], ceillog2(inv_size), xp))
    pt = product_type(at, ty["inv_table"])
    exp_res *= inv
    return cast(exp_res, pt, ty["result"], xp, inplace=True)


SOFTMAX["stable"] = functools.partial(_softmax_tables, stable=True)
SOFTMAX["latency"] = functools.partial(_softmax_tables, stable=False)


from . import kernels_conv as _kernels_conv  # noqa: E402,F401  (registers conv2d and pooling)
from . import kernels_merge as _kernels_merge  # noqa: E402,F401  (registers merge and concatenate)
from . import kernels_reshaping as _kernels_reshaping  # noqa: E402,F401  (zeropad, cropping, upsampling, transpose)
from . import kernels_activation as _kernels_activation  # noqa: E402,F401  (activation kinds, softmax variants)
from . import kernels_depthwise as _kernels_depthwise  # noqa: E402,F401  (registers depthwise_conv2d)
from . import kernels_norm as _kernels_norm  # noqa: E402,F401  (registers batchnorm)
from . import kernels_quant as _kernels_quant  # noqa: E402,F401  (registers quant_act and apply_scale)
from . import kernels_fixed_quant as _kernels_fixed_quant  # noqa: E402,F401  (registers fixed_quant, HGQ2)
