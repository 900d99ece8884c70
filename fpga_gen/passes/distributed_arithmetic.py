"""Distributed-arithmetic layers: check what da4ml can express, fix the exact accumulator, record the options.

A dense layer whose strategy is ``distributed_arithmetic`` (config ``strategy: da`` globally or per layer) computes
the exact ``x @ W + b`` with da4ml's shift-and-add graph and casts it once to its result type (ir/ops.py).  This
pass makes the graph say exactly that: the accum type becomes the exact type of every sum
(:func:`~fpga_gen.passes.infer_precision.dense_accum_type`, a calibrated or configured narrower one is refused),
so the emulator's dense kernel (products and bias cast to accum, the sum cast to result) computes the same bits.
It records the layer's solver options (``attrs['da']``) and refuses, in one line naming the layer, what the DA
layer cannot be: a reuse factor other than 1, an io_stream conv2d, an op other than dense and conv2d (conv2d: the same
adder graph for every output pixel, over its zero-padded patch), weights float32 cannot hold.
"""

from __future__ import annotations

import numpy as np

from ..config import ProjectConfig
from ..da.solve import DA_STRATEGY, DaError, check_options
from ..ir.graph import Graph
from .base import Pass, PassError
from .infer_precision import dense_accum_type

__all__ = ["ApplyDistributedArithmetic"]


class ApplyDistributedArithmetic(Pass):
    name = "distributed-arithmetic"
    max_iterations = 1

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            if node.attrs.get("strategy") != DA_STRATEGY:
                continue
            if node.op not in ("dense", "conv2d"):
                if "strategy" in config.layer(node.name):
                    raise PassError(f"layer {node.name!r} ({node.op}): strategy distributed_arithmetic supports "
                                    f"dense and conv2d layers only")
                node.attrs["strategy"] = "latency"       # the model-wide setting reaches the layers it can
                continue
            where = f"layer {node.name!r}"
            rf = int(node.attrs.get("reuse_factor", 1))
            if rf != 1:
                raise PassError(f"{where}: strategy distributed_arithmetic needs reuse factor 1 (its adder graph "
                                f"is fully parallel), got {rf}")
            if config.io_type != "parallel" and node.op != "dense":
                raise PassError(f"{where}: strategy distributed_arithmetic supports io_type stream for dense "
                                f"layers only")
            try:
                opts = check_options(config.layer_da(node.name), f"{config.source}: da")
            except DaError as e:
                raise PassError(str(e)) from None
            node.attrs["da"] = {k: v for k, v in sorted(opts.items())}
            x = graph[node.inputs[0]].types["result"]
            kernel, bias = node.weights["kernel"], node.weights["bias"]
            kernel = kernel.reshape(-1, kernel.shape[-1])       # conv2d: the dense kernel of one output pixel
            if not np.array_equal(np.asarray(kernel, np.float32).astype(np.float64), kernel):
                raise PassError(f"{where}: distributed arithmetic needs weights float32 holds exactly (da4ml "
                                f"solves in float32); quantize the kernel to at most 24 significant bits")
            exact = dense_accum_type(x, node.types["weight"], node.types["bias"], kernel, bias)
            given = node.meta.get("override", {}).get("accum")
            if given is not None and given != exact:
                raise PassError(f"{where}: a distributed_arithmetic layer sums exactly in {exact.cpp()}; drop its "
                                f"precision.accum ({given.cpp()})")
            old = node.types.get("accum")
            if old != exact:
                if node.types.get("result") == old and "result" not in node.meta.get("override", {}):
                    node.types["result"] = exact
                node.types["accum"] = exact
        return False
