"""2-D window geometry shared by conv2d and pooling: output sizes, Keras padding, im2col indices.

Arrays are channels_last and flat: pixel (r, c), channel k of an (H, W, C) tensor is element
``(r * W + c) * C + k``.  This is the io_parallel array layout of nnet_utils.
"""

from __future__ import annotations

import numpy as np

__all__ = ["out_size_and_pads", "window_indices"]


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
