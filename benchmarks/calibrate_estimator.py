"""Check (and refit) the estimator against real csynth reports of hls4ml projects.

For every project in the calibration folder (default /work/shared/calibration, see its README.md): read the
hls4ml config, load the exact Keras model with fpga-gen's frontend, give every node exactly the types, reuse
factor and strategy hls4ml used (:func:`fpga_gen.hls4ml_config.apply_to_graph`), estimate on the report's part
at the report's clock, and compare with the report: top level and, where per-function reports exist, per layer.

    python benchmarks/calibrate_estimator.py                  # error table + medians
    python benchmarks/calibrate_estimator.py --layers         # also the per-layer comparison
    python benchmarks/calibrate_estimator.py --fit            # grid-search the [fit] constants, print the best
    python benchmarks/calibrate_estimator.py --json out.json  # machine-readable results

Projects whose model has layers the frontend cannot read yet (HGQ proxies, a softmax over a 3-d tensor) are
listed as skipped with the reason; they are never dropped silently.  Medians are printed for all records and
apart for the projects the [fit] constants were fitted on (FITTED_ON) and the others (out-of-sample).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fpga_gen.estimate import DEFAULT, estimate, with_overrides  # noqa: E402
from fpga_gen.estimate.parts import part_family  # noqa: E402
from fpga_gen.hls4ml_project import firmware_layer_names, is_hls4ml_project, read_hls4ml_project  # noqa: E402
from fpga_gen.hls4ml_config import read_hls4ml_config  # noqa: E402

CAL = Path(os.environ.get("FPGA_GEN_CALIBRATION", "/work/shared/calibration"))
#: more public hls4ml projects with committed reports, same layout (never copied into the repository)
EXTRA = Path(os.environ.get("FPGA_GEN_CALIBRATION_EXTRA", "/work/calib_extra"))
#: sources left out of every fit and every error figure, and why (decided from the files, before any fit)
EXCLUDED = {
    "ArgyKokk/hls4ml_MLP_estimator": "its DSP_* and LUT_* projects have byte-identical firmware and configs but "
                                     "36-814 vs 0 DSPs: the products were bound by a directive outside the "
                                     "committed hls4ml files, so the reports do not follow from them",
}
METRICS = ("DSP", "LUT", "FF", "BRAM_18K", "latency")
TARGETS = {"DSP": 10.0, "LUT": 30.0, "FF": 30.0, "latency": 15.0}
# The 17 projects the [fit] constants were fitted on (the ones the frontend read when they were fitted).  The
# others are out-of-sample for those constants: their medians are printed apart, as the honest prediction error.
FITTED_ON = frozenset("""
cestmerneil-hls4ml_LeNet_LeNet_PYNQ-6dec378 cestmerneil-hls4ml_LeNet_LeNet_PYNQ-95bec00
jmduarte-precision_lut_scaling-bits_6 jmduarte-precision_lut_scaling-bits_f32 nrp-model_1_hls4ml_prj
pominiq-Folder_2_HLS4ML_Vivado_HLS_models_Dummy_RF16_with_pruning75
pominiq-Folder_2_HLS4ML_Vivado_HLS_models_Dummy_RF1_no_pruning pominiq-Folder_2_HLS4ML_Vivado_HLS_models_MNIST_R16
pominiq-Folder_2_HLS4ML_Vivado_HLS_models_MNIST_RE16 pominiq-Folder_2_HLS4ML_Vivado_HLS_models_MNIST_original
pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj-3096600 pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj-7d3cf35
pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj-8e4ac39 pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj-b73fa37
pominiq-hls4ml_prj-c28e4f1 rishthakkar-projects_qat_hls4ml_prj_Rank thifjj-projeto_iris_hls_ip_axi
""".split())


# ---------------------------------------------------------------------------------------------- loading

def load_projects(cal: Path, verbose: bool = False, only=None):
    """[(name, meta, project|None, hls4ml config, reason)] for every project folder.

    Every graph is built by the one path ``fpga-gen estimate MODEL --hls4ml-config CFG --part P --clock-period C``
    takes (``fpga_gen.convert(model, hls4ml=cfg, part=..., clock_period=...)``: hls4ml's types, reuse factors and
    weight rounding); models the frontend refuses go through the same path from this script's adapter graph."""
    from fpga_gen.api import convert
    out = []
    seen = set()
    roots = [cal] if isinstance(cal, (str, Path)) else list(cal)
    dirs = [d for root in roots for d in sorted(Path(root).iterdir())
            if d.is_dir() and (d / "csynth.json").is_file() and (d / "hls4ml_config.yml").is_file()]
    for d in dirs:
        if only is not None and d.name not in only:
            continue
        try:        # the extra collection grows while it is read: a folder may vanish or be half-written
            cs = json.loads((d / "csynth.json").read_text())
            src = json.loads((d / "source.json").read_text()) if (d / "source.json").is_file() else {}
        except (OSError, ValueError):
            continue
        key = src.get("report_blob") or d.name           # the same report reached from two collections: once
        if key in seen:
            continue
        seen.add(key)
        cs["source_repo"] = src.get("repo") or d.name.split("-")[0]
        cs["provenance"] = {k: src.get(k) for k in ("repo", "commit", "report_path", "report_blob")}
        model = next((d / f for f in ("model.h5", "model.keras") if (d / f).is_file()), None) or \
            next(iter(sorted(d.glob("*.h5")) + sorted(d.glob("*.keras"))), None)
        try:
            h = read_hls4ml_config(d / "hls4ml_config.yml")
        except Exception as e:
            out.append((d.name, cs, None, None, f"skipped: config refused: {str(e).splitlines()[0][:120]}"))
            continue
        if model is None and not is_hls4ml_project(d):
            out.append((d.name, cs, None, h, "skipped: no model file and no firmware"))
            continue
        over = {"part": cs["part"], "clock_period": cs["top"]["clock_target_ns"]}
        project, reason, loader = None, None, "frontend"
        if EXCLUDED.get(cs["source_repo"]):
            out.append((d.name, cs, None, h, "excluded: " + EXCLUDED[cs["source_repo"]]))
            continue
        if is_hls4ml_project(d):
            # the firmware is what the tool synthesised (some configs are stale: argykokk's YAML says RF 1 where
            # parameters.h has 100): the path `fpga-gen estimate DIR --part P --clock-period C` takes
            try:
                graph, cfg, notes = read_hls4ml_project(d)
                cfg = cfg.copy(part=cs["part"], clock_period=cs["top"]["clock_target_ns"])
                out.append((d.name, cs, SimpleNamespace(head=graph, config=cfg, meta_loader="hls4ml_prj",
                                                        notes=notes), h, None))
                continue
            except Exception as e:
                reason = f"hls4ml project reader: {str(e).splitlines()[0][:100]}"
        if model is None:
            out.append((d.name, cs, None, h, f"skipped: no model file; {reason}"))
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                project = convert(str(model), hls4ml=h, **over)
            reason = None
        except Exception as e:  # the frontend's message says which layer
            msg = str(e).splitlines()[0]
            m = re.search(r"layer '([^']+)' has custom class '([^']+)'", msg)
            if m and m.group(2) in ("Adam", "DTypePolicy"):
                reason = f"skipped: frontend refuses this Keras 3 file (config entry {m.group(2)!r})"
            elif m:
                reason = f"skipped: op not yet in frontend: {m.group(2)} ({m.group(1)})"
            else:
                reason = "skipped: op not yet in frontend: " + _short_reason(msg)
            try:
                project, loader = convert(adapter_graph(model), hls4ml=h, **over), "adapter"
                reason = None
            except AdapterError as e2:
                reason += f"; adapter: {e2}"
            except Exception as e2:
                reason += f"; adapter graph refused: {_short_reason(str(e2).splitlines()[0])}"
        if project is not None and is_hls4ml_project(d):
            # the model file is not always what was synthesised (hand-edited firmware of one layer): every
            # dense/conv layer of the model must be one of the firmware's layer calls
            fw = set(firmware_layer_names(d))
            missing = [n.name for n in project.head if n.op in ("dense", "conv2d", "conv1d", "depthwise_conv2d")
                       and n.name not in fw and not any(n.name.startswith(f) for f in fw)]
            if fw and missing:
                out.append((d.name, cs, None, h, f"skipped: the firmware the tool synthesised has no layer "
                                                  f"{missing[0]!r} of the model file ({reason or 'reader'})"))
                continue
        if project is not None:       # what the estimate reads (the CLI's project.head and project.config)
            project = SimpleNamespace(head=project.head, config=project.config, meta_loader=loader,
                                      notes=list(getattr(project, "hls4ml_notes", ())))
        out.append((d.name, cs, project, h, reason))
        if verbose:
            print(f"loaded {d.name}: {reason or 'ok'}", file=sys.stderr)
    return out


def estimate_project(project, constants=DEFAULT, tool=None):
    """Exactly what ``fpga-gen estimate --tool TOOL`` computes for the project (cli.cmd_estimate)."""
    return estimate(project.head, project.config, board=project.config.board, constants=constants, tool=tool)


def tool_family(cs) -> str:
    """'vivado' (Vivado HLS 2019-2020) or 'vitis' (Vitis HLS 2021-2025), the ``--tool`` families."""
    return "vivado" if str(cs.get("tool", "")).lower().startswith("vivado") else "vitis"


def _short_reason(msg: str) -> str:
    m = re.search(r"layer '([^']+)' \(([^)]+)\)", msg)
    if m:
        return f"{m.group(2)} ({m.group(1)})"
    m = re.search(r"Unknown layer: '?([A-Za-z0-9_]+)", msg)
    if m:
        return m.group(1)
    return msg[:90]


# ---------------------------------------------------------------------------------------------- temporary adapter
# Until the frontend reads Keras 3 ``.keras`` files (it refuses their compile/dtype-policy entries) and
# BatchNormalization, build the graph straight from the file's layer configs and weights (h5py + json, no
# TensorFlow).  Only what the calibration needs: Dense/QDense, Activation/QActivation/ReLU/Softmax, Flatten,
# Dropout, BatchNormalization.  QKeras weights are left unquantized; the estimator quantizes them to the weight
# type (hls4ml's configs give QKeras weight types exactly).

class AdapterError(Exception):
    pass


def _read_model_file(path: Path):
    import zipfile
    import h5py
    import numpy as np
    if path.suffix == ".keras":
        z = zipfile.ZipFile(path)
        cfg = json.loads(z.read("config.json"))
        f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        groups = []
        root = f["_layer_checkpoint_dependencies"] if "_layer_checkpoint_dependencies" in f else f["layers"]
        for gname in root:           # h5py iterates in name order; keras names them dense, dense_1, ...
            g = root[gname]
            if "vars" in g and len(g["vars"]):
                arrs = [np.asarray(g["vars"][str(i)]) for i in range(len(g["vars"]))]
                groups.append((gname, arrs))
        return cfg, ("keras3", groups)
    f = h5py.File(path, "r")
    cfg = json.loads(f.attrs["model_config"])
    mw = f["model_weights"] if "model_weights" in f else f
    weights = {}
    for lname in mw:
        names = [n.decode() if isinstance(n, bytes) else n for n in mw[lname].attrs.get("weight_names", [])]
        weights[lname] = {n.split("/")[-1].split(":")[0]: np.asarray(mw[lname][n]) for n in names}
    return cfg, ("h5", weights)


def _natural(name):
    m = re.match(r"^(.*?)(?:_(\d+))?$", name)
    return (m.group(1), int(m.group(2) or 0))


def adapter_graph(path: Path):
    import numpy as np
    from fpga_gen.ir import FixedType, Graph, Node
    cfg, (kind, wsrc) = _read_model_file(path)
    layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
    g = Graph(cfg["config"].get("name", "model") if isinstance(cfg["config"], dict) else "model")
    t0 = FixedType(16, 6)
    if kind == "keras3":   # weight groups are named by class (dense, dense_1, ...) in creation order
        per_class: dict = {}
        for gname, arrs in sorted(wsrc, key=lambda x: _natural(x[0])):
            per_class.setdefault(_natural(gname)[0], []).append(arrs)
    prev = None
    shape = None

    def weights_of(layer):
        name = layer["config"]["name"]
        if kind == "h5":
            return wsrc.get(name, {})
        cls = re.sub(r"(?<!^)(?=[A-Z])", "_", layer["class_name"]).lower().replace("q_", "q")
        lst = per_class.get(cls) or per_class.get(layer["class_name"].lower())
        if not lst:
            raise AdapterError(f"no weights for {name}")
        arrs = lst.pop(0)
        keys = {"dense": ["kernel", "bias"], "batch_normalization": ["gamma", "beta", "moving_mean", "moving_variance"]}
        return dict(zip(keys.get(cls, ["kernel", "bias"]), arrs))

    def add_act(src, act, name):
        act = act if isinstance(act, str) else (act or {}).get("class_name", "linear")
        if act in ("linear", None):
            return src
        if act.startswith("quantized_relu") or act == "relu":
            g.add(Node(name, "activation", [src], g[src].shape, attrs={"activation": "relu"}, types={"result": t0}))
        elif act.startswith("quantized_bits"):
            g.add(Node(name, "activation", [src], g[src].shape, attrs={"activation": "linear"}, types={"result": t0}))
        elif act == "softmax":
            g.add(Node(name, "softmax", [src], g[src].shape, types={"result": t0}))
        else:
            raise AdapterError(f"activation {act}")
        return name

    for layer in layers:
        c, cls = layer["config"], layer["class_name"]
        name = c["name"]
        if cls == "InputLayer":
            shp = c.get("batch_input_shape") or c.get("batch_shape")
            g.add(Node(name, "input", [], tuple(shp[1:]), types={"result": t0}))
            g.inputs.append(name)
            prev = name
            continue
        if prev is None:
            shp = c.get("batch_input_shape") or c.get("batch_shape") or layer.get("build_config", {}).get("input_shape")
            g.add(Node("input_1", "input", [], tuple(shp[1:]), types={"result": t0}))
            g.inputs.append("input_1")
            prev = "input_1"
        if cls in ("Dense", "QDense"):
            w = weights_of(layer)
            k = np.asarray(w["kernel"], dtype=np.float64)
            b = np.asarray(w.get("bias", np.zeros(k.shape[1])), dtype=np.float64)
            g.add(Node(name, "dense", [prev], (k.shape[1],), attrs={"n_in": k.shape[0], "n_out": k.shape[1]},
                       weights={"kernel": k, "bias": b}, types={"result": t0}))
            act = c.get("activation")
            an = act if isinstance(act, str) else (act or {}).get("class_name", "linear")
            prev = add_act(name, act, f"{name}_{an.split('(')[0]}")
        elif cls in ("Activation", "QActivation", "ReLU", "Softmax"):
            act = {"ReLU": "relu", "Softmax": "softmax"}.get(cls) or c.get("activation")
            prev = add_act(prev, act, name)
        elif cls in ("Flatten", "Dropout"):
            continue
        elif cls == "BatchNormalization":
            w = weights_of(layer)
            eps = float(c.get("epsilon", 1e-3))
            gamma = np.asarray(w.get("gamma", 1.0), dtype=np.float64)
            var = np.asarray(w["moving_variance"], dtype=np.float64)
            scale = gamma / np.sqrt(var + eps)
            bias = np.asarray(w.get("beta", 0.0), dtype=np.float64) - np.asarray(w["moving_mean"]) * scale
            g.add(Node(name, "batchnorm", [prev], g[prev].shape, attrs={"n_in": int(scale.size)},
                       weights={"scale": scale, "bias": bias}, types={"result": t0}))
            prev = name
        else:
            raise AdapterError(f"{cls} ({name}) not supported")
    g.outputs = [prev]
    return g


# ---------------------------------------------------------------------------------------------- comparing

_KIND = (("dense", "dense"), ("relu", "activation"), ("linear", "activation"), ("softmax", "softmax"),
         ("normalize", "batchnorm"), ("conv_2d", "conv2d"), ("conv_1d", "conv2d"), ("pooling", "pooling"),
         ("global_pooling", "pooling"), ("depthwise_conv_2d", "depthwise_conv2d"), ("pointwise_conv_2d", "conv2d"))
# (the frontend builds Conv1D as the conv2d op with one row, ops.py; a separable conv as depthwise + pointwise)


def _report_kind(function: str) -> str | None:
    for prefix, kind in _KIND:
        if function.startswith(prefix):
            return kind
    return None


def _config_number(function: str) -> int | None:
    m = re.search(r"config(\d+)", function)
    return int(m.group(1)) if m else None


def match_layers(est_layers: list[dict], report_layers: list[dict]) -> list[tuple[dict, dict]]:
    """Pair our per-layer rows with the per-function reports: same kind, in layer order (configN ascending;
    functions whose name lost its config number come first, as hls4ml's first layers do)."""
    pairs = []
    by_kind: dict = {}
    for r in report_layers:
        if r.get("role") != "layer":
            continue
        k = _report_kind(r["function"])
        if k:
            by_kind.setdefault(k, []).append(r)
    for k, reps in by_kind.items():
        arrays = [r for r in reps if "_array" in r["function"]]
        if arrays:          # io_stream: the per-layer function is *_array_*; the others are nested inside it
            reps = arrays
        elif k == "dense":  # io_parallel: the nested dense_wrapper / *_mult_* functions are part of dense_latency
            reps = [r for r in reps if "_mult_" not in r["function"] and "wrapper" not in r["function"]] or reps
        reps = [r for r in reps if "_Pipelin" not in r["function"]] or reps   # a loop's own report, nested
        if k == "softmax":
            reps = [r for r in reps if not r["function"].startswith("softmax_stable")] or reps
        ours = [L for L in est_layers if L["op"] == k]
        if len(ours) != len(reps):
            continue
        numbers = [_config_number(r["function"]) for r in reps]
        if None not in numbers and len(set(numbers)) == len(numbers):
            # hls4ml numbers its config structs in layer order: the config number orders the reports
            reps.sort(key=lambda r: _config_number(r["function"]))
            pairs.extend(zip(ours, reps))
        else:
            # Vivado HLS truncates long function names (dense_latency_0_..._0 / ..._1): no config number to
            # order by, and the suffix is no layer index.  Pair by content: the assignment whose DSP and LUT
            # counts agree best (DSPs follow from the weights exactly, LUTs roughly)
            pairs.extend(_pair_by_content(ours, reps))
    return pairs


def _pair_by_content(ours, reps):
    def cost(L, r):
        return (abs(math.log1p(L["DSP"]) - math.log1p(r.get("DSP") or 0)) * 3
                + abs(math.log1p(L["LUT"]) - math.log1p(r.get("LUT") or 0)))
    n = len(ours)
    if n <= 7:
        best = min(itertools.permutations(range(n)), key=lambda p: sum(cost(ours[i], reps[j]) for i, j in enumerate(p)))
        return [(ours[i], reps[j]) for i, j in enumerate(best)]
    left, out = list(range(n)), []
    for i in sorted(range(n), key=lambda i: -ours[i]["DSP"]):
        j = min(left, key=lambda j: cost(ours[i], reps[j]))
        left.remove(j)
        out.append((ours[i], reps[j]))
    return out


def pct(est, real):
    if real is None:
        return None
    if real == 0:
        return 0.0 if est == 0 else None
    return 100.0 * (est - real) / real


def compare(projects, constants):
    rows = []
    layer_rows = []
    for name, cs, project, h, reason in projects:
        top = cs["top"]
        base = {"project": name, "tool": f"{cs['tool']} {cs['tool_version']}", "part": cs["part"],
                "io": h.io_type if h else "?", "strategy": h.model_strategy if h else "?",
                "rf": h.model_reuse if h else 0, "loader": getattr(project, "meta_loader", None),
                "source": cs.get("source_repo", name), "tool_family": tool_family(cs),
                "part_family": part_family(cs["part"]), "provenance": cs.get("provenance")}
        if project is None:
            rows.append({**base, "skipped": reason})
            continue
        try:
            est = estimate_project(project, constants, tool=tool_family(cs))
        except Exception as e:
            rows.append({**base, "skipped": f"skipped: estimator error: {e}"})
            continue
        T = est.total
        real_lat = top.get("latency_worst_cycles")
        r = {**base, "est": {k: T[k] for k in ("DSP", "LUT", "FF", "BRAM_18K")},
             "real": {k: top.get(k) for k in ("DSP", "LUT", "FF", "BRAM_18K")}}
        r["est"]["latency"] = T["latency_cycles"]
        r["real"]["latency"] = real_lat
        r["est"]["ii"] = T["ii_cycles"]
        r["real"]["ii"] = top.get("ii_max")
        r["err"] = {m: pct(r["est"][m], r["real"][m]) for m in METRICS}
        r["lat_abs"] = None if real_lat is None else T["latency_cycles"] - real_lat
        rows.append(r)
        for L, rep in match_layers(est.layers, cs.get("layers") or []):
            lr = {"project": name, "layer": L["name"], "op": L["op"], "function": rep["function"],
                  "est": {k: L[k] for k in ("DSP", "LUT", "FF", "BRAM_18K")},
                  "real": {k: rep.get(k) for k in ("DSP", "LUT", "FF", "BRAM_18K")}}
            lr["est"]["latency"] = L["latency_cycles"]
            lr["real"]["latency"] = rep.get("latency_worst_cycles")
            lr["err"] = {m: pct(lr["est"][m], lr["real"][m]) for m in METRICS}
            layer_rows.append(lr)
    return rows, layer_rows


def medians(rows, group=None):
    out = {}
    for m in METRICS:
        vals = []
        for r in rows:
            if "err" not in r or (group and not group(r)):
                continue
            e = r["err"][m]
            if m == "latency" and r.get("lat_abs") is not None and abs(r["lat_abs"]) <= 3:
                e = 0.0 if e is None else min(abs(e), 0.0)     # within 3 cycles counts as on target
            if e is not None:
                vals.append(abs(e))
        out[m] = (statistics.median(vals) if vals else None, len(vals))
    return out


# ---------------------------------------------------------------------------------------------- printing

def _f(v, w=7):
    if v is None:
        return "-".rjust(w)
    if isinstance(v, float):
        return f"{v:+.0f}%".rjust(w)
    return str(v).rjust(w)


def print_table(rows, layer_rows, show_layers: bool):
    print("Per record: estimate / csynth (error %). Latency: worst case cycles. "
          "cfg: io/strategy/model RF; * = graph built by this script's temporary h5/.keras adapter "
          "(the frontend refused the file).\n")
    hdr = f"{'project':58} {'tool':18} {'part':20} {'cfg':22}"
    print(hdr + "".join(f" {m:>22}" for m in METRICS))
    for r in rows:
        cfg = f"{r['io'][:3]}/{r['strategy'][:3]}/RF{r['rf']}" + ("*" if r.get("loader") == "adapter" else "")
        line = f"{r['project'][:58]:58} {r['tool'][:18]:18} {r['part'][:20]:20} {cfg:22}"
        if "skipped" in r:
            print(line + " " + r["skipped"])
            continue
        for m in METRICS:
            cell = f"{r['est'][m]}/{r['real'][m]}({_f(r['err'][m], 0).strip()})"
            line += f" {cell:>22}"
        print(line)
    if show_layers and layer_rows:
        print("\nPer layer (per-function csynth reports):\n")
        for r in layer_rows:
            line = f"{r['project'][:44]:44} {r['layer'][:16]:16} {r['op'][:10]:10}"
            for m in METRICS:
                cell = f"{r['est'][m]}/{r['real'][m]}({_f(r['err'][m], 0).strip()})"
                line += f" {cell:>20}"
            print(line)


def print_medians(rows, layer_rows):
    def show(title, med):
        cells = []
        for m in METRICS:
            v, n = med[m]
            tgt = TARGETS.get(m)
            mark = "" if v is None or tgt is None else (" ok" if v <= tgt else " MISS")
            cells.append(f"{m} {'-' if v is None else f'{v:.1f}%'} (n={n}{mark})")
        print(f"  {title:34} " + "; ".join(cells))
    evaluated = [r for r in rows if "err" in r]
    print(f"\nMedian absolute error ({len(evaluated)} records evaluated, "
          f"{sum(1 for r in rows if 'skipped' in r)} skipped); latency within 3 cycles counts as 0:")
    show("all records (top level)", medians(rows))
    show("  fitted on (in-sample)", medians(rows, lambda r: r["project"] in FITTED_ON))
    show("  not fitted on (out-of-sample)", medians(rows, lambda r: r["project"] not in FITTED_ON))
    for io in ("parallel", "stream"):
        show(f"  io_{io}", medians(rows, lambda r, i=io: r["io"] == i))
    for tool in sorted({r["tool"].split()[0] for r in evaluated}):
        show(f"  {tool} HLS", medians(rows, lambda r, t=tool: r["tool"].startswith(t)))
    for part in sorted({r["part"] for r in evaluated}):
        show(f"  {part}", medians(rows, lambda r, p=part: r["part"] == p))
    if layer_rows:
        show("per layer (all)", medians(layer_rows))
        show("  per layer, fitted on", medians(layer_rows, lambda r: r["project"] in FITTED_ON))
        show("  per layer, not fitted on", medians(layer_rows, lambda r: r["project"] not in FITTED_ON))
        for op in sorted({r["op"] for r in layer_rows}):
            show(f"  per layer: {op}", medians(layer_rows, lambda r, o=op: r["op"] == o))


def worst(rows, n=5):
    ev = [r for r in rows if "err" in r]
    print("\nWorst cases (largest |error| per metric):")
    for m in METRICS:
        cand = sorted((r for r in ev if r["err"][m] is not None), key=lambda r: -abs(r["err"][m]))[:n]
        print(f"  {m}: " + "; ".join(f"{r['project'][:40]} {r['est'][m]} vs {r['real'][m]} ({r['err'][m]:+.0f}%)"
                                       for r in cand))


# ---------------------------------------------------------------------------------------------- fitting

# The [fit] constants, and the values the fit tries for each (coordinate descent from the defaults, two rounds).
FIT_GRID = {
    # keys 'tool:family' > 'tool' > 'family' (Constants.per_family): a number may differ by tool and part family
    "lut_per_product_bit": [{"vitis": a, "vivado": b} for a in (1.3, 1.5, 1.8) for b in (1.0, 1.2, 1.4, 1.6)],
    "ff_per_product_stage": [{"vivado:7series": a, "vitis:7series": b, "ultrascale+": c, "ultrascale": c,
                              "7series": b} for a in (3, 6, 12) for b in (12, 22) for c in (2.0, 3.5, 5.5)],
    "t_dsp_mult": [{"vivado:7series": x} for x in (3.0, 4.5, 6.0, 9.0, 12.0)],
    "ff_folded_per_product": [2.0, 4.0, 8.0, 12.0],
    "ff_top": [{"vitis": v, "vivado": w} for v, w in ((0, 0), (0, 1500), (0, 3000), (1500, 3000), (500, 500))],
    "ff_top_per_bit": [{"vitis": v, "vivado": w} for v in (0.0, 0.5, 1.0) for w in (0.0, 0.5, 1.0, 1.5)],
    "lut_cast_rnd_per_bit": [0.0, 2.0, 4.0],
    "lut_cast_sat_per_bit": [0.0, 1.0, 2.5],
    "folded_ii_extra": [{"vitis": 0, "vivado": 0}, {"vitis": 0, "vivado": 2}, {"vitis": 2, "vivado": 2}],
    "top_overhead_cycles": [0, 1, 2],
    "stream_kernel_lut_factor": [{"latency": a, "resource": b} for a in (1.0, 1.3, 1.7) for b in (1.0, 1.5, 2.5, 4.0)],
    "stream_kernel_ff_factor": [1.0, 1.3, 1.7, 2.5],
}
SCORE_WEIGHTS = (("DSP", 1.0), ("LUT", 1.0), ("FF", 1.0), ("latency", 1.0))


def score(rows):
    med = medians(rows)
    return sum(w * (med[m][0] if med[m][0] is not None else 100.0) for m, w in SCORE_WEIGHTS)


class Evaluator:
    """Rows per constants choice, memoised (the coordinate descents of the leave-one-source-out folds revisit
    the same points)."""

    def __init__(self, projects):
        self.projects = projects
        self.memo = {}

    def rows(self, choice: dict):
        key = json.dumps(choice, sort_keys=True)
        if key not in self.memo:
            self.memo[key] = compare(self.projects, with_overrides(DEFAULT, **choice))[0]
        return self.memo[key]


def fit(ev: Evaluator, keep=lambda r: True, rounds: int = 2, verbose: bool = False) -> dict:
    """Coordinate descent over FIT_GRID on the records ``keep`` accepts; returns the chosen overrides."""
    choice = {k: FIT_GRID[k][0] if isinstance(FIT_GRID[k][0], dict) and not isinstance(getattr(DEFAULT, k), dict)
              else getattr(DEFAULT, k) for k in FIT_GRID}
    best = score([r for r in ev.rows(choice) if keep(r)])
    for _ in range(rounds):
        moved = False
        for k, values in FIT_GRID.items():
            for v in values:
                trial = {**choice, k: v}
                sc = score([r for r in ev.rows(trial) if keep(r)])
                if sc < best - 1e-9:
                    best, choice, moved = sc, trial, True
        if not moved:
            break
    if verbose:
        print(f"fit score {best:.1f}: " + ", ".join(f"{k}={v}" for k, v in choice.items()))
    return choice


METRICS_ALL = ("DSP", "LUT", "FF", "BRAM_18K", "latency")


def summary(rows) -> dict:
    """median and 90th-percentile |error| % per metric, II exact share, n records and sources."""
    ev = [r for r in rows if "err" in r]
    out = {"n": len(ev), "sources": len({r["source"] for r in ev})}
    for m in METRICS_ALL:
        vals = []
        for r in ev:
            e = r["err"][m]
            if m == "latency" and r.get("lat_abs") is not None and abs(r["lat_abs"]) <= 3:
                e = 0.0
            if e is not None:
                vals.append(abs(e))
        out[m] = ({"median": round(statistics.median(vals), 1),
                   "p90": round(sorted(vals)[min(len(vals) - 1, int(math.ceil(0.9 * len(vals))) - 1)], 1),
                   "n": len(vals)} if vals else None)
    ii = [r for r in ev if r["real"].get("ii") is not None]
    out["II_exact_pct"] = round(100.0 * sum(r["est"]["ii"] == r["real"]["ii"] for r in ii) / len(ii), 1) if ii else None
    return out


def loso(ev: Evaluator, verbose: bool = False):
    """Leave one source (repository) out: fit on the others, predict it.  Returns (out-of-sample rows,
    in-sample rows with the fit on everything, the fit on everything, per-source choices)."""
    full = fit(ev, verbose=verbose)
    sources = sorted({r["source"] for r in ev.rows(full) if "err" in r})
    held = []
    choices = {}
    for s in sources:
        ch = fit(ev, keep=lambda r, s=s: r.get("source") != s)
        choices[s] = ch
        held.extend(r for r in ev.rows(ch) if r.get("source") == s and "err" in r)
        if verbose:
            print(f"  held out {s}: {sum(1 for r in held if r['source'] == s)} records", file=sys.stderr)
    return held, [r for r in ev.rows(full) if "err" in r], full, choices


def groups(rows):
    yield "all", rows
    for fam in sorted({r["tool_family"] for r in rows}):
        yield f"tool {fam}", [r for r in rows if r["tool_family"] == fam]
    for fam in sorted({r["part_family"] for r in rows}):
        yield f"part {fam}", [r for r in rows if r["part_family"] == fam]
    for io in sorted({r["io"] for r in rows}):
        yield f"io_{io}", [r for r in rows if r["io"] == io]


def accuracy_table(held, insample) -> dict:
    return {name: {"in_sample": summary(ins), "loso": summary(dict(groups(held))[name])}
            for name, ins in groups(insample)}


def accuracy_markdown(table: dict) -> str:
    """The accuracy table: median / 90th percentile |error| per metric, in-sample and leave-one-source-out."""
    def cell(x, m):
        v = x.get(m)
        return "-" if not v else f"{v['median']:.0f} / {v['p90']:.0f} %"
    lines = ["| group | records (sources) | constants fitted on | DSP | LUT | FF | BRAM_18K | latency | II exact |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, t in table.items():
        for kind in ("in_sample", "loso"):
            x = t[kind]
            label = "all records (in-sample)" if kind == "in_sample" else "**the other sources (leave-one-source-out)**"
            lines.append(f"| {name} | {x['n']} ({x['sources']}) | {label} | "
                         + " | ".join(cell(x, m) for m in METRICS_ALL)
                         + f" | {x['II_exact_pct'] if x['II_exact_pct'] is not None else '-'} % |")
    return "\n".join(lines)


def print_accuracy(table: dict) -> None:
    print("\n" + accuracy_markdown(table))


def write_docs(acc_json: Path, paths) -> None:
    """Replace the block between <!-- accuracy --> and <!-- /accuracy --> in each file with the table of
    ``acc_json`` (so README and docs/estimator.md quote exactly the committed accuracy.json)."""
    table = json.loads(Path(acc_json).read_text())["groups"]
    block = "<!-- accuracy -->\n" + accuracy_markdown(table) + "\n<!-- /accuracy -->"
    for p in paths:
        text = Path(p).read_text()
        text = re.sub(r"<!-- accuracy -->.*?<!-- /accuracy -->", lambda m: block, text, flags=re.S)
        Path(p).write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibration", action="append", help=f"a calibration folder (repeatable; default {CAL} "
                    f"and, when present, {EXTRA})")
    ap.add_argument("--cache", help="pickle of the built graphs: read when present, else written (skips TensorFlow)")
    ap.add_argument("--accuracy-json", help="with --loso: write the accuracy table (the estimator's error bands)")
    ap.add_argument("--loso", action="store_true", help="leave-one-source-out: refit the [fit] constants without "
                    "each source repository and predict it")
    ap.add_argument("--layers", action="store_true", help="print the per-layer comparison")
    ap.add_argument("--fit", action="store_true", help="grid-search the fitted constants")
    ap.add_argument("--json", help="write the comparison to this file")
    ap.add_argument("--docs", nargs="*", help="only rewrite the accuracy blocks of these files from "
                                                "--accuracy-json (README.md docs/estimator.md), then exit")
    args = ap.parse_args(argv)
    if args.docs:
        write_docs(Path(args.accuracy_json or ROOT / "fpga_gen" / "estimate" / "accuracy.json"), args.docs)
        return 0
    t0 = time.time()
    roots = [Path(c) for c in (args.calibration or [CAL] + ([EXTRA] if EXTRA.is_dir() else []))]
    projects = None
    if args.cache and Path(args.cache).is_file():
        import pickle
        projects = pickle.loads(Path(args.cache).read_bytes())
    if projects is None:
        projects = load_projects(roots)
        if args.cache:
            import pickle
            Path(args.cache).write_bytes(pickle.dumps(projects))
    t1 = time.time()
    rows, layer_rows = compare(projects, DEFAULT)
    t2 = time.time()
    print_table(rows, layer_rows, args.layers)
    print_medians(rows, layer_rows)
    worst(rows)
    print(f"\nloading {t1 - t0:.1f} s (TensorFlow), estimating {len(rows)} records {1e3 * (t2 - t1):.1f} ms")
    if args.fit or args.loso:
        ev = Evaluator(projects)
        if args.loso:
            held, ins, full, choices = loso(ev, verbose=True)
            table = accuracy_table(held, ins)
            print("\nfit on every source: " + json.dumps(full, sort_keys=True))
            print("median / 90th percentile |error| (cells), in-sample vs leave-one-source-out:")
            print_accuracy(table)
            if args.accuracy_json:
                Path(args.accuracy_json).write_text(json.dumps(
                    {"what": "median and 90th-percentile |error| %, estimate vs csynth, per group; in_sample: "
                             "constants fitted on every record; loso: each source predicted by constants "
                             "fitted without it (benchmarks/calibrate_estimator.py --loso)",
                     "fit": full, "groups": table,
                     "excluded_sources": EXCLUDED,
                     "records": [{"project": r["project"], **(r.get("provenance") or {}), "tool": r["tool"],
                                  "part": r["part"], "csynth": r["real"], "estimate_in_sample": r["est"]}
                                 for r in sorted(ins, key=lambda r: r["project"])]},
                    indent=1, sort_keys=True, default=list) + "\n")
        else:
            print("\nbest fit: " + json.dumps(fit(ev), sort_keys=True))
    if args.json:
        Path(args.json).write_text(json.dumps({"records": rows, "layers": layer_rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
