"""Every estimate carries its measured error band; sweeps and --fit take the estimator's error off the budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpga_gen.estimate import estimate
from fpga_gen.estimate.accuracy import _FILE, error_band
from fpga_gen.estimate.model import EstimateError, tool_family
from fpga_gen.ir import FixedType, Graph, Node
from fpga_gen.sweep.space import SweepError, parse_budget, parse_margin


def _graph():
    g = Graph("m")
    g.add(Node("x", "input", [], (8,), types={"result": FixedType(16, 6)}))
    g.inputs.append("x")
    k = np.random.default_rng(0).normal(size=(8, 4)).round(2)
    g.add(Node("fc", "dense", ["x"], (4,), attrs={"n_in": 8, "n_out": 4, "reuse_factor": 1, "strategy": "latency"},
               weights={"kernel": k, "bias": np.zeros(4)},
               types={"result": FixedType(16, 6), "accum": FixedType(16, 6), "weight": FixedType(16, 6),
                      "bias": FixedType(16, 6)}))
    g.outputs = ["fc"]
    return g


def test_accuracy_table_is_leave_one_source_out_and_counts_projects_and_sources():
    t = json.loads(_FILE.read_text())
    loso = t["groups"]["all"]["loso"]
    ins = t["groups"]["all"]["in_sample"]
    assert loso["n"] == ins["n"] >= 20 and loso["sources"] >= 10
    for m in ("DSP", "LUT", "FF", "latency"):
        assert 0 <= loso[m]["median"] <= loso[m]["p90"]


def test_estimate_carries_its_band_per_tool():
    g = _graph()
    for tool in ("vitis", "vivado-2020.1"):
        est = estimate(g, part="xc7z020clg400-1", clock_period=10, tool=tool)
        d = est.to_json()
        band = error_band(tool_family(tool))
        assert d["tool"] == tool_family(tool) and d["error_band"] == band
        assert band["LUT"]["median"] == json.loads(_FILE.read_text())["groups"][band["group"]]["loso"]["LUT"]["median"]
        md = est.to_markdown()
        assert f"LUT {band['LUT']['median']:g} %" in md and "leave-one-source-out" in md
    with pytest.raises(EstimateError, match="unknown tool"):
        estimate(g, part="xc7z020clg400-1", tool="quartus")


def test_vivado_clock_uncertainty_is_smaller_than_vitis():
    from fpga_gen.estimate import DEFAULT
    assert DEFAULT.resolved("7series", "vivado").clock_uncertainty == 0.125
    assert DEFAULT.resolved("7series", "vitis").clock_uncertainty == 0.27


def test_margin_takes_the_estimators_error_off_the_budget():
    avail = {"DSP": 220, "LUT": 53200, "FF": 106400, "BRAM_18K": 280}
    plain = parse_budget("lut=0.5")
    assert plain.limits(avail)["LUT"] == pytest.approx(26600)
    b = parse_budget("lut=0.5", margin="0.25")
    assert b.limits(avail)["LUT"] == pytest.approx(26600 / 1.25)
    assert "margin" in b.text() and "lut +25 %" in b.text()
    med = parse_budget("lut=0.5", margin="median")
    band = error_band("vitis")
    assert med.limits(avail)["LUT"] == pytest.approx(26600 / (1 + band["LUT"]["median"] / 100), rel=1e-3)
    assert "median" in med.text() and med.as_dict["margin"]["kind"].startswith("median")
    assert parse_margin("none") == ((), "none")
    with pytest.raises(SweepError, match="--margin"):
        parse_margin("lots")
