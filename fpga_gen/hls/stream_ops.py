"""io_stream forms of the ops beyond dense/activation/softmax/conv/pooling (registered into
:data:`fpga_gen.hls.stream.STREAM_HANDLERS`): batchnorm and apply_scale (nnet::normalize of
nnet_batchnorm_stream.h), quant_act (fpga-gen's per-word wrappers in firmware/fpga_gen_stream.h around the
io_parallel functions of fpga_gen_quant.h), merge and concatenate (nnet_merge_stream.h), zeropad, cropping,
upsampling (nnet_padding_stream.h, nnet_cropping_stream.h, nnet_image_stream.h) and transpose
(nnet_transpose_stream.h).

Each stage computes every value with the io_parallel expression; the checks name what would make a stream
kernel compute other numbers (or read other words than its input sends)."""

from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ir.spatial import resize_nearest_rows
from .layers import _fail
from .layers_quant import QUANT_HEADER
from .names import Namer
from .stream import STREAM_HEADER, Packing, StreamStage, _stage, natural_pack, stream_handler

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


@stream_handler("fixed_quant")
def _fixed_quant(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # fpga_gen::fixed_quant stream overload: each word through the io_parallel function, its constants offset
    code.includes = (QUANT_HEADER, STREAM_HEADER)
    return [_stage(code, "hls/layers/fixed_quant.j2", src.pack)]


@stream_handler("lut")
def _lut(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # fpga_gen::lut stream overload: each word through the io_parallel function, one table for all values
    code.includes = (QUANT_HEADER, STREAM_HEADER)
    return [_stage(code, "hls/layers/lut.j2", src.pack)]


@stream_handler("merge")
def _merge(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::add / subtract / ... (nnet_merge_stream.h): word i of both inputs, element by element, with the
    # io_parallel expression; both inputs must come in the same words
    p1, p2 = code.pack_ins
    if p1 != p2:
        _fail(node, f"io_stream {node.attrs.get('mode')} reads its inputs word by word: they arrive in words of "
                    f"{p1} and {p2} values; use io_type 'parallel'")
    code.includes = ("nnet_utils/nnet_merge.h", "nnet_utils/nnet_merge_stream.h")
    return [_stage(code, "hls/layers/merge.j2", p1)]


@stream_handler("concatenate")
def _concatenate(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::concatenate{1,2,3}d (nnet_merge_stream.h): along the last axis a word of each input makes one output
    # word; along an outer axis the words pass through (input 1's, then input 2's), so both carry the same
    # values per word; a 1-d concatenation writes one word of everything
    p = code.params
    rank = int(p["function"][-2])            # nnet::concatenate<rank>d
    p1, p2 = code.pack_ins
    n1, n2 = code.in_sizes
    if rank == 1:
        pack = n1 + n2
    elif p["axis"] == rank:
        last1, last2 = p["n_elem1"][rank - 1], p["n_elem2"][rank - 1]
        if (p1, p2) != (last1, last2):
            _fail(node, f"io_stream concatenation along the last axis needs one word per position of each input "
                        f"({last1} and {last2} values), got words of {p1} and {p2}; use io_type 'parallel'")
        pack = p1 + p2
    else:
        if p1 != p2 or p1 != p["n_elem1"][rank - 1]:
            _fail(node, f"io_stream concatenation along axis {p['axis']} passes words through: both inputs need "
                        f"words of their {p['n_elem1'][rank - 1]} last-axis values, got {p1} and {p2}; use "
                        f"io_type 'parallel'")
        pack = p1
    code.includes = ("nnet_utils/nnet_merge.h", "nnet_utils/nnet_merge_stream.h")
    return [_stage(code, "hls/layers/concatenate.j2", pack)]


def _pixel_words(code: StreamStage, node: Node, src: Packing) -> int:
    n_chan = code.params["n_chan"]
    if src.pack != n_chan:
        _fail(node, f"io_stream {node.op} reads one pixel ({n_chan} channels) per stream word, the layer before it "
                    f"sends {src.pack} values per word; use io_type 'parallel'")
    return n_chan


@stream_handler("zeropad")
def _zeropad(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::zeropad{1,2}d_cl (nnet_padding_stream.h): zero pixels and copied pixels in row order, each value
    # cast to the result as io_parallel's
    return [_stage(code, "hls/layers/zeropad.j2", _pixel_words(code, node, src))]


@stream_handler("cropping")
def _cropping(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::cropping{1,2}d_cl (nnet_cropping_stream.h): the kept pixels copied (cast), the others read and dropped
    return [_stage(code, "hls/layers/cropping.j2", _pixel_words(code, node, src))]


@stream_handler("upsampling")
def _upsampling(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::resize_nearest (nnet_image_stream.h) repeats every row new/old times and every pixel new/old times;
    # io_parallel's takes row (i * ratio) >> 16: the same pixels where that is i // (new / old)
    p = code.params
    for what, old, new in (("height", p["in_height"], p["out_height"]), ("width", p["in_width"], p["out_width"])):
        if new % old or list(resize_nearest_rows(old, new)) != [i // (new // old) for i in range(new)]:
            _fail(node, f"io_stream nearest upsampling repeats whole pixels: {what} {old} -> {new} picks other "
                        f"pixels than io_parallel's; use io_type 'parallel'")
    code.includes = ("nnet_utils/nnet_image.h", "nnet_utils/nnet_image_stream.h")
    return [_stage(code, "hls/layers/upsampling.j2", _pixel_words(code, node, src))]


@stream_handler("transpose")
def _transpose(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::transpose (nnet_transpose_stream.h) reads the whole tensor, then writes words of the output's last
    # axis; 2-d: value j of word i is input (j, i), i.e. output (i, j) when a word is an output row
    return [_stage(code, "hls/layers/transpose.j2", natural_pack(node.shape))]
