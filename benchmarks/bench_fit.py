"""Auto-fit of a 16-64-32-32-5 QKeras 6-bit MLP to pynq-z2: how long it takes and how close the design is to the
board's limit.

    python benchmarks/bench_fit.py [--board pynq-z2] [--budget dsp=0.8,lut=0.7,ff=0.7,bram=0.8] [--exhaustive]

Timed: (1) load + frontend of the saved .h5 once (TensorFlow already imported, as in a running CLI), (2) the fit
itself (enumerate, estimate every point, budget filter, pick the fastest), (3) materialising the chosen design
(graph copy + config, ready to write).  Targets: (1)+(2)+(3) < 2 s; chosen II within 1.25x the II lower bound.

Two lower bounds (fpga_gen/sweep/bound.py): the device bound (every product on the budget's DSPs or LUT
multipliers) and the estimator's bound (products narrower than 10 bits only in LUTs, as the estimator builds them,
after the LUTs/DSPs no design of the sweep can do without).  ``--exhaustive`` also estimates every combination of
per-layer (strategy, reuse) options whose layer II could beat the chosen one, to check that no design the
estimator knows is faster and fits.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--budget", default="dsp=0.8,lut=0.7,ff=0.7,bram=0.8")
    ap.add_argument("--margin", default="median", help="the estimator's error margin (as fpga-gen --fit)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--exhaustive", action="store_true")
    ap.add_argument("--no-binding", action="store_true",
                    help="the per-layer search never binds products to DSPs (mult_impl auto only), as before")
    args = ap.parse_args(argv)

    from qmodels import qmlp
    from fpga_gen.frontend.keras.loader import import_tf
    import_tf()
    from fpga_gen.sweep import fit, parse_budget, prepare
    from fpga_gen.sweep.run import _profile

    tmp = Path(tempfile.mkdtemp(prefix="bench-fit-"))
    path = tmp / "mlp_16_64_32_32_5.h5"
    qmlp([16, 64, 32, 32, 5], bits=6, softmax=True, seed=0).save(path)

    bindings = ("auto",) if args.no_binding else ("auto", "dsp")
    t_prep, t_fit, t_mat = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ev, _ = prepare(str(path), args.board)
        t1 = time.perf_counter()
        res, point = fit(ev, budget=parse_budget(args.budget, args.margin), bindings=bindings)
        t2 = time.perf_counter()
        ev.materialize(point)
        t3 = time.perf_counter()
        t_prep.append(t1 - t0)
        t_fit.append(t2 - t1)
        t_mat.append(t3 - t2)
    best = res.best()
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    total = med(t_prep) + med(t_fit) + med(t_mat)
    print(f"model: QKeras 16-64-32-32-5, 6-bit weights and activations, softmax; board {args.board}, "
          f"budget {parse_budget(args.budget, args.margin).text()}; multiplier bindings tried: {', '.join(bindings)}")
    print(f"time (median of {args.repeat}): load+frontend {med(t_prep) * 1e3:.0f} ms, fit {med(t_fit) * 1e3:.0f} ms "
          f"({len(res.rows)} designs, {len(res.rows) / med(t_fit):,.0f}/s), materialise {med(t_mat) * 1e3:.1f} ms; "
          f"total {total:.3f} s (target < 2 s: {'met' if total < 2 else 'MISSED'})")
    lim = res.limits
    shares = ", ".join(f"{k} {best[k] / v * 100:.0f} %" for k, v in lim.items() if v)
    print(f"chosen: II {best['ii_cycles']}, latency {best['latency_cycles']} cycles, DSP {best['DSP']}, "
          f"LUT {best['LUT']:,}, FF {best['FF']:,}, BRAM_18K {best['BRAM_18K']} [{best['layers']}], "
          f"{best['budget_use'] * 100:.0f} % of the tightest budget (of the budget: {shares})")
    for label, b in (("device bound (DSP + LUT multipliers)", res.bound),
                     ("estimator bound (" + ("any product may be bound to a DSP" if "dsp" in bindings else
                                            "narrow products in LUTs") + ", minus the floor)", res.bound_model)):
        ratio = best["ii_cycles"] / b["ii"] if b.get("ii") else float("nan")
        print(f"{label}: II >= {b.get('ii')} (DSP {b['dsp']:,.0f}, LUT {b['lut']:,.0f} for {b['products']:,} "
              f"products); chosen / bound = {ratio:.2f}x (target <= 1.25x: {'met' if ratio <= 1.25 else 'MISSED'})")
    near = [r for r in res.rows if not r["error"] and r["ii_cycles"] < best["ii_cycles"]]
    if near:
        closest = min(near, key=lambda r: r["budget_use"])
        worst = max(res.limits, key=lambda k: closest[k] / res.limits[k])
        print(f"the cheapest faster design (II {closest['ii_cycles']}) needs {worst} {closest[worst]:,} "
              f"= {closest[worst] / res.limits[worst] * 100:.1f} % of the budget [{closest['layers']}]")

    if args.exhaustive:
        layers = ev.layers()
        prof, _ = _profile(ev, (ev.base.default_precision.cpp(), None), layers, ("latency", "resource"),
                           bindings=bindings)
        from fpga_gen.sweep import Point
        from fpga_gen.sweep.space import layer_entry

        def options(faster: bool):
            opts = []
            for name, _, _ in layers:
                seen, keep = set(), []
                for s, rf, m, row in prof[name]:
                    sig = (row["ii_cycles"], row["latency_cycles"], row["DSP"], row["LUT"], row["FF"],
                           row["BRAM_18K"])
                    ok = row["ii_cycles"] < best["ii_cycles"] if faster else row["ii_cycles"] <= best["ii_cycles"]
                    if ok and sig not in seen:
                        seen.add(sig)
                        keep.append(layer_entry(name, s, rf, m))
                opts.append(keep)
            return opts
        opts = options(True)
        n = 0
        t0 = time.perf_counter()
        found = []
        lim = res.limits
        for combo in itertools.product(*opts):
            p = Point(ev.base.default_precision.cpp(), None, "parallel", tuple(combo))
            t = ev.estimate(p).total
            n += 1
            if all(t[k] <= v for k, v in lim.items()):
                found.append((t["ii_cycles"], combo))
        print(f"exhaustive check: {n:,} per-layer combinations with every layer II < {best['ii_cycles']} estimated "
              f"in {time.perf_counter() - t0:.1f} s; {len(found)} fit"
              + (f", fastest II {min(found)[0]}" if found else " (no faster design fits)"))
        # at the chosen II: is any fitting combination of lower latency?
        n, t0, lower = 0, time.perf_counter(), []
        for combo in itertools.product(*options(False)):
            t = ev.estimate(Point(ev.base.default_precision.cpp(), None, "parallel", tuple(combo))).total
            n += 1
            if all(t[k] <= v for k, v in lim.items()) and (t["ii_cycles"], t["latency_cycles"]) < (
                    best["ii_cycles"], best["latency_cycles"]):
                lower.append((t["ii_cycles"], t["latency_cycles"], Point("", None, "", tuple(combo)).layers_text()))
        print(f"exhaustive check at II <= {best['ii_cycles']}: {n:,} combinations in {time.perf_counter() - t0:.1f} s; "
              + (f"{len(lower)} fit with a lower (II, latency); best {min(lower)}" if lower else
                 f"none that fits has a lower (II, latency) than the chosen design"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
