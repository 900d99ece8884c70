"""HLS handler of batchnorm (nnet::normalize, nnet_batchnorm.h), registered into :data:`fpga_gen.hls.layers.HANDLERS`;
template ``templates/hls/layers/batchnorm.j2``."""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.reuse import node_reuse
from .layers import LayerCode, TypeDef, _fail, _type, handler, weight_array
from .names import Namer

__all__ = []


@handler("batchnorm")
def batchnorm(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    n_filt = int(node.attrs["n_filt"])
    scale = np.asarray(node.weights.get("scale"))
    bias = np.asarray(node.weights.get("bias"))
    if code.n_in != code.n_out or code.n_in % n_filt:
        _fail(node, f"batchnorm keeps its size and normalizes whole channels, got {code.n_in} -> {code.n_out} "
                    f"over {n_filt} channels")
    if scale.shape != (n_filt,) or bias.shape != (n_filt,):
        _fail(node, f"scale and bias must have shape ({n_filt},), got {scale.shape} and {bias.shape}")
    slot_types = {s: _type(node, s) for s in ("scale", "bias")}
    td = {s: namer.unique(f"{code.stem}_{s}_t") for s in slot_types}
    code.typedefs += [TypeDef(td[s], slot_types[s].cpp()) for s in ("scale", "bias")]
    s = weight_array(namer, f"s_{code.stem}", td["scale"], node, scale, slot_types["scale"], "scale")
    b = weight_array(namer, f"b_{code.stem}", td["bias"], node, bias, slot_types["bias"], "bias")
    code.weights += [s, b]
    code.includes = ("nnet_utils/nnet_batchnorm.h",)
    code.summary = f"{n_filt} channels, scale {slot_types['scale'].cpp()}, bias {slot_types['bias'].cpp()}"
    # hls4ml: n_filt = -1 for a 1-D input (one scale per element), else the channel count
    code.params.update(n_filt=-1 if len(node.shape) == 1 else n_filt, n_scale_bias=n_filt,
                       reuse_factor=node_reuse(node), scale_t=td["scale"], bias_t=td["bias"],
                       s=s.name, b=b.name, n_zeros=s.n_zeros)
    return code
