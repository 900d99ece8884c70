"""RTL out of the same graph: a whole model as one da4ml adder graph, written as a Verilog project.

``fpga-gen build MODEL --rtl`` traces the typed graph with da4ml's fixed-point variables, node by node, exactly as
the emulator defines each op (ir/ops.py):

* ``input``       the input type's (k, i, f)
* ``dense``       the exact ``x @ W + b`` (da4ml's CMVM, the layer's ``da`` options), then the cast to result
* ``activation``  ``linear``: the cast to result; ``relu``: ``x > 0 ? x : 0`` (exact), then the cast

A cast is ap_fixed's: rounding TRN, RND (half up) or RND_CONV (half to even: ``x + 2**-(f+1) - ulp + bit_f(x) *
ulp``, truncated), then overflow WRAP or SAT of the rounded value.  Anything else (another op, another mode) is
refused in one line naming the first layer that cannot go to RTL.  The result is one combinational
:class:`da4ml.types.CombLogic`; da4ml's RTL writer turns it into Verilog, fully pipelined with a register every
``latency_cutoff`` adder levels (``-1``: combinational), with its Vivado Tcl script (``build_vivado_prj.tcl``).
:func:`rtl_predict` simulates the written Verilog with Verilator (da4ml's binder) for the bit-exact tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .da.solve import DaError, check_options, input_kif, solver_options
from .da.synth import _STATIC
from .ir.fixed import from_float
from .ir.graph import Graph
from .ir.types import FixedType
from .templating import render
import shutil
import subprocess
import tempfile

__all__ = ["trace_graph", "write_rtl_project", "rtl_predict", "RTL_OPS"]

RTL_OPS = ("input", "dense", "activation (linear, relu)")
_ROUNDINGS = ("TRN", "RND", "RND_CONV")
_SATURATIONS = ("WRAP", "SAT")


def _refuse(node, why: str):
    raise DaError(f"layer {node.name!r} ({node.op}) cannot go to RTL: {why}; RTL takes "
                  f"{', '.join(RTL_OPS)} with TRN/RND/RND_CONV rounding and WRAP/SAT overflow")


def _check_cast(node, t: FixedType) -> None:
    if t.rounding not in _ROUNDINGS or t.saturation not in _SATURATIONS:
        _refuse(node, f"its result type {t.cpp()} rounds {t.rounding} / overflows {t.saturation}")


def check_rtl(graph: Graph) -> None:
    """DaError naming the first layer the RTL writer cannot express."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise DaError(f"RTL needs one input and one output, the graph has {len(graph.inputs)} and {len(graph.outputs)}")
    for node in graph:
        if node.op == "input":
            continue
        if node.op == "activation":
            if node.attrs.get("activation") not in ("linear", "relu"):
                _refuse(node, f"activation {node.attrs.get('activation')!r}")
        elif node.op != "dense":
            _refuse(node, "no adder-graph form")
        if len(node.inputs) != 1:
            _refuse(node, "more than one input")
        _check_cast(node, node.types["result"])


def _cast_one(v, t: FixedType):
    k, i, f = input_kif(t)
    if getattr(v, "opr", None) == "const":        # a constant output (a zero column): the emulator's cast of it
        from da4ml.trace import FixedVariable

        val = float(from_float(np.array([float(v.low)]), t)[0]) * t.step
        return FixedVariable.from_const(val, hwconf=v.hwconf)
    ov = "SAT" if t.saturation == "SAT" else "WRAP"
    if t.rounding == "RND_CONV":
        step = float(v.step)
        if 0 < step < 2.0 ** -f:               # bits below the result's LSB: round half to even
            ulp = step
            bit = v.quantize(0, 1 - f, f, "WRAP", "TRN")            # bit f of x, worth 2**-f
            v = v + (2.0 ** (-f - 1) - ulp) + bit * (ulp / 2.0 ** -f)
        return v.quantize(k, i, f, ov, "TRN")
    return v.quantize(k, i, f, ov, t.rounding)


def _cast(arr, t: FixedType):
    from da4ml.trace import FixedVariableArray
    out = np.empty(len(arr._vars), dtype=object)
    for j, v in enumerate(arr._vars.ravel()):
        out[j] = _cast_one(v, t)
    return FixedVariableArray(out, arr.solver_options, hwconf=arr.hwconf)


def trace_graph(graph: Graph, opts: dict | None = None):
    """The whole model as one :class:`da4ml.types.CombLogic` (see the module docstring)."""
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace
    check_rtl(graph)
    base = check_options(opts, "da")
    hw = HWConfig(base["adder_size"], base["carry_size"], -1)
    vals = {}
    inp = None
    for node in graph:
        if node.op == "input":
            n = node.size
            k, i, f = input_kif(node.types["result"])
            inp = FixedVariableArray.from_kif(np.full(n, k), np.full(n, i), np.full(n, f), hwconf=hw,
                                              solver_options=solver_options(base))
            vals[node.name] = inp
            continue
        x = vals[node.inputs[0]]
        t = node.types["result"]
        if node.op == "dense":
            o = check_options({**base, **(node.attrs.get("da") or {})}, f"layer {node.name!r}: da")
            x.solver_options = solver_options(o)
            y = x @ np.asarray(node.weights["kernel"], np.float64) + np.asarray(node.weights["bias"], np.float64)
        else:
            y = x if node.attrs["activation"] == "linear" else _relu(x)
        vals[node.name] = _cast(y, t)
    out = vals[graph.outputs[0]]
    return comb_trace(inp, out, keep_dead_inputs=True)


def _relu(arr):
    from da4ml.trace import FixedVariableArray
    out = np.empty(len(arr._vars), dtype=object)
    for j, v in enumerate(arr._vars.ravel()):
        out[j] = v.relu()
    return FixedVariableArray(out, arr.solver_options, hwconf=arr.hwconf)


def write_rtl_project(graph: Graph, name: str, out_dir, part: str, clock_period: float = 10.0,
                      latency_cutoff: float = -1, opts: dict | None = None) -> dict:
    """Trace ``graph`` and write its Verilog project (da4ml's RTL writer) into ``out_dir``; returns its summary."""
    from da4ml.codegen import VerilogModel
    comb = trace_graph(graph, opts)
    out = Path(out_dir)
    model = VerilogModel(comb, name, out, latency_cutoff=latency_cutoff, part_name=part,
                         clock_period=clock_period, print_latency=False)
    model.write()
    n_stages = len(model._pipe.solutions) if model._pipe is not None else 0
    summary = {"top": name, "part": part, "clock_period": clock_period, "latency_cutoff": latency_cutoff,
               "pipeline_stages": n_stages, "da4ml_cost": comb.cost, "adder_levels": float(max(comb.latency)),
               "n_in": comb.shape[0], "n_out": comb.shape[1],
               "vivado": "vivado -mode batch -source build_vivado_prj.tcl"}
    (out / "fpga_gen_rtl.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def rtl_predict(out_dir, name: str, x: np.ndarray, graph: Graph, latency_cutoff: float = -1,
                opts: dict | None = None, timeout: float = 600) -> np.ndarray:
    """Icarus Verilog simulation of the RTL written in ``out_dir`` (its ``<name>_wrapper``: every input and output
    padded to one width, outputs at the widest fraction) on real inputs (batch, n_in) -> (batch, n_out)."""

    from da4ml.codegen.rtl.rtl_model import get_io_kifs

    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise DaError("iverilog is not installed: apt-get install iverilog (Debian/Ubuntu)")
    comb = trace_graph(graph, opts)
    kin, kout = get_io_kifs(comb)
    k_i, i_i, f_i = (int(v.max()) for v in kin)
    k_o, i_o, f_o = (int(v.max()) for v in kout)
    w_in, w_out = k_i + i_i + f_i, k_o + i_o + f_o
    n_in, n_out = comb.shape
    out = Path(out_dir)
    meta = json.loads((out / "fpga_gen_rtl.json").read_text())
    latency = int(meta["pipeline_stages"]) + (1 if meta["pipeline_stages"] else 0)
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    codes = np.floor(x * 2.0 ** f_i).astype(object) % (1 << w_in)
    lines = []
    for row in codes:
        v = 0
        for j, c in enumerate(row):
            v |= int(c) << (j * w_in)
        lines.append(f"{v:x}")
    src = out / "src"
    files = [p for p in sorted(src.glob("*.v"))] + [src / "static" / f for f in _STATIC]
    with tempfile.TemporaryDirectory(prefix="fpga_gen_iverilog_") as tmp:
        t = Path(tmp)
        (t / "inputs.hex").write_text("\n".join(lines) + "\n")
        (t / "tb.v").write_text(render("rtl/tb.v.j2", top=name, n=len(x), in_bits=w_in * n_in,
                                       out_bits=w_out * n_out, latency=latency))
        r = subprocess.run(["iverilog", "-g2012", "-o", str(t / "sim"), str(t / "tb.v"), *map(str, files)],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode:
            raise DaError(f"iverilog failed on {name}: {(r.stderr or r.stdout).strip().splitlines()[0]}")
        r = subprocess.run(["vvp", "-n", str(t / "sim")], capture_output=True, text=True, cwd=t, timeout=timeout)
    rows = [ln.strip() for ln in r.stdout.splitlines() if ln.strip() and all(ch in "0123456789abcdefx" for ch in ln.strip())]
    if len(rows) != len(x) or any("x" in ln for ln in rows):
        raise DaError(f"the simulation of {name} printed {len(rows)} defined results for {len(x)} inputs")
    y = np.empty((len(x), n_out), dtype=np.float64)
    mask = (1 << w_out) - 1
    for s, ln in enumerate(rows):
        v = int(ln, 16)
        for j in range(n_out):
            c = (v >> (j * w_out)) & mask
            if k_o and c >> (w_out - 1):
                c -= 1 << w_out
            y[s, j] = c * 2.0 ** -f_o
    return y
