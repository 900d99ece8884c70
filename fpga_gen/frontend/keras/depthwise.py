"""Keras/QKeras depthwise and separable 2-D layers -> graph (io_parallel, channels_last).

DepthwiseConv2D/QDepthwiseConv2D (depth_multiplier 1) -> one ``depthwise_conv2d`` node.
SeparableConv2D/QSeparableConv2D -> ``<name>_depthwise`` (a ``depthwise_conv2d`` without bias) and
``<name>_pointwise`` (a 1x1 ``conv2d`` with the layer's bias), as hls4ml 1.3's
SeparableToDepthwiseAndConv splits it; the consumers read the pointwise node.  Keras computes the
separable layer as the same two steps in float32, so with quantized kernels the intermediate value
is exact in both (the depthwise result keeps its exact accumulator type, see infer_precision).

The 1-D layers DepthwiseConv1D and SeparableConv1D/QSeparableConv1D (QKeras 0.9 has no
QDepthwiseConv1D) are the same nodes with in_height 1, kernel (1, kw), strides (1, sw), pads
(0, 0, left, right) and node shapes Keras' (width, channels), as Conv1D maps onto conv2d (nnet's 1-D
kernels are the 2-D loops with one row).  QSeparableConv1D quantizes its kernels expanded to
(1, kw, C, 1) and (1, 1, C, F) (what it passes to separable_conv2d); the frontend does the same.
"""

from __future__ import annotations

import numpy as np

from ...ir.graph import Node
from ...ir.spatial import out_size_and_pads
from ..registry import FrontendError
from .conv import _check_common, _geometry, _pair, _quantized, _spatial_input, add_layer_activation
from .convert import Context, handler, output_shape
from .inputs import _check_shape as _check_1d_shape
from .inputs import _fail, _input, _ints

__all__ = ["add_depthwise_node", "check_depthwise_options"]

_DW_FIX = "(nnet's depthwise kernel needs n_filt == n_chan); use depth_multiplier=1"


def check_depthwise_options(layer, cfg: dict) -> None:
    cls = type(layer).__name__
    _check_common(layer, cfg)
    if _pair(cfg.get("dilation_rate", 1)) != (1, 1):
        raise FrontendError(f"layer {layer.name!r} ({cls}): dilation_rate={tuple(_pair(cfg['dilation_rate']))} is "
                            f"not supported yet; use dilation_rate=1")
    dm = int(cfg.get("depth_multiplier", 1))
    if dm != 1:
        raise FrontendError(f"layer {layer.name!r} ({cls}): depth_multiplier={dm} is not supported {_DW_FIX}")


def add_depthwise_node(ctx: Context, layer, name: str, src: str, in_shape, kernel: np.ndarray, bias: np.ndarray,
                       types: dict, meta: dict) -> Node:
    """A depthwise_conv2d node from a (kh, kw, n_chan, 1) Keras kernel."""
    cls = type(layer).__name__
    cfg = layer.get_config()
    kernel_size, strides = _pair(cfg["kernel_size"]), _pair(cfg["strides"])
    n_chan = in_shape[2]
    if kernel.shape != (*kernel_size, n_chan, 1):
        raise FrontendError(f"layer {layer.name!r} ({cls}): depthwise kernel has shape {kernel.shape}, expected "
                            f"{(*kernel_size, n_chan, 1)}")
    _check_finite(layer, kernel, bias)
    out_hw, pads = _geometry(layer, in_shape, kernel_size, strides, cfg["padding"])
    shape = (*out_hw, int(n_chan))
    node = Node(name, "depthwise_conv2d", [src], shape,
                attrs={"in_height": in_shape[0], "in_width": in_shape[1], "n_chan": n_chan, "n_filt": n_chan,
                       "kernel_size": kernel_size, "strides": strides, "padding": cfg["padding"], "pads": pads},
                weights={"kernel": kernel[..., 0], "bias": bias}, types=types, meta=meta)
    return ctx.add(node)


def _layer_weights(layer, names: tuple[str, ...]) -> list[np.ndarray]:
    """The kernels then the bias (when used) in float64, in get_weights() order: tf-keras/QKeras name the
    depthwise kernel ``depthwise_kernel``, Keras 3's DepthwiseConv1D/2D ``kernel``; the order is the same."""
    w = [np.asarray(v, dtype=np.float64) for v in layer.get_weights()]
    n = len(names) + int(bool(layer.use_bias))
    if len(w) != n:
        wanted = ", ".join(names + (("bias",) if layer.use_bias else ()))
        _fail(layer, f"has {len(w)} weight arrays, expected {n} ({wanted})")
    return w


def _check_finite(layer, kernel: np.ndarray, bias: np.ndarray) -> None:
    if not np.all(np.isfinite(kernel)) or not np.all(np.isfinite(bias)):
        raise FrontendError(f"layer {layer.name!r}: weights contain NaN or Inf; retrain or clean the model")


def _quantize_separable(layer, dw: np.ndarray, pw: np.ndarray, bias: np.ndarray, dw_types: dict, dw_meta: dict,
                        pw_types: dict, pw_meta: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A QSeparableConv's depthwise and pointwise kernels and bias through its quantizers (see _quantized); their
    types and quantizer texts go to the depthwise node's (dw_) and the pointwise node's (pw_) dicts."""
    dw = _quantized(layer, dw, "depthwise_quantizer_internal", "kernel", dw_types, "weight", dw_meta)
    pw = _quantized(layer, pw, "pointwise_quantizer_internal", "kernel", pw_types, "weight", pw_meta)
    if layer.use_bias:
        bias = _quantized(layer, bias, "bias_quantizer_internal", "bias", pw_types, "bias", pw_meta)
    if "weight" in dw_types:
        # no bias of its own: a zero bias in the depthwise kernel's type keeps the step exact
        dw_types["bias"] = dw_types["weight"]
    return dw, pw, bias


def _add_pointwise(ctx: Context, layer, dw_node: Node, shape: tuple, pw: np.ndarray, bias: np.ndarray, types: dict,
                   meta: dict) -> str:
    """A separable layer's second step after its depthwise node: the 1x1 conv2d ``<layer>_pointwise`` with the
    layer's bias (the layer's output, node shape ``shape``); 1-D (dw_node shape (width, channels)): in_height 1."""
    *out_hw, n_chan = dw_node.shape
    in_h, in_w = out_hw if len(out_hw) == 2 else (1, out_hw[0])
    pw_name = ctx.unique(f"{layer.name}_pointwise")
    ctx.add(Node(pw_name, "conv2d", [dw_node.name], shape,
                 attrs={"in_height": in_h, "in_width": in_w, "n_chan": n_chan, "n_filt": shape[-1],
                        "kernel_size": (1, 1), "strides": (1, 1), "padding": "valid", "pads": (0, 0, 0, 0)},
                 weights={"kernel": pw, "bias": bias}, types=types, meta=meta), layer.name)
    return pw_name


def _check_shape(layer, shape) -> None:
    keras = tuple(output_shape(layer)[1:])          # Keras 3 layers have no .output_shape
    if tuple(shape) != keras:
        raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}): computed output shape {tuple(shape)} "
                            f"differs from Keras' {keras}")


@handler("DepthwiseConv2D", "QDepthwiseConv2D")
def _depthwise_conv2d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    check_depthwise_options(layer, cfg)
    src, in_shape = _spatial_input(layer, ctx)
    kernel, *b = _layer_weights(layer, ("depthwise_kernel",))
    bias = b[0] if layer.use_bias else np.zeros(in_shape[2])
    types, meta = {}, {}
    if cls == "QDepthwiseConv2D":
        kernel = _quantized(layer, kernel, "depthwise_quantizer_internal", "kernel", types, "weight", meta)
        if layer.use_bias:
            bias = _quantized(layer, bias, "bias_quantizer_internal", "bias", types, "bias", meta)
    node = add_depthwise_node(ctx, layer, layer.name, src, in_shape, kernel, bias, types, meta)
    _check_shape(layer, node.shape)
    add_layer_activation(ctx, layer, layer.name)


@handler("SeparableConv2D", "QSeparableConv2D")
def _separable_conv2d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    check_depthwise_options(layer, cfg)
    src, in_shape = _spatial_input(layer, ctx)
    dw, pw, *b = _layer_weights(layer, ("depthwise_kernel", "pointwise_kernel"))
    n_filt = pw.shape[-1]
    bias = b[0] if layer.use_bias else np.zeros(n_filt)
    dw_types, dw_meta, pw_types, pw_meta = {}, {}, {}, {}
    if cls == "QSeparableConv2D":
        dw, pw, bias = _quantize_separable(layer, dw, pw, bias, dw_types, dw_meta, pw_types, pw_meta)
    if pw.shape != (1, 1, in_shape[2], n_filt):
        raise FrontendError(f"layer {layer.name!r} ({cls}): pointwise kernel has shape {pw.shape}, expected "
                            f"{(1, 1, in_shape[2], n_filt)}")
    _check_finite(layer, pw, bias)
    dw_name = ctx.unique(f"{layer.name}_depthwise")
    dw_node = add_depthwise_node(ctx, layer, dw_name, src, in_shape, dw, np.zeros(in_shape[2]), dw_types, dw_meta)
    shape = (*dw_node.shape[:2], int(n_filt))
    pw_name = _add_pointwise(ctx, layer, dw_node, shape, pw, bias, pw_types, pw_meta)
    _check_shape(layer, shape)
    add_layer_activation(ctx, layer, pw_name)


# ---------------------------------------------------------------------------- 1-D layers (in_height 1)
def _check_1d_options(layer, cfg: dict) -> None:
    _check_common(layer, cfg)
    if _ints(cfg.get("dilation_rate", 1), 1) != (1,):
        _fail(layer, f"dilation_rate={_ints(cfg['dilation_rate'], 1)} is not supported yet; use dilation_rate=1")
    dm = int(cfg.get("depth_multiplier", 1))
    if dm != 1:
        _fail(layer, f"depth_multiplier={dm} is not supported {_DW_FIX}")


def _depthwise_1d(ctx: Context, layer, name: str, src: str, in_w: int, n_chan: int, kernel: np.ndarray,
                  bias: np.ndarray, types: dict, meta: dict) -> Node:
    """A depthwise_conv2d node with in_height 1 from a (1, kw, n_chan, 1) kernel; node shape (width, channels)."""
    cfg = layer.get_config()
    (kw,), (sw,) = _ints(cfg["kernel_size"], 1), _ints(cfg["strides"], 1)
    if kernel.shape != (1, kw, n_chan, 1):
        _fail(layer, f"depthwise kernel has shape {kernel.shape[1:]}, expected {(kw, n_chan, 1)}")
    _check_finite(layer, kernel, bias)
    ow, pl, pr = out_size_and_pads(in_w, kw, sw, cfg["padding"])
    node = Node(name, "depthwise_conv2d", [src], (ow, n_chan),
                attrs={"in_height": 1, "in_width": in_w, "n_chan": n_chan, "n_filt": n_chan,
                       "kernel_size": (1, kw), "strides": (1, sw), "padding": cfg["padding"],
                       "pads": (0, 0, pl, pr)},
                weights={"kernel": kernel[..., 0], "bias": bias}, types=types, meta=meta)
    return ctx.add(node)


@handler("DepthwiseConv1D")
def _depthwise_conv1d(layer, ctx: Context):
    cfg = layer.get_config()
    _check_1d_options(layer, cfg)
    src, (_, in_w, n_chan) = _input(layer, ctx, 1)
    kernel, *b = _layer_weights(layer, ("depthwise_kernel",))
    kernel = kernel[None]                                                          # (1, kw, C, 1)
    bias = b[0] if layer.use_bias else np.zeros(n_chan)
    node = _depthwise_1d(ctx, layer, layer.name, src, in_w, n_chan, kernel, bias, {}, {})
    _check_1d_shape(layer, node.shape)
    add_layer_activation(ctx, layer, layer.name)


@handler("SeparableConv1D", "QSeparableConv1D")
def _separable_conv1d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    _check_1d_options(layer, cfg)
    src, (_, in_w, n_chan) = _input(layer, ctx, 1)
    dw, pw, *b = _layer_weights(layer, ("depthwise_kernel", "pointwise_kernel"))
    dw, pw = dw[None], pw[None]                             # (1, kw, C, 1) and (1, 1, C, F), as QKeras quantizes
    n_filt = int(pw.shape[-1])
    bias = b[0] if layer.use_bias else np.zeros(n_filt)
    dw_types, dw_meta, pw_types, pw_meta = {}, {}, {}, {}
    if cls == "QSeparableConv1D":
        dw, pw, bias = _quantize_separable(layer, dw, pw, bias, dw_types, dw_meta, pw_types, pw_meta)
    if pw.shape != (1, 1, n_chan, n_filt):
        _fail(layer, f"pointwise kernel has shape {pw.shape[1:]}, expected {(1, n_chan, n_filt)}")
    _check_finite(layer, pw, bias)
    dw_name = ctx.unique(f"{layer.name}_depthwise")
    dw_node = _depthwise_1d(ctx, layer, dw_name, src, in_w, n_chan, dw, np.zeros(n_chan), dw_types, dw_meta)
    shape = _check_1d_shape(layer, (dw_node.shape[0], n_filt))
    pw_name = _add_pointwise(ctx, layer, dw_node, shape, pw, bias, pw_types, pw_meta)
    add_layer_activation(ctx, layer, pw_name)
