"""Depthwise and separable 1-D layers (io_parallel, channels_last): DepthwiseConv1D, SeparableConv1D and
QSeparableConv1D (QKeras 0.9 has no QDepthwiseConv1D).  They are the 2-D depthwise_conv2d (+ 1x1 conv2d) nodes
with in_height 1, as Conv1D is conv2d with one row.

Emulator == QKeras exactly for QSeparableConv1D; DepthwiseConv1D (a float layer) equals Keras exactly with
weights on a grid and per-layer types that hold them; float SeparableConv1D stays within the float error bound;
csim == emulator bit for bit and every back end agrees (one compiled project holds every geometry); the
estimator, the limits pass and the reuse pass treat the 1-D node like the 2-D one with one row."""

import shutil

import numpy as np
import pytest

from fpga_gen import convert
from fpga_gen.emulate.float_ref import error_bound
from fpga_gen.frontend import FrontendError, load_graph
from helpers_graphs import assert_csim_equals_emulator, assert_torch_equals_emulator, edge_inputs
from qmodels import grid_images, one_layer_model
from qmodels import qbits as _q
from qmodels import uniform_init as _init

IN_PREC = "ap_fixed<12,4>"
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


# ---------------------------------------------------------------------------- models
CASES = {   # (input shape (width, channels), kernel, stride, padding, use_bias) -> expected pads (left, right)
    "same_k3": ((9, 3), 3, 1, "same", True),
    "valid_k3_stride2": ((9, 3), 3, 2, "valid", True),
    "same_k4_stride2_asym": ((9, 2), 4, 2, "same", True),          # pads (1, 2)
    "same_k2_stride3_1chan": ((10, 1), 2, 3, "same", True),
    "valid_k1_5chan_nobias": ((6, 5), 1, 1, "valid", False),
}
PADS = {"same_k3": (1, 1), "valid_k3_stride2": (0, 0), "same_k4_stride2_asym": (1, 2),
        "same_k2_stride3_1chan": (0, 1), "valid_k1_5chan_nobias": (0, 0)}


def qseparable_model(case, seed=0):
    """input -> QSeparableConv1D(4) -> quantized_bits -> Flatten -> QDense(3)."""
    tf = _tf()
    from qkeras import QActivation, QDense, QSeparableConv1D
    shape, k, s, pad, use_bias = CASES[case]
    tf.keras.utils.set_random_seed(seed)
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=shape, name="x"),
        QSeparableConv1D(4, k, strides=s, padding=pad, use_bias=use_bias, depthwise_quantizer=_q(),
                         pointwise_quantizer=_q(), bias_quantizer=_q(), depthwise_initializer=_init(),
                         pointwise_initializer=_init(), bias_initializer=_init(-0.5, 0.5), name="conv"),
        QActivation(_q(6, 2), name="act"), tf.keras.layers.Flatten(name="flat"),
        QDense(3, kernel_quantizer=_q(), bias_quantizer=_q(), name="fc")], name="qsep1d")


def depthwise_model(case, seed=0):
    """input -> DepthwiseConv1D, its weights on the ap_fixed<6,1> grid (a float layer: exact with the config
    of GRID_CONFIG)."""
    tf = _tf()
    shape, k, s, pad, use_bias = CASES[case]
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=shape, name="x"),
        tf.keras.layers.DepthwiseConv1D(k, strides=s, padding=pad, use_bias=use_bias, name="conv")], name="dw1d")
    rng = np.random.default_rng(seed)
    model.get_layer("conv").set_weights([np.round(rng.uniform(-1, 1, w.shape) * 32) / 32
                                         for w in model.get_layer("conv").get_weights()])
    return model


# weights/bias hold the grid exactly, the result holds every sum of <= 4 products of 12-bit inputs and 6-bit weights
GRID_CONFIG = {"layers": {"conv": {"precision": {"weight": "ap_fixed<6,1>", "bias": "ap_fixed<6,1>",
                                                 "result": "ap_fixed<26,8>"}}}}


# ---------------------------------------------------------------------------- emulator == Keras/QKeras
@pytest.mark.parametrize("case", sorted(CASES))
def test_qseparable_conv1d_emulator_equals_qkeras_exactly(case):
    shape, k, s, pad, _ = CASES[case]
    model = qseparable_model(case)
    project = convert(model, input_precision=IN_PREC)
    g = project.graph
    assert [(n.name, n.op) for n in g][1:4] == [("conv_depthwise", "depthwise_conv2d"),
                                                ("conv_pointwise", "conv2d"), ("act", "activation")]
    dw, pw = g["conv_depthwise"], g["conv_pointwise"]
    ow = model.get_layer("conv").output_shape[1]
    assert dw.shape == (ow, shape[1]) and pw.shape == (ow, 4)
    assert (dw.attrs["in_height"], dw.attrs["in_width"], dw.attrs["kernel_size"], dw.attrs["strides"],
            dw.attrs["pads"]) == (1, shape[0], (1, k), (1, s), (0, 0) + PADS[case])
    assert (pw.attrs["in_height"], pw.attrs["in_width"], pw.attrs["kernel_size"]) == (1, ow, (1, 1))
    x = grid_images(300, shape)
    ref = model.predict(x.astype(np.float32), verbose=0).astype(np.float64)
    assert np.array_equal(project.predict(x), ref)


def test_qseparable_conv1d_with_alpha_scales_equals_qkeras_exactly():
    """Per-channel auto_po2 scales on both kernels: QKeras quantizes the kernels expanded to 2-D; the frontend
    folds each scale into the exact weights."""
    tf = _tf()
    from qkeras import QActivation, QSeparableConv1D, quantized_bits
    tf.keras.utils.set_random_seed(9)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(9, 3), name="x"),
        QSeparableConv1D(4, 3, strides=2, padding="same", depthwise_quantizer=quantized_bits(5, 0, alpha="auto_po2"),
                         pointwise_quantizer=quantized_bits(5, 0, alpha="auto_po2"), bias_quantizer=_q(),
                         depthwise_initializer=_init(-3, 3), pointwise_initializer=_init(-0.2, 0.2),
                         bias_initializer=_init(-0.5, 0.5), name="conv"),
        QActivation(_q(8, 3), name="act")])
    project = convert(model, input_precision=IN_PREC)
    x = grid_images(300, (9, 3))
    ref = model.predict(x.astype(np.float32), verbose=0).astype(np.float64)
    assert np.array_equal(project.predict(x), ref)
    assert np.mean(ref != 0) > 0.5


@needs_gxx
@pytest.mark.parametrize("case", ["same_k4_stride2_asym", "same_k2_stride3_1chan"])
def test_io_stream_1d_separable_csim_equals_emulator(case, tmp_path):
    """io_stream: the 1-D depthwise runs hls4ml's line buffer (its 1-D kernel, in_height 1) through the same
    DepthwiseDenseLatency window as io_parallel; 'same' padding is a zero-padding stage in front."""
    project = convert(qseparable_model(case), io_type="stream", input_precision=IN_PREC)
    project.write(tmp_path / "prj")
    x = edge_inputs(project, 400)
    emu = project.predict(x)
    assert np.array_equal(project.predict(x, backend="csim"), emu)
    top = (tmp_path / "prj" / "firmware" / "qsep1d.cpp").read_text()
    assert "nnet::depthwise_conv_2d_cl<" in top and "nnet::zeropad2d_cl<" in top


@pytest.mark.parametrize("case", sorted(CASES))
def test_depthwise_conv1d_on_a_grid_equals_keras_exactly(case):
    shape = CASES[case][0]
    model = depthwise_model(case)
    project = convert(model, config=GRID_CONFIG, input_precision=IN_PREC)
    assert [n.op for n in project.graph] == ["input", "depthwise_conv2d"]
    x = grid_images(300, shape)
    ref = model.predict(x.astype(np.float32), verbose=0).astype(np.float64)
    out = project.predict(x)
    assert np.array_equal(out, ref)
    assert np.mean(out != 0) > 0.5                      # not trivially zero


def test_float_separable_conv1d_within_the_float_bound():
    tf = _tf()
    tf.keras.utils.set_random_seed(4)
    L = tf.keras.layers
    model = tf.keras.Sequential([
        L.InputLayer(input_shape=(12, 3), name="x"),
        L.SeparableConv1D(5, 3, strides=2, padding="same", activation="relu", name="sep"),
        L.SeparableConv1D(2, 2, padding="valid", name="sep2"), L.Flatten(name="flat")])
    project = convert(model, precision="ap_fixed<18,6>")
    assert [n.op for n in project.graph][1:4] == ["depthwise_conv2d", "conv2d", "activation"]
    x = grid_images(300, (12, 3), lo=-2, hi=2, seed=5)
    ref_graph, _ = load_graph(model)
    bound = error_bound(project.graph, ref_graph, x)[project.graph.outputs[0]]
    keras = model.predict(x.astype(np.float32), verbose=0)
    err = np.abs(project.predict(x) - keras)
    assert np.all(err <= bound.reshape(err.shape) + 1e-5 * (1 + np.abs(keras)))
    assert 0 < err.max() < 0.05                            # rounded, and close


def test_keras3_archive_with_depthwise_and_separable_layers_within_the_float_bound(tmp_path):
    """Keras 3 names the depthwise kernel ``kernel`` and has no ``output_shape``: the same handlers convert it."""
    from fpga_gen.frontend.keras.loader import import_keras3
    keras = import_keras3()
    keras.utils.set_random_seed(6)
    L = keras.layers
    inp = keras.Input((10, 3), name="x")
    h = L.SeparableConv1D(4, 3, strides=2, padding="same", name="sep")(inp)
    h = L.DepthwiseConv1D(2, name="dw")(h)
    h = L.Reshape((1, 4, 4), name="rs")(h)
    h = L.DepthwiseConv2D((1, 2), name="dw2")(h)
    out = L.SeparableConv2D(2, (1, 2), name="sep2")(h)
    model = keras.Model(inp, out, name="k3_sep")
    model.save(tmp_path / "m.keras")
    project = convert(tmp_path / "m.keras", precision="ap_fixed<18,6>")
    assert [n.op for n in project.graph] == ["input", "depthwise_conv2d", "conv2d", "depthwise_conv2d",
                                             "depthwise_conv2d", "depthwise_conv2d", "conv2d"]
    x = grid_images(200, (10, 3), lo=-2, hi=2, seed=6)
    ref_graph, _ = load_graph(tmp_path / "m.keras")
    bound = error_bound(project.graph, ref_graph, x)[project.graph.outputs[0]]
    k3 = np.asarray(model.predict(x.astype(np.float32), verbose=0)).reshape(200, -1)
    err = np.abs(project.predict(x).reshape(200, -1) - k3)
    assert np.all(err <= bound.reshape(err.shape) + 1e-5 * (1 + np.abs(k3)))
    assert 0 < err.max() < 0.02

def test_one_d_node_equals_the_two_d_layer_with_one_row():
    """DepthwiseConv1D on (w, c) == DepthwiseConv2D (1, k) on (1, w, c): same values, same estimate."""
    tf = _tf()
    from fpga_gen.estimate import estimate
    m1 = depthwise_model("same_k4_stride2_asym", seed=2)
    m2 = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(1, 9, 2), name="x"),
                              tf.keras.layers.DepthwiseConv2D((1, 4), strides=(1, 2), padding="same", name="conv")])
    w, b = m1.get_layer("conv").get_weights()
    m2.get_layer("conv").set_weights([w[None], b])
    p1 = convert(m1, config=GRID_CONFIG, input_precision=IN_PREC)
    p2 = convert(m2, config=GRID_CONFIG, input_precision=IN_PREC)
    x = grid_images(50, (9, 2))
    assert np.array_equal(p1.predict(x).reshape(50, -1), p2.predict(x[:, None]).reshape(50, -1))
    r1 = {r["name"]: r for r in estimate(p1.graph, p1.config).layers}["conv"]
    r2 = {r["name"]: r for r in estimate(p2.graph, p2.config).layers}["conv"]
    keys = ("LUT", "FF", "DSP", "latency_cycles", "ii_cycles")
    assert [r1[k] for k in keys if k in r1] == [r2[k] for k in keys if k in r2] and r1["LUT"] > 0


def test_reuse_factor_and_limits_reach_the_1d_depthwise():
    tf = _tf()
    from fpga_gen.estimate import estimate
    from fpga_gen.passes import PassError
    project = convert(qseparable_model("same_k3", seed=3), reuse_factor=3, input_precision=IN_PREC)
    dw = project.graph["conv_depthwise"]
    assert (dw.attrs["reuse_factor"], dw.attrs["strategy"]) == (3, "latency")
    rows = {r["name"]: r for r in estimate(project.graph, project.config).layers}
    assert rows["conv_depthwise"]["ii_cycles"] >= 3
    # 9 * 512 products in one unrolled depthwise kernel (a window wider than the input, padded): refused
    # before anything is written
    big = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4, 512), name="x"),
                               tf.keras.layers.DepthwiseConv1D(9, padding="same", name="dw")])
    p = convert(big)
    assert p.graph["dw"].meta["hls_limit"] == (
        "layer 'dw': a 9x512 depthwise_conv2d layer (per output pixel) is too large for io_parallel: the Latency "
        "strategy unrolls all its 4608 multiplications, and Vitis HLS stops unrolling and partitioning past 4096; "
        "nnet's depthwise kernel has the latency strategy only: use fewer channels or a smaller kernel, or "
        "io_type stream")
    with pytest.raises(PassError, match="layer 'dw': a 9x512 depthwise_conv2d"):
        p.write("/nonexistent/never_written")


# ---------------------------------------------------------------------------- csim == emulator, back ends
def chain_model(seed=1):
    """Every 1-D geometry in one project: 1 channel QSeparableConv1D same k2 -> float DepthwiseConv1D same k3
    stride 2 (no bias) -> QSeparableConv1D same k4 stride 2 (asymmetric pads) -> DepthwiseConv1D valid k2 ->
    QDense, quantizers in between."""
    tf = _tf()
    from qkeras import QActivation, QDense, QSeparableConv1D
    tf.keras.utils.set_random_seed(seed)
    sq = dict(depthwise_quantizer=_q(), pointwise_quantizer=_q(), bias_quantizer=_q(), depthwise_initializer=_init(),
              pointwise_initializer=_init(), bias_initializer=_init(-0.5, 0.5))
    L = tf.keras.layers
    return tf.keras.Sequential([
        L.InputLayer(input_shape=(13, 1), name="x"),
        QSeparableConv1D(3, 2, padding="same", name="sep1", **sq), QActivation(_q(6, 2), name="a1"),
        L.DepthwiseConv1D(3, strides=2, padding="same", use_bias=False, name="dw2"), QActivation(_q(6, 2), name="a2"),
        QSeparableConv1D(4, 4, strides=2, padding="same", name="sep3", **sq), QActivation(_q(6, 2), name="a3"),
        L.DepthwiseConv1D(2, padding="valid", name="dw4"), QActivation(_q(6, 2), name="a4"),
        L.Flatten(name="flat"), QDense(3, kernel_quantizer=_q(), bias_quantizer=_q(), name="fc")], name="chain1d")


@pytest.fixture(scope="module")
def chain_project(tmp_path_factory):
    project = convert(chain_model(), input_precision=IN_PREC)
    path = tmp_path_factory.mktemp("sep1d") / "prj"
    project.write(path)
    return project, path


@needs_gxx
def test_csim_equals_emulator(chain_project):
    project, path = chain_project
    g = project.graph
    assert [g[n].shape for n in ("sep1_depthwise", "sep1_pointwise", "dw2", "sep3_depthwise", "sep3_pointwise",
                                 "dw4")] == [(13, 1), (13, 3), (7, 3), (4, 3), (4, 4), (3, 4)]
    assert_csim_equals_emulator(project, path, edge_inputs(project, 300))
    firmware = (path / "firmware" / "myproject.cpp").read_text() if (path / "firmware" / "myproject.cpp").exists() \
        else "".join(p.read_text() for p in (path / "firmware").glob("*.cpp"))
    assert firmware.count("nnet::depthwise_conv_2d_cl<") == 4


def test_every_backend_equals_the_emulator(chain_project):
    project, _ = chain_project
    assert_torch_equals_emulator(project, edge_inputs(project, 300, seed=4))


# ---------------------------------------------------------------------------- errors
def _qsep(**kw):
    from qkeras import QSeparableConv1D
    return QSeparableConv1D(4, 3, depthwise_quantizer=_q(), pointwise_quantizer=_q(), name="q", **kw)


@pytest.mark.parametrize("make,message", [
    (lambda tf: tf.keras.layers.DepthwiseConv1D(3, depth_multiplier=2, name="d"),
     "layer 'd' (DepthwiseConv1D): depth_multiplier=2 is not supported (nnet's depthwise kernel needs n_filt == "
     "n_chan); use depth_multiplier=1"),
    (lambda tf: tf.keras.layers.SeparableConv1D(4, 3, depth_multiplier=3, name="s"),
     "layer 's' (SeparableConv1D): depth_multiplier=3 is not supported (nnet's depthwise kernel needs n_filt == "
     "n_chan); use depth_multiplier=1"),
    (lambda tf: _qsep(depth_multiplier=2),
     "layer 'q' (QSeparableConv1D): depth_multiplier=2 is not supported (nnet's depthwise kernel needs n_filt == "
     "n_chan); use depth_multiplier=1"),
    (lambda tf: tf.keras.layers.DepthwiseConv1D(3, dilation_rate=2, name="d"),
     "layer 'd' (DepthwiseConv1D): dilation_rate=(2,) is not supported yet; use dilation_rate=1"),
    (lambda tf: _qsep(dilation_rate=2),
     "layer 'q' (QSeparableConv1D): dilation_rate=(2,) is not supported yet; use dilation_rate=1"),
    (lambda tf: tf.keras.layers.SeparableConv1D(4, 3, data_format="channels_first", name="s"),
     "layer 's' (SeparableConv1D): data_format='channels_first' is not supported; use data_format='channels_last'"),
    (lambda tf: tf.keras.layers.DepthwiseConv1D(3, data_format="channels_first", name="d"),
     "layer 'd' (DepthwiseConv1D): data_format='channels_first' is not supported; use data_format='channels_last'"),
    (lambda tf: tf.keras.layers.SeparableConv1D(4, 3, padding="causal", name="s"),
     "layer 's' (SeparableConv1D): padding='causal' is not supported; use 'valid' or 'same'"),
])
def test_unsupported_options_name_layer_and_option(make, message):
    model = one_layer_model(make(_tf()), (8, 8))
    with pytest.raises(FrontendError) as e:
        load_graph(model)
    assert str(e.value) == message

