"""Keras core layers -> graph: InputLayer, Dense/QDense, Activation/QActivation, Softmax; Flatten and the
dropout/noise layers (no node: an alias of their input)."""

from __future__ import annotations

import numpy as np

from ...ir.graph import Node
from ..registry import FrontendError
from .convert import Context, _activation_name, _add_activation, _shape, handler
from .quant import add_weighted, is_qkeras_quantizer, quantized_weights
from .quantizers import resolve_quantizer

__all__ = []


@handler("InputLayer")
def _input(layer, ctx: Context):
    shape = _shape(layer)
    if len(shape) == 0 or any(d <= 0 for d in shape):
        raise FrontendError(f"layer {layer.name!r}: input shape {shape} must have positive dimensions")
    ctx.add(Node(layer.name, "input", [], shape))
    ctx.graph.inputs.append(layer.name)


@handler("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout")
def _identity(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    ctx.alias[layer.name] = src
    if ctx.inbound_layer_names(layer)[0] in ctx.flattened:     # Flatten -> Dropout -> Dense stays flat
        ctx.flattened.add(layer.name)


@handler("Flatten")
def _flatten(layer, ctx: Context):
    # io_parallel arrays are flat already: flattening is free
    (src,) = ctx.inputs_of(layer)
    ctx.alias[layer.name] = src
    ctx.flattened.add(layer.name)


@handler("Dense", "QDense")
def _dense(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    in_shape = ctx.input_shape(layer)
    if len(in_shape) != 1 and ctx.inbound_layer_names(layer)[0] in ctx.flattened:
        in_shape = (int(np.prod(in_shape)),)
    if len(in_shape) != 1:
        raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}): input of shape {in_shape} is not flat; "
                            f"add a Flatten layer before it (Dense over a multi-dimensional input is not supported yet)")
    kernel = np.asarray(layer.get_weights()[0], dtype=np.float64)
    bias = np.asarray(layer.get_weights()[1], dtype=np.float64) if layer.use_bias else np.zeros(kernel.shape[1])
    n_in, n_out = kernel.shape
    if n_in != in_shape[0]:
        raise FrontendError(f"layer {layer.name!r}: kernel has {n_in} inputs but its input has {in_shape[0]}")
    types, meta = {}, {}
    scale = None
    if type(layer).__name__ == "QDense":
        kernel, bias, scale = quantized_weights(layer, kernel, bias, types, meta)
    if not np.all(np.isfinite(kernel)) or not np.all(np.isfinite(bias)):
        raise FrontendError(f"layer {layer.name!r}: weights contain NaN or Inf; retrain or clean the model")
    act = getattr(layer, "activation", None)
    act_name = "quant" if is_qkeras_quantizer(act) else _activation_name(act)
    out = add_weighted(ctx, Node(layer.name, "dense", [src], (n_out,),
                                 attrs={"n_in": int(n_in), "n_out": int(n_out)},
                                 weights={"kernel": kernel, "bias": bias}, types=types, meta=meta), scale)
    if act_name != "linear":
        # like hls4ml: the dense node keeps the layer's name, its activation becomes <layer>_<activation>
        act_node = ctx.unique(f"{layer.name}_{act_name}")
        _add_activation(ctx, layer, out, act, act_node, layer.name)


@handler("Activation", "QActivation")
def _activation(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    act = layer.quantizer if type(layer).__name__ == "QActivation" else layer.activation
    if type(layer).__name__ == "QActivation":
        act = resolve_quantizer(act) if isinstance(act, str) and act.startswith("quantized") else act
    _add_activation(ctx, layer, src, act, layer.name, layer.name)


@handler("Softmax")
def _softmax(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    axis = layer.get_config().get("axis", -1)
    if axis not in (-1, len(ctx.graph[src].shape)):
        raise FrontendError(f"layer {layer.name!r} (Softmax): axis={axis} is not supported; use axis=-1")
    _add_activation(ctx, layer, src, "softmax", layer.name, layer.name)
