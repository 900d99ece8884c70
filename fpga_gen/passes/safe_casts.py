"""Keep every rounding cast inside what the AMD ap_fixed headers can do.

Converting ``src`` to a type with ``shift = src.frac - dst.frac`` fewer fraction bits under a
rounding mode reads bit ``shift - 1`` of ``src``; when ``shift > src.width`` that bit is past the
MSB and the headers abort (``Attempting to read bit beyond MSB``) — in csim and in the HLS tool's
own C simulation.  Such a cast arises from narrow quantizers with large integer bits, e.g.
``quantized_relu(2, 5)`` after a 12-bit accumulator.

The fix is exact: sign-extend ``src`` (``width + k``, ``integer + k``) so it holds the bit.  That
is free for the types this tool chose itself (accumulators and the exact results of dense/conv
layers, the exact results of merges and of a quantized model's batchnorm); a cast out of any other type is
refused naming the layer.

A merge casts the ap_fixed operator's own result (``+``: max integer bits + 1, max fraction bits;
``*``: the widths added; average: the sum times ``ap_ufixed<1,0>``; maximum, minimum and concatenate:
each input) to its result type: a result type set in the config that rounds past that is refused.
"""

from __future__ import annotations

from ..config import ProjectConfig
from ..ir.exact import bits_lacking, cast_reads_past_msb, merge_cast_sources, widen
from ..ir.graph import Graph, Node
from .base import Pass, PassError
from .infer_precision import merge_result_type

__all__ = ["SafeCasts"]

_WEIGHTED = ("dense", "conv2d", "depthwise_conv2d")


class SafeCasts(Pass):
    name = "safe-casts"

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            if node.op in _WEIGHTED and "accum" in node.types:
                k = cast_reads_past_msb(node.types["accum"], node.types["result"])
                if k:
                    exact = node.types["result"] == node.types["accum"]
                    node.types["accum"] = widen(node.types["accum"], k)
                    if exact:
                        node.types["result"] = node.types["accum"]
                    return True
            if node.op in ("merge", "concatenate"):
                rt = node.types["result"]
                for width, frac, signed in merge_cast_sources(node, graph):
                    if bits_lacking(width, frac, signed, rt):
                        what = node.attrs.get("mode", node.op)
                        raise PassError(f"layer {node.name!r}: rounding the {what} ({width} bits, {frac} fraction "
                                        f"bits) to its result type {rt} drops more bits than it has, which the "
                                        f"ap_fixed headers cannot do; give the result at least {frac - width} "
                                        f"fraction bits or TRN rounding")
            if node.op == "activation":
                producer = graph[node.inputs[0]]
                k = cast_reads_past_msb(producer.types["result"], node.types["result"])
                if k:
                    self._widen_producer(graph, producer, node, k)
                    return True
        return False

    @staticmethod
    def _widen_producer(graph: Graph, producer: Node, node: Node, k: int) -> None:
        src = producer.types["result"]
        if producer.op in _WEIGHTED and src == producer.types.get("accum"):
            producer.types["accum"] = widen(src, k)
            producer.types["result"] = producer.types["accum"]
            return
        if producer.op in ("merge", "concatenate"):
            try:
                exact = merge_result_type(producer.attrs["mode"] if producer.op == "merge" else "concatenate",
                                          *graph.producer_types(producer))
            except PassError:              # no exact type fits: the config set this one
                exact = None
            if exact is not None and src.frac == exact.frac and src.plain() == src and src.contains(exact):
                # the exact type this tool chose (or one holding it on the same grid): sign-extending is free
                producer.types["result"] = widen(src, k)
                return
        if producer.op == "batchnorm" and producer.meta.get("quantized") \
                and "result" not in producer.meta.get("override", {}):
            producer.types["result"] = widen(src, k)     # the exact x * scale + bias type this tool chose
            return
        raise PassError(f"layer {node.name!r}: casting {src} to {node.types['result']} drops more bits than the "
                        f"input has, which the ap_fixed headers cannot round; give {producer.name!r} "
                        f"{k} more integer bits or use fewer integer bits in {node.name!r}'s quantizer")
