"""Bit-exact kernels of the 2-D ops (conv2d, pooling), registered into :data:`KERNELS`.

Arrays are flat channels_last (see :mod:`fpga_gen.ir.spatial`).  A window is gathered with
:func:`fpga_gen.ir.spatial.window_indices` from the input with one extra column holding the
padded cell's value; conv2d then *is* the dense kernel on every output pixel (the same C++
arithmetic: products cast to accum, bias first, then the patch in order).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ..ir.spatial import window_indices
from ..ir.types import FixedType
from .fixed import cast
from .kernels import dense_kernel, kernel

__all__ = ["conv2d_kernel", "pooling_kernel"]

# gathered windows are (batch, windows, cells) float64: split the batch so that one piece stays below this
# (2**20 values, 8 MB: the pieces stay in the allocator's heap and near the caches; the digits CNN runs
# ~25 % faster per 10,000 images than with one 2**24-value piece, whose arrays are mapped and zeroed anew
# by the kernel on every call)
MAX_GATHERED = 1 << 20


def _in_chunks(fn):
    """Run ``fn`` on pieces of the batch whose gathered windows fit in MAX_GATHERED values."""
    def run(node: Node, inputs, in_types, xp):
        (x,) = inputs
        a = node.attrs
        window = a["kernel_size"] if node.op == "conv2d" else a["pool_size"]
        per_sample = node.size // (1 if node.op == "pooling" else int(a["n_filt"])) * \
            int(window[0]) * int(window[1]) * (int(a["n_chan"]) if node.op == "conv2d" else 1)
        step = max(1, MAX_GATHERED // max(per_sample, 1))
        if x.shape[0] <= step:
            return fn(node, inputs, in_types, xp)
        return xp.concat([fn(node, [x[i:i + step]], in_types, xp) for i in range(0, x.shape[0], step)], axis=0)
    run.__doc__, run.__name__ = fn.__doc__, fn.__name__
    return run


def _windows(node: Node, x, pad_value: float, xp, window: tuple, n_chan_window: int, tap_major: bool = False):
    """(batch, n_windows, window cells) gathered from flat x; -1 indices read ``pad_value``.

    ``tap_major``: (batch, kh * kw, n_windows * n_chan_window) instead, each window cell (tap) one contiguous
    row of (pixel, channel) values -- what the pooling kernels fold tap by tap."""
    a = node.attrs
    key = "_emu_window_take_taps" if tap_major else "_emu_window_take"
    idx = node.meta.get(key)
    n = x.shape[1]
    if idx is None or idx[0] != n:
        w = window_indices(int(a["in_height"]), int(a["in_width"]), n_chan_window, tuple(window),
                           tuple(a["strides"]), tuple(a["pads"]))
        if tap_major:
            taps = int(window[0]) * int(window[1])
            w = w.reshape(w.shape[0], taps, n_chan_window).transpose(1, 0, 2).reshape(taps, -1)
        idx = (n, w.shape, np.where(w < 0, n, w).ravel(), bool((w < 0).any()))   # -1 reads the extra column
        node.meta[key] = idx
    # without padded cells, no extra column (a copy of the whole input) is needed
    padded = xp.concat([x, xp.zeros_like(x[:, :1]) + pad_value], axis=1) if idx[3] else x
    return xp.reshape(xp.take_columns(padded, idx[2]), (x.shape[0],) + idx[1])


@kernel("conv2d")
@_in_chunks
def conv2d_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    a = node.attrs
    kh, kw = a["kernel_size"]
    if getattr(xp, "exact_float32", False) and in_types[0].width <= 24:
        # raw codes below 2**24 are exact in float32: the gathered windows take half the memory, and the dense
        # kernel's float32 products read them as they are (its float64 paths upcast them exactly)
        x = xp.float32(x)
    cols = _windows(node, x, 0.0, xp, (kh, kw), int(a["n_chan"]))         # (B, P, kh*kw*C)
    batch, n_pix, n_in = cols.shape
    # conv_2d_resource_cl adds a pixel's products in dense_resource's order (inputs ir + k * rf), which the
    # dense kernel follows from the strategy and reuse factor when a saturating accum makes order visible
    key = (a.get("strategy", "latency"), int(a.get("reuse_factor", 1)))
    cached = node.meta.get("_emu_conv_dense")
    if cached is None or cached[0] != key:
        kernel_2d = np.asarray(node.weights["kernel"]).reshape(n_in, -1)
        dense = Node(node.name, "dense", list(node.inputs), (kernel_2d.shape[1],),
                     attrs={"n_in": n_in, "n_out": kernel_2d.shape[1], "strategy": key[0], "reuse_factor": key[1]},
                     weights={"kernel": kernel_2d, "bias": np.asarray(node.weights["bias"])},
                     types=node.types)
        cached = (key, dense)
        node.meta["_emu_conv_dense"] = cached
    dense = cached[1]
    y = dense_kernel(dense, [xp.reshape(cols, (batch * n_pix, n_in))], in_types, xp)
    return xp.reshape(y, (batch, -1))


@kernel("pooling")
@_in_chunks
def pooling_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    a = node.attrs
    at, rt = node.types["accum"], node.types["result"]
    n_chan = int(a["n_chan"])
    ph, pw = a["pool_size"]
    if a["mode"] == "max":
        # nnet::pad_val<Max>: the type's top bit set (the most negative value of a signed type)
        pad = float(xt.raw_min) if xt.signed else float(1 << (xt.width - 1))
        narrow = getattr(xp, "exact_float32", False) and xt.width <= 24
        # raw codes (and the pad) below 2**24 are exact in float32: half the memory for the windows
        win = _windows(node, xp.float32(x) if narrow else x, pad, xp, (ph, pw), n_chan, tap_major=True)
        m = win[:, 0, :]
        for i in range(1, ph * pw):
            m = xp.where(win[:, i, :] > m, win[:, i, :], m)
        if narrow:
            m = xp.asarray(m)                                              # back to float64, exactly
        return cast(cast(m, xt, at, xp), at, rt, xp)
    if a["mode"] != "average":
        raise NotImplementedError(f"pooling mode {a['mode']!r} has no emulator kernel")
    win = _windows(node, x, 0.0, xp, (ph, pw), n_chan, tap_major=True)    # (B, ph*pw, P*C)
    # accum_t y = 0; y += x[i] for every cell (padded cells are 0), in order
    frac = max(at.frac, xt.frac)
    integer = max(at.integer + (xt.signed and not at.signed), xt.integer + (at.signed and not xt.signed)) + 1
    sum_t = FixedType(integer + frac, integer, at.signed or xt.signed)
    acc = xp.zeros_like(win[:, 0, :])
    for i in range(ph * pw):
        s = acc * 2.0 ** (frac - at.frac) + win[:, i, :] * 2.0 ** (frac - xt.frac)
        acc = cast(s, sum_t, at, xp)
    # y /= length: integer division of the raw value, truncating towards zero (ap_fixed sdiv/udiv)
    counts = node.meta.get("_emu_counts")
    if counts is None:
        idx = window_indices(int(a["in_height"]), int(a["in_width"]), 1, (ph, pw), tuple(a["strides"]),
                             tuple(a["pads"]))
        counts = np.repeat((idx >= 0).sum(axis=1).astype(np.float64), n_chan)   # (P*C,): per pixel, per channel
        node.meta["_emu_counts"] = counts
    q = xp.trunc(acc / xp.asarray(counts))
    return cast(q, at, rt, xp)
