"""io_stream forms of the element-wise ops beyond dense/activation/softmax/conv/pooling (registered into
:data:`fpga_gen.hls.stream.STREAM_HANDLERS`): batchnorm and apply_scale (nnet::normalize of
nnet_batchnorm_stream.h), quant_act (fpga-gen's per-word wrappers in firmware/fpga_gen_stream.h around the
io_parallel functions of fpga_gen_quant.h).

Every stage here keeps its input's packing (one word in, one word out) and computes each value with the
io_parallel expression; the checks name what would make a stream kernel compute other numbers."""

from __future__ import annotations

from ..ir.graph import Graph, Node
from .layers import _fail
from .layers_quant import QUANT_HEADER
from .names import Namer
from .stream import STREAM_HEADER, Packing, StreamStage, _stage, stream_handler

__all__ = []


def _normalize(code: StreamStage, node: Node, src: Packing, n_filt: int, template: str) -> list[StreamStage]:
    # nnet::normalize (stream) indexes scale/bias by j % n_filt within a word (io_parallel: by the flat index
    # % n_filt): the same channel exactly when a word holds whole channel groups
    if n_filt != -1 and src.pack % n_filt:
        _fail(node, f"io_stream {node.op} needs whole groups of its {n_filt} channels in a stream word, the layer "
                    f"before it sends {src.pack} values per word; use io_type 'parallel'")
    code.includes = ("nnet_utils/nnet_batchnorm.h", "nnet_utils/nnet_batchnorm_stream.h")
    return [_stage(code, template, src.pack)]


@stream_handler("batchnorm")
def _batchnorm(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    return _normalize(code, node, src, code.params["n_filt"], "hls/layers/batchnorm.j2")


@stream_handler("apply_scale")
def _apply_scale(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    return _normalize(code, node, src, code.params["n_chan"], "hls/layers/apply_scale.j2")


@stream_handler("quant_act")
def _quant_act(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # fpga_gen::quant_act_<function> stream overloads: each word through the io_parallel function
    code.includes = (QUANT_HEADER, STREAM_HEADER)
    return [_stage(code, "hls/layers/quant_act.j2", src.pack)]
