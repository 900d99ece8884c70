"""Distributed arithmetic (strategy distributed_arithmetic / da): da4ml's adder graph for dense layers.

Bit-exactness: the emulator (exact x @ W + b, then the cast to result) == da4ml's own interpreter of the traced
adder graph == the C simulation of the written project, np.array_equal, on random layers (signed and unsigned
inputs, 1-8-bit weights, zero rows and columns, pruned kernels) and on a converted QKeras MLP.  Config spellings,
the one-line refusals, deterministic projects, and the yosys stat parser on a real (small, seconds) synthesis.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("da4ml")

from fpga_gen import csim                                            # noqa: E402
from fpga_gen.config import ConfigError, ProjectConfig, config_from_dict   # noqa: E402
from fpga_gen.da.solve import DaError, da_predict, solve_dense, solve_node   # noqa: E402
from fpga_gen.da.synth import SynthError, parse_stat, synth_layer, yosys_family   # noqa: E402
from fpga_gen.emulate import emulate                                 # noqa: E402
from fpga_gen.ir.fixed import cast, from_float                              # noqa: E402
from fpga_gen.hls import write_project                               # noqa: E402
from fpga_gen.ir import FixedType, Graph, Node                       # noqa: E402
from fpga_gen.passes import DEFAULT_PASSES, PassError, run_passes    # noqa: E402
from helpers_graphs import quantized_weights                         # noqa: E402

HAS_GXX = shutil.which("g++") is not None


def random_da_graph(seed: int, n_layers: int = 2) -> Graph:
    """Dense layers with DA strategy, random sizes, input signedness, weight widths 1-8 bits (signed or not),
    zero rows and columns and pruned weights; relu or a requantizing linear activation between them."""
    rng = np.random.default_rng(seed)
    signed_in = bool(seed % 2)
    w_in = int(rng.integers(3, 10))
    xt = FixedType(w_in, int(rng.integers(0, 4)) + signed_in, signed_in)
    n = int(rng.integers(2, 9))
    g = Graph(f"da{seed}")
    x = g.add(Node("x", "input", [], (n,), types={"result": xt}))
    g.inputs = ["x"]
    for k in range(n_layers):
        n_out = int(rng.integers(1, 9))
        bits = int(rng.integers(1, 9))
        wt = FixedType(bits, int(rng.integers(-1, 3)), bits > 1 and bool(rng.integers(0, 4)))
        kernel = quantized_weights(rng, (n, n_out), wt)
        kernel[rng.random(kernel.shape) < 0.3] = 0.0          # pruned
        if n > 1:
            kernel[int(rng.integers(0, n))] = 0.0               # a zero row (an unused input)
        if n_out > 1:
            kernel[:, int(rng.integers(0, n_out))] = 0.0        # a zero column (a bias-only output)
        bt = FixedType(8, 2)
        bias = quantized_weights(rng, (n_out,), bt)
        d = Node(f"dense_{k}", "dense", [x.name], (n_out,),
                 attrs={"n_in": n, "n_out": n_out, "strategy": "distributed_arithmetic", "reuse_factor": 1},
                 weights={"kernel": kernel, "bias": bias}, types={"weight": wt, "bias": bt})
        x = g.add(d)
        if k < n_layers - 1:
            if rng.integers(2):
                x = g.add(Node(f"act_{k}", "activation", [x.name], (n_out,), attrs={"activation": "relu"},
                               types={"result": FixedType(int(rng.integers(4, 10)), 3, False, "RND_CONV", "SAT")}))
            else:
                x = g.add(Node(f"act_{k}", "activation", [x.name], (n_out,), attrs={"activation": "linear"},
                               types={"result": FixedType(int(rng.integers(4, 10)), 4, True, "RND", "SAT")}))
        n = n_out
    g.outputs = [x.name]
    return g


def typed(graph: Graph, **cfg) -> Graph:
    """The default passes under a config whose strategy is da unless given."""
    config = ProjectConfig(**{"strategy": "da", **cfg}).validate()
    return run_passes(graph, config, DEFAULT_PASSES)


def edge_x(graph: Graph, n: int, seed: int = 5) -> np.ndarray:
    t = graph[graph.inputs[0]].types["result"]
    rng = np.random.default_rng(seed)
    raw = rng.integers(t.raw_min, t.raw_max + 1, size=(n,) + tuple(graph[graph.inputs[0]].shape)).astype(float)
    raw[0], raw[1], raw[2] = t.raw_min, t.raw_max, 0
    return raw * t.step


def emulator_equals_da4ml(graph: Graph, x: np.ndarray) -> int:
    """Every DA layer: da4ml's interpreter of its adder graph on the layer's emulated input, cast to the result
    type, equals the emulator's output of the layer.  Returns the number of layers checked."""
    checked = 0
    for node in graph:
        if node.attrs.get("strategy") != "distributed_arithmetic":
            continue
        src = graph[node.inputs[0]]
        xin = _value(graph, src.name, x)
        comb = solve_node(node, src.types["result"])
        exact = da_predict(comb, xin)
        assert np.array_equal(exact, xin.reshape(len(xin), -1) @ node.weights["kernel"] + node.weights["bias"])
        acc, res = node.types["accum"], node.types["result"]
        raw = cast(exact * 2.0 ** acc.frac, acc, res)
        y = _value(graph, node.name, x)
        assert np.array_equal(raw * 2.0 ** -res.frac, y), node.name
        checked += 1
    return checked


def _value(graph: Graph, name: str, x: np.ndarray) -> np.ndarray:
    """The emulated output of node ``name`` (the quantized input for the input node)."""
    if name in graph.inputs:
        t = graph[name].types["result"]
        return from_float(x, t) * t.step
    return emulate(graph if name == graph.outputs[0] else graph.split(name)[0], x)


# ------------------------------------------------------------------------------------------- bit-exact

def test_random_layers_emulator_equals_da4ml():
    """30 random graphs of two DA layers each: 60 layers, emulator == da4ml predict (exact) == x @ W + b."""
    n = 0
    for seed in range(30):
        g = typed(random_da_graph(seed))
        n += emulator_equals_da4ml(g, edge_x(g, 300, seed))
    assert n == 60


@pytest.mark.skipif(not HAS_GXX, reason="g++ is not installed")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_layers_csim_equals_emulator(tmp_path, seed):
    g = typed(random_da_graph(100 + seed, n_layers=3))
    d = tmp_path / "p"
    d.mkdir()
    write_project(g, ProjectConfig(name="da_rand"), d)
    x = edge_x(g, 500, seed)
    assert np.array_equal(csim.predict(d, x), emulate(g, x))
    assert emulator_equals_da4ml(g, x) == 3


@pytest.mark.skipif(not HAS_GXX, reason="g++ is not installed")
def test_qkeras_mlp_csim_equals_emulator_and_qkeras(tmp_path):
    pytest.importorskip("qkeras")
    from qmodels import grid_inputs, qmlp

    from fpga_gen import convert
    model = qmlp([16, 24, 12, 5], bits=6, act="quantized_relu", seed=4)
    project = convert(model, strategy="da")
    assert [n.attrs.get("strategy") for n in project.graph if n.op == "dense"] == ["distributed_arithmetic"] * 3
    x = grid_inputs(400, 16)
    project.write(tmp_path / "p")
    emu = project.predict(x)
    assert np.array_equal(csim.predict(tmp_path / "p", x), emu)
    assert np.array_equal(emu, model.predict(x, verbose=0).astype(np.float64))
    assert emulator_equals_da4ml(project.graph, x) == 3
    assert csim.run_testbench(tmp_path / "p").passed


@pytest.mark.skipif(not HAS_GXX, reason="g++ is not installed")
def test_io_stream_csim_equals_emulator(tmp_path):
    """io_stream: a DA dense stage reads its input words into one array, runs the adder graph, writes one word."""
    g = typed(random_da_graph(11, n_layers=3), io_type="stream")
    d = tmp_path / "p"
    d.mkdir()
    write_project(g, ProjectConfig(name="da_stream", io_type="stream"), d)
    assert "fpga_gen_da::" in (d / "firmware/da_stream.cpp").read_text()
    x = edge_x(g, 300)
    assert np.array_equal(csim.predict(d, x), emulate(g, x))


def test_deterministic_project(tmp_path):
    g = typed(random_da_graph(7))
    for k in ("a", "b"):
        (tmp_path / k).mkdir()
        write_project(g, ProjectConfig(name="det"), tmp_path / k)
    fa = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [p for p in fa if p.parts[0] == "da"]           # the adder graphs travel with the project
    for p in fa:
        assert (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes(), p
    solve_dense.__globals__["_CACHE"].clear()             # a fresh solve gives the same operations
    (tmp_path / "c").mkdir()
    write_project(g, ProjectConfig(name="det"), tmp_path / "c")
    assert (tmp_path / "c/firmware/parameters.h").read_bytes() == (tmp_path / "a/firmware/parameters.h").read_bytes()


# ------------------------------------------------------------------------------------------- config

def test_config_spellings():
    assert config_from_dict({"strategy": "da"}).strategy == "distributed_arithmetic"
    c = config_from_dict({"layers": {"fc": {"strategy": "DA", "da": {"hard_dc": 2}}}, "da": {"method0": "mc"}})
    assert c.layer_strategy("fc") == "distributed_arithmetic"
    assert c.layer_da("fc") == {"method0": "mc", "hard_dc": 2}
    with pytest.raises(ConfigError, match=r"da\.hard_dc must be int, got 'x'"):
        config_from_dict({"da": {"hard_dc": "x"}})
    with pytest.raises(ConfigError, match=r"unknown key 'speed'"):
        config_from_dict({"layers": {"fc": {"da": {"speed": 1}}}})


def test_hls4ml_config_spelling(tmp_path):
    """hls4ml's own spelling, model-wide and per layer name."""
    from fpga_gen.hls4ml_config import config_from_hls4ml
    p = tmp_path / "hls4ml_config.yml"
    p.write_text("HLSConfig:\n  Model:\n    Precision: ap_fixed<16,6>\n    ReuseFactor: 1\n"
                 "    Strategy: distributed_arithmetic\n  LayerName:\n    fc1:\n      Strategy: Latency\n"
                 "    fc2:\n      Strategy: Distributed_Arithmetic\n")
    cfg = config_from_hls4ml(p)
    assert cfg.strategy == "distributed_arithmetic"
    assert cfg.layer_strategy("fc1") == "latency" and cfg.layer_strategy("fc2") == "distributed_arithmetic"


def small_graph() -> Graph:
    g = Graph("small")
    g.add(Node("x", "input", [], (4,), types={"result": FixedType(6, 2)}))
    g.inputs = ["x"]
    g.add(Node("fc", "dense", ["x"], (4,), attrs={"n_in": 4, "n_out": 4},
               weights={"kernel": np.eye(4) * 0.5, "bias": np.zeros(4)},
               types={"weight": FixedType(4, 1), "bias": FixedType(4, 1)}))
    g.outputs = ["fc"]
    return g


def test_refusals():
    with pytest.raises(PassError, match=r"^layer 'fc': strategy distributed_arithmetic needs reuse factor 1 "
                                        r"\(its adder graph is fully parallel\), got 2$"):
        typed(small_graph(), strategy="da", layers={"fc": {"reuse_factor": 2}})
    g = Graph("c")
    g.add(Node("x", "input", [], (4, 4, 1), types={"result": FixedType(6, 2)}))
    g.inputs = ["x"]
    g.add(Node("conv", "conv2d", ["x"], (3, 3, 2),
               attrs={"in_height": 4, "in_width": 4, "n_chan": 1, "n_filt": 2, "kernel_size": (2, 2)},
               weights={"kernel": np.full((2, 2, 1, 2), 0.5), "bias": np.zeros(2)},
               types={"weight": FixedType(4, 1), "bias": FixedType(4, 1)}))
    g.outputs = ["conv"]
    with pytest.raises(PassError, match=r"^layer 'conv': strategy distributed_arithmetic supports io_type stream "
                                        r"for dense layers only$"):
        typed(g, io_type="stream")
    with pytest.raises(PassError, match=r"sums exactly in ap_fixed<.*>; drop its precision.accum"):
        typed(random_da_graph(3), layers={"dense_0": {"precision": {"accum": FixedType(30, 20)}}})


def test_exact_accum_replaces_narrow_one():
    g = random_da_graph(4)
    t = typed(g)
    from fpga_gen.passes.infer_precision import dense_accum_type
    d = t["dense_0"]
    assert d.types["accum"] == dense_accum_type(t["x"].types["result"], d.types["weight"], d.types["bias"],
                                                d.weights["kernel"], d.weights["bias"])


# ------------------------------------------------------------------------------------------- synthesis

STAT_TEXT = """
8. Printing statistics.

=== dl ===

   Number of wires:                217
   Number of cells:                 360
     BUFG                            1
     CARRY4                         58
     DSP48E1                         2
     FDRE                          187
     INV                             3
     LUT2                          163
     LUT3                            1
     LUT6                           31
     MUXF7                           4
"""


def test_parse_stat():
    s = parse_stat(STAT_TEXT)
    assert (s["LUT"], s["FF"], s["CARRY"], s["DSP"], s["MUX"]) == (198, 187, 58, 2, 4)
    with pytest.raises(SynthError, match="yosys printed no cell statistics"):
        parse_stat("ERROR: nothing")


def test_yosys_family():
    assert yosys_family("xc7z020clg400-1") == "xc7"
    assert yosys_family("xczu3eg-sbva484-1-e") == "xcup"
    with pytest.raises(SynthError, match="has no family for it"):
        yosys_family("10M50DAF484C7G")


def test_missing_yosys_one_line(monkeypatch):
    import fpga_gen.da.synth as synth
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    comb = solve_dense(np.array([[1.0, 0.5]]), np.zeros(2), FixedType(4, 2))
    with pytest.raises(SynthError, match=r"^yosys is not installed: apt-get install yosys \(Debian/Ubuntu\)$"):
        synth_layer(comb, "dl", "xc7z020clg400-1")


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")
def test_yosys_real_small_layer():
    """A 4x3 layer of 4-bit weights: seconds of yosys; LUT and CARRY4 counts come back, no DSP."""
    rng = np.random.default_rng(1)
    w = quantized_weights(rng, (4, 3), FixedType(4, 1))
    comb = solve_dense(w, np.zeros(3), FixedType(6, 2))
    r = synth_layer(comb, "small", "xc7z020clg400-1")
    assert r["DSP"] == 0 and r["LUT"] > 0 and r["CARRY"] > 0 and r["FF"] == 0
    assert r["LUT"] == sum(v for k, v in r["cells"].items() if k.startswith("LUT") or k == "INV")


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")
def test_cli_synth_writes_reports(tmp_path, capsys):
    """fpga-gen synth PROJECT: the yosys counts land in synth.json, report.json and report.md beside the estimate;
    exit 0.  A project without DA layers: one line, exit 2."""
    from fpga_gen.api import Project
    from fpga_gen.cli import main
    g = typed(small_graph())
    Project(g, ProjectConfig(name="tiny", strategy="da").validate()).write(tmp_path / "p")
    assert main(["synth", str(tmp_path / "p")]) == 0
    import json
    out = json.loads((tmp_path / "p/synth.json").read_text())
    (row,) = out["layers"]
    assert row["name"] == "fc" and row["family"] == "xc7" and row["yosys"]["DSP"] == 0
    assert json.loads((tmp_path / "p/report.json").read_text())["synth"] == out
    md = (tmp_path / "p/report.md").read_text()
    assert md.count("## Measured by yosys") == 1 and f"| fc | {row['yosys']['LUT']} |" in md
    capsys.readouterr()
    Project(typed(small_graph(), strategy="latency"), ProjectConfig(name="lat")).write(tmp_path / "q")
    assert main(["synth", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("the project has no distributed_arithmetic layers; yosys measures only their RTL "
                        "(build with --strategy da)") and "\n" not in err


# ------------------------------------------------------------------------------------------- RTL

@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
@pytest.mark.parametrize("activation,cutoff", [("quant_relu", 3), ("linear", -1), ("relu", 2)])
def test_rtl_iverilog_equals_emulator(tmp_path, activation, cutoff):
    """The whole MLP as one adder graph (relu into RND_CONV/SAT, linear into RND/SAT, relu into TRN/WRAP),
    pipelined or combinational: da4ml's interpreter of the trace and the iverilog simulation of the written
    Verilog both equal the emulator, np.array_equal."""
    from fpga_gen.rtl import rtl_predict, trace_graph, write_rtl_project
    from helpers_graphs import mlp_graph
    g = mlp_graph((6, 5, 4, 3), bits=4, activation=activation, input_type=FixedType(8, 3), seed=cutoff + 5)
    x = edge_x(g, 400)
    emu = emulate(g, x)
    assert np.array_equal(da_predict(trace_graph(g), x), emu)
    s = write_rtl_project(g, "mlp", tmp_path / "rtl", "xc7z020clg400-1", latency_cutoff=cutoff)
    assert (s["pipeline_stages"] > 1) == (cutoff > 0)
    assert (tmp_path / "rtl/build_vivado_prj.tcl").is_file()
    assert np.array_equal(rtl_predict(tmp_path / "rtl", "mlp", x, g, latency_cutoff=cutoff), emu)


def test_rtl_refuses_first_layer_it_cannot_express():
    from fpga_gen.rtl import check_rtl
    from helpers_graphs import mlp_graph
    g = mlp_graph((6, 5, 3), bits=4, activation="relu", softmax=True)
    with pytest.raises(DaError, match=r"^layer 'softmax' \(softmax\) cannot go to RTL: no adder-graph form; RTL "
                                      r"takes input, dense, activation \(linear, relu\) with TRN/RND/RND_CONV "
                                      r"rounding and WRAP/SAT overflow$"):
        check_rtl(g)
    g = mlp_graph((6, 5, 3), bits=4, activation="relu")
    g["relu_1"].types["result"] = FixedType(8, 3, False, "RND_ZERO", "SAT")
    with pytest.raises(DaError, match=r"^layer 'relu_1' \(activation\) cannot go to RTL: its result type "
                                      r"ap_ufixed<8,3,AP_RND_ZERO,AP_SAT> rounds RND_ZERO / overflows SAT;"):
        check_rtl(g)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_cli_build_rtl(tmp_path, capsys):
    """fpga-gen build MODEL --rtl: a QKeras MLP's Verilog project, simulated bit for bit against the emulator;
    a model with a softmax is refused in one line naming it (exit 2)."""
    pytest.importorskip("qkeras")
    from qmodels import grid_inputs, qmlp

    from fpga_gen import convert
    from fpga_gen.cli import main
    from fpga_gen.rtl import rtl_predict
    model = qmlp([8, 6, 4], bits=4, act="quantized_relu", seed=2)
    path = tmp_path / "m.h5"
    model.save(path)
    out = tmp_path / "rtl"
    assert main(["build", str(path), "--rtl", "--latency-cutoff", "4", "-o", str(out),
                 "--input-precision", "ap_fixed<8,3>"]) == 0
    assert "pipeline stages" in capsys.readouterr().out
    project = convert(path, input_precision="ap_fixed<8,3>")
    x = grid_inputs(300, 8)
    assert np.array_equal(rtl_predict(out, project.name, x, project.graph, 4), project.predict(x))
    qmlp([8, 6, 4], bits=4, softmax=True, seed=2).save(tmp_path / "s.h5")
    assert main(["build", str(tmp_path / "s.h5"), "--rtl", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "layer 'softmax' (softmax) cannot go to RTL: no adder-graph form" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.skipif(not HAS_GXX, reason="g++ is not installed")
def test_fuzz_models_draw_da():
    """The QKeras fuzzer (tests/fuzz_models.py) draws DA models too: 3 of them (conv layers too), csim == native ==
    emulator == float64 reference (test_fuzz.check_model)."""
    pytest.importorskip("qkeras")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from fuzz_models import model_specs
    from test_fuzz import check_model
    seen = []

    @settings(max_examples=3, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(spec=model_specs(max_dense=2).filter(lambda s: s.strategy == "distributed_arithmetic"), k=st.just(0))
    def run(spec, k):
        check_model(spec, csim=True)
        seen.append(spec.strategy)
    run()
    assert seen and set(seen) == {"distributed_arithmetic"}


@pytest.mark.skipif(not HAS_GXX, reason="g++ is not installed")
def test_conv_layers_csim_equals_emulator_and_qkeras(tmp_path):
    """QConv2D ('same', strides 2x1, 2-channel input) -> relu -> QConv1D-like 1xk Conv2D ('valid') with the DA
    strategy: one adder graph per output pixel over its zero-padded patch; csim == emulator == QKeras."""
    pytest.importorskip("qkeras")
    from qkeras import QActivation, QConv2D, quantized_relu
    from qmodels import grid_images, qbits, uniform_init

    from fpga_gen import convert
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    tf.keras.utils.set_random_seed(3)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(5, 6, 2), name="inp"),
        QConv2D(3, (3, 2), strides=(2, 1), padding="same", kernel_quantizer=qbits(5, 0), bias_quantizer=qbits(5, 0),
                kernel_initializer=uniform_init(), bias_initializer=uniform_init(-0.5, 0.5), name="c0"),
        QActivation(quantized_relu(6, 2), name="a0"),
        QConv2D(2, (1, 3), kernel_quantizer=qbits(4, 0), bias_quantizer=qbits(4, 0),
                kernel_initializer=uniform_init(), bias_initializer=uniform_init(-0.5, 0.5), name="c1"),
    ])
    project = convert(model, strategy="da", input_precision="ap_fixed<12,4>")
    convs = [n for n in project.graph if n.op == "conv2d"]
    assert [n.attrs["strategy"] for n in convs] == ["distributed_arithmetic"] * 2
    x = grid_images(200, (5, 6, 2))
    emu = project.predict(x)
    assert np.array_equal(emu.reshape(len(x), -1),
                          model.predict(x, verbose=0).astype(np.float64).reshape(len(x), -1))
    project.write(tmp_path / "p")
    assert np.array_equal(csim.predict(tmp_path / "p", x), emu)


def test_estimate_from_adder_graph():
    """The estimator's DA entry: no DSP, LUTs = 0.93 x the adder graph's carry-chain bits + the layer overhead
    (casts into TRN/WRAP types are wires), the same under io_stream plus the stream's read cycles."""
    from fpga_gen.da.estimate import LUT_PER_DA_BIT, adder_bits
    from fpga_gen.estimate import estimate
    from fpga_gen.estimate.constants import DEFAULT
    g = typed(random_da_graph(12, n_layers=1))
    d = g["dense_0"]
    assert d.types["result"].rounding == "TRN" and d.types["result"].saturation == "WRAP"
    bits = adder_bits(solve_node(d, g["x"].types["result"]))
    for io in ("parallel", "stream"):
        row = next(r for r in estimate(g, ProjectConfig(io_type=io, strategy="da").validate(),
                                       part="xc7z020clg400-1").layers if r["name"] == "dense_0")
        assert row["DSP"] == 0
        assert row["LUT"] == int(np.ceil(bits * LUT_PER_DA_BIT)) + DEFAULT.lut_layer_overhead


def test_fit_chooses_da_when_dsps_are_scarce():
    """With almost no DSP budget the fit takes distributed arithmetic for the layers whose products would need
    DSPs (16-bit inputs); the chosen design materialises with the DA pass applied (exact accum, da options)."""
    pytest.importorskip("qkeras")
    from qmodels import qmlp

    from fpga_gen.sweep import fit, prepare
    ev, _ = prepare(qmlp([16, 24, 12, 5], bits=6, seed=4), "pynq-z2")
    res, point = fit(ev, budget="dsp=0.01,lut=0.9")
    best = res.best()
    assert best["DSP"] <= 2 and "dense_0=d1" in best["layers"]
    g, cfg = ev.materialize(point)
    assert g["dense_0"].attrs["strategy"] == "distributed_arithmetic" and "method0" in g["dense_0"].attrs["da"]
    _, lat = fit(ev, budget="dsp=0.01,lut=0.9", strategies=("latency", "resource"))
    assert lat.layers != point.layers
