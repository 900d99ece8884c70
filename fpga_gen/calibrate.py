"""Calibration: choose a float model's fixed-point types from the ranges it shows on real inputs.

    project = fpga_gen.convert("model.h5", calibrate=x_train)      # or calibrate="x_train.npy"
    fpga-gen build model.h5 --calibrate x_train.npy [--headroom-bits 1]

1. :func:`profile` runs the float graph (:mod:`fpga_gen.emulate.float_ref`, the frontend's graph with
   its float weights) on the data and records per node the observed min and max.
2. The :class:`~fpga_gen.passes.calibrate.Calibrate` pass turns them into types at the configured
   width (rules and headroom in its docstring); explicit config settings and quantizers win.
3. :class:`Calibration` reports, per tensor, the observed range, the chosen type, where the type
   came from (calibrated, config, quantizer, derived) and whether it holds the range: a table in
   the project's report.md, calibration.json, and a summary printed by the command line.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .emulate.float_ref import float_forward
from .ir.graph import Graph
from .ir.types import FixedType

__all__ = ["CalibrationError", "Calibration", "load_calibration_data", "check_calibration_data", "profile"]


class CalibrationError(ValueError):
    """Calibration data that cannot be used; one line naming the file and the fix."""


def load_calibration_data(data, graph: Graph, source: str | None = None) -> np.ndarray:
    """A path to a .npy file or an array -> float64 array (N, *input shape), checked."""
    if isinstance(data, (str, Path)):
        p = Path(data)
        source = str(p)
        if not p.is_file():
            raise CalibrationError(f"{p}: calibration data file not found")
        try:
            data = np.load(p, allow_pickle=False)
        except Exception as e:
            raise CalibrationError(f"{p}: cannot read the calibration data as a .npy array ({type(e).__name__}); "
                                   f"save it with numpy.save") from None
    return check_calibration_data(data, graph, source or "calibration data")


def check_calibration_data(x, graph: Graph, source: str) -> np.ndarray:
    (name,) = graph.inputs
    shape = tuple(graph[name].shape)
    expected = f"(N, {', '.join(map(str, shape))})"
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise CalibrationError(f"{source}: calibration data has dtype {x.dtype}; expected numbers of shape "
                               f"{expected} for input {name!r}")
    if x.shape[1:] != shape:
        raise CalibrationError(f"{source}: calibration data has shape {x.shape}; expected {expected} for input "
                               f"{name!r}")
    if x.shape[0] == 0:
        raise CalibrationError(f"{source}: calibration data holds no samples; expected {expected} with N >= 1")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise CalibrationError(f"{source}: calibration data contains NaN or Inf; clean it first")
    return x


def profile(graph: Graph, x: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per node: (min, max) of its float value over the batch (api.convert profiles the graph after batchnorm
    fusion, see :mod:`fpga_gen.passes.calibrate`)."""
    values = float_forward(graph, x)
    return {name: (float(v.min()), float(v.max())) for name, v in values.items()}


@dataclass
class Calibration:
    """What calibration observed and chose; ``rows`` filled by :meth:`describe` once the graph is typed."""

    samples: int
    headroom_bits: int
    ranges: dict
    source: str = "calibration data"
    rows: list = field(default_factory=list)
    fused: dict = field(default_factory=dict)       # layer -> the batchnorm folded into it (filled by describe)

    def describe(self, graph: Graph, config) -> "Calibration":
        """One row per (node, slot) among result, weight, bias, accum: observed range, type, origin."""
        rows = []
        self.fused = {n.name: n.meta["fused_batchnorm"] for n in graph if "fused_batchnorm" in n.meta}
        for node in graph:
            if node.name not in self.ranges:
                continue
            calibrated = set(node.meta.get("calibrated", ()))
            explicit = set(config.layer_precision(node.name))
            if "result" in config.layer_precision(self.fused.get(node.name, node.name)):
                explicit.add("result")                  # set on the folded batchnorm: its output's type
            if node.op == "input" and config.input_precision is not None:
                explicit.add("result")
            for slot in ("result", "weight", "scale", "bias", "accum"):
                t = node.types.get(slot)
                if t is None:
                    continue
                if slot in ("weight", "scale", "bias"):
                    v = node.weights["kernel" if slot == "weight" else slot]
                    lo, hi = float(v.min(initial=0)), float(v.max(initial=0))
                else:
                    lo, hi = self.ranges[node.name]
                if slot in explicit:
                    origin = "config"
                elif slot in calibrated:
                    origin = "calibrated"
                elif slot == "accum" and "calibrated_accum_integer" in node.meta:
                    origin = "calibrated"
                elif node.meta.get({"weight": "kernel_quantizer", "bias": "bias_quantizer"}.get(slot, "quantizer")):
                    origin = "quantizer"
                else:
                    origin = "derived"
                rows.append({"layer": node.name, "op": node.op, "slot": slot, "min": lo, "max": hi,
                             "type": t.cpp(), "type_min": t.min, "type_max": t.max,
                             "holds": bool(t.min <= lo and hi <= t.max), "origin": origin})
        self.rows = rows
        return self

    def as_config(self, config):
        """``config`` with every calibrated type written in as an explicit setting (``input_precision``,
        ``layers.<name>.precision.<slot>``): a copy that reproduces the calibrated types without the data
        (what ``build --fit --calibrate`` hands the sweep).  The result type of a layer that a batchnorm was
        folded into is written as that batchnorm's result type, so the batchnorm folds again."""

        cfg = copy.deepcopy(config)
        for r in self.rows:
            if r["origin"] != "calibrated":
                continue
            t = FixedType.parse(r["type"])
            if r["op"] == "input":
                cfg.input_precision = t
            else:
                # a folded layer's result is its batchnorm's output: written there, so that the batchnorm still
                # folds (a result type set on the dense/conv itself would keep it a layer, see FuseBatchNorm)
                layer = self.fused.get(r["layer"], r["layer"]) if r["slot"] == "result" else r["layer"]
                cfg.layers.setdefault(layer, {}).setdefault("precision", {})[r["slot"]] = t
        return cfg.validate()

    def to_json(self) -> dict:
        return {"samples": self.samples, "headroom_bits": self.headroom_bits, "source": self.source,
                "tensors": self.rows}

    def write_json(self, path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        return p

    def to_markdown(self) -> str:
        lines = [f"## Calibration\n",
                 f"{self.samples} samples from {self.source}; headroom {self.headroom_bits} integer bit(s) above "
                 f"the observed range (see fpga_gen/passes/calibrate.py). Weights and biases: the range of their "
                 f"values. 'holds': the type's range contains the observed range.\n",
                 "| layer | op | tensor | observed min | observed max | type | type range | origin | holds |",
                 "|---|---|---|---:|---:|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {r['layer']} | {r['op']} | {r['slot']} | {r['min']:.6g} | {r['max']:.6g} | "
                         f"`{r['type']}` | [{r['type_min']:.6g}, {r['type_max']:.6g}] | {r['origin']} | "
                         f"{'yes' if r['holds'] else '**no**'} |")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """A few lines for the terminal: the calibrated and overridden result types."""
        res = [r for r in self.rows if r["slot"] == "result" and r["origin"] in ("calibrated", "config")]
        n_cal = sum(r["origin"] == "calibrated" for r in self.rows)
        n_cfg = sum(r["origin"] == "config" for r in self.rows)
        miss = [f"{r['layer']}.{r['slot']}" for r in self.rows if not r["holds"]]
        head = (f"calibrated on {self.samples} samples (headroom {self.headroom_bits} bit(s)): {n_cal} types chosen, "
                f"{n_cfg} set by the config")
        body = [f"  {r['layer']:<16s} [{r['min']:.4g}, {r['max']:.4g}] -> {r['type']} ({r['origin']})" for r in res]
        tail = [f"  does not hold the observed range: {', '.join(miss)}"] if miss else []
        return "\n".join([head] + body + tail)
