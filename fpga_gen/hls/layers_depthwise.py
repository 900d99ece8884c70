"""HLS handler of depthwise_conv2d (nnet::depthwise_conv_2d_cl, io_parallel, latency), registered into
:data:`fpga_gen.hls.layers.HANDLERS`; template ``templates/hls/layers/depthwise_conv2d.j2``.  Configs as hls4ml 1.3 writes them: the depthwise layer uses the conv2d config
(``mult_config`` with n_in = kh * kw * n_chan, n_out = n_chan, nnet::DepthwiseDenseLatency) and the same im2col
``fill_buffer``; a SeparableConv2D arrives as a depthwise_conv2d and a 1x1 conv2d (hls4ml's split)."""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.reuse import node_reuse
from ..ir.spatial import window_indices
from .layers import LayerCode, TypeDef, _fail, _type, handler, product_params, weight_array
from .layers_conv import _geometry
from .names import Namer

__all__ = []


@handler("depthwise_conv2d")
def depthwise_conv2d(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    g = _geometry(node, code, "kernel_size")
    n_chan = g["n_chan"]
    if int(node.attrs.get("n_filt", n_chan)) != n_chan or node.shape[-1] != n_chan:
        _fail(node, f"nnet's depthwise kernel needs n_filt == n_chan (depth multiplier 1), got "
                    f"{node.attrs.get('n_filt')} filters over {n_chan} channels")
    kernel = np.asarray(node.weights.get("kernel"))
    bias = np.asarray(node.weights.get("bias"))
    if kernel.shape != (g["filt_height"], g["filt_width"], n_chan):
        _fail(node, f"kernel has shape {kernel.shape}, expected {(g['filt_height'], g['filt_width'], n_chan)}")
    if bias.shape != (n_chan,):
        _fail(node, f"bias has shape {bias.shape}, expected ({n_chan},)")
    strategy = str(node.attrs.get("strategy", "latency")).lower()
    rf = node_reuse(node)
    if strategy != "latency" or rf < 1:
        _fail(node, f"nnet's io_parallel depthwise convolution has the latency strategy only (reuse factor >= 1), "
                    f"got {strategy} with reuse factor {rf}")
    slot_types = {s: _type(node, s) for s in ("weight", "bias", "accum")}
    td = {s: namer.unique(f"{code.stem}_{s}_t") for s in slot_types}
    code.typedefs += [TypeDef(td[s], slot_types[s].cpp()) for s in ("weight", "bias", "accum")]
    w = weight_array(namer, f"w_{code.stem}", td["weight"], node, kernel, slot_types["weight"], "kernel")
    b = weight_array(namer, f"b_{code.stem}", td["bias"], node, bias, slot_types["bias"], "bias")
    code.weights += [w, b]
    idx = window_indices(g["in_height"], g["in_width"], n_chan, (g["filt_height"], g["filt_width"]),
                         (g["stride_height"], g["stride_width"]),
                         (g["pad_top"], g["pad_bottom"], g["pad_left"], g["pad_right"]))
    fill = [[("0" if int(i) < 0 else f"data[{int(i)}]") for i in row] for row in idx]
    code.includes = ("nnet_utils/nnet_conv2d.h", "nnet_utils/nnet_sepconv2d.h", "nnet_utils/nnet_sepconv2d_stream.h")
    code.summary = (f"depthwise {g['filt_height']}x{g['filt_width']} kernel, stride "
                    f"{g['stride_height']}x{g['stride_width']}, pads {g['pad_top']},{g['pad_bottom']},"
                    f"{g['pad_left']},{g['pad_right']}, weight {slot_types['weight'].cpp()}, "
                    f"accum {slot_types['accum'].cpp()}")
    code.params.update(g, n_filt=n_chan, strategy=strategy, reuse_factor=rf, n_zeros=w.n_zeros,
                       mult_n_in=g["filt_height"] * g["filt_width"] * n_chan, dense_class="nnet::DepthwiseDenseLatency",
                       n_partitions=len(fill), fill=fill, mult_config=namer.unique(f"{code.config}_mult"),
                       fill_class=namer.unique(f"fill_buffer_{code.stem}"),
                       weight_t=td["weight"], bias_t=td["bias"], accum_t=td["accum"], w=w.name, b=b.name,
                       **product_params(node))
    return code
