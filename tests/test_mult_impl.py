"""Multiplier binding (``mult_impl: auto | dsp | lut``): config validation, the product classes the config structs
name (firmware/fpga_gen_product.h, a BIND_OP pragma each), C simulation unchanged, the estimator's costs and the
sweep's use of idle DSPs."""

import shutil

import numpy as np
import pytest

from fpga_gen import convert, csim
from fpga_gen.config import ConfigError, config_from_dict, load_config
from fpga_gen.estimate import estimate
from fpga_gen.passes import PassError
from qmodels import qmlp

IN_PREC = "ap_fixed<12,4>"
BUDGET = "dsp=0.8,lut=0.7,ff=0.7,bram=0.8"
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def qconv_dw_dense(seed=0):
    """input 6x5x2 -> QConv2D(3, 3x3 same) -> quantized_relu -> QDepthwiseConv2D(2x2) -> quantized_bits -> Flatten
    -> QDense(4): every op whose config struct names a product class."""
    tf = _tf()
    from qkeras import QActivation, QConv2D, QDense, QDepthwiseConv2D, quantized_bits, quantized_relu
    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(6, 0, alpha=1)
    init, binit = tf.keras.initializers.RandomUniform(-1.0, 1.0), tf.keras.initializers.RandomUniform(-0.5, 0.5)
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(6, 5, 2), name="x"),
        QConv2D(3, (3, 3), padding="same", kernel_quantizer=q, bias_quantizer=q, kernel_initializer=init,
                bias_initializer=binit, name="conv"),
        QActivation(quantized_relu(6, 2), name="conv_act"),
        QDepthwiseConv2D((2, 2), depthwise_quantizer=q, bias_quantizer=q, depthwise_initializer=init,
                         bias_initializer=binit, name="dw"),
        QActivation(quantized_bits(6, 2, alpha=1), name="dw_act"),
        tf.keras.layers.Flatten(name="flat"),
        QDense(4, kernel_quantizer=q, bias_quantizer=q, kernel_initializer=init, bias_initializer=binit,
               name="fc")], name="qbind")


@pytest.fixture(scope="module")
def model():
    return qconv_dw_dense()


MIXED = {"layers": {"conv": {"mult_impl": "dsp"}, "dw": {"mult_impl": "dsp"}, "fc": {"mult_impl": "lut"}}}


# ---------------------------------------------------------------------------- config

def test_config_validation_messages(tmp_path):
    with pytest.raises(ConfigError) as e:
        config_from_dict({"mult_impl": "DSP"})
    assert str(e.value) == "<dict>: mult_impl must be one of auto, dsp, lut, got 'DSP'"
    with pytest.raises(ConfigError) as e:
        config_from_dict({"layers": {"fc": {"mult_impl": "fabric"}}})
    assert str(e.value) == "<dict>: layers.fc.mult_impl must be one of auto, dsp, lut, got 'fabric'"
    p = tmp_path / "c.yml"
    p.write_text("layers:\n  fc:\n    strategy: resource\n    mult_impl: bram\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"{p}: line 4: layers.fc.mult_impl must be one of auto, dsp, lut, got 'bram'"
    cfg = config_from_dict({"mult_impl": "lut", "layers": {"fc": {"mult_impl": "dsp"}}})
    assert (cfg.layer_mult_impl("fc"), cfg.layer_mult_impl("conv")) == ("dsp", "lut")
    assert config_from_dict({}).mult_impl == "auto"


def test_mult_impl_on_a_layer_without_products_is_rejected(model):
    with pytest.raises(PassError) as e:
        convert(model, config={"layers": {"conv_act": {"mult_impl": "dsp"}}}, input_precision=IN_PREC)
    assert str(e.value) == ("<dict>: layers.conv_act: mult_impl applies to dense, conv2d and depthwise_conv2d layers, "
                            "'conv_act' is a activation layer")


def test_attrs_follow_the_config(model):
    p = convert(model, config={"mult_impl": "dsp", "layers": {"fc": {"mult_impl": "auto"}}}, input_precision=IN_PREC)
    assert {n.name: n.attrs.get("mult_impl") for n in p.graph if n.op != "input"} == {
        "conv": "dsp", "conv_act": None, "dw": "dsp", "dw_act": None, "fc": None}


# ---------------------------------------------------------------------------- HLS text

def _product_lines(text):
    return [ln for ln in text.splitlines() if "using product =" in ln]


def test_parameters_name_the_bound_product_classes(model, tmp_path):
    p = convert(model, config=MIXED, input_precision=IN_PREC)
    p.write(tmp_path / "prj")
    fw = tmp_path / "prj" / "firmware"
    params = (fw / "parameters.h").read_text()
    # conv (its mult config), dw (its mult config), fc, in graph order
    assert _product_lines(params) == ["    using product = fpga_gen::product::mult_dsp<x_T, y_T>;"] * 2 + \
        ["    using product = fpga_gen::product::mult_lut<x_T, y_T>;"]
    assert '#include "fpga_gen_product.h"' in params.splitlines()
    header = (fw / "fpga_gen_product.h").read_text().splitlines()
    for line in ("template <class x_T, class w_T> class mult_dsp : public nnet::product::Product {",
                 "template <class x_T, class w_T> class mult_lut : public nnet::product::Product {",
                 "    static auto product(x_T a, w_T w) -> decltype(a * w) {",
                 "        decltype(a * w) r = a * w;",
                 "        #pragma HLS BIND_OP variable=r op=mul impl=dsp",
                 "        #pragma HLS BIND_OP variable=r op=mul impl=fabric",
                 '#include "nnet_utils/nnet_mult.h"'):
        assert line in header, line
    # auto: hls4ml's product, no header
    q = convert(model, input_precision=IN_PREC)
    q.write(tmp_path / "auto")
    params = (tmp_path / "auto" / "firmware" / "parameters.h").read_text()
    assert _product_lines(params) == ["    using product = nnet::product::mult<x_T, y_T>;"] * 3
    assert "fpga_gen_product.h" not in params
    assert not (tmp_path / "auto" / "firmware" / "fpga_gen_product.h").exists()


def test_stream_configs_name_the_bound_product_classes(model, tmp_path):
    p = convert(model, config={**MIXED, "io_type": "stream"}, input_precision=IN_PREC)
    p.write(tmp_path / "prj")
    params = (tmp_path / "prj" / "firmware" / "parameters.h").read_text()
    assert _product_lines(params) == ["    using product = fpga_gen::product::mult_dsp<x_T, y_T>;"] * 2 + \
        ["    using product = fpga_gen::product::mult_lut<x_T, y_T>;"]
    assert (tmp_path / "prj" / "firmware" / "fpga_gen_product.h").is_file()


@needs_gxx
def test_csim_equals_emulator_with_bound_products(model, tmp_path):
    """One project: conv and depthwise products bound to DSPs, the dense ones to LUTs, both strategies."""
    cfg = {"layers": {"conv": {"mult_impl": "dsp", "strategy": "resource", "reuse_factor": 3},
                      "dw": {"mult_impl": "dsp"}, "fc": {"mult_impl": "lut"}}}
    p = convert(model, config=cfg, input_precision=IN_PREC)
    p.write(tmp_path / "prj")
    t = p.graph.input_nodes()[0].types["result"]
    rng = np.random.default_rng(4)
    raw = rng.integers(t.raw_min, t.raw_max + 1, size=(120, 6, 5, 2)).astype(np.float64)
    raw[0], raw[1] = t.raw_min, t.raw_max
    x = raw * 2.0 ** -t.frac
    emu = p.predict(x)
    y = csim.predict(tmp_path / "prj", x)
    assert np.array_equal(y, emu), f"{np.mean(y == emu):.4f} match"
    assert np.array_equal(emu, convert(model, input_precision=IN_PREC).predict(x))    # same bits as auto


# ---------------------------------------------------------------------------- estimator

def test_estimator_dsp_binding_moves_narrow_products_to_dsps():
    m = qmlp([16, 64, 32], bits=6, seed=0)

    def row(impl, layer="dense_1"):
        p = convert(m, config={"strategy": "resource", "reuse_factor": 16, "layers": {layer: {"mult_impl": impl}}})
        return next(r for r in estimate(p.graph, p.config, board="pynq-z2").layers if r["name"] == layer)
    auto, dsp, lut = row("auto"), row("dsp"), row("lut")
    bf = 64 * 32 // 16                          # products per cycle (block factor)
    assert auto["DSP"] == 0 and "6x6-bit products in LUTs" in auto["notes"]
    assert dsp["DSP"] == bf                     # one DSP48E1 per 6 x 6 product
    assert auto["LUT"] - dsp["LUT"] == pytest.approx(bf * 6 * 6 * 0.55, abs=1)
    assert (lut["DSP"], lut["LUT"]) == (auto["DSP"], auto["LUT"])
    assert (dsp["ii_cycles"], dsp["latency_cycles"]) == (auto["ii_cycles"], auto["latency_cycles"])
    # a 16 x 6 layer (16-bit input) is on DSPs already; lut moves it to LUTs
    wide_auto, wide_lut = row("auto", "dense_0"), row("lut", "dense_0")
    assert wide_auto["DSP"] == 16 * 64 // 16 and wide_lut["DSP"] == 0
    assert wide_lut["LUT"] - wide_auto["LUT"] == pytest.approx(64 * 16 * 6 * 0.55, abs=1)


def test_estimator_latency_strategy_binding():
    """Latency strategy (constant weights): 6-bit data x 6-bit constants stay in LUTs (shift-and-add); with dsp
    every constant of two or more CSD digits takes a DSP [guess], with lut none does."""
    m = qmlp([16, 32, 16], bits=6, seed=1)
    rows = {}
    for impl in ("auto", "dsp", "lut"):
        p = convert(m, config={"layers": {"dense_0": {"mult_impl": "lut"}, "dense_1": {"mult_impl": impl}}})
        rows[impl] = {r["name"]: r for r in estimate(p.graph, p.config, board="pynq-z2").layers}
    assert rows["auto"]["dense_0"]["DSP"] == 0                  # 16-bit data x constants, bound to LUTs
    assert rows["auto"]["dense_1"]["DSP"] == 0 == rows["lut"]["dense_1"]["DSP"]
    assert rows["auto"]["dense_1"]["LUT"] == rows["lut"]["dense_1"]["LUT"]
    assert rows["dsp"]["dense_1"]["DSP"] > 0 and rows["dsp"]["dense_1"]["LUT"] < rows["auto"]["dense_1"]["LUT"]
    unbound = convert(m)
    assert estimate(unbound.graph, unbound.config, board="pynq-z2").layers[0]["DSP"] > 0


# ---------------------------------------------------------------------------- sweep

@pytest.fixture(scope="module")
def mlp_ev(tmp_path_factory):
    from fpga_gen.sweep import prepare
    p = tmp_path_factory.mktemp("m") / "mlp_16_64_32_32_5.h5"
    qmlp([16, 64, 32, 32, 5], bits=6, softmax=True, seed=0).save(p)
    return prepare(str(p), "pynq-z2")[0]


def test_fit_with_binding_is_at_least_as_fast_and_fits(mlp_ev):
    from fpga_gen.sweep import fit
    res0, _ = fit(mlp_ev, budget=BUDGET, bindings=("auto",))
    res1, point = fit(mlp_ev, budget=BUDGET)
    b0, b1 = res0.best(), res1.best()
    assert (b1["ii_cycles"], b1["latency_cycles"]) <= (b0["ii_cycles"], b0["latency_cycles"])
    assert all(b1[k] <= v for k, v in res1.limits.items())
    assert "/dsp" not in " ".join(r["layers"] for r in res0.rows)           # no binding when not allowed
    assert any("/dsp" in r["layers"] for r in res1.rows)
    # the chosen design materialises with its bindings, and estimates to its row
    g, cfg = mlp_ev.materialize(point)
    assert {n.name: n.attrs.get("mult_impl", "auto") for n in g if n.op == "dense"} == {
        x[0]: (x[3] if len(x) > 3 else "auto") for x in point.layers}
    assert mlp_ev.estimate(point).total["LUT"] == b1["LUT"]
    # the estimator bound with binding lets every product take a DSP: the device bound's multipliers
    from fpga_gen.sweep import ii_lower_bound
    assert ii_lower_bound(g, mlp_ev.part, res1.limits, model_rules=True, dsp_binding=True)["ii"] == \
        ii_lower_bound(g, mlp_ev.part, res1.limits)["ii"]


def test_configured_binding_is_kept_by_the_sweep(mlp_ev):
    from fpga_gen.boards import load_board
    from fpga_gen.sweep import Evaluator, run_sweep
    base = mlp_ev.base.copy(layers={"dense_1": {"mult_impl": "lut"}})
    ev = Evaluator(mlp_ev.graph0, base, load_board("pynq-z2"))
    res = run_sweep(ev, strategies=["resource"], reuses=[16], budget=BUDGET)
    assert res.rows and all(r["layers"].split()[1].endswith("/lut") for r in res.rows)
    assert any("/dsp" in r["layers"] for r in res.rows)         # the other layers may still be bound


def test_cli_mult_impl(tmp_path, capsys):
    from fpga_gen.cli import main
    path = tmp_path / "m.h5"
    qmlp([8, 6, 3], bits=6, seed=2).save(path)
    assert main(["build", str(path), "--mult-impl", "lut", "-o", str(tmp_path / "p")]) == 0, capsys.readouterr().err
    params = (tmp_path / "p" / "firmware" / "parameters.h").read_text()
    assert _product_lines(params) == ["    using product = fpga_gen::product::mult_lut<x_T, y_T>;"] * 2
