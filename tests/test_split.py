"""Heterogeneous split: the head of the graph is the FPGA project, the tail runs on the CPU/GPU fallback.

Graph.split is checked on hand-made graphs; the rest on a QKeras model QDense -> quantized_relu -> QDense ->
selu, whose selu has no HLS template (a float_activation, OpDef.hls is False), so it builds split automatically.
(sigmoid and tanh run on the FPGA since they have nnet table kernels: see tests/test_activations.py.)  Every
split prediction must equal the emulator of the whole model bit for bit (array_equal).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import fpga_gen
from fpga_gen.api import ProjectError
from fpga_gen.cli import main
from fpga_gen.emulate import Emulator
from fpga_gen.ir import FixedType, Graph, GraphError, Node, op_def
from helpers_graphs import mlp_graph, random_inputs
from qmodels import qmlp

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


# ---------------------------------------------------------------------------- Graph.split
def test_split_names_shapes_types():
    g = mlp_graph((4, 6, 3), softmax=True)
    head, tail = g.split("relu_1")
    assert [n.name for n in head] == ["input_1", "dense_1", "relu_1"]
    assert head.inputs == ["input_1"] and head.outputs == ["relu_1"] and head.name == "mlp"
    assert [n.name for n in tail] == ["relu_1", "dense_2", "softmax"]
    assert tail.inputs == ["relu_1"] and tail.outputs == ["softmax"] and tail.name == "mlp_tail"
    assert tail["relu_1"].op == "input"
    assert tail["relu_1"].shape == (6,) == g["relu_1"].shape
    assert tail["relu_1"].types == {"result": g["relu_1"].types["result"]}
    assert tail["dense_2"].types == g["dense_2"].types
    # copies: editing a part leaves the graph alone
    head["dense_1"].attrs["reuse_factor"] = 2
    assert g["dense_1"].attrs["reuse_factor"] == 1
    x = random_inputs(g, 200, seed=3)
    with np.errstate(all="ignore"):
        assert np.array_equal(Emulator(tail).predict(Emulator(head).predict(x)), Emulator(g).predict(x))


def test_split_errors():
    g = mlp_graph((4, 6, 3))
    with pytest.raises(GraphError) as e:
        g.split("nope")
    assert str(e.value) == "split point 'nope' is not a layer of 'mlp'; layers: input_1, dense_1, relu_1, dense_2"
    with pytest.raises(GraphError, match="^split point 'input_1' is the model input"):
        g.split("input_1")
    with pytest.raises(GraphError, match="^split point 'dense_2' is the model output"):
        g.split("dense_2")


def test_split_inside_a_branch():
    t = FixedType(16, 6)
    g = Graph("branchy")
    g.add(Node("x", "input", [], (4,), types={"result": t}))
    g.add(Node("a", "activation", ["x"], (4,), attrs={"activation": "relu"}, types={"result": t}))
    g.add(Node("b", "activation", ["x"], (4,), attrs={"activation": "linear"}, types={"result": t}))
    g.add(Node("c", "activation", ["a", "b"], (4,), attrs={"activation": "linear"}, types={"result": t}))
    g.add(Node("d", "activation", ["c"], (4,), attrs={"activation": "relu"}, types={"result": t}))
    g.inputs, g.outputs = ["x"], ["d"]
    with pytest.raises(GraphError) as e:
        g.split("a")
    assert str(e.value) == ("split point 'a' is inside a branch: layer 'b' after it reads 'x' before it; "
                            "split at a layer every path goes through")
    with pytest.raises(GraphError, match="^split point 'b' is inside a branch: layer 'c' after it reads 'a'"):
        g.split("b")
    head, tail = g.split("c")
    assert [n.name for n in tail] == ["c", "d"]


def test_float_activation_is_cpu_only():
    assert op_def("float_activation").hls is False
    assert op_def("dense").hls is True


# ---------------------------------------------------------------------------- a model with a selu tail
def selu_model(activation_arg: bool = False, fn: str = "selu"):
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    tf.keras.utils.set_random_seed(7)
    q = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
             kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
             bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    layers = [tf.keras.layers.InputLayer(input_shape=(6,), name="x"),
              QDense(8, name="dense_0", **q), QActivation(quantized_relu(6, 2), name="act_0")]
    if activation_arg:
        layers.append(QDense(3, name="dense_1", activation=fn, **q))
    else:
        layers += [QDense(3, name="dense_1", **q), tf.keras.layers.Activation(fn, name="out")]
    return tf.keras.Sequential(layers, name="sigmodel")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "sigmodel.h5"
    selu_model().save(p)
    return p


@pytest.fixture(scope="module")
def project(model_file):
    return fpga_gen.convert(model_file)


@pytest.fixture(scope="module")
def written(project, tmp_path_factory):
    return project.write(tmp_path_factory.mktemp("w") / "proj")


def x_batch(n=300, seed=0):
    return np.random.default_rng(seed).uniform(-3.0, 3.0, size=(n, 6))


def test_automatic_split(project):
    assert project.split_at == "dense_1"
    assert project.graph["out"].op == "float_activation" and project.graph["out"].attrs == {"function": "selu"}
    assert project.graph["out"].types["result"] == FixedType(16, 6, True, "RND_CONV", "SAT")
    assert [n.name for n in project.head] == ["x", "dense_0", "act_0", "dense_1"]
    assert [n.name for n in project.tail] == ["dense_1", "out"]
    assert project.boundary() == {"name": "dense_1", "shape": [3],
                                  "type": project.graph["dense_1"].types["result"].cpp()}


def test_sigmoid_and_tanh_run_on_the_fpga():
    for fn in ("sigmoid", "tanh"):
        p = fpga_gen.convert(selu_model(activation_arg=True, fn=fn))
        assert p.split_at is None and p.graph[f"dense_1_{fn}"].op == "activation"


_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
FLOAT_REFS = {"selu": lambda z: _SELU[1] * np.where(z > 0, z, _SELU[0] * np.expm1(np.minimum(z, 0))),
              "swish": lambda z: z / (1.0 + np.exp(-z))}


@pytest.mark.parametrize("fn", ["selu", "swish"])
def test_activation_argument_and_float_values(fn):
    p = fpga_gen.convert(selu_model(activation_arg=True, fn=fn))
    assert p.split_at == "dense_1" and p.graph.outputs == [f"dense_1_{fn}"]
    x = x_batch()
    y = p.predict(x, backend="split")
    assert np.array_equal(y, p.predict(x, backend="emu"))
    # the function of the exact boundary value, rounded to the nearest step of ap_fixed<16,6>
    z = Emulator(p.head).predict(x)
    ref = FLOAT_REFS[fn](z)
    assert np.max(np.abs(y - ref)) <= 2.0 ** -11
    assert len(np.unique(y)) > 50


def test_split_predict_equals_emulator(project):
    for seed in range(3):
        x = x_batch(seed=seed)
        assert np.array_equal(project.predict(x, backend="split"), project.predict(x, backend="emu"))


def test_csim_backend_refused_on_a_split_project(project):
    with pytest.raises(ProjectError, match="use backend='split-csim'"):
        project.predict(x_batch(5), backend="csim")


def test_split_at_on_a_supported_model():
    m = qmlp([8, 6, 5, 4], bits=6, softmax=True, seed=2)
    whole = fpga_gen.convert(m)
    assert whole.split_at is None
    split = fpga_gen.convert(m, split_at="dense_1")
    assert [n.name for n in split.tail] == ["dense_1", "act_1", "dense_2", "softmax"]
    x = x_batch(400, seed=5)[:, :1].repeat(8, axis=1) + np.random.default_rng(1).uniform(-1, 1, (400, 8))
    ref = whole.predict(x, backend="emu")
    assert np.array_equal(split.predict(x, backend="split"), ref)
    assert np.array_equal(split.predict(x, backend="emu"), ref)


def test_split_after_the_cpu_layer_refused():
    m = selu_model(activation_arg=True)
    with pytest.raises(GraphError, match="^split point 'dense_1_selu' is the model output"):
        fpga_gen.convert(m, split_at="dense_1_selu")


def test_written_project(project, written):
    manifest = json.loads((written / "fallback" / "manifest.json").read_text())
    assert manifest["split"]["at"] == "dense_1"
    assert manifest["split"]["boundary"] == project.boundary()
    assert manifest["split"]["fallback_layers"] == ["out"]
    assert "split" in manifest["backends"] and "split-csim" in manifest["backends"]
    assert manifest["outputs"][0]["name"] == "out"                        # fallback/ holds the whole graph
    assert [n.name for n in Graph.load(written / "fallback")] == [n.name for n in project.graph]
    readme = (written / "README.md").read_text()
    assert "## Heterogeneous split" in readme and project.boundary()["type"] in readme
    # the FPGA part has no trace of the CPU layer
    cpp = "".join(p.read_text() for p in (written / "firmware").rglob("*.cpp"))
    assert "dense_1" in cpp and "selu" not in cpp


def test_load_project_round_trip(project, written):
    loaded = fpga_gen.load_project(written)
    assert loaded.split_at == "dense_1"
    x = x_batch(seed=9)
    assert np.array_equal(loaded.predict(x, backend="split"), project.predict(x, backend="emu"))
    assert np.array_equal(loaded.predict(x, backend="emu"), project.predict(x, backend="emu"))


@needs_gxx
def test_head_compiles_and_csim_matches(project, written):
    from fpga_gen import csim
    x = x_batch(500, seed=11)
    x[:10] *= 20.0                                                        # beyond the input type
    assert np.array_equal(csim.predict(written, x), Emulator(project.head).predict(x))
    loaded = fpga_gen.load_project(written)
    assert np.array_equal(loaded.predict(x, backend="split-csim"), loaded.predict(x, backend="split"))


# ---------------------------------------------------------------------------- command line
def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_inspect_prints_the_split(capsys, model_file, project):
    rc, out, err = run(capsys, "inspect", model_file)
    assert rc == 0, err
    t = project.graph["dense_1"].types["result"].cpp()
    assert out.splitlines()[-1] == f"split after 'dense_1': FPGA 4 layers, CPU/GPU fallback out; boundary dense_1 3 {t}"


def test_cli_build_split_at(capsys, tmp_path):
    m = tmp_path / "mlp.h5"
    qmlp([8, 6, 4], bits=6, softmax=True, seed=4).save(m)
    rc, out, err = run(capsys, "build", m, "-o", tmp_path / "p", "--split-at", "act_0")
    assert rc == 0, err
    assert "split after 'act_0'" in out and "boundary act_0 6 ap_ufixed<6,0" in out
    assert json.loads((tmp_path / "p" / "fallback" / "manifest.json").read_text())["split"]["at"] == "act_0"
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-2, 2, (20, 8)))
    for backend in ("split", "emu"):
        rc, out, err = run(capsys, "predict", tmp_path / "p", "--input", tmp_path / "x.npy",
                           "--output", tmp_path / f"{backend}.npy", "--backend", backend)
        assert rc == 0, err
    assert np.array_equal(np.load(tmp_path / "split.npy"), np.load(tmp_path / "emu.npy"))


def test_cli_bad_split_at(capsys, model_file, tmp_path):
    rc, out, err = run(capsys, "build", model_file, "-o", tmp_path / "p", "--split-at", "nope")
    assert rc == 2
    assert err == ("fpga-gen: error: split point 'nope' is not a layer of 'sigmodel'; "
                   "layers: x, dense_0, act_0, dense_1, out\n")
    assert not (tmp_path / "p").exists()


def test_gpu_backend_runs_the_float_activation_identically(project):
    pytest.importorskip("torch")
    x = x_batch(seed=13)
    x[:5] = [np.inf, -np.inf, np.nan, 1e30, -0.0, 0.5]
    with np.errstate(all="ignore"):
        ref = project.predict(x, backend="emu")
    assert np.array_equal(project.predict(x, backend="gpu"), ref)
    assert np.array_equal(project.predict(x, backend="split-gpu"), ref)


def _graph_with_a_cpu_layer(after_input: bool = False) -> Graph:
    g = mlp_graph((4, 6, 5, 3))
    target = "dense_1" if after_input else "relu_1"
    src = g[target].inputs[0]
    t = FixedType(16, 6, True, "RND_CONV", "SAT")
    g.replace(target, [Node("sig", "float_activation", [src], g[src].shape if after_input else (6,),
                            attrs={"function": "selu"}, types={"result": t})])
    return g


def test_auto_split_point_and_refusals(tmp_path):
    from fpga_gen.api import Project, auto_split_point
    from fpga_gen.config import ProjectConfig
    g = _graph_with_a_cpu_layer()
    assert auto_split_point(g) == "dense_1"
    assert auto_split_point(mlp_graph((4, 6, 3))) is None
    with pytest.raises(ProjectError, match="^layer 'sig' \\(float_activation\\) has no HLS template"):
        Project(g, ProjectConfig(), split_at="dense_2").write(tmp_path / "p")
    with pytest.raises(ProjectError, match="^layer 'sig' \\(float_activation\\) has no HLS template"):
        Project(g, ProjectConfig()).write(tmp_path / "p")
    assert not (tmp_path / "p").exists()
    with pytest.raises(ProjectError, match="comes right after the input: nothing is left for the FPGA"):
        auto_split_point(_graph_with_a_cpu_layer(after_input=True))


def test_cli_fit_splits_too(capsys, model_file, tmp_path):
    rc, out, err = run(capsys, "build", model_file, "-o", tmp_path / "p", "--fit", "pynq-z2")
    assert rc == 0, err
    assert "split after 'dense_1'" in out
    assert fpga_gen.load_project(tmp_path / "p").split_at == "dense_1"


def test_cli_estimate_counts_the_fpga_part_only(capsys, model_file):
    from fpga_gen.estimate import estimate
    rc, out, err = run(capsys, "estimate", model_file, "--split-at", "act_0", "--json")
    assert rc == 0, err
    p = fpga_gen.convert(model_file, split_at="act_0")
    assert json.loads(out) == json.loads(json.dumps(estimate(p.head, p.config).to_json()))
    rc, whole, err = run(capsys, "estimate", model_file, "--json")
    assert json.loads(whole)["total"]["LUT"] > json.loads(out)["total"]["LUT"]
