"""The sweep driver: convert once, enumerate points, evaluate (resumably) on an executor, filter, rank."""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .. import csim
from ..api import load
from ..api import hls_unsupported
from ..api import Project
from ..boards import load_board
from ..config import IO_TYPES
from ..emulate import Emulator
from ..ir.graph import GraphError
from ..ir.reuse import valid_reuse_factors
from ..ir.types import FixedType, split_top_level
from ..progress import Progress
from .bound import ii_lower_bound
from .evaluate import Evaluator
from .executors import InlineExecutor, LocalExecutor
from .pareto import pareto_front
from .space import (BINDINGS, Budget, Point, SweepError, binding_options, default_reuses, grid_points,
                    layer_entry, parse_budget, per_layer_points, weighted_layers)
from .store import Store
from ..config import IO_TYPES
from ..da.solve import DA_STRATEGY as DA, normalize_strategy
from ..ir.reuse import valid_reuse_factors
import importlib.util

__all__ = ["prepare", "run_sweep", "fit", "split_to_fit", "split_points", "verify", "SweepResult", "Progress",
           "parse_precisions"]

STORE_FILE = "sweep.sqlite"


def parse_precisions(items) -> list[tuple[str, str | None]]:
    """'ap_fixed<16,6>' (default precision) or 'ap_fixed<16,6>/ap_fixed<8,3>' (default / weight precision)."""
    out = []
    for it in items:
        d, _, w = str(it).partition("/")
        out.append((FixedType.parse(d.strip()).cpp(), FixedType.parse(w.strip()).cpp() if w.strip() else None))
    return out


def split_list(text: str | None) -> list[str]:
    """'a,b' -> ['a', 'b'], keeping commas inside <...> (ap_fixed<16,6>,ap_fixed<8,3>)."""
    if not text:
        return []
    return split_top_level(text, "<>")


def prepare(model_or_path, board, config=None, **overrides) -> tuple[Evaluator, object]:
    """Run the frontend once; (Evaluator over the untyped graph, keras model).  Like api.convert without passes."""

    b = load_board(board)
    graph, cfg, model = load(model_or_path, config, board=b.name, **overrides)
    return Evaluator(graph, cfg, b), model


@dataclass
class SweepResult:
    rows: list                       # one dict per point (enumeration order), with key, fits, pareto, util_*
    points: dict                     # key -> Point
    board: str
    available: dict
    budget: Budget
    complete: bool = True
    bound: dict = field(default_factory=dict)          # device bound (bound.py)
    bound_model: dict = field(default_factory=dict)    # the estimator's variant: narrow products in LUTs, floor
    seconds: float = 0.0
    evaluated: int = 0               # evaluated in this run (the rest came from the store)

    @property
    def limits(self) -> dict:
        return self.budget.limits(self.available)

    def fitting(self) -> list:
        return [r for r in self.rows if r.get("fits")]

    def pareto(self) -> list:
        return [r for r in self.rows if r.get("pareto")]

    def best(self) -> dict | None:
        """The fastest design that fits: lowest II, then latency, then the lowest budget use."""
        fit = self.fitting()
        return min(fit, key=lambda r: (r["ii_cycles"], r["latency_cycles"], r["budget_use"], r["key"])) if fit \
            else None

    def smallest(self) -> dict | None:
        ok = [r for r in self.rows if not r["error"] and not r.get("hls_limit")] or \
            [r for r in self.rows if not r["error"]]
        return min(ok, key=lambda r: (r["budget_use"], r["key"])) if ok else None

    def infeasible_message(self) -> str:
        budget = self.budget.text()
        small = self.smallest()
        if small is None:
            errs = sorted({r["error"] for r in self.rows if r["error"]})
            return f"no design of the sweep could be estimated on {self.board}: {errs[0] if errs else 'no points'}"
        lim = self.limits
        r = max(lim, key=lambda k: small[k] / lim[k] if lim[k] else 0)
        av = self.available[r]
        return (f"nothing fits {self.board} within {budget}: the smallest design needs {r} {small[r]:,} "
                f"({100.0 * small[r] / av:.0f} % of {av:,}); try a larger board, io_stream or a narrower precision")

    def ii_ratio(self) -> float | None:
        b, lb = self.best(), self.bound.get("ii")
        return b["ii_cycles"] / lb if b and lb else None

    def summary(self) -> dict:
        best = self.best()
        return {"board": self.board, "budget": self.budget.as_dict, "available": self.available,
                "limits": {k: round(v, 1) for k, v in self.limits.items()}, "complete": self.complete,
                "points": len(self.rows), "fitting": len(self.fitting()), "pareto": len(self.pareto()),
                "best": best, "ii_bound": self.bound, "ii_over_bound": self.ii_ratio(),
                "ii_bound_model": self.bound_model,
                "ii_over_bound_model": (best["ii_cycles"] / self.bound_model["ii"]
                                        if best and self.bound_model.get("ii") else None),
                "seconds": round(self.seconds, 3), "evaluated_this_run": self.evaluated}


def _eval_chunk(evaluator: Evaluator, points: list) -> list:
    return evaluator.evaluate_many(points)


def _profile(ev: Evaluator, precision, layers, strategies, io_type: str = "parallel", bindings=BINDINGS
             ) -> tuple[dict, dict]:
    """Every layer option (strategy, valid rf, binding) costed once: option k of every layer in the same estimate.
    Returns (options per layer: (strategy, rf, mult_impl, row), resources of the layers without options)."""
    g = ev.typed(*precision)
    options = {n: [(s, rf, m) for s in strategies if s != DA or g[n].op in ("dense", "conv2d")
                   for rf in ([1] if s == DA else valid_reuse_factors(i, o))
                   for m in (("auto",) if s == DA else binding_options(ev.base, n, bindings))]
               for n, i, o in layers}
    K = max((len(v) for v in options.values()), default=0)
    prof = {n: [] for n in options}
    fixed: dict = {}
    for k in range(K):
        lay = tuple(layer_entry(n, *options[n][min(k, len(options[n]) - 1)]) for n, _, _ in layers)
        try:
            est = ev.estimate(Point(precision[0], precision[1], io_type, lay))
        except Exception:
            continue
        rows = {L["name"]: L for L in est.layers}
        if not fixed:
            fixed = {r: sum(L[r] for L in est.layers if L["name"] not in options and L["op"] != "dataflow")
                     for r in ("DSP", "LUT", "FF", "BRAM_18K", "URAM")}
        for n, _, _ in layers:
            if k < len(options[n]):
                prof[n].append((*options[n][k], rows[n]))
    return prof, fixed


def enumerate_points(ev: Evaluator, precisions, strategies, reuses, io_types=("parallel",), budget=None,
                     per_layer: bool = True, cap: int = 24, bindings=BINDINGS) -> list[Point]:
    """The global grid (each layer at its configured binding) plus the per-layer search, which also tries the
    multiplier ``bindings`` (mult_impl) on the layers the config leaves at auto (``("auto",)``: never binds)."""
    for io in io_types:
        if io not in IO_TYPES:
            raise SweepError(f"io type {io!r}: use parallel and/or stream")
    strategies = [normalize_strategy(s) for s in strategies]
    for s in strategies:
        if s not in ("latency", "resource", DA):
            raise SweepError(f"strategy {s!r}: use latency, resource and/or distributed_arithmetic (da)")
    layers = ev.layers()
    reuses = list(reuses) if reuses else default_reuses(layers)
    for r in reuses:
        if int(r) < 1:
            raise SweepError(f"reuse factor {r} must be a positive integer")
    pts = []
    for io in dict.fromkeys(io_types):
        pts += grid_points(layers, precisions, strategies, reuses, io_type=io,
                           bindings={n: ev.base.layer_mult_impl(n) for n, _, _ in layers})
        if per_layer and layers:
            for prec in precisions:
                prof, fixed = _profile(ev, prec, layers, strategies, io, bindings)
                pts += per_layer_points(prof, layers, prec, strategies, ev.available, budget or parse_budget(None),
                                        cap, io_type=io, fixed=fixed)
    return pts


def run_sweep(ev: Evaluator, precisions=None, strategies=("latency", "resource"), reuses=None,
              io_types=("parallel",), budget=None, out_dir=None, executor=None, per_layer: bool = True,
              cap: int = 24, progress: bool = False, max_new: int | None = None, chunk: int | None = None,
              bindings=BINDINGS) -> SweepResult:
    """Evaluate the design space; ``out_dir`` keeps the SQLite store (resumable), ``max_new`` stops after that many
    new evaluations (the result is then marked incomplete); ``bindings``: the multiplier bindings the per-layer
    search tries (see :func:`enumerate_points`)."""
    t0 = time.perf_counter()
    budget = budget if isinstance(budget, Budget) else parse_budget(budget)
    precisions = precisions or [(ev.base.default_precision.cpp(), None)]
    points = enumerate_points(ev, precisions, strategies, reuses, io_types, budget, per_layer, cap, bindings)
    ctx = ev.context
    by_key: dict = {}
    for p in points:
        by_key.setdefault(p.key(ctx), p)
    keys = list(by_key)
    store = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        store = Store(Path(out_dir) / STORE_FILE)
    else:
        store = Store(None)
    try:
        done = store.done(keys)
        todo = [k for k in keys if k not in done]
        if max_new is not None:
            todo = todo[:max_new]
        executor = executor or InlineExecutor()
        if len(todo) < getattr(executor, "inline_below", 0):
            executor = InlineExecutor()
        size = chunk or max(8, min(256, len(todo) // (8 * getattr(executor, "workers", 1) or 1) or 8))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        try:
            with Progress(len(todo), "sweep", enabled=None if progress else False) as bar:
                for i, rows in executor.map(_eval_chunk, ev, [[by_key[k] for k in c] for c in chunks]):
                    store.put(zip(chunks[i], rows))
                    bar.update(len(rows))
        except KeyboardInterrupt:
            if store.path is not None:      # every finished chunk is committed: a rerun continues from here
                print(f"sweep: interrupted; {store.count()} of {len(keys)} designs kept in {store.path}; "
                      f"run the same command again to resume", file=sys.stderr)
            raise
        stored = store.get(keys)
    finally:
        store.close()
    rows = []
    for k in keys:
        if k in stored:
            rows.append({"key": k, **stored[k], "search": by_key[k].search})
    res = SweepResult(rows, {k: by_key[k] for k in keys}, ev.board_name, ev.available, budget,
                      complete=len(rows) == len(keys), evaluated=len(todo))
    _rank(res)
    if rows:
        best = res.best()           # the bound of the chosen design's precision (widths set the multiplier costs)
        g, _ = ev.configure(by_key[best["key"] if best else keys[0]])
        res.bound = ii_lower_bound(g, ev.part, res.limits)
        ok = [r for r in rows if not r["error"]]
        floor = {k: min(r[k] for r in ok) for k in ("DSP", "LUT")} if ok else {}
        res.bound_model = ii_lower_bound(g, ev.part, res.limits, model_rules=True, floor=floor,
                                         dsp_binding="dsp" in bindings)
    res.seconds = time.perf_counter() - t0
    return res


def _rank(res: SweepResult) -> None:
    lim = res.limits
    for r in res.rows:
        ok = not r["error"]
        for k in lim:
            r[f"util_{k}"] = round(r[k] / res.available[k], 4) if ok else None
        r["budget_use"] = max((r[k] / v for k, v in lim.items() if v), default=0.0) if ok else math.inf
        # a design past Vitis HLS' unroll limits (passes/limits.py) cannot be built, whatever its estimate
        r["fits"] = ok and not r.get("hls_limit") and all(r[k] <= v for k, v in lim.items())
        r["pareto"] = False
    fit = [r for r in res.rows if r["fits"]]
    for i in pareto_front(fit):
        fit[i]["pareto"] = True


def fit(ev: Evaluator, budget=None, executor=None, reuses=None, strategies=None,
        precisions=None, bindings=BINDINGS) -> tuple[SweepResult, Point]:
    """The fastest design that fits the board within the budget; SweepError naming the binding resource if none.
    ``bindings``: the multiplier bindings (mult_impl) the per-layer search may give a layer left at auto.
    ``strategies``: default latency, resource and, when da4ml is installed, distributed_arithmetic."""
    strategies = strategies or default_fit_strategies()
    res = run_sweep(ev, precisions=precisions, strategies=strategies, reuses=reuses, budget=budget,
                    executor=executor, bindings=bindings)
    best = res.best()
    if best is None:
        raise SweepError(res.infeasible_message())
    return res, res.points[best["key"]]


def default_fit_strategies() -> tuple:
    """latency, resource, and distributed_arithmetic when da4ml is installed (fpga_gen/da)."""
    return ("latency", "resource") + ((DA,) if importlib.util.find_spec("da4ml") is not None else ())


def split_points(graph) -> list[str]:
    """Where ``graph`` may be cut into an FPGA head and a fallback tail (one tensor crossing the cut, the head
    free of HLS-unsupported layers), in graph order."""
    names = [n.name for n in graph]
    bad = hls_unsupported(graph)
    last = names.index(bad[0].name) if bad else len(names)
    out = []
    for name in names[:last]:
        try:
            graph.check_split(name)
        except GraphError:
            continue
        out.append(name)
    return out


def split_to_fit(ev: Evaluator, budget=None, executor=None, bindings=BINDINGS):
    """The model cut as late as possible such that the head has a design that fits the budget (the tail runs on
    the CPU/GPU fallback): (split point, the head's SweepResult, a Point of the whole model whose head layers
    are the head's fastest fitting design and whose tail layers keep latency / reuse 1).  SweepError when even
    the first layer does not fit."""
    typed = ev.typed(ev.base.default_precision.cpp(), None)
    # a cut of the frontend's graph (the head's own passes run on it) that is also one of the typed graph (the
    # project splits that): passes may fuse nodes away (batchnorm) or add some (apply_scale)
    in_typed = set(split_points(typed))
    candidates = [at for at in split_points(ev.graph0) if at in in_typed]
    board = SimpleNamespace(name=ev.board_name, part=ev.part, resources=dict(ev.available))
    last_error = None
    for at in reversed(candidates):
        head = ev.graph0.head(at)
        head_names = {n.name for n in head}
        head_ev = Evaluator(head, ev.base.copy(layers={k: v for k, v in ev.base.layers.items() if k in head_names}),
                            board)
        try:
            res, point = fit(head_ev, budget=budget, executor=executor, bindings=bindings)
        except SweepError as e:
            last_error = e
            continue
        tail = [layer_entry(name, "latency", 1, "auto") for name, _, _ in weighted_layers(typed)
                if name not in head_names]
        return at, res, Point(point.precision, point.weight_precision, point.io_type, tuple(point.layers) + tuple(tail),
                              search=point.search)
    if last_error is None:
        raise SweepError(f"{ev.graph0.name}: no layer to split after (every cut would cross a branch or leave the "
                         f"FPGA nothing)")
    raise SweepError(f"even the model up to {candidates[0]!r} alone does not fit: {last_error}")


# ---------------------------------------------------------------------------------------------- verification

def _verify_one(ev: Evaluator, job) -> dict:
    """Write the point's project and C-simulate it on x; runs in a worker process."""
    point, x, directory = job
    g, cfg = ev.materialize(point)
    project = Project(g, cfg)
    project.write(directory, force=True)
    t = time.perf_counter()
    y = csim.predict(project.directory, x)
    return {"y": y, "seconds": time.perf_counter() - t}


def verify(ev: Evaluator, result: SweepResult, n: int, x, labels=None, out_dir=None, executor=None) -> list:
    """Build and C-simulate the best ``n`` fitting designs (fastest first) in parallel; each one's agreement with
    the emulator of the unmodified model (the base config) and, with labels, its accuracy."""

    fit = sorted(result.fitting(), key=lambda r: (r["ii_cycles"], r["latency_cycles"], r["budget_use"], r["key"]))
    chosen = fit[:n]
    if not chosen:
        raise SweepError(result.infeasible_message())
    base_g = ev.typed(ev.base.default_precision.cpp(), None)
    ref = Emulator(base_g).predict(x)
    # absolute: a Dask worker's working folder is not ours (on another host it is its own file system)
    root = (Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="fpga-gen-verify-"))).resolve()
    jobs = [(result.points[r["key"]], x, str(root / "designs" / r["key"])) for r in chosen]
    executor = executor or LocalExecutor(workers=min(len(jobs), os.cpu_count() or 1))
    out = [None] * len(jobs)
    for i, res in executor.map(_verify_one, ev, jobs):
        y = np.asarray(res["y"], dtype=np.float64).reshape(len(x), -1)
        r = np.asarray(ref, dtype=np.float64).reshape(len(x), -1)
        item = {"key": chosen[i]["key"], "layers": chosen[i]["layers"], "precision": chosen[i]["precision"],
                "ii_cycles": chosen[i]["ii_cycles"], "project": jobs[i][2],
                "exact_match": float(np.mean(np.all(y == r, axis=1))),
                "argmax_agreement": float(np.mean(y.argmax(1) == r.argmax(1))),
                "csim_seconds": round(res["seconds"], 3)}
        if labels is not None:
            lab = np.asarray(labels).reshape(len(x), -1)
            lab = lab.argmax(1) if lab.shape[1] > 1 else lab[:, 0]
            item["accuracy"] = float(np.mean(y.argmax(1) == lab))
            item["reference_accuracy"] = float(np.mean(r.argmax(1) == lab))
        out[i] = item
    return out
