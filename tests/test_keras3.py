"""Keras 3 `.keras` archives (the `keras` package, while tf.keras stays tf-keras): detected by their
metadata.json, checked from config.json before anything is deserialised, converted through the same
handlers.  The emulator stays within :func:`fpga_gen.emulate.float_ref.error_bound` of Keras 3's float
output, and the C++ equals the emulator bit for bit (one compiled project)."""

import json
import shutil
import zipfile

import numpy as np
import pytest

from fpga_gen import convert, csim
from fpga_gen.emulate.float_ref import error_bound
from fpga_gen.frontend import FrontendError, load_graph
from fpga_gen.frontend.keras.loader import import_keras3, keras_archive_version

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


@pytest.fixture(scope="module")
def keras():
    return import_keras3()


def _cnn(keras):
    keras.utils.set_random_seed(3)
    L = keras.layers
    return keras.Sequential([
        keras.Input((8, 9, 2), name="x"),
        L.Conv2D(4, (3, 3), padding="same", activation="relu", name="conv"),
        L.MaxPooling2D((2, 2), padding="same", name="maxpool"),
        L.Conv2D(5, (2, 2), strides=(1, 2), name="conv2"),
        L.ReLU(name="relu"),
        L.AveragePooling2D((2, 2), strides=(1, 1), name="avgpool"),
        L.Flatten(name="flat"),
        L.Dropout(0.3, name="drop"),
        L.Dense(10, activation="relu", name="fc1"),
        L.Dense(4, name="fc2"),
    ], name="k3_cnn")


def _mlp(keras):
    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input((12,), name="x")
    h = L.Dense(16, name="fc1")(inp)
    h = L.Activation("relu", name="act")(h)
    h = L.Dense(6, name="fc2")(h)
    out = L.Softmax(name="softmax")(h)
    return keras.Model(inp, out, name="k3_mlp")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, keras):
    d = tmp_path_factory.mktemp("k3")
    paths = {}
    for name, make in (("cnn", _cnn), ("mlp", _mlp)):
        model = make(keras)
        paths[name] = d / f"{name}.keras"
        model.save(paths[name])
    return paths


def _inputs(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(-2, 2, (n,) + shape) * 64) / 64


def test_archive_is_detected_as_keras3(saved):
    assert keras_archive_version(saved["cnn"]).startswith("3.")


def test_cnn_graph_and_bound_against_keras3(saved, keras):
    project = convert(saved["cnn"])
    g = project.graph
    assert [(n.name, n.op) for n in g] == [("x", "input"), ("conv", "conv2d"), ("conv_relu", "activation"),
                                           ("maxpool", "pooling"), ("conv2", "conv2d"), ("relu", "activation"),
                                           ("avgpool", "pooling"), ("fc1", "dense"), ("fc1_relu", "activation"),
                                           ("fc2", "dense")]
    assert tuple(g["conv2"].shape) == (3, 2, 5) and tuple(g["fc2"].shape) == (4,)
    # before max pooling with padding='same' the relu keeps its signed input type (nnet pads with the minimum)
    assert g["conv_relu"].types["result"] == g["conv"].types["result"].plain()
    assert not g["relu"].types["result"].signed
    model = keras.saving.load_model(saved["cnn"])
    x = _inputs((8, 9, 2), 300)
    ref_graph, _ = load_graph(saved["cnn"])
    bound = error_bound(g, ref_graph, x)["fc2"]
    k3 = np.asarray(model.predict(x.astype(np.float32), verbose=0))
    err = np.abs(project.predict(x) - k3)
    assert np.all(err <= bound + 1e-5 * (1 + np.abs(k3)))
    assert err.max() < 0.02
    # the in-memory Keras 3 model converts to the same graph
    assert np.array_equal(convert(model).predict(x), project.predict(x))


def test_mlp_functional_with_softmax(saved, keras):
    project = convert(saved["mlp"], calibrate=_inputs((12,), 200, seed=1))
    g = project.graph
    assert [n.op for n in g] == ["input", "dense", "activation", "dense", "softmax"]
    model = keras.saving.load_model(saved["mlp"])
    x = _inputs((12,), 300, seed=2)
    ref_graph, _ = load_graph(saved["mlp"])
    logits = keras.Model(model.inputs, model.get_layer("fc2").output)
    k3 = np.asarray(logits.predict(x.astype(np.float32), verbose=0))
    trace = project.emulator().predict(x, trace=True)
    err = np.abs(trace["fc2"] - k3)
    assert np.all(err <= error_bound(g, ref_graph, x)["fc2"] + 1e-5 * (1 + np.abs(k3)))
    probs = np.asarray(model.predict(x.astype(np.float32), verbose=0))
    assert np.mean(project.predict(x).argmax(1) == probs.argmax(1)) >= 0.98


@needs_gxx
def test_csim_equals_emulator_on_a_keras3_cnn(saved, tmp_path):
    project = convert(saved["cnn"], input_precision="ap_fixed<12,3>")
    project.write(tmp_path / "prj")
    t = project.graph["x"].types["result"]
    rng = np.random.default_rng(9)
    x = rng.integers(t.raw_min, t.raw_max + 1, (300, 8, 9, 2)) * t.step          # every bit pattern
    assert np.array_equal(csim.predict(tmp_path / "prj", x), project.predict(x))


def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)


def test_lambda_in_a_keras3_archive_is_refused_before_loading(tmp_path, keras):
    m = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Lambda(lambda t: t * 2, name="double")])
    m.save(tmp_path / "lam.keras")
    with pytest.raises(FrontendError) as e:
        convert(tmp_path / "lam.keras")
    assert str(e.value) == (f"{tmp_path / 'lam.keras'}: layer 'double' (Lambda): Lambda layers hold Python code, "
                            f"which fpga-gen never executes; rewrite the layer with supported layers")


def test_custom_class_in_a_keras3_archive_is_refused(tmp_path, saved):
    def custom(cfg):
        layer = cfg["config"]["layers"][1]
        layer["class_name"], layer["module"], layer["registered_name"] = "EvilDense", "evil.layers", "evil>EvilDense"
    _rewrite_config(saved["cnn"], tmp_path / "evil.keras", custom)
    with pytest.raises(FrontendError) as e:
        convert(tmp_path / "evil.keras")
    assert str(e.value) == (f"{tmp_path / 'evil.keras'}: layer 'conv' has custom class 'EvilDense', which Keras 3 "
                            f"does not define; fpga-gen does not load custom code: replace it with supported layers")

    def shadowed(cfg):                            # a built-in name from another module is custom code too
        cfg["config"]["layers"][1]["module"] = "evil.layers"
    _rewrite_config(saved["cnn"], tmp_path / "shadow.keras", shadowed)
    with pytest.raises(FrontendError, match="layer 'conv' has custom class 'Conv2D', which Keras 3 does not define"):
        convert(tmp_path / "shadow.keras")


def test_unsupported_keras3_layer_names_layer_and_class(tmp_path, keras):
    m = keras.Sequential([keras.Input((4, 3), name="x"), keras.layers.LSTM(2, name="lstm")])
    m.save(tmp_path / "lstm.keras")
    with pytest.raises(FrontendError, match=r"^layer 'lstm' \(LSTM\) is not supported; supported layers: "):
        convert(tmp_path / "lstm.keras")


def test_tf_keras_archive_still_loads_with_tf_keras(tmp_path):
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="x"), tf.keras.layers.Dense(3, name="d")])
    m.save(tmp_path / "k2.keras")
    assert keras_archive_version(tmp_path / "k2.keras").startswith("2.")
    project = convert(tmp_path / "k2.keras")
    assert type(project.model).__module__.startswith("tf_keras")


def _as_keras_2_14_archive(src, dst):
    """Rewrite a tf-keras archive into Keras 2.13/2.14's layout: weight groups under
    ``_layer_checkpoint_dependencies/<class name>`` (tf-keras 2.21 writes ``layers/<class name>``)."""
    import io

    import h5py
    zin = zipfile.ZipFile(src)
    src_h5 = h5py.File(io.BytesIO(zin.read("model.weights.h5")), "r")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as out:
        for key in src_h5:
            src_h5.copy(src_h5[key], out, name="_layer_checkpoint_dependencies" if key == "layers" else key)
    with zipfile.ZipFile(dst, "w") as zout:
        zout.writestr("metadata.json", json.dumps({"keras_version": "2.14.0", "date_saved": "2026-01-01@00:00:00"}))
        zout.writestr("config.json", zin.read("config.json"))
        zout.writestr("model.weights.h5", buf.getvalue())


def test_keras_2_14_archive_loads_through_keras3(tmp_path):
    # tf-keras 2.21 finds no weights in a 2.14 archive ("expected 2 variables, but received 0"); Keras 3 reads
    # that layout, so the frontend falls back to it, with the file's own weights.
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(5)
    m = tf.keras.Sequential([L.InputLayer(input_shape=(6, 2), name="x"), L.Conv1D(3, 2, name="my_conv"),
                             L.GlobalMaxPooling1D(name="gmp"), L.Dense(4, name="my_fc")])
    m.save(tmp_path / "k2.keras")
    _as_keras_2_14_archive(tmp_path / "k2.keras", tmp_path / "k214.keras")
    with pytest.raises(ValueError, match="expected 2 variables, but received 0"):
        tf.keras.models.load_model(str(tmp_path / "k214.keras"), compile=False)
    project = convert(tmp_path / "k214.keras")
    assert type(project.model).__module__.startswith("keras")
    for name in ("my_conv", "my_fc"):
        for a, b in zip(project.model.get_layer(name).get_weights(), m.get_layer(name).get_weights()):
            assert np.array_equal(a, b)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 6, 2)).astype(np.float32)
    assert np.allclose(project.predict(x, backend="emu"), m.predict(x, verbose=0), atol=0.05)
