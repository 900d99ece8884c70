"""Functional models with branches and merges (Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate), io_parallel: the frontend's graph, exact result types, the emulator equal to QKeras on
quantized models, the C++ (csim) equal to the emulator bit for bit, every back end equal, and the errors."""

from __future__ import annotations

import itertools
import re
import shutil

import numpy as np
import pytest

import fpga_gen
from fpga_gen import convert, csim
from fpga_gen.api import Project
from fpga_gen.config import ProjectConfig
from fpga_gen.emulate import Emulator
from fpga_gen.frontend import FrontendError, load_graph
from fpga_gen.ir import FixedType, Graph, Node
from fpga_gen.ir.ops import MERGE_MODES
from fpga_gen.passes import PassError
from fpga_gen.passes.infer_precision import merge_result_type

from test_backends import _cpp_safe, _dense, _rand_type, assert_same_as_numpy, edge_inputs

IN_PREC = "ap_fixed<12,4>"
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def _wq():
    tf = _tf()
    from qkeras import quantized_bits
    return dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))


def grid(n, shape, frac_bits=4, lo=-4.0, hi=3.9, seed=1):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(lo, hi, size=(n,) + tuple(shape)) * 2 ** frac_bits) / 2 ** frac_bits


# ---------------------------------------------------------------------------- QKeras models
def two_branch_mlp(merge: str, n_in=8, width=6, seed=0, n_inputs=2):
    """x -> [QDense -> QActivation] x n_inputs (different quantizers) -> merge -> QActivation -> QDense(4)."""
    tf = _tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    acts = [quantized_bits(6, 2, alpha=1), quantized_relu(5, 1), quantized_bits(4, 1, alpha=1),
            quantized_relu(6, 2)]
    x = L.Input((n_in,), name="x")
    branches = []
    for k in range(n_inputs):
        h = QDense(width, name=f"d{k}", **_wq())(x)
        branches.append(QActivation(acts[k % len(acts)], name=f"a{k}")(h))
    cls = {m: getattr(L, m.capitalize()) for m in MERGE_MODES}
    cls["concatenate"] = L.Concatenate
    m = cls[merge](name="merge")(branches)
    m = QActivation(quantized_bits(10, 5, alpha=1), name="mq")(m)
    y = QDense(4, name="out", **_wq())(m)
    return tf.keras.Model(x, y, name=f"mlp_{merge}")


def residual_cnn(seed=0, projection=False):
    """A tiny conv residual block: x -> QConv2D -> relu -> QConv2D, + x (or + a 1x1 QConv2D projection of x)
    -> QActivation -> Flatten -> QDense."""
    tf = _tf()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    x = L.Input((6, 6, 2), name="x")
    xq = QActivation(quantized_bits(6, 3, alpha=1), name="xq")(x)
    h = QConv2D(3, 3, padding="same", name="c1", **_wq())(xq)
    h = QActivation(quantized_relu(6, 2), name="r1")(h)
    h = QConv2D(2 if not projection else 3, 3, padding="same", name="c2", **_wq())(h)
    skip = QConv2D(3, 1, name="proj", **_wq())(xq) if projection else xq
    s = L.Add(name="add")([h, skip])
    s = QActivation(quantized_relu(8, 4), name="r2")(s)
    f = L.Flatten(name="flat")(s)
    f = L.Dropout(0.5, name="drop")(f)
    return tf.keras.Model(x, QDense(4, name="fc", **_wq())(f), name="resnet")


def concat_cnn(axis=-1, seed=0):
    """Two conv branches concatenated (channels, height or width), then pooling, Flatten, Dense."""
    tf = _tf()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    x = L.Input((6, 6, 2), name="x")
    a = QActivation(quantized_relu(5, 2), name="ra")(QConv2D(3, 3, padding="same", name="ca", **_wq())(x))
    b = QActivation(quantized_bits(6, 2, alpha=1), name="rb")(QConv2D(3 if axis != -1 else 2, 3, padding="same",
                                                                       name="cb", **_wq())(x))
    c = L.Concatenate(axis=axis, name="cat")([a, b])
    c = L.MaxPooling2D(2, name="pool")(c)
    return tf.keras.Model(x, QDense(3, name="fc", **_wq())(L.Flatten(name="flat")(c)), name=f"cat{axis}")


def _keras(model, x):
    return model.predict(x.astype(np.float32), verbose=0, batch_size=1024).astype(np.float64)


@pytest.mark.parametrize("merge", list(MERGE_MODES) + ["concatenate"])
def test_emulator_equals_qkeras_two_branches(merge):
    model = two_branch_mlp(merge)
    project = convert(model, input_precision=IN_PREC)
    op = "concatenate" if merge == "concatenate" else "merge"
    assert project.graph["merge"].op == op and project.graph["merge"].inputs == ["a0", "a1"]
    x = grid(400, (8,))
    assert np.array_equal(project.predict(x), _keras(model, x))


@pytest.mark.parametrize("merge,n", [("add", 3), ("multiply", 3), ("maximum", 4), ("minimum", 3), ("average", 4),
                                     ("concatenate", 3)])
def test_emulator_equals_qkeras_many_inputs(merge, n):
    """A Keras merge of n > 2 inputs: a chain (a tree for average) of binary nodes, exactly Keras' result."""
    model = two_branch_mlp(merge, n_inputs=n, seed=n)
    project = convert(model, input_precision=IN_PREC)
    ops = [nd for nd in project.graph if nd.op in ("merge", "concatenate")]
    assert len(ops) == n - 1
    if merge == "average":
        assert [(nd.name, nd.inputs) for nd in ops] == [("merge_0_1", ["a0", "a1"]), ("merge_2_3", ["a2", "a3"]),
                                                        ("merge", ["merge_0_1", "merge_2_3"])]
    else:
        assert [(nd.name, nd.inputs) for nd in ops] == [("merge_1", ["a0", "a1"])] + \
            [(f"merge_{k}" if k < n - 1 else "merge", [f"merge_{k - 1}" if k > 2 else "merge_1", f"a{k}"])
             for k in range(2, n)]
    x = grid(400, (8,), seed=n)
    assert np.array_equal(project.predict(x), _keras(model, x))


@pytest.mark.parametrize("projection", [False, True])
def test_emulator_equals_qkeras_residual_cnn(projection):
    model = residual_cnn(projection=projection)
    project = convert(model, input_precision=IN_PREC)
    assert project.graph["add"].inputs == ["c2", "proj" if projection else "xq"]
    x = grid(300, (6, 6, 2))
    assert np.array_equal(project.predict(x), _keras(model, x))


@pytest.mark.parametrize("axis", [-1, 1, 2, 3, -2])
def test_emulator_equals_qkeras_concatenated_feature_maps(axis):
    model = concat_cnn(axis)
    project = convert(model, input_precision=IN_PREC)
    cat = project.graph["cat"]
    assert cat.attrs["axis"] == (axis - 1 if axis > 0 else 3 + axis)
    assert tuple(cat.shape) == tuple(model.get_layer("cat").output_shape[1:])
    x = grid(300, (6, 6, 2))
    assert np.array_equal(project.predict(x), _keras(model, x))


# ---------------------------------------------------------------------------- frontend
def test_layers_are_walked_in_topological_order():
    """Whatever order the model lists its layers in, the graph is built inputs first."""
    model = residual_cnn(projection=True)
    graph, _ = load_graph(model)

    class Reversed:                     # the same model, its layer list reversed
        name, inputs, outputs = model.name, model.inputs, model.outputs
        layers = list(reversed(model.layers))
        _network_nodes = model._network_nodes
    from fpga_gen.frontend.keras import keras_to_graph
    g2 = keras_to_graph(Reversed(), name=model.name)
    names = [n.name for n in g2]
    for n in g2:
        assert all(names.index(i) < names.index(n.name) for i in n.inputs)
    assert sorted(names) == sorted(n.name for n in graph)
    assert {n.name: n.inputs for n in g2} == {n.name: n.inputs for n in graph}


def test_flatten_and_dropout_aliases_across_branches():
    """Flatten -> Dropout -> Dense on one branch, a Dense on the other, Add of the two, Concatenate of a
    flattened conv map with a Dense output: the aliases resolve to the nodes that hold the values."""
    tf = _tf()
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(3)
    x = L.Input((4, 4, 2), name="x")
    c = L.Conv2D(2, 3, padding="same", name="conv")(x)
    f = L.Dropout(0.1, name="drop")(L.Flatten(name="flat")(c))
    d1 = L.Dense(6, name="d1")(f)
    d2 = L.Dense(6, name="d2")(L.Flatten(name="flat2")(x))
    s = L.Add(name="add")([d1, L.Dropout(0.2, name="drop2")(d2)])
    cat = L.Concatenate(name="cat")([f, s])
    model = tf.keras.Model(x, L.Dense(3, name="out")(cat))
    graph, _ = load_graph(model)
    assert {n.name: (n.op, n.inputs) for n in graph} == {
        "x": ("input", []), "conv": ("conv2d", ["x"]), "d1": ("dense", ["conv"]), "d2": ("dense", ["x"]),
        "add": ("merge", ["d1", "d2"]), "cat": ("concatenate", ["conv", "add"]), "out": ("dense", ["cat"])}
    assert graph["cat"].attrs == {"axis": 0, "shape1": (32,), "shape2": (6,)} and graph["cat"].shape == (38,)
    project = convert(model, input_precision="ap_fixed<10,3>")
    x = grid(100, (4, 4, 2), lo=-3, hi=3)
    assert np.abs(project.predict(x) - _keras(model, x)).max() < 0.1


def test_a_layer_also_called_outside_the_model_is_not_shared():
    tf = _tf()
    L = tf.keras.layers
    x = L.Input((4,), name="x")
    d = L.Dense(3, name="d")
    tf.keras.Model(x, d(L.Dense(4, name="other")(x)))          # d's first call, in another model
    model = tf.keras.Model(x, L.Add(name="add")([d(x), L.Dense(3, name="e")(x)]))
    graph, _ = load_graph(model)
    assert graph["add"].inputs == ["d", "e"] and graph["d"].inputs == ["x"]


def test_partial_node_names_never_take_a_keras_layer_name():
    tf = _tf()
    L = tf.keras.layers
    x = L.Input((4,), name="x")
    a, b, c = (L.Dense(3, name=n)(x) for n in ("a", "b", "c"))
    s = L.Add(name="add")([a, b, c])
    model = tf.keras.Model(x, L.Add(name="add_1")([s, a]))
    graph, _ = load_graph(model)
    assert [n.name for n in graph if n.op == "merge"] == ["add_1_2", "add", "add_1"]


def _model(build):
    tf = _tf()
    L = tf.keras.layers
    x = L.Input((4,), name="x")
    return tf.keras.Model(x, build(L, x), name="m")


@pytest.mark.parametrize("build,message", [
    (lambda L, x: (lambda d: L.Add(name="add")([d(x), d(L.Dense(4, name="e")(x))]))(L.Dense(4, name="d")),
     "layer 'd' (Dense) is called 2 times in model 'm' (a shared layer), which is not supported; give each "
     "call its own layer"),
    (lambda L, x: L.Add(name="add")([L.Dense(3, name="a")(x), L.Dense(1, name="b")(x)]),
     "layer 'add' (Add): inputs of shapes (3,) and (1,) differ; broadcasting is not supported, give every input "
     "the same shape"),
    (lambda L, x: L.Average(name="avg")([L.Dense(3, name=n)(x) for n in "abc"]),
     "layer 'avg' (Average): an average of 3 inputs is not supported; the pairwise nnet::average is exact for "
     "2, 4, 8, ... inputs only"),
    (lambda L, x: L.Concatenate(axis=0, name="cat")([L.Dense(3, name="a")(x), L.Dense(3, name="b")(x)]),
     "layer 'cat' (Concatenate): axis=0 is not supported; concatenate along a data axis, one of 1, -1"),
    (lambda L, x: L.Concatenate(name="cat")([L.Reshape((1, 1, 2, 2), name="r1")(x),
                                             L.Reshape((1, 1, 2, 2), name="r2")(x)]),
     None),
    (lambda L, x: L.Dot(axes=1, name="dot")([L.Dense(3, name="a")(x), L.Dense(3, name="b")(x)]),
     "layer 'dot' (Dot) is not supported; supported layers: "),
])
def test_unsupported_merges_are_one_line_errors(build, message):
    model = _model(build)
    with pytest.raises(FrontendError) as e:
        load_graph(model)
    text = str(e.value)
    assert "\n" not in text
    if message is None:         # a 4-d concatenation: Reshape is not supported (yet) either
        assert text.startswith("layer 'r1' (Reshape) is not supported") or "rank 4" in text
    else:
        assert text.startswith(message)


# ---------------------------------------------------------------------------- precision
def _values(t: FixedType) -> np.ndarray:
    return np.arange(t.raw_min, t.raw_max + 1) * 2.0 ** -t.frac


def _fits(values: np.ndarray, t: FixedType) -> bool:
    raw = values * 2.0 ** t.frac
    return bool(np.all(raw == np.floor(raw)) and raw.min() >= t.raw_min and raw.max() <= t.raw_max)


@pytest.mark.parametrize("mode", list(MERGE_MODES) + ["concatenate"])
def test_result_types_are_exact_and_smallest(mode):
    """Every result of every pair of input values fits the type; one bit less (width or fraction) does not."""
    fns = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "average": lambda a, b: (a + b) / 2,
           "maximum": np.maximum, "minimum": np.minimum, "concatenate": lambda a, b: np.concatenate([a, b])}
    types = [FixedType(4, 2), FixedType(5, 1, False), FixedType(3, 3), FixedType(4, -1), FixedType(6, 4, False),
             FixedType(1, 1, False)]
    for ta, tb in itertools.product(types, repeat=2):
        t = merge_result_type(mode, ta, tb)
        a, b = np.meshgrid(_values(ta), _values(tb))
        r = fns[mode](a.ravel(), b.ravel()) if mode != "concatenate" else fns[mode](_values(ta), _values(tb))
        assert _fits(r, t), (mode, ta, tb, t)
        assert not _fits(r, FixedType(t.width - 1, t.integer - 1, t.signed)) if t.width > 1 else True
        if t.width > 1:
            assert not _fits(r, FixedType(t.width - 1, t.integer, t.signed)), (mode, ta, tb, t)


def test_too_wide_exact_result_is_refused():
    with pytest.raises(PassError, match="the exact multiply of ap_fixed<30,10> and ap_fixed<30,10> needs 60 bits, "
                                        "more than the emulator's 53; set a narrower result type in the config"):
        merge_result_type("multiply", FixedType(30, 10), FixedType(30, 10))


# ---------------------------------------------------------------------------- hand-built graphs: every op, every mode
N = 12
CONCATS = [((12,), (12,), 0), ((3, 4), (3, 4), 0), ((3, 4), (3, 4), 1), ((2, 3, 2), (2, 3, 2), 0),
           ((2, 3, 2), (2, 3, 2), 1), ((2, 3, 2), (2, 3, 2), 2), ((1, 12), (1, 12), 1), ((2, 2, 3), (2, 2, 3), 2)]


def merge_graph(seed: int) -> Graph:
    """x -> two branches of random types (a linear cast and a dense layer) -> every merge mode and every
    concatenation geometry, each with its exact result type and with a random narrow type (random rounding
    and overflow), all joined into the output by exact concatenations."""
    rng = np.random.default_rng(seed)
    x = Node("x", "input", [], (N,), types={"result": FixedType(16, 6)})
    a = Node("a", "activation", ["x"], (N,), attrs={"activation": "linear"},
             types={"result": _rand_type(rng, width=(2, 9), integer=(-1, 5))})
    b = _dense("b", x, N, rng, "exact")
    b.types["result"] = _rand_type(rng, width=(2, 9), integer=(-1, 5))
    c = Node("c", "activation", ["x"], (N,), attrs={"activation": "relu"},
             types={"result": _rand_type(rng, width=(2, 8), integer=(-1, 4), signed=False)})
    nodes = [x, a, b, c]
    outs = []
    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("a", "a")]
    types = {n.name: n.types["result"] for n in nodes}
    for k, mode in enumerate(MERGE_MODES):
        for variant in ("exact", "narrow"):
            p, q = pairs[(k + (variant == "narrow")) % len(pairs)]
            exact = merge_result_type(mode, types[p], types[q])
            rt = exact if variant == "exact" else FixedType(
                max(2, exact.width - int(rng.integers(1, 5))), exact.integer - int(rng.integers(0, 3)),
                bool(rng.integers(2)) or exact.signed, str(rng.choice(["TRN", "RND", "RND_CONV", "TRN_ZERO"])),
                str(rng.choice(["WRAP", "SAT", "SAT_SYM"])))
            name = f"{mode}_{variant}"
            nodes.append(Node(name, "merge", [p, q], (N,), attrs={"mode": mode}, types={"result": rt}))
            outs.append(name)
    for k, (s1, s2, axis) in enumerate(CONCATS):
        p, q = pairs[k % len(pairs)]
        shape = tuple(d1 + d2 if i == axis else d1 for i, (d1, d2) in enumerate(zip(s1, s2)))
        exact = merge_result_type("concatenate", types[p], types[q])
        rt = exact if k % 2 == 0 else FixedType(max(2, exact.width - 2), exact.integer - 1, True, "RND", "SAT")
        nodes.append(Node(f"cat{k}", "concatenate", [p, q], shape, attrs={"axis": axis, "shape1": s1, "shape2": s2},
                          types={"result": rt}))
        outs.append(f"cat{k}")
    for n in nodes[4:]:
        types[n.name] = n.types["result"]
    acc, acc_t, size = outs[0], types[outs[0]], N
    for k, o in enumerate(outs[1:]):
        n_o = next(n for n in nodes if n.name == o).size
        t = merge_result_type("concatenate", acc_t, types[o])
        nodes.append(Node(f"join{k}", "concatenate", [acc, o], (size + n_o,),
                          attrs={"axis": 0, "shape1": (size,), "shape2": (n_o,)}, types={"result": t}))
        acc, acc_t, size = f"join{k}", t, size + n_o
    return Graph(f"merges_{seed}", nodes, inputs=["x"], outputs=[acc])


def _merge_inputs(seed: int) -> np.ndarray:
    return _cpp_safe(edge_inputs(FixedType(16, 6), N, 400, seed=seed))


def test_graph_kernels_match_numpy_reference():
    """The emulator against a plain float64 reference of nnet_merge.h on the exact input values."""
    g = merge_graph(0)
    x = _merge_inputs(0)
    with np.errstate(all="ignore"):
        tr = Emulator(g).predict(x, trace=True)
    from fpga_gen.ir.fixed import from_float, to_float
    fns = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "average": lambda a, b: (a + b) / 2}
    for node in g:
        if node.op == "merge" and node.attrs["mode"] in fns:
            p, q = (tr[i].reshape(len(x), -1) for i in node.inputs)
            ref = to_float(from_float(fns[node.attrs["mode"]](p, q), node.types["result"]), node.types["result"])
            assert np.array_equal(tr[node.name], ref), node.name
        elif node.op == "merge":
            p, q = (tr[i].reshape(len(x), -1) for i in node.inputs)
            rt = node.types["result"]
            cp, cq = (to_float(from_float(v, rt), rt) for v in (p, q))
            first = p > q if node.attrs["mode"] == "maximum" else p < q
            assert np.array_equal(tr[node.name], np.where(first, cp, cq)), node.name
        elif node.op == "concatenate":
            p, q = (tr[i].reshape((len(x),) + tuple(s)) for i, s in zip(node.inputs, (node.attrs["shape1"],
                                                                                     node.attrs["shape2"])))
            rt = node.types["result"]
            ref = np.concatenate([p, q], axis=node.attrs["axis"] + 1).reshape(len(x), -1)
            assert np.array_equal(tr[node.name].reshape(len(x), -1), to_float(from_float(ref, rt), rt)), node.name


@pytest.mark.parametrize("seed", range(4))
def test_torch_equals_numpy_on_every_merge(seed):
    pytest.importorskip("torch")
    from fpga_gen.emulate.torch_ops import TorchOps
    g = merge_graph(seed)
    assert_same_as_numpy(g, _merge_inputs(seed), TorchOps("cpu"))


@needs_gxx
@pytest.mark.parametrize("seed", range(3))
def test_csim_equals_emulator_on_every_merge(seed):
    """One compiled project per seed holds every merge mode and concatenation geometry: the C++ equals the
    emulator bit for bit on every value, ties and the extremes of both branches included."""
    g = merge_graph(seed)
    project = Project(g, ProjectConfig(name=f"merges_{seed}"))
    x = _merge_inputs(seed)
    with np.errstate(all="ignore"):
        ref = project.predict(x, backend="emu")
    got = project.predict(x, backend="native")
    assert np.array_equal(ref, got)
    # the narrow variants do round and overflow: the test sees more than exact copies
    with np.errstate(all="ignore"):
        tr = project.emulator().predict(x, trace=True)
    sat = [n.name for n in g if n.name.endswith("_narrow") and n.types["result"].saturation != "WRAP"
           and np.any(np.abs(tr[n.name]) >= n.types["result"].max)]
    assert sat


# ---------------------------------------------------------------------------- converted models through every back end
@needs_gxx
def test_every_backend_gives_the_same_bits_on_a_residual_cnn(tmp_path):
    model = residual_cnn(projection=True, seed=2)
    project = convert(model, input_precision=IN_PREC)
    t = project.graph["x"].types["result"]
    rng = np.random.default_rng(5)
    x = rng.integers(t.raw_min, t.raw_max + 1, size=(200, 6, 6, 2)) * 2.0 ** -t.frac
    ref = project.predict(x)
    project.write(tmp_path / "prj")
    assert np.array_equal(csim.predict(tmp_path / "prj", x), ref)
    assert csim.run_testbench(tmp_path / "prj").passed
    assert np.array_equal(fpga_gen.load_project(tmp_path / "prj").predict(x), ref)   # attrs survive graph.json
    try:
        import torch  # noqa: F401
        assert np.array_equal(project.predict(x, backend="gpu"), ref)
    except ImportError:
        pass
    assert np.array_equal(csim.predict(tmp_path / "prj", x, native=True), ref)   # conv2d as integer sums
    top = (tmp_path / "prj" / "firmware" / "resnet.cpp").read_text()
    hls = re.sub(r"#ifdef FPGA_GEN_NATIVE\n.*?#else\n", "", top, flags=re.S)     # what Vitis HLS compiles
    assert "nnet::add<c2_t, proj_t, add_t, config_add>(c2_out, proj_out, add_out);" in hls
    assert hls.count("(xq_out, ") == 2                  # one array read by two layers


@needs_gxx
def test_csim_concatenated_feature_maps_and_many_input_merges(tmp_path):
    tf = _tf()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(7)
    x = L.Input((5, 4, 2), name="x")
    a = QActivation(quantized_relu(5, 2), name="ra")(QConv2D(2, 3, padding="same", name="ca", **_wq())(x))
    b = QActivation(quantized_bits(6, 2, alpha=1), name="rb")(QConv2D(2, 3, padding="same", name="cb", **_wq())(x))
    c = QActivation(quantized_bits(4, 1, alpha=1), name="rc")(QConv2D(2, 1, name="cc", **_wq())(x))
    h = L.Concatenate(axis=1, name="cat_h")([a, b, c])
    w = L.Concatenate(axis=2, name="cat_w")([a, c])
    mx = L.Maximum(name="mx")([a, b, c])
    mn = L.Minimum(name="mn")([b, c])
    av = L.Average(name="av")([a, b, c, mn])
    s = L.Subtract(name="sub")([mx, av])
    p = L.Multiply(name="mul")([s, c])
    f = L.Concatenate(name="all")([L.Flatten(name=f"f{k}")(t) for k, t in enumerate((h, w, p))])
    model = tf.keras.Model(x, QDense(3, name="fc", **_wq())(f), name="many")
    project = convert(model, input_precision=IN_PREC)
    xs = grid(200, (5, 4, 2))
    assert np.array_equal(project.predict(xs), _keras(model, xs))
    project.write(tmp_path / "prj")
    t = project.graph["x"].types["result"]
    rng = np.random.default_rng(6)
    xr = rng.integers(t.raw_min, t.raw_max + 1, size=(200, 5, 4, 2)) * 2.0 ** -t.frac
    assert np.array_equal(csim.predict(tmp_path / "prj", xr), project.predict(xr))


# ---------------------------------------------------------------------------- HLS text, estimator, passes
def _hls4ml_struct(template: str, **params) -> list[str]:
    return [ln.strip() for ln in template.format(index=0, **params).splitlines()[1:] if ln.strip()]


def _our_struct(text: str, config: str) -> list[str]:
    body = text.split(f"struct {config} :", 1)[1].split("\n", 1)[1]
    return [ln.strip() for ln in body.split("};", 1)[0].splitlines() if ln.strip()] + ["};"]


def test_config_structs_are_hls4ml_13s(tmp_path):
    from hls4ml.backends.vivado.passes.merge_templates import concat_config_template, merge_config_template
    g = merge_graph(1)
    Project(g, ProjectConfig(name="structs")).write(tmp_path / "prj")
    text = (tmp_path / "prj" / "firmware" / "parameters.h").read_text()
    assert _our_struct(text, "config_add_exact") == _hls4ml_struct(merge_config_template, n_elem=N, n_elem1=N,
                                                                   n_elem2=N, reuse=1)
    assert _our_struct(text, "config_cat4") == _hls4ml_struct(
        concat_config_template, n_elem1_0=2, n_elem1_1=3, n_elem1_2=2, n_elem2_0=2, n_elem2_1=3, n_elem2_2=2, axis=2)
    top = (tmp_path / "prj" / "firmware" / "structs.cpp").read_text()
    assert "nnet::concatenate3d<a_t, b_t, cat4_t, config_cat4>(a_out, b_out, cat4_out);" in top
    assert "nnet::average<a_t, b_t, average_narrow_t, config_average_narrow>(a_out, b_out, average_narrow_out);" in top


def test_estimate_takes_the_longest_path_of_parallel_branches():
    from fpga_gen.estimate import estimate
    project = convert(residual_cnn(projection=True), input_precision=IN_PREC)
    est = estimate(project.graph, project.config)
    rows = {r["name"]: r for r in est.layers}
    assert {"add"} <= set(rows) and rows["add"]["LUT"] > 0
    serial = sum(r["latency_cycles"] for r in est.layers)
    assert est.total["latency_cycles"] <= serial + 1 + 0.5 * len(est.layers)
    assert est.total["latency_cycles"] >= rows["c1"]["latency_cycles"] + rows["c2"]["latency_cycles"]
    mul = convert(two_branch_mlp("multiply"), input_precision=IN_PREC)
    assert estimate(mul.graph, mul.config).layers[4]["op"] == "merge"


def test_safe_casts_widen_an_exact_merge_before_a_coarse_quantizer():
    """quantized_relu(2, 5) after an add of two 3-bit values: the rounding cast reads past the add's MSB, so
    the exact add result is sign-extended (free) and csim can run it."""
    tf = _tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(1)
    x = L.Input((4,), name="x")
    a = QActivation(quantized_bits(3, 0, alpha=1), name="qa")(x)
    b = QActivation(quantized_bits(3, 0, alpha=1), name="qb")(L.Activation("relu", name="r")(x))
    s = QActivation(quantized_relu(2, 5), name="coarse")(L.Add(name="add")([a, b]))
    model = tf.keras.Model(x, QDense(2, name="out", **_wq())(s))
    project = convert(model, input_precision=IN_PREC)
    exact = merge_result_type("add", project.graph["qa"].types["result"], project.graph["qb"].types["result"])
    add_t = project.graph["add"].types["result"]
    assert add_t.frac == exact.frac and add_t.width > exact.width


def test_a_merge_result_override_that_rounds_past_its_msb_is_refused():
    model = two_branch_mlp("add")
    with pytest.raises(PassError, match="layer 'merge': rounding the add .* drops more bits than it has"):
        convert(model, input_precision=IN_PREC,
                config={"layers": {"merge": {"precision": {"result": "ap_fixed<4,30,AP_RND,AP_SAT>"}}}})


def test_split_inside_a_branch_is_refused():
    project = convert(residual_cnn(projection=True), input_precision=IN_PREC)
    from fpga_gen.ir.graph import GraphError
    with pytest.raises(GraphError, match="split point 'c1' is inside a branch"):
        project.graph.split("c1")
    head, tail = project.graph.split("add")
    assert tail.inputs == ["add"]
