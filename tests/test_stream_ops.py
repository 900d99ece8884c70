"""io_stream forms of the element-wise ops (tests/test_stream.py covers dense/conv/pooling): every activation
kind (nnet_activation_stream.h, relu_max through fpga-gen's per-word wrapper), every softmax implementation,
batchnorm and apply_scale (nnet::normalize, stream), quant_act (fpga-gen's per-word wrappers): csim equals the
emulator bit for bit on every code of the input type plus random and edge values.  One model covers many ops
(each compiled once): image tensors (one pixel per word, so prelu's flat alpha index and batchnorm's
channel index are exercised across words) and flat ones (one word)."""

import shutil

import numpy as np
import pytest

from fpga_gen import convert, csim
from fpga_gen.hls import write_project
from fpga_gen.hls.layers import HlsWriteError

from test_activations import every_code, random_codes

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
IMG = (4, 4, 3)


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def _inputs(project, n_random=600, seed=0):
    """Every code of the input type (tiled over the image) plus random codes with edge rows (max, min, 0)."""
    t = project.graph["x"].types["result"]
    size = int(np.prod(project.graph["x"].shape))
    x = np.concatenate([every_code(t, size), random_codes(t, n_random, size, seed=seed)])
    return x.reshape((-1,) + tuple(project.graph["x"].shape))


def _check(project, root):
    project.write(root)
    x = _inputs(project)
    emu = project.predict(x)
    got = project.predict(x, backend="csim")
    assert np.array_equal(got, emu), f"{np.mean(got == emu):.4f} match"
    return x, emu


# the element-wise activations, each behind a 1x1 convolution that spreads its input over +-16
ACTS = [
    ("sigmoid", lambda L, tf: L.Activation("sigmoid")), ("tanh", lambda L, tf: L.Activation("tanh")),
    ("softplus", lambda L, tf: L.Activation("softplus")), ("softsign", lambda L, tf: L.Activation("softsign")),
    ("elu", lambda L, tf: L.Activation("elu")), ("elu_alpha", lambda L, tf: L.ELU(alpha=0.7)),
    ("relu6", lambda L, tf: L.Activation("relu6")), ("relu_max3", lambda L, tf: L.ReLU(max_value=3.0)),
    ("leaky", lambda L, tf: L.LeakyReLU(alpha=0.1)), ("thresholded", lambda L, tf: L.ThresholdedReLU(theta=1.3)),
    ("prelu", lambda L, tf: L.PReLU(alpha_initializer=tf.keras.initializers.RandomUniform(-0.7, 1.6))),
    ("hard_sigmoid", lambda L, tf: L.Activation("hard_sigmoid")), ("relu", lambda L, tf: L.Activation("relu")),
]
SOFTMAXES = ("stable", "latency", "legacy", "argmax")


def activation_model(seed=3):
    tf = _tf()
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    spread = dict(kernel_initializer=tf.keras.initializers.RandomUniform(-4.0, 4.0),
                  bias_initializer=tf.keras.initializers.RandomUniform(-2.0, 2.0))
    out = [L.InputLayer(input_shape=IMG, name="x")]
    for k, (name, make) in enumerate(ACTS):
        if k:
            out.append(L.Conv2D(3, 1, name=f"c_{name}", **spread))
        layer = make(L, tf)
        layer._name = name
        out.append(layer)
    out += [L.BatchNormalization(name="bn", beta_initializer=tf.keras.initializers.RandomUniform(-1, 1),
                                 gamma_initializer=tf.keras.initializers.RandomUniform(-2, 2),
                                 moving_mean_initializer=tf.keras.initializers.RandomUniform(-1, 1),
                                 moving_variance_initializer=tf.keras.initializers.RandomUniform(0.5, 2)),
            L.Flatten(name="flat")]
    for impl in SOFTMAXES:
        out += [L.Dense(6, name=f"fc_{impl}", **spread), L.Softmax(name=f"sm_{impl}")]
    out += [L.Dense(5, name="fc_out", **spread), L.BatchNormalization(name="bn_flat"), L.Activation("tanh", name="out")]
    return tf.keras.Sequential(out, name="stream_acts")


ACT_CONFIG = {"layers": {f"sm_{impl}": {"implementation": impl} for impl in SOFTMAXES}}


@pytest.fixture(scope="module")
def act_project():
    return convert(activation_model(), config=ACT_CONFIG, input_precision="ap_fixed<10,5>", io="stream")


@needs_gxx
def test_activations_softmaxes_batchnorm_csim_equals_emulator(act_project, tmp_path):
    g = act_project.graph
    assert {g[n].attrs.get("activation") for n, _ in ACTS} >= {"relu_max", "prelu", "elu", "leaky_relu"}
    assert [g[f"sm_{i}"].attrs["implementation"] for i in SOFTMAXES] == list(SOFTMAXES)
    x, _ = _check(act_project, tmp_path / "prj")
    # every table activation sees inputs across its table range (the conv in front spreads them)
    trace = act_project.emulator().predict(x, trace=True)
    for name in ("tanh", "softplus", "elu", "relu_max3", "prelu", "hard_sigmoid"):
        v = trace[f"c_{name}"]
        assert v.min() < -4 and v.max() > 4, (name, v.min(), v.max())
    top = (tmp_path / "prj" / "firmware" / "stream_acts.cpp").read_text()
    assert "fpga_gen::relu_max<" in top and "nnet::prelu<" in top and "nnet::normalize<" in top


def test_parallel_and_stream_emulate_the_same(act_project):
    x = _inputs(act_project, n_random=50)
    par = convert(activation_model(), config=ACT_CONFIG, input_precision="ap_fixed<10,5>", io="parallel")
    assert np.array_equal(par.predict(x), act_project.predict(x))


def quant_model(seed=5):
    tf = _tf()
    from qkeras import (QActivation, QConv2D, QDense, binary, quantized_bits, quantized_po2, quantized_relu, quantized_sigmoid,
                        quantized_tanh, ternary)
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    init = dict(kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    b6 = quantized_bits(6, 2, alpha=1)
    acts = [("q_bits", quantized_bits(5, 2, alpha=1)), ("q_sym", quantized_bits(4, 1, symmetric=1, alpha=1)), ("q_sigmoid", quantized_sigmoid(3, symmetric=True)),
            ("q_relu", quantized_relu(4, 2)),
            ("q_leaky", quantized_relu(5, 2, negative_slope=0.25)), ("q_binary", binary()),
            ("q_ternary", ternary(threshold=0.3)), ("q_tanh_real", quantized_tanh(5, use_real_tanh=True)),
            ("q_po2", quantized_po2(4))]
    out = [L.InputLayer(input_shape=IMG, name="x")]
    for k, (name, q) in enumerate(acts):
        if k:
            out.append(QConv2D(3, 1, kernel_quantizer=quantized_bits(6, 2, alpha=1), bias_quantizer=b6,
                               name=f"c_{name}", **init))
        out.append(QActivation(q, name=name))
    # a per-channel power-of-two scale (apply_scale) on image words, a batchnorm after it, flat words after that
    out += [QConv2D(4, 1, kernel_quantizer=quantized_bits(4, 0, alpha="auto_po2"), bias_quantizer=b6,
                    name="c_scaled", **init),
            L.BatchNormalization(name="bn"), QActivation(quantized_relu(6, 2, negative_slope=0.5), name="q_leaky2"),
            L.Flatten(name="flat"),
            QDense(6, kernel_quantizer=quantized_bits(4, 0, alpha="auto_po2"), bias_quantizer=b6, name="fc", **init),
            QActivation(quantized_bits(6, 2, alpha=1), name="q_out")]
    model = tf.keras.Sequential(out, name="stream_quant")
    w = model.get_layer("c_scaled").get_weights()          # output channels a power of two apart
    w[0] = w[0] * np.array([1.0, 0.25, 2.0, 0.5])
    model.get_layer("c_scaled").set_weights(w)
    return model


@needs_gxx
def test_quant_act_apply_scale_csim_equals_emulator(tmp_path):
    model = quant_model()
    project = convert(model, input_precision="ap_fixed<10,4>", io="stream")
    ops = [n.op for n in project.graph]
    assert ops.count("apply_scale") == 2 and "batchnorm" in ops
    fns = {n.attrs["function"] for n in project.graph if n.op == "quant_act"}
    assert fns == {"round", "leaky", "step", "table"}, fns
    x, emu = _check(project, tmp_path / "prj")
    assert not np.all(emu == 0)
    top = (tmp_path / "prj" / "firmware" / "stream_quant.cpp").read_text()
    assert "fpga_gen::quant_act_table<" in top and "fpga_gen::quant_act_leaky<" in top
    # the emulator equals QKeras on this model (fixed point all through), so csim does too
    ref = model.predict(x.astype(np.float32), verbose=0, batch_size=4096)
    assert np.array_equal(emu, ref.astype(np.float64))


def test_stream_refusals_are_one_line(tmp_path):
    tf = _tf()
    L = tf.keras.layers
    model = tf.keras.Sequential([L.InputLayer(input_shape=(6,), name="x"), L.Softmax(name="sm")])
    project = convert(model, config={"softmax": {"implementation": "legacy", "exp_table_size": 512}},
                      input_precision="ap_fixed<10,4>", io="stream")
    with pytest.raises(HlsWriteError) as e:
        project.write(tmp_path / "p1")
    assert str(e.value) == ("layer 'sm' (softmax): io_stream legacy softmax uses one table size for both tables, "
                            "got exp_table_size 512 and inv_table_size 1024; make them equal or use io_type "
                            "'parallel'")


def branch_model(seed=2):
    """Branches and merges: the input read by three layers, a residual add around two convolutions, every merge
    mode, a tensor merged with itself, concatenations along channels, height and width (image words) and of
    two dense outputs (flat words)."""
    tf = _tf()
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    init = dict(kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    x = L.Input((5, 4, 3), name="x")
    r1 = L.ReLU(name="r1")(L.Conv2D(3, 3, padding="same", name="c1", **init)(x))
    c2 = L.Conv2D(3, 3, padding="same", name="c2", **init)(r1)
    add = L.Add(name="add")([c2, x])                                  # residual: x waits for two convolutions
    mx = L.Maximum(name="max")([add, r1])
    sub = L.Subtract(name="sub")([mx, c2])
    avg = L.Average(name="avg")([sub, x])
    mul = L.Multiply(name="mul")([avg, avg])                          # one tensor, both inputs
    mn = L.Minimum(name="min")([mul, add])
    cat_c = L.Concatenate(axis=-1, name="cat_c")([mn, L.Conv2D(2, 1, name="c3", **init)(add)])
    cat_h = L.Concatenate(axis=1, name="cat_h")([cat_c, cat_c])
    cat_w = L.Concatenate(axis=2, name="cat_w")([cat_h, L.Conv2D(5, 1, name="c4", **init)(cat_h)])
    f = L.Flatten(name="flat")(cat_w)
    cat_1 = L.Concatenate(name="cat_1")([L.Dense(4, name="d1", **init)(f), L.Dense(5, name="d2", **init)(f)])
    return tf.keras.Model(x, L.Dense(3, name="out", **init)(cat_1), name="stream_branches")


BRANCH_CONFIG = {"layers": {"mul": {"precision": {"result": "ap_fixed<16,6>"}}}}


@needs_gxx
def test_branches_merges_concatenations_csim_equals_emulator(tmp_path):
    project = convert(branch_model(), config=BRANCH_CONFIG, input_precision="ap_fixed<10,4>", io="stream")
    modes = {n.attrs["mode"] for n in project.graph if n.op == "merge"}
    assert modes == {"add", "subtract", "multiply", "average", "maximum", "minimum"}
    x, emu = _check(project, tmp_path / "prj")
    assert np.array_equal(convert(branch_model(), config=BRANCH_CONFIG, input_precision="ap_fixed<10,4>",
                                  io="parallel").predict(x), emu)
    top = (tmp_path / "prj" / "firmware" / "stream_branches.cpp").read_text()
    # one copy per reader, each FIFO as deep as the whole tensor (the residual's skip copy holds the input
    # while the two convolutions run), and every FIFO read by exactly one process
    assert "nnet::clone_stream<input_pack_t, input_pack_t, 60>(x_in, clone_x_out1, clone_x_out2, clone_x_out3);" in top
    assert "#pragma HLS STREAM variable=clone_x_out2 depth=20" in top
    assert "nnet::multiply<avg_pack_t, avg_pack_t, mul_pack_t, config_mul>(clone_avg_out1, clone_avg_out2" in top
    import re
    streams = re.findall(r"hls::stream<\w+> (\w+)\(", top)
    calls = "\n".join(line for line in top.splitlines() if line.strip().startswith("nnet::"))
    for s in streams:
        assert len(re.findall(rf"\b{s}\b", calls)) == 2, s          # written once, read once
    assert csim.run_testbench(tmp_path / "prj").passed


def spatial_model(seed=4):
    """Zero padding, depthwise convolutions ('same', and a non-square kernel with strides (2, 1)), a separable
    convolution, cropping, nearest upsampling by (2, 3), a transpose (Permute) and global max / average
    pooling of one tensor, concatenated."""
    tf = _tf()
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    init = dict(depthwise_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    x = L.Input((6, 5, 3), name="x")
    y = L.ZeroPadding2D(((1, 0), (2, 1)), name="zp")(x)
    y = L.DepthwiseConv2D(3, padding="same", name="dw1", **init)(y)
    y = L.DepthwiseConv2D((2, 3), strides=(2, 1), name="dw2", **init)(y)
    y = L.SeparableConv2D(4, (2, 2), padding="same", name="sep", pointwise_initializer=
                          tf.keras.initializers.RandomUniform(-1.0, 1.0), **init)(y)
    y = L.Cropping2D(((1, 0), (1, 2)), name="crop")(y)
    y = L.UpSampling2D((2, 3), name="up")(y)
    y = L.Permute((2, 1, 3), name="perm")(y)
    y = L.Concatenate(name="cat")([L.GlobalMaxPooling2D(name="gmax")(y), L.GlobalAveragePooling2D(name="gavg")(y)])
    return tf.keras.Model(x, L.Dense(3, name="out", kernel_initializer=tf.keras.initializers.RandomUniform(-1, 1))(y),
                          name="stream_spatial")


@needs_gxx
def test_padding_depthwise_cropping_upsampling_transpose_global_pooling_csim_equals_emulator(tmp_path):
    project = convert(spatial_model(), input_precision="ap_fixed<10,4>", io="stream")
    ops = [n.op for n in project.graph]
    for op in ("zeropad", "depthwise_conv2d", "cropping", "upsampling", "transpose", "pooling"):
        assert op in ops, (op, ops)
    x, emu = _check(project, tmp_path / "prj")
    trace = project.emulator().predict(x, trace=True)
    assert not np.all(trace["gavg"] == 0) and not np.all(trace["gmax"] == 0)
    top = (tmp_path / "prj" / "firmware" / "stream_spatial.cpp").read_text()
    for fn in ("zeropad2d_cl", "depthwise_conv_2d_cl", "cropping2d_cl", "resize_nearest", "transpose",
               "global_pooling2d_cl"):
        assert f"nnet::{fn}<" in top, fn


def one_d_model(seed=6):
    """The 1-D layers (in_height 1): zero padding, a 'same' Conv1D, cropping, upsampling, max pooling, global
    average pooling."""
    tf = _tf()
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    init = dict(kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    return tf.keras.Sequential([
        L.InputLayer(input_shape=(12, 3), name="x"), L.ZeroPadding1D((2, 1), name="zp"),
        L.Conv1D(4, 3, padding="same", name="conv", **init), L.Cropping1D((1, 2), name="crop"),
        L.UpSampling1D(2, name="up"), L.MaxPooling1D(2, name="pool"), L.GlobalAveragePooling1D(name="gavg"),
        L.Dense(3, name="out", **init)], name="stream_1d")


@needs_gxx
def test_one_d_layers_csim_equals_emulator(tmp_path):
    project = convert(one_d_model(), input_precision="ap_fixed<10,4>", io="stream")
    assert [n.shape for n in project.graph][1:6] == [(15, 3), (15, 4), (12, 4), (24, 4), (12, 4)]
    _check(project, tmp_path / "prj")
    top = (tmp_path / "prj" / "firmware" / "stream_1d.cpp").read_text()
    assert "nnet::zeropad1d_cl<" in top and "nnet::cropping1d_cl<" in top


@needs_gxx
def test_hard_tanh_from_a_graph(tmp_path):
    """hard_tanh has no tf.keras activation: the node is built directly, on image words."""
    from fpga_gen.api import Project
    from fpga_gen.config import config_from_dict
    from fpga_gen.ir import Graph, Node
    from fpga_gen.passes import DEFAULT_PASSES, run_passes
    g = Graph("ht")
    g.add(Node("x", "input", [], (4, 4, 2)))
    g.add(Node("a", "activation", ["x"], (4, 4, 2), attrs={"activation": "hard_tanh"}))
    g.inputs, g.outputs = ["x"], ["a"]
    cfg = config_from_dict({"input_precision": "ap_fixed<10,5>", "io_type": "stream"})
    run_passes(g, cfg, DEFAULT_PASSES)
    project = Project(g, cfg)
    x = _inputs(project, n_random=100)
    emu = project.predict(x)
    assert np.array_equal(emu, np.clip(x, -1, 1))
    project.write(tmp_path / "prj")
    assert np.array_equal(project.predict(x, backend="csim"), emu)


def test_merge_of_differently_packed_inputs_is_refused(tmp_path):
    tf = _tf()
    L = tf.keras.layers
    x = L.Input((2, 2, 3), name="x")
    f = L.Flatten(name="flat")(L.Conv2D(3, 1, name="c")(x))
    model = tf.keras.Model(x, L.Add(name="add")([f, L.Dense(12, name="d")(f)]))
    project = convert(model, input_precision="ap_fixed<10,4>", io="stream")
    with pytest.raises(HlsWriteError) as e:
        project.write(tmp_path / "p")
    assert str(e.value) == ("layer 'add' (merge): io_stream add reads its inputs word by word: they arrive in words "
                            "of 3 and 12 values; use io_type 'parallel'")
