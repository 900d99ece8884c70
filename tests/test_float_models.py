"""Plain (unquantized) Keras models: default precision, per-layer overrides, calibration on data.

One float CNN+MLP (Conv2D relu, max and average pooling, Flatten, Dense relu, Dense) made here; the
emulator stays within :func:`fpga_gen.emulate.float_ref.error_bound` of Keras, and the C++ equals
the emulator bit for bit (one compiled project for the calibrated model)."""

import json
import shutil

import numpy as np
import pytest

from fpga_gen import convert, csim
from fpga_gen.calibrate import CalibrationError
from fpga_gen.cli import main
from fpga_gen.emulate.float_ref import error_bound, float_forward
from fpga_gen.frontend import load_graph
from fpga_gen.ir.types import FixedType

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


@pytest.fixture(scope="module")
def model():
    tf = _tf()
    tf.keras.utils.set_random_seed(7)
    L = tf.keras.layers
    return tf.keras.Sequential([
        L.InputLayer(input_shape=(8, 8, 1), name="x"),
        L.Conv2D(4, (3, 3), padding="same", activation="relu", name="conv"),
        L.MaxPooling2D((2, 2), name="maxpool"),
        L.Conv2D(6, (2, 2), padding="valid", name="conv2"),
        L.Activation("relu", name="act"),
        L.AveragePooling2D((3, 3), strides=(1, 1), padding="same", name="avgpool"),
        L.Flatten(name="flat"),
        L.Dense(12, activation="relu", name="fc1"),
        L.Dense(5, name="fc2"),
    ], name="float_cnn")


@pytest.fixture(scope="module")
def data():
    """Digit-like inputs in [0, 16] (like sklearn's digits): outside ap_fixed<16,6>'s reach after a few layers."""
    rng = np.random.default_rng(0)
    return np.round(rng.uniform(0, 16, size=(400, 8, 8, 1)) * 4) / 4


@pytest.fixture(scope="module")
def calibrated(model, data):
    return convert(model, calibrate=data)


def _within_bound(project, model, x):
    ref_graph, _ = load_graph(model)
    bound = error_bound(project.graph, ref_graph, x)[project.graph.outputs[0]]
    keras = model.predict(x.astype(np.float32), verbose=0)
    err = np.abs(project.predict(x) - keras)
    return err, bound.reshape(err.shape) + 1e-5 * (1 + np.abs(keras))      # + float32 rounding in Keras


# ------------------------------------------------------------------------- default precision and overrides
def test_float_layers_take_the_default_precision(model):
    project = convert(model, precision="ap_fixed<18,8>")
    g = project.graph
    assert [n.op for n in g] == ["input", "conv2d", "activation", "pooling", "conv2d", "activation", "pooling",
                                 "dense", "activation", "dense"]
    for name in ("x", "conv", "conv2", "fc1", "fc2"):
        assert g[name].types["result"].cpp() == "ap_fixed<18,8>"
    for name in ("conv", "conv2", "fc1", "fc2"):
        assert g[name].types["weight"].cpp() == g[name].types["bias"].cpp() == "ap_fixed<18,8>"
    assert project.calibration is None


def test_h5_and_saved_model_files_convert_like_the_model(model, data, tmp_path):
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "saved")                      # tf-keras: a SavedModel directory
    ref = convert(model, calibrate=data[:50]).predict(data)
    for path in (tmp_path / "m.h5", tmp_path / "saved"):
        assert np.array_equal(convert(path, calibrate=data[:50]).predict(data), ref), path


def test_per_layer_overrides_for_every_float_layer_kind(model):
    config = {"input_precision": "ap_fixed<12,6>", "layers": {
        "conv": {"precision": {"weight": "ap_fixed<10,2>", "bias": "ap_fixed<8,3>", "accum": "ap_fixed<30,12>",
                               "result": "ap_fixed<14,7>"}},
        "conv_relu": {"precision": "ap_ufixed<10,6>"},
        "maxpool": {"precision": {"result": "ap_ufixed<9,6>"}},
        "avgpool": {"precision": {"accum": "ap_ufixed<20,8>", "result": "ap_ufixed<16,8>"}},
        "fc2": {"precision": {"result": "ap_fixed<20,10,AP_RND_CONV,AP_SAT>"}}}}
    g = convert(model, config=config).graph
    assert g["x"].types["result"].cpp() == "ap_fixed<12,6>"
    assert {s: g["conv"].types[s].cpp() for s in ("weight", "bias", "accum", "result")} == {
        "weight": "ap_fixed<10,2>", "bias": "ap_fixed<8,3>", "accum": "ap_fixed<30,12>", "result": "ap_fixed<14,7>"}
    assert g["conv_relu"].types["result"].cpp() == "ap_ufixed<10,6>"
    assert g["maxpool"].types["result"].cpp() == "ap_ufixed<9,6>"
    assert (g["avgpool"].types["accum"].cpp(), g["avgpool"].types["result"].cpp()) == ("ap_ufixed<20,8>",
                                                                                      "ap_ufixed<16,8>")
    assert g["fc2"].types["result"].cpp() == "ap_fixed<20,10,AP_RND_CONV,AP_SAT>"
    # weights are rounded to the overridden type
    w = g["conv"].weights["kernel"]
    assert np.array_equal(w * 2 ** 8, np.round(w * 2 ** 8))


# ------------------------------------------------------------------------- the float reference and its bound
def test_float_reference_equals_keras(model, data):
    ref_graph, _ = load_graph(model)
    got = float_forward(ref_graph, data)["fc2"]
    keras = model.predict(data.astype(np.float32), verbose=0)
    assert np.abs(got - keras).max() <= 1e-4 * max(1.0, np.abs(keras).max())


def test_default_precision_overflows_where_calibration_does_not(model, data, calibrated):
    plain = convert(model, precision="ap_fixed<16,4>")       # the same width: wraps at 8, the input reaches 16
    err, _ = _within_bound(plain, model, data)
    assert err.max() > 1
    err, bound = _within_bound(calibrated, model, data)
    assert np.all(err <= bound)
    assert err.max() < 0.01


# ------------------------------------------------------------------------- calibration
def test_calibrated_types_hold_every_sample_without_saturation(calibrated, data):
    g = calibrated.graph
    trace = calibrated.emulator().predict(data, trace=True)
    ref_graph, _ = load_graph(calibrated.model)
    floats = float_forward(ref_graph, data)
    bounds = error_bound(g, ref_graph, data)
    for node in g:
        t = node.types["result"]
        v = trace[node.name].reshape(len(data), -1)
        assert (t.min < v.min() or t.min == 0) and v.max() < t.max, (node.name, t, v.min(), v.max())   # no rail
        # and where it is bounded, the fixed-point value is the float value within the bound (no wrap-around)
        assert np.all(np.abs(v - floats[node.name]) <= bounds[node.name] + 1e-9), node.name
    for row in calibrated.calibration.rows:
        assert row["holds"], row
    # calibrated result types keep the configured width
    for name in ("x", "conv", "conv2", "fc1", "fc2"):
        assert g[name].types["result"].width == 16 and g[name].meta["calibrated"]
    # the input [0, 16]: 16 >= 2**4 needs 6 integer bits (sign included), + 1 headroom bit
    assert g["x"].types["result"].cpp() == "ap_fixed<16,7>"


def test_calibration_rules():
    from fpga_gen.passes.calibrate import integer_bits_for_range, integer_bits_for_values
    assert integer_bits_for_range(0, 0.49, 0) == 1
    assert integer_bits_for_range(-1.0, 0.5, 0) == 2            # -1 needs 2**(I-1) > 1
    assert integer_bits_for_range(-3.9, 3.9, 0) == 3
    assert integer_bits_for_range(-3.9, 3.9, 2) == 5
    assert integer_bits_for_values(np.array([0.3, -0.2]), 16) == 1
    # 0.99999 rounds up to 1.0 in ap_fixed<8,1> (7 fraction bits): one more integer bit
    assert integer_bits_for_values(np.array([0.99999]), 8) == 2
    assert integer_bits_for_values(np.array([0.99]), 8) == 1


def test_headroom_bits(model, data, calibrated):
    p0 = convert(model, calibrate=data, headroom_bits=0)
    p2 = convert(model, calibrate=data, headroom_bits=2)
    for name in ("x", "conv", "fc2"):
        i1 = calibrated.graph[name].types["result"].integer
        assert (p0.graph[name].types["result"].integer, p2.graph[name].types["result"].integer) == (i1 - 1, i1 + 1)
    with pytest.raises(ValueError, match="headroom_bits applies to calibration"):
        convert(model, headroom_bits=2)


def test_calibrated_accumulator_keeps_exact_fraction_bits(model, data, calibrated):
    acc_c = calibrated.graph["conv"].types["accum"]
    assert acc_c.frac >= calibrated.graph["x"].types["result"].frac + calibrated.graph["conv"].types["weight"].frac
    assert acc_c.integer == calibrated.graph["conv"].types["result"].integer
    assert acc_c.saturation == "WRAP"


def test_config_overrides_win_over_calibration(model, data):
    config = {"input_precision": "ap_fixed<16,8>",
              "layers": {"fc1": {"precision": {"result": "ap_fixed<16,10>", "weight": "ap_fixed<12,2>"}},
                         "conv": {"precision": {"accum": "ap_fixed<40,14>"}}}}
    p = convert(model, config=config, calibrate=data)
    g = p.graph
    assert g["x"].types["result"].cpp() == "ap_fixed<16,8>"
    assert g["fc1"].types["result"].cpp() == "ap_fixed<16,10>"
    assert g["fc1"].types["weight"].cpp() == "ap_fixed<12,2>"
    assert g["conv"].types["accum"].cpp() == "ap_fixed<40,14>"
    assert g["fc1"].types["bias"].width == 16                       # not overridden: still calibrated
    origin = {(r["layer"], r["slot"]): r["origin"] for r in p.calibration.rows}
    assert origin[("x", "result")] == origin[("fc1", "result")] == origin[("fc1", "weight")] == "config"
    assert origin[("conv", "accum")] == "config"
    assert origin[("fc1", "bias")] == origin[("fc2", "result")] == origin[("conv", "result")] == "calibrated"
    assert origin[("maxpool", "result")] == "derived"


def test_quantized_layers_keep_their_quantizer_types():
    from qmodels import qmlp
    m = qmlp([6, 5, 3], bits=6, act="quantized_relu")
    x = np.random.default_rng(1).uniform(-3, 3, (100, 6))
    q = convert(m, calibrate=x)
    plain = convert(m, input_precision=q.graph["x"].types["result"])
    for node in q.graph:
        if node.op != "input":
            assert node.types == plain.graph[node.name].types, node.name
    origin = {(r["layer"], r["slot"]): r["origin"] for r in q.calibration.rows}
    assert origin[("dense_0", "weight")] == "quantizer" and origin[("x", "result")] == "calibrated"


def test_report_content(calibrated, data, tmp_path):
    cal = calibrated.calibration
    assert cal.samples == len(data) and cal.headroom_bits == 1
    row = next(r for r in cal.rows if (r["layer"], r["slot"]) == ("x", "result"))
    assert (row["min"], row["max"], row["type"], row["origin"], row["holds"]) == (0.0, 16.0, "ap_fixed<16,7>",
                                                                               "calibrated", True)
    assert (row["type_min"], row["type_max"]) == (-64.0, 64 - 2 ** -9)
    md = cal.to_markdown()
    assert md.startswith("## Calibration\n")
    assert f"| x | input | result | 0 | 16 | `ap_fixed<16,7>` | [-64, 63.998] | calibrated | yes |" in md
    assert "| maxpool | pooling | result |" in md
    js = cal.to_json()
    assert set(js) == {"samples", "headroom_bits", "source", "tensors"} and js["tensors"] == cal.rows
    summary = cal.summary().splitlines()
    assert summary[0].startswith(f"calibrated on {len(data)} samples (headroom 1 bit(s)): ")
    assert any(s.strip().startswith("x ") and "ap_fixed<16,7> (calibrated)" in s for s in summary)
    calibrated.write(tmp_path / "prj")
    assert "## Calibration" in (tmp_path / "prj" / "report.md").read_text()
    assert np.array_equal(calibrated.test_vectors(), data[:200])          # the testbench runs on the data
    assert json.loads((tmp_path / "prj" / "calibration.json").read_text()) == json.loads(json.dumps(js))


@needs_gxx
def test_csim_equals_emulator_on_the_calibrated_model(calibrated, data, tmp_path):
    """Narrowed (wrapping) accumulators and calibrated types: the C++ computes what the emulator does."""
    calibrated.write(tmp_path / "prj")
    rng = np.random.default_rng(5)
    x = np.concatenate([data[:150], rng.uniform(-20, 40, (150, 8, 8, 1))])   # in and far outside the data's range
    assert np.array_equal(csim.predict(tmp_path / "prj", x), calibrated.predict(x))


def test_torch_backend_equals_emulator_on_the_calibrated_model(calibrated, data):
    pytest.importorskip("torch")
    assert np.array_equal(calibrated.predict(data, backend="gpu"), calibrated.predict(data))


# ------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad,msg", [
    (np.zeros((5, 8, 8)), "calibration data has shape (5, 8, 8); expected (N, 8, 8, 1) for input 'x'"),
    (np.zeros((5, 64)), "calibration data has shape (5, 64); expected (N, 8, 8, 1) for input 'x'"),
    (np.zeros((0, 8, 8, 1)), "calibration data holds no samples; expected (N, 8, 8, 1) with N >= 1"),
    (np.full((2, 8, 8, 1), np.nan), "calibration data contains NaN or Inf; clean it first"),
    (np.array([["a"] * 3]), "calibration data has dtype <U1; expected numbers of shape (N, 8, 8, 1) for input 'x'"),
])
def test_bad_calibration_data(model, tmp_path, bad, msg):
    path = tmp_path / "bad.npy"
    np.save(path, bad)
    with pytest.raises(CalibrationError) as e:
        convert(model, calibrate=str(path))
    assert str(e.value) == f"{path}: {msg}"
    with pytest.raises(CalibrationError) as e:
        convert(model, calibrate=bad)
    assert str(e.value) == f"calibration data: {msg}"


def test_cli_calibrate(tmp_path, model, data, capsys):
    model.save(tmp_path / "m.h5")
    np.save(tmp_path / "x.npy", data)
    np.save(tmp_path / "bad.npy", data[:, :, :, 0])
    rc = main(["build", str(tmp_path / "m.h5"), "--calibrate", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert rc == 2 and not (tmp_path / "o").exists()
    assert err == (f"fpga-gen: error: {tmp_path / 'bad.npy'}: calibration data has shape (400, 8, 8); "
                   f"expected (N, 8, 8, 1) for input 'x'\n")
    rc = main(["build", str(tmp_path / "m.h5"), "--calibrate", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "calibrated on 400 samples (headroom 1 bit(s))" in out and "ap_fixed<16,7> (calibrated)" in out
    assert (tmp_path / "o" / "calibration.json").is_file()
    rc = main(["estimate", str(tmp_path / "m.h5"), "--calibrate", str(tmp_path / "x.npy"), "--headroom-bits", "2",
               "--json"])
    out, err = capsys.readouterr()
    js = json.loads(out)
    assert rc == 0 and js["calibration"]["headroom_bits"] == 2 and js["calibration"]["samples"] == 400
    assert js["calibration"]["source"] == str(tmp_path / "x.npy")
    rc = main(["estimate", str(tmp_path / "m.h5"), "--headroom-bits", "2"])
    out, err = capsys.readouterr()
    assert rc == 2 and err == "fpga-gen: error: --headroom-bits applies to calibration; give --calibrate DATA.npy too\n"
    rc = main(["build", str(tmp_path / "m.h5"), "--calibrate", str(tmp_path / "nope.npy"), "-o", str(tmp_path / "p")])
    out, err = capsys.readouterr()
    assert rc == 2 and err == f"fpga-gen: error: {tmp_path / 'nope.npy'}: calibration data file not found\n"


def test_lambda_in_a_saved_model_is_refused_before_loading(tmp_path):
    tf = _tf()
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="x"),
                             tf.keras.layers.Dense(3, name="d"), tf.keras.layers.Lambda(lambda t: t * 2, name="lam")])
    m.save(tmp_path / "saved")
    with pytest.raises(Exception) as e:
        convert(tmp_path / "saved")
    assert str(e.value) == (f"{tmp_path / 'saved'}: layer 'lam' (Lambda): Lambda layers hold Python code, which "
                            f"fpga-gen never executes; rewrite the layer with supported layers")


def test_fit_with_calibration_keeps_the_calibrated_types(tmp_path, model, data, calibrated, capsys):
    model.save(tmp_path / "m.h5")
    np.save(tmp_path / "x.npy", data)
    rc = main(["build", str(tmp_path / "m.h5"), "--fit", "zcu104", "--calibrate", str(tmp_path / "x.npy"),
               "-o", str(tmp_path / "p")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("budget: ") and any(l.startswith("fit zcu104: ") for l in lines), out
    assert "calibrated on 400 samples" in out
    from fpga_gen import load_project
    g = load_project(tmp_path / "p").graph
    for node in calibrated.graph:
        assert node.types == g[node.name].types, node.name
    assert "## Calibration" in (tmp_path / "p" / "report.md").read_text()
