"""``fpga-gen estimate HLS4ML_PRJ``: an hls4ml 1.3 project folder (written here, offline, by hls4ml itself from a
small Keras model) -> graph -> estimate, with no Keras model; refusals are one line naming file and layer."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from fpga_gen.hls4ml_project import Hls4mlProjectError, read_hls4ml_project


@pytest.fixture(scope="module")
def prj(tmp_path_factory):
    hls4ml = pytest.importorskip("hls4ml")
    keras = pytest.importorskip("keras")             # hls4ml 1.3 converts with Keras 3 when it is installed
    keras.utils.set_random_seed(1)
    inp = keras.Input((16,), name="input_1")
    x = keras.layers.Dense(8, name="fc1")(inp)
    x = keras.layers.Activation("relu", name="relu1")(x)
    x = keras.layers.Dense(5, name="fc2")(x)
    x = keras.layers.Activation("softmax", name="softmax")(x)
    m = keras.Model(inp, x)
    cfg = hls4ml.utils.config_from_keras_model(m, granularity="name", backend="Vitis")
    cfg["LayerName"]["fc2"]["ReuseFactor"] = 3           # hls4ml snaps it to 2 under Resource (8x5)
    cfg["LayerName"]["fc2"]["Strategy"] = "Resource"
    out = tmp_path_factory.mktemp("h") / "prj"
    with contextlib.redirect_stdout(io.StringIO()):
        h = hls4ml.converters.convert_from_keras_model(m, hls_config=cfg, output_dir=str(out), backend="Vitis",
                                                        part="xc7z020clg400-1", io_type="io_parallel")
        h.write()
    (out / "keras_model.keras").unlink(missing_ok=True)      # no model needed
    return out, m


def test_reader_gives_hls4mls_layers_types_weights_and_reuse(prj):
    out, m = prj
    g, cfg, notes = read_hls4ml_project(out)
    assert [n.op for n in g] == ["input", "dense", "activation", "dense", "softmax"]
    assert [n.name for n in g][1:] == ["fc1", "relu1", "fc2", "softmax"]
    fc1, fc2 = g["fc1"], g["fc2"]
    assert (fc1.attrs["n_in"], fc1.attrs["n_out"], fc1.attrs["strategy"]) == (16, 8, "latency")
    assert (fc2.attrs["reuse_factor"], fc2.attrs["strategy"]) == (2, "resource")
    # the weights hls4ml wrote are the Keras kernel, n_in x n_out, to the written precision
    k = m.get_layer("fc1").get_weights()[0]
    assert fc1.weights["kernel"].shape == (16, 8)
    assert np.max(np.abs(fc1.weights["kernel"] - k)) < 1e-3
    # hls4ml 1.3 infers 'auto' result types; the reader takes what defines.h says
    import re
    written = re.search(r"typedef (ap_\w+<[^;]*>) fc1_result_t;", (out / "firmware" / "defines.h").read_text())
    assert fc1.types["result"].cpp().replace(" ", "") == written.group(1).replace(" ", "")
    assert cfg.part.startswith("xc7z020") and cfg.io_type == "parallel"
    assert any("fc2: parameters.h has reuse factor 2, hls4ml_config.yml 3" in n for n in notes)


def test_cli_estimates_an_hls4ml_project(prj):
    from fpga_gen.cli import main
    out, _ = prj
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = main(["estimate", str(out), "--json", "--tool", "vivado-2020.1"])
    assert rc == 0, err.getvalue()
    est = json.loads(buf.getvalue())
    assert [L["name"] for L in est["layers"]][:4] == ["fc1", "relu1", "fc2", "softmax"]
    assert est["tool"] == "vivado" and est["total"]["ii_cycles"] == 2        # fc2: Resource, RF 2
    assert est["total"]["LUT"] > 0 and est["total"]["latency_cycles"] > 2


def test_unknown_layer_is_refused_in_one_line_naming_file_and_layer(prj, tmp_path):
    from fpga_gen.cli import main
    out, _ = prj
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    cpp = bad / "firmware" / "myproject.cpp"
    cpp.write_text(cpp.read_text().replace("nnet::relu<", "nnet::conv_2d_cl<"))
    with pytest.raises(Hls4mlProjectError, match=r"myproject.cpp: layer relu1: nnet::conv_2d_cl is not read"):
        read_hls4ml_project(bad)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["estimate", str(bad)]) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "myproject.cpp: layer relu1" in lines[0]
