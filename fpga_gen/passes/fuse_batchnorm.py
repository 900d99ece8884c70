"""Fold a batchnorm into the float dense/conv layer before it (as hls4ml's FuseBatchNormalization).

``y = (x @ W + b) * s + t`` is ``x @ (W * s) + (b * s + t)``: one layer instead of two, computed in
float64 on the float weights before the precision pass rounds them (so the folded layer is rounded
once, where a separate batchnorm would round its scale, bias and result again).

The rule: fold when the producer is a ``dense``, ``conv2d`` or ``depthwise_conv2d`` whose weights are
*not* quantized (a float Keras layer: no weight or bias type from a QKeras quantizer), the batchnorm is
its only consumer, it is not a graph output, and neither the batchnorm's types nor the producer's result
type are set in the config.  A quantized QKeras layer's weights cannot absorb a float scale without
changing the numbers QKeras computes (the product of a quantized weight and a float scale is no longer on
the quantizer's grid), so after a QDense/QConv2D the batchnorm stays a separate layer
(nnet::normalize); QKeras' own folded layers (QConv2DBatchnorm) are converted as the folded layer.
"""

from __future__ import annotations

import numpy as np

from ..config import ProjectConfig
from ..ir.graph import Graph
from .base import Pass

__all__ = ["FuseBatchNorm", "FUSABLE"]

FUSABLE = ("dense", "conv2d", "depthwise_conv2d")


def _fusable(graph: Graph, bn, config: ProjectConfig) -> bool:
    if bn.op != "batchnorm" or bn.meta.get("override"):
        return False
    prod = graph[bn.inputs[0]]
    if prod.op not in FUSABLE or "weight" in prod.types or "bias" in prod.types:
        return False
    if "result" in prod.meta.get("override", {}) or prod.name in graph.outputs:
        return False
    if [c.name for c in graph.consumers(prod.name)] != [bn.name]:
        return False
    n_out = int(prod.attrs["n_out"] if prod.op == "dense" else prod.attrs["n_filt"])
    return int(bn.attrs["n_filt"]) == n_out == np.asarray(bn.weights["scale"]).size


class FuseBatchNorm(Pass):
    name = "fuse-batchnorm"

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for bn in graph:
            if not _fusable(graph, bn, config):
                continue
            prod = graph[bn.inputs[0]]
            s = np.asarray(bn.weights["scale"], dtype=np.float64)
            t = np.asarray(bn.weights["bias"], dtype=np.float64)
            # the output channel is the kernel's last axis for every fusable op
            prod.weights["kernel"] = np.asarray(prod.weights["kernel"], dtype=np.float64) * s
            prod.weights["bias"] = np.asarray(prod.weights["bias"], dtype=np.float64) * s + t
            prod.meta["fused_batchnorm"] = bn.name
            graph.remove(bn.name)
            return True
        return False
