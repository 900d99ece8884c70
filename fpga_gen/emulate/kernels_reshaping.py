"""Bit-exact kernels of the data-movement ops (zeropad, cropping, upsampling, transpose), registered into
:data:`KERNELS`.

Each is a gather with the op's index map from :mod:`fpga_gen.ir.spatial` (-1: a zero), followed by the
nnet kernel's cast to the result type (``(res_T) data``; resize_nearest copies without one, its result type
is the input type).  The 1-D layers are the same ops with in_height 1.  conv2d and pooling, which also
run Conv1D, the 1-D poolings and global pooling, are in :mod:`fpga_gen.emulate.kernels_conv`.
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import cast
from ..ir.graph import Node
from ..ir.spatial import crop_indices, pad_indices, resize_nearest_indices, transpose_indices
from .kernels import kernel

__all__ = ["gather_kernel"]


def _index_map(node: Node) -> np.ndarray:
    a = node.attrs
    if node.op == "transpose":
        return transpose_indices(tuple(a["in_shape"]), tuple(a["perm"]))
    h, w, c = int(a["in_height"]), int(a["in_width"]), int(a["n_chan"])
    if node.op == "zeropad":
        return pad_indices(h, w, c, tuple(a["pads"]))
    if node.op == "cropping":
        return crop_indices(h, w, c, tuple(a["crops"]))
    if node.op == "upsampling":
        sh, sw = (int(s) for s in a["size"])
        return resize_nearest_indices(h, w, c, h * sh, w * sw)
    raise NotImplementedError(f"op {node.op!r} has no index map")


@kernel("zeropad")
@kernel("cropping")
@kernel("upsampling")
@kernel("transpose")
def gather_kernel(node: Node, inputs, in_types, xp):
    (x,) = inputs
    (xt,) = in_types
    key = (node.op, repr(sorted(node.attrs.items())))
    cached = node.meta.get("_emu_gather")
    if cached is None or cached[0] != key:
        idx = _index_map(node)
        if idx.size != node.size:
            raise ValueError(f"the index map has {idx.size} values, the node's shape {node.shape} {node.size}")
        cached = (key, idx, bool((idx < 0).any()))
        node.meta["_emu_gather"] = cached
    _, idx, has_zeros = cached
    if has_zeros:
        # one extra column of raw 0 for the padded cells (0 is exact in every type)
        x = xp.concat([x, xp.zeros_like(x[:, :1])], axis=1)
        idx = np.where(idx < 0, x.shape[1] - 1, idx)
    return cast(x[:, idx], xt, node.types["result"], xp)
