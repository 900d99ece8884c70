"""Keras/QKeras batch normalization -> graph.

BatchNormalization / QBatchNormalization -> one ``batchnorm`` node, y = x * scale + bias per channel
with (as hls4ml computes them, in float64) ``scale = gamma / sqrt(moving_variance + epsilon)`` and
``bias = beta - moving_mean * scale``; QBatchNormalization first applies its gamma/beta/mean/variance
quantizers (through TensorFlow, so the values are QKeras' own).  The precision pass rounds scale and
bias to fixed point, so a separate batchnorm is *not* bit-exact with Keras, which computes it in float32:
that is the documented exception (see :mod:`fpga_gen.passes.fuse_batchnorm` for when it is folded away).

QConv2DBatchnorm / QDepthwiseConv2DBatchnorm (QKeras' folded layers) -> one ``conv2d`` /
``depthwise_conv2d`` node holding the kernel and bias exactly as QKeras computes them at inference:
``get_folded_weights()`` (inv = gamma * rsqrt(moving_variance + epsilon) in float32; kernel * inv;
inv * (bias - moving_mean) + beta), then the layer's kernel and bias quantizers.  With both quantizers
the layer is fixed point and the emulator equals QKeras exactly.
"""

from __future__ import annotations

import numpy as np

from ...ir.graph import Node
from ..registry import FrontendError
from .conv import _check_common, _check_conv_options, _geometry, _pair, _spatial_input, add_layer_activation
from .convert import Context, handler
from .depthwise import add_depthwise_node, check_depthwise_options
from .quantizers import quantizer_spec

__all__ = []


def _tf_values(layer, q, values) -> np.ndarray:
    import tensorflow as tf  # lazy: seconds to import; only Keras models need it
    return np.asarray(q(tf.constant(values, dtype=tf.float32)).numpy(), dtype=np.float64)


@handler("BatchNormalization", "QBatchNormalization")
def _batchnorm(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    (src,) = ctx.inputs_of(layer)
    shape = tuple(ctx.graph[src].shape)
    if ctx.inbound_layer_names(layer)[0] in ctx.flattened:
        shape = (int(np.prod(shape)),)
    axis = cfg.get("axis", -1)
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if len(axis) != 1 or axis[0] not in (-1, len(shape)):
        shown = axis[0] if len(axis) == 1 else [int(a) for a in axis]
        raise FrontendError(f"layer {layer.name!r} ({cls}): axis={shown} is not supported; normalize "
                            f"the last (channels) axis, axis=-1")
    for opt in ("renorm", "virtual_batch_size", "adjustment"):
        if cfg.get(opt):
            raise FrontendError(f"layer {layer.name!r} ({cls}): {opt}={cfg[opt]!r} is not supported; "
                                f"use the default ({opt}=None/False)")
    n = shape[-1]
    f64 = lambda v: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float64)  # noqa: E731
    gamma = f64(layer.gamma) if layer.scale else np.ones(n)
    beta = f64(layer.beta) if layer.center else np.zeros(n)
    mean, var = f64(layer.moving_mean), f64(layer.moving_variance)
    meta = {}
    if cls == "QBatchNormalization":
        for what, attr, on in (("gamma", "gamma_quantizer", layer.scale), ("beta", "beta_quantizer", layer.center),
                               ("mean", "mean_quantizer", True), ("variance", "variance_quantizer", True)):
            q = getattr(layer, f"{attr}_internal", None)
            if on and getattr(layer, attr, None) and q is not None:
                v = {"gamma": gamma, "beta": beta, "mean": mean, "variance": var}[what]
                v = _tf_values(layer, q, v)
                gamma, beta, mean, var = (v if what == w else x for w, x in
                                          zip(("gamma", "beta", "mean", "variance"), (gamma, beta, mean, var)))
                meta[f"{what}_quantizer"] = str(q)
    scale = gamma / np.sqrt(var + float(cfg.get("epsilon", 1e-3)))
    bias = beta - mean * scale
    if not np.all(np.isfinite(scale)) or not np.all(np.isfinite(bias)):
        raise FrontendError(f"layer {layer.name!r} ({cls}): scale or bias is NaN or Inf (negative variance?); "
                            f"retrain or clean the model")
    producer = ctx.graph[src]
    # a batchnorm inside a quantized model keeps its exact result (the next quantizer rounds it)
    quantized = cls == "QBatchNormalization" or "kernel_quantizer" in producer.meta or "quantizer" in producer.meta \
        or producer.op == "apply_scale"
    meta["quantized"] = bool(quantized)
    ctx.add(Node(layer.name, "batchnorm", [src], shape, attrs={"n_filt": int(n)},
                 weights={"scale": scale, "bias": bias}, meta=meta))


def _folded(layer, kernel_q_attr: str) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """The folded kernel and bias as QKeras' inference computes them, quantized by the layer's quantizers."""
    import tensorflow as tf  # lazy: seconds to import; only Keras models need it
    cls = type(layer).__name__
    folded_kernel, folded_bias = layer.get_folded_weights()
    kernel = folded_kernel.numpy() if hasattr(folded_kernel, "numpy") else np.asarray(folded_kernel)
    bias = folded_bias.numpy() if hasattr(folded_bias, "numpy") else np.asarray(folded_bias)
    types, meta = {}, {}
    kq = getattr(layer, kernel_q_attr, None)
    if kq is not None:
        spec = quantizer_spec(kq, layer.name, "kernel")
        types["weight"] = spec.type.plain()
        meta["kernel_quantizer"] = spec.text
        kernel = kq(tf.constant(kernel, dtype=tf.float32)).numpy()
    bq = getattr(layer, "bias_quantizer_internal", None)
    if bq is not None:
        spec = quantizer_spec(bq, layer.name, "bias")
        types["bias"] = spec.type.plain()
        meta["bias_quantizer"] = spec.text
        bias = bq(tf.constant(bias, dtype=tf.float32)).numpy()
    kernel, bias = np.asarray(kernel, dtype=np.float64), np.asarray(bias, dtype=np.float64)
    if not np.all(np.isfinite(kernel)) or not np.all(np.isfinite(bias)):
        raise FrontendError(f"layer {layer.name!r} ({cls}): folded weights contain NaN or Inf; retrain or clean "
                            f"the model")
    meta["folded_batchnorm"] = True
    return kernel, bias, types, meta


def _check_folding(layer, cfg: dict) -> None:
    bn = layer.batchnorm.get_config()
    axis = bn.get("axis", -1)
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if len(axis) != 1 or axis[0] not in (-1, 3):
        shown = axis[0] if len(axis) == 1 else [int(a) for a in axis]
        raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}): batchnorm axis={shown} is not "
                            f"supported; use axis=-1")


@handler("QConv2DBatchnorm")
def _qconv2d_batchnorm(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    _check_common(layer, cfg)
    _check_folding(layer, cfg)
    _check_conv_options(layer, cfg)
    src, in_shape = _spatial_input(layer, ctx)
    kernel_size, strides = _pair(cfg["kernel_size"]), _pair(cfg["strides"])
    out_hw, pads = _geometry(layer, in_shape, kernel_size, strides, cfg["padding"])
    kernel, bias, types, meta = _folded(layer, "kernel_quantizer_internal")
    n_filt = kernel.shape[3]
    if kernel.shape != (*kernel_size, in_shape[2], n_filt) or bias.shape != (n_filt,):
        raise FrontendError(f"layer {layer.name!r} ({cls}): folded kernel has shape {kernel.shape}, expected "
                            f"{(*kernel_size, in_shape[2], n_filt)}")
    shape = (*out_hw, int(n_filt))
    if shape != tuple(layer.output_shape[1:]):
        raise FrontendError(f"layer {layer.name!r} ({cls}): computed output shape {shape} differs from Keras' "
                            f"{tuple(layer.output_shape[1:])}")
    ctx.add(Node(layer.name, "conv2d", [src], shape,
                 attrs={"in_height": in_shape[0], "in_width": in_shape[1], "n_chan": in_shape[2],
                        "n_filt": int(n_filt), "kernel_size": kernel_size, "strides": strides,
                        "padding": cfg["padding"], "pads": pads},
                 weights={"kernel": kernel, "bias": bias}, types=types, meta=meta))
    add_layer_activation(ctx, layer, layer.name)


@handler("QDepthwiseConv2DBatchnorm")
def _qdepthwise_batchnorm(layer, ctx: Context):
    cfg = layer.get_config()
    check_depthwise_options(layer, cfg)
    _check_folding(layer, cfg)
    src, in_shape = _spatial_input(layer, ctx)
    kernel, bias, types, meta = _folded(layer, "depthwise_quantizer_internal")
    kernel = kernel.reshape(*kernel.shape[:2], in_shape[2], 1)
    node = add_depthwise_node(ctx, layer, layer.name, src, in_shape, kernel, bias.reshape(-1), types, meta)
    if tuple(node.shape) != tuple(layer.output_shape[1:]):
        raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}): computed output shape {node.shape} "
                            f"differs from Keras' {tuple(layer.output_shape[1:])}")
    add_layer_activation(ctx, layer, layer.name)
