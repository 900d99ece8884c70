"""``fpga-gen synth PROJECT``: the distributed-arithmetic layers of a built project measured by yosys.

Each DA dense layer's adder graph (solved again from the project's graph: da4ml's solution is deterministic, the
same one ``da/<layer>.json`` holds) is written as Verilog and synthesized with yosys ``synth_xilinx`` for the
part's family (:mod:`.synth`); the counts are written beside the estimate: ``synth.json``, a ``synth`` entry in
``report.json`` and a section appended to ``report.md``.  Only DA layers have RTL: the nnet layers of the project
are C++ for Vitis HLS, which yosys cannot read.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .api import load_project
from .da.solve import DA_STRATEGY, DaError, solve_node
from .da.synth import synth_layer
from .estimate import estimate

__all__ = ["measure_project", "to_markdown"]


def measure_project(directory, latency_cutoff: float | None = None) -> dict:
    d = Path(directory)
    project = load_project(d)
    graph, config = project.head, project.config
    nodes = [n for n in graph if n.op == "dense" and n.attrs.get("strategy") == DA_STRATEGY]
    if not nodes:
        raise DaError(f"{d}: the project has no distributed_arithmetic layers; yosys measures only their RTL "
                      f"(build with --strategy da)")
    est = {r["name"]: r for r in estimate(graph, config, board=config.board).layers}
    rows = []
    for node in nodes:
        comb = solve_node(node, graph[node.inputs[0]].types["result"])
        cutoff = node.attrs.get("da", {}).get("latency_cutoff", -1) if latency_cutoff is None else latency_cutoff
        syn = synth_layer(comb, f"da_{len(rows)}", config.part, cutoff)
        e = est.get(node.name, {})
        rows.append({"name": node.name, "family": syn["family"], "latency_cutoff": cutoff,
                     "yosys": {k: syn[k] for k in ("LUT", "FF", "CARRY", "DSP", "MUX")}, "cells": syn["cells"],
                     "estimate": {k: e.get(k) for k in ("LUT", "FF", "DSP")}})
    errs = [abs(r["estimate"]["LUT"] / r["yosys"]["LUT"] - 1) for r in rows if r["yosys"]["LUT"]]
    total = {k: sum(r["yosys"][k] for r in rows) for k in ("LUT", "FF", "CARRY", "DSP")}
    out = {"tool": "yosys synth_xilinx", "part": config.part, "layers": rows, "total": total,
           "median_abs_lut_error": round(statistics.median(errs), 4) if errs else None}
    (d / "synth.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    rep = d / "report.json"
    if rep.is_file():
        data = json.loads(rep.read_text())
        data["synth"] = out
        rep.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    md = d / "report.md"
    if md.is_file():
        text = md.read_text().split("\n## Measured by yosys", 1)[0].rstrip("\n")
        md.write_text(text + "\n\n" + to_markdown(out))
    return out


def to_markdown(out: dict) -> str:
    lines = [f"## Measured by yosys (synth_xilinx, {out['part']}; distributed-arithmetic layers only)", "",
             "yosys is not Vivado: it maps each adder bit to one LUT in front of the carry chain and does not pack "
             "or retime, so Vivado's counts for the same RTL are usually lower (docs/distributed_arithmetic.md).", "",
             "| layer | LUT (yosys) | FF | CARRY | DSP | LUT (estimate) | error |", "|---|---|---|---|---|---|---|"]
    for r in out["layers"]:
        y, e = r["yosys"], r["estimate"]
        err = f"{100 * (e['LUT'] / y['LUT'] - 1):+.1f} %" if y["LUT"] and e["LUT"] is not None else "-"
        lines.append(f"| {r['name']} | {y['LUT']} | {y['FF']} | {y['CARRY']} | {y['DSP']} | {e['LUT']} | {err} |")
    t = out["total"]
    lines.append(f"| total | {t['LUT']} | {t['FF']} | {t['CARRY']} | {t['DSP']} | | |")
    return "\n".join(lines) + "\n"
