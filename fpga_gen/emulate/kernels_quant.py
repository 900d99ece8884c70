"""Kernels of the QKeras quantizer ops: quant_act (element-wise activation quantizers) and
apply_scale (a per-channel scale and bias after a dense/conv, QKeras' alpha='auto_po2').
What templates/hls/firmware/fpga_gen_quant.h.j2 and nnet::normalize compute, op for op."""

from __future__ import annotations

import numpy as np

from ..ir.fixed import cast
from ..ir.graph import Node
from ..ir.quant import affine_type, leaky_types, multithreshold_type, scale_sum_type
from ..ir.types import FixedType
from .kernels import kernel, weight_raw

__all__ = []


def _clamp(r, rt: FixedType, lo, hi, xp):
    if lo is not None:
        r = xp.maximum(r, float(lo) * 2.0 ** rt.frac)
    if hi is not None:
        r = xp.minimum(r, float(hi) * 2.0 ** rt.frac)
    return r


@kernel("quant_act")
def quant_act_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    rt = node.types["result"]
    a = node.attrs
    fn = a["function"]
    if fn == "round":
        # v = x * 2**-shift + offset (exact), cast to the result (RND_CONV, SAT), then clamp
        shift, offset = int(a.get("shift", 0)), float(a.get("offset", 0.0))
        at = affine_type(xt, shift, offset)
        v = x * 2.0 ** (at.frac - xt.frac - shift) + offset * 2.0 ** at.frac
        return _clamp(cast(v, at, rt, xp), rt, a.get("lo"), a.get("hi"), xp)
    if fn == "leaky":
        k = int(a["shift"])
        ty = leaky_types(xt, k, int(a["bits"]), int(a["integer"]))
        pos = cast(cast(xp.where(x > 0, x, 0.0), xt, ty["pos"], xp), ty["pos"], rt, xp)
        v = cast(xp.where(x > 0, 0.0, x), xt, ty["negw"], xp)            # x in negw (exact), then >> k
        q = cast(v, FixedType(ty["negw"].width, ty["negw"].integer - k, True), ty["neg"], xp)
        neg_min = float(a["neg_min"])
        q_val = q * 2.0 ** -ty["neg"].frac
        neg = xp.where(q_val < neg_min, neg_min * 2.0 ** rt.frac, q * 2.0 ** (rt.frac - ty["neg"].frac))
        return xp.where(x > 0, pos, neg)
    if fn == "step":
        # x >= threshold (or > when not inclusive) -> hi; for ternary x <= -threshold -> lo, else mid
        t = float(a["threshold"])
        v = x * 2.0 ** -xt.frac                                       # exact real values
        up = (v >= t) if a.get("inclusive", True) else (v > t)
        hi, lo = float(a["hi"]) * 2.0 ** rt.frac, float(a["lo"]) * 2.0 ** rt.frac
        if a.get("mid") is None:
            return xp.where(up, hi + xp.zeros_like(x), lo + xp.zeros_like(x))
        down = (v <= -t) if a.get("inclusive", True) else (v < -t)
        mid = float(a["mid"]) * 2.0 ** rt.frac
        return xp.where(up, hi + xp.zeros_like(x), xp.where(down, lo + xp.zeros_like(x), mid + xp.zeros_like(x)))
    if fn == "table":
        # levels[number of thresholds <= x], the thresholds on x's grid (passes/quant_table.py)
        thr = weight_raw(node.weights["thresholds"], xt)
        levels = weight_raw(node.weights["levels"], rt)
        count = xp.zeros_like(x)
        for t in thr:
            count = count + xp.where(x >= float(t), 1.0, 0.0)
        return xp.take(levels, count)
    if fn == "multithreshold":
        # lo + number of thresholds of the element's channel (flat index % n_chan) <= x
        thr = np.asarray(node.weights["thresholds"], dtype=np.float64)
        n_chan, n_thr = thr.shape
        weight_raw(thr, multithreshold_type(thr, xt))               # exactly representable in their type
        full = np.tile(thr * 2.0 ** xt.frac, (x.shape[1] // n_chan, 1))     # on x's raw scale (exact: float64)
        count = xp.zeros_like(x)
        for t in range(n_thr):
            count = count + xp.where(x >= xp.asarray(full[:, t]), 1.0, 0.0)
        return (count + float(a["lo"])) * 2.0 ** rt.frac
    raise NotImplementedError(f"quant_act function {fn!r} has no emulator kernel")


@kernel("apply_scale")
def apply_scale_kernel(node: Node, inputs, in_types, xp):
    """nnet::normalize: data * scale[c] + bias[c] held exactly, cast to the result type."""
    (x,) = inputs
    (xt,) = in_types
    st, bt, rt = node.types["scale"], node.types["bias"], node.types["result"]
    scale, bias = node.weights["scale"], node.weights["bias"]
    sum_t = scale_sum_type(xt, st, bt, scale, bias)
    n_chan = len(scale)
    s_raw = weight_raw(scale, st)
    b_raw = weight_raw(bias, bt) * 2.0 ** (sum_t.frac - bt.frac)
    reps = x.shape[1] // n_chan
    s_full = xp.asarray(np.tile(s_raw, reps) * 2.0 ** (sum_t.frac - xt.frac - st.frac))
    b_full = xp.asarray(np.tile(b_raw, reps))
    return cast(x * s_full + b_full, sum_t, rt, xp)
