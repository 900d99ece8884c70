"""Linear activations without a type of their own are plain copies: removed."""

from __future__ import annotations

from ..config import ProjectConfig
from ..ir.graph import Graph
from .base import Pass

__all__ = ["RemoveIdentity"]


class RemoveIdentity(Pass):
    """Drop linear activations that have no type of their own (they would be plain copies)."""

    name = "remove-identity"

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            if node.op == "activation" and node.attrs.get("activation") == "linear" and "result" not in node.types \
                    and "result" not in node.meta.get("override", {}) and node.name not in graph.outputs:
                graph.remove(node.name)
                return True
        return False
