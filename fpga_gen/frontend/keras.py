"""Keras/QKeras model -> layer graph, one handler per Keras layer class.

A handler gets the Keras layer and a :class:`Context`; it adds graph nodes (or aliases the
layer to its input when it computes nothing in hardware, like Dropout).  Types that the
model fixes (QKeras quantizers) are set here; every other type is left for the precision
pass (:mod:`fpga_gen.passes.infer_precision`).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import FLOAT_FUNCTIONS
from .loader import FrontendError
from .keras_quant import add_quant_activation, add_weighted, is_qkeras_quantizer, quantized_weights
from .quantizers import resolve_quantizer

__all__ = ["HANDLERS", "handler", "keras_to_graph", "supported_layers"]

HANDLERS: dict = {}


def handler(*class_names: str):
    def deco(fn):
        for c in class_names:
            HANDLERS[c] = fn
        return fn
    return deco


def supported_layers() -> list[str]:
    return sorted(HANDLERS)


class Context:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.alias: dict[str, str] = {}     # Keras layer name -> node name that holds its output
        self.flattened: set[str] = set()    # Keras layers whose output is a flattened view of their source

    def source(self, layer_name: str) -> str:
        return self.alias.get(layer_name, layer_name)

    def inbound_layer_names(self, layer) -> list[str]:
        import tensorflow as tf
        node = layer._inbound_nodes[0]
        return [x.name for x in tf.nest.flatten(node.inbound_layers)]

    def inputs_of(self, layer) -> list[str]:
        return [self.source(n) for n in self.inbound_layer_names(layer)]

    def add(self, node: Node, layer_name: str | None = None) -> Node:
        self.graph.add(node)
        if layer_name is not None and layer_name != node.name:
            self.alias[layer_name] = node.name
        return node

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.graph or name in self.alias:
            k += 1
            name = f"{base}_{k}"
        return name


def _shape(layer) -> tuple[int, ...]:
    shape = layer.output_shape
    if isinstance(shape, list):
        shape = shape[0]
    dims = tuple(shape[1:])
    if any(d is None for d in dims):
        raise FrontendError(f"layer {layer.name!r}: output shape {shape} has an unknown dimension; "
                            f"give the model a fixed input shape")
    return tuple(int(d) for d in dims)


def _activation_name(act) -> str:
    if act is None:
        return "linear"
    if isinstance(act, str):
        return act
    return getattr(act, "__name__", type(act).__name__)


def _add_activation(ctx: Context, layer, src: str, act, name: str, layer_name: str | None) -> str:
    """Add the node(s) for an activation (function, name or QKeras quantizer); return the output node."""
    shape = ctx.graph[src].shape
    q = act
    if isinstance(act, str) and act.startswith(("quantized_", "binary", "ternary", "bernoulli", "stochastic")):
        q = resolve_quantizer(act)
    if is_qkeras_quantizer(q):
        return add_quant_activation(ctx, layer, src, q, name, layer_name)
    kind = _activation_name(act)
    if kind == "linear":
        if layer_name is not None:
            ctx.alias[layer_name] = src
        return src
    if kind == "relu":
        return ctx.add(Node(name, "activation", [src], shape, attrs={"activation": "relu"}), layer_name).name
    if kind == "softmax":
        if len(shape) != 1:
            raise FrontendError(f"layer {layer.name!r}: softmax over a {len(shape)}-d tensor is not supported yet; "
                                f"flatten first")
        return ctx.add(Node(name, "softmax", [src], shape, attrs={}), layer_name).name
    if kind in FLOAT_FUNCTIONS:
        # no HLS template: runs on the CPU/GPU fallback (the model is split before it)
        return ctx.add(Node(name, "float_activation", [src], shape, attrs={"function": kind}), layer_name).name
    raise FrontendError(f"layer {layer.name!r}: activation {kind!r} is not supported yet; supported activations: "
                        f"linear, relu, softmax, quantized_relu, quantized_bits, sigmoid and tanh (CPU/GPU only)")


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


@handler("Flatten")
def _flatten(layer, ctx: Context):
    # io_parallel arrays are flat already: flattening is free
    (src,) = ctx.inputs_of(layer)
    ctx.alias[layer.name] = src
    ctx.flattened.add(layer.name)


@handler("Dense", "QDense")
def _dense(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    in_shape = ctx.graph[src].shape
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


@handler("ReLU")
def _relu(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    cfg = layer.get_config()
    if cfg.get("max_value") is not None or float(cfg.get("negative_slope", 0) or 0) != 0 \
            or float(cfg.get("threshold", 0) or 0) != 0:
        raise FrontendError(f"layer {layer.name!r} (ReLU): max_value/negative_slope/threshold are not supported yet; "
                            f"use a plain ReLU")
    _add_activation(ctx, layer, src, "relu", layer.name, layer.name)


@handler("Softmax")
def _softmax(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    axis = layer.get_config().get("axis", -1)
    if axis not in (-1, len(ctx.graph[src].shape)):
        raise FrontendError(f"layer {layer.name!r} (Softmax): axis={axis} is not supported; use axis=-1")
    _add_activation(ctx, layer, src, "softmax", layer.name, layer.name)


def keras_to_graph(model, name: str | None = None) -> Graph:
    """Walk the model's layers in order and build the graph with the handlers."""
    graph = Graph(name or model.name)
    ctx = Context(graph)
    layers = list(model.layers)
    input_layers = [t._keras_history.layer for t in model.inputs]
    for il in input_layers:
        if il not in layers:
            layers.insert(0, il)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise FrontendError(f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                            f"only single-input, single-output models are supported yet")
    for layer in layers:
        cls = type(layer).__name__
        fn = HANDLERS.get(cls)
        if fn is None:
            raise FrontendError(f"layer {layer.name!r} ({cls}) is not supported; supported layers: "
                                f"{', '.join(supported_layers())}")
        n_nodes = len(graph)
        try:
            fn(layer, ctx)
        except FrontendError:
            raise
        except Exception as e:
            raise FrontendError(f"layer {layer.name!r} ({cls}): {type(e).__name__}: {e}") from e
        for node in list(graph)[n_nodes:]:
            if any(int(d) < 1 for d in node.shape):
                raise FrontendError(f"layer {layer.name!r} ({cls}): output shape {tuple(node.shape)} has a zero "
                                    f"dimension; every layer needs at least one output value")
    graph.outputs = [ctx.source(t._keras_history.layer.name) for t in model.outputs]
    return graph


from . import keras_conv as _keras_conv  # noqa: E402,F401  (registers the 2-D layer handlers)
