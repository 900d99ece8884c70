"""Keras/QKeras 1-D and data-movement layers -> graph (io_parallel, channels_last).

- Conv1D/QConv1D, MaxPooling1D, AveragePooling1D: the conv2d / pooling ops with in_height 1 (nnet's
  1-D kernels are the 2-D loops with one row; see :mod:`fpga_gen.ir.ops`), node shape (width, channels).
- GlobalMax/AveragePooling1D/2D: one pooling window over the whole input (nnet::global_pooling2d_cl).
- ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D (nearest), Permute: the zeropad, cropping, upsampling
  and transpose ops (1-D: in_height 1).
- Reshape: no node.  io_parallel arrays are flat and C-ordered, so a reshape relabels the array; the
  layers after it read their input shape from Keras (:meth:`Context.input_shape`).

Registered into :data:`fpga_gen.frontend.keras.HANDLERS`.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ..ir.spatial import out_size_and_pads, resize_nearest_rows
from .keras import Context, handler, output_shape
from .keras_conv import _check_common, add_layer_activation
from .keras_quant import add_weighted, quantized_weights
from .loader import FrontendError

__all__ = []


def _ints(v, n: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (int(v),) * n
    return tuple(int(x) for x in v)


def _fail(layer, msg: str):
    raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}): {msg}")


def _channels_last(layer, cfg: dict) -> None:
    if cfg.get("data_format", "channels_last") not in (None, "channels_last"):
        _fail(layer, f"data_format={cfg['data_format']!r} is not supported; use data_format='channels_last'")


def _input(layer, ctx: Context, rank: int) -> tuple[str, tuple[int, int, int]]:
    """(source node, (height, width, channels)); a 1-D input (width, channels) has height 1."""
    (src,) = ctx.inputs_of(layer)
    shape = ctx.input_shape(layer)
    if len(shape) != rank + 1:
        what = "(width, channels)" if rank == 1 else "(height, width, channels)"
        _fail(layer, f"needs a {what} input, got shape {shape}")
    return src, ((1,) + shape if rank == 1 else shape)


def _channels_last_input(layer, ctx: Context) -> tuple[dict, int, str, tuple[int, int, int]]:
    """A 1-D or 2-D data-movement layer's config (channels_last checked), rank (1 for a ...1D class), source
    node and (height, width, channels) input (height 1 for 1-D)."""
    cfg = layer.get_config()
    _channels_last(layer, cfg)
    rank = 1 if type(layer).__name__.endswith("1D") else 2
    src, in_shape = _input(layer, ctx, rank)
    return cfg, rank, src, in_shape


def _check_shape(layer, shape: tuple) -> tuple:
    keras = tuple(int(d) for d in output_shape(layer)[1:])     # Keras 3 layers have no .output_shape
    if tuple(shape) != keras:
        _fail(layer, f"computed output shape {tuple(shape)} differs from Keras' {keras}")
    return keras


@handler("Conv1D", "QConv1D")
def _conv1d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    _check_common(layer, cfg)
    if _ints(cfg.get("dilation_rate", 1), 1) != (1,):
        _fail(layer, f"dilation_rate={_ints(cfg['dilation_rate'], 1)} is not supported yet; use dilation_rate=1")
    if int(cfg.get("groups", 1) or 1) != 1:
        _fail(layer, f"groups={cfg['groups']} is not supported yet; use groups=1")
    src, (_, in_w, n_chan) = _input(layer, ctx, 1)
    (kw,), (sw,) = _ints(cfg["kernel_size"], 1), _ints(cfg["strides"], 1)
    ow, pl, pr = out_size_and_pads(in_w, kw, sw, cfg["padding"])
    kernel = np.asarray(layer.get_weights()[0], dtype=np.float64)
    n_filt = int(kernel.shape[-1])
    bias = np.asarray(layer.get_weights()[1], dtype=np.float64) if layer.use_bias else np.zeros(n_filt)
    if kernel.shape != (kw, n_chan, n_filt):
        _fail(layer, f"kernel has shape {kernel.shape}, expected {(kw, n_chan, n_filt)}")
    types, meta = {}, {}
    scale = None
    if cls == "QConv1D":
        kernel, bias, scale = quantized_weights(layer, kernel, bias, types, meta)
    if not np.all(np.isfinite(kernel)) or not np.all(np.isfinite(bias)):
        raise FrontendError(f"layer {layer.name!r}: weights contain NaN or Inf; retrain or clean the model")
    shape = _check_shape(layer, (ow, n_filt))
    out = add_weighted(ctx, Node(layer.name, "conv2d", [src], shape,
                                 attrs={"in_height": 1, "in_width": in_w, "n_chan": n_chan, "n_filt": n_filt,
                                        "kernel_size": (1, kw), "strides": (1, sw), "padding": cfg["padding"],
                                        "pads": (0, 0, pl, pr)},
                                 weights={"kernel": kernel.reshape(1, kw, n_chan, n_filt), "bias": bias},
                                 types=types, meta=meta), scale)
    add_layer_activation(ctx, layer, out)


@handler("MaxPooling1D", "AveragePooling1D")
def _pooling1d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    _check_common(layer, cfg)
    src, (_, in_w, n_chan) = _input(layer, ctx, 1)
    (pw,) = _ints(cfg["pool_size"], 1)
    (sw,) = _ints(cfg.get("strides") or pw, 1)
    ow, pl, pr = out_size_and_pads(in_w, pw, sw, cfg["padding"])
    shape = _check_shape(layer, (ow, n_chan))
    ctx.add(Node(layer.name, "pooling", [src], shape,
                 attrs={"mode": "max" if cls.startswith("Max") else "average", "in_height": 1, "in_width": in_w,
                        "n_chan": n_chan, "pool_size": (1, pw), "strides": (1, sw), "padding": cfg["padding"],
                        "pads": (0, 0, pl, pr)}))


@handler("GlobalMaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling2D")
def _global_pooling(layer, ctx: Context):
    cls = type(layer).__name__
    cfg, rank, src, (in_h, in_w, n_chan) = _channels_last_input(layer, ctx)
    keepdims = bool(cfg.get("keepdims", False))
    shape = _check_shape(layer, ((1,) * rank if keepdims else ()) + (n_chan,))
    ctx.add(Node(layer.name, "pooling", [src], shape,
                 attrs={"mode": "max" if cls.startswith("GlobalMax") else "average", "in_height": in_h,
                        "in_width": in_w, "n_chan": n_chan, "pool_size": (in_h, in_w), "strides": (in_h, in_w),
                        "padding": "valid", "pads": (0, 0, 0, 0)}))


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
