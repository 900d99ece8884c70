"""Every back end computes exactly what the numpy emulator (the spec) computes.

The ``gpu`` back end is the emulator's own kernels on PyTorch (``TorchOps``): for every op,
on random graphs and random inputs (edge values included: the extremes of the input type,
rounding ties, NaN and +-inf), each node's output must be identical to numpy's, bit for
bit (``array_equal`` plus the sign of zeros).  Tests run on the CPU, and on CUDA as well
when a GPU is visible; they skip when PyTorch is not installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fpga_gen.emulate import Emulator
from fpga_gen.ir.fixed import product_type
from fpga_gen.ir import FixedType, Graph, Node, exact_type_for_range
from fpga_gen.ir.types import ROUNDING_MODES, SATURATION_MODES
from fpga_gen.ir.reuse import valid_reuse_factors

from qmodels import grid_inputs, qmlp


def _devices():
    try:
        import torch
    except ImportError:
        return ["cpu"]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def ops(request):
    pytest.importorskip("torch")
    from fpga_gen.emulate.torch_ops import TorchOps
    return TorchOps(request.param)


# ---------------------------------------------------------------------------- comparison
def assert_bit_equal(ref: np.ndarray, got: np.ndarray, what: str = ""):
    assert got.dtype == ref.dtype and got.shape == ref.shape, (what, got.dtype, got.shape, ref.shape)
    differ = ~((ref == got) | (np.isnan(ref) & np.isnan(got)))
    assert not differ.any(), f"{what}: {int(differ.sum())} values differ"
    known = ~np.isnan(ref)                    # the sign of a NaN carries no value
    assert np.array_equal(np.signbit(ref[known]), np.signbit(got[known])), f"{what}: signs of zeros differ"


def assert_same_as_numpy(graph: Graph, x: np.ndarray, ops) -> dict:
    """Every node's output (trace) on numpy and on ``ops`` must be identical."""
    with np.errstate(all="ignore"):
        ref = Emulator(graph).predict(x, trace=True)
    got = Emulator(graph, xp=ops).predict(x, trace=True)
    assert list(got) == list(ref)
    for name in ref:
        assert_bit_equal(ref[name], got[name], f"node {name!r}")
    return ref


# ---------------------------------------------------------------------------- inputs
def edge_values(t: FixedType) -> list[float]:
    """The extremes of ``t``, one LSB beyond them, rounding ties, zeros of both signs, NaN, +-inf."""
    s = t.step
    vals = [t.min, t.max, t.min - s, t.max + s, t.min - s / 2, t.max + s / 2, t.min * 4 - s, t.max * 4 + s,
            0.0, -0.0, s / 2, -s / 2, 1.5 * s, -1.5 * s, 2.5 * s, -2.5 * s, s / 4, -s / 4, 3 * s / 4,
            math.nan, -math.nan, math.inf, -math.inf, 1e30, -1e30, 1e-300, -1e-300]
    return [float(v) for v in vals]


def edge_inputs(t: FixedType, n_in: int, rows: int, seed: int) -> np.ndarray:
    """Random values around the range of ``t`` (on and off its grid) with edge values sprinkled in,
    plus rows that are all-maximum, all-minimum and alternating (which drive accumulators to their extremes)."""
    rng = np.random.default_rng(seed)
    span = max(abs(t.min), abs(t.max), t.step)
    x = rng.uniform(-1.25 * span, 1.25 * span, size=(rows, n_in))
    on_grid = rng.random((rows, n_in)) < 0.5
    x[on_grid] = np.round(x[on_grid] / t.step) * t.step
    edges = np.array(edge_values(t))
    pick = rng.random((rows, n_in)) < 0.2
    x[pick] = rng.choice(edges, size=int(pick.sum()))
    alt = np.where(np.arange(n_in) % 2 == 0, t.max, t.min)
    extremes = np.stack([np.full(n_in, t.max), np.full(n_in, t.min), alt, -alt, np.full(n_in, t.max + t.step)])
    return np.concatenate([x, extremes])


# ---------------------------------------------------------------------------- hand-built graphs
def _rand_type(rng, width=(3, 16), integer=(-2, 8), signed=None) -> FixedType:
    w = int(rng.integers(width[0], width[1] + 1))
    i = int(rng.integers(integer[0], integer[1] + 1))
    s = bool(rng.integers(2)) if signed is None else signed
    return FixedType(w, i, s, str(rng.choice(ROUNDING_MODES)), str(rng.choice(SATURATION_MODES)))


def _dense(name, src: Node, n_out: int, rng, accum_mode: str, strategy="latency", reuse=1) -> Node:
    """A dense node with random quantized weights.  accum_mode: 'exact' (never overflows), 'wrap'
    (narrow, wraps: the matmul + final-wrap path), 'sat' (narrow, saturates: the product-by-product
    path) or 'coarse' (fewer fractional bits than the products: the per-product cast path)."""
    xt = src.types["result"]
    n_in = src.size
    wt = FixedType(int(rng.integers(2, 9)), int(rng.integers(-1, 3)))
    bt = FixedType(int(rng.integers(2, 9)), int(rng.integers(-1, 4)))
    kernel = rng.integers(wt.raw_min, wt.raw_max + 1, size=(n_in, n_out)) * wt.step
    bias = rng.integers(bt.raw_min, bt.raw_max + 1, size=(n_out,)) * bt.step
    pt = product_type(xt, wt)
    frac = max(pt.frac, bt.frac)
    x_abs = max(abs(xt.min), abs(xt.max))
    bound = x_abs * float(np.abs(kernel).sum(axis=0).max()) + float(np.abs(bias).max())
    exact = exact_type_for_range(-int(bound * 2.0 ** frac) - 1, int(bound * 2.0 ** frac) + 1, frac)
    if accum_mode == "exact":
        at = exact
    elif accum_mode in ("wrap", "sat"):
        narrow = max(2, exact.width - int(rng.integers(2, 6)))
        at = FixedType(narrow, narrow - frac, True, str(rng.choice(ROUNDING_MODES)),
                       "WRAP" if accum_mode == "wrap" else str(rng.choice(["SAT", "SAT_ZERO", "SAT_SYM"])))
    elif accum_mode == "coarse":
        cut = int(rng.integers(1, 5))
        at = FixedType(exact.width - cut + 1, exact.integer + 1, True, str(rng.choice(ROUNDING_MODES)), "WRAP")
    else:
        raise ValueError(accum_mode)
    rt = _rand_type(rng)
    return Node(name, "dense", [src.name], (n_out,),
                attrs={"n_in": n_in, "n_out": n_out, "strategy": strategy, "reuse_factor": reuse},
                weights={"kernel": kernel, "bias": bias},
                types={"weight": wt, "bias": bt, "accum": at, "result": rt})


def _softmax(name, src: Node, rng) -> Node:
    xt = src.types["result"]
    n = src.size
    scale = math.ceil(math.log2(n)) if n > 1 else 0
    exp_t = FixedType(18, 8, True, "RND", "SAT")
    size = int(rng.choice([256, 1024]))
    norm_width = max(xt.width - xt.signed, size.bit_length() - 1)      # the table index needs that many bits
    types = {
        "result": FixedType(16, 6, True, str(rng.choice(ROUNDING_MODES)), str(rng.choice(SATURATION_MODES))),
        "inp_norm": FixedType(norm_width, xt.integer - xt.signed, False, "TRN", "SAT"),
        "exp_table": exp_t,
        "inv_table": FixedType(18, 8, True, "RND", "SAT"),
        "accum": FixedType(18 + scale, 8 + scale, True),
        "inv_inp": exp_t,
    }
    return Node(name, "softmax", [src.name], src.shape,
                attrs={"implementation": "stable", "exp_table_size": size, "inv_table_size": size}, types=types)


def random_graph(seed: int, accum_mode: str = "exact", softmax: bool = False, n_layers: int = 2) -> Graph:
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(2, 20))
    x = Node("x", "input", [], (n_in,), types={"result": _rand_type(rng)})
    nodes = [x]
    for k in range(n_layers):
        n_out = int(rng.integers(2, 24))
        reuse = int(rng.choice(valid_reuse_factors(nodes[-1].size, n_out)[:4]))
        d = _dense(f"dense_{k}", nodes[-1], n_out, rng, accum_mode,
                   strategy=str(rng.choice(["latency", "resource"])), reuse=reuse)
        nodes.append(d)
        act = str(rng.choice(["relu", "linear"]))
        nodes.append(Node(f"act_{k}", "activation", [d.name], d.shape, attrs={"activation": act},
                          types={"result": _rand_type(rng)}))
    if softmax:
        nodes.append(_softmax("softmax", nodes[-1], rng))
    return Graph(f"random_{seed}", nodes, inputs=["x"], outputs=[nodes[-1].name])


# ---------------------------------------------------------------------------- tests: single ops
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("saturation", SATURATION_MODES)
@pytest.mark.parametrize("signed", [True, False])
def test_input_casts(ops, rounding, saturation, signed):
    """The input op (float -> fixed) for every quantization and overflow mode, on every edge value."""
    for width, integer in ((8, 3), (16, 6), (5, -1), (12, 14)):
        t = FixedType(width, integer, signed, rounding, saturation)
        g = Graph("inp", [Node("x", "input", [], (4,), types={"result": t})], inputs=["x"], outputs=["x"])
        x = edge_inputs(t, 4, 64, seed=width)
        x = np.concatenate([x, np.array(edge_values(t) + [0.0]).reshape(-1, 4)])
        assert_same_as_numpy(g, x, ops)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_zeros_come_out_positive(ops, rounding):
    """A fixed-point zero has no sign: every back end gives it as +0.0, as ap_fixed's to_double() does, although
    the raw zero may be -0.0 (floor(-0.0), ceil(-0.3), an unsigned clip; CUDA's clamp and numpy's clip even pick
    different signs, which the first run on an H200 showed)."""
    for signed, saturation in ((True, "WRAP"), (False, "SAT"), (False, "SAT_ZERO"), (True, "SAT_SYM")):
        t = FixedType(8, 3, signed, rounding, saturation)
        g = Graph("inp", [Node("x", "input", [], (6,), types={"result": t})], inputs=["x"], outputs=["x"])
        s = t.step
        x = np.array([[-0.0, -0.3 * s, 0.3 * s, -0.5 * s, 0.5 * s, -5.0]])
        y = Emulator(g, xp=ops).predict(x)
        assert not np.signbit(y[y == 0]).any(), (signed, saturation, y)
        assert (y == 0).sum() >= 2


@pytest.mark.parametrize("accum_mode", ["exact", "wrap", "sat", "coarse"])
@pytest.mark.parametrize("seed", range(6))
def test_random_dense_activation_graphs(ops, accum_mode, seed):
    """Dense (all three accumulation paths) and relu/linear activations with random types and modes."""
    g = random_graph(100 * seed + len(accum_mode), accum_mode=accum_mode)
    xt = g["x"].types["result"]
    x = edge_inputs(xt, g["x"].size, 200, seed=seed)
    assert_same_as_numpy(g, x, ops)


@pytest.mark.parametrize("seed", range(6))
def test_random_softmax_graphs(ops, seed):
    g = random_graph(1000 + seed, accum_mode=["exact", "wrap", "sat"][seed % 3], softmax=True)
    x = edge_inputs(g["x"].types["result"], g["x"].size, 200, seed=seed)
    assert_same_as_numpy(g, x, ops)


def test_softmax_of_extreme_inputs(ops):
    """Softmax inputs at the extremes of their type: table indices at both ends, ties for the maximum."""
    rng = np.random.default_rng(7)
    t = FixedType(10, 5, True, "TRN", "WRAP")
    x = Node("x", "input", [], (6,), types={"result": t})
    sm = _softmax("softmax", x, rng)
    g = Graph("sm", [x, sm], inputs=["x"], outputs=["softmax"])
    rows = [np.full(6, t.max), np.full(6, t.min), np.array([t.max, t.min] * 3), np.array([t.min] * 5 + [t.max]),
            np.zeros(6), np.array([t.step, 0, -t.step, t.max, t.max, t.min])]
    assert_same_as_numpy(g, np.concatenate([np.stack(rows), edge_inputs(t, 6, 100, seed=3)]), ops)


def test_dense_rejects_the_same_ranges_on_both(ops):
    """The 2**53 bound is checked from the types, before any back end computes."""
    from fpga_gen.ir.fixed import EmulationRangeError
    xt = FixedType(50, 20)
    x = Node("x", "input", [], (64,), types={"result": xt})
    wt = FixedType(16, 1)
    d = Node("d", "dense", ["x"], (2,), attrs={"n_in": 64, "n_out": 2},
             weights={"kernel": np.full((64, 2), wt.min), "bias": np.zeros(2)},
             types={"weight": wt, "bias": wt, "accum": FixedType(53, 33), "result": FixedType(16, 6)})
    g = Graph("big", [x, d], inputs=["x"], outputs=["d"])
    from fpga_gen.emulate import EmulationError
    for xp in (None, ops):
        emu = Emulator(g) if xp is None else Emulator(g, xp=xp)
        with pytest.raises(EmulationError, match="2\\*\\*53"):
            emu.predict(np.zeros((1, 64)))
    assert issubclass(EmulationRangeError, ValueError)


# ---------------------------------------------------------------------------- tests: converted QKeras models
_CONVERTED: dict = {}


def _converted(act: str, softmax: bool, strategy: str, reuse: int, bits: int = 6):
    import fpga_gen
    key = (act, softmax, bits)
    if key not in _CONVERTED:
        _CONVERTED[key] = qmlp([16, 32, 8], bits=bits, act=act, softmax=softmax, seed=len(act) + softmax,
                               name=f"q_{act}")
    return fpga_gen.convert(_CONVERTED[key], strategy=strategy, reuse_factor=reuse)


@pytest.mark.parametrize("act", ["quantized_relu", "relu", "linear", "quantized_bits"])
@pytest.mark.parametrize("softmax", [False, True])
def test_converted_qkeras_mlps(ops, act, softmax):
    project = _converted(act, softmax, "latency", 1)
    xt = project.graph["x"].types["result"]
    x = np.concatenate([grid_inputs(300, 16, seed=2), edge_inputs(xt, 16, 100, seed=4)])
    assert_same_as_numpy(project.graph, x, ops)


@pytest.mark.parametrize("strategy,reuse", [("latency", 1), ("latency", 4), ("resource", 2), ("resource", 8),
                                            ("resource", 16)])
def test_reuse_factors(ops, strategy, reuse):
    """Strategy and reuse factor change the schedule, never the values."""
    project = _converted("quantized_relu", True, strategy, reuse)
    assert {n.attrs["reuse_factor"] for n in project.graph if n.op == "dense"} == {reuse}
    x = grid_inputs(500, 16, seed=reuse)
    ref = assert_same_as_numpy(project.graph, x, ops)
    base = Emulator(_converted("quantized_relu", True, "latency", 1).graph).predict(x)
    assert np.array_equal(ref["softmax"], base)


def test_project_predict_gpu_backend():
    pytest.importorskip("torch")
    project = _converted("quantized_relu", True, "latency", 1)
    x = grid_inputs(256, 16, seed=9)
    y = project.predict(x, backend="gpu")
    assert_bit_equal(project.predict(x, backend="emu"), y, "predict")
    assert y.shape == (256, 8)


def test_gpu_backend_without_torch_is_one_clear_line(monkeypatch):
    import fpga_gen
    from fpga_gen.api import ProjectError
    from fpga_gen.emulate import torch_ops
    monkeypatch.setattr(torch_ops, "torch", None)
    project = _converted("relu", False, "latency", 1)
    with pytest.raises(ProjectError) as e:
        project.predict(np.zeros((1, 16)), backend="gpu")
    assert str(e.value) == "backend 'gpu' needs PyTorch: pip install 'fpga-gen[gpu]'"
    assert "gpu" in fpga_gen.api.BACKENDS


def test_torch_ops_offers_every_numpy_op():
    pytest.importorskip("torch")
    from fpga_gen.ir.fixed import NumpyOps
    from fpga_gen.emulate.torch_ops import TorchOps
    names = {n for n in vars(NumpyOps) if not n.startswith("_")}
    missing = {n for n in names if not hasattr(TorchOps, n)}
    assert not missing


# ---------------------------------------------------------------------------- tests: the C++ back ends
needs_gxx = pytest.mark.skipif(__import__("shutil").which("g++") is None, reason="g++ is not installed")


def _cpp_safe(x: np.ndarray) -> np.ndarray:
    """Drop finite values so large that value * 2**frac >= 2**53 (see test_huge_finite_inputs_wrap_like_cpp)."""
    x = x.copy()
    x[np.isfinite(x) & (np.abs(x) > 1e9)] = 0.5
    return x


@needs_gxx
@pytest.mark.parametrize("act,softmax,strategy,reuse", [("quantized_relu", True, "resource", 4),
                                                        ("linear", False, "latency", 2)])
def test_every_backend_gives_the_same_bits(act, softmax, strategy, reuse, ):
    """emu, gpu (when torch is installed), csim and native on one converted QKeras model."""
    project = _converted(act, softmax, strategy, reuse)
    xt = project.graph["x"].types["result"]
    x = _cpp_safe(np.concatenate([grid_inputs(300, 16, seed=5), edge_inputs(xt, 16, 300, seed=6)]))
    ref = project.predict(x, backend="emu")
    backends = ["csim", "native"]
    try:
        import torch  # noqa: F401
        backends.append("gpu")
    except ImportError:
        pass
    for b in backends:
        assert_bit_equal(np.where(ref == 0, 0.0, ref), np.where(ref == 0, 0.0, project.predict(x, backend=b)), b)


@needs_gxx
@pytest.mark.parametrize("seed,accum_mode,softmax", [(11, "sat", False), (12, "wrap", True), (13, "coarse", False)])
def test_random_graphs_in_cpp(seed, accum_mode, softmax, ):
    """Random types and modes through the HLS writer and g++: the C++ must equal the emulator too."""
    from fpga_gen.api import Project
    from fpga_gen.config import ProjectConfig
    g = random_graph(seed, accum_mode=accum_mode, softmax=softmax)
    project = Project(g, ProjectConfig(name=f"random_{seed}"))
    x = _cpp_safe(edge_inputs(g["x"].types["result"], g["x"].size, 300, seed=seed))
    with np.errstate(all="ignore"):
        ref = project.predict(x, backend="emu")
    for backend in ("csim", "native"):        # the HLS code, and the native library's integer kernels
        got = project.predict(x, backend=backend)
        assert np.array_equal(ref, got, equal_nan=True), backend   # the C++ writes +0.0 where numpy may write -0.0


@needs_gxx
def test_huge_finite_inputs_wrap_like_cpp():
    """A finite x whose x * 2**frac overflows (|x| near 1e308) converts like an infinity, as in the C++."""
    from fpga_gen.api import Project
    from fpga_gen.config import ProjectConfig
    xs = np.array([[1e30, -1e30, 2.0 ** 60 + 2.0 ** 40, 1e17, 1e300, 1e308, -1e308, 2.0 ** 1023],
                   [2.0 ** 43 + 12.0, -(2.0 ** 44) - 40.0, 2.0 ** 50 + 2.0 ** 9 + 0.5, 2.0 ** 45 + 7.75,
                    -(2.0 ** 52) - 3.0, 2.0 ** 53, -(2.0 ** 47) - 1.5, 3.0]])
    failures = []
    for k, t in enumerate([FixedType(16, 6), FixedType(16, 6, False), FixedType(12, -2, True, "RND", "WRAP"),
                           FixedType(8, 3, True, "TRN", "SAT"), FixedType(10, 2, False, "RND_CONV", "SAT_SYM")]):
        x = Node("x", "input", [], (8,), types={"result": t})
        a = Node("a", "activation", ["x"], (8,), attrs={"activation": "linear"}, types={"result": t})
        project = Project(Graph(f"huge{k}", [x, a], inputs=["x"], outputs=["a"]), ProjectConfig(name=f"huge{k}"))
        with np.errstate(all="ignore"):
            ref = project.predict(xs, backend="emu")
        got = project.predict(xs, backend="native")
        if not np.array_equal(ref, got):
            failures.append(f"{t}: emulator {ref.tolist()} C++ {got.tolist()}")
    assert not failures, "\n".join(failures)


def _softmax_only(name: str, inp_norm: FixedType) -> Graph:
    t = FixedType(12, 4)
    x = Node("x", "input", [], (5,), types={"result": t})
    exp_t = FixedType(18, 8, True, "RND", "SAT")
    sm = Node("softmax", "softmax", ["x"], (5,),
              attrs={"implementation": "stable", "exp_table_size": 1024, "inv_table_size": 1024},
              types={"result": FixedType(16, 6, True, "RND", "SAT"), "inp_norm": inp_norm, "exp_table": exp_t,
                     "inv_table": FixedType(18, 8, True, "RND", "SAT"), "accum": FixedType(21, 11, True),
                     "inv_inp": exp_t})
    return Graph(name, [x, sm], inputs=["x"], outputs=["softmax"])


@needs_gxx
def test_two_projects_in_one_process_keep_their_own_tables():
    """Two libraries whose softmax instantiations have the same C++ name but other tables (built with
    -fno-gnu-unique, each library keeps its own static tables)."""
    from fpga_gen.api import Project
    from fpga_gen.config import ProjectConfig
    x = np.linspace(-7.5, 7.5, 50).reshape(10, 5)
    outs = []
    for name, norm in (("sm_a", FixedType(12, 4, False, "TRN", "SAT")), ("sm_b", FixedType(12, 3, False, "TRN", "SAT"))):
        project = Project(_softmax_only(name, norm), ProjectConfig(name=name))
        ref = project.predict(x, backend="emu")
        outs.append((ref, project.predict(x, backend="native")))
    assert not np.array_equal(outs[0][0], outs[1][0])          # the two designs differ
    for ref, got in outs:
        assert np.array_equal(ref, got)


# ---------------------------------------------------------------------------- tests: 2-D ops
@pytest.mark.parametrize("case", ["conv_valid_3x3", "conv_same_3x2_stride2", "conv_valid_2x2_stride2_nobias",
                                  "pool_max_same_3x3_stride2", "pool_avg_same_2x2_odd", "pool_avg_valid_3x3",
                                  "pool_only_max"])
def test_conv_and_pooling(ops, case):
    """conv2d and max/average pooling (QKeras CNNs of tests/test_conv.py), random and edge inputs."""
    import fpga_gen
    from test_conv import CASES, IN_PREC, _case_model, grid_images
    shape, model = _case_model(case)
    project = fpga_gen.convert(model, input_precision=IN_PREC)
    xt = project.graph[project.graph.inputs[0]].types["result"]
    n_in = int(np.prod(shape))
    x = np.concatenate([grid_images(200, shape).reshape(200, n_in), edge_inputs(xt, n_in, 100, seed=8)])
    assert_same_as_numpy(project.graph, x.reshape((-1,) + tuple(shape)), ops)
    assert case in CASES


# ---------------------------------------------------------------------------- activation kinds (tests/test_activations.py)
ACTIVATION_KINDS = {
    "sigmoid": {}, "tanh": {}, "softplus": {}, "softsign": {}, "elu": {"param": 0.7},
    "relu_max": {"max_int": 3}, "leaky_relu": {"param": 0.3}, "thresholded_relu": {"param": 0.25},
    "prelu": {}, "hard_sigmoid": {}, "hard_tanh": {},
}


@pytest.mark.parametrize("kind", sorted(ACTIVATION_KINDS))
@pytest.mark.parametrize("seed", range(3))
def test_activation_kinds(ops, kind, seed):
    """Every nnet activation kind on random input / table / result types (every rounding and overflow mode)."""
    from fpga_gen.config import ProjectConfig
    from fpga_gen.passes import DEFAULT_PASSES, run_passes
    rng = np.random.default_rng(100 + seed)
    xt = _rand_type(rng, width=(3, 20), integer=(-1, 12))
    g = Graph("act")
    g.add(Node("x", "input", [], (6,), types={"result": xt}))
    weights = {"alpha": rng.uniform(-1, 2, size=6)} if kind == "prelu" else {}
    types = {"result": _rand_type(rng)} if seed else {}
    if kind in ("sigmoid", "tanh", "softplus", "softsign", "elu") and seed:
        types["table"] = _rand_type(rng, width=(6, 20), integer=(1, 9))
    g.add(Node("a", "activation", ["x"], (6,), attrs={"activation": kind, "table_size": 2 ** (6 + seed),
                                                     **ACTIVATION_KINDS[kind]}, weights=weights, types=types))
    g.inputs, g.outputs = ["x"], ["a"]
    run_passes(g, ProjectConfig(), DEFAULT_PASSES)
    assert_same_as_numpy(g, edge_inputs(xt, 6, 300, seed=seed), ops)


@pytest.mark.parametrize("impl", ["stable", "latency", "legacy", "argmax"])
def test_softmax_implementations(ops, impl):
    from fpga_gen.config import ProjectConfig
    from fpga_gen.passes import DEFAULT_PASSES, run_passes
    t = FixedType(12, 5, True, "TRN", "WRAP")
    g = Graph("sm")
    g.add(Node("x", "input", [], (6,), types={"result": t}))
    g.add(Node("softmax", "softmax", ["x"], (6,), attrs={"implementation": impl}))
    g.inputs, g.outputs = ["x"], ["softmax"]
    run_passes(g, ProjectConfig(), DEFAULT_PASSES)
    assert g["softmax"].attrs["implementation"] == impl
    assert_same_as_numpy(g, edge_inputs(t, 6, 300, seed=4), ops)
