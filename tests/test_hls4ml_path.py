"""``--hls4ml-config`` means what hls4ml meant, and every caller estimates it the same way (issue #21).

* every calibration project's ``hls4ml_config.yml`` loads with its model through ``fpga-gen estimate``, except
  the models the frontend itself cannot read (listed, with the refusal they must still give);
* ``benchmarks/calibrate_estimator.py`` gets exactly the CLI's numbers on each of them;
* reuse factors resolve as hls4ml 1.3 resolves them (values from hls4ml's own ``get_valid_reuse_factors`` /
  ``get_closest_reuse_factor``, run once on this machine), names hls4ml inserts attach to their layer.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest

from fpga_gen.hls4ml_config import (hls4ml_closest_reuse_factor, hls4ml_valid_reuse_factors, plan,
                                    read_hls4ml_config)
from fpga_gen.ir import FixedType, Graph, Node

CAL = Path("/work/shared/calibration")
ROOT = Path(__file__).resolve().parent.parent

# models the frontend refuses (not the config): the CLI must still answer with one line naming the file/layer
FRONTEND_REFUSALS = {
    "lrozzy-model_3.1_hls4ml_prj": "FixedPointQuantizer",
    "minhnguy3n-model_3.1_hls4ml_prj": "FixedPointQuantizer",
    "nrp-model_1_hls4ml_prj": "Keras could not load the model",
    "pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj-37edf6d": "softmax over a 3-d tensor",
    "pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj_20231210-173433": "softmax over a 3-d tensor",
}
# a quick sample in the default suite (dense with _linear entries, io_stream CNN with RF 16 kept under Latency,
# Resource conv RF snapped); all 32 with -m slow
QUICK = ("cestmerneil-hls4ml_LeNet_LeNet_PYNQ-95bec00", "pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj-8e4ac39",
         "chiruichen-ae-root")
ALL = sorted(p.name for p in CAL.iterdir() if p.is_dir()) if CAL.is_dir() else []


def _script():
    spec = importlib.util.spec_from_file_location("calibrate_estimator", ROOT / "benchmarks" / "calibrate_estimator.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cli(argv):
    from fpga_gen.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _check_project(name):
    d = CAL / name
    cs = json.loads((d / "csynth.json").read_text())
    model = next(d / f for f in ("model.h5", "model.keras") if (d / f).is_file())
    rc, out, err = _cli(["estimate", str(model), "--hls4ml-config", str(d / "hls4ml_config.yml"), "--json",
                         "--part", cs["part"], "--clock-period", str(cs["top"]["clock_target_ns"])])
    errors = [ln for ln in err.splitlines() if ln.startswith("fpga-gen: error")]
    if name in FRONTEND_REFUSALS:
        assert rc == 2 and len(errors) == 1 and FRONTEND_REFUSALS[name] in errors[0], err
        return
    assert rc == 0, err
    assert "no layer named" not in err and not errors
    cli_total = json.loads(out)["total"]
    ((_, _, project, _, reason),) = _script().load_projects(CAL, only={name})
    assert reason is None, reason
    script = _script().estimate_project(project)
    assert script.total == cli_total                      # the calibration script's numbers are the CLI's
    assert cli_total["DSP"] >= 0 and cli_total["latency_cycles"] > 0


@pytest.mark.skipif(not CAL.is_dir(), reason="calibration data not present")
@pytest.mark.parametrize("name", QUICK)
def test_calibration_config_loads_through_cli_and_script_agrees(name):
    _check_project(name)


@pytest.mark.slow
@pytest.mark.skipif(not CAL.is_dir(), reason="calibration data not present")
@pytest.mark.parametrize("name", ALL)
def test_every_calibration_config_loads_through_cli_and_script_agrees(name):
    _check_project(name)


@pytest.mark.parametrize("n_in,n_out,rf,closest,first", [
    # hls4ml 1.3 FPGABackend.get_valid_reuse_factors / get_closest_reuse_factor on these sizes
    (9, 8, 64, 72, [1, 3, 9, 18, 36, 72]),
    (32, 5, 64, 32, [1, 2, 4, 8, 16, 32, 160]),
    (16, 64, 3, 2, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]),
    (64, 32, 7, 8, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]),
    (3, 32, 16, 12, [1, 3, 6, 12, 24, 48, 96]),
    (100, 10, 33, 25, [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 500, 1000]),
])
def test_reuse_factor_rule_is_hls4ml_13s(n_in, n_out, rf, closest, first):
    valid = hls4ml_valid_reuse_factors(n_in, n_out)
    assert valid[:len(first)] == first
    assert hls4ml_closest_reuse_factor(valid, rf) == closest


JET = """
Backend: Vivado
Part: xcu250-figd2104-2L-e
ClockPeriod: 5
IOType: io_parallel
HLSConfig:
  Model: {Precision: 'ap_fixed<16,6>', ReuseFactor: 64, Strategy: Latency}
  LayerName:
    input_1: {Precision: {result: 'ap_fixed<16,6>'}}
    fc1: {Precision: {weight: 'ap_fixed<6,1>', bias: 'ap_fixed<6,1>', result: 'ap_fixed<16,6>'}, ReuseFactor: 3, Strategy: Resource}
    fc1_linear: {Precision: 'ap_fixed<16,6>', ReuseFactor: 64}
    relu1: {Precision: {result: 'ap_fixed<7,1>'}, ReuseFactor: 64}
    fc2: {Precision: {weight: 'ap_fixed<6,1>'}, ReuseFactor: 64}
    fc2_linear: {Precision: 'ap_fixed<16,6>'}
    flatten: {Precision: 'ap_fixed<16,6>'}
"""


def _jet_graph():
    rng = np.random.default_rng(0)
    t = FixedType(16, 6)
    g = Graph("jet")
    g.add(Node("input_1", "input", [], (16,), types={"result": t}))
    g.inputs.append("input_1")
    g.add(Node("fc1", "dense", ["input_1"], (32,), attrs={"n_in": 16, "n_out": 32},
               weights={"kernel": rng.normal(size=(16, 32)), "bias": np.zeros(32)}))
    g.add(Node("relu1", "activation", ["fc1"], (32,), attrs={"activation": "relu"}))
    g.add(Node("fc2", "dense", ["relu1"], (5,), attrs={"n_in": 32, "n_out": 5},
               weights={"kernel": rng.normal(size=(32, 5)), "bias": np.zeros(5)}))
    g.outputs = ["fc2"]
    return g


def test_plan_attaches_inserted_names_and_resolves_reuse_per_strategy(tmp_path):
    p = tmp_path / "hls4ml_config.yml"
    p.write_text(JET)
    cfg, pl = plan(read_hls4ml_config(p), _jet_graph())
    # Latency keeps RF 64 on the 32x5 layer although it is no valid Resource reuse factor (the tutorial's case) ...
    assert pl.reuse["fc2"] == 64 and pl.strategy["fc2"] == "latency"
    assert any(n.startswith("fc2: Latency strategy: reuse factor 64 kept") for n in pl.notes)
    # ... Resource snaps the 16x32 layer's 3 to hls4ml's closest valid value (a tie: the smaller, 2)
    assert pl.reuse["fc1"] == 2 and pl.strategy["fc1"] == "resource"
    assert any(n.startswith("fc1: Resource strategy: reuse factor 3 is not valid") and "uses 2" in n
               for n in pl.notes)
    assert cfg.layers["fc1"]["reuse_factor"] == 2
    # the inserted linear nodes and the removed flatten are notes, never errors
    assert any(n.startswith("fc1_linear: hls4ml's linear activation after fc1") for n in pl.notes)
    assert any(n.startswith("flatten: no such node") for n in pl.notes)
    assert cfg.layers["fc1"]["precision"]["result"] == FixedType(16, 6)
    assert cfg.layers["relu1"]["precision"]["result"] == FixedType(7, 1)


def test_per_layer_reports_pair_by_config_number_or_by_content():
    match_layers = _script().match_layers
    ours = [{"name": n, "op": "dense", "DSP": d, "LUT": lut} for n, d, lut in
            (("fc1", 700, 30000), ("fc2", 300, 12000), ("fc3", 20, 900))]
    # Vivado HLS truncated the names: no config number; the suffixes (_0, _1, _0) are no layer order
    reps = [{"function": f"dense_latency_0_0_0_0_0_0_0_0_0_0_0_0_0_{i}", "role": "layer", "DSP": d, "LUT": lut}
            for i, d, lut in ((0, 310, 11000), (1, 21, 1000), (0, 690, 29000))]
    pairs = {L["name"]: r["DSP"] for L, r in match_layers(ours, reps)}
    assert pairs == {"fc1": 690, "fc2": 310, "fc3": 21}
    # with config numbers, hls4ml's layer order decides, even against the counts
    reps = [{"function": f"dense_latency_ap_fixed_16_6_config{c}_s", "role": "layer", "DSP": d, "LUT": lut}
            for c, d, lut in ((6, 700, 30000), (2, 20, 900), (4, 300, 12000))]
    pairs = {L["name"]: r["function"][-3:] for L, r in match_layers(ours, reps)}
    assert pairs == {"fc1": "2_s", "fc2": "4_s", "fc3": "6_s"}


@pytest.mark.slow
@pytest.mark.skipif(not CAL.is_dir(), reason="calibration data not present")
def test_a_project_built_with_hls4mls_types_csims_bit_exact():
    """hls4ml's types, truncated float weights and RF 8 under Latency: the C++ computes what the emulator does."""
    import fpga_gen
    d = CAL / "pominiq-Folder_2_HLS4ML_Vivado_HLS_models_hls4ml_prj-8e4ac39"
    p = fpga_gen.convert(str(d / "model.h5"), hls4ml=str(d / "hls4ml_config.yml"))
    dense = [n for n in p.graph if n.op == "dense"]
    assert dense[0].attrs["reuse_factor"] == 8 and dense[0].types["accum"] == FixedType(16, 6)
    x = np.random.default_rng(0).uniform(-4, 4, size=(64,) + tuple(p.graph[p.graph.inputs[0]].shape))
    assert np.array_equal(p.predict(x, backend="csim"), p.predict(x, backend="emu"))
