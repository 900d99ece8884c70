"""Activations on the FPGA (io_parallel), as nnet_activation.h computes them.

- csim == emulator bit for bit on every code of a narrow input type (and on a wide one whose
  int(x * N / 16) wraps at 32 bits), with default, saturating and narrow table/result types;
- every backend (emu, gpu through TorchOps, csim) equal;
- emulator vs Keras float: table functions are approximations; inside the table's input range
  the error is at most max|f'| * span / N (the index truncates x to the table grid) plus one
  step of the table type (its TRN cast), which these tests measure against;
- relu-family layers equal Keras exactly on quantized inputs where Keras is exact;
- unsupported options fail with one line naming the layer and the fix.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import fpga_gen
from fpga_gen import convert, csim
from fpga_gen.api import Project
from fpga_gen.emulate.torch_ops import torch_available
from fpga_gen.config import ConfigError, ProjectConfig, config_from_dict
from fpga_gen.frontend import FrontendError, load_graph
from fpga_gen.ir import FixedType, Graph, Node
from fpga_gen.passes import DEFAULT_PASSES, PassError, run_passes

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
NARROW = "ap_fixed<10,5>"          # 1024 codes: every one is run


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def one_layer(make, n=8, name="act_model"):
    tf = _tf()
    tf.keras.utils.set_random_seed(3)
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(n,), name="x"), make(tf.keras.layers, tf)],
                               name=name)


def every_code(t: FixedType, n: int) -> np.ndarray:
    raw = np.arange(t.raw_min, t.raw_max + 1)
    raw = np.resize(raw, (-(-raw.size // n)) * n)
    return raw.reshape(-1, n) * 2.0 ** -t.frac


def random_codes(t: FixedType, rows: int, n: int, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(t.raw_min, t.raw_max + 1, size=(rows, n)).astype(np.float64)
    raw[:4] = t.raw_max
    raw[4:8] = t.raw_min
    raw[8:12] = 0
    raw[12:16] = rng.integers(-8, 8, size=(4, n))                       # around zero
    return raw * 2.0 ** -t.frac


# name -> (layer factory, input type, config); each compiles one project
CASES = {
    "sigmoid": (lambda L, tf: L.Activation("sigmoid", name="a"), NARROW, None),
    "tanh": (lambda L, tf: L.Activation("tanh", name="a"), NARROW, None),
    "softplus": (lambda L, tf: L.Activation("softplus", name="a"), NARROW, None),
    "softsign": (lambda L, tf: L.Activation("softsign", name="a"), NARROW, None),
    "elu": (lambda L, tf: L.Activation("elu", name="a"), NARROW, None),
    "elu_alpha": (lambda L, tf: L.ELU(alpha=0.7, name="a"), NARROW,
                  {"activations": {"table_precision": "ap_fixed<12,2,AP_RND,AP_SAT>", "table_size": 512}}),
    "relu6": (lambda L, tf: L.Activation("relu6", name="a"), NARROW, None),
    "relu_max3": (lambda L, tf: L.ReLU(max_value=3.0, name="a"), NARROW, None),
    "relu_slope": (lambda L, tf: L.ReLU(negative_slope=0.3, name="a"), NARROW, None),
    "relu_threshold": (lambda L, tf: L.ReLU(threshold=0.3, name="a"), NARROW, None),
    "leaky_relu": (lambda L, tf: L.LeakyReLU(alpha=0.1, name="a"), NARROW, None),
    "thresholded_relu": (lambda L, tf: L.ThresholdedReLU(theta=1.3, name="a"), NARROW, None),
    "prelu": (lambda L, tf: L.PReLU(alpha_initializer=tf.keras.initializers.RandomUniform(-0.7, 1.6), name="a"),
              NARROW, None),
    "hard_sigmoid": (lambda L, tf: L.Activation("hard_sigmoid", name="a"), NARROW, None),
    # saturating narrow table, 256 entries, a narrow rounding result
    "sigmoid_narrow": (lambda L, tf: L.Activation("sigmoid", name="a"), NARROW,
                       {"layers": {"a": {"table_size": 256, "precision": {
                           "table": "ap_fixed<8,1,AP_RND,AP_SAT>", "result": "ap_ufixed<6,0,AP_RND_CONV,AP_SAT>"}}}}),
    "tanh_wrap_table": (lambda L, tf: L.Activation("tanh", name="a"), NARROW,
                        {"layers": {"a": {"table_size": 2048, "precision": {"table": "ap_fixed<9,1>"}}}}),
    # int(x * N / 16) beyond 32 bits: the C int wraps, the emulator too
    "softsign_wide_input": (lambda L, tf: L.Activation("softsign", name="a"), "ap_fixed<40,30>", None),
    "elu_wide_input": (lambda L, tf: L.Activation("elu", name="a"), "ap_fixed<40,30>", None),
}

SOFTMAX_CASES = ("stable", "latency", "legacy", "argmax")


def _inputs(project, n):
    t = project.graph["x"].types["result"]
    return every_code(t, n) if t.width <= 12 else random_codes(t, 2000, n)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Converted and written projects, one per case, built on first use."""
    cache = {}

    def get(case):
        if case not in cache:
            if case in CASES:
                make, in_t, cfg = CASES[case]
                model = one_layer(make)
                project = convert(model, config=cfg, input_precision=in_t)
            else:
                model = one_layer(lambda L, tf: L.Softmax(name="a"), n=6)
                project = convert(model, config={"softmax": {"implementation": case}}, input_precision="ap_fixed<10,4>")
            d = project.write(tmp_path_factory.mktemp(case) / "prj")
            cache[case] = (model, project, d)
        return cache[case]
    return get


@needs_gxx
@pytest.mark.parametrize("case", sorted(CASES))
def test_csim_equals_emulator_on_every_code(case, written):
    model, project, d = written(case)
    assert project.graph["a"].op == "activation" and project.split_at is None
    x = _inputs(project, 8)
    emu = project.predict(x)
    y = csim.predict(d, x)
    assert np.array_equal(y, emu), f"{np.mean(y == emu):.4f} match"
    if torch_available():
        assert np.array_equal(project.predict(x, backend="gpu"), emu)
    if case in ("sigmoid", "elu_alpha", "prelu", "hard_sigmoid"):
        assert csim.run_testbench(d).passed
        assert np.array_equal(fpga_gen.load_project(d).predict(x), emu)       # attrs and weights survive


@needs_gxx
@pytest.mark.parametrize("impl", SOFTMAX_CASES)
def test_csim_equals_emulator_softmax(impl, written):
    model, project, d = written(impl)
    assert project.graph["a"].attrs["implementation"] == impl
    t = project.graph["x"].types["result"]
    x = random_codes(t, 3000, 6)
    emu = project.predict(x)
    assert np.array_equal(csim.predict(d, x), emu)
    if torch_available():
        assert np.array_equal(project.predict(x, backend="gpu"), emu)
    ref = model.predict(x.astype(np.float32), verbose=0, batch_size=4096)
    agree = np.mean(emu.argmax(1) == ref.argmax(1))
    # stable holds argmax; argmax is argmax; legacy saturates; latency's exp(x) saturates above e^5.5
    assert agree >= {"stable": 0.999, "argmax": 1.0, "legacy": 0.98, "latency": 0.85}[impl], agree


@needs_gxx
def test_csim_hard_tanh_from_a_graph(tmp_path):
    """hard_tanh has no tf.keras activation: the node is built directly (QKeras-style slope 0.5, shift 0.5)."""
    g = Graph("ht")
    g.add(Node("x", "input", [], (8,)))
    g.add(Node("a", "activation", ["x"], (8,), attrs={"activation": "hard_tanh"}))
    g.inputs, g.outputs = ["x"], ["a"]
    cfg = config_from_dict({"input_precision": NARROW})
    run_passes(g, cfg, DEFAULT_PASSES)
    project = Project(g, cfg)
    x = every_code(g["x"].types["result"], 8)
    emu = project.predict(x)
    assert np.array_equal(emu, np.clip(x, -1, 1))                        # 2 * clip(x/2 + 1/2, 0, 1) - 1, exact
    d = project.write(tmp_path / "prj")
    assert np.array_equal(csim.predict(d, x), emu)


# ---------------------------------------------------------------------------- emulator vs Keras float
# function -> (table span, max |f'| over the span)
TABLE_BOUNDS = {"sigmoid": (16, 0.25), "tanh": (8, 1.0), "softplus": (16, 1.0), "softsign": (16, 1.0),
                "elu": (8, 1.0)}


def table_error_bound(fn: str, table_size: int = 1024, table_t: FixedType = FixedType(18, 8)) -> float:
    """The documented bound inside the table's input range: slope * grid step + one table step."""
    span, slope = TABLE_BOUNDS[fn]
    return slope * span / table_size + 2.0 ** -table_t.frac


@pytest.mark.parametrize("fn", sorted(TABLE_BOUNDS))
def test_table_functions_error_bound_against_keras(fn):
    model = one_layer(lambda L, tf: L.Activation(fn, name="a"), n=1)
    project = convert(model, input_precision="ap_fixed<16,6>")
    t = project.graph["x"].types["result"]
    x = every_code(t, 1)
    err = np.abs(project.predict(x) - model.predict(x.astype(np.float32), verbose=0, batch_size=8192))[:, 0]
    span = TABLE_BOUNDS[fn][0]
    inside = (x[:, 0] >= -span / 2) & (x[:, 0] < (span / 2 if fn != "elu" else np.inf))
    bound = table_error_bound(fn)
    assert err[inside].max() <= bound
    assert err[inside].max() > bound / 2                     # a table, not the function: the bound is near
    outside = {"sigmoid": 2 ** -10 + 4e-4, "tanh": 2 ** -10 + 7e-4}    # saturating ends: f(edge) to its limit
    if fn in outside:
        assert err[~inside].max() <= outside[fn]
    # more entries, finer table: the error shrinks as the bound says
    fine = convert(model, input_precision="ap_fixed<16,6>",
                   config={"activations": {"table_size": 4096, "table_precision": "ap_fixed<24,8>"}})
    err4 = np.abs(fine.predict(x) - model.predict(x.astype(np.float32), verbose=0, batch_size=8192))[:, 0]
    assert err4[inside].max() <= table_error_bound(fn, 4096, FixedType(24, 8)) < bound / 2


def test_hard_sigmoid_error_bound_against_keras():
    """slope 0.2 is ap_ufixed<16,0>(0.2), truncated as hls4ml writes it: |error| <= |x| * (0.2 - 13107/2**16)."""
    model = one_layer(lambda L, tf: L.Activation("hard_sigmoid", name="a"), n=1)
    project = convert(model, input_precision="ap_fixed<16,6>")
    x = every_code(project.graph["x"].types["result"], 1)
    err = np.abs(project.predict(x) - model.predict(x.astype(np.float32), verbose=0, batch_size=8192))
    d_slope = 0.2 - 13107 / 2 ** 16
    assert project.graph["a"].attrs["slope"] == 13107 / 2 ** 16
    assert np.all(err <= np.abs(x) * d_slope + 2.0 ** -22)              # + Keras' own float32 rounding
    assert err.max() > 2.0 * d_slope


EXACT_RELU = {
    "relu": lambda L, tf: L.ReLU(name="a"),
    "relu6": lambda L, tf: L.Activation("relu6", name="a"),
    "relu_max3": lambda L, tf: L.ReLU(max_value=3.0, name="a"),
    "relu_threshold": lambda L, tf: L.ReLU(threshold=0.3, name="a"),
    "thresholded_relu": lambda L, tf: L.ThresholdedReLU(theta=0.7, name="a"),
    "leaky_0.25": lambda L, tf: L.LeakyReLU(alpha=0.25, name="a"),
    "relu_slope": lambda L, tf: L.ReLU(negative_slope=0.125, name="a"),
    "prelu": lambda L, tf: L.PReLU(alpha_initializer=tf.keras.initializers.Constant(
        np.arange(-4, 4) / 8.0), name="a"),
}


@pytest.mark.parametrize("case", sorted(EXACT_RELU))
def test_relu_family_equals_keras_exactly(case):
    model = one_layer(EXACT_RELU[case])
    project = convert(model, input_precision=NARROW)
    x = every_code(project.graph["x"].types["result"], 8)
    ref = model.predict(x.astype(np.float32), verbose=0, batch_size=4096).astype(np.float64)
    assert np.array_equal(project.predict(x), ref)


def test_leaky_alpha_rounded_to_12_bits():
    """alpha 0.3 is not a short binary fraction: it is rounded to 12 significant bits; the error is that
    rounding times |x|, and the result type holds the product exactly."""
    model = one_layer(lambda L, tf: L.LeakyReLU(alpha=0.3, name="a"))
    project = convert(model, input_precision=NARROW)
    node = project.graph["a"]
    q = node.attrs["param"]
    assert q == round(float(np.float32(0.3)) * 2 ** 13) / 2 ** 13 and node.types["param"].width <= 12
    x = every_code(project.graph["x"].types["result"], 8)
    err = np.abs(project.predict(x) - model.predict(x.astype(np.float32), verbose=0).astype(np.float64))
    assert np.all(err <= np.abs(x) * abs(q - float(np.float32(0.3))) + 2.0 ** -20)   # + Keras' float32 product
    assert err.max() > 0


def test_qkeras_dense_then_relu6_equals_qkeras():
    tf = _tf()
    from qkeras import QDense, quantized_bits
    tf.keras.utils.set_random_seed(1)
    q = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
             kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0))
    model = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(6,), name="x"), QDense(5, name="d", **q),
                                 tf.keras.layers.ReLU(max_value=6.0, name="r"),
                                 QDense(4, name="d2", **q), tf.keras.layers.LeakyReLU(alpha=0.5, name="l")])
    project = convert(model, input_precision="ap_fixed<10,4>")
    x = random_codes(project.graph["x"].types["result"], 2000, 6)
    assert np.array_equal(project.predict(x), model.predict(x.astype(np.float32), verbose=0).astype(np.float64))


# ---------------------------------------------------------------------------- types and settings
def test_default_types():
    model = one_layer(lambda L, tf: L.Activation("sigmoid", name="a"))
    node = convert(model, input_precision=NARROW).graph["a"]
    assert node.attrs["table_size"] == 1024
    assert node.types["table"] == FixedType(18, 8) and node.types["result"] == FixedType(18, 8)
    node = convert(one_layer(lambda L, tf: L.Activation("relu6", name="a")), input_precision=NARROW).graph["a"]
    assert node.types["result"] == FixedType(8, 3, False)                 # [0, 6] with 5 fraction bits


def test_config_yaml_keys(tmp_path):
    from fpga_gen.config import load_config
    p = tmp_path / "c.yaml"
    p.write_text("activations:\n  table_size: 2048\n  table_precision: ap_fixed<20,4>\n"
                 "softmax:\n  implementation: legacy\n")
    cfg = load_config(p)
    assert cfg.activations["table_precision"] == FixedType(20, 4)
    assert cfg.to_dict()["activations"] == {"table_size": 2048, "table_precision": "ap_fixed<20,4>"}
    node = convert(one_layer(lambda L, tf: L.Activation("tanh", name="a")), config=cfg).graph["a"]
    assert node.attrs["table_size"] == 2048 and node.types["table"] == FixedType(20, 4)
    p.write_text("activations:\n  table_size: 1000\n")
    with pytest.raises(ConfigError, match=r"line 2: activations.table_size must be a power of two >= 2, got 1000"):
        load_config(p)


@pytest.mark.parametrize("config,message", [
    ({"softmax": {"implementation": "fast"}},
     "<dict>: softmax.implementation must be one of stable, latency, legacy, argmax, got 'fast'"),
    ({"activations": {"size": 4}}, "<dict>: unknown key 'size' in activations; allowed keys: table_size, table_precision"),
    ({"layers": {"a": {"table_size": 3}}}, "<dict>: layers.a.table_size must be a power of two >= 2, got 3"),
])
def test_config_errors(config, message):
    with pytest.raises(ConfigError) as e:
        config_from_dict(config)
    assert str(e.value) == message


def test_layer_settings_on_the_wrong_layer():
    model = one_layer(lambda L, tf: L.Activation("relu", name="a"))
    with pytest.raises(PassError) as e:
        convert(model, config={"layers": {"a": {"table_size": 256}}})
    assert str(e.value) == ("<dict>: layers.a: table_size applies to table-based activations (sigmoid, tanh, "
                            "softplus, softsign, elu), 'a' is a relu layer")
    with pytest.raises(PassError, match="^<dict>: layers.a: implementation apply to softmax layers"):
        convert(model, config={"layers": {"a": {"implementation": "latency"}}})


def test_latency_softmax_table_wider_than_input():
    model = one_layer(lambda L, tf: L.Softmax(name="a"), n=4)
    with pytest.raises(PassError) as e:
        convert(model, input_precision="ap_fixed<8,3>", config={"softmax": {"implementation": "latency"}})
    assert str(e.value) == ("layer 'a': the latency softmax indexes its exp table with the input's 8 bits, fewer "
                            "than the 10 index bits of exp_table_size 1024; lower exp_table_size")


@pytest.mark.parametrize("make,message", [
    (lambda L, tf: L.ReLU(max_value=2.5, name="r"),
     "layer 'r' (ReLU): max_value=2.5 is not supported; nnet::relu_max takes a non-negative integer, use e.g. "
     "max_value=2"),
    (lambda L, tf: L.ReLU(max_value=6.0, negative_slope=0.1, name="r"),
     "layer 'r' (ReLU): max_value and negative_slope together are not supported; nnet has one kernel for each, "
     "so use one of them per ReLU layer"),
    (lambda L, tf: L.Activation("log_softmax", name="r"),
     "layer 'r': activation 'log_softmax' is not supported yet; supported activations: linear, softmax, relu, "
     "relu6, leaky_relu, elu, hard_sigmoid, sigmoid, tanh, softplus, softsign, quantized_relu, quantized_bits, "
     "and on the CPU/GPU only selu, swish, gelu, exponential, mish"),
])
def test_unsupported_options_are_one_line(make, message):
    with pytest.raises(FrontendError) as e:
        load_graph(one_layer(make))
    assert str(e.value) == message


def test_prelu_shared_axes_refused():
    tf = _tf()
    model = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4, 4, 2), name="x"),
                                 tf.keras.layers.PReLU(shared_axes=[1, 2], name="p")])
    with pytest.raises(FrontendError) as e:
        load_graph(model)
    assert str(e.value) == ("layer 'p' (PReLU): shared_axes=[1, 2] is not supported; nnet::prelu takes one alpha "
                            "per element, use shared_axes=None")


def test_written_configs_as_hls4ml(written):
    _, _, d = written("hard_sigmoid")
    params = (d / "firmware" / "parameters.h").read_text()
    assert "::slope = 0.1999969482421875;" in params and "::shift = 0.5;" in params
    _, project, d = written("relu_slope")
    top = next((d / "firmware").glob("*.cpp")).read_text()
    lit = repr(project.graph["a"].attrs["param"])
    assert "nnet::leaky_relu<" in top and f", {lit}, " in top
    _, _, d = written("relu_max3")
    assert "nnet::relu_max<" in next((d / "firmware").glob("*.cpp")).read_text()


# ---------------------------------------------------------------------------- defaults on a trained model
def digits_mlp(act: str):
    """A float Keras MLP 64-32-16-10 trained on sklearn's 8x8 digits with ``act`` between the layers."""
    tf = _tf()
    from sklearn.datasets import load_digits
    d = load_digits()
    x = d.data / 16.0
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(64,), name="x"),
                                 tf.keras.layers.Dense(32, activation=act, name="d0"),
                                 tf.keras.layers.Dense(16, activation=act, name="d1"),
                                 tf.keras.layers.Dense(10, activation="softmax", name="out")])
    model.compile(tf.keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, d.target, epochs=30, batch_size=128, verbose=0)
    return model, x


@pytest.mark.slow
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softsign", "elu", "hard_sigmoid", "relu6"])
def test_default_tables_keep_argmax_on_digits(act):
    """Measured (30 epochs, Adam 0.01): agreement 1.0 for all of these but sigmoid (0.9994).  softplus is left
    out: nnet's softplus table covers [-8, 8) and clamps beyond, where softplus(x) ~ x keeps growing, so its
    agreement (0.93 here) is the kernel's, whatever the table size or type."""
    model, x = digits_mlp(act)
    project = convert(model)
    assert project.split_at is None
    ref = model.predict(x, verbose=0)
    assert np.mean(project.predict(x).argmax(1) == ref.argmax(1)) >= 0.999
