"""HLS handlers of the two-input ops (io_parallel): merge -> nnet::add / subtract / multiply / average /
maximum / minimum, concatenate -> nnet::concatenate{1,2,3}d (nnet_utils/nnet_merge.h).  Registered into
:data:`fpga_gen.hls.layers.HANDLERS`; templates ``templates/hls/layers/merge.j2`` and ``concatenate.j2``,
whose config structs are the ones hls4ml 1.3 writes (``merge_config``, ``concat_config``)."""

from __future__ import annotations

import math

from ..ir.graph import Graph, Node
from ..ir.ops import MERGE_MODES
from ..ir.reuse import node_reuse
from .layers import LayerCode, _fail, handler
from .names import Namer

__all__ = []


@handler("merge")
def merge(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    mode = node.attrs.get("mode")
    if mode not in MERGE_MODES:
        _fail(node, f"merge mode {mode!r} has no HLS template; supported: {', '.join(MERGE_MODES)}")
    n1, n2 = code.in_sizes
    if not n1 == n2 == code.n_out:
        _fail(node, f"io_parallel {mode} needs two inputs of its own size {code.n_out}, got {n1} and {n2}")
    code.includes = ("nnet_utils/nnet_merge.h", "nnet_utils/nnet_merge_stream.h")
    code.summary = f"{mode} of {node.inputs[0]!r} and {node.inputs[1]!r}"
    code.params.update(function=f"nnet::{mode}", n_elem1=n1, n_elem2=n2, n_elem=max(n1, n2),
                       reuse_factor=node_reuse(node))
    return code


@handler("concatenate")
def concatenate(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    a = node.attrs
    s1, s2 = tuple(int(d) for d in a["shape1"]), tuple(int(d) for d in a["shape2"])
    axis, rank = int(a["axis"]), len(s1)
    if not 1 <= rank <= 3 or len(s2) != rank or not 0 <= axis < rank:
        _fail(node, f"nnet::concatenate joins two 1-, 2- or 3-d tensors along one of their axes, got shapes "
                    f"{s1} and {s2} along axis {axis}")
    if tuple(code.in_sizes) != (math.prod(s1), math.prod(s2)) or code.n_out != code.in_sizes[0] + code.in_sizes[1]:
        _fail(node, f"inputs of {code.in_sizes[0]} and {code.in_sizes[1]} values do not have shapes {s1} and {s2}")
    code.includes = ("nnet_utils/nnet_merge.h", "nnet_utils/nnet_merge_stream.h")
    code.summary = (f"{node.inputs[0]!r} ({'x'.join(map(str, s1))}) and {node.inputs[1]!r} ({'x'.join(map(str, s2))}) "
                    f"along axis {axis + 1}")
    # hls4ml's keras axis counts the batch: concatenateNd picks its loop nest from it (axis + 1 here)
    code.params.update(function=f"nnet::concatenate{rank}d", axis=axis + 1,
                       n_elem1=list(s1) + [0] * (3 - rank), n_elem2=list(s2) + [0] * (3 - rank))
    return code
