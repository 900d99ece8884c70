"""Evaluate design points: the frontend runs once, every point re-runs only the passes it needs on a copy.

An :class:`Evaluator` holds the untyped graph (straight from the frontend), the base config and the board.  A
precision needs the passes again (InferPrecision types the graph from the frontend's weights), so the typed graph
is made once per (precision, weight precision) and cached; a (strategy, reuse) assignment only re-applies
ApplyReuse to that cached graph (it sets two attributes per layer) before the estimate.  An Evaluator pickles, so
process pools and Dask workers get one copy each and evaluate chunks of points.
"""

from __future__ import annotations

import copy
import hashlib
import json

from ..estimate import RESOURCES, estimate
from ..ir.graph import deterministic_npz
from ..ir.types import FixedType
from ..passes import DEFAULT_PASSES, ApplyDistributedArithmetic, ApplyReuse, CheckHlsLimits, run_passes
from .space import Point, weighted_layers

__all__ = ["Evaluator", "METRICS"]

METRICS = RESOURCES + ("latency_cycles", "ii_cycles")


class Evaluator:
    def __init__(self, graph, base_config, board):
        self.graph0 = graph                 # untyped: as the frontend made it (never modified)
        self.base = base_config
        self.board_name = board.name
        self.part = board.part
        self.available = {r: int(board.resources.get(r, 0)) for r in RESOURCES}
        self._typed = {}
        self._reuse = ApplyReuse()
        self._da = ApplyDistributedArithmetic()
        self._limits = CheckHlsLimits()

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_typed"] = {}
        return d

    @property
    def context(self) -> str:
        """What the results depend on besides the point: the model, the base config, the board."""
        if not hasattr(self, "_context"):
            h = hashlib.sha256()
            h.update(json.dumps(self.graph0.to_json_dict(), sort_keys=True, default=str).encode())
            h.update(deterministic_npz(self.graph0.weight_arrays()))
            cfg = {k: v for k, v in self.base.to_dict().items() if k != "name"}
            h.update(json.dumps([cfg, self.board_name, self.part], sort_keys=True, default=str).encode())
            self._context = h.hexdigest()[:16]
        return self._context

    def layers(self) -> list:
        return weighted_layers(self.typed(self.base.default_precision.cpp(), None))

    def typed(self, precision: str, weight_precision: str | None):
        """The graph typed for this precision (cached; strategy/reuse attributes are set per evaluation)."""
        k = (precision, weight_precision)
        g = self._typed.get(k)
        if g is None:
            layers = {n: {kk: vv for kk, vv in v.items() if kk not in ("strategy", "reuse_factor")}
                      for n, v in self.base.layers.items()}
            if weight_precision:
                for name, _, _ in weighted_layers(self.graph0):
                    layers.setdefault(name, {}).setdefault("precision", {})["weight"] = FixedType.parse(
                        weight_precision)
            cfg = self.base.copy(default_precision=FixedType.parse(precision), strategy="latency", reuse_factor=1,
                                 layers={n: v for n, v in layers.items() if v})
            g = copy.deepcopy(self.graph0)
            run_passes(g, cfg, DEFAULT_PASSES)
            self._typed[k] = g
        return g

    def configure(self, point: Point):
        """(typed graph with the point's strategy/reuse applied, its ProjectConfig); the graph is shared."""
        cfg = point.config(self.base)
        g = self.typed(point.precision, point.weight_precision)
        self._reuse.apply(g, cfg)
        self._da.apply(g, cfg)              # distributed-arithmetic layers: solver options, exact accum
        self._limits.apply(g, cfg)          # records designs Vitis HLS cannot unroll (node.meta["hls_limit"])
        return g, cfg

    def estimate(self, point: Point):
        g, cfg = self.configure(point)
        return estimate(g, cfg, part=self.part, board=self.board_name, available=self.available)

    def evaluate(self, point: Point) -> dict:
        """The stored row of one point: its settings and the estimate's totals (or the error)."""
        row = {"precision": point.precision, "weight_precision": point.weight_precision or "",
               "io_type": point.io_type, "strategy": point.strategy, "reuse": point.reuse,
               "layers": point.layers_text(), "search": point.search}
        try:
            t = self.estimate(point).total
            row.update({m: int(t[m]) for m in METRICS})
            row["error"] = ""
            g = self.typed(point.precision, point.weight_precision)
            row["hls_limit"] = next((n.meta["hls_limit"] for n in g if n.meta.get("hls_limit")), "")
        except Exception as e:          # a point the passes or the estimator refuse is a row with its reason
            row.update({m: None for m in METRICS})
            row["error"] = " ".join(str(e).split())
            row["hls_limit"] = ""
        return row

    def evaluate_many(self, points: list) -> list:
        return [self.evaluate(p) for p in points]

    def materialize(self, point: Point):
        """An independent (graph, config) of the point, ready for Project(graph, config).write()."""
        g, cfg = self.configure(point)
        return copy.deepcopy(g), cfg
