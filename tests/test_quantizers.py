"""The QKeras 0.9 quantizer zoo, bit-exact: every activation quantizer on every value of an input
type (rounding ties, thresholds, saturation), and weight quantizers (binary, ternary, po2, 1-bit,
alpha='auto_po2' split into apply_scale) in QDense/QConv2D.  For each: emulator == QKeras exactly
(array_equal), csim == emulator bit for bit, and every back end (emu, gpu on TorchOps, csim, native)
gives the same bits.  Unsupported options fail with one line naming the layer and the fix."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fpga_gen import convert
from fpga_gen.frontend import FrontendError
from fpga_gen.ir import FixedType

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

IN_TYPE = "ap_fixed<10,4>"        # every one of its 1024 values is fed to each activation quantizer


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def _all_values(t: str) -> np.ndarray:
    ft = FixedType.parse(t)
    return (np.arange(ft.raw_min, ft.raw_max + 1, dtype=np.float64) * 2.0 ** -ft.frac)[:, None]


def _activation_quantizers():
    from qkeras import (binary, quantized_bits, quantized_po2, quantized_relu, quantized_relu_po2, quantized_sigmoid,
                        quantized_tanh, ternary)
    return {
        "bits_sym": quantized_bits(4, 1, symmetric=1, alpha=1),
        "bits_unsigned": quantized_bits(5, 2, keep_negative=False, alpha=1),
        "relu": quantized_relu(4, 1),
        "relu_slope": quantized_relu(4, 1, negative_slope=0.25),
        "relu_slope_tiny": quantized_relu(3, 2, negative_slope=0.0625),
        "relu_slope_half": quantized_relu(6, 2, negative_slope=0.5),
        "tanh": quantized_tanh(4),
        "tanh_sym": quantized_tanh(5, symmetric=True),
        "sigmoid": quantized_sigmoid(4),
        "sigmoid_sym": quantized_sigmoid(3, symmetric=True),
        "binary": binary(),
        "binary_01": binary(use_01=True),
        "binary_alpha": binary(alpha=0.5),
        "ternary": ternary(),
        "ternary_thr_alpha": ternary(threshold=0.5, alpha=2.0),
        "ternary_thr_offgrid": ternary(threshold=0.3),
        "binary_tanh": "binary_tanh",
        "binary_sigmoid": "binary_sigmoid",
        # float functions in QKeras, tabulated (thresholds on the input grid)
        "real_tanh": quantized_tanh(4, use_real_tanh=True),
        "real_tanh_sym": quantized_tanh(6, symmetric=True, use_real_tanh=True),
        "real_sigmoid": quantized_sigmoid(5, use_real_sigmoid=True),
        "po2": quantized_po2(4),
        "po2_max": quantized_po2(5, 4),
        "po2_quadratic": quantized_po2(5, quadratic_approximation=True),
        "po2_floor": quantized_po2(4, log2_rounding="floor"),
        "relu_po2": quantized_relu_po2(4),
        "relu_po2_slope": quantized_relu_po2(4, 2, negative_slope=0.25),
    }


ACT_CASES = list(_activation_quantizers())
CSIM_CASES = ("bits_sym", "tanh_sym", "sigmoid_sym", "relu_slope", "relu_slope_tiny", "binary_01", "binary_tanh",
              "ternary_thr_offgrid", "real_tanh_sym", "po2_max", "relu_po2_slope")


def _act_model(key):
    tf = _tf()
    from qkeras import QActivation
    q = _activation_quantizers()[key]
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(1,), name="x"),
                                QActivation(q, name="q")], name=f"q_{key}")


@pytest.fixture(scope="module")
def act_projects():
    return {}


def _act_project(cache, key):
    if key not in cache:
        m = _act_model(key)
        cache[key] = (m, convert(m, input_precision=IN_TYPE))
    return cache[key]


@pytest.mark.parametrize("key", ACT_CASES)
def test_activation_quantizer_equals_qkeras_on_every_input_value(act_projects, key):
    model, project = _act_project(act_projects, key)
    x = _all_values(IN_TYPE)
    ref = model.predict(x.astype(np.float32), verbose=0, batch_size=4096).astype(np.float64)
    emu = project.predict(x)
    assert np.array_equal(emu, ref), (key, x[emu != ref][:5], emu[emu != ref][:5], ref[emu != ref][:5])


@needs_gxx
def test_activation_quantizers_csim_equals_emulator(act_projects):
    """Each single-quantizer project C-simulated on all 1024 input values (a few seconds each), one per C++
    code path: the three quant_act functions with and without their options, and the SAT_SYM casts."""
    x = _all_values(IN_TYPE)
    for key in CSIM_CASES:
        _, project = _act_project(act_projects, key)
        emu = project.predict(x)
        got = project.predict(x, backend="csim")
        assert np.array_equal(got, emu), (key, int((got != emu).sum()))


def test_activation_types_are_the_small_exact_ones(act_projects):
    types = {k: _act_project(act_projects, k)[1].graph["q"].types["result"].cpp() for k in
             ("bits_sym", "tanh_sym", "sigmoid", "relu_slope", "binary", "binary_01", "ternary", "ternary_thr_alpha")}
    assert types == {
        "bits_sym": "ap_fixed<4,2,AP_RND_CONV,AP_SAT_SYM>",
        "tanh_sym": "ap_fixed<5,1,AP_RND_CONV,AP_SAT_SYM>",
        "sigmoid": "ap_ufixed<4,0,AP_RND_CONV,AP_SAT>",
        "relu_slope": "ap_fixed<4,2>",             # [-0.5, 1.75] in steps of 0.25
        "binary": "ap_fixed<2,2>",                 # +-1: ap_int<2>
        "binary_01": "ap_ufixed<1,1>",             # 0/1: ap_uint<1>
        "ternary": "ap_fixed<2,2>",
        "ternary_thr_alpha": "ap_fixed<2,3>",      # -2, 0, 2
    }


def test_float_quantizer_tables_equal_qkeras_on_a_wide_input():
    """The tabulated float quantizers on all 2**18 values of ap_fixed<18,5> (steps of 2**-13): still exact."""
    tf = _tf()
    from qkeras import QActivation, quantized_po2, quantized_relu_po2, quantized_sigmoid, quantized_tanh
    x = _all_values("ap_fixed<18,5>")
    for q in (quantized_tanh(8, use_real_tanh=True), quantized_sigmoid(8, use_real_sigmoid=True), quantized_po2(6),
              quantized_relu_po2(5, 8, negative_slope=0.5)):
        m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(1,), name="x"), QActivation(q, name="q")])
        project = convert(m, input_precision="ap_fixed<18,5>")
        ref = m.predict(x.astype(np.float32), verbose=0, batch_size=1 << 18).astype(np.float64)
        assert np.array_equal(project.predict(x), ref), str(q)


def test_non_monotonic_float32_po2_is_refused_in_one_line():
    tf = _tf()
    from qkeras import QActivation, quantized_po2
    from fpga_gen.passes import PassError
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(1,), name="x"),
                             QActivation(quantized_po2(5, quadratic_approximation=True), name="q")])
    with pytest.raises(PassError) as e:
        convert(m, input_precision="ap_fixed<20,5>")
    assert str(e.value).startswith("layer 'q': po2 quantizer: QKeras' float32 function is not monotonic on the "
                                   "values of its input type ap_fixed<20,5>")


# ---------------------------------------------------------------------------- weights
def _set_channel_scales(layer, seed):
    """Give each output channel a different magnitude (powers of two apart) so auto_po2 scales differ."""
    w = layer.get_weights()
    rng = np.random.default_rng(seed)
    k = rng.uniform(-1, 1, size=w[0].shape) * (2.0 ** -np.arange(w[0].shape[-1]))
    layer.set_weights([k.astype(np.float32)] + [v for v in w[1:]])


def _weights_model(kind):
    """A QConv2D/QDense chain holding one weight quantizer per layer, with activation quantizers between."""
    tf = _tf()
    from qkeras import (QActivation, QConv2D, QDense, binary, quantized_bits, quantized_po2, quantized_relu,
                        quantized_sigmoid, ternary)
    tf.keras.utils.set_random_seed(3)
    init = dict(kernel_initializer=tf.keras.initializers.RandomUniform(-1, 1),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    b6 = quantized_bits(6, 0, alpha=1)
    if kind == "cnn":
        layers = [tf.keras.layers.InputLayer(input_shape=(5, 5, 2), name="x"),
                  QConv2D(4, (3, 3), kernel_quantizer=quantized_bits(4, 0, alpha="auto_po2"), bias_quantizer=b6,
                          name="conv", **init),
                  QActivation(quantized_relu(6, 2, negative_slope=0.25), name="conv_act"),
                  tf.keras.layers.Flatten(name="flat"),
                  QDense(6, kernel_quantizer=binary(alpha="auto_po2"), bias_quantizer=b6, name="fc1", **init),
                  QActivation(ternary(threshold=0.5), name="fc1_act"),
                  QDense(3, kernel_quantizer=quantized_po2(4), bias_quantizer=quantized_po2(4), name="fc2", **init)]
    else:
        layers = [tf.keras.layers.InputLayer(input_shape=(8,), name="x"),
                  QDense(6, kernel_quantizer=ternary(alpha="auto_po2"), bias_quantizer=b6, name="fc1", **init),
                  QActivation(quantized_sigmoid(5), name="fc1_act"),
                  QDense(5, kernel_quantizer=ternary(threshold=0.4, alpha=0.5), bias_quantizer=b6, name="fc2",
                         activation=quantized_relu(5, 2), **init),
                  QDense(5, kernel_quantizer=binary(use_01=True, alpha=1), bias_quantizer=b6, name="fc3",
                         activation="binary_tanh", **init),
                  QDense(4, kernel_quantizer=quantized_bits(5, 1, alpha="auto_po2"),
                         bias_quantizer=quantized_bits(5, 1, alpha="auto_po2"), name="fc4", **init)]
    m = tf.keras.Sequential(layers, name=f"w_{kind}")
    for layer in m.layers:
        if layer.name in ("conv", "fc4"):
            _set_channel_scales(layer, 7)
    return m


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def weights_case(request):
    m = _weights_model(request.param)
    rng = np.random.default_rng(11)
    x = np.round(rng.uniform(-3, 3, (2000,) + tuple(m.input_shape[1:])) * 16) / 16
    return m, convert(m, input_precision="ap_fixed<12,4>"), x


def test_weight_quantizers_equal_qkeras(weights_case):
    """The output and every QActivation's output (the emulator's trace) equal QKeras' exactly."""
    tf = _tf()
    model, project, x = weights_case
    trace = project.emulator().predict(x, trace=True)
    names = [layer.name for layer in model.layers if layer.name.endswith("_act")] + [model.layers[-1].name]
    for name in names:
        sub = tf.keras.Model(model.inputs, model.get_layer(name).output)
        ref = sub.predict(x.astype(np.float32), verbose=0, batch_size=4096).astype(np.float64)
        node = [n for n in trace if n == name or n.startswith(name + "_")][-1]      # dense, then <layer>_alpha
        emu = trace[node].reshape(ref.shape)
        assert np.array_equal(emu, ref), name
        assert len(np.unique(ref)) >= 3, name          # the outputs vary: the comparison means something
    assert np.array_equal(project.predict(x), model.predict(x.astype(np.float32), verbose=0).astype(np.float64))


def test_auto_po2_is_its_own_scale_op_with_per_channel_powers_of_two(weights_case):
    _, project, _ = weights_case
    scales = [n for n in project.graph if n.op == "apply_scale"]
    assert scales
    for n in scales:
        s = n.weights["scale"]
        assert np.array_equal(np.log2(s), np.round(np.log2(s)))
        src = project.graph[n.inputs[0]]
        assert not src.weights["bias"].any()          # the bias moved after the scale
        assert src.types["weight"].width <= 5        # the multipliers see the small unscaled values
    assert any(len(np.unique(n.weights["scale"])) > 1 for n in scales)
    binary_like = [n for n in project.graph if n.meta.get("kernel_quantizer", "").startswith(("binary", "ternary"))]
    assert binary_like and all(n.types["weight"].width <= 2 for n in binary_like)


@needs_gxx
def test_weight_quantizers_every_backend_same_bits(weights_case):
    _, project, x = weights_case
    ref = project.predict(x[:500], backend="emu")
    backends = ["csim", "native"]
    try:
        import torch  # noqa: F401
        backends.append("gpu")
    except ImportError:
        pass
    for b in backends:
        got = project.predict(x[:500], backend=b)
        assert np.array_equal(np.where(ref == 0, 0.0, ref), np.where(got == 0, 0.0, got)), b


def test_activation_quantizers_gpu_backend_same_bits(act_projects):
    pytest.importorskip("torch")
    x = _all_values(IN_TYPE)
    for key in ACT_CASES:
        _, project = _act_project(act_projects, key)
        emu = project.predict(x)
        assert np.array_equal(project.predict(x, backend="gpu"), emu), key


# ---------------------------------------------------------------------------- refusals
def _refused(layer_kwargs=None, act=None):
    tf = _tf()
    from qkeras import QActivation, QDense
    layers = [tf.keras.layers.InputLayer(input_shape=(4,), name="inp"), QDense(3, name="fc", **(layer_kwargs or {}))]
    if act is not None:
        layers.append(QActivation(act, name="act"))
    with pytest.raises(FrontendError) as e:
        convert(tf.keras.Sequential(layers))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_unsupported_quantizers_are_one_line_errors():
    from qkeras import (bernoulli, binary, quantized_bits, quantized_relu, quantized_tanh, quantized_ulaw,
                        stochastic_binary)
    assert _refused({"kernel_quantizer": quantized_bits(4, 0, alpha=0.1)}) == (
        "layer 'fc': kernel quantizer quantized_bits(4,0,0,alpha=0.1): alpha=0.1 must be a positive number that "
        "float32 holds exactly (e.g. 1 or 0.5)")
    assert _refused({"kernel_quantizer": stochastic_binary()}) == (
        "layer 'fc': kernel quantizer stochastic_binary(alpha='auto_po2') (stochastic_binary) samples random numbers "
        "and has no hardware equivalent; use binary()")
    assert _refused({"kernel_quantizer": quantized_bits(4, 0, alpha=1, use_stochastic_rounding=True)}).endswith(
        "stochastic rounding has no hardware equivalent; set use_stochastic_rounding=False")
    assert _refused(act=quantized_tanh(40)) == (
        "layer 'act': activation quantizer quantized_tanh(40): bits must be between 2 and 16")
    assert _refused(act=binary(alpha="auto_po2")).startswith(
        "layer 'act': activation quantizer binary(alpha='auto_po2'): alpha='auto_po2' scales by the data")
    assert _refused(act=bernoulli()).startswith("layer 'act': activation quantizer bernoulli() (bernoulli) samples "
                                                "random numbers")
    assert _refused(act=quantized_ulaw(4)).startswith(
        "layer 'act': activation quantizer quantized_ulaw(4,0) (quantized_ulaw) is not supported yet; supported: ")
    assert _refused(act=quantized_relu(4, 0, use_sigmoid=1)).endswith("use_sigmoid is not supported; use use_sigmoid=0")


# ---------------------------------------------------------------------------- alpha='auto' (float scale)
@pytest.mark.parametrize("kind", ["quantized_bits", "binary", "ternary"])
def test_auto_alpha_is_exact_math_and_within_one_lsb_of_qkeras(kind):
    """alpha='auto': QKeras' float32 per-channel scale, held exactly in apply_scale.  The emulator computes the
    exact x @ (s*q) + b (checked against a float64 matmul, exact at these sizes); QKeras' weights are s*q up to
    its straight-through float32 rounding and it sums in float32, so after the next quantizer an output can
    differ by one LSB where float32 rounding crossed a rounding boundary: measured >= 99 % exact (99.8-99.98 %
    on these models), never more than 1 LSB."""
    tf = _tf()
    from qkeras import QActivation, QDense, binary, quantized_bits, quantized_relu, ternary
    kq = {"quantized_bits": quantized_bits(5, 0, alpha="auto"), "binary": binary(alpha="auto"),
          "ternary": ternary(alpha="auto")}[kind]
    tf.keras.utils.set_random_seed(0)
    init = dict(kernel_initializer=tf.keras.initializers.RandomUniform(-1, 1),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(16,), name="x"),
                             QDense(8, kernel_quantizer=kq, bias_quantizer=quantized_bits(6, 0, alpha=1), name="d",
                                    **init),
                             QActivation(quantized_relu(6, 2), name="a")])
    rng = np.random.default_rng(1)
    x = np.round(rng.uniform(-2, 2, (4000, 16)) * 16) / 16
    project = convert(m, input_precision="ap_fixed<12,4>")
    assert project.graph["d_alpha"].op == "apply_scale"
    layer = m.get_layer("d")
    w = layer.kernel_quantizer_internal(layer.kernel).numpy().astype(np.float64)
    b = layer.bias_quantizer_internal(layer.bias).numpy().astype(np.float64)
    # QKeras' weights are s*q up to its straight-through float32 rounding (x + (s*q - x)); fpga-gen uses s*q
    sq = project.graph["d"].weights["kernel"] * project.graph["d_alpha"].weights["scale"]
    assert np.abs(sq - w).max() <= 2.0 ** -21
    trace = project.emulator().predict(x, trace=True)
    assert np.array_equal(trace["d_alpha"], x @ sq + b)
    ref = m.predict(x.astype(np.float32), verbose=0, batch_size=8192).astype(np.float64)
    emu = project.predict(x)
    lsb = 2.0 ** -4
    assert np.abs(emu - ref).max() <= lsb
    assert np.mean(emu == ref) >= 0.99
    assert np.array_equal(project.predict(x[:200], backend="csim"), emu[:200])
