"""QKeras quantizers in the graph: weight quantizers of QDense/QConv2D (with QKeras' per-channel
power-of-two alpha split off into an apply_scale node) and activation quantizers (the existing
activation op where a cast does it, quant_act otherwise).  See :mod:`fpga_gen.frontend.keras.quantizers`."""

from __future__ import annotations

import types as _types

import numpy as np

from ...ir.graph import Node
from ...ir.types import FixedType
from .quantizers import activation_spec, quantize_weights

__all__ = ["is_qkeras_quantizer", "add_quant_activation", "quantized_weights", "add_weighted"]


def is_qkeras_quantizer(q) -> bool:
    """A QKeras quantizer object, or one of QKeras' quantizing functions (binary_tanh, ...)."""
    if q is None or isinstance(q, str):
        return False
    if isinstance(q, _types.FunctionType):
        return getattr(q, "__module__", "").startswith("qkeras")
    return type(q).__module__.startswith("qkeras")


def add_quant_activation(ctx, layer, src: str, q, name: str, layer_name: str | None) -> str:
    spec = activation_spec(q, layer.name)
    shape = ctx.graph[src].shape
    if spec.kind in ("bits", "relu"):
        node = Node(name, "activation", [src], shape, attrs={"activation": "relu" if spec.kind == "relu" else "linear"},
                    types={"result": spec.type}, meta={"quantizer": spec.text})
    else:
        node = Node(name, "quant_act", [src], shape, attrs=dict(spec.attrs),
                    types={} if spec.type is None else {"result": spec.type}, meta={"quantizer": spec.text})
    return ctx.add(node, layer_name).name


def quantized_weights(layer, kernel: np.ndarray, bias: np.ndarray, types: dict, meta: dict):
    """Kernel and bias through the layer's QKeras quantizers -> (kernel, bias, per-channel scale or None);
    fills the weight/bias types and the quantizer texts."""
    scale = None
    kq = getattr(layer, "kernel_quantizer_internal", None)
    bq = getattr(layer, "bias_quantizer_internal", None)
    if kq is not None:
        wq = quantize_weights(kq, kernel, layer.name, "kernel")
        kernel, scale = wq.values, wq.scale
        types["weight"] = wq.type
        meta["kernel_quantizer"] = wq.text
    if bq is not None and layer.use_bias:
        bqz = quantize_weights(bq, bias, layer.name, "bias")
        bias = bqz.values
        types["bias"] = bqz.type
        meta["bias_quantizer"] = bqz.text
    return kernel, bias, scale


def add_weighted(ctx, node: Node, scale) -> str:
    """Add a dense/conv node; with a per-channel scale, the node multiplies by the unscaled weights
    (its bias is 0) and an apply_scale node <layer>_alpha computes y * scale + bias.  Returns the
    node holding the layer's output."""
    if scale is None:
        return ctx.add(node).name
    bias = np.asarray(node.weights["bias"], dtype=np.float64)
    s_types = {}
    if "bias" in node.types:
        s_types["bias"] = node.types["bias"]
    node.weights["bias"] = np.zeros_like(bias)
    node.types["bias"] = FixedType(1, 1, True)   # zeros: the narrowest type
    ctx.add(node)
    name = ctx.unique(f"{node.name}_alpha")
    sn = Node(name, "apply_scale", [node.name], node.shape, attrs={},
              weights={"scale": np.asarray(scale, dtype=np.float64), "bias": bias}, types=s_types,
              meta={"alpha": node.meta.get("kernel_quantizer", "")})
    return ctx.add(sn, node.name).name
