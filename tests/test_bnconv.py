"""Batch normalization, depthwise and separable 2-D layers, QKeras' folded conv+batchnorm layers (io_parallel):
csim equals the emulator bit for bit, the emulator equals QKeras exactly wherever QKeras computes in fixed
point, every back end equals the emulator, and a batchnorm is folded only into a float layer.

The one exception to emulator == QKeras: a separate (Q)BatchNormalization, which Keras computes in float32
and the FPGA in fixed point with rounded scale and bias; its bound is tested (at most 1 LSB of the next
quantizer, and nearly always equal)."""

import shutil

import numpy as np
import pytest

from fpga_gen import convert, csim
from fpga_gen.api import load
from fpga_gen.emulate import Emulator
from fpga_gen.frontend import FrontendError, load_graph
from fpga_gen.passes import DEFAULT_PASSES, FuseBatchNorm, PassError, run_passes
from helpers_graphs import (assert_csim_equals_emulator, assert_torch_equals_emulator,
                            assert_window_indices_equal_hls4ml, edge_inputs)
from qmodels import grid_images, one_layer_model
from qmodels import qbits as _q
from qmodels import uniform_init as _init

IN_PREC = "ap_fixed<12,4>"
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def _set_bn_stats(bn, n, seed):
    """Non-trivial gamma, beta, moving mean and variance (a freshly built BN is the identity)."""
    rng = np.random.default_rng(seed)
    values = {"gamma": rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n), "beta": rng.uniform(-0.5, 0.5, n),
              "moving_mean": rng.uniform(-0.5, 0.5, n), "moving_variance": rng.uniform(0.3, 3.0, n)}
    for k, v in values.items():
        var = getattr(bn, k, None)
        if var is not None:
            var.assign(v.astype(np.float32))


# ---------------------------------------------------------------------------- models
DW = {   # (input shape, kernel, strides, padding, use_bias)
    "same_3x3": ((7, 6, 3), (3, 3), (1, 1), "same", True),
    "valid_3x2_stride21": ((7, 6, 3), (3, 2), (2, 1), "valid", True),
    "same_2x3_stride2_1chan": ((7, 7, 1), (2, 3), (2, 2), "same", True),
    "valid_1x1_5chan_nobias": ((4, 5, 5), (1, 1), (1, 1), "valid", False),
}


def qdepthwise_model(case, seed=0, separable=False):
    """input -> Q(Depthwise|Separable)Conv2D -> quantized_bits -> Flatten -> QDense(3)."""
    tf = _tf()
    from qkeras import QActivation, QDense, QDepthwiseConv2D, QSeparableConv2D
    shape, k, s, pad, use_bias = DW[case]
    tf.keras.utils.set_random_seed(seed)
    if separable:
        conv = QSeparableConv2D(4, k, strides=s, padding=pad, use_bias=use_bias, depthwise_quantizer=_q(),
                                pointwise_quantizer=_q(), bias_quantizer=_q(), depthwise_initializer=_init(),
                                pointwise_initializer=_init(), bias_initializer=_init(-0.5, 0.5), name="conv")
    else:
        conv = QDepthwiseConv2D(k, strides=s, padding=pad, use_bias=use_bias, depthwise_quantizer=_q(),
                                bias_quantizer=_q(), depthwise_initializer=_init(),
                                bias_initializer=_init(-0.5, 0.5), name="conv")
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=shape, name="x"), conv,
        QActivation(_q(6, 2), name="act"), tf.keras.layers.Flatten(name="flat"),
        QDense(3, kernel_quantizer=_q(), bias_quantizer=_q(), name="fc")], name="qdw")


def folded_model(seed=0):
    """QConv2DBatchnorm -> quantized_relu -> QDepthwiseConv2DBatchnorm (no bias) -> quantized_bits -> QDense."""
    tf = _tf()
    from qkeras import QActivation, QConv2DBatchnorm, QDense, QDepthwiseConv2DBatchnorm, quantized_relu
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(6, 5, 2), name="x"),
        QConv2DBatchnorm(3, (3, 2), padding="same", kernel_quantizer=_q(8, 1), bias_quantizer=_q(8, 2),
                         kernel_initializer=_init(), bias_initializer=_init(-0.5, 0.5), name="cbn"),
        QActivation(quantized_relu(6, 2), name="act1"),
        QDepthwiseConv2DBatchnorm((2, 2), strides=(2, 1), padding="valid", use_bias=False,
                                  depthwise_quantizer=_q(8, 1), bias_quantizer=_q(8, 2),
                                  depthwise_initializer=_init(), name="dbn"),
        QActivation(_q(6, 2), name="act2"),
        tf.keras.layers.Flatten(name="flat"),
        QDense(3, kernel_quantizer=_q(), bias_quantizer=_q(), name="fc")], name="folded")
    _set_bn_stats(model.get_layer("cbn").batchnorm, 3, seed + 1)
    _set_bn_stats(model.get_layer("dbn").batchnorm, 3, seed + 2)
    return model


def qbn_model(seed=0, flat=False):
    """A separate QBatchNormalization after a QConv2D (per channel) or a QDense (1-D), then quantized_relu."""
    tf = _tf()
    from qkeras import QActivation, QBatchNormalization, QConv2D, QDense, quantized_relu
    tf.keras.utils.set_random_seed(seed)
    layers = [tf.keras.layers.InputLayer(input_shape=(5, 5, 2), name="x")]
    if flat:
        layers += [tf.keras.layers.Flatten(name="flat"),
                   QDense(6, kernel_quantizer=_q(), bias_quantizer=_q(), kernel_initializer=_init(), name="fc0")]
    else:
        layers += [QConv2D(4, (3, 3), padding="same", kernel_quantizer=_q(), bias_quantizer=_q(),
                           kernel_initializer=_init(), bias_initializer=_init(-0.5, 0.5), name="conv")]
    layers += [QBatchNormalization(name="bn"), QActivation(quantized_relu(6, 2), name="bn_act")]
    if not flat:
        layers.append(tf.keras.layers.Flatten(name="flat"))
    layers.append(QDense(3, kernel_quantizer=_q(), bias_quantizer=_q(), name="fc"))
    model = tf.keras.Sequential(layers, name="qbn")
    _set_bn_stats(model.get_layer("bn"), 6 if flat else 4, seed + 3)
    return model


def float_bn_model(seed=0):
    """Float Keras: BN on the input (stays), Conv2D -> BN (folded), DepthwiseConv2D -> BN (folded),
    SeparableConv2D -> BN (folded into the pointwise conv), Dense -> BN (folded), ReLU -> BN (stays, 1-D)."""
    tf = _tf()
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        L.InputLayer(input_shape=(6, 5, 2), name="x"), L.BatchNormalization(name="bn0"),
        L.Conv2D(3, (3, 3), padding="same", name="conv"), L.BatchNormalization(name="bn1"), L.ReLU(name="r1"),
        L.DepthwiseConv2D((2, 3), strides=(1, 2), padding="same", name="dw"), L.BatchNormalization(name="bn2"),
        L.SeparableConv2D(4, (2, 2), padding="valid", name="sep"), L.BatchNormalization(name="bn3"),
        L.ReLU(name="r3"), L.Flatten(name="flat"), L.Dense(5, name="fc0"), L.BatchNormalization(name="bn4"),
        L.ReLU(name="r4"), L.BatchNormalization(name="bn5"), L.Dense(3, name="fc")], name="float_bn")
    for k, n in (("bn0", 2), ("bn1", 3), ("bn2", 3), ("bn3", 4), ("bn4", 5), ("bn5", 5)):
        _set_bn_stats(model.get_layer(k), n, seed + n)
    return model


# ---------------------------------------------------------------------------- emulator == QKeras
@pytest.mark.parametrize("separable", [False, True], ids=["depthwise", "separable"])
@pytest.mark.parametrize("case", sorted(DW))
def test_emulator_equals_qkeras_exactly(case, separable):
    model = qdepthwise_model(case, separable=separable)
    project = convert(model, input_precision=IN_PREC)
    ops = [n.op for n in project.graph]
    assert ops[1:3] == (["depthwise_conv2d", "conv2d"] if separable else ["depthwise_conv2d", "activation"])
    x = grid_images(300, DW[case][0])
    ref = model.predict(x.astype(np.float32), verbose=0).astype(np.float64)
    assert np.array_equal(project.predict(x), ref)


def test_folded_qkeras_layers_equal_qkeras_exactly():
    model = folded_model()
    project = convert(model, input_precision=IN_PREC)
    assert [(n.name, n.op) for n in project.graph][1:4] == [("cbn", "conv2d"), ("act1", "activation"),
                                                           ("dbn", "depthwise_conv2d")]
    cbn = project.graph["cbn"]
    kernel, bias = (v.numpy() for v in model.get_layer("cbn").get_folded_weights())
    assert not np.allclose(kernel, model.get_layer("cbn").kernel.numpy())    # the stats did change the kernel
    assert cbn.types["weight"].cpp() == "ap_fixed<8,2>" and cbn.types["bias"].cpp() == "ap_fixed<8,3>"
    assert np.array_equal(cbn.weights["kernel"], _q(8, 1)(kernel).numpy())
    assert np.array_equal(cbn.weights["bias"], _q(8, 2)(bias).numpy())
    x = grid_images(400, (6, 5, 2))
    emu = project.emulator().predict(x, trace=True)
    tf = _tf()
    for name in ("act1", "act2", "fc"):
        sub = tf.keras.Model(model.inputs, model.get_layer(name).output)
        ref = sub.predict(x.astype(np.float32), verbose=0).astype(np.float64).reshape(len(x), -1)
        assert np.array_equal(emu[name].reshape(len(x), -1), ref), name


@pytest.mark.parametrize("flat", [False, True], ids=["per_channel", "1d"])
def test_separate_qbatchnorm_within_one_lsb_of_qkeras(flat):
    """QKeras computes BN in float32; the FPGA rounds scale and bias to 18 bits and keeps x * scale + bias exact,
    so only the next quantizer rounds: its output is at most 1 LSB (2**-4) away, and equal nearly always."""
    model = qbn_model(flat=flat)
    project = convert(model, input_precision=IN_PREC)
    bn = project.graph["bn"]
    assert bn.op == "batchnorm" and project.graph[bn.inputs[0]].op == ("dense" if flat else "conv2d")
    assert bn.types["scale"].width == 18 and bn.attrs["n_filt"] == (6 if flat else 4)
    x = grid_images(500, (5, 5, 2))
    emu = project.emulator().predict(x, trace=True)["bn_act"].reshape(len(x), -1)
    tf = _tf()
    sub = tf.keras.Model(model.inputs, model.get_layer("bn_act").output)
    ref = sub.predict(x.astype(np.float32), verbose=0).astype(np.float64).reshape(len(x), -1)
    diff = np.abs(emu - ref)
    assert diff.max() <= 2.0 ** -4
    assert np.mean(diff == 0) > 0.99
    assert np.mean(np.argmax(project.predict(x), 1) == np.argmax(model.predict(x, verbose=0), 1)) > 0.99


# ---------------------------------------------------------------------------- the fusion rule
def test_batchnorm_folds_into_float_layers_only():
    project = convert(float_bn_model(), input_precision="ap_fixed<10,3>")
    ops = {n.name: n.op for n in project.graph}
    assert [k for k, v in ops.items() if v == "batchnorm"] == ["bn0", "bn5"]    # after the input and a ReLU
    assert {project.graph[k].meta.get("fused_batchnorm") for k in ("conv", "dw", "sep_pointwise", "fc0")} == \
        {"bn1", "bn2", "bn3", "bn4"}
    assert project.graph["bn5"].attrs["n_filt"] == 5 and project.graph["bn0"].attrs["n_filt"] == 2
    # after a quantized layer the batchnorm stays (its weights cannot absorb a float scale)
    assert "bn" in load_project_ops(qbn_model())


def load_project_ops(model) -> list:
    return [n.name for n in convert(model, input_precision=IN_PREC).graph if n.op == "batchnorm"]


def test_fusion_folds_the_float_weights_and_keeps_the_result():
    """The folded weights are kernel * scale and bias * scale + bn_bias (float64, before rounding); fused and
    separate graphs both follow Keras within the default precision's error."""
    model = float_bn_model()
    graph, cfg, _ = load(model, input_precision="ap_fixed<10,3>")
    conv, bn = graph["conv"], graph["bn1"]
    want_k = conv.weights["kernel"] * bn.weights["scale"]
    want_b = conv.weights["bias"] * bn.weights["scale"] + bn.weights["bias"]
    assert FuseBatchNorm().apply(graph, cfg) and "bn1" not in graph
    assert np.array_equal(graph["conv"].weights["kernel"], want_k)
    assert np.array_equal(graph["conv"].weights["bias"], want_b)
    assert graph["r1"].inputs == ["conv"]
    separate, cfg2, _ = load(model, input_precision="ap_fixed<10,3>")
    run_passes(separate, cfg2, [p for p in DEFAULT_PASSES if not isinstance(p, FuseBatchNorm)])
    assert sum(n.op == "batchnorm" for n in separate) == 6
    fused = convert(model, input_precision="ap_fixed<10,3>")
    x = grid_images(300, (6, 5, 2), lo=-2, hi=2)
    ref = model.predict(x.astype(np.float32), verbose=0)
    for y in (fused.predict(x), Emulator(separate).predict(x)):
        assert np.abs(y - ref).max() < 0.1 * np.abs(ref).max()


def test_batchnorm_with_config_types_is_not_folded():
    project = convert(float_bn_model(), config={"layers": {"bn1": {"precision": {"scale": "ap_fixed<12,4>"}}}},
                      input_precision="ap_fixed<10,3>")
    assert project.graph["bn1"].op == "batchnorm" and project.graph["bn1"].types["scale"].cpp() == "ap_fixed<12,4>"


# ---------------------------------------------------------------------------- csim == emulator, backends
# narrow saturating/rounding types make the order of the additions and every cast visible
NARROW = {"layers": {"dw1": {"precision": {"accum": "ap_fixed<9,2,AP_RND,AP_SAT>"}},
                     "dw2": {"precision": {"accum": "ap_fixed<8,3,AP_RND_CONV,AP_WRAP>",
                                           "result": "ap_fixed<7,2,AP_RND,AP_SAT>"}},
                     "bn": {"precision": {"scale": "ap_fixed<8,2,AP_RND_CONV,AP_SAT>", "bias": "ap_fixed<6,2>",
                                          "result": "ap_fixed<8,2,AP_RND_CONV,AP_SAT>"}}}}
CSIM_MODELS = {   # name -> (model, config)
    "depthwise_chain": (lambda: _depthwise_chain(), None),
    "depthwise_chain_narrow": (lambda: _depthwise_chain(seed=6), NARROW),
    "separable_1chan": (lambda: qdepthwise_model("same_2x3_stride2_1chan", seed=2, separable=True), None),
    "folded": (lambda: folded_model(seed=3), None),
    "qbn_1d": (lambda: qbn_model(seed=4, flat=True), None),
    "float_bn": (lambda: float_bn_model(seed=5), None),
}


def _depthwise_chain(seed=1):
    """Every depthwise geometry in one project: same 3x3 -> valid 3x2 stride (2, 1) (no bias) -> separable
    same 2x3 stride (1, 2) -> QBatchNormalization, quantizers in between, 3 channels."""
    tf = _tf()
    from qkeras import QActivation, QBatchNormalization, QDense, QDepthwiseConv2D, QSeparableConv2D
    tf.keras.utils.set_random_seed(seed)
    dq = dict(depthwise_quantizer=_q(), bias_quantizer=_q(), depthwise_initializer=_init(),
              bias_initializer=_init(-0.5, 0.5))
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(8, 7, 3), name="x"),
        QDepthwiseConv2D((3, 3), padding="same", name="dw1", **dq), QActivation(_q(6, 2), name="a1"),
        QDepthwiseConv2D((3, 2), strides=(2, 1), padding="valid", use_bias=False, name="dw2", **dq),
        QActivation(_q(6, 2), name="a2"),
        QSeparableConv2D(4, (2, 3), strides=(1, 2), padding="same", depthwise_quantizer=_q(5, 0),
                         pointwise_quantizer=_q(5, 0), bias_quantizer=_q(5, 0), depthwise_initializer=_init(),
                         pointwise_initializer=_init(), bias_initializer=_init(-0.5, 0.5), name="sep"),
        QBatchNormalization(name="bn"), QActivation(_q(6, 2), name="a3"),
        tf.keras.layers.Flatten(name="flat"), QDense(3, kernel_quantizer=_q(), bias_quantizer=_q(), name="fc")])
    _set_bn_stats(model.get_layer("bn"), 4, seed)
    return model


@needs_gxx
@pytest.mark.parametrize("name", sorted(CSIM_MODELS))
def test_csim_equals_emulator_and_backends_agree(name, tmp_path):
    make, config = CSIM_MODELS[name]
    project = convert(make(), config=config, input_precision="ap_fixed<10,3>" if name == "float_bn" else IN_PREC)
    project.write(tmp_path / "prj")
    x = edge_inputs(project, 300)
    assert_csim_equals_emulator(project, tmp_path / "prj", x)
    if config is NARROW:
        trace = project.emulator().predict(x, trace=True)
        assert np.mean(np.abs(trace["dw1"]) >= 1.99) > 0.02          # the accumulator does saturate
        assert np.mean(np.abs(trace["bn"]) >= 1.99) > 0.02
    assert_torch_equals_emulator(project, x)


def test_depthwise_fill_buffer_equals_hls4ml_generated():
    """The depthwise layer's im2col (window indices over all channels) is hls4ml's own generated code."""
    for (h, w, c), k, s, padding, _ in DW.values():
        assert_window_indices_equal_hls4ml(h, w, c, k, s, padding)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make,message", [
    (lambda tf: tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="d"),
     "layer 'd' (DepthwiseConv2D): depth_multiplier=2 is not supported (nnet's depthwise kernel needs n_filt == "
     "n_chan); use depth_multiplier=1"),
    (lambda tf: tf.keras.layers.SeparableConv2D(4, 3, depth_multiplier=3, name="s"),
     "layer 's' (SeparableConv2D): depth_multiplier=3 is not supported (nnet's depthwise kernel needs n_filt == "
     "n_chan); use depth_multiplier=1"),
    (lambda tf: tf.keras.layers.DepthwiseConv2D(3, dilation_rate=2, name="d"),
     "layer 'd' (DepthwiseConv2D): dilation_rate=(2, 2) is not supported yet; use dilation_rate=1"),
    (lambda tf: tf.keras.layers.BatchNormalization(axis=1, name="b"),
     "layer 'b' (BatchNormalization): axis=1 is not supported; normalize the last (channels) axis, axis=-1"),
    (lambda tf: tf.keras.layers.BatchNormalization(renorm=True, name="b"),
     "layer 'b' (BatchNormalization): renorm=True is not supported; use the default (renorm=None/False)"),
])
def test_unsupported_options_name_layer_and_option(make, message):
    model = one_layer_model(make(_tf()), (6, 6, 2))
    with pytest.raises(FrontendError) as e:
        load_graph(model)
    assert str(e.value) == message


def test_depthwise_reuse_factor_is_refused():
    model = qdepthwise_model("same_3x3")
    with pytest.raises(PassError, match="layers.conv: strategy/reuse_factor apply to dense and conv2d layers, "
                                        "'conv' is a depthwise_conv2d layer"):
        convert(model, config={"layers": {"conv": {"reuse_factor": 2}}}, input_precision=IN_PREC)


# ---------------------------------------------------------------------------- random types, every mode
def random_dw_bn_graph(seed: int, accum_mode: str):
    """input -> depthwise_conv2d (random geometry, accum exact / narrow wrapping / narrow saturating / coarser
    than the products) -> activation -> batchnorm (random scale, bias and result types and modes)."""
    from fpga_gen.ir.fixed import product_type
    from fpga_gen.ir import FixedType, Graph, Node, exact_type_for_range
    from fpga_gen.ir.spatial import out_size_and_pads
    from test_backends import _rand_type
    rng = np.random.default_rng(seed)
    h, w, c = (int(v) for v in rng.integers(2, 6, size=3))
    kh, kw = int(rng.integers(1, min(h, 3) + 1)), int(rng.integers(1, min(w, 3) + 1))
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    padding = str(rng.choice(["same", "valid"]))
    (oh, pt, pb), (ow, pl, pr) = out_size_and_pads(h, kh, sh, padding), out_size_and_pads(w, kw, sw, padding)
    xt = _rand_type(rng, width=(3, 12), integer=(-1, 5))
    x = Node("x", "input", [], (h, w, c), types={"result": xt})
    wt, bt = FixedType(int(rng.integers(2, 9)), int(rng.integers(-1, 3))), FixedType(int(rng.integers(2, 9)), 2)
    kernel = rng.integers(wt.raw_min, wt.raw_max + 1, size=(kh, kw, c)) * wt.step
    bias = rng.integers(bt.raw_min, bt.raw_max + 1, size=(c,)) * bt.step
    frac = max(product_type(xt, wt).frac, bt.frac)
    bound = max(abs(xt.min), abs(xt.max)) * np.abs(kernel).reshape(-1, c).sum(0).max() + np.abs(bias).max()
    exact = exact_type_for_range(-int(bound * 2.0 ** frac) - 1, int(bound * 2.0 ** frac) + 1, frac)
    narrow = max(2, exact.width - int(rng.integers(2, 5)))
    at = {"exact": exact,
          "wrap": FixedType(narrow, narrow - frac, True, "TRN", "WRAP"),
          "sat": FixedType(narrow, narrow - frac, True, str(rng.choice(["RND", "TRN"])), "SAT"),
          "coarse": FixedType(exact.width - 2, exact.integer, True, "RND_CONV", "WRAP")}[accum_mode]
    dw = Node("dw", "depthwise_conv2d", ["x"], (oh, ow, c),
              attrs={"in_height": h, "in_width": w, "n_chan": c, "n_filt": c, "kernel_size": (kh, kw),
                     "strides": (sh, sw), "padding": padding, "pads": (pt, pb, pl, pr)},
              weights={"kernel": kernel, "bias": bias},
              types={"weight": wt, "bias": bt, "accum": at, "result": _rand_type(rng, width=(3, 12))})
    act = Node("act", "activation", ["dw"], dw.shape, attrs={"activation": str(rng.choice(["relu", "linear"]))},
               types={"result": _rand_type(rng, width=(3, 12), integer=(-1, 5))})
    st, sbt = FixedType(int(rng.integers(3, 10)), 2), FixedType(int(rng.integers(3, 10)), 3)
    bn = Node("bn", "batchnorm", ["act"], dw.shape, attrs={"n_filt": c},
              weights={"scale": rng.integers(st.raw_min, st.raw_max + 1, size=c) * st.step,
                       "bias": rng.integers(sbt.raw_min, sbt.raw_max + 1, size=c) * sbt.step},
              types={"scale": st, "bias": sbt, "result": _rand_type(rng, width=(3, 12))})
    return Graph(f"dwbn_{seed}", [x, dw, act, bn], inputs=["x"], outputs=["bn"])


@pytest.mark.parametrize("accum_mode", ["exact", "wrap", "sat", "coarse"])
def test_random_depthwise_batchnorm_torch_equals_numpy(accum_mode):
    pytest.importorskip("torch")
    from fpga_gen.emulate.torch_ops import TorchOps
    from test_backends import assert_same_as_numpy
    from test_backends import edge_inputs as edges
    for seed in range(6):
        g = random_dw_bn_graph(seed, accum_mode)
        x = edges(g["x"].types["result"], g["x"].size, 150, seed).reshape(-1, *g["x"].shape)
        assert_same_as_numpy(g, x, TorchOps("cpu"))


@needs_gxx
@pytest.mark.parametrize("seed,accum_mode", [(21, "sat"), (22, "coarse")])
def test_random_depthwise_batchnorm_in_cpp(seed, accum_mode):
    from fpga_gen.api import Project
    from fpga_gen.config import ProjectConfig
    from test_backends import _cpp_safe
    from test_backends import edge_inputs as edges
    g = random_dw_bn_graph(seed, accum_mode)
    x = _cpp_safe(edges(g["x"].types["result"], g["x"].size, 300, seed)).reshape(-1, *g["x"].shape)
    project = Project(g, ProjectConfig(name=f"dwbn_{seed}"))
    with np.errstate(all="ignore"):
        ref = project.predict(x, backend="emu")
    assert np.array_equal(ref, project.predict(x, backend="native"), equal_nan=True)


@needs_gxx
def test_model_reuse_factor_reaches_depthwise_and_batchnorm(tmp_path):
    """Like hls4ml, depthwise and batchnorm take the model's reuse factor (their II; the arithmetic is unchanged)."""
    tf = _tf()
    from qkeras import QBatchNormalization
    base = qdepthwise_model("same_3x3", seed=7)
    model = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=DW["same_3x3"][0], name="x"),
                                 base.layers[0], QBatchNormalization(name="bn"), *base.layers[1:]])
    _set_bn_stats(model.get_layer("bn"), 3, 7)
    project = convert(model, reuse_factor=2, input_precision=IN_PREC)
    for name in ("conv", "bn"):
        assert project.graph[name].attrs["reuse_factor"] == 2
    assert project.graph["conv"].attrs["strategy"] == "latency"
    project.write(tmp_path / "prj")
    params = (tmp_path / "prj" / "firmware" / "parameters.h").read_text()
    assert params.count("static const unsigned reuse_factor = 2;") >= 4      # dw, its mult config, bn, fc
    x = edge_inputs(project, 200)
    assert np.array_equal(csim.predict(tmp_path / "prj", x), project.predict(x))
    from fpga_gen.estimate import estimate
    rows = {r["name"]: r for r in estimate(project.graph, project.config).layers}
    assert rows["bn"]["ii_cycles"] == 2 and rows["conv"]["ii_cycles"] >= 2


@needs_gxx
def test_batchnorm_exact_result_is_sign_extended_for_a_coarse_quantizer(tmp_path):
    """quantized_relu(2, 9) after a 10-bit exact batchnorm result would read past its MSB (an ap_types abort):
    SafeCasts sign-extends the batchnorm's exact type instead, and csim runs every input code."""
    tf = _tf()
    from qkeras import QActivation, QBatchNormalization, QDense, quantized_relu
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="x"),
                                 QDense(3, kernel_quantizer=_q(3, 0), bias_quantizer=_q(3, 0), name="d"),
                                 QBatchNormalization(name="bn"), QActivation(quantized_relu(2, 9), name="a")])
    _set_bn_stats(model.get_layer("bn"), 3, 1)
    cfg = {"layers": {"bn": {"precision": {"scale": "ap_fixed<3,2>", "bias": "ap_fixed<3,2>"}}}}
    project = convert(model, config=cfg, input_precision="ap_fixed<4,2>")
    assert project.graph["bn"].types["result"].cpp() == "ap_fixed<12,7>"      # 10 exact bits + 2 sign bits
    project.write(tmp_path / "prj")
    t = project.graph["x"].types["result"]
    codes = np.arange(t.raw_min, t.raw_max + 1) * t.step
    x = np.stack(np.meshgrid(codes, codes, codes, codes), -1).reshape(-1, 4)
    assert np.array_equal(csim.predict(tmp_path / "prj", x), project.predict(x))
