"""Keras/QKeras model -> layer graph: the walk over the model's layers and the handler registry.

A handler gets the Keras layer and a :class:`Context`; it adds graph nodes (or aliases the
layer to its input when it computes nothing in hardware, like Dropout).  Types that the
model fixes (QKeras quantizers) are set here; every other type is left for the precision
pass (:mod:`fpga_gen.passes.infer_precision`).
"""

from __future__ import annotations

import numpy as np

from ...ir.graph import Graph, Node
from ...ir.ops import FLOAT_FUNCTIONS
from ..registry import FrontendError, Registry
from .quant import add_quant_activation, is_qkeras_quantizer
from .quantizers import resolve_quantizer

__all__ = ["LAYERS", "HANDLERS", "handler", "keras_to_graph", "supported_layers", "is_keras3", "output_shape", "KERAS_ACTIVATIONS",
           "add_activation_node"]

LAYERS = Registry("layer")          # Keras layer class name -> handler(layer, ctx)
HANDLERS = LAYERS.handlers
handler = LAYERS.register


def supported_layers() -> list[str]:
    return LAYERS.names()


class Context:
    def __init__(self, graph: Graph, keras_nodes: dict | None = None):
        self.graph = graph
        self.alias: dict[str, str] = {}     # Keras layer name -> node name that holds its output
        self.flattened: set[str] = set()    # Keras layers whose output is a flattened view of their source
        self.keras_nodes = keras_nodes or {}  # Keras layer name -> the Keras Node of its (one) call in the model
        self.reserved = set(self.keras_nodes)  # names a new node may not take: every Keras layer's own

    def source(self, layer_name: str) -> str:
        return self.alias.get(layer_name, layer_name)

    def keras_node(self, layer):
        """The layer's call in this model (a layer may also be called outside it, e.g. in another model)."""
        node = self.keras_nodes.get(layer.name)
        return node if node is not None else layer._inbound_nodes[0]

    def inbound_layer_names(self, layer) -> list[str]:
        if is_keras3(layer):
            # Keras 3: a node holds its input tensors; each tensor's history names the layer that made it
            return [t._keras_history.operation.name for t in self.keras_node(layer).input_tensors]
        import tensorflow as tf  # lazy: seconds to import; only Keras models need it
        return [x.name for x in tf.nest.flatten(self.keras_node(layer).inbound_layers)]

    def inbound_shapes(self, layer) -> list[tuple[int, ...]]:
        """The Keras shapes (without the batch) of the layer's inputs, in call order."""
        if is_keras3(layer):
            return [tuple(int(d) for d in t.shape[1:]) for t in self.keras_node(layer).input_tensors]
        import tensorflow as tf  # lazy: seconds to import; only Keras models need it
        return [tuple(int(d) for d in t.shape[1:]) for t in tf.nest.flatten(self.keras_node(layer).keras_inputs)]

    def inputs_of(self, layer) -> list[str]:
        return [self.source(n) for n in self.inbound_layer_names(layer)]

    def input_shape(self, layer) -> tuple[int, ...]:
        """The shape the Keras layer sees.  A Flatten or Reshape before it adds no node (the io_parallel array
        is flat already), so its source node may hold the same values in another shape."""
        (src,) = self.inputs_of(layer)
        shape = tuple(int(d) for d in self.graph[src].shape)
        shapes = self.inbound_shapes(layer)              # this call's input, Keras 2 and 3 alike
        if len(shapes) == 1 and int(np.prod(shapes[0])) == int(np.prod(shape)):
            return shapes[0]
        return shape

    def add(self, node: Node, layer_name: str | None = None) -> Node:
        self.graph.add(node)
        if layer_name is not None and layer_name != node.name:
            self.alias[layer_name] = node.name
        return node

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.graph or name in self.alias or name in self.reserved:
            k += 1
            name = f"{base}_{k}"
        return name


def is_keras3(obj) -> bool:
    """A Keras 3 layer or model (the ``keras`` package), not tf-keras / QKeras (Keras 2)."""
    return type(obj).__module__.split(".")[0] == "keras"


def output_shape(layer) -> tuple:
    """The layer's output shape, batch first (Keras 2: ``layer.output_shape``; Keras 3 has no such attribute:
    the shape of ``layer.output``)."""
    if is_keras3(layer):
        return tuple(layer.output.shape)
    shape = layer.output_shape
    if isinstance(shape, list):
        shape = shape[0]
    return tuple(shape)


def _history_layer(tensor):
    """The layer that produced a model input/output tensor (Keras 2: ``.layer``, Keras 3: ``.operation``)."""
    h = tensor._keras_history
    return getattr(h, "layer", None) or h.operation


def _shape(layer) -> tuple[int, ...]:
    shape = output_shape(layer)
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


# Keras activation name -> attrs of the 'activation' node that computes it on the FPGA (nnet_activation.h)
KERAS_ACTIVATIONS = {
    "relu": {"activation": "relu"},
    "relu6": {"activation": "relu_max", "max_int": 6},
    "leaky_relu": {"activation": "leaky_relu", "param": 0.2},      # tf.nn.leaky_relu's default alpha
    "elu": {"activation": "elu", "param": 1.0},
    "hard_sigmoid": {"activation": "hard_sigmoid", "slope": 0.2, "shift": 0.5},
    "sigmoid": {"activation": "sigmoid"},
    "tanh": {"activation": "tanh"},
    "softplus": {"activation": "softplus"},
    "softsign": {"activation": "softsign"},
}


def add_activation_node(ctx: Context, src: str, name: str, layer_name: str | None, attrs: dict,
                        weights: dict | None = None) -> str:
    """One 'activation' node of kind attrs['activation'] after ``src``; returns its name."""
    shape = ctx.graph[src].shape
    return ctx.add(Node(name, "activation", [src], shape, attrs=dict(attrs), weights=dict(weights or {})),
                   layer_name).name


def _elementwise_shape(ctx: Context, layer, src: str) -> tuple[int, ...]:
    """The shape of an element-wise layer's output: Keras' own when it holds as many values as its source (a
    Flatten or Reshape before it adds no node, so the source node may hold the values in another shape)."""
    shape = tuple(ctx.graph[src].shape)
    try:
        keras_shape = tuple(int(d) for d in output_shape(layer)[1:])
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return shape
    return keras_shape if int(np.prod(keras_shape)) == int(np.prod(shape)) else shape


def _add_activation(ctx: Context, layer, src: str, act, name: str, layer_name: str | None) -> str:
    """Add the node(s) for an activation (function, name or QKeras quantizer); return the output node."""
    out = _add_activation_nodes(ctx, layer, src, act, name, layer_name)
    if out != src:
        ctx.graph[out].shape = _elementwise_shape(ctx, layer, src)
    return out


def _add_activation_nodes(ctx: Context, layer, src: str, act, name: str, layer_name: str | None) -> str:
    shape = _elementwise_shape(ctx, layer, src)
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
    if kind in KERAS_ACTIVATIONS:
        attrs = KERAS_ACTIVATIONS[kind]
        if kind == "hard_sigmoid" and is_keras3(layer):
            attrs = {**attrs, "slope": 1.0 / 6.0}      # Keras 3: relu6(x + 3) / 6 (tf-keras: 0.2 * x + 0.5)
        return add_activation_node(ctx, src, name, layer_name, attrs)
    if kind == "softmax":
        if len(shape) != 1:
            raise FrontendError(f"layer {layer.name!r}: softmax over a {len(shape)}-d tensor is not supported yet; "
                                f"flatten first")
        return ctx.add(Node(name, "softmax", [src], shape, attrs={}), layer_name).name
    if kind in FLOAT_FUNCTIONS:
        # no HLS template: runs on the CPU/GPU fallback (the model is split before it)
        return ctx.add(Node(name, "float_activation", [src], shape, attrs={"function": kind}), layer_name).name
    raise FrontendError(f"layer {layer.name!r}: activation {kind!r} is not supported yet; supported activations: "
                        f"linear, softmax, {', '.join(KERAS_ACTIVATIONS)}, quantized_relu, quantized_bits, "
                        f"and on the CPU/GPU only {', '.join(FLOAT_FUNCTIONS)}")


def _layers_in_order(model) -> tuple[list, dict]:
    """The model's layers in a topological order (inputs first; among the layers ready at one point, the
    one model.layers lists first, so a Sequential model keeps its order) and the Keras Node of each
    layer's call in this model.  A layer called more than once in the model is refused."""
    import tensorflow as tf  # lazy: seconds to import; only Keras models need it
    layers = list(model.layers)
    for il in (_history_layer(t) for t in model.inputs):
        if il not in layers:
            layers.insert(0, il)
    if is_keras3(model):
        # Keras 3 lists a functional model's operations in a topological order already; a layer's calls in
        # this model are the nodes of its functional graph (a Sequential model keeps one in ``_functional``)
        fn = model if hasattr(model, "_nodes_by_depth") else getattr(model, "_functional", None)
        in_model = {id(n) for ns in fn._nodes_by_depth.values() for n in ns} if fn is not None else None
        keras_nodes = {}
        for layer in layers:
            calls = [n for n in layer._inbound_nodes if in_model is None or id(n) in in_model]
            if len(calls) > 1:
                raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}) is called {len(calls)} times in "
                                    f"model {model.name!r} (a shared layer), which is not supported; give each call "
                                    f"its own layer")
            keras_nodes[layer.name] = calls[0] if calls else layer._inbound_nodes[0]
        return layers, keras_nodes
    in_model = getattr(model, "_network_nodes", None)
    keras_nodes, deps = {}, {}
    for layer in layers:
        calls = [n for k, n in enumerate(layer._inbound_nodes) if in_model is None or f"{layer.name}_ib-{k}" in in_model]
        if len(calls) > 1:
            raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}) is called {len(calls)} times in model "
                                f"{model.name!r} (a shared layer), which is not supported; give each call its own layer")
        keras_nodes[layer.name] = calls[0] if calls else layer._inbound_nodes[0]
        deps[layer.name] = {x.name for x in tf.nest.flatten(keras_nodes[layer.name].inbound_layers)}
    order, done, todo = [], set(), list(layers)
    while todo:
        ready = next((layer for layer in todo if deps[layer.name] <= done), None)
        if ready is None:
            raise FrontendError(f"model {model.name!r}: layers {', '.join(repr(x.name) for x in todo)} read layers "
                                f"outside the model; only layers fed from the model's input are supported")
        order.append(ready)
        done.add(ready.name)
        todo.remove(ready)
    return order, keras_nodes


def keras_to_graph(model, name: str | None = None) -> Graph:
    """Walk the model's layers in a topological order and build the graph with the handlers."""
    graph = Graph(name or model.name)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise FrontendError(f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                            f"only single-input, single-output models are supported yet")
    layers, keras_nodes = _layers_in_order(model)
    ctx = Context(graph, keras_nodes)
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
            node.meta.setdefault("keras_class", cls)          # hls4ml_config's LayerType keys, reports
            if any(int(d) < 1 for d in node.shape):
                raise FrontendError(f"layer {layer.name!r} ({cls}): output shape {tuple(node.shape)} has a zero "
                                    f"dimension; every layer needs at least one output value")
    graph.outputs = [_output_node(ctx, t) for t in model.outputs]
    return graph


def _output_node(ctx: Context, tensor) -> str:
    """The node holding a model output.  When the last layer only relabels its input (Reshape, Flatten), a
    linear activation (a copy, removed by nothing since it is an output) gives the output Keras' shape."""
    layer_name = _history_layer(tensor).name
    src = ctx.source(layer_name)
    shape = tuple(int(d) for d in tensor.shape[1:]) if all(d is not None for d in tensor.shape[1:]) else None
    node = ctx.graph[src]
    if shape is None or shape == tuple(node.shape) or int(np.prod(shape)) != node.size or src == layer_name:
        return src
    ctx.alias.pop(layer_name, None)
    return ctx.add(Node(layer_name, "activation", [src], shape, attrs={"activation": "linear"})).name
