"""Bit-exact kernels of the 2-D ops (conv2d, pooling), registered into :data:`KERNELS`.

Arrays are flat channels_last (see :mod:`fpga_gen.ir.spatial`).  A window is gathered with
:func:`fpga_gen.ir.spatial.window_indices` from the input with one extra column holding the
padded cell's value; conv2d then *is* the dense kernel on every output pixel (the same C++
arithmetic: products cast to accum, bias first, then the patch in order).

Fast forms with the same bits, where their conditions hold (tests/test_emulate_fast_paths.py): a small
conv2d with an exact WRAP accumulator runs as the dense kernel on bands of input rows (or on the whole
image) instead of on gathered windows; max and average pooling over windows that tile the image read
strided views instead of gathered windows.
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import NumpyOps, cast, is_narrow, is_noop_cast, product_type
from ..ir.graph import Node
from ..ir.spatial import window_indices
from ..ir.types import FixedType
from .kernels import check_products_exact, dense_kernel, kernel, weight_raw

__all__ = ["conv2d_kernel", "pooling_kernel"]

# a conv2d whose band matrix (kh*in_w*n_chan, out_w*n_filt: see _toeplitz_dense) has at most this many entries,
# and whose input is at most TOEPLITZ_MAX_DENSITY kernels wide, runs as a dense layer on bands of the image:
# one BLAS product on a small gather (the digits CNN's 8x8 convolutions: 3-4x faster than the window form)
TOEPLITZ_MAX_ENTRIES = 1 << 19
TOEPLITZ_MAX_DENSITY = 16
# the gather of a band value costs about as much as this many multiply-adds (the whole-image matrix, no gather,
# is taken when its products cost less than the bands' products and gathers)
BAND_GATHER_COST = 16

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


def _out_size(node: Node) -> tuple[int, int]:
    """(out_h, out_w) of a conv2d (a Conv1D's node shape has no height)."""
    a = node.attrs
    pt, pb, pl, pr = (int(p) for p in a["pads"])
    return ((int(a["in_height"]) + pt + pb - int(a["kernel_size"][0])) // int(a["strides"][0]) + 1,
            (int(a["in_width"]) + pl + pr - int(a["kernel_size"][1])) // int(a["strides"][1]) + 1)


def _toeplitz_dense(node: Node, xt: FixedType):
    """The conv2d as a dense layer on bands of the image, or None where that is not exact or not worth it:
    (dense Node, band index or None, rows per image).

    Output row r reads the kh input rows r*sh - pad_top + i (all columns and channels: a band of kh*W*C
    values, a padded row reading zeros); every output row applies the same (kh*W*C, out_w*n_filt) matrix to
    its band -- the window weights of each output column, zero elsewhere -- and the conv's bias, tiled per
    column.  The batch's bands, one per row of the dense kernel's input, go through one BLAS product: no
    (pixels, kh*kw*C) window gather, and N = out_w*n_filt columns where the window form has n_filt.  A band
    that is the whole image (out_h 1, no padded row) needs no gather.

    Exact where the dense kernel takes a matrix product (accum WRAP and every product exact in accum: then the
    order of the sum does not matter) and no bias raw is -0.0: the matrix adds the same nonzero products as the
    window form plus exact zeros, so the two sums agree but for the sign of a zero sum, which adding the bias
    (nonzero, or +0.0) erases, as it does in the dense kernel for both.  The padded cells read 0 in the window
    form: they add only zeros too."""
    a = node.attrs
    at, wt, bt = node.types["accum"], node.types["weight"], node.types["bias"]
    h, w = int(a["in_height"]), int(a["in_width"])
    kh, kw = (int(k) for k in a["kernel_size"])
    sh, sw = (int(s) for s in a["strides"])
    pt, _, pl, _ = (int(p) for p in a["pads"])
    n_chan, n_filt = int(a["n_chan"]), int(a["n_filt"])
    out_h, out_w = _out_size(node)
    n_band = kh * w * n_chan
    if at.saturation != "WRAP" or n_band * out_w * n_filt > TOEPLITZ_MAX_ENTRIES or \
            w > TOEPLITZ_MAX_DENSITY * kw:
        return None
    n_in = h * w * n_chan
    if n_in * node.size <= min(TOEPLITZ_MAX_ENTRIES, out_h * n_band * (out_w * n_filt + BAND_GATHER_COST)):
        # cheaper as one band: the whole image, every output row (kh = h, no padded row, one row per image)
        whole, kh_band, n_band, rows_out, band_h = True, h, n_in, 1, out_h
    else:
        whole, kh_band, rows_out, band_h = False, kh, out_h, 1
    if at.frac < product_type(xt, wt).frac:
        return None                                                   # products rounded to accum: not a matmul
    kernel_4d = np.asarray(node.weights["kernel"], dtype=np.float64).reshape(kh, kw, n_chan, n_filt)
    bias = np.asarray(node.weights["bias"], dtype=np.float64).reshape(n_filt)
    # the window form's checks, in its order, on its own weights (the same error where it raises one)
    w_raw = weight_raw(kernel_4d.reshape(kh * kw * n_chan, n_filt), wt)
    b_acc = cast(weight_raw(bias, bt), bt, at)
    check_products_exact(xt, wt, w_raw)
    if ((b_acc == 0) & np.signbit(b_acc)).any():
        return None                                                   # a -0.0 bias keeps the sum's zero sign
    # matrix[(band row, input column, channel), (output row in the band, output column, filter)]
    matrix = np.zeros((kh_band, w, n_chan, band_h, out_w, n_filt))
    for r in range(band_h):
        for i in range(kh):
            for q in range(out_w):
                for j in range(kw):
                    row, col = r * sh + i - pt if whole else i, q * sw + j - pl
                    if 0 <= row < kh_band and 0 <= col < w:
                        matrix[row, col, :, r, q, :] = kernel_4d[i, j, :, :]
    if whole:
        band = None
    else:
        rows = np.arange(out_h)[:, None] * sh + np.arange(kh)[None, :] - pt      # (out_h, kh) input rows
        band = np.where(((rows >= 0) & (rows < h))[:, :, None],
                        rows[:, :, None] * (w * n_chan) + np.arange(w * n_chan)[None, None, :], -1).reshape(-1)
        if out_h == 1 and np.array_equal(band, np.arange(n_in)):
            band = None                                               # the band is the image itself
        else:                                                         # (index, padded): -1 reads column n_in
            band = (np.where(band < 0, n_in, band), bool((band < 0).any()))
    n_out = band_h * out_w * n_filt
    dense = Node(node.name, "dense", list(node.inputs), (n_out,),
                 attrs={"n_in": n_band, "n_out": n_out, "strategy": "latency", "reuse_factor": 1},
                 weights={"kernel": matrix.reshape(n_band, n_out), "bias": np.tile(bias, band_h * out_w)},
                 types=node.types)
    return dense, band, rows_out


@kernel("conv2d")
def conv2d_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    key = (in_types[0], node.types["accum"], node.types["weight"], node.types["bias"])
    cached = node.meta.get("_emu_conv_toeplitz")
    if cached is None or cached[0] != key:
        cached = (key, _toeplitz_dense(node, in_types[0]))
        node.meta["_emu_conv_toeplitz"] = cached
    if cached[1] is None:
        return _conv2d_windows(node, inputs, in_types, xp)
    dense, band, out_h = cached[1]
    if band is not None:
        f32 = getattr(xp, "exact_float32", False) and in_types[0].width <= 24   # exact: half the memory
        if isinstance(xp, NumpyOps):
            x = _bands_strided(node, x, np.float32 if f32 else np.float64)
        else:
            if f32:
                x = xp.float32(x)
            if band[1]:
                x = xp.concat([x, xp.zeros_like(x[:, :1])], axis=1)   # a padded row reads this column: +0.0
            x = xp.take_columns(x, band[0])
        x = xp.reshape(x, (-1, dense.attrs["n_in"]))
    y = dense_kernel(dense, [x], in_types, xp)
    return xp.reshape(y, (-1, out_h * dense.attrs["n_out"]))


def _bands_strided(node: Node, x, dtype):
    """The band gather of conv2d_kernel on numpy: x copied once into an image with its padded rows (+0.0), the
    bands read from it as one strided view of overlapping rows (the same values as the indexed gather)."""
    a = node.attrs
    h, w, c = int(a["in_height"]), int(a["in_width"]), int(a["n_chan"])
    kh, sh, pt = int(a["kernel_size"][0]), int(a["strides"][0]), int(a["pads"][0])
    out_h = _out_size(node)[0]
    rows = max(pt + h, (out_h - 1) * sh + kh)
    row = w * c
    buf = np.zeros((x.shape[0], rows * row), dtype=dtype)
    buf[:, pt * row:(pt + h) * row] = x
    item = buf.itemsize
    view = np.lib.stride_tricks.as_strided(buf, (x.shape[0], out_h, kh * row), (buf.strides[0], sh * row * item, item),
                                           writeable=False)
    return np.ascontiguousarray(view)


@_in_chunks
def _conv2d_windows(node: Node, inputs, in_types, xp):
    """conv2d as the dense kernel on every output pixel's gathered window."""
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


def _sign_bits(x, signed: bool):
    """For numpy float array x: None when it holds a -0.0, else (no value has its sign bit set, x's bits as
    integers).  One reduction over the bits where no value is negative."""
    bits = x.view(np.int32 if x.dtype == np.float32 else np.int64)
    if bits.size == 0 or bits.min() >= 0:
        return True, bits                             # no sign bit set anywhere
    if not signed or (bits == np.iinfo(bits.dtype).min).any():
        return None                                   # (values of an unsigned type are >= 0: a sign bit is -0.0)
    return False, bits


def _pool_tiles(node: Node, x, xp):
    """(h, w, c, ph, pw) where the pooling windows are non-overlapping, unpadded and tile the image and xp is
    numpy (the strided-view forms below), else None."""
    a = node.attrs
    h, w, c = int(a["in_height"]), int(a["in_width"]), int(a["n_chan"])
    ph, pw = (int(p) for p in a["pool_size"])
    if not isinstance(xp, NumpyOps) or tuple(int(s) for s in a["strides"]) != (ph, pw) or any(a["pads"]) or \
            h % ph or w % pw or x.shape[1] != h * w * c:
        return None
    return h, w, c, ph, pw


def _max_pool_tiles(node: Node, x, xt: FixedType, xp):
    """Max pooling over non-overlapping, unpadded windows that tile the image, as np.maximum over strided views
    of x (no gather; narrow x stays narrow), or None where that does not apply.

    The kernel's fold ``m = where(x_i > m, x_i, m)`` keeps the first of equal values; the maximum is the same
    value, so the same bits, except where a window's maximum is a zero of both signs: it applies only where x
    holds no -0.0 (raw codes are never NaN)."""
    tiles = _pool_tiles(node, x, xp)
    if tiles is None:
        return None
    h, w, c, ph, pw = tiles
    signs = _sign_bits(x, xt.signed)
    if signs is None:
        return None
    # no value negative: the floats order as their bits do (integer maxima are faster than float ones)
    v = (signs[1] if signs[0] else x).reshape(x.shape[0], h // ph, ph, w // pw, pw * c)   # (batch, out row, i,
    #                                                                                       out col, (j, chan))
    m = v[:, :, 0]
    for i in range(1, ph):
        m = np.maximum(m, v[:, :, i], out=None if i == 1 else m)
    m = m.reshape(x.shape[0], h // ph, w // pw, pw, c)
    r = m[:, :, :, 0]
    for j in range(1, pw):
        r = np.maximum(r, m[:, :, :, j], out=None if j == 1 else r)
    r = np.array(r).reshape(x.shape[0], -1) if ph * pw == 1 else r.reshape(x.shape[0], -1)
    return r.view(x.dtype)


@kernel("pooling")
def pooling_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    at, rt = node.types["accum"], node.types["result"]
    if node.attrs["mode"] == "max":
        m = _max_pool_tiles(node, x, xt, xp)
        if m is not None:
            if is_noop_cast(xt, at) and is_noop_cast(at, rt) and (rt.width <= 24 or not is_narrow(m)):
                return m                                                   # narrow stays narrow
            return cast(cast(xp.asarray(m), xt, at, xp), at, rt, xp)
    else:
        if is_narrow(x):
            x = xp.asarray(x)                                              # average pooling sums in float64
        y = _average_pool_tiles(node, x, xt, xp)
        if y is not None:
            return y
    return _pooling_windows(node, [x], in_types, xp)


def _average_pool_tiles(node: Node, x, xt: FixedType, xp):
    """Average pooling over non-overlapping, unpadded windows that tile the image, where no partial sum can
    leave accum and accum's grid holds every input value: every cast of the kernel's loop is then a no-op, so
    the sum is exact in any order (plus +0.0, the sign the kernel's sum from +0.0 gives a zero), and the
    division by the cell count (all windows full) is the kernel's.  On numpy, with strided views (no gather);
    None where that does not apply."""
    at, rt = node.types["accum"], node.types["result"]
    tiles = _pool_tiles(node, x, xp)
    if tiles is None or at.frac < xt.frac:
        return None
    h, w, c, ph, pw = tiles
    scale = 2.0 ** (at.frac - xt.frac)
    lo = -at.raw_max if at.saturation == "SAT_SYM" and at.signed else at.raw_min
    if ph * pw * xt.raw_max * scale > at.raw_max or ph * pw * xt.raw_min * scale < lo:
        return None                                                   # a partial sum may wrap or saturate
    v = xp.reshape(x, (x.shape[0], h // ph, ph, w // pw, pw, c))
    acc = None
    for i in range(ph):
        for j in range(pw):   # the first cell plus +0.0 (a zero sum is then +0.0), then the others
            acc = v[:, :, i, :, j] + 0.0 if acc is None else np.add(acc, v[:, :, i, :, j], out=acc)
    if scale != 1.0:
        acc *= scale
    # y /= length: integer division of the raw value, truncating towards zero (ap_fixed sdiv/udiv)
    q = np.trunc(np.divide(acc, float(ph * pw), out=acc), out=acc)
    return cast(q.reshape(x.shape[0], -1), at, rt, xp)


@_in_chunks
def _pooling_windows(node: Node, inputs, in_types, xp):
    """pooling on windows gathered tap by tap."""
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
        if narrow and is_noop_cast(xt, at) and is_noop_cast(at, rt) and rt.width <= 24:
            return m                                                       # narrow: exact, width <= 24
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
