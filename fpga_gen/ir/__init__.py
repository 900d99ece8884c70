"""The layer graph IR: fixed-point types, nodes and graphs, op definitions."""
from .graph import Graph, GraphError, Node
from .ops import OPS, OpDef, op_def
from .types import FixedType, TypeParseError, exact_type_for_range

__all__ = ["FixedType", "TypeParseError", "exact_type_for_range", "Graph", "GraphError", "Node", "OPS", "OpDef", "op_def"]
