"""HLS handlers of the data-movement ops (io_parallel, channels_last): zeropad -> nnet::zeropad2d_cl
(zeropad1d_cl for a 1-D layer), cropping -> nnet::cropping2d_cl / cropping1d_cl, upsampling ->
nnet::resize_nearest, transpose -> nnet::transpose.  Registered into :data:`fpga_gen.hls.layers.HANDLERS`;
templates ``templates/hls/layers/{zeropad,cropping,upsampling,transpose}.j2`` with the config structs
hls4ml 1.3 writes (reshaping_templates.py).  They cost no arithmetic: wiring, and a cast when the
result type differs from the input's.
"""

from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ir.spatial import resize_nearest_rows, transpose_strides
from .layers import LayerCode, _fail, _type, handler
from .names import Namer

__all__ = []


def _plane(node: Node, code: LayerCode, out_hw: tuple[int, int]) -> dict:
    """Sizes of a (height, width, channels) op; a node of shape (width, channels) is a 1-D layer."""
    a = node.attrs
    in_h, in_w, n_chan = int(a["in_height"]), int(a["in_width"]), int(a["n_chan"])
    if code.n_in != in_h * in_w * n_chan:
        _fail(node, f"input has {code.n_in} values, expected {in_h}x{in_w}x{n_chan}")
    shape = tuple(int(d) for d in node.shape)
    rank = len(shape) - 1
    if rank not in (1, 2) or (rank == 1 and in_h != 1) or shape[-1] != n_chan:
        _fail(node, f"output shape {node.shape} is not (height, width, {n_chan}) or (width, {n_chan}) with "
                    f"in_height 1")
    if shape[:-1] != tuple(out_hw)[2 - rank:] or (rank == 1 and out_hw[0] != 1):
        _fail(node, f"output shape {node.shape} does not follow from the input {in_h}x{in_w}x{n_chan} and the "
                    f"layer's attributes")
    return dict(rank=rank, in_height=in_h, in_width=in_w, n_chan=n_chan, out_height=out_hw[0],
                out_width=out_hw[1])


@handler("zeropad")
def zeropad(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    pt, pb, pl, pr = (int(p) for p in node.attrs["pads"])
    a = node.attrs
    p = _plane(node, code, (int(a["in_height"]) + pt + pb, int(a["in_width"]) + pl + pr))
    code.includes = ("nnet_utils/nnet_padding.h", "nnet_utils/nnet_padding_stream.h")
    code.summary = f"pads top {pt}, bottom {pb}, left {pl}, right {pr}"
    code.params.update(p, pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr,
                       function=f"nnet::zeropad{p['rank']}d_cl")
    return code


@handler("cropping")
def cropping(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    ct, cb, cl, cr = (int(c) for c in node.attrs["crops"])
    a = node.attrs
    p = _plane(node, code, (int(a["in_height"]) - ct - cb, int(a["in_width"]) - cl - cr))
    code.includes = ("nnet_utils/nnet_cropping.h", "nnet_utils/nnet_cropping_stream.h")
    code.summary = f"crops top {ct}, bottom {cb}, left {cl}, right {cr}"
    code.params.update(p, crop_top=ct, crop_bottom=cb, crop_left=cl, crop_right=cr,
                       function=f"nnet::cropping{p['rank']}d_cl")
    return code


@handler("upsampling")
def upsampling(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    sh, sw = (int(s) for s in node.attrs["size"])
    a = node.attrs
    p = _plane(node, code, (int(a["in_height"]) * sh, int(a["in_width"]) * sw))
    if _type(node, "result") != _type(graph[node.inputs[0]], "result"):
        _fail(node, f"nnet::resize_nearest writes its input type {graph[node.inputs[0]].types['result'].cpp()}, "
                    f"the result type is {node.types['result'].cpp()}")
    try:
        resize_nearest_rows(p["in_height"], p["out_height"])
        resize_nearest_rows(p["in_width"], p["out_width"])
    except ValueError as e:
        _fail(node, str(e))
    code.includes = ("nnet_utils/nnet_image.h", "nnet_utils/nnet_image_stream.h")
    code.summary = f"nearest, size {sh}x{sw}"
    code.params.update(p, size_height=sh, size_width=sw)
    return code


@handler("transpose")
def transpose(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    in_shape = tuple(int(d) for d in node.attrs["in_shape"])
    perm = tuple(int(d) for d in node.attrs["perm"])
    if sorted(perm) != list(range(len(in_shape))):
        _fail(node, f"perm {perm} is not a permutation of the {len(in_shape)} axes of {in_shape}")
    to_shape, perm_strides = transpose_strides(in_shape, perm)
    n = 1
    for d in in_shape:
        n *= d
    if code.n_in != n or tuple(int(d) for d in node.shape) != to_shape:
        _fail(node, f"input of {code.n_in} values and output shape {node.shape} do not follow from in_shape "
                    f"{in_shape} and perm {perm}")
    code.includes = ("nnet_utils/nnet_transpose.h", "nnet_utils/nnet_transpose_stream.h")
    code.summary = f"perm {perm} of {in_shape}"
    code.params.update(dims=len(in_shape), n=n, from_shape=in_shape, to_shape=to_shape, perm=perm,
                       perm_strides=perm_strides)
    return code
