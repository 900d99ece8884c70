"""report.html: one self-contained page per project (inline CSS and SVG, nothing fetched).

Byte-for-byte reproducible (no generation time): the same project writes the same page.
The model graph as a diagram, the per-layer estimate, board utilisation bars, latency/II, the
verification results (verification.json, written by ``fpga-gen verify``) and, for sweeps, a Pareto
plot of the points given.  Python lays things out (coordinates, percentages); the template
templates/report/report.html.j2 only prints them.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .templating import render

__all__ = ["render_report", "write_report", "REPORT_FILE", "graph_layout", "pareto_plot"]

REPORT_FILE = "report.html"
RESOURCES = ("DSP", "LUT", "FF", "BRAM_18K", "URAM")

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 420, 66, 28, 34, 16
DETAIL_CHARS = 60       # 10.5 px monospace is ~6.3 px a character in Chromium: 60 fit in a 420 px box
SHORT = {"weight": "w", "bias": "b", "accum": "acc"}


# ---------------------------------------------------------------------------------------------- public
def render_report(graph, config, est, available: dict | None = None, verification: dict | None = None,
                  sweep: list | None = None, sweep_axes: tuple[str, str] | None = None) -> str:
    """The HTML text.  ``est`` an :class:`~fpga_gen.estimate.Estimate`; ``verification`` the dict of
    verification.json; ``sweep`` a list of points (dicts with resource and latency numbers)."""

    available = available or getattr(est, "available", None)
    T = est.total
    clock = float(T.get("clock_period_ns", getattr(config, "clock_period", 10.0)))
    ii = T.get("ii_cycles") or 0
    timing = {
        "latency_cycles": T.get("latency_cycles", 0),
        "latency_ns": T.get("latency_cycles", 0) * clock,
        "ii_cycles": ii,
        "clock_ns": clock,
        "throughput": (f"{1e3 / (ii * clock):.3g} M inferences/s" if ii else "n/a"),
    }
    layers = [{"name": L["name"], "op": L["op"], "cells": [_num(L.get(r, 0)) for r in RESOURCES],
               "latency": _num(L.get("latency_cycles", "")), "ii": _num(L.get("ii_cycles", ""))}
              for L in est.layers]
    total = {"cells": [_num(T.get(r, 0)) for r in RESOURCES], "latency": _num(T.get("latency_cycles", "")),
             "ii": _num(T.get("ii_cycles", ""))}
    return render(
        "report/report.html.j2",
        name=getattr(config, "name", graph.name),
        version=__version__,
        settings=_settings(config, est),
        graph=graph_layout(graph),
        resources=list(RESOURCES),
        layers=layers,
        total=total,
        utilization=_utilization(T, available),
        utilization_of=(f"board {config.board} ({est.part})" if getattr(config, "board", None) else f"part {est.part}"),
        timing=timing,
        verification=_verification(verification),
        pareto=pareto_plot(sweep, sweep_axes) if sweep else None,
    )


def write_report(directory, graph, config, est, available: dict | None = None, sweep: list | None = None) -> Path:
    """Write ``report.html`` into a project folder, with its verification.json (and sweep.json) if present."""
    d = Path(directory)
    verification = read_json(d / "verification.json")
    if sweep is None:
        s = read_json(d / "sweep.json")
        sweep = (s.get("points") or s.get("rows")) if isinstance(s, dict) else s      # fpga_gen.sweep: "rows"
    p = d / REPORT_FILE
    p.write_text(render_report(graph, config, est, available=available, verification=verification,
                               sweep=sweep if isinstance(sweep, list) else None), encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------------- graph
def graph_layout(graph) -> dict:
    """Boxes (one per node, rows by depth from the inputs) and edges, in SVG coordinates."""
    nodes = list(graph)
    depth = {}
    for n in nodes:                                     # nodes are stored in topological order
        depth[n.name] = 1 + max((depth.get(i, -1) for i in n.inputs), default=-1)
    rows: dict[int, list] = {}
    for n in nodes:
        rows.setdefault(depth[n.name], []).append(n)
    ncols = max((len(r) for r in rows.values()), default=1)
    width = 2 * MARGIN + ncols * BOX_W + (ncols - 1) * GAP_X
    pos = {}
    boxes = []
    for d in sorted(rows):
        row = rows[d]
        row_w = len(row) * BOX_W + (len(row) - 1) * GAP_X
        x0 = (width - row_w) / 2
        for k, n in enumerate(row):
            x, y = x0 + k * (BOX_W + GAP_X), MARGIN + d * (BOX_H + GAP_Y)
            pos[n.name] = (x, y)
            t = n.types.get("result")
            extra = [f"{SHORT[k2]} {n.types[k2]}" for k2 in SHORT if k2 in n.types]
            attrs = [f"{k2}={n.attrs[k2]}" for k2 in ("activation", "strategy", "reuse_factor") if k2 in n.attrs]
            boxes.append({
                "name": n.name, "op": n.op, "x": x, "y": y, "w": BOX_W, "h": BOX_H,
                "shape": "\u00d7".join(map(str, n.shape)) or "scalar",
                "type": str(t) if t is not None else "?",
                "detail": _clip(" \u00b7 ".join(extra) or " \u00b7 ".join(attrs), DETAIL_CHARS),
                "title": "; ".join([f"{n.name} ({n.op})", f"shape {n.shape}"] +
                                   [f"{k2}: {v}" for k2, v in n.types.items()] + attrs),
                "kind": "io" if n.op == "input" or n.name in graph.outputs else
                        ("weighted" if n.weights else "plain"),
            })
    edges = []
    for n in nodes:
        for i in n.inputs:
            if i in pos:
                (x1, y1), (x2, y2) = pos[i], pos[n.name]
                edges.append({"x1": x1 + BOX_W / 2, "y1": y1 + BOX_H, "x2": x2 + BOX_W / 2, "y2": y2 - 2})
    height = 2 * MARGIN + len(rows) * BOX_H + max(0, len(rows) - 1) * GAP_Y
    return {"width": width, "height": height, "boxes": boxes, "edges": edges, "inputs": list(graph.inputs),
            "outputs": list(graph.outputs)}


# ---------------------------------------------------------------------------------------------- sweep
def pareto_plot(points: list, axes: tuple[str, str] | None = None, w: int = 640, h: int = 380) -> dict | None:
    """Scatter of sweep points (x: a resource, y: II or latency), the Pareto front marked: the points' own
    ``pareto`` flags when every point has one (fpga_gen.sweep rows), else the 2-D front (both minimised)."""
    flat = [_flatten(p) for p in points if isinstance(p, dict) and not p.get("error")]
    if axes is None:
        xk = next((k for k in ("LUT", "DSP", "FF", "BRAM_18K") if any(_isnum(p.get(k)) for p in flat)), None)
        yk = next((k for k in ("ii_cycles", "latency_cycles", "latency_ns") if any(_isnum(p.get(k)) for p in flat)),
                  None)
    else:
        xk, yk = axes
    flat = [p for p in flat if _isnum(p.get(xk)) and _isnum(p.get(yk))]
    if not flat:
        return None
    xs, ys = [float(p[xk]) for p in flat], [float(p[yk]) for p in flat]
    if all(isinstance(p.get("pareto"), bool) for p in flat):       # the sweep's own front (all its objectives)
        front = {i for i, p in enumerate(flat) if p["pareto"]}
    else:
        front = set()
        for i, (a, b) in enumerate(zip(xs, ys)):
            if not any((c <= a and d <= b) and (c < a or d < b) for c, d in zip(xs, ys)):
                front.add(i)
    L, R, Tm, B = 64, 16, 14, 44
    x_lo, x_hi = _span(xs)
    y_lo, y_hi = _span(ys)

    def sx(v):
        return L + (v - x_lo) / (x_hi - x_lo) * (w - L - R)

    def sy(v):
        return h - B - (v - y_lo) / (y_hi - y_lo) * (h - Tm - B)

    dots = [{"x": sx(a), "y": sy(b), "front": i in front,
             "title": f"{_label(flat[i], i)}: {xk} {_num(a)}, {yk} {_num(b)}"} for i, (a, b) in enumerate(zip(xs, ys))]
    fr = sorted(front, key=lambda i: (xs[i], ys[i]))
    line = " ".join(f"{sx(xs[i]):.1f},{sy(ys[i]):.1f}" for i in fr)
    ticks_x = [{"pos": sx(v), "label": _num(v)} for v in _ticks(x_lo, x_hi)]
    ticks_y = [{"pos": sy(v), "label": _num(v)} for v in _ticks(y_lo, y_hi)]
    return {"w": w, "h": h, "left": L, "right": w - R, "top": Tm, "bottom": h - B, "x_key": xk, "y_key": yk,
            "dots": dots, "front_line": line, "ticks_x": ticks_x, "ticks_y": ticks_y, "n": len(flat),
            "n_front": len(front),
            "front_rows": [{"label": _label(flat[i], i), "x": _num(xs[i]), "y": _num(ys[i])} for i in fr]}


# ---------------------------------------------------------------------------------------------- helpers
def _settings(config, est) -> list[tuple[str, str]]:
    rows = [("part", est.part), ("family", est.family)]
    if getattr(config, "board", None):
        rows.append(("board", config.board))
    for k in ("io_type", "strategy", "reuse_factor", "clock_period", "default_precision"):
        if hasattr(config, k):
            v = getattr(config, k)
            rows.append((k.replace("_", " "), f"{v} ns" if k == "clock_period" else str(v)))
    return rows


def _utilization(total: dict, available: dict | None) -> list[dict]:
    if not available:
        return []
    out = []
    for r in RESOURCES:
        av = available.get(r)
        if not av:
            continue
        used = total.get(r, 0)
        pct = 100.0 * used / av
        out.append({"name": r, "used": _num(used), "available": _num(av), "pct": f"{pct:.1f}",
                    "width": f"{min(pct, 100.0):.2f}", "level": "over" if pct > 100 else "high" if pct > 80 else "ok"})
    return out


def _verification(v: dict | None) -> dict | None:
    if not v:
        return None
    outs = []
    for o in v.get("outputs", []):
        acc = o.get("accuracy")
        outs.append({"name": o.get("name", "?"), "type": o.get("type", "?"), "samples": o.get("samples", 0),
                     "exact": _pct(o.get("exact_match")), "max_lsb": _num(o.get("max_lsb")),
                     "argmax": _pct(o.get("argmax_agreement")), "accuracy": _pct(acc) if acc is not None else "",
                     "reference_accuracy": _pct(o.get("reference_accuracy")) if o.get("reference_accuracy")
                     is not None else "",
                     "passed": bool(o.get("passed")), "message": o.get("message", "")})
    return {"passed": bool(v.get("passed")), "backend": v.get("backend", "?"), "reference": v.get("reference", "?"),
            "tolerance": v.get("tolerance", "?"), "note": v.get("note", ""), "timestamp": v.get("timestamp", ""),
            "seconds": _num(v.get("seconds", 0)), "outputs": outs}


def read_json(p: Path):
    """A JSON file's content, or None when it is missing or unreadable."""
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _flatten(p: dict) -> dict:
    out = {}
    for k, v in p.items():
        if isinstance(v, dict) and k in ("total", "estimate", "resources"):
            out.update({k2: v2 for k2, v2 in v.items() if k2 not in out})
        else:
            out[k] = v
    return out


def _label(p: dict, i: int) -> str:
    for k in ("label", "name", "key", "id"):
        if p.get(k) is not None:
            return str(p[k])
    bits = [f"{k}={p[k]}" for k in ("reuse_factor", "strategy", "precision") if p.get(k) is not None]
    return ", ".join(bits) or f"point {i}"


def _isnum(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _span(vals):
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return lo - 1, hi + 1
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


def _ticks(lo, hi, n=5):
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def _num(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            v = int(v)
        else:
            return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}"


def _pct(v) -> str:
    return "" if v is None else f"{100 * float(v):.2f} %"


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"
