"""g++ C simulation of written projects: bit-exact against the emulator, caching, testbench, errors.

Compiled projects are cached by content (``$FPGA_GEN_CACHE_DIR``, default
``~/.cache/fpga-gen``): a second run of this file compiles nothing.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fpga_gen import csim
from fpga_gen.config import ProjectConfig
from fpga_gen.csim.build import _compiler
from fpga_gen.emulate import emulate
from fpga_gen.hls import write_project
from fpga_gen.ir import FixedType
from helpers_graphs import mlp_graph, random_inputs

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

N_SAMPLES = 2000


def inputs(graph, n=N_SAMPLES, seed=1):
    x = random_inputs(graph, n, seed=seed)
    x[:20] *= 12.0                         # some inputs beyond ap_fixed<16,6>: wrap-around
    x[20:30] = 0.0
    return x


def write(graph, tmp_path, name="p", **kw):
    d = tmp_path / name
    d.mkdir()
    write_project(graph, ProjectConfig(name=kw.pop("top", "myproject")), d, **kw)
    return d


# (sizes, bits, activation, softmax, strategy, reuse factors per dense layer)
CASES = {
    "w4_quant_relu_latency": ((16, 64, 32, 32, 5), 4, "quant_relu", False, "latency", 1),
    "w6_relu_resource_rf_le_nin": ((16, 64, 32, 32, 5), 6, "relu", False, "resource", [4, 8, 16, 2]),
    "w8_linear_latency_rf2": ((16, 64, 32, 32, 5), 8, "linear", False, "latency", 2),
    "w8_quant_relu_softmax_latency": ((16, 64, 32, 32, 5), 8, "quant_relu", True, "latency", 1),
    "w16_quant_relu_softmax_resource_rf_gt_nin": ((16, 32, 10), 16, "quant_relu", True, "resource", [32, 64]),
    "w16_linear_resource_rf1": ((16, 32, 10), 16, "linear", False, "resource", 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_csim_equals_emulator(case, tmp_path):
    sizes, bits, act, softmax, strategy, rf = CASES[case]
    g = mlp_graph(sizes, bits=bits, activation=act, softmax=softmax, strategy=strategy, reuse_factor=rf,
                  seed=sum(map(ord, case)))
    d = write(g, tmp_path)
    x = inputs(g)
    y = csim.predict(d, x)
    expected = emulate(g, x)
    assert y.shape == expected.shape == (N_SAMPLES, sizes[-1])
    assert y.dtype == np.float64
    assert np.array_equal(y, expected), f"{np.mean(y != expected):.2%} of the outputs differ"
    assert len(np.unique(y)) > 10                      # not a degenerate all-saturated model


@pytest.mark.parametrize("strategy,reuse_factor", [("latency", 1), ("resource", 4)])
def test_saturating_accumulator(tmp_path, strategy, reuse_factor):
    """A narrow AP_SAT accumulator: the emulator adds the products in the C++ order, saturating each sum
    (latency: i = 0..n_in-1; nnet::dense_resource_rf_leq_nin: i = ir + k*rf, where the order shows)."""
    g = mlp_graph((16, 8, 4), bits=8, activation="relu", strategy=strategy, reuse_factor=reuse_factor)
    for node in g:
        if node.op == "dense":
            node.types["accum"] = FixedType(12, 4, True, "RND", "SAT")
            node.types["result"] = FixedType(12, 4, True, "RND", "SAT")
    d = write(g, tmp_path)
    x = inputs(g)
    assert np.array_equal(csim.predict(d, x), emulate(g, x))


def test_weird_names_compile_and_match(tmp_path):
    from test_hls_writer import weird
    g = mlp_graph((4, 6, 5, 3), softmax=True, node_names=weird)
    d = write(g, tmp_path, top="class")
    x = inputs(g, 1000)
    assert np.array_equal(csim.predict(d, x), emulate(g, x))


def test_testbench(tmp_path):
    g = mlp_graph((16, 8, 4), bits=6, softmax=True)
    x = inputs(g, 200)
    y = emulate(g, x)
    d = write(g, tmp_path, tb_x=x, tb_y=y)
    r = csim.run_testbench(d)
    assert r.returncode == 0 and r.passed, r.stderr
    assert r.log == d / "tb_data" / "csim_results.log"
    assert np.array_equal(r.outputs, y)
    # a wrong expected value: exit code 1, the mismatch named
    bad = y.copy()
    bad[7, 2] += 2.0 ** -10
    np.savetxt(d / "tb_data/tb_output_predictions.dat", bad, fmt="%.17g")
    r = csim.run_testbench(d)
    assert r.returncode == 1
    assert "MISMATCH: sample 7 output 2" in r.stderr
    # no expected outputs: runs and writes the log, nothing to compare
    (d / "tb_data/tb_output_predictions.dat").unlink()
    r = csim.run_testbench(d)
    assert r.returncode == 0 and np.array_equal(r.outputs, y)


def test_cache(tmp_path, monkeypatch):
    # a fresh cache, sharing only the precompiled headers of the usual one
    shared_pch = csim.cache_dir() / "csim" / "pch"
    shared_pch.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache" / "csim").mkdir(parents=True)
    (tmp_path / "cache" / "csim" / "pch").symlink_to(shared_pch)
    monkeypatch.setenv("FPGA_GEN_CACHE_DIR", str(tmp_path / "cache"))
    g = mlp_graph((16, 8, 4), bits=4, seed=11)
    a = write(g, tmp_path, "a")
    first = csim.build(a)
    assert sorted(first.compiled) == ["design", "testbench"]
    assert first.library.is_file() and first.testbench.is_file()
    assert first.library.is_relative_to(tmp_path / "cache")
    again = csim.build(a)
    assert again.compiled == ()
    # the same project elsewhere: same content, nothing to compile
    b = write(g, tmp_path, "b")
    same = csim.build(b)
    assert same.compiled == () and same.library == again.library and same.testbench == again.testbench
    # one weight changed: the firmware compiles again
    g["dense_2"].weights["kernel"][0, 0] = -g["dense_2"].weights["kernel"][0, 0] - g["dense_2"].types["weight"].step
    c = write(g, tmp_path, "c")
    changed = csim.build(c, testbench=False)
    assert changed.compiled == ("design",)
    assert changed.library != again.library


def test_predict_threads_and_shapes(tmp_path):
    g = mlp_graph((16, 8, 4), bits=8, seed=5)
    d = write(g, tmp_path)
    x = inputs(g, 3000)
    y1 = csim.predict(d, x, threads=1)
    y2 = csim.predict(d, x, threads=2)
    assert np.array_equal(y1, y2) and np.array_equal(y1, emulate(g, x))
    assert csim.predict(d, x[0]).shape == (1, 4)
    assert csim.predict(d, x[:0]).shape == (0, 4)
    with pytest.raises(csim.CsimError, match=r"input shape must be \(batch, 16\)"):
        csim.predict(d, x[:, :3])


def test_compile_error_message(tmp_path):
    g = mlp_graph((16, 8, 4), seed=3)
    d = write(g, tmp_path)
    top = d / "firmware/myproject.cpp"
    top.write_text(top.read_text() + "\nthis is not C++;\n")
    with pytest.raises(csim.CsimCompileError) as e:
        csim.build(d)
    msg = str(e.value)
    assert "\n" not in msg and "g++ failed on design" in msg and str(e.value.log) in msg
    log = e.value.log.read_text()
    assert "this is not C++" in log and "error" in log


def test_missing_compiler(monkeypatch, tmp_path):
    d = write(mlp_graph((16, 8, 4)), tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    _compiler.cache_clear()
    try:
        with pytest.raises(csim.CsimError, match=r"g\+\+ was not found .*apt-get install g\+\+") as e:
            csim.build(d)
        assert "\n" not in str(e.value)
    finally:
        monkeypatch.undo()
        _compiler.cache_clear()


def test_not_a_project(tmp_path):
    with pytest.raises(csim.CsimError, match="not an fpga-gen HLS project"):
        csim.build(tmp_path)


@pytest.mark.parametrize("input_type", [FixedType(16, 6), FixedType(16, 6, True, "RND_CONV", "SAT"),
                                        FixedType(10, 4, False, "RND", "SAT_SYM")])
def test_extreme_inputs(input_type, tmp_path):
    """NaN, infinities and huge doubles enter ap_fixed exactly as the emulator says (wrap of 1e20 is 0)."""
    g = mlp_graph((4, 3, 2), input_type=input_type, activation="linear", seed=3)
    d = write(g, tmp_path)
    x = np.array([[np.nan, np.inf, -np.inf, 1e300], [-1e300, 5e-324, -0.0, 31.99999],
                  [1e20, -1e20, 2.0 ** 40 + 0.5, 0.09375], [2.5e5, -3e9, 67108864.5, -1e10]])
    assert np.array_equal(csim.predict(d, x), emulate(g, x))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_types_and_modes(seed, tmp_path):
    from helpers_graphs import random_mlp
    g = random_mlp(seed)
    d = write(g, tmp_path)
    x = inputs(g, 1500, seed=seed)
    y, expected = csim.predict(d, x), emulate(g, x)
    assert np.array_equal(y, expected), f"{np.mean(y != expected):.2%} of the outputs differ\n{g.summary()}"


def test_two_projects_in_one_process(tmp_path):
    """Projects with the same names and types but different softmax tables stay apart when both are loaded.

    Static locals of template functions are STB_GNU_UNIQUE symbols by default, which the
    dynamic loader merges across libraries; -fno-gnu-unique keeps each project's tables.
    """
    graphs = []
    for size in (64, 1024):
        g = mlp_graph((8, 6, 4), bits=6, softmax=True, seed=21)
        g["softmax"].attrs["exp_table_size"] = size
        g["softmax"].attrs["inv_table_size"] = size
        graphs.append(g)
    x = inputs(graphs[0], 1000)
    dirs = [write(g, tmp_path, f"p{i}") for i, g in enumerate(graphs)]
    expected = [emulate(g, x) for g in graphs]
    assert not np.array_equal(expected[0], expected[1])
    for d, e in zip(dirs, expected):
        assert np.array_equal(csim.predict(d, x), e)
    for d, e in zip(dirs, expected):
        assert np.array_equal(csim.predict(d, x), e)


def _record_compiles(monkeypatch, fail_with_pch: bool = False) -> list:
    """Wrap csim.build's compile step; the list it returns records, per call, whether the units got the
    precompiled header.  ``fail_with_pch``: such a call fails the way a GCC crash on the header does."""
    import importlib
    build_mod = importlib.import_module("fpga_gen.csim.build")
    real = build_mod._compile
    calls = []

    def spy(cxx, pch_flags, units, todo, tmp_objs, project, log, defines=()):
        calls.append(bool(pch_flags))
        if pch_flags and fail_with_pch:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("cc1plus: internal compiler error: Segmentation fault\n")
            raise csim.CsimCompileError("g++ failed", log)
        return real(cxx, pch_flags, units, todo, tmp_objs, project, log, defines)

    monkeypatch.setattr(build_mod, "_compile", spy)
    return calls


def test_retries_without_precompiled_header(tmp_path, monkeypatch):
    """If g++ trips over the cached precompiled header, the units compile again without it."""
    import importlib
    calls = _record_compiles(monkeypatch, fail_with_pch=True)
    monkeypatch.setenv("FPGA_GEN_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "csim").mkdir(parents=True)
    g = mlp_graph((16, 8, 4), seed=31)
    d = write(g, tmp_path)

    class CachedPch:                        # as if a precompiled header were cached
        path = tmp_path / "fake_pch.h"

        def __init__(self, *a):
            pass

        def start(self):
            pass

        def finish(self):
            pass

    monkeypatch.setattr(importlib.import_module("fpga_gen.csim.build"), "_PchJob", CachedPch)
    b = csim.build(d, testbench=False)
    assert calls == [True, False] and b.compiled == ("design",)
    x = inputs(g, 100)
    assert np.array_equal(csim.predict(d, x), emulate(g, x))


def test_cold_build_compiles_beside_the_precompiled_header_and_caches_it(tmp_path, monkeypatch):
    """An empty cache: the units compile without the header while it is built; the next build uses it."""
    seen = _record_compiles(monkeypatch)
    monkeypatch.setenv("FPGA_GEN_CACHE_DIR", str(tmp_path / "cache"))
    g = mlp_graph((12, 6, 3), seed=32)
    d = write(g, tmp_path)
    csim.build(d, testbench=False)
    assert len(list((tmp_path / "cache" / "csim" / "pch").glob("*/fpga_gen_pch.h.gch"))) == 1
    assert not list((tmp_path / "cache" / "csim" / "pch").glob(".*"))        # no temporary left behind
    csim.build(d, testbench=False, native=True)
    assert seen == [False, True]
    x = inputs(g, 50)
    assert np.array_equal(csim.predict(d, x, native=True), emulate(g, x))
