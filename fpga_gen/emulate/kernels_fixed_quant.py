"""Kernel of the fixed_quant op (per-element fixed-point quantizer, HGQ2): what fpga_gen::fixed_quant in
templates/hls/firmware/fpga_gen_quant.h.j2 computes, on raw codes (see :mod:`fpga_gen.ir.fixed_quant`)."""

from __future__ import annotations

import numpy as np

from ..ir.fixed import cast
from ..ir.fixed_quant import fixed_quant_params, softmax_diff_type
from ..ir.graph import Node
from .kernels import kernel, weight_raw

__all__ = ["round_raw"]


def round_raw(v, mode: str, xp):
    """v (exact reals with at most one bit below the binary point beyond what a tie needs) rounded to an
    integer by the ap_fixed quantization mode."""
    if mode == "TRN":
        return xp.floor(v)
    if mode == "TRN_ZERO":
        return xp.where(v >= 0, xp.floor(v), xp.ceil(v))
    if mode == "RND":
        return xp.floor(v + 0.5)
    if mode == "RND_MIN_INF":
        return xp.ceil(v - 0.5)
    if mode == "RND_ZERO":
        return xp.where(v >= 0, xp.ceil(v - 0.5), xp.floor(v + 0.5))
    if mode == "RND_INF":
        return xp.where(v >= 0, xp.floor(v + 0.5), xp.ceil(v - 0.5))
    if mode == "RND_CONV":
        return xp.rint(v)
    raise NotImplementedError(f"rounding mode {mode!r}")


@kernel("fixed_quant")
def fixed_quant_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    rt = node.types["result"]
    p = fixed_quant_params(node.weights["k"], node.weights["i"], node.weights["f"], node.attrs["overflow"], xt, rt)
    scale_in = xp.asarray(np.ldexp(1.0, -p["shift"]))
    r = round_raw(x * scale_in, node.attrs["rounding"], xp)
    lo, hi = xp.asarray(p["lo"].astype(np.float64)), xp.asarray(p["hi"].astype(np.float64))
    if node.attrs["overflow"] == "WRAP":
        m = xp.asarray(np.ldexp(1.0, p["bits"]))
        r = xp.mod(r - lo, m) + lo
    else:
        r = xp.minimum(xp.maximum(r, lo), hi)
    out = r * xp.asarray(np.ldexp(1.0, p["out_shift"]))
    return xp.where(xp.asarray(p["live"]), out, 0.0 * out) + 0.0      # + 0.0: no negative zeros


@kernel("hgq_softmax")
def hgq_softmax_kernel(node: Node, inputs, in_types, xp):
    """HGQ2's stable QSoftmax: exp table on (exp_in)(max - x), the exact sum, 1/x table on (inv_in)(sum),
    the exact product (what fpga_gen::hgq_softmax computes)."""
    (x,) = inputs
    (xt,) = in_types
    t = node.types
    dt = softmax_diff_type(xt)
    d = xp.max(x, 1) - x
    c = cast(d, dt, t["exp_in"], xp)
    e = xp.take(weight_raw(node.weights["exp_table"], t["exp_out"]), c - t["exp_in"].raw_min)
    s = xp.sum(e, 1) * 2.0 ** (t["sum"].frac - t["exp_out"].frac)
    ci = cast(s, t["sum"], t["inv_in"], xp)
    v = xp.take(weight_raw(node.weights["inv_table"], t["inv_out"]), ci - t["inv_in"].raw_min)
    prod_frac = t["exp_out"].frac + t["inv_out"].frac
    y = e * xp.reshape(v, (-1, 1)) * 2.0 ** (t["result"].frac - prod_frac)
    return y + 0.0


@kernel("lut")
def lut_kernel(node: Node, inputs, in_types, xp):
    """table[code - min code] (what fpga_gen::lut computes)."""
    (x,) = inputs
    (xt,) = in_types
    return xp.take(weight_raw(node.weights["table"], node.types["result"]), x - xt.raw_min) + 0.0
