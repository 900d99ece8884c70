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
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--exhaustive", action="store_true")
    args = ap.parse_args(argv)

    from qmodels import qmlp
    from fpga_gen.frontend.loader import import_tf
    import_tf()
    from fpga_gen.sweep import fit, prepare
    from fpga_gen.sweep.run import _profile

    tmp = Path(tempfile.mkdtemp(prefix="bench-fit-"))
    path = tmp / "mlp_16_64_32_32_5.h5"
    qmlp([16, 64, 32, 32, 5], bits=6, softmax=True, seed=0).save(path)

    t_prep, t_fit, t_mat = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ev, _ = prepare(str(path), args.board)
        t1 = time.perf_counter()
        res, point = fit(ev, budget=args.budget)
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
          f"budget {args.budget}")
    print(f"time (median of {args.repeat}): load+frontend {med(t_prep) * 1e3:.0f} ms, fit {med(t_fit) * 1e3:.0f} ms "
          f"({len(res.rows)} designs, {len(res.rows) / med(t_fit):,.0f}/s), materialise {med(t_mat) * 1e3:.1f} ms; "
          f"total {total:.3f} s (target < 2 s: {'met' if total < 2 else 'MISSED'})")
    print(f"chosen: II {best['ii_cycles']}, latency {best['latency_cycles']} cycles, DSP {best['DSP']}, "
          f"LUT {best['LUT']:,}, FF {best['FF']:,}, BRAM_18K {best['BRAM_18K']} [{best['layers']}], "
          f"{best['budget_use'] * 100:.0f} % of the tightest budget")
    for label, b in (("device bound (DSP + LUT multipliers)", res.bound),
                     ("estimator bound (narrow products in LUTs, minus the floor)", res.bound_model)):
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
        prof, _ = _profile(ev, (ev.base.default_precision.cpp(), None), layers, ("latency", "resource"))
        opts = []
        for name, _, _ in layers:
            seen, keep = set(), []
            for s, rf, row in prof[name]:
                sig = (row["ii_cycles"], row["DSP"], row["LUT"], row["FF"], row["BRAM_18K"])
                if row["ii_cycles"] < best["ii_cycles"] and sig not in seen:
                    seen.add(sig)
                    keep.append((name, s, rf))
            opts.append(keep)
        from fpga_gen.sweep import Point
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
              + (f", fastest II {min(found)[0]}" if found else " (the chosen design is the fastest that fits)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
