"""Keras/QKeras convolutions -> conv2d nodes (io_parallel, channels_last): Conv2D/QConv2D, and Conv1D/QConv1D as a
conv2d with in_height 1 (nnet's 1-D kernels are the 2-D loops with one row).  The helpers here (geometry, option
checks, weight quantization, the layer's activation) serve the depthwise, pooling and normalization handlers too."""

from __future__ import annotations

import numpy as np

from ...ir.graph import Node
from ...ir.quant import exact_value_type
from ...ir.spatial import out_size_and_pads
from ..registry import FrontendError
from .convert import Context, _activation_name, _add_activation, handler, output_shape
from .inputs import _check_shape, _fail, _input, _ints
from .quant import add_weighted, is_qkeras_quantizer, quantized_weights
from .quantizers import quantize_weights

__all__ = []


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return tuple(int(x) for x in v)


def _spatial_input(layer, ctx: Context) -> tuple[str, tuple[int, int, int]]:
    (src,) = ctx.inputs_of(layer)
    shape = ctx.input_shape(layer)
    if ctx.inbound_layer_names(layer)[0] in ctx.flattened or len(shape) != 3:
        raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}): needs an (height, width, channels) "
                            f"input, got shape {shape}")
    return src, shape


def _check_common(layer, cfg: dict) -> None:
    cls = type(layer).__name__
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise FrontendError(f"layer {layer.name!r} ({cls}): data_format={cfg['data_format']!r} is not supported; "
                            f"use data_format='channels_last'")
    if cfg.get("padding") not in ("valid", "same"):
        raise FrontendError(f"layer {layer.name!r} ({cls}): padding={cfg.get('padding')!r} is not supported; "
                            f"use 'valid' or 'same'")


def _check_conv_options(layer, cfg: dict) -> None:
    """dilation and groups: refused in one line (no nnet kernel computes them)."""
    cls = type(layer).__name__
    if _pair(cfg.get("dilation_rate", 1)) != (1, 1):
        raise FrontendError(f"layer {layer.name!r} ({cls}): dilation_rate={tuple(_pair(cfg['dilation_rate']))} is "
                            f"not supported yet; use dilation_rate=1")
    if int(cfg.get("groups", 1) or 1) != 1:
        raise FrontendError(f"layer {layer.name!r} ({cls}): groups={cfg['groups']} is not supported yet; use groups=1")


def _geometry(layer, in_shape, window, strides, padding) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    oh, pt, pb = out_size_and_pads(in_shape[0], window[0], strides[0], padding)
    ow, pl, pr = out_size_and_pads(in_shape[1], window[1], strides[1], padding)
    return (oh, ow), (pt, pb, pl, pr)


def _quantized(layer, values: np.ndarray, attr: str, role: str, types: dict, slot: str, meta: dict) -> np.ndarray:
    """``values`` through the layer's QKeras quantizer ``attr`` exactly as QKeras computes them, with the smallest
    type holding them in ``types[slot]``.  A per-channel alpha scale is folded into the values (exact: QKeras'
    weights are the scale times a quantized value) rather than split off as in :func:`add_weighted` (used by the
    layers whose output channels are the kernel's last axis: Dense, Conv1D/2D)."""
    q = getattr(layer, attr, None)
    if q is None:
        return values
    wq = quantize_weights(q, values, layer.name, role)
    w, t = wq.values, wq.type
    if wq.scale is not None:
        w = w * np.asarray(wq.scale, dtype=np.float64)
        t = exact_value_type(w)
    types[slot] = t
    meta[f"{role}_quantizer"] = wq.text
    return w


def add_layer_activation(ctx: Context, layer, out: str) -> None:
    """The layer's own activation argument (a function or a QKeras quantizer; none when linear) as the node(s)
    ``<layer>_<activation>`` after ``out``, the layer's output node."""
    act = getattr(layer, "activation", None)
    act_name = "quant" if is_qkeras_quantizer(act) else _activation_name(act)
    if act_name != "linear":
        _add_activation(ctx, layer, out, act, ctx.unique(f"{layer.name}_{act_name}"), layer.name)


@handler("Conv2D", "QConv2D")
def _conv2d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    _check_common(layer, cfg)
    _check_conv_options(layer, cfg)
    src, in_shape = _spatial_input(layer, ctx)
    kernel_size, strides = _pair(cfg["kernel_size"]), _pair(cfg["strides"])
    out_hw, pads = _geometry(layer, in_shape, kernel_size, strides, cfg["padding"])
    kernel = np.asarray(layer.get_weights()[0], dtype=np.float64)
    n_filt = kernel.shape[3]
    bias = np.asarray(layer.get_weights()[1], dtype=np.float64) if layer.use_bias else np.zeros(n_filt)
    if kernel.shape != (*kernel_size, in_shape[2], n_filt):
        raise FrontendError(f"layer {layer.name!r} ({cls}): kernel has shape {kernel.shape}, expected "
                            f"{(*kernel_size, in_shape[2], n_filt)}")
    types, meta = {}, {}
    scale = None
    if cls == "QConv2D":
        kernel, bias, scale = quantized_weights(layer, kernel, bias, types, meta)
    if not np.all(np.isfinite(kernel)) or not np.all(np.isfinite(bias)):
        raise FrontendError(f"layer {layer.name!r}: weights contain NaN or Inf; retrain or clean the model")
    shape = (*out_hw, int(n_filt))
    if shape != tuple(output_shape(layer)[1:]):
        raise FrontendError(f"layer {layer.name!r} ({cls}): computed output shape {shape} differs from Keras' "
                            f"{tuple(output_shape(layer)[1:])}")
    out = add_weighted(ctx, Node(layer.name, "conv2d", [src], shape,
                 attrs={"in_height": in_shape[0], "in_width": in_shape[1], "n_chan": in_shape[2],
                        "n_filt": int(n_filt), "kernel_size": kernel_size, "strides": strides,
                        "padding": cfg["padding"], "pads": pads},
                 weights={"kernel": kernel, "bias": bias}, types=types, meta=meta), scale)
    add_layer_activation(ctx, layer, out)


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
