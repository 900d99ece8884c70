"""HLS handlers of the 2-D ops (io_parallel, channels_last): conv2d -> nnet::conv_2d_cl, pooling ->
nnet::pooling2d_cl (nnet::global_pooling2d_cl for one window over the whole input).  Conv1D and the 1-D
poolings are these ops with in_height 1 (see :mod:`fpga_gen.ir.ops`).  Registered into :data:`fpga_gen.hls.layers.HANDLERS`; templates
``templates/hls/layers/conv2d.j2`` and ``pooling.j2``.

conv2d follows hls4ml 1.3's io_parallel config exactly: a dense ``mult_config`` per output pixel,
ParallelizationFactor 1 (``n_partitions`` = output pixels, one pixel per partition) and the im2col
``fill_buffer`` class hls4ml generates, here written by the template from the window indices of
:func:`fpga_gen.ir.spatial.window_indices` (the emulator gathers with the same indices).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.reuse import node_reuse, valid_reuse_factors
from ..ir.spatial import window_indices
from .layers import LayerCode, TypeDef, _fail, _type, handler, product_params, weight_array
from .layers_da import dense_da
from .names import Namer
from .native import plan as native_plan
from .native import pooling_plan

__all__ = []


def _geometry(node: Node, code: LayerCode, window_key: str) -> dict:
    a = node.attrs
    in_h, in_w, n_chan = int(a["in_height"]), int(a["in_width"]), int(a["n_chan"])
    kh, kw = (int(v) for v in a[window_key])
    sh, sw = (int(v) for v in a["strides"])
    pt, pb, pl, pr = (int(v) for v in a["pads"])
    if code.n_in != in_h * in_w * n_chan:
        _fail(node, f"input has {code.n_in} values, expected {in_h}x{in_w}x{n_chan}")
    shape = tuple(int(d) for d in node.shape)
    if len(shape) == 3:
        out_h, out_w = shape[:2]
    elif len(shape) == 2 and in_h == 1:             # a 1-D layer: (width, channels)
        out_h, out_w = 1, shape[0]
    elif len(shape) == 1 and node.op == "pooling":  # global pooling: (channels,)
        out_h, out_w = 1, 1
    else:
        _fail(node, f"io_parallel 2-D layers need an (height, width, channels) output, or (width, channels) "
                    f"when in_height is 1, got shape {node.shape}")
    if (in_h + pt + pb - kh) // sh + 1 != out_h or (in_w + pl + pr - kw) // sw + 1 != out_w:
        _fail(node, f"output shape {node.shape} does not follow from the input, window, strides and pads")
    return dict(in_height=in_h, in_width=in_w, n_chan=n_chan, filt_height=kh, filt_width=kw, stride_height=sh,
                stride_width=sw, pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr, out_height=out_h,
                out_width=out_w)


@handler("conv2d")
def conv2d(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    g = _geometry(node, code, "kernel_size")
    n_filt = int(node.attrs["n_filt"])
    kernel = np.asarray(node.weights.get("kernel"))
    bias = np.asarray(node.weights.get("bias"))
    if kernel.shape != (g["filt_height"], g["filt_width"], g["n_chan"], n_filt) or node.shape[-1] != n_filt:
        _fail(node, f"kernel has shape {kernel.shape}, expected "
                    f"{(g['filt_height'], g['filt_width'], g['n_chan'], n_filt)}")
    if bias.shape != (n_filt,):
        _fail(node, f"bias has shape {bias.shape}, expected ({n_filt},)")
    strategy = str(node.attrs.get("strategy", "latency")).lower()
    if strategy == "distributed_arithmetic":      # da4ml's adder graph per output pixel (layers_da.py)
        return dense_da(node, graph, namer, code, g)
    rf = node_reuse(node)
    mult_n_in = g["filt_height"] * g["filt_width"] * g["n_chan"]
    valid = valid_reuse_factors(mult_n_in, n_filt, "conv2d", strategy)
    if rf not in valid:
        _fail(node, f"reuse factor {rf} is not supported for a {mult_n_in}x{n_filt} {strategy} conv2d kernel; "
                    f"valid: {', '.join(map(str, valid))}")
    slot_types = {s: _type(node, s) for s in ("weight", "bias", "accum")}
    if strategy == "latency":
        dense_class, stored = "nnet::DenseLatency", kernel
    elif strategy == "resource":
        # conv_2d_resource_cl reads the kernel as (n_filt, kh, kw, n_chan), like hls4ml's resource pass
        dense_class = "nnet::DenseResource_rf_leq_nin"
        stored = np.transpose(kernel, (3, 0, 1, 2))
    else:
        _fail(node, f"strategy must be 'latency' or 'resource', got {strategy!r}")
    td = {s: namer.unique(f"{code.stem}_{s}_t") for s in slot_types}
    code.typedefs += [TypeDef(td[s], slot_types[s].cpp()) for s in ("weight", "bias", "accum")]
    w = weight_array(namer, f"w_{code.stem}", td["weight"], node, stored, slot_types["weight"], "kernel")
    b = weight_array(namer, f"b_{code.stem}", td["bias"], node, bias, slot_types["bias"], "bias")
    code.weights += [w, b]
    idx = window_indices(g["in_height"], g["in_width"], g["n_chan"], (g["filt_height"], g["filt_width"]),
                         (g["stride_height"], g["stride_width"]),
                         (g["pad_top"], g["pad_bottom"], g["pad_left"], g["pad_right"]))
    # one partition per output pixel (hls4ml's default ParallelizationFactor 1): buffer[0][j] per window cell
    fill = [[("0" if int(i) < 0 else f"data[{int(i)}]") for i in row] for row in idx]
    code.includes = ("nnet_utils/nnet_conv2d.h", "nnet_utils/nnet_conv2d_stream.h")
    code.summary = (f"{g['filt_height']}x{g['filt_width']} kernel, stride {g['stride_height']}x{g['stride_width']}, "
                    f"pads {g['pad_top']},{g['pad_bottom']},{g['pad_left']},{g['pad_right']}, {strategy}, "
                    f"reuse factor {rf}, weight {slot_types['weight'].cpp()}, accum {slot_types['accum'].cpp()}")
    code.params.update(g, n_filt=n_filt, strategy=strategy, reuse_factor=rf, n_zeros=w.n_zeros,
                       mult_n_in=mult_n_in, dense_class=dense_class, n_partitions=len(fill), fill=fill,
                       mult_config=namer.unique(f"{code.config}_mult"),
                       fill_class=namer.unique(f"fill_buffer_{code.stem}"),
                       weight_t=td["weight"], bias_t=td["bias"], accum_t=td["accum"], w=w.name, b=b.name,
                       **product_params(node))
    code.params["native"] = native_plan(node, graph, namer, code, kernel.reshape(mult_n_in, n_filt),
                                        strategy == "resource", len(fill), idx)
    return code


@handler("pooling")
def pooling(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    g = _geometry(node, code, "pool_size")
    mode = node.attrs.get("mode")
    if mode not in ("max", "average"):
        _fail(node, f"pooling mode {mode!r} has no HLS template; supported: max, average")
    if node.shape[-1] != g["n_chan"]:
        _fail(node, f"pooling keeps the channels, got {g['n_chan']} -> {node.shape[-1]}")
    # one window over the whole input: hls4ml's global pooling kernel (the same pool_op over the same cells)
    is_global = (g["out_height"], g["out_width"]) == (1, 1) and \
        (g["filt_height"], g["filt_width"]) == (g["in_height"], g["in_width"]) == \
        (g["stride_height"], g["stride_width"]) and not any(node.attrs["pads"])
    at = _type(node, "accum")
    td = namer.unique(f"{code.stem}_accum_t")
    code.typedefs.append(TypeDef(td, at.cpp()))
    code.includes = ("nnet_utils/nnet_pooling.h", "nnet_utils/nnet_pooling_stream.h")
    code.summary = (f"{'global ' if is_global else ''}{mode} {g['filt_height']}x{g['filt_width']}, "
                    f"stride {g['stride_height']}x{g['stride_width']}, "
                    f"accum {at.cpp()}")
    code.params.update(g, pool_op="Max" if mode == "max" else "Average", accum_t=td, is_global=is_global,
                       function="nnet::global_pooling2d_cl" if is_global else "nnet::pooling2d_cl",
                       reuse_factor=node_reuse(node))
    # the native back end's integer form (fpga_gen_native.h): the same windows, the same casts on the raw codes
    idx = window_indices(g["in_height"], g["in_width"], 1, (g["filt_height"], g["filt_width"]),
                         (g["stride_height"], g["stride_width"]),
                         (g["pad_top"], g["pad_bottom"], g["pad_left"], g["pad_right"]))
    code.params["native"] = pooling_plan(node, graph, namer, code, idx)
    return code
