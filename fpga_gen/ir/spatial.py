"""Geometry shared by the spatial ops: output sizes, Keras padding, im2col window indices (conv2d, pooling)
and the index maps of the data-movement ops (zeropad, cropping, upsampling, transpose).

Arrays are channels_last and flat: pixel (r, c), channel k of an (H, W, C) tensor is element
``(r * W + c) * C + k``.  This is the io_parallel array layout of nnet_utils.
"""

from __future__ import annotations

import numpy as np

__all__ = ["out_size_and_pads", "window_indices", "pad_indices", "crop_indices", "resize_nearest_rows",
           "resize_nearest_indices", "transpose_indices", "transpose_strides"]


def out_size_and_pads(in_size: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, pad before, pad after) along one axis, as Keras (and hls4ml) compute them."""
    if padding == "valid":
        if in_size < window:
            raise ValueError(f"window {window} is larger than the input size {in_size}")
        return (in_size - window) // stride + 1, 0, 0
    if padding == "same":
        out = -(-in_size // stride)
        total = max((out - 1) * stride + window - in_size, 0)
        return out, total // 2, total - total // 2
    raise ValueError(f"padding {padding!r} is not supported; use 'valid' or 'same'")


def window_indices(in_h: int, in_w: int, n_chan: int, kernel: tuple, strides: tuple, pads: tuple) -> np.ndarray:
    """int64 (out_h * out_w, kh * kw * n_chan): for each output pixel, the flat input index of every
    (kernel row, kernel column, channel) of its window, or -1 for a padded cell.  The column order is
    that of a Keras kernel reshaped to (kh * kw * n_chan, n_filt) and of hls4ml's im2col."""
    kh, kw = kernel
    sh, sw = strides
    pt, pb, pl, pr = pads
    out_h = (in_h + pt + pb - kh) // sh + 1
    out_w = (in_w + pl + pr - kw) // sw + 1
    r = np.arange(out_h)[:, None, None, None, None] * sh + np.arange(kh)[None, None, :, None, None] - pt
    c = np.arange(out_w)[None, :, None, None, None] * sw + np.arange(kw)[None, None, None, :, None] - pl
    k = np.arange(n_chan)[None, None, None, None, :]
    idx = (r * in_w + c) * n_chan + k
    inside = (r >= 0) & (r < in_h) & (c >= 0) & (c < in_w)
    idx = np.where(inside, idx, -1)
    return idx.reshape(out_h * out_w, kh * kw * n_chan).astype(np.int64)


# ------------------------------------------------------------------ data-movement layers
# Each returns, for every output element (channels_last, flat, C order), the flat input index it copies, or -1
# where the output is a zero (padding).  The emulator gathers with them; the nnet kernels walk the same maps.

def pad_indices(in_h: int, in_w: int, n_chan: int, pads: tuple) -> np.ndarray:
    """nnet::zeropad2d_cl / zeropad1d_cl: pads (top, bottom, left, right) zero rows and columns."""
    pt, pb, pl, pr = (int(p) for p in pads)
    r = np.arange(in_h + pt + pb)[:, None, None] - pt
    c = np.arange(in_w + pl + pr)[None, :, None] - pl
    k = np.arange(n_chan)[None, None, :]
    inside = (r >= 0) & (r < in_h) & (c >= 0) & (c < in_w)
    return np.where(inside, (r * in_w + c) * n_chan + k, -1).reshape(-1).astype(np.int64)


def crop_indices(in_h: int, in_w: int, n_chan: int, crops: tuple) -> np.ndarray:
    """nnet::cropping2d_cl / cropping1d_cl: drops crops (top, bottom, left, right) rows and columns."""
    ct, cb, cl, cr = (int(p) for p in crops)
    if ct + cb >= in_h or cl + cr >= in_w:
        raise ValueError(f"cropping {crops} leaves nothing of a {in_h}x{in_w} input")
    r = np.arange(ct, in_h - cb)[:, None, None]
    c = np.arange(cl, in_w - cr)[None, :, None]
    k = np.arange(n_chan)[None, None, :]
    return ((r * in_w + c) * n_chan + k).reshape(-1).astype(np.int64)


def resize_nearest_rows(in_size: int, out_size: int) -> np.ndarray:
    """The source row (or column) of every output row of nnet::resize_nearest: ``(i * ratio) >> 16`` with
    ``ratio = (in_size << 16) / out_size + 1`` in 32-bit ``int`` arithmetic."""
    if in_size >= 1 << 15 or out_size * (((in_size << 16) // out_size) + 1) >= 1 << 31:
        raise ValueError(f"nnet::resize_nearest overflows its int arithmetic resizing {in_size} to {out_size}")
    ratio = ((in_size << 16) // out_size) + 1
    return (np.arange(out_size, dtype=np.int64) * ratio) >> 16


def resize_nearest_indices(in_h: int, in_w: int, n_chan: int, out_h: int, out_w: int) -> np.ndarray:
    """nnet::resize_nearest: output pixel (i, j) copies input pixel (rows[i], cols[j])."""
    r = resize_nearest_rows(in_h, out_h)[:, None, None]
    c = resize_nearest_rows(in_w, out_w)[None, :, None]
    k = np.arange(n_chan)[None, None, :]
    return ((r * in_w + c) * n_chan + k).reshape(-1).astype(np.int64)


def transpose_indices(in_shape: tuple, perm: tuple) -> np.ndarray:
    """nnet::transpose: output element i (C order over the permuted shape) copies this input element."""
    in_shape = tuple(int(d) for d in in_shape)
    return np.arange(int(np.prod(in_shape)), dtype=np.int64).reshape(in_shape).transpose(perm).reshape(-1)


def transpose_strides(in_shape: tuple, perm: tuple) -> tuple[tuple, tuple]:
    """(to_shape, perm_strides) as hls4ml's transpose_config_gen writes them for nnet::transpose."""
    in_shape = tuple(int(d) for d in in_shape)
    strides = [int(np.prod(in_shape[i + 1:])) for i in range(len(in_shape))]
    return tuple(in_shape[p] for p in perm), tuple(strides[p] for p in perm)
