"""Exact types of apply_scale (QKeras' per-channel power-of-two alpha after a dense/conv)."""

from __future__ import annotations

import numpy as np

from ..ir.fixed import from_float
from ..ir.graph import Graph, Node
from ..ir.quant import exact_value_type, scale_sum_type
from ..ir.types import FixedType
from .base import PassError

__all__ = ["apply_scale_types"]


def apply_scale_types(graph: Graph, node: Node, ov: dict, default: FixedType) -> None:
    x = graph[node.inputs[0]].types["result"]
    if "bias" not in node.types:        # a float bias: rounded to the default precision, as dense does
        rt = default.with_modes("RND_CONV", "SAT")
        node.weights["bias"] = from_float(np.asarray(node.weights["bias"], dtype=np.float64), rt) * 2.0 ** -rt.frac
    node.types["scale"] = node.types.get("scale") or exact_value_type(node.weights["scale"])
    node.types["bias"] = node.types.get("bias") or exact_value_type(node.weights["bias"])
    try:
        exact = scale_sum_type(x, node.types["scale"], node.types["bias"], node.weights["scale"],
                               node.weights["bias"])
    except ValueError:
        exact = None
    if exact is None or exact.width > 53:
        s = np.abs(np.asarray(node.weights["scale"], dtype=np.float64))
        po2 = bool(np.all((s == 0) | (np.frexp(s)[0] == 0.5)))      # already powers of two (auto_po2)
        fix = ("quantize the layer's input (e.g. a QActivation(quantized_bits) before it)" if po2 else
               "use alpha='auto_po2' or fewer bits before it")
        raise PassError(f"layer {node.name!r}: x * scale + bias of {x.cpp()} and the per-channel scales "
                        f"{node.types['scale'].cpp()} needs more than 53 bits to be exact; {fix}")
    node.types["result"] = ov.get("result") or node.types.get("result") or exact
