"""Keras reshaping layers -> graph (io_parallel, channels_last): ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D
(nearest), Permute: the zeropad, cropping, upsampling and transpose ops (1-D: in_height 1).  Reshape: no node;
io_parallel arrays are flat and C-ordered, so a reshape relabels the array and the layers after it read their
input shape from Keras (:meth:`Context.input_shape`).  (Flatten is a core layer: :mod:`.core`.)
"""

from __future__ import annotations

import numpy as np

from ...ir.graph import Node
from ...ir.spatial import resize_nearest_rows
from .convert import Context, handler
from .inputs import _channels_last, _channels_last_input, _check_shape, _fail, _input, _ints

__all__ = []


def _borders(layer, value, rank: int, what: str) -> tuple[int, int, int, int]:
    """Keras' padding/cropping config -> (top, bottom, left, right); a 1-D layer has no top/bottom."""
    if rank == 1:
        v = (value, value) if isinstance(value, int) else tuple(value)
        b = (0, 0, int(v[0]), int(v[1]))
    else:
        if isinstance(value, int):
            value = ((value, value), (value, value))
        rows, cols = value
        rows = (rows, rows) if isinstance(rows, int) else tuple(rows)
        cols = (cols, cols) if isinstance(cols, int) else tuple(cols)
        b = (int(rows[0]), int(rows[1]), int(cols[0]), int(cols[1]))
    if any(x < 0 for x in b):
        _fail(layer, f"negative {what} {b} is not supported")
    return b


@handler("ZeroPadding1D", "ZeroPadding2D")
def _zeropad(layer, ctx: Context):
    cfg, rank, src, (in_h, in_w, n_chan) = _channels_last_input(layer, ctx)
    pads = _borders(layer, cfg["padding"], rank, "padding")
    hw = (in_h + pads[0] + pads[1], in_w + pads[2] + pads[3])
    shape = _check_shape(layer, hw[2 - rank:] + (n_chan,))
    ctx.add(Node(layer.name, "zeropad", [src], shape,
                 attrs={"in_height": in_h, "in_width": in_w, "n_chan": n_chan, "pads": pads}))


@handler("Cropping1D", "Cropping2D")
def _cropping(layer, ctx: Context):
    cfg, rank, src, (in_h, in_w, n_chan) = _channels_last_input(layer, ctx)
    crops = _borders(layer, cfg["cropping"], rank, "cropping")
    hw = (in_h - crops[0] - crops[1], in_w - crops[2] - crops[3])
    if min(hw) < 1:
        _fail(layer, f"cropping {crops} leaves nothing of the {in_h}x{in_w} input")
    shape = _check_shape(layer, hw[2 - rank:] + (n_chan,))
    ctx.add(Node(layer.name, "cropping", [src], shape,
                 attrs={"in_height": in_h, "in_width": in_w, "n_chan": n_chan, "crops": crops}))


@handler("UpSampling1D", "UpSampling2D")
def _upsampling(layer, ctx: Context):
    cfg = layer.get_config()
    _channels_last(layer, cfg)
    rank = 1 if type(layer).__name__.endswith("1D") else 2
    if cfg.get("interpolation", "nearest") != "nearest":
        _fail(layer, f"interpolation={cfg['interpolation']!r} is not supported; use interpolation='nearest'")
    src, (in_h, in_w, n_chan) = _input(layer, ctx, rank)
    size = (1,) + _ints(cfg["size"], 1) if rank == 1 else _ints(cfg["size"], 2)
    out_hw = (in_h * size[0], in_w * size[1])
    for n, f in zip((in_h, in_w), size):
        try:
            rows = resize_nearest_rows(n, n * f)
        except ValueError as e:
            _fail(layer, f"{e}; use a smaller input")
        if not np.array_equal(rows, np.arange(n * f) // f):
            _fail(layer, f"nnet::resize_nearest's 16-bit fixed-point ratio does not repeat every input {f} times "
                         f"over {n} rows; use a smaller input")
    shape = _check_shape(layer, out_hw[2 - rank:] + (n_chan,))
    ctx.add(Node(layer.name, "upsampling", [src], shape,
                 attrs={"in_height": in_h, "in_width": in_w, "n_chan": n_chan, "size": size}))


@handler("Reshape")
def _reshape(layer, ctx: Context):
    # io_parallel arrays are flat in C order: a reshape relabels the array (the next layers read their
    # input shape from Keras, see Context.input_shape)
    (src,) = ctx.inputs_of(layer)
    ctx.alias[layer.name] = src


@handler("Permute")
def _permute(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    in_shape = ctx.input_shape(layer)
    dims = tuple(int(d) for d in layer.get_config()["dims"])
    perm = tuple(d - 1 for d in dims)
    if sorted(perm) != list(range(len(in_shape))):
        _fail(layer, f"dims={dims} is not a permutation of the input axes 1..{len(in_shape)}")
    shape = _check_shape(layer, tuple(in_shape[p] for p in perm))
    ctx.add(Node(layer.name, "transpose", [src], shape, attrs={"in_shape": tuple(in_shape), "perm": perm}))
