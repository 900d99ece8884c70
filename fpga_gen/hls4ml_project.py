"""An hls4ml project folder, as hls4ml writes it -> fpga-gen graph + settings, with no Keras model.

    graph, config, notes = read_hls4ml_project("hls4ml_prj")      # fpga-gen estimate hls4ml_prj

What is read, and from where (the firmware is what the tool synthesised, so it wins over the YAML):

* ``firmware/myproject.cpp``: the layer calls in order, ``nnet::dense<layer4_t, layer5_t, config5>(layer4_out,
  layer5_out, w5, b5); // fc2`` -> op, input/output variables, config struct, weight arrays, layer name;
* ``firmware/parameters.h``: each config struct's constants (``n_in``, ``n_out``, ``reuse_factor``, ``strategy``,
  ``table_size``, ``io_type``) and its typedefs (``accum_t``, ``weight_t``, ``exp_table_t``, ...);
* ``firmware/defines.h``: the ``typedef ap_fixed<16,6> layer2_t;`` precisions;
* ``firmware/weights/<w>.txt`` (or the initializer in ``<w>.h``): the weights, ``n_in x n_out`` row-major as
  ``nnet_dense_latency.h`` reads them;
* ``hls4ml_config.yml`` (optional): part, clock period, io type, backend (the firmware's ``io_type`` wins).

Layers the reader does not know yet (convolutions, pooling, recurrent layers) are refused in one line naming the
file and the layer.  Nothing here imports TensorFlow or hls4ml.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .config import ConfigError, ProjectConfig
from .hls4ml_config import read_hls4ml_config
from .ir.graph import Graph, Node
from .ir.types import FixedType, TypeParseError, split_top_level

__all__ = ["Hls4mlProjectError", "read_hls4ml_project", "is_hls4ml_project", "firmware_layer_names"]


class Hls4mlProjectError(ConfigError):
    """An hls4ml project the reader cannot turn into a graph; one line naming the file and the layer."""


_ACTIVATIONS = {"relu": "relu", "linear": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "softplus": "softplus",
                "softsign": "softsign", "elu": "elu", "leaky_relu": "leaky_relu", "hard_sigmoid": "hard_sigmoid",
                "hard_tanh": "hard_tanh", "relu6": "relu_max", "thresholded_relu": "thresholded_relu"}
_DENSE = ("dense", "dense_latency", "dense_resource", "dense_compressed")


def is_hls4ml_project(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "firmware" / "parameters.h").is_file() and (p / "firmware" / "defines.h").is_file()


def firmware_layer_names(path) -> list[str]:
    """The layer names of the nnet:: calls in the project's top .cpp (the ``// name`` hls4ml writes after each)."""
    fw = Path(path) / "firmware"
    names = []
    for cpp in sorted(fw.glob("*.cpp")):
        names += re.findall(r"nnet::\w+\s*<[^;]*?>\s*\([^;]*?\)\s*;[ \t]*//\s*(\S+)", cpp.read_text())
    return names


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def _split_top(s: str) -> list[str]:
    """Split at commas outside <> and ()."""
    return split_top_level(s, "<>()")


def _typedefs(text: str) -> dict:
    out = {}
    for m in re.finditer(r"typedef\s+(.+?)\s+(\w+)\s*;", text):
        out[m.group(2)] = m.group(1).strip()
    return out


def _configs(text: str) -> dict:
    """struct name -> {'base': 'dense', 'const': {n_in: '16', ...}, 'types': {accum_t: 'fc1_accum_t', ...}}"""
    out = {}
    for m in re.finditer(r"struct\s+(\w+)\s*:\s*nnet::(\w+?)_config\s*\{(.*?)\n\};", text, flags=re.S):
        body = m.group(3)
        const = {k: v.strip() for k, v in re.findall(r"static\s+const\s+[\w:]+\s+(\w+)\s*=\s*([^;]+);", body)}
        types = {k: v.strip() for v, k in re.findall(r"typedef\s+(.+?)\s+(\w+)\s*;", body)}
        out[m.group(1)] = {"base": m.group(2), "const": const, "types": types}
    return out


def _int(v, defines: dict, what: str):
    s = str(v).strip()
    if "*" in s:                                     # N_INPUT_1_1*N_INPUT_2_1
        return int(np.prod([_int(p, defines, what) for p in s.split("*")]))
    for _ in range(4):
        if s in defines:
            s = defines[s].strip("()")
    try:
        return int(s)
    except ValueError:
        if "*" in s:
            return _int(s, defines, what)
        raise Hls4mlProjectError(f"{what}: cannot read the integer {v!r}") from None


def _resolve_typedef(name: str, typedefs: dict) -> str:
    """``name`` through defines.h's typedef chain (at most 8 steps) to the type it names."""
    s = name
    for _ in range(8):
        if s in typedefs:
            s = typedefs[s]
        else:
            break
    return s


def _precision(name: str, typedefs: dict, where: str) -> FixedType:
    s = _resolve_typedef(name, typedefs)
    m = re.match(r"nnet::array<\s*(.+?)\s*,\s*[\w*+ ]+\s*>$", s)    # io_stream: nnet::array<ap_fixed<16,6>, 4>
    if m:
        return _precision(m.group(1), typedefs, where)
    try:
        return FixedType.parse(s)
    except (TypeParseError, ValueError):
        raise Hls4mlProjectError(f"{where}: type {name!r} ({s}) is not a fixed-point type fpga-gen reads") from None


def _words(name: str, typedefs: dict, defines: dict) -> int | None:
    """io_stream: the elements per stream word of ``nnet::array<T, N>`` (a pixel's channels), else None."""
    s = _resolve_typedef(name, typedefs)
    m = re.match(r"nnet::array<\s*.+\s*,\s*([\w*+ ]+?)\s*>$", s)
    if not m:
        return None
    try:
        return _int(m.group(1).replace(" ", ""), defines, name)
    except Hls4mlProjectError:
        return None


def _stream_shape(n: int, out_type_name: str, typedefs: dict, defines: dict) -> tuple:
    ch = _words(out_type_name, typedefs, defines)
    if ch and n % ch == 0 and n > ch:
        return (n // ch, ch)          # pixels x channels, as the estimator's io_stream models read shapes
    return (n,)


def _weights(fw: Path, name: str, n: int, where: str) -> np.ndarray:
    txt = fw / "weights" / f"{name}.txt"
    if txt.is_file():
        text = txt.read_text()
    else:
        h = fw / "weights" / f"{name}.h"
        if not h.is_file():
            raise Hls4mlProjectError(f"{where}: weights {name!r} not found (firmware/weights/{name}.txt or .h)")
        m = re.search(r"\b" + re.escape(name) + r"\s*\[[^\]]*\]\s*=\s*\{(.*?)\}", h.read_text(), flags=re.S)
        if not m:
            raise Hls4mlProjectError(f"{h}: no initializer for {name!r}")
        text = m.group(1)
    vals = np.array([float(x) for x in re.split(r"[,\s]+", text.strip()) if x], dtype=np.float64)
    if vals.size != n:
        raise Hls4mlProjectError(f"{where}: weights {name!r} hold {vals.size} values, the layer needs {n}")
    return vals


def read_hls4ml_project(path, base: ProjectConfig | None = None):
    """(Graph, ProjectConfig, notes) of an hls4ml project folder (see the module docstring)."""
    root = Path(path)
    fw = root / "firmware"
    if not is_hls4ml_project(root):
        raise Hls4mlProjectError(f"{root}: not an hls4ml project (no firmware/parameters.h and firmware/defines.h)")
    defines_h = _strip_comments((fw / "defines.h").read_text())
    params_h = _strip_comments((fw / "parameters.h").read_text())
    typedefs = _typedefs(defines_h)
    defines = dict(re.findall(r"#define\s+(\w+)\s+(\S+)", defines_h))
    configs = _configs(params_h)
    h = None
    if (root / "hls4ml_config.yml").is_file():
        h = read_hls4ml_config(root / "hls4ml_config.yml")
    name = h.project_name if h else None
    top = None
    for cand in ([f"{name}.cpp"] if name else []) + sorted(p.name for p in fw.glob("*.cpp")):
        if (fw / cand).is_file() and "nnet::" in (fw / cand).read_text():
            top = fw / cand
            break
    if top is None:
        raise Hls4mlProjectError(f"{fw}: no top-level .cpp with nnet:: layer calls")
    src = _strip_comments(top.read_text())
    # the top function's input arguments: 'input_t fc1_input[N_INPUT_1_1]' or 'hls::stream<input_t> &x'
    sig = re.search(r"void\s+\w+\s*\((.*?)\)\s*\{", src, flags=re.S)
    if not sig:
        raise Hls4mlProjectError(f"{top}: no top-level function")
    args = _split_top(sig.group(1))
    ins = []
    for a in args[:1]:
        m = re.match(r"(?:hls::stream\s*<\s*(\w+)\s*>|(\w+))\s*&?\s*(\w+)\s*(\[.*\])?", a.strip())
        if m:
            ins.append((m.group(3), m.group(1) or m.group(2), m.group(4)))
    if not ins:
        raise Hls4mlProjectError(f"{top}: cannot read the top function's input argument")
    in_var, in_type_name, in_dims = ins[0]
    g = Graph(name or root.name)
    notes: list[str] = []
    producer = {}
    calls = list(re.finditer(r"nnet::(\w+)\s*<([^;]*?)>\s*\(([^;]*?)\)\s*;[ \t]*(?://\s*(\S+))?", src))
    calls = [c for c in calls if c.group(1) not in ("load_weights_from_txt", "print_result", "save_layer_output")]
    io_type = "stream" if "hls::stream" in sig.group(1) else "parallel"
    for c in calls:
        tmpl = _split_top(c.group(2))
        cfg_name = tmpl[-1] if tmpl else None
        if cfg_name in configs and "io_type" in configs[cfg_name]["const"]:
            io_type = "stream" if "stream" in configs[cfg_name]["const"]["io_type"] else "parallel"
            break
    # input node
    first_cfg = next((configs.get(_split_top(c.group(2))[-1]) for c in calls), None)
    n_in0 = None
    if in_dims:
        dims = [d for d in re.findall(r"\[([^\]]+)\]", in_dims)]
        n_in0 = int(np.prod([_int(d, defines, f"{top}: input size") for d in dims]))
    elif first_cfg and "n_in" in first_cfg["const"]:
        n_in0 = _int(first_cfg["const"]["n_in"], defines, f"{fw / 'parameters.h'}: n_in")
    in_t = _precision(in_type_name, typedefs, f"{fw / 'defines.h'}: input {in_var}")
    g.add(Node(in_var, "input", [], (int(n_in0 or 1),), types={"result": in_t}))
    g.inputs.append(in_var)
    producer[in_var] = in_var
    last = in_var
    for c in calls:
        fn, tmpl, argv, lname = c.group(1), _split_top(c.group(2)), _split_top(c.group(3)), c.group(4)
        if fn.endswith("_array"):                       # old io_stream kernels: nnet::relu_array, dense_array
            fn = fn[: -len("_array")]
        cfg_name = tmpl[-1] if tmpl else ""
        cfg = configs.get(cfg_name)
        lname = lname or cfg_name
        where = f"{fw / 'parameters.h'}: layer {lname} ({cfg_name})"
        if cfg is None:
            raise Hls4mlProjectError(f"{top}: layer {lname}: config struct {cfg_name!r} not in parameters.h")
        k = cfg["const"]
        src_var = argv[0].strip("& ")
        inp = producer.get(src_var)
        if inp is None:
            raise Hls4mlProjectError(f"{top}: layer {lname}: input {src_var!r} is produced by no earlier layer")
        out_var = argv[1].strip("& ") if len(argv) > 1 else lname
        out_t = _precision(tmpl[1] if len(tmpl) > 2 else tmpl[0], typedefs, f"{fw / 'defines.h'}: layer {lname}")
        rf = _int(k.get("reuse_factor", "1"), defines, where)

        def ctype(slot, default=None):
            n = cfg["types"].get(slot)
            return _precision(n, typedefs, f"{fw / 'defines.h'}: layer {lname} {slot}") if n else default

        if fn in _DENSE:
            n_in, n_out = _int(k["n_in"], defines, where), _int(k["n_out"], defines, where)
            wname, bname = argv[2], argv[3]
            kern = _weights(fw, wname, n_in * n_out, where).reshape(n_in, n_out)
            bias = _weights(fw, bname, n_out, where)
            strategy = "resource" if "resource" in k.get("strategy", "latency").lower() else "latency"
            node = Node(lname, "dense", [inp], (n_out,), attrs={"n_in": n_in, "n_out": n_out, "reuse_factor": rf,
                                                                "strategy": strategy},
                        weights={"kernel": kern, "bias": bias},
                        types={"result": out_t, "accum": ctype("accum_t", out_t), "weight": ctype("weight_t", out_t),
                               "bias": ctype("bias_t", out_t)})
        elif fn == "softmax":
            n = _int(k.get("n_in", "1"), defines, where)
            exp_t = ctype("exp_table_t", FixedType(18, 8, True, "RND", "SAT"))
            inv_t = ctype("inv_table_t", FixedType(18, 8, True, "RND", "SAT"))
            in_type = g[inp].types["result"]
            size = _int(k.get("table_size", "1024"), defines, where)
            node = Node(lname, "softmax", [inp], (n,), attrs={"exp_table_size": size, "inv_table_size": size,
                                                          "implementation": "stable"},
                        types={"result": out_t, "exp_table": exp_t, "inv_table": inv_t,
                               "accum": ctype("accum_t", exp_t), "inv_inp": ctype("inv_inp_t", exp_t),
                               "inp_norm": ctype("inp_norm_t", FixedType(max(in_type.width - 1, 1),
                                                                          in_type.integer - 1, False))})
        elif fn in _ACTIVATIONS:
            n = _int(k.get("n_in", "1"), defines, where)
            shape = _stream_shape(n, tmpl[1] if len(tmpl) > 2 else tmpl[0], typedefs, defines) \
                if io_type == "stream" else (n,)
            node = Node(lname, "activation", [inp], shape, attrs={"activation": _ACTIVATIONS[fn]},
                        types={"result": out_t})
            if fn in ("sigmoid", "tanh", "elu", "softplus", "softsign"):
                node.types["table"] = ctype("table_t", FixedType(18, 8))
                node.attrs["table_size"] = _int(k.get("table_size", "1024"), defines, where)
        elif fn == "normalize":
            n = _int(k.get("n_in", "1"), defines, where)
            s = _weights(fw, argv[2], n, where)
            b = _weights(fw, argv[3], n, where)
            node = Node(lname, "batchnorm", [inp], (n,), attrs={"n_in": n, "n_filt": n, "reuse_factor": rf},
                        weights={"scale": s, "bias": b},
                        types={"result": out_t, "scale": ctype("scale_t", out_t), "bias": ctype("bias_t", out_t)})
        else:
            raise Hls4mlProjectError(f"{top}: layer {lname}: nnet::{fn} is not read by fpga-gen's hls4ml project "
                                     f"reader yet (it reads dense, batchnorm, softmax and elementwise activations)")
        g.add(node)
        producer[out_var] = lname
        last = lname
    g.outputs = [last]
    cfg = ProjectConfig() if base is None else base.copy()
    cfg.source = str(root)
    cfg.name = g.name
    cfg.io_type = io_type
    if h is not None:
        cfg.clock_period = h.clock_period
        if h.part:
            cfg.part = h.part
        cfg.strategy = h.model_strategy
        cfg.reuse_factor = h.model_reuse
        if h.io_type != io_type:
            notes.append(f"{root / 'hls4ml_config.yml'}: IOType io_{h.io_type}, the firmware is io_{io_type}: "
                         f"the firmware wins")
    else:
        notes.append(f"{root}: no hls4ml_config.yml: part and clock are fpga-gen's defaults unless given")
    for node in g:
        if node.op == "dense":
            ymlrf = h.reuse_factor(node.name, ("Dense",)) if h else None
            if ymlrf is not None and ymlrf != node.attrs["reuse_factor"]:
                notes.append(f"{node.name}: parameters.h has reuse factor {node.attrs['reuse_factor']}, "
                             f"hls4ml_config.yml {ymlrf}: the firmware wins")
    return g, cfg.validate(), notes
