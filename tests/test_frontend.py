"""QKeras models -> graph: exactness against QKeras itself, and the errors users see."""

import numpy as np
import pytest

from fpga_gen import convert
from fpga_gen.frontend import FrontendError, load_graph
from qmodels import grid_inputs, qmlp


def _pre_softmax(model, x):
    import tensorflow as tf
    sub = tf.keras.Model(model.inputs, model.layers[-2].output if model.layers[-1].name == "softmax"
                         else model.layers[-1].output)
    return sub.predict(x, verbose=0, batch_size=4096)


@pytest.mark.parametrize("bits,integer,act", [
    (4, 0, "quantized_relu"), (6, 0, "quantized_relu"), (8, 1, "quantized_relu"), (8, 2, "quantized_bits"),
])
def test_emulator_equals_qkeras_exactly(bits, integer, act):
    model = qmlp([16, 24, 12, 5], bits=bits, integer=integer, act=act, seed=bits)
    project = convert(model, input_precision="ap_fixed<12,4>")
    x = grid_inputs(2000, 16, frac_bits=4, lo=-4, hi=4)
    emu = project.predict(x)
    ref = _pre_softmax(model, x.astype(np.float32))
    assert np.array_equal(emu, ref.astype(np.float64)), f"{np.mean(emu == ref):.4f} match"


@pytest.mark.parametrize("act", ["relu", "linear"])
def test_unquantized_activations_are_exact(act):
    """Between QDense layers with plain relu/linear, QKeras computes in float32 and rounds once the
    values need more than 24 bits; the emulator keeps every bit.  It equals a float64 forward pass
    (exact here), and QKeras to float32 precision."""
    model = qmlp([16, 24, 12, 5], bits=6, act=act, seed=2)
    project = convert(model, input_precision="ap_fixed<12,4>")
    x = grid_inputs(2000, 16, frac_bits=4, lo=-4, hi=4)
    h = x
    for k in range(3):
        n = project.graph[f"dense_{k}"]
        h = h @ n.weights["kernel"] + n.weights["bias"]
        if k < 2 and act == "relu":
            h = np.maximum(h, 0)
    emu = project.predict(x)
    assert np.array_equal(emu, h)
    ref = _pre_softmax(model, x.astype(np.float32))
    assert np.allclose(emu, ref, rtol=0, atol=1e-5 * np.abs(h).max())


def test_16_64_32_32_5_mlp_pre_softmax_outputs_all_match_qkeras():
    """The jet-tagging shape where hls4ml's default result type rounds (63.5 % match): 100 % here."""
    model = qmlp([16, 64, 32, 32, 5], bits=6, act="quantized_relu", softmax=True, seed=11)
    project = convert(model, input_precision="ap_fixed<12,4>")
    x = grid_inputs(5000, 16, frac_bits=4, lo=-4, hi=4, seed=12)
    pre = project.emulator().predict(x, trace=True)["dense_3"]
    assert np.array_equal(pre, _pre_softmax(model, x.astype(np.float32)).astype(np.float64))


def test_softmax_argmax_agreement():
    model = qmlp([16, 32, 10], bits=6, act="quantized_relu", softmax=True, seed=3)
    project = convert(model)
    x = grid_inputs(5000, 16, frac_bits=4, lo=-4, hi=4, seed=5)
    emu = project.predict(x)
    ref = model.predict(x.astype(np.float32), verbose=0, batch_size=4096)
    assert np.mean(emu.argmax(1) == ref.argmax(1)) >= 0.999
    assert np.abs(emu - ref).max() < 0.05


def test_graph_structure_and_names():
    model = qmlp([8, 4, 3], bits=6, act="relu", softmax=True)
    graph, _ = load_graph(model)
    assert [(n.name, n.op) for n in graph] == [
        ("x", "input"), ("dense_0", "dense"), ("act_0", "activation"), ("dense_1", "dense"), ("softmax", "softmax")]
    assert graph.outputs == ["softmax"]


def test_dense_activation_argument_becomes_its_own_node():
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QDense, quantized_bits, quantized_relu
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="inp"),
                             QDense(3, kernel_quantizer=quantized_bits(4, 0, alpha=1),
                                    bias_quantizer=quantized_bits(4, 0, alpha=1),
                                    activation=quantized_relu(4, 1), name="fc")])
    graph, _ = load_graph(m)
    assert [(n.name, n.op) for n in graph] == [("inp", "input"), ("fc", "dense"), ("fc_quant", "activation")]
    assert graph["fc_quant"].types["result"].cpp() == "ap_ufixed<4,1,AP_RND_CONV,AP_SAT>"


def _save(model, path):
    model.save(path)
    return str(path)


def test_file_errors(tmp_path):
    with pytest.raises(FrontendError) as e:
        load_graph(str(tmp_path / "missing.h5"))
    assert str(e.value) == f"{tmp_path / 'missing.h5'}: model file not found"
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(FrontendError, match="the file is empty"):
        load_graph(str(empty))
    text = tmp_path / "text.h5"
    text.write_text("this is not a model\n")
    with pytest.raises(FrontendError, match=r"not an HDF5 file \(wrong signature\)"):
        load_graph(str(text))
    good = _save(qmlp([4, 3]), tmp_path / "good.h5")
    data = open(good, "rb").read()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 3])
    with pytest.raises(FrontendError, match="truncated or corrupt"):
        load_graph(str(trunc))
    # .onnx is read by the QONNX frontend: a malformed one is one line naming the file
    (tmp_path / "m.onnx").write_bytes(b"\x08\x01")
    with pytest.raises(FrontendError) as e:
        load_graph(str(tmp_path / "m.onnx"))
    assert str(e.value) == (f"{tmp_path / 'm.onnx'}: the ONNX file holds no graph nodes: the file is truncated or "
                            "not an ONNX model")
    (tmp_path / "m.pt").write_bytes(b"\x08\x01")
    with pytest.raises(FrontendError, match=r"unknown model format '\.pt'; pass a \.h5, \.keras or \.onnx file or a SavedModel directory$"):
        load_graph(str(tmp_path / "m.pt"))


def test_lambda_layer_is_rejected_without_running_it(tmp_path):
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    marker = tmp_path / "executed"
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="inp"),
                             tf.keras.layers.Lambda(lambda t: t * 2, name="double")])
    path = _save(m, tmp_path / "lambda.h5")
    with pytest.raises(FrontendError) as e:
        load_graph(path)
    assert str(e.value) == (f"{path}: layer 'double' (Lambda): Lambda layers hold Python code, which fpga-gen never "
                            f"executes; rewrite the layer with supported layers")
    assert not marker.exists()


def test_custom_layer_class_is_rejected(tmp_path):
    import h5py
    path = _save(qmlp([4, 3]), tmp_path / "custom.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace('"class_name": "QDense"', '"class_name": "EvilDense"')
    with pytest.raises(FrontendError, match="layer 'dense_0' has custom class 'EvilDense', which neither Keras nor "
                                            "QKeras defines"):
        load_graph(path)


def test_unsupported_layer_names_layer_class_and_list():
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4, 3), name="inp"),
                             tf.keras.layers.LSTM(2, name="lstm")])
    with pytest.raises(FrontendError) as e:
        load_graph(m)
    from fpga_gen.frontend.keras import supported_layers
    assert str(e.value) == "layer 'lstm' (LSTM) is not supported; supported layers: " + ", ".join(supported_layers())
    assert {"Activation", "Conv2D", "Dense", "Dropout", "Flatten"} <= set(supported_layers())


def test_unsupported_quantizer_option():
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QDense, quantized_bits
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="inp"),
                             QDense(3, kernel_quantizer=quantized_bits(4, 0, alpha=1, use_stochastic_rounding=True),
                                    name="fc")])
    with pytest.raises(FrontendError, match="layer 'fc': kernel quantizer .*: stochastic rounding has no hardware"):
        load_graph(m)


def test_compiled_model_with_optimizer_loads(tmp_path):
    """The optimizer and dtype-policy entries of a saved config are not layers: they must not be refused."""
    model = qmlp([4, 3])
    model.compile(optimizer="adam", loss="mse")
    path = _save(model, tmp_path / "compiled.h5")
    graph, _ = load_graph(path)
    assert [n.op for n in graph] == ["input", "dense"]


def test_activations_after_flatten_take_keras_shape():
    """Flatten adds no node, so an activation after it must still be flat: QActivation/Activation -> Dense and
    a Softmax straight after a Flatten convert, and the emulator equals QKeras on them."""
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    import fpga_gen
    tf.keras.utils.set_random_seed(3)
    q = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(6, 6, 1)), QConv2D(3, 3, name="c", **q),
                             tf.keras.layers.Flatten(), QActivation(quantized_relu(6, 2), name="a"),
                             QDense(4, name="d", **q), QActivation(quantized_bits(8, 3), name="o")])
    p = fpga_gen.convert(m, input_precision="ap_fixed<8,1>")
    assert [(n.name, tuple(n.shape)) for n in p.graph][2:] == [("a", (48,)), ("d", (4,)), ("o", (4,))]
    x = np.random.default_rng(0).integers(-128, 128, (64, 6, 6, 1)) / 128     # every ap_fixed<8,1> code
    assert np.array_equal(p.predict(x), m.predict(x, verbose=0).astype(np.float64))
    m2 = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(6, 6, 1)), QConv2D(3, 3, name="c", **q),
                              tf.keras.layers.Flatten(), tf.keras.layers.Activation("softmax", name="s")])
    assert fpga_gen.convert(m2).graph["s"].shape == (48,)
