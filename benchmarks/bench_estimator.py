"""Estimator speed: full-model estimates per second for a 16-64-32-32-5 MLP (ReLU, softmax).

    python benchmarks/bench_estimator.py [--seconds 2]

The per-layer weight statistics (zero / power-of-two / CSD-digit counts) are cached per kernel and weight type,
so repeated estimates with other reuse factors, parts or clocks only redo the arithmetic; the benchmark sweeps
the reuse factor to show that.  Target: >= 10,000 estimates/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fpga_gen.config import ProjectConfig  # noqa: E402
from fpga_gen.estimate import estimate  # noqa: E402
from fpga_gen.ir import FixedType, Graph, Node  # noqa: E402


def mlp(sizes=(16, 64, 32, 32, 5), seed=0) -> Graph:
    t = FixedType(16, 6)
    rng = np.random.default_rng(seed)
    g = Graph("mlp")
    g.add(Node("x", "input", [], (sizes[0],), types={"result": t}))
    g.inputs = ["x"]
    prev = "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        k = np.round(rng.normal(0, 0.25, (a, b)) * 1024) / 1024
        k[rng.random((a, b)) < 0.3] = 0.0
        g.add(Node(f"fc{i + 1}", "dense", [prev], (b,), attrs={"n_in": a, "n_out": b},
                   weights={"kernel": k, "bias": np.zeros(b)},
                   types={"result": t, "weight": t, "bias": t, "accum": t}))
        prev = f"fc{i + 1}"
        if i < len(sizes) - 2:
            g.add(Node(f"relu{i + 1}", "activation", [prev], (b,), attrs={"activation": "relu"}, types={"result": t}))
            prev = f"relu{i + 1}"
    g.add(Node("softmax", "softmax", [prev], (sizes[-1],), attrs={"exp_table_size": 1024, "inv_table_size": 1024},
               types={"result": t, "exp_table": FixedType(18, 8, True, "RND", "SAT"),
                      "inv_table": FixedType(18, 8, True, "RND", "SAT"), "accum": FixedType(21, 11),
                      "inv_inp": FixedType(18, 8, True, "RND", "SAT"), "inp_norm": FixedType(15, 5, False)}))
    g.outputs = ["softmax"]
    return g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args(argv)
    g = mlp()
    configs = [ProjectConfig(part="xc7z020clg400-1", reuse_factor=rf, strategy=s, clock_period=5.0)
               for rf in (1, 2, 4, 8, 16) for s in ("latency", "resource")]
    t0 = time.perf_counter()
    estimate(g, configs[0])                    # first call fills the weight-statistics cache
    first = time.perf_counter() - t0
    n = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    while time.perf_counter() - t0 < args.seconds:
        for cfg in configs:
            estimate(g, cfg)
        n += len(configs)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    rate = n / cpu                      # CPU time: what an estimate costs, whatever else the machine runs
    print(f"16-64-32-32-5 MLP: {rate:,.0f} full-model estimates per CPU second ({1e6 / rate:.1f} us each; "
          f"wall clock {n / dt:,.0f}/s; first call with cold cache {1e3 * first:.1f} ms); "
          f"target >= 10,000/s: {'ok' if rate >= 1e4 else 'MISS'}")
    e = estimate(g, configs[0])
    print(f"RF 1 latency strategy on xc7z020 at 5 ns: {e.total}")
    return 0 if rate >= 1e4 else 1


if __name__ == "__main__":
    sys.exit(main())
