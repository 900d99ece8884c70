"""Distributed arithmetic: the estimator's LUT count of a DA layer against yosys synth_xilinx, and DA vs Latency.

    python benchmarks/bench_da.py [--layers 24] [--models] [--json out.json]

(1) ``--layers N`` random small dense layers (2-16 inputs, 1-16 outputs, 2-8-bit weights, 20 % pruned, signed or
unsigned 4-10-bit inputs): each solved by da4ml, its Verilog synthesized by yosys (``synth_xilinx -family xc7``),
the estimator's LUT (fpga_gen.da.estimate) against yosys' LUT; median and max |error| printed.
(2) ``--models``: the layers of the 16-64-32-32-5 6-bit jet MLP (benchmarks/bench_fit.py's model) and of a
16-24-12-5 MLP, with codegen (solve) time, estimated and yosys LUT/FF/CARRY/DSP, and the Latency strategy's
estimate of the same layer.  Yosys takes minutes on the 64x32 layers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from fpga_gen.da.estimate import da_layer_cost  # noqa: E402
from fpga_gen.da.solve import solve_dense  # noqa: E402
from fpga_gen.da.synth import synth_layer  # noqa: E402
from fpga_gen.ir import FixedType  # noqa: E402

PART = "xc7z020clg400-1"


def random_layer(rng):
    n_in, n_out = int(rng.integers(2, 17)), int(rng.integers(1, 17))
    bits = int(rng.integers(2, 9))
    wt = FixedType(bits, 1)
    w = rng.integers(wt.raw_min, wt.raw_max + 1, size=(n_in, n_out)) * wt.step
    w[rng.random(w.shape) < 0.2] = 0
    b = rng.integers(-8, 8, size=n_out) * 0.125
    signed = bool(rng.integers(2))
    width = int(rng.integers(4, 11))
    xt = FixedType(width, int(rng.integers(1, 4)) + signed, signed)
    return w, b, xt


def measure(name, w, b, xt):
    t = time.perf_counter()
    comb = solve_dense(w, b, xt)
    t_solve = time.perf_counter() - t
    est = da_layer_cost(comb)
    t = time.perf_counter()
    syn = synth_layer(comb, name, PART)
    t_syn = time.perf_counter() - t
    return {"name": name, "shape": list(w.shape), "input": xt.cpp(), "da4ml_cost": comb.cost,
            "est_LUT": est["LUT"], "yosys_LUT": syn["LUT"], "yosys_FF": syn["FF"], "yosys_CARRY": syn["CARRY"],
            "yosys_DSP": syn["DSP"], "solve_s": round(t_solve, 3), "yosys_s": round(t_syn, 1),
            "err": est["LUT"] / syn["LUT"] - 1 if syn["LUT"] else 0.0}


def model_layers(sizes, bits, seed):
    """The dense layers of the QKeras MLP qmodels.qmlp(sizes, bits) as converted (input types included)."""
    from qmodels import qmlp

    from fpga_gen import convert
    project = convert(qmlp(list(sizes), bits=bits, act="quantized_relu", softmax=True, seed=seed), strategy="da")
    g = project.graph
    return [(n.name, n.weights["kernel"], n.weights["bias"], g[n.inputs[0]].types["result"])
            for n in g if n.op == "dense"], project


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--models", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rows = []
    rng = np.random.default_rng(args.seed)
    for k in range(args.layers):
        r = measure(f"rand{k}", *random_layer(rng))
        rows.append(r)
        print(f"{r['name']:>8} {str(r['shape']):>9} {r['input']:>16}  cost {r['da4ml_cost']:7.0f}  est {r['est_LUT']:6d}"
              f"  yosys {r['yosys_LUT']:6d} LUT {r['yosys_CARRY']:5d} CARRY4  err {100 * r['err']:+6.1f} %"
              f"  ({r['solve_s']:.2f} s solve, {r['yosys_s']:.0f} s yosys)", flush=True)
    if rows:
        errs = [abs(r["err"]) for r in rows]
        print(f"random layers: {len(rows)}, median |error| {100 * statistics.median(errs):.1f} %, "
              f"max {100 * max(errs):.1f} %")
    if args.models:
        from fpga_gen.estimate import estimate
        # the jet MLP exactly as benchmarks/bench_fit.py builds it (seed 0), then a smaller one
        for sizes, bits, seed in (((16, 64, 32, 32, 5), 6, 0), ((16, 24, 12, 5), 6, 4)):
            layers, project = model_layers(sizes, bits, seed)
            from qmodels import qmlp

            from fpga_gen import convert
            latp = convert(qmlp(list(sizes), bits=bits, act="quantized_relu", softmax=True, seed=seed),
                           strategy="latency")
            lat = estimate(latp.graph, latp.config, part=PART)
            lat_rows = {r["name"]: r for r in lat.layers}
            for name, w, b, xt in layers:
                r = measure(f"{'-'.join(map(str, sizes))}_{name}", w, b, xt)
                r["latency_strategy_est"] = {k: lat_rows[name][k] for k in ("LUT", "FF", "DSP")} if name in lat_rows else None
                rows.append(r)
                print(json.dumps(r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
