"""Bit-exact kernel of depthwise_conv2d (nnet::depthwise_conv_2d_latency_cl), registered into :data:`KERNELS`.  Arrays are flat channels_last (see :mod:`fpga_gen.ir.spatial`)."""

from __future__ import annotations

import numpy as np

from ..ir.fixed import _overflow, cast, product_type
from ..ir.graph import Node
from ..ir.types import FixedType
from .kernels import check_products_exact, kernel, weight_raw
from .kernels_conv import MAX_GATHERED, _windows

__all__ = ["batchnorm_kernel", "depthwise_conv2d_kernel"]


def _depthwise(node: Node, x, xt: FixedType, xp):
    a = node.attrs
    kh, kw = a["kernel_size"]
    n_chan = int(a["n_chan"])
    wt, bt, at, rt = (node.types[k] for k in ("weight", "bias", "accum", "result"))
    plan = node.meta.get("_emu_dw")
    if plan is None or plan[0] is not xp:
        w = weight_raw(np.asarray(node.weights["kernel"]).reshape(kh * kw, n_chan), wt)
        b = weight_raw(node.weights["bias"], bt)
        pt = product_type(xt, wt)
        check_products_exact(xt, wt, w)
        plan = (xp, xp.asarray(w), xp.asarray(cast(b, bt, at)), pt)
        node.meta["_emu_dw"] = plan
    _, w, b_acc, pt = plan
    win = _windows(node, x, 0.0, xp, (kh, kw), n_chan)                      # (B, P, kh*kw*C)
    batch, n_pix, _ = win.shape
    win = xp.reshape(win, (batch, n_pix, kh * kw, n_chan))
    prods = cast(win * w, pt, at, xp)                                        # mult[i] = (accum_t) (x * w)
    if at.saturation == "WRAP":
        acc = _overflow(xp.sum(prods, 2) + b_acc, at, xp)                    # wrapping is modular
    else:
        wide = FixedType(at.width + 1, at.integer + 1, at.signed)
        acc = b_acc + xp.zeros_like(prods[:, :, 0, :])
        for i in range(kh * kw):                                             # acc += mult, cell by cell
            acc = cast(acc + prods[:, :, i, :], wide, at, xp)
    return xp.reshape(cast(acc, at, rt, xp), (batch, -1))


@kernel("depthwise_conv2d")
def depthwise_conv2d_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    kh, kw = node.attrs["kernel_size"]
    step = max(1, MAX_GATHERED // max(node.size * kh * kw, 1))
    if x.shape[0] <= step:
        return _depthwise(node, x, xt, xp)
    return xp.concat([_depthwise(node, x[i:i + step], xt, xp) for i in range(0, x.shape[0], step)], axis=0)
