"""The config's per-layer settings checked against the graph, and its precision overrides fixed on the nodes."""

from __future__ import annotations

from ..config import SOFTMAX_KEYS, ProjectConfig
from ..ir.graph import Graph
from ..ir.ops import TABLE_ACTIVATIONS, op_def
from .base import Pass, PassError

__all__ = ["ApplyLayerConfig"]


class ApplyLayerConfig(Pass):
    """Check that every layer named in the config exists and its precision slots are valid; fix them on nodes."""

    name = "apply-layer-config"
    max_iterations = 1

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        names = [n.name for n in graph]
        for lname, spec in config.layers.items():
            if lname not in graph:
                raise PassError(f"{config.source}: layers.{lname}: no layer named {lname!r} in the model; "
                                f"layers: {', '.join(names)}")
            node = graph[lname]
            slots = op_def(node.op).type_slots
            for slot, t in spec.get("precision", {}).items():
                if slot not in slots:
                    raise PassError(f"{config.source}: layers.{lname}.precision.{slot}: a {node.op} layer has no "
                                    f"{slot!r} type; its types: {', '.join(slots)}")
                node.meta.setdefault("override", {})[slot] = t
            if ("strategy" in spec or "reuse_factor" in spec) and node.op not in ("dense", "conv2d"):
                raise PassError(f"{config.source}: layers.{lname}: strategy/reuse_factor apply to dense and conv2d "
                                f"layers, {lname!r} is a {node.op} layer")
            if "mult_impl" in spec and node.op not in ("dense", "conv2d", "depthwise_conv2d"):
                raise PassError(f"{config.source}: layers.{lname}: mult_impl applies to dense, conv2d and "
                                f"depthwise_conv2d layers, {lname!r} is a {node.op} layer")
            if "table_size" in spec and not (node.op == "activation"
                                             and node.attrs.get("activation") in TABLE_ACTIVATIONS):
                raise PassError(f"{config.source}: layers.{lname}: table_size applies to table-based activations "
                                f"({', '.join(TABLE_ACTIVATIONS)}), {lname!r} is a "
                                f"{node.attrs.get('activation', node.op)} layer")
            if any(k in spec for k in SOFTMAX_KEYS) and node.op != "softmax":
                raise PassError(f"{config.source}: layers.{lname}: {', '.join(k for k in SOFTMAX_KEYS if k in spec)} "
                                f"apply to softmax layers, {lname!r} is a {node.op} layer")
        return False
