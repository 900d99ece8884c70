"""Graph -> Vitis HLS project (io_parallel or io_stream): every file rendered from templates/hls/.

The writer only gathers facts (names, sizes, types, exact weight literals) with the
per-op handlers of :mod:`fpga_gen.hls.layers` (io_stream: turned into dataflow stages by
:mod:`fpga_gen.hls.stream`); the templates decide how they read.
Output is deterministic: the same graph, config and test vectors give byte-identical
files, with no timestamps and no paths of the machine that wrote them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..config import ProjectConfig
from ..data_paths import hls4ml_vivado_dir
from ..ir.graph import Graph
from ..ir.ops import op_def
from ..templating import render
from .layers import HANDLERS, PRODUCT_HEADER, HlsWriteError, LayerCode, TypeDef
from .names import Namer
from .stream import to_stream

__all__ = ["write_project", "io_context", "HlsWriteError", "COPIED_DIRS", "IO_TEMPLATES"]

# hls4ml's folders copied into every project's firmware/ (never edited)
COPIED_DIRS = ("ap_types", "nnet_utils")
# headers fpga-gen writes itself, rendered into firmware/ when a layer includes them
OWN_HEADERS = {"fpga_gen_quant.h": "hls/firmware/fpga_gen_quant.h.j2",
               "fpga_gen_stream.h": "hls/firmware/fpga_gen_stream.h.j2",
               "fpga_gen_native.h": "hls/firmware/fpga_gen_native.h.j2",
               PRODUCT_HEADER: "hls/firmware/fpga_gen_product.h.j2",
               "fpga_gen_da.h": "hls/firmware/fpga_gen_da.h.j2"}

# io type -> (top function template stem under firmware/, macros the testbench/bridge/AXI wrapper call it with)
IO_TEMPLATES = {"parallel": ("top", "hls/io/parallel.j2"), "stream": ("top_stream", "hls/io/stream.j2")}


def write_project(graph: Graph, config: ProjectConfig, out_dir, tb_x=None, tb_y=None) -> list[Path]:
    """Write the HLS project of ``graph`` into ``out_dir`` (which must exist); return the files written.

    ``tb_x``: test inputs (batch, *input shape); ``tb_y``: the outputs they must give
    (batch, *output shape), bit-exact (e.g. from :func:`fpga_gen.emulate.emulate`).  They
    become ``tb_data/`` for the testbench.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise HlsWriteError(f"{out}: output folder does not exist")
    ctx = _project_context(graph, config)
    files: dict[str, str] = {}
    top = ctx["top"]
    files[f"firmware/{top}.h"] = render(f"hls/firmware/{ctx['top_template']}.h.j2", **ctx)
    files[f"firmware/{top}.cpp"] = render(f"hls/firmware/{ctx['top_template']}.cpp.j2", **ctx)
    files["firmware/defines.h"] = render("hls/firmware/defines.h.j2", **ctx)
    files["firmware/parameters.h"] = render("hls/firmware/parameters.h.j2", **ctx)
    for layer in ctx["layers"]:
        for w, what in zip(layer.weights, layer.params.get("weight_roles", ("kernel", "bias"))):
            files[f"firmware/weights/{w.name}.h"] = render(
                "hls/firmware/weights.h.j2", w=w, what=what, layer=layer.node,
                transposed=(what == "kernel" and layer.params.get("strategy") == "resource"))
    for layer in ctx["layers"]:
        files.update(layer.params.get("da_files", {}))     # distributed-arithmetic adder graphs (fpga-gen synth)
    files[f"{top}_test.cpp"] = render("hls/test.cpp.j2", **ctx)
    files[f"{top}_bridge.cpp"] = render("hls/bridge.cpp.j2", **ctx)
    files["build_prj.tcl"] = render("hls/build_prj.tcl.j2", **ctx)
    if tb_x is not None:
        files["tb_data/tb_input_features.dat"] = _tb_text(tb_x, ctx["n_in"], "tb_x")
        if tb_y is not None:
            y = np.asarray(tb_y)
            if len(y) != len(np.asarray(tb_x)):
                raise HlsWriteError(f"tb_y has {len(y)} samples but tb_x has {len(np.asarray(tb_x))}")
            files["tb_data/tb_output_predictions.dat"] = _tb_text(tb_y, ctx["n_out"], "tb_y")
    elif tb_y is not None:
        raise HlsWriteError("tb_y was given without tb_x")
    files["README.md"] = render("hls/README.md.j2", has_tb=tb_x is not None, **ctx)
    for h in ctx["includes"]:
        if h in OWN_HEADERS:                 # fpga-gen's own kernels (not in hls4ml's nnet_utils)
            files[f"firmware/{h}"] = render(OWN_HEADERS[h], **ctx)

    written = write_files(out, files)
    written += _copy_hls4ml(out / "firmware")
    return sorted(written)


def io_context(graph: Graph, config: ProjectConfig) -> dict:
    """What the code around the top function (AXI wrapper) needs to call it: the io type, its macros
    (``io_template``) and, for io_stream, the words and values per word of the input and the output."""
    ctx = _project_context(graph, config)
    keys = ("io_type", "io_template", "in_pack", "in_words", "out_pack", "out_words")
    return {k: ctx[k] for k in keys if k in ctx}


def write_files(out: Path, files: dict[str, str]) -> list[Path]:
    """Write rendered text files under ``out`` in a fixed order, with LF line ends (deterministic bytes)."""
    written = []
    for rel in sorted(files):
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[rel], encoding="utf-8", newline="\n")
        written.append(p)
    return written


def _project_context(graph: Graph, config: ProjectConfig) -> dict:
    if config.io_type not in IO_TEMPLATES:
        raise HlsWriteError(f"io_type {config.io_type!r} is not supported by the HLS writer; "
                            f"use {' or '.join(map(repr, IO_TEMPLATES))}")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise HlsWriteError(f"the HLS writer supports one input and one output, the graph has "
                            f"{len(graph.inputs)} inputs and {len(graph.outputs)} outputs")
    namer = Namer()
    top = namer.unique(config.name)
    in_node = graph[graph.inputs[0]]
    out_node = graph[graph.outputs[0]]
    if out_node.op == "input":
        raise HlsWriteError(f"the graph output {out_node.name!r} is its input; there is nothing to compute")
    arrays: dict[str, tuple[str, str, int]] = {}      # node name -> (array, type name, size)
    layers: list[LayerCode] = []
    in_port = out_port = None
    for node in graph:
        stem = namer.unique(node.name)
        if node.op == "input":
            if node.name != in_node.name:
                raise HlsWriteError(f"node {node.name!r} is an input but not the graph input")
            in_port = namer.unique(f"{stem}_in")
            arrays[node.name] = (in_port, "input_t", in_node.size)
            continue
        if node.op not in HANDLERS:
            raise HlsWriteError(f"layer {node.name!r}: op {node.op!r} has no HLS template; "
                                f"supported: {', '.join(sorted(HANDLERS))}")
        n_inputs = op_def(node.op).n_inputs
        if len(node.inputs) != n_inputs:
            raise HlsWriteError(f"layer {node.name!r} ({node.op}) has {len(node.inputs)} inputs, expected {n_inputs}")
        if "result" not in node.types:
            raise HlsWriteError(f"layer {node.name!r} ({node.op}) has no result type; "
                                f"run precision inference before writing the HLS project")
        # an array may be read by several layers (a branch): each reads it by name, nothing is copied
        sources = [arrays[i] for i in node.inputs]
        src_array, src_type, src_size = sources[0]
        is_output = node.name == out_node.name
        out_type = "result_t" if is_output else namer.unique(f"{stem}_t")
        out_array = namer.unique(f"{stem}_out")
        if is_output:
            out_port = out_array
        code = LayerCode(node=node.name, op=node.op, stem=stem, config=namer.unique(f"config_{stem}"),
                         in_array=src_array, in_type=src_type, out_array=out_array, out_type=out_type,
                         n_in=src_size, n_out=node.size, is_output=is_output,
                         typedefs=[TypeDef(out_type, node.types["result"].cpp())],
                         in_arrays=[a for a, _, _ in sources], in_types=[t for _, t, _ in sources],
                         in_sizes=[n for _, _, n in sources])
        layers.append(HANDLERS[node.op](node, graph, namer, code))
        arrays[node.name] = (out_array, out_type, node.size)
    io = {"io_typedefs": [], "type_includes": []}
    if config.io_type == "stream":
        io = to_stream(layers, graph, namer, in_port, out_port)
        layers = io.pop("layers")
        io["type_includes"] = ["hls_stream.h", "nnet_utils/nnet_types.h"]
    includes = {h for layer in layers for h in layer.includes}
    if any(layer.params.get("mult_impl", "auto") != "auto" for layer in layers):
        includes.add(PRODUCT_HEADER)        # the product classes of mult_impl: dsp | lut (only when used)
    includes = sorted(includes)
    # nnet headers only layers with a native form include: the native build (-DFPGA_GEN_NATIVE) skips them
    # with those layers' config structs (parsing them is ~15 % of its g++ time)
    native_skip = sorted(h for h in includes if h.startswith("nnet_utils/")
                         and all(layer.params.get("native") for layer in layers if h in layer.includes))
    return {**io, "native_skip": native_skip, "io_type": config.io_type, "top_template": IO_TEMPLATES[config.io_type][0],
            "io_template": IO_TEMPLATES[config.io_type][1],
        "top": top, "graph_name": graph.name, "in_port": in_port, "out_port": out_port,
        "n_in": in_node.size, "n_out": out_node.size,
        "input_shape": [int(d) for d in in_node.shape], "output_shape": [int(d) for d in out_node.shape],
        "input_node": in_node.name,
        "input_type": in_node.types["result"].cpp(), "output_type": out_node.types["result"].cpp(),
        "layers": layers, "weights": [w for layer in layers for w in layer.weights], "includes": includes,
        "part": config.part, "clock_period": _number(config.clock_period),
    }


def _number(v) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)


def _tb_text(a, width: int, what: str) -> str:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1 and width != 1 and arr.size == width:
        arr = arr[None]
    arr = arr.reshape(len(arr), -1) if arr.ndim > 1 else arr.reshape(-1, 1)
    if arr.shape[1] != width:
        raise HlsWriteError(f"{what} has {arr.shape[1]} values per sample, the model needs {width}")
    if not np.all(np.isfinite(arr)):
        raise HlsWriteError(f"{what} holds NaN or infinite values, which the testbench cannot read back")
    return "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in arr)


def _copy_hls4ml(firmware: Path) -> list[Path]:
    src_root = hls4ml_vivado_dir()
    copied = []
    for d in COPIED_DIRS:
        src = src_root / d
        for f in sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            dst = firmware / d / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
            copied.append(dst)
    return copied
