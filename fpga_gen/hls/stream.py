"""io_stream: every tensor an ``hls::stream<nnet::array<T, pack>>`` FIFO, layers in a ``#pragma HLS DATAFLOW``.

The writer builds the io_parallel facts of every layer first (:data:`fpga_gen.hls.layers.HANDLERS`:
checks, weights, types); :func:`to_stream` then turns each layer into one or more stream *stages* with
the handler its op registered here.  A stage is a :class:`StreamStage` (a :class:`LayerCode` whose
``in_array``/``out_array`` are stream variables and ``in_type``/``out_type`` the ``nnet::array`` pack
types), rendered by the op's io_stream template.

Packing (as hls4ml 1.3 packs io_stream tensors): a (height, width, channels) tensor travels as one word
of ``channels`` values per pixel; a flat tensor as one word holding all its values; an element-wise layer
keeps its input's packing.  A word's values are the channels_last flat order, so Flatten stays free: a
dense layer reads ``n_in / pack`` words of the tensor before it.

FIFO depth: every stream between two stages gets ``#pragma HLS STREAM depth=`` the whole tensor in words
(pixels for an image, 1 for a flat tensor), hls4ml's own default.  A producer can then write a whole
inference without waiting for its consumer, so the dataflow cannot deadlock whatever order the consumer
reads in (a line-buffer convolution reads ``(kh - 1)`` lines before it writes its first word; a dense
layer reads all its input before it writes); smaller depths (hls4ml's FIFO depth optimisation, from
co-simulation) are a later step.

docs/io_stream.md has the whole story (packing, FIFO depths, what is refused and why).

Adding an op's stream form: write ``templates/hls/layers_stream/<op>.j2`` (macros ``config(l)`` and
``call(l)``; or reuse the io_parallel template where the nnet_utils stream overload has the same name and
arguments) and register a function here::

    @stream_handler("myop")
    def _myop(code: StreamStage, node, graph, namer, src: Packing) -> list[StreamStage]:
        # check what the stream kernel supports (reject with fail(node, ...) naming the option),
        # choose the output packing (code.pack_out) and the template (code.stream_template), return the
        # stage(s); a handler may put stages in front of its layer, as conv2d does with zero padding.

Where a stream kernel computes other numbers than the io_parallel one for some option, the handler
must reject that option in one line (see pooling) unless the stage emulates the difference exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..ir.graph import Graph, Node
from .layers import HlsWriteError, LayerCode, TypeDef, _fail
from .names import Namer

__all__ = ["StreamStage", "Packing", "STREAM_HANDLERS", "stream_handler", "to_stream", "fifo_depth"]


@dataclass
class StreamStage(LayerCode):
    """One function call of the dataflow region: ``in_array``/``out_array`` are streams of words of
    ``in_type``/``out_type`` (``nnet::array<value, pack>``)."""
    stream_template: str = ""        # templates/<this>: the stage's config/call macros
    pack_in: int = 1                 # values per input word
    pack_out: int = 1                # values per output word
    depth: int = 1                   # FIFO depth of the output stream, in words
    pack_ins: list = field(default_factory=list)     # values per word of every input (two-input ops)
    out_arrays: list = field(default_factory=list)   # a clone stage's output streams (else out_array alone)

    @property
    def streams_out(self) -> list:
        """The streams the top function declares for this stage."""
        return self.out_arrays or [self.out_array]

    @property
    def template(self) -> str:
        return self.stream_template

    @property
    def words_in(self) -> int:
        return self.n_in // self.pack_in

    @property
    def words_out(self) -> int:
        return self.n_out // self.pack_out


@dataclass(frozen=True)
class Packing:
    """How a tensor travels: its stream variable, word type, value type and values per word."""
    stream: str
    type: str           # nnet::array typedef name
    value_type: str     # its element typedef name
    pack: int
    size: int

    @property
    def words(self) -> int:
        return self.size // self.pack


STREAM_HANDLERS: dict = {}


def stream_handler(op: str):
    def deco(fn):
        STREAM_HANDLERS[op] = fn
        return fn
    return deco


def fifo_depth(size: int, pack: int) -> int:
    """The FIFO depth of a tensor of ``size`` values in words of ``pack``: all of it (see the module doc)."""
    return max(1, size // pack)


def natural_pack(shape) -> int:
    """hls4ml's io_stream packing: the last dimension (channels) per word."""
    return int(shape[-1]) if len(shape) else 1


def to_stream(layers: list[LayerCode], graph: Graph, namer: Namer, in_port: str, out_port: str) -> dict:
    """io_parallel layer facts -> the stages of the dataflow region and the io typedefs (input_pack_t,
    result_pack_t).  Raises :class:`HlsWriteError` naming the layer for what the stream kernels lack.

    A tensor read by several layers (a branch, a residual block) is a FIFO with one reader in a dataflow
    region: a clone stage (nnet::clone_stream, as hls4ml inserts it) copies it into one FIFO per reader, each
    as deep as the whole tensor, so the short branch's FIFO holds all the long branch delays."""
    in_node = graph[graph.inputs[0]]
    in_pack = natural_pack(in_node.shape)
    readers: dict[str, int] = {}
    for code in layers:
        for name in graph[code.node].inputs:
            readers[name] = readers.get(name, 0) + 1
    tensors: dict[str, list[Packing]] = {}      # tensor -> the FIFOs its readers still have to take, in order
    stages: list[StreamStage] = []

    def publish(name: str, packing: Packing, node: Node) -> None:
        n = readers.get(name, 0)
        if n <= 1:
            tensors[name] = [packing]
            return
        if n > MAX_CLONES:
            _fail(node, f"io_stream copies a tensor to at most {MAX_CLONES} readers (nnet::clone_stream), "
                        f"{name!r} has {n}; use io_type 'parallel'")
        stages.append(_clone(packing, n, node, namer))
        tensors[name] = [replace(packing, stream=s) for s in stages[-1].out_arrays]

    publish(in_node.name, Packing(in_port, "input_pack_t", "input_t", in_pack, in_node.size), in_node)
    io_typedefs = [TypeDef("input_pack_t", f"nnet::array<input_t, {in_pack}>")]
    for code in layers:
        node = graph[code.node]
        if node.op not in STREAM_HANDLERS:
            raise HlsWriteError(f"layer {node.name!r} ({node.op}): no io_stream form yet; use io_type 'parallel' "
                                f"(io_stream supports: {', '.join(sorted(STREAM_HANDLERS))})")
        srcs = [tensors[i].pop(0) for i in node.inputs]
        src = srcs[0]
        stage = StreamStage(**{f: getattr(code, f) for f in LayerCode.__dataclass_fields__})
        stage.typedefs = list(code.typedefs)
        # (the native back end's integer kernels are io_parallel only)
        stage.params = dict(code.params, io_type="io_stream", native=None)
        stage.in_array, stage.in_type, stage.pack_in = src.stream, src.type, src.pack
        stage.in_arrays, stage.in_types = [p.stream for p in srcs], [p.type for p in srcs]
        stage.pack_ins = [p.pack for p in srcs]
        value_type = code.out_type
        stage.out_type = "result_pack_t" if code.is_output else namer.unique(f"{code.stem}_pack_t")
        stage.out_array = out_port if code.is_output else code.out_array
        made = STREAM_HANDLERS[node.op](stage, node, graph, namer, src)
        last = made[-1]
        if last.n_out % last.pack_out:
            _fail(node, f"io_stream word of {last.pack_out} values does not divide its {last.n_out} outputs")
        last.depth = fifo_depth(last.n_out, last.pack_out)
        last.typedefs.append(TypeDef(last.out_type, f"nnet::array<{value_type}, {last.pack_out}>"))
        stages += made
        if code.is_output and readers.get(node.name):
            _fail(node, "io_stream: the output layer is also read by another layer; use io_type 'parallel'")
        publish(node.name, Packing(last.out_array, last.out_type, value_type, last.pack_out, last.n_out), node)
    out = tensors[graph.outputs[0]][0]
    return {"layers": stages, "io_typedefs": io_typedefs, "in_pack": in_pack, "out_pack": out.pack,
            "in_words": in_node.size // in_pack, "out_words": out.words}


MAX_CLONES = 7          # nnet_stream.h's clone_stream overloads copy to 2 ... 7 streams


def _clone(src: Packing, n: int, node: Node, namer: Namer) -> StreamStage:
    """A nnet::clone_stream stage copying ``src`` into ``n`` FIFOs of the same words, each a whole tensor deep."""
    stem = namer.unique(f"clone_{node.name}")
    outs = [namer.unique(f"{stem}_out{k + 1}") for k in range(n)]
    return StreamStage(node=node.name, op="clone", stem=stem, config="", in_array=src.stream, in_type=src.type,
                       out_array=outs[0], out_type=src.type, n_in=src.size, n_out=src.size, typedefs=[],
                       includes=("nnet_utils/nnet_stream.h",), out_arrays=outs,
                       summary=f"copies of {node.name!r} for its {n} readers (io_stream branch)",
                       stream_template="hls/layers_stream/clone.j2", pack_in=src.pack, pack_out=src.pack,
                       depth=fifo_depth(src.size, src.pack))


def _stage(code: StreamStage, template: str, pack_out: int) -> StreamStage:
    code.stream_template = template
    code.pack_out = pack_out
    return code


# ---------------------------------------------------------------------------- handlers

@stream_handler("dense")
def _dense(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    if code.params.get("template") == "dense_da":      # distributed arithmetic: the same words, da4ml's adder graph
        return [_stage(code, "hls/layers_stream/dense_da.j2", code.n_out)]
    # nnet::dense (nnet_dense_stream.h) reads n_in / pack words, runs the io_parallel dense kernel, writes one word
    code.includes = ("nnet_utils/nnet_dense.h", "nnet_utils/nnet_dense_stream.h")
    return [_stage(code, "hls/layers/dense.j2", code.n_out)]


# activation kinds and their io_stream function: hls4ml's nnet_activation_stream.h overloads (the same index
# math, parameters and casts as the io_parallel functions, element by element), and relu_max, which has none
# there, through fpga-gen's per-word wrapper (firmware/fpga_gen_stream.h); tested in tests/test_stream_ops.py
STREAM_ACTIVATIONS = {k: f"nnet::{k}" for k in (
    "linear", "relu", "sigmoid", "tanh", "softplus", "softsign", "leaky_relu", "thresholded_relu", "elu", "prelu",
    "hard_sigmoid", "hard_tanh")}
STREAM_ACTIVATIONS["relu_max"] = "fpga_gen::relu_max"
STREAM_HEADER = "fpga_gen_stream.h"
# softmax implementations of nnet_activation_stream.h; each normalises one word: the word must be the vector
STREAM_SOFTMAX = ("stable", "latency", "legacy", "argmax")


@stream_handler("activation")
def _activation(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # element-wise: one word in, one word out, the input's packing kept (prelu's alpha indexed by the flat
    # position i * pack + j, as io_parallel's)
    kind = node.attrs.get("activation")
    if kind not in STREAM_ACTIVATIONS:
        _fail(node, f"activation {kind!r} has no io_stream form yet (io_stream: {', '.join(STREAM_ACTIVATIONS)}); "
                    f"use io_type 'parallel'")
    code.includes = ("nnet_utils/nnet_activation.h", "nnet_utils/nnet_activation_stream.h")
    if STREAM_ACTIVATIONS[kind].startswith("fpga_gen::"):
        code.includes += (STREAM_HEADER,)
    code.params["function"] = STREAM_ACTIVATIONS[kind]
    return [_stage(code, "hls/layers/activation.j2", src.pack)]


@stream_handler("softmax")
def _softmax(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::softmax (nnet_activation_stream.h) normalises each word on its own: the word must be the vector
    impl = node.attrs.get("implementation", "stable")
    if impl not in STREAM_SOFTMAX:
        _fail(node, f"softmax implementation {impl!r} has no io_stream form; use one of {', '.join(STREAM_SOFTMAX)} "
                    f"or io_type 'parallel'")
    if src.pack != code.n_in:
        _fail(node, f"io_stream softmax needs its {code.n_in} inputs in one stream word, the layer before it "
                    f"sends {src.pack} per word; put a Dense layer before the softmax or use io_type 'parallel'")
    p = code.params
    if impl == "legacy" and p["exp_table_size"] != p["inv_table_size"]:
        # the stream softmax_legacy sizes both tables with one table_size
        _fail(node, f"io_stream legacy softmax uses one table size for both tables, got exp_table_size "
                    f"{p['exp_table_size']} and inv_table_size {p['inv_table_size']}; make them equal or use "
                    f"io_type 'parallel'")
    code.includes = ("nnet_utils/nnet_activation.h", "nnet_utils/nnet_activation_stream.h")
    return [_stage(code, "hls/layers/softmax.j2", code.n_in)]


def _spatial_input(code: StreamStage, node: Node, src: Packing) -> None:
    if src.pack != code.params["n_chan"]:
        _fail(node, f"io_stream 2-D layers read one pixel ({code.params['n_chan']} channels) per stream word, "
                    f"the layer before it sends {src.pack} values per word")


def _zero_pad(code: StreamStage, node: Node, namer: Namer, src: Packing) -> StreamStage | None:
    """hls4ml's io_stream 'same' padding: a nnet::zeropad2d_cl stage in front of the layer, whose kernel then
    sees a padded, unpadded-convolution input (hls4ml's insert_zero_padding_before_conv2d)."""
    p = code.params
    pads = (p["pad_top"], p["pad_bottom"], p["pad_left"], p["pad_right"])
    if not any(pads):
        return None
    out_h, out_w = p["in_height"] + pads[0] + pads[1], p["in_width"] + pads[2] + pads[3]
    stem = namer.unique(f"zp2d_{code.stem}")
    n_out = out_h * out_w * p["n_chan"]
    pad = StreamStage(node=node.name, op="zeropad2d", stem=stem, config=namer.unique(f"config_{stem}"),
                      in_array=code.in_array, in_type=code.in_type, out_array=namer.unique(f"{stem}_out"),
                      out_type=code.in_type, n_in=code.n_in, n_out=n_out, typedefs=[],
                      params=dict(in_height=p["in_height"], in_width=p["in_width"], n_chan=p["n_chan"],
                                  out_height=out_h, out_width=out_w, pad_top=pads[0], pad_bottom=pads[1],
                                  pad_left=pads[2], pad_right=pads[3]),
                      includes=("nnet_utils/nnet_padding.h", "nnet_utils/nnet_padding_stream.h"),
                      summary=f"zero padding {','.join(map(str, pads))} in front of the layer (io_stream 'same')",
                      stream_template="hls/layers_stream/zeropad2d.j2", pack_in=src.pack, pack_out=src.pack,
                      depth=fifo_depth(n_out, src.pack))
    code.in_array, code.n_in = pad.out_array, n_out
    code.params.update(in_height=out_h, in_width=out_w, pad_top=0, pad_bottom=0, pad_left=0, pad_right=0)
    return pad


def _line_buffer(code: StreamStage, node: Node, namer: Namer, src: Packing, template: str) -> list[StreamStage]:
    """The line-buffer convolutions (conv2d, depthwise_conv2d): the window of every output pixel, in the
    io_parallel im2col order, through the layer's own dense kernel (mult_config); 'same' padding by a stage."""
    _spatial_input(code, node, src)
    p = code.params
    if p["filt_height"] == 1 and p["stride_height"] > 1:
        _fail(node, f"io_stream {node.op} with a kernel of height 1 and stride height {p['stride_height']} is not "
                    f"supported (hls4ml's line buffer then runs its 1-D kernel, which ignores the row stride); "
                    f"use stride height 1 or io_type 'parallel'")
    pad = _zero_pad(code, node, namer, src)
    code.params.pop("fill", None)           # io_parallel's im2col code: not used by the stream kernel
    stage = _stage(code, template, code.params["n_filt"])
    return [pad, stage] if pad else [stage]


@stream_handler("conv2d")
def _conv2d(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::conv_2d_cl (nnet_conv2d_stream.h), hls4ml's default line-buffer implementation: the window of
    if code.params.get("template") == "conv2d_da":
        _fail(node, "strategy distributed_arithmetic has no io_stream conv2d form; use io_type parallel")
    # every output pixel goes through the same dense kernel (mult_config) as io_parallel's im2col
    code.includes = ("nnet_utils/nnet_conv2d.h", "nnet_utils/nnet_conv2d_stream.h")
    return _line_buffer(code, node, namer, src, "hls/layers_stream/conv2d.j2")


@stream_handler("depthwise_conv2d")
def _depthwise_conv2d(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::depthwise_conv_2d_cl (nnet_sepconv2d_stream.h), line buffer: the window (kh, kw, n_chan) through
    # nnet::DepthwiseDenseLatency, the io_parallel kernel of the same window
    code.includes = ("nnet_utils/nnet_conv2d.h", "nnet_utils/nnet_sepconv2d.h", "nnet_utils/nnet_sepconv2d_stream.h")
    return _line_buffer(code, node, namer, src, "hls/layers_stream/depthwise_conv2d.j2")


@stream_handler("pooling")
def _pooling(code: StreamStage, node: Node, graph: Graph, namer: Namer, src: Packing) -> list[StreamStage]:
    # nnet::pooling2d_cl (nnet_pooling_stream.h), line buffer: it asserts pool == stride and no padding, and
    # casts each input to accum before the max / the (tree) sum; nnet::global_pooling2d_cl (one window over the
    # whole input) casts each input to accum and keeps a running max (from accum's minimum) or sum in accum,
    # in pixel order, then divides: io_parallel's order and casts once accum holds the input type
    _spatial_input(code, node, src)
    p = code.params
    if (p["filt_height"], p["filt_width"]) != (p["stride_height"], p["stride_width"]):
        _fail(node, f"io_stream pooling needs strides equal to pool_size, got pool_size "
                    f"{(p['filt_height'], p['filt_width'])} and strides {(p['stride_height'], p['stride_width'])}; "
                    f"use io_type 'parallel' for this layer's model")
    if any(p[k] for k in ("pad_top", "pad_bottom", "pad_left", "pad_right")):
        _fail(node, "io_stream pooling does not pad (nnet::pooling2d_cl would take padded zeros into the window); "
                    "use padding='valid', an input size divisible by pool_size, or io_type 'parallel'")
    x = graph[node.inputs[0]].types["result"]
    at = node.types["accum"]
    if at.frac < x.frac or at.raw_min * 2.0 ** -at.frac > x.raw_min * 2.0 ** -x.frac or \
            at.raw_max * 2.0 ** -at.frac < x.raw_max * 2.0 ** -x.frac:
        _fail(node, f"io_stream pooling casts each input to the accum type first; accum {at.cpp()} does not hold "
                    f"the input type {x.cpp()}: widen the accum precision or use io_type 'parallel'")
    if p["pool_op"] == "Average" and not p["is_global"]:
        n = p["filt_height"] * p["filt_width"]
        if at.raw_min > x.raw_min * n * 2 ** (at.frac - x.frac) or at.raw_max < x.raw_max * n * 2 ** (at.frac - x.frac):
            _fail(node, f"io_stream average pooling adds in a tree: accum {at.cpp()} must hold the sum of {n} inputs "
                        f"of {x.cpp()} exactly; widen the accum precision or use io_type 'parallel'")
    code.includes = ("nnet_utils/nnet_pooling.h", "nnet_utils/nnet_pooling_stream.h")
    return [_stage(code, "hls/layers/pooling.j2", p["n_chan"])]


from . import stream_ops  # noqa: E402,F401  (registers the stream forms of the other ops)
