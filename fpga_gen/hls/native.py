"""The native back end's integer kernels (``templates/hls/firmware/fpga_gen_native.h.j2``): when a dense
or conv2d layer (:func:`plan`), a relu/linear activation (:func:`cast_ok`), a stable softmax
(:func:`softmax_plan`) or a max/average pooling (:func:`pooling_plan`) may use them, and with which
parameters.

The HLS code computes a dense product one ap_fixed operation at a time (84 % of a native run went there).
Under ``-DFPGA_GEN_NATIVE`` the top function calls :class:`fpga_gen_native::Gemm` instead, which sums the
raw integer codes -- the same numbers, bit for bit, under the conditions :func:`plan` checks; any other
layer keeps its nnet_utils call, so the native library computes what csim computes (tests/test_native.py).
"""

from __future__ import annotations

import numpy as np

from ..ir.exact import cast_reads_past_msb
from ..ir.fixed import cast, ceillog2, product_type
from ..ir.graph import Graph, Node
from ..ir.tables import softmax_tables
from ..ir.types import FixedType
from .layers import LayerCode
from .names import Namer

__all__ = ["HEADER", "include_header", "plan", "cast_ok", "softmax_plan", "pooling_plan"]

HEADER = "fpga_gen_native.h"


def include_header(code: LayerCode) -> None:
    """The layer's code includes fpga_gen_native.h (once)."""
    if HEADER not in code.includes:
        code.includes = tuple(code.includes) + (HEADER,)


def _raw_abs_max(t: FixedType) -> int:
    return max(abs(t.raw_min), abs(t.raw_max))


def plan(node: Node, graph: Graph, namer: Namer, code: LayerCode, taps_out: np.ndarray, transposed: bool,
         n_pix: int, idx=None) -> dict | None:
    """Template facts of the integer kernel for ``node`` (weights ``taps_out`` as (taps, outputs) real
    values), or None where it would not give the nnet kernel's bits (then the nnet call stays)."""
    if len(node.inputs) != 1:
        return None
    xt = graph[node.inputs[0]].types["result"]
    wt, at = node.types["weight"], node.types["accum"]
    if xt.width + wt.width > 64 or at.width > 64 or at.saturation != "WRAP":
        return None
    # (nnet::cast's xnor count for ap_uint<1> data and weights never applies: types are ap_[u]fixed)
    prod_shift = xt.frac + wt.frac - at.frac
    if prod_shift > 0 and at.rounding != "TRN":
        return None                  # a rounded product cast: not a shift
    w_raw = np.abs(np.asarray(taps_out, dtype=np.float64) * 2.0 ** wt.frac)
    bound = float(w_raw.sum(axis=0).max(initial=0.0)) * _raw_abs_max(xt)
    narrow = prod_shift <= 0 and xt.width <= 32 and wt.width <= 32 and bound < 2.0 ** 31
    n_taps, n_out = taps_out.shape
    p = dict(acc="int32_t" if narrow else "int64_t", n_in=code.n_in, n_pix=n_pix, n_taps=n_taps, n_out=n_out,
             transposed="true" if transposed else "false", prod_shift=max(prod_shift, 0),
             acc_shift=max(-prod_shift, 0), gemm=namer.unique(f"native_{code.stem}"), idx=None,
             raw_casts="true" if cast_ok(node.types["bias"], at) and cast_ok(at, node.types["result"]) else "false")
    if idx is not None:
        p["idx"] = namer.unique(f"native_idx_{code.stem}")
        p["idx_values"] = [int(i) for i in np.asarray(idx).ravel()]
    include_header(code)
    return p


def cast_ok(src: FixedType, dst: FixedType) -> bool:
    """Whether ``fpga_gen_native::cast_raw`` computes ``(dst) x`` for x of ``src``: every intermediate within its
    64-bit arithmetic (codes of <= 62 bits, a left shift that keeps them there), and no cast the AMD headers
    themselves abort on (ir/exact.py)."""
    shift = dst.frac - src.frac
    return src.width <= 62 and dst.width <= 62 and src.width + max(shift, 0) <= 62 and -shift <= 62 and \
        not cast_reads_past_msb(src, dst)


def softmax_plan(node: Node, graph: Graph, namer: Namer, code: LayerCode, sizes: dict) -> dict | None:
    """Template facts of ``fpga_gen_native::softmax_stable`` for a stable softmax, or None where its 64-bit
    steps would not give nnet::softmax_stable's bits (then the nnet call stays).

    The kernel takes nnet's steps on the raw codes: the max, x_max - x cast to inp_norm_t, its top bits
    indexing the exp table (given here already cast to accum_t, as ``exp_res[i] = exp_table[x]`` casts it),
    nnet::reduce's adder tree in accum_t, the cast to inv_inp_t, its top bits indexing the 1/x table, and
    each product cast to res_T.  The tables are the emulator's (ir/tables.py ``softmax_tables``,
    checked against nnet's init_exp_table / init_invert_table by the csim tests).  Instantiating
    nnet::softmax costs g++ ~1 s (every implementation, one ap_fixed operator at a time), most of the
    native library's compile time.
    """
    if len(node.inputs) != 1 or node.attrs.get("implementation", "stable") != "stable":
        return None
    xt = graph[node.inputs[0]].types["result"]
    ty = node.types
    norm, exp_t, at, inv_inp, inv_t, res = (ty["inp_norm"], ty["exp_table"], ty["accum"], ty["inv_inp"],
                                            ty["inv_table"], ty["result"])
    diff_t = FixedType(xt.width + 1, xt.integer + 1, True)           # x_max - x, exact
    wide = FixedType(at.width + 1, at.integer + 1, at.signed)         # a + b of the adder tree, exact
    if at.width + inv_t.width > 62 or not (cast_ok(diff_t, norm) and cast_ok(wide, at) and cast_ok(at, inv_inp)
                                           and cast_ok(product_type(at, inv_t), res)):
        return None
    exp_size, inv_size = sizes["exp_table_size"], sizes["inv_table_size"]
    exp_table, inv_table = softmax_tables(norm, exp_t, inv_inp, inv_t, exp_size, inv_size, negative=True)
    exp_res = cast(np.array(exp_table, dtype=np.float64), exp_t, at)
    p = dict(exp_bits=ceillog2(exp_size), inv_bits=ceillog2(inv_size),
             exp_table=namer.unique(f"native_exp_{code.stem}"), inv_table=namer.unique(f"native_inv_{code.stem}"),
             exp_values=[int(v) for v in exp_res], inv_values=[int(v) for v in inv_table])
    include_header(code)
    return p


def pooling_plan(node: Node, graph: Graph, namer: Namer, code: LayerCode, idx: np.ndarray) -> dict | None:
    """Template facts of ``fpga_gen_native::pool`` for a pooling layer whose windows are ``idx`` (output pixel x
    window cell: input pixel, -1 padding; ir.spatial.window_indices with one channel), or None where its
    64-bit steps would not give the nnet kernel's bits (then the nnet call stays).  The steps are those of
    the emulator (emulate/kernels_conv.py pooling_kernel); nnet::pool_op instantiates both the max and
    the average (an ap_fixed division) whichever the layer uses, ~0.4 s of g++ per layer."""
    if len(node.inputs) != 1:
        return None
    xt = graph[node.inputs[0]].types["result"]
    at, rt = node.types["accum"], node.types["result"]
    idx = np.asarray(idx)
    if node.attrs["mode"] == "max":
        ok = cast_ok(xt, at) and cast_ok(at, rt)
    else:
        frac = max(at.frac, xt.frac)
        integer = max(at.integer + (xt.signed and not at.signed), xt.integer + (at.signed and not xt.signed)) + 1
        sum_t = FixedType(integer + frac, integer, at.signed or xt.signed)     # y + x, exact (the emulator's)
        ok = cast_ok(sum_t, at) and cast_ok(at, rt) and bool((idx >= 0).any(axis=1).all())
    if not ok or xt.width > 62:
        return None
    p = dict(n_pix=idx.shape[0], n_taps=idx.shape[1], max="true" if node.attrs["mode"] == "max" else "false",
             idx=namer.unique(f"native_idx_{code.stem}"), idx_values=[int(i) for i in idx.ravel()])
    include_header(code)
    return p
