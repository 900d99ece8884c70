"""The float reference (fpga_gen/emulate/float_ref.py) and calibration for every op.

Small float tf-keras models, one per new layer kind (batchnorm, depthwise/separable conv, merges,
data movement, 1-D and global pooling, activation layers): ``float_forward`` equals Keras' float
output, ``convert(calibrate=x)`` works and its types hold every calibration sample (no rail, and where
``error_bound`` bounds a layer the emulator is within it of the float value).  One calibrated CNN with
batchnorms and a residual Add: the batchnorms fold as without calibration and the C++ equals the
emulator bit for bit.  hls4ml-style LayerType keys reach the new layers."""

import shutil

import numpy as np
import pytest

from fpga_gen import convert, csim
from fpga_gen.emulate.float_ref import FLOAT_OPS, error_bound, float_forward
from fpga_gen.frontend import load_graph
from fpga_gen.ir.ops import OPS
from fpga_gen.ir.types import FixedType

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def _randomize_bn(model, rng):
    """Moving statistics and affine weights away from the identity, so a batchnorm computes something."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, g.shape), rng.uniform(-1, 1, b.shape),
                               rng.uniform(-1, 1, m.shape), rng.uniform(0.5, 3, v.shape)])


def _functional(shape, body, name):
    tf = _tf()
    x = tf.keras.Input(shape=shape, name="x")
    return tf.keras.Model(x, body(tf.keras.layers, x), name=name)


def _seq(shape, layers, name):
    return _functional(shape, lambda L, x: _chain([f(L) for f in layers], x), name)


def _chain(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def _branches(merge):
    def body(L, x):
        a = L.Conv2D(3, 3, padding="same", name="ca")(x)
        b = L.Conv2D(3, 1, name="cb")(x)
        return L.Flatten()(merge(L)([a, b]))
    return body


MODELS = {
    "batchnorm": lambda: _seq((6, 6, 2), [lambda L: L.BatchNormalization(name="bn"),
                                           lambda L: L.Conv2D(3, 3, name="c"),
                                           lambda L: L.BatchNormalization(name="bn2"),
                                           lambda L: L.Flatten(), lambda L: L.Dense(4, name="d"),
                                           lambda L: L.BatchNormalization(name="bn3")], "bn"),
    "depthwise": lambda: _seq((6, 6, 3), [lambda L: L.DepthwiseConv2D(3, padding="same", name="dw"),
                                           lambda L: L.ReLU(max_value=6.0, name="r6"),
                                           lambda L: L.Flatten()], "dw"),
    "separable": lambda: _seq((6, 6, 2), [lambda L: L.SeparableConv2D(4, 3, name="sep"), lambda L: L.Flatten()],
                              "sep"),
    "add": lambda: _functional((5, 5, 2), _branches(lambda L: L.Add(name="m")), "add"),
    "subtract": lambda: _functional((5, 5, 2), _branches(lambda L: L.Subtract(name="m")), "sub"),
    "multiply": lambda: _functional((5, 5, 2), _branches(lambda L: L.Multiply(name="m")), "mul"),
    "average": lambda: _functional((5, 5, 2), _branches(lambda L: L.Average(name="m")), "avg"),
    "maximum": lambda: _functional((5, 5, 2), _branches(lambda L: L.Maximum(name="m")), "max"),
    "minimum": lambda: _functional((5, 5, 2), _branches(lambda L: L.Minimum(name="m")), "min"),
    "concatenate": lambda: _functional((5, 5, 2), _branches(lambda L: L.Concatenate(axis=-1, name="m")), "cat"),
    "spatial": lambda: _seq((5, 6, 2), [lambda L: L.ZeroPadding2D(((1, 0), (2, 1)), name="pad"),
                                         lambda L: L.Conv2D(3, 2, name="c"),
                                         lambda L: L.Cropping2D(((1, 0), (0, 2)), name="crop"),
                                         lambda L: L.UpSampling2D(2, name="up"),
                                         lambda L: L.Permute((2, 1, 3), name="perm"),
                                         lambda L: L.GlobalMaxPooling2D(name="gmax")], "spatial"),
    "conv1d": lambda: _seq((10, 3), [lambda L: L.Conv1D(4, 3, padding="same", name="c1"),
                                      lambda L: L.MaxPooling1D(2, name="p1"),
                                      lambda L: L.Conv1D(4, 2, name="c2"),
                                      lambda L: L.GlobalAveragePooling1D(name="gavg")], "c1d"),
    "global_avg": lambda: _seq((4, 4, 3), [lambda L: L.Conv2D(4, 2, name="c"),
                                            lambda L: L.GlobalAveragePooling2D(name="gavg")], "gavg"),
    "elu": lambda: _seq((12,), [lambda L: L.Dense(8, name="d"), lambda L: L.ELU(alpha=0.7, name="a")], "elu"),
    "leaky_relu": lambda: _seq((12,), [lambda L: L.Dense(8, name="d"), lambda L: L.LeakyReLU(0.15, name="a")],
                               "lrelu"),
    "prelu": lambda: _seq((12,), [lambda L: L.Dense(8, name="d"), lambda L: L.PReLU(name="a")], "prelu"),
    "thresholded_relu": lambda: _seq((12,), [lambda L: L.Dense(8, name="d"),
                                             lambda L: L.ThresholdedReLU(0.4, name="a")], "trelu"),
    "activations": lambda: _functional((12,), lambda L, x: L.Concatenate(name="cat")(
        [L.Activation(k, name=k)(L.Dense(4, name=f"d_{k}")(x))
         for k in ("sigmoid", "tanh", "softplus", "softsign", "hard_sigmoid")]), "acts"),
    "selu": lambda: _seq((12,), [lambda L: L.Dense(8, name="d"), lambda L: L.Activation("selu", name="a")], "selu"),
}


def _data(model, n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-3, 12, size=(n,) + tuple(model.input_shape[1:]))


@pytest.fixture(scope="module")
def built():
    tf = _tf()
    rng = np.random.default_rng(3)
    out = {}
    for k, make in MODELS.items():
        tf.keras.utils.set_random_seed(11)
        m = make()
        _randomize_bn(m, rng)
        if k == "prelu":
            a = m.get_layer("a")
            a.set_weights([rng.uniform(-0.5, 0.8, a.get_weights()[0].shape)])
        out[k] = m
    return out


def test_every_op_has_a_float_reference():
    assert set(OPS) <= set(FLOAT_OPS)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_float_forward_equals_keras(built, kind):
    model = built[kind]
    x = _data(model)
    ref, _ = load_graph(model)
    got = float_forward(ref, x)[ref.outputs[0]]
    keras = model.predict(x.astype(np.float32), verbose=0).reshape(len(x), -1)
    assert np.abs(got - keras).max() <= 1e-5 * max(1.0, np.abs(keras).max()), kind


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_calibrated_types_hold_every_sample(built, kind):
    model = built[kind]
    x = _data(model)
    project = convert(model, calibrate=x)
    for row in project.calibration.rows:
        assert row["holds"], row
    assert any(r["origin"] == "calibrated" for r in project.calibration.rows)
    g = project.graph
    if project.split_at:                                     # selu: the FPGA part ends before the fallback
        g = project.split_parts()[0]
    trace = project.emulator().predict(x, trace=True)
    ref, _ = load_graph(model)
    floats = float_forward(ref, x)
    bounds = error_bound(project.graph, ref, x)
    for node in g:
        t = node.types["result"]
        v = trace[node.name].reshape(len(x), -1)
        assert (t.min < v.min() or t.min == 0) and v.max() < t.max, (kind, node.name, t, v.min(), v.max())
        if node.name in floats:
            f = floats[node.meta.get("fused_batchnorm", node.name)]
            assert np.all(np.abs(v - f) <= bounds[node.name] + 1e-9), (kind, node.name)
    # every float weighted layer was calibrated
    for node in g:
        if node.op in ("dense", "conv2d", "depthwise_conv2d", "batchnorm"):
            assert node.meta.get("calibrated"), node.name


def test_error_bound_is_finite_where_documented(built):
    model = built["spatial"]
    x = _data(model, 50)
    project = convert(model, calibrate=x)
    ref, _ = load_graph(model)
    b = error_bound(project.graph, ref, x)
    assert all(np.isfinite(v).all() for v in b.values())
    act = built["activations"]
    xa = _data(act, 20)
    pa = convert(act, calibrate=xa)
    ba = error_bound(pa.graph, load_graph(act)[0], xa)
    assert np.isinf(ba["sigmoid"]).all() and np.isfinite(ba["hard_sigmoid"]).all()


def test_argmax_softmax_reference_is_one_hot():
    from fpga_gen.ir.graph import Node
    node = Node("s", "softmax", ["x"], (3,), attrs={"implementation": "argmax"})
    got = FLOAT_OPS["softmax"](node, np.array([[1.0, 3.0, 3.0], [0.0, -1.0, -2.0]]))
    assert np.array_equal(got, [[0, 1, 0], [1, 0, 0]])
    node.attrs["implementation"] = "stable"
    assert np.allclose(FLOAT_OPS["softmax"](node, np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


# ------------------------------------------------------------------------- a CNN with batchnorm and a residual add
@pytest.fixture(scope="module")
def resnet():
    tf = _tf()
    tf.keras.utils.set_random_seed(5)
    L = tf.keras.layers
    x = tf.keras.Input(shape=(6, 6, 2), name="x")
    h = L.Conv2D(4, 3, padding="same", name="c1")(x)
    h = L.BatchNormalization(name="bn1")(h)
    h = L.ReLU(name="r1")(h)
    y = L.Conv2D(4, 3, padding="same", name="c2")(h)
    y = L.BatchNormalization(name="bn2")(y)
    y = L.Add(name="add")([y, h])
    y = L.BatchNormalization(name="bn3")(y)                 # after a merge: stays a layer
    y = L.ReLU(name="r2")(y)
    y = L.DepthwiseConv2D(2, name="dw")(y)
    y = L.BatchNormalization(name="bn4")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    out = L.Dense(3, name="fc")(y)
    m = tf.keras.Model(x, out, name="resnet")
    _randomize_bn(m, np.random.default_rng(1))
    return m


@pytest.fixture(scope="module")
def resnet_data():
    return np.random.default_rng(2).uniform(0, 16, size=(300, 6, 6, 2))


@pytest.fixture(scope="module")
def resnet_calibrated(resnet, resnet_data):
    return convert(resnet, calibrate=resnet_data)


def test_batchnorm_folds_under_calibration(resnet, resnet_calibrated, resnet_data):
    plain = convert(resnet)
    for p in (plain, resnet_calibrated):
        assert [n.op for n in p.graph].count("batchnorm") == 1, [n.op for n in p.graph]
        assert p.graph["c1"].meta["fused_batchnorm"] == "bn1"
        assert p.graph["c2"].meta["fused_batchnorm"] == "bn2"
        assert p.graph["dw"].meta["fused_batchnorm"] == "bn4"
    g = resnet_calibrated.graph
    # the folded layers are calibrated on the batchnorm's output; the lone batchnorm gets its own types
    assert set(g["c1"].meta["calibrated"]) == {"weight", "bias", "result"}
    assert set(g["bn3"].meta["calibrated"]) == {"scale", "bias", "result"}
    # profiled after fusion: the folded conv's range is the batchnorm's output
    ranges = resnet_calibrated.calibration.ranges
    assert "bn1" not in ranges and "bn3" in ranges
    bn1 = float_forward(load_graph(resnet)[0], resnet_data)["bn1"]
    assert np.allclose(ranges["c1"], (bn1.min(), bn1.max()))
    for row in resnet_calibrated.calibration.rows:
        assert row["holds"], row


def test_calibrated_config_reproduces_the_folded_model(resnet, resnet_calibrated, resnet_data):
    """as_config (what build --fit --calibrate hands the sweep): the batchnorms fold again, same types, same bits."""
    cfg = resnet_calibrated.calibration.as_config(resnet_calibrated.config)
    assert "c1" not in {k for k, v in cfg.layers.items() if "result" in v.get("precision", {})}
    assert "result" in cfg.layers["bn1"]["precision"]
    again = convert(resnet, config=cfg)
    assert [(n.name, n.op) for n in again.graph] == [(n.name, n.op) for n in resnet_calibrated.graph]
    for n in again.graph:
        assert n.types == resnet_calibrated.graph[n.name].types, n.name
    x = resnet_data[:50]
    assert np.array_equal(again.predict(x), resnet_calibrated.predict(x))


def test_batchnorm_result_type_in_the_config_folds_into_the_layer(resnet):
    t = FixedType.parse("ap_fixed<14,5>")
    p = convert(resnet, config={"layers": {"bn1": {"precision": {"result": str(t)}}}})
    assert p.graph["c1"].meta["fused_batchnorm"] == "bn1" and p.graph["c1"].types["result"] == t
    # scale/bias types set on a batchnorm, or a result type on the conv, keep the batchnorm a layer (as hls4ml)
    p = convert(resnet, config={"layers": {"bn1": {"precision": {"scale": "ap_fixed<12,4>"}},
                                           "c2": {"precision": {"result": "ap_fixed<16,6>"}}}})
    assert "bn1" in p.graph and "bn2" in p.graph


def test_calibrated_resnet_is_close_to_keras(resnet, resnet_calibrated, resnet_data):
    x = resnet_data[:100]
    ref, _ = load_graph(resnet)
    bound = error_bound(resnet_calibrated.graph, ref, x)["fc"]
    keras = resnet.predict(x.astype(np.float32), verbose=0)
    err = np.abs(resnet_calibrated.predict(x) - keras)
    assert np.all(err <= bound + 1e-5 * (1 + np.abs(keras)))
    assert err.max() < 0.05 * max(1.0, np.abs(keras).max())


@needs_gxx
def test_csim_equals_emulator_on_calibrated_resnet(resnet_calibrated, resnet_data, tmp_path):
    resnet_calibrated.write(tmp_path / "prj")
    rng = np.random.default_rng(9)
    x = np.concatenate([resnet_data[:60], rng.uniform(-20, 40, (60, 6, 6, 2))])
    assert np.array_equal(csim.predict(tmp_path / "prj", x), resnet_calibrated.predict(x))


# ------------------------------------------------------------------------- hls4ml LayerType keys
def test_hls4ml_layer_type_keys_reach_the_new_layers(built, tmp_path):
    import yaml

    from fpga_gen.hls4ml_config import apply_to_graph, layer_classes, read_hls4ml_config
    from fpga_gen.ir.types import FixedType
    keys = {"Conv1D": "ap_fixed<11,3>", "GlobalAveragePooling1D": "ap_fixed<12,4>", "Pooling1D": "ap_fixed<13,5>",
            "BatchNormalization": "ap_fixed<14,6>", "Add": "ap_fixed<15,7>", "Concatenate": "ap_fixed<17,9>",
            "ZeroPadding2D": "ap_fixed<18,9>", "Cropping2D": "ap_fixed<19,9>", "Resize": "ap_fixed<20,9>",
            "Transpose": "ap_fixed<21,9>", "GlobalPooling2D": "ap_fixed<22,9>", "ELU": "ap_fixed<23,9>",
            "DepthwiseConv2D": "ap_fixed<24,9>", "LeakyReLU": "ap_fixed<10,2>"}
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"},
           "LayerType": {k: {"Precision": v} for k, v in keys.items()}}
    p = tmp_path / "hls4ml_config.yml"
    p.write_text(yaml.safe_dump({"HLSConfig": cfg}))
    h = read_hls4ml_config(p)
    expect = {("conv1d", "c1"): "Conv1D", ("conv1d", "gavg"): "GlobalAveragePooling1D", ("conv1d", "p1"): "Pooling1D",
              ("batchnorm", "bn"): "BatchNormalization", ("add", "m"): "Add", ("concatenate", "m"): "Concatenate",
              ("spatial", "pad"): "ZeroPadding2D", ("spatial", "crop"): "Cropping2D", ("spatial", "up"): "Resize",
              ("spatial", "perm"): "Transpose", ("spatial", "gmax"): "GlobalPooling2D", ("elu", "a"): "ELU",
              ("depthwise", "dw"): "DepthwiseConv2D", ("leaky_relu", "a"): "LeakyReLU"}
    graphs = {}
    for (kind, name), key in expect.items():
        if kind not in graphs:
            graphs[kind] = load_graph(built[kind])[0]
            apply_to_graph(graphs[kind], h)
        node = graphs[kind][name]
        assert node.types["result"] == FixedType.parse(keys[key]), (kind, name, layer_classes(node))
    # hls4ml's own class names come first (what hls4ml resolves), the Keras class next
    g = graphs["conv1d"]
    assert layer_classes(g["gavg"])[:2] == ("GlobalPooling1D", "GlobalAveragePooling1D")
    assert layer_classes(graphs["add"]["m"])[:2] == ("Merge", "Add")
    assert layer_classes(graphs["elu"]["a"])[:2] == ("ParametrizedActivation", "ELU")
    # a Dense's own split activation is an 'Activation', not the Dense
    d = load_graph(built["activations"])[0]
    assert layer_classes(d["sigmoid"])[0] == "Activation"


# ------------------------------------------------------------------------- Keras 3 activation defaults
def test_keras3_activations_match_keras3():
    """Keras 3's hard_sigmoid is relu6(x + 3) / 6 (slope 1/6, tf-keras: 0.2); its string activations and
    LeakyReLU/ELU defaults differ from tf-keras too: the float reference and the emulator follow Keras 3."""
    from fpga_gen.frontend.keras.loader import import_keras3
    keras = import_keras3()
    L = keras.layers
    keras.utils.set_random_seed(1)
    x_in = keras.Input((6,), name="x")
    outs = [L.Activation(k, name=k)(L.Dense(4, name="d_" + k)(x_in))
            for k in ("hard_sigmoid", "leaky_relu", "elu", "relu6")]
    outs += [L.LeakyReLU(name="lr")(L.Dense(3, name="d_lr")(x_in)), L.ELU(name="el")(L.Dense(3, name="d_el")(x_in))]
    m = keras.Model(x_in, L.Concatenate(name="cat")(outs))
    x = np.random.default_rng(0).uniform(-6, 6, (100, 6))
    ref, _ = load_graph(m)
    keras_out = np.asarray(m.predict(x.astype(np.float32), verbose=0))
    assert np.abs(float_forward(ref, x)[ref.outputs[0]] - keras_out).max() <= 1e-5 * max(1, np.abs(keras_out).max())
    p = convert(m, calibrate=x)
    b = error_bound(p.graph, ref, x)
    hs = np.abs(p.emulator().predict(x, trace=True)["hard_sigmoid"].reshape(len(x), -1)
                - keras_out[:, :4])
    assert np.all(hs <= b["hard_sigmoid"] + 1e-6) and hs.max() < 0.01


def test_hls4ml_layer_type_keys_reach_the_layers_from_the_cli(built, tmp_path, capsys):
    """``--hls4ml-config``: LayerType settings become the reached layers' settings (a LayerName entry wins)."""
    import yaml

    from fpga_gen.cli import main
    from fpga_gen.hls4ml_config import config_from_hls4ml
    model = built["add"]
    model.save(tmp_path / "m.h5")
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"},
           "LayerType": {"Add": {"Precision": "ap_fixed<20,8>"}, "Conv2D": {"Precision": {"weight": "ap_fixed<9,2>"},
                                                                          "ReuseFactor": 2}},
           "LayerName": {"cb": {"Precision": {"weight": "ap_fixed<7,1>"}}}}
    p = tmp_path / "hls4ml_config.yml"
    p.write_text(yaml.safe_dump({"HLSConfig": cfg}))
    pc = config_from_hls4ml(p, graph=load_graph(model)[0])
    assert pc.layers["m"]["precision"] == {"result": FixedType.parse("ap_fixed<20,8>")}
    assert pc.layers["ca"] == {"precision": {"weight": FixedType.parse("ap_fixed<9,2>")}, "reuse_factor": 2}
    assert pc.layers["cb"]["precision"] == {"weight": FixedType.parse("ap_fixed<7,1>")}
    assert config_from_hls4ml(p).layers.keys() == {"cb"}              # without the graph: LayerName only
    assert main(["inspect", str(tmp_path / "m.h5"), "--hls4ml-config", str(p)]) == 0
    out = capsys.readouterr().out
    assert "ap_fixed<20,8>" in out and "ap_fixed<9,2>" in out and "ap_fixed<7,1>" in out


# ------------------------------------------------------------------------- QKeras quantizer ops
def test_quantizer_ops_float_reference_equals_qkeras():
    """quant_act (every activation quantizer of tests/test_quantizers.py) and apply_scale (alpha='auto_po2')
    on float inputs: what QKeras computes in float (inputs off the quantizers' rounding ties and thresholds,
    where float32 and float64 may round apart)."""
    import test_quantizers as Q
    _tf()
    x = (np.linspace(-5, 5, 1001) + 0.00123)[:, None]
    for key in Q.ACT_CASES:
        m = Q._act_model(key)
        g, _ = load_graph(m)
        got = float_forward(g, x)[g.outputs[0]]
        keras = m.predict(x.astype(np.float32), verbose=0).reshape(len(x), -1)
        assert np.array_equal(got, keras), (key, x[(got != keras).ravel()][:3])
    for kind in ("mlp", "cnn"):
        m = Q._weights_model(kind)
        g, _ = load_graph(m)
        assert "apply_scale" in [n.op for n in g]
        xw = np.random.default_rng(1).uniform(-3, 3, (200,) + tuple(m.input_shape[1:])) + 0.00123
        got = float_forward(g, xw)[g.outputs[0]]
        keras = m.predict(xw.astype(np.float32), verbose=0).reshape(len(xw), -1)
        # quantizers after float32 sums: a value near a rounding edge may land one step apart
        assert np.mean(np.isclose(got, keras, atol=1e-5)) > 0.97, kind


def test_hls4ml_classes_of_1d_and_separable_layers():
    from fpga_gen.hls4ml_config import layer_classes
    tf = _tf()
    L = tf.keras.layers
    x = tf.keras.Input((10, 3), name="x")
    y = L.SeparableConv1D(4, 3, name="sep1")(L.DepthwiseConv1D(3, name="dw1")(x))
    g, _ = load_graph(tf.keras.Model(x, y))
    assert layer_classes(g["dw1"]) == ("DepthwiseConv1D",)
    assert {layer_classes(n)[0] for n in g if n.name.startswith("sep1")} == {"SeparableConv1D"}
    g2, _ = load_graph(MODELS["separable"]())
    assert {layer_classes(n)[0] for n in g2 if n.name.startswith("sep")} == {"SeparableConv2D"}
    assert layer_classes(load_graph(MODELS["conv1d"]())[0]["c1"]) == ("Conv1D",)     # a Conv2D key does not reach it
