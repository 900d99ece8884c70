"""Keep every rounding cast inside what the AMD ap_fixed headers can do.

Converting ``src`` to a type with ``shift = src.frac - dst.frac`` fewer fraction bits under a
rounding mode reads bit ``shift - 1`` of ``src``; when ``shift > src.width`` that bit is past the
MSB and the headers abort (``Attempting to read bit beyond MSB``) — in csim and in the HLS tool's
own C simulation.  Such a cast arises from narrow quantizers with large integer bits, e.g.
``quantized_relu(2, 5)`` after a 12-bit accumulator.

The fix is exact: sign-extend ``src`` (``width + k``, ``integer + k``) so it holds the bit.  That
is free for the types this tool chose itself (accumulators and the exact results of dense/conv
layers and of a quantized model's batchnorm); a cast out of any other type is refused naming the layer.
"""

from __future__ import annotations

from ..config import ProjectConfig
from ..ir.graph import Graph, Node
from ..ir.types import FixedType
from .base import Pass, PassError

__all__ = ["SafeCasts", "cast_reads_past_msb"]

_WEIGHTED = ("dense", "conv2d", "depthwise_conv2d")


def cast_reads_past_msb(src: FixedType, dst: FixedType) -> int:
    """How many bits ``src`` lacks for the cast to ``dst`` (0 when the cast is safe)."""
    if dst.rounding == "TRN" or (dst.rounding == "TRN_ZERO" and not src.signed):
        return 0
    shift = src.frac - dst.frac
    return max(0, shift - src.width)


def _widen(t: FixedType, k: int) -> FixedType:
    return FixedType(t.width + k, t.integer + k, t.signed, t.rounding, t.saturation)


class SafeCasts(Pass):
    name = "safe-casts"

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            if node.op in _WEIGHTED and "accum" in node.types:
                k = cast_reads_past_msb(node.types["accum"], node.types["result"])
                if k:
                    exact = node.types["result"] == node.types["accum"]
                    node.types["accum"] = _widen(node.types["accum"], k)
                    if exact:
                        node.types["result"] = node.types["accum"]
                    return True
            if node.op == "activation":
                producer = graph[node.inputs[0]]
                k = cast_reads_past_msb(producer.types["result"], node.types["result"])
                if k:
                    self._widen_producer(producer, node, k)
                    return True
        return False

    @staticmethod
    def _widen_producer(producer: Node, node: Node, k: int) -> None:
        src = producer.types["result"]
        if producer.op in _WEIGHTED and src == producer.types.get("accum"):
            producer.types["accum"] = _widen(src, k)
            producer.types["result"] = producer.types["accum"]
            return
        if producer.op == "batchnorm" and producer.meta.get("quantized") \
                and "result" not in producer.meta.get("override", {}):
            producer.types["result"] = _widen(src, k)     # the exact x * scale + bias type this tool chose
            return
        raise PassError(f"layer {node.name!r}: casting {src} to {node.types['result']} drops more bits than the "
                        f"input has, which the ap_fixed headers cannot round; give {producer.name!r} "
                        f"{k} more integer bits or use fewer integer bits in {node.name!r}'s quantizer")
