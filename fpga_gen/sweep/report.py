"""Sweep outputs: sweep.csv (every point), sweep.json (summary, front, best, bound, rows), pareto.png and a
self-contained report.html (inline SVG chart and tables, no scripts, no network)."""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from pathlib import Path

from .png import scatter_png

__all__ = ["write_outputs"]

COLUMNS = ("key", "precision", "weight_precision", "io_type", "strategy", "reuse", "layers", "search",
           "DSP", "LUT", "FF", "BRAM_18K", "URAM", "latency_cycles", "ii_cycles", "budget_use", "fits", "pareto",
           "hls_limit", "error")


def _clean(v):
    return None if isinstance(v, float) and math.isinf(v) else v


def write_outputs(result, out_dir, verification=None) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    util_cols = [f"util_{k}" for k in result.limits]
    with open(out / "sweep.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(COLUMNS) + util_cols)
        for r in result.rows:
            w.writerow([_clean(r.get(c)) for c in COLUMNS] + [r.get(c) for c in util_cols])
    summary = result.summary()
    doc = {**summary, "pareto_front": [r["key"] for r in result.pareto()], "verification": verification or [],
           "rows": [{k: _clean(v) for k, v in r.items()} for r in result.rows]}
    (out / "sweep.json").write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    _png(result, out / "pareto.png")
    (out / "report.html").write_text(_html(result, summary, verification, out / "pareto.png"))
    return {"csv": out / "sweep.csv", "json": out / "sweep.json", "png": out / "pareto.png",
            "html": out / "report.html"}


def _png(result, path) -> None:
    """pareto.png with matplotlib: every design's II against its largest budget share (%), the budget line,
    the Pareto front and the chosen design labelled; png.py's encoder where matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _png_plain(result, path)
    ok = [r for r in result.rows if not r["error"]]
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    groups = (("over the budget", [r for r in ok if not r["fits"]], "#bbbbbb", 12),
              ("fits", [r for r in ok if r["fits"] and not r["pareto"]], "#5a8cdc", 14),
              ("Pareto front (fits)", [r for r in ok if r["pareto"]], "#149640", 30))
    for label, rows, color, size in groups:
        if rows:
            ax.scatter([100 * r["budget_use"] for r in rows], [max(r["ii_cycles"], 1) for r in rows], s=size,
                       c=color, label=f"{label} ({len(rows)})", edgecolors="none")
    ax.axvline(100, color="#d22", linestyle="--", linewidth=1.2, label=f"budget ({result.budget.text()})"
               if len(result.budget.text()) < 60 else "budget (100 % of the tightest resource)")
    best = result.best()
    if best:
        x, y = 100 * best["budget_use"], max(best["ii_cycles"], 1)
        ax.scatter([x], [y], s=90, c="#dc1e1e", marker="*", label="chosen: fastest that fits", zorder=5)
        ax.annotate(f"II {best['ii_cycles']}, latency {best['latency_cycles']} cycles\n{x:.0f} % of the budget",
                    (x, y), textcoords="offset points", xytext=(8, 8), fontsize=8)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("largest share of the budget used (%, max over resources of estimate / budget)")
    ax.set_ylabel("initiation interval II (cycles, log scale)")
    ax.set_title(f"{len(ok)} designs on {result.board}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _png_plain(result, path) -> None:
    ok = [r for r in result.rows if not r["error"]]
    groups = [([r["budget_use"] for r in ok if not r["fits"]], [r["ii_cycles"] for r in ok if not r["fits"]],
               (200, 200, 200), 2),
              ([r["budget_use"] for r in ok if r["fits"] and not r["pareto"]],
               [r["ii_cycles"] for r in ok if r["fits"] and not r["pareto"]], (90, 140, 220), 2),
              ([r["budget_use"] for r in ok if r["pareto"]], [r["ii_cycles"] for r in ok if r["pareto"]],
               (20, 150, 60), 4)]
    best = result.best()
    if best:
        groups.append(([best["budget_use"]], [best["ii_cycles"]], (220, 30, 30), 6))
    xmax = min(max([r["budget_use"] for r in ok] + [1.2]), 4.0)
    groups = [([min(x, xmax) for x in xs], ys, c, rad) for xs, ys, c, rad in groups]
    scatter_png(path, groups, xlim=(0.0, xmax), vline=1.0)


def _svg(result, w=640, h=400, m=50) -> str:
    ok = [r for r in result.rows if not r["error"]]
    if not ok:
        return "<p>no estimated designs</p>"
    xmax = min(max([r["budget_use"] for r in ok] + [1.2]), 4.0)
    ymax = max(1.0, max(math.log2(max(r["ii_cycles"], 1)) for r in ok))

    def px(x, ii):
        return (m + min(x, xmax) / xmax * (w - 2 * m), h - m - math.log2(max(ii, 1)) / ymax * (h - 2 * m))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="11">',
             f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="#777"/>',
             f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="#777"/>']
    x1, _ = px(1.0, 1)
    parts.append(f'<line x1="{x1:.1f}" y1="{m}" x2="{x1:.1f}" y2="{h - m}" stroke="#d22" stroke-dasharray="4 3"/>'
                 f'<text x="{x1 + 3:.1f}" y="{m + 10}" fill="#d22">budget</text>')
    for k in range(int(ymax) + 1):
        _, y = px(0, 2 ** k)
        parts.append(f'<text x="{m - 6}" y="{y + 4:.1f}" text-anchor="end">{2 ** k}</text>')
    for k in range(0, int(xmax * 4) + 1):
        x, _ = px(k / 4, 1)
        parts.append(f'<text x="{x:.1f}" y="{h - m + 15}" text-anchor="middle">{k * 25}%</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle">largest share of the budget used '
                 f'(max over resources of use / budget)</text>'
                 f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">'
                 f'II (cycles, log scale)</text>')
    best = result.best()
    for r in sorted(ok, key=lambda r: (r["pareto"], r["fits"])):
        x, y = px(r["budget_use"], r["ii_cycles"])
        col = "#1a9641" if r["pareto"] else ("#5a8cdc" if r["fits"] else "#c8c8c8")
        rad = 4 if r["pareto"] else 2.5
        tip = html.escape(f"{r['strategy']} rf {r['reuse']} {r['precision']}: II {r['ii_cycles']}, "
                          f"latency {r['latency_cycles']}, DSP {r['DSP']}, LUT {r['LUT']}, FF {r['FF']}, "
                          f"BRAM {r['BRAM_18K']} [{r['layers']}]")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{rad}" fill="{col}"><title>{tip}</title></circle>')
    if best:
        x, y = px(best["budget_use"], best["ii_cycles"])
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="#d22" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(r, c) -> str:
    v = _clean(r.get(c, ""))
    if c == "budget_use" and isinstance(v, (int, float)):
        return "-" if v == math.inf else f"{100 * v:.0f} %"            # shares as percentages
    return str(v)


def _table(rows, cols) -> str:
    names = {"budget_use": "budget used (max over resources)"}
    head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r, c))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(result, summary, verification, png_path) -> str:
    best = result.best()
    b = result.bound
    cols = ["strategy", "reuse", "precision", "ii_cycles", "latency_cycles", "DSP", "LUT", "FF", "BRAM_18K",
            "budget_use", "layers"]
    front = sorted(result.pareto(), key=lambda r: (r["ii_cycles"], r["latency_cycles"]))
    lim = ", ".join(f"{k} {v:,.0f} of {result.available[k]:,}" for k, v in result.limits.items())
    if best:
        ratio = summary["ii_over_bound"]
        head = (f"<p><b>Fastest fitting design</b>: II {best['ii_cycles']}, latency {best['latency_cycles']} "
                f"cycles, {html.escape(best['precision'])}, {html.escape(best['strategy'])} / reuse "
                f"{html.escape(best['reuse'])} ({html.escape(best['layers'])}), {best['budget_use'] * 100:.0f} % of "
                f"the tightest budget.</p>"
                f"<p>II lower bound from the budget's multipliers (DSP {b.get('dsp', 0):,.0f} + LUT "
                f"{b.get('lut', 0):,.0f} for {b.get('products', 0):,} products): <b>{b.get('ii')}</b>; "
                f"this design is at {ratio:.2f}&times; the bound.</p>" if ratio else "")
        bm = result.bound_model
        if bm.get("ii"):
            head += (f"<p>The estimator's bound (products under 10 bits only in LUTs, after the DSP/LUT floor no "
                     f"design avoids: DSP {bm['dsp']:,.0f}, LUT {bm['lut']:,.0f} left): <b>{bm['ii']}</b>; "
                     f"this design is at {best['ii_cycles'] / bm['ii']:.2f}&times; it. See "
                     f"fpga_gen/sweep/bound.py.</p>")
    else:
        head = f"<p><b>{html.escape(result.infeasible_message())}</b></p>"
    ver = ""
    if verification:
        vcols = [c for c in ("ii_cycles", "precision", "layers", "exact_match", "argmax_agreement", "accuracy",
                             "reference_accuracy", "csim_seconds") if any(c in v for v in verification)]
        ver = "<h2>C-simulation of the best designs</h2>" + _table(verification, vcols)
    png = base64.b64encode(Path(png_path).read_bytes()).decode()
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>fpga-gen sweep: {html.escape(result.board)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} th{{background:#eee}}</style></head><body>
<h1>Design sweep on {html.escape(result.board)}</h1>
<p>{summary['points']} designs estimated ({summary['fitting']} fit, {summary['pareto']} on the Pareto front) in
{summary['seconds']:.2f} s{'' if result.complete else ' &mdash; <b>incomplete: rerun to resume</b>'}.
Budget: {html.escape(lim)}.</p>
{head}
<h2>II against budget use</h2>
{_svg(result)}
<p>Green: Pareto front (II, latency against every resource) among the fitting designs; blue: fits; grey: over
budget; red ring: chosen. The same chart as a PNG:</p>
<img alt="Pareto chart" src="data:image/png;base64,{png}">
{ver}
<h2>Pareto front</h2>
{_table(front, cols)}
<p>Analytic estimates (docs/estimator.md), not synthesis results. All designs: sweep.csv / sweep.json.</p>
</body></html>
"""
