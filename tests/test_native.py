"""The native back end: dense and conv2d layers as integer sums (fpga_gen_native.h), the same bits as the
HLS code (csim) and the emulator, and the nnet call kept wherever the integer kernel would not be exact."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from fpga_gen import csim
from fpga_gen.api import Project
from fpga_gen.config import ProjectConfig
from fpga_gen.ir import FixedType, Graph, Node
from fpga_gen.ir.reuse import valid_reuse_factors

from test_backends import _cpp_safe, _dense, edge_inputs

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

# (accum mode of tests/test_backends._dense, strategy, the input type of the layer or None: the previous
# layer's result) -- every path of the integer kernel: int32 sums, int64 sums that wrap, products truncated
# onto a coarse accumulator, the resource kernels' transposed weights (reuse <= n_in and > n_in), and a
# saturating accumulator that must keep the nnet call.
LAYERS = [
    ("exact", "latency", FixedType(10, 4)),
    ("wrap", "resource", None),
    ("coarse", "latency", None),
    ("exact", "resource", FixedType(30, 12)),      # 30-bit inputs: the sums need 64 bits
    ("wrap", "latency", FixedType(34, 12, False)),   # wider than 32 bits: int64 whatever the weights
    ("sat", "latency", None),
    ("exact", "resource", None),
]


def _chain(seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    x = Node("x", "input", [], (int(rng.integers(6, 14)),), types={"result": LAYERS[0][2]})
    nodes = [x]
    for k, (mode, strategy, in_t) in enumerate(LAYERS):
        src = nodes[-1]
        if in_t is not None and k:                   # a linear activation re-types the previous output
            src = Node(f"retype_{k}", "activation", [src.name], src.shape, attrs={"activation": "linear"},
                       types={"result": in_t})
            nodes.append(src)
        n_out = int(rng.integers(3, 12))
        valid = valid_reuse_factors(src.size, n_out)
        reuse = valid[-1] if k == len(LAYERS) - 1 else int(rng.choice(valid[:3]))     # the last: rf > n_in
        d = _dense(f"dense_{k}", src, n_out, rng, mode, strategy=strategy, reuse=reuse)
        if mode == "coarse":                        # only a truncating product cast is a shift
            d.types["accum"] = d.types["accum"].with_modes(rounding="TRN")
        if mode == "sat":                           # (some random result types trip ap_types' own asserts)
            d.types["result"] = FixedType(12, 4, True, "RND", "SAT")
        nodes.append(d)
    return Graph(f"native_chain_{seed}", nodes, inputs=["x"], outputs=[nodes[-1].name])


def _plans(parameters_h: str) -> dict:
    """layer stem -> (sum type, product shift, accum shift) of each Gemm in parameters.h."""
    found = re.findall(r"fpga_gen_native::Gemm<[^;]*?(int32_t|int64_t),\s*\d+, \d+, \d+, \d+, (?:true|false), "
                       r"(\d+), (\d+), (?:true|false)> native_(\w+)_t;", parameters_h)
    return {stem: (acc, int(ps), int(sh)) for acc, ps, sh, stem in found}


@needs_gxx
@pytest.mark.parametrize("seed", [1, 2])
def test_native_dense_paths_equal_csim_and_emulator(seed, tmp_path):
    g = _chain(seed)
    project = Project(g, ProjectConfig(name=f"native_{seed}"))
    project.write(tmp_path / "prj")
    plans = _plans((tmp_path / "prj" / "firmware" / "parameters.h").read_text())
    by_layer = {f"dense_{k}": plans.get(f"dense_{k}") for k in range(len(LAYERS))}
    assert by_layer["dense_0"][0] == "int32_t"
    assert by_layer["dense_2"][1] > 0                    # products truncated onto the coarse accumulator
    assert by_layer["dense_3"][0] == "int64_t" and by_layer["dense_4"][0] == "int64_t"
    assert by_layer["dense_5"] is None                   # saturating accum: the nnet call stays
    assert all(by_layer[n] is not None for n in by_layer if n != "dense_5")
    xt = g["x"].types["result"]
    x = _cpp_safe(edge_inputs(xt, g["x"].size, 400, seed=seed))
    with np.errstate(all="ignore"):
        ref = project.predict(x, backend="emu")
    nat = csim.predict(tmp_path / "prj", x, native=True)
    assert np.array_equal(csim.predict(tmp_path / "prj", x), ref)
    assert np.array_equal(nat, ref)
    # the wide layers do wrap on these inputs: the int64 path's modular sums are exercised
    trace = project.emulator().predict(x, trace=True)
    at = g["dense_4"].types["accum"]
    assert np.any(np.abs(trace["dense_4"]) > 0) and at.saturation == "WRAP"


@needs_gxx
def test_native_build_is_its_own_library_and_csim_keeps_the_hls_code(tmp_path):
    project = Project(_chain(3), ProjectConfig(name="native_lib"))
    project.write(tmp_path / "prj")
    top = (tmp_path / "prj" / "firmware" / "native_lib.cpp").read_text()
    runs = re.findall(r"    #ifdef FPGA_GEN_NATIVE\n    (native_dense_\d)\(\)\.run\(", top)
    assert runs == [f"native_dense_{k}" for k in range(len(LAYERS)) if k != 5]   # all but the saturating one
    a = csim.build(tmp_path / "prj", testbench=False)
    b = csim.build(tmp_path / "prj", testbench=False, native=True)
    assert a.library != b.library
    with pytest.raises(csim.CsimError, match=r"the native build is a library only; call build\(\.\.\., "
                                             r"testbench=False, native=True\)"):
        csim.build(tmp_path / "prj", native=True)



ROUNDINGS = ["AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV"]
OVERFLOWS = ["AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM"]


@needs_gxx
def test_integer_cast_equals_ap_fixed_on_every_code(tmp_path):
    """fpga_gen_native::cast_raw (the native relu/linear) against the ap_fixed conversion itself: every input
    code of 4 source types into 280 target types (every rounding x overflow mode, signed and unsigned, shifts
    both ways), except the casts the AMD headers abort on (passes/safe_casts.py)."""
    import itertools
    import subprocess

    from pathlib import Path

    import hls4ml
    from fpga_gen.templating import render
    ap_types = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    (tmp_path / "fpga_gen_native.h").write_text(render("hls/firmware/fpga_gen_native.h.j2"))
    srcs = [("ap_fixed", 10, 4), ("ap_ufixed", 9, 3), ("ap_fixed", 8, -2), ("ap_fixed", 7, 9)]
    dsts = [(6, 2), (5, -1), (4, 6), (12, 5), (1, 1)]     # (1, 1): a one-bit AP_SAT_SYM keeps its negative code
    calls = []
    for (sb, sw, si), (dw, di), q, o, signed in itertools.product(srcs, dsts, ROUNDINGS, OVERFLOWS, (True, False)):
        if q != "AP_TRN" and not (q == "AP_TRN_ZERO" and sb == "ap_ufixed") and (sw - si) - (dw - di) > sw:
            continue
        calls.append(f"    check<{sb}<{sw},{si}>, {'ap_fixed' if signed else 'ap_ufixed'}<{dw},{di},{q},{o}> >();")
    src = "\n".join([
        '#include "ap_fixed.h"', '#include "fpga_gen_native.h"', "#include <cstdio>",
        "namespace n = fpga_gen_native;", "static long bad = 0, total = 0;",
        "template <class S, class D> void check() {",
        "    const int w = n::fixed_traits<S>::width;",
        "    const long lo = n::fixed_traits<S>::is_signed ? -(1L << (w - 1)) : 0;",
        "    const long hi = n::fixed_traits<S>::is_signed ? (1L << (w - 1)) - 1 : (1L << w) - 1;",
        "    for (long v = lo; v <= hi; v++) {",
        "        S s; s.setBits((uint64_t)v); D d = s; total++;",
        "        if (n::raw(d) != n::cast_raw<D, n::fixed_traits<S>::frac>(n::raw(s)) && bad++ < 10)",
        '            printf("%s code %ld: ap_fixed %lld, cast_raw %lld\\n", __PRETTY_FUNCTION__, v,',
        "                   (long long)n::raw(d), (long long)n::cast_raw<D, n::fixed_traits<S>::frac>(n::raw(s)));",
        "    }", "}", "int main() {", *calls, '    printf("%ld of %ld differ\\n", bad, total);', "    return bad != 0;", "}"])
    (tmp_path / "t.cpp").write_text(src)
    subprocess.run(["g++", "-std=c++14", "-O0", "-DFPGA_GEN_NATIVE", f"-I{ap_types}", f"-I{tmp_path}",
                    str(tmp_path / "t.cpp"), "-o", str(tmp_path / "t")], check=True, capture_output=True)
    r = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True)
    assert len(calls) == 1024
    assert r.returncode == 0 and r.stdout == "0 of 513024 differ\n", r.stdout


@needs_gxx
def test_native_relu_and_linear_with_random_types(tmp_path):
    """relu and linear activations between dense layers, random result types (every mode): native == csim ==
    emulator, and the integer activation is the one the native build runs."""
    from test_backends import random_graph
    for seed in (21, 22, 23):
        g = random_graph(seed, accum_mode="exact", n_layers=3)
        project = Project(g, ProjectConfig(name=f"act_{seed}"))
        d = tmp_path / f"p{seed}"
        project.write(d)
        top = (d / "firmware" / f"act_{seed}.cpp").read_text()
        acts = [n for n in g if n.op == "activation"]
        assert top.count("fpga_gen_native::relu<") + top.count("fpga_gen_native::linear<") >= 1
        x = _cpp_safe(edge_inputs(g["x"].types["result"], g["x"].size, 300, seed=seed))
        with np.errstate(all="ignore"):
            ref = project.predict(x, backend="emu")
        assert np.array_equal(csim.predict(d, x), ref, equal_nan=True)
        assert np.array_equal(csim.predict(d, x, native=True), ref, equal_nan=True), seed
        assert acts


def _softmax_chain() -> Graph:
    """Three stable softmaxes in a row, types chosen to take every branch of fpga_gen_native::softmax_stable:
    signed and unsigned inp_norm, a saturating accumulator (the adder tree's order counts) and a wrapping
    one, rounding result types; the third's accum x inv_table product is too wide for the integer kernel."""
    f = FixedType
    x = Node("x", "input", [], (7,), types={"result": f(12, 4)})
    specs = [
        # x_max - x wraps into a signed inp_norm, exp of its negative codes wraps in the exp table: table
        # values of both signs, summed by a saturating tree, whose order then counts
        dict(inp_norm=f(8, 3, True, "TRN", "WRAP"), exp_table=f(16, 4, True, "RND", "WRAP"),
             accum=f(16, 4, True, "TRN", "SAT"), inv_inp=f(12, 4, False, "TRN", "SAT"),
             inv_table=f(18, 8, True, "RND", "SAT"), result=f(10, 2, True, "RND_CONV", "WRAP"), sizes=(256, 512)),
        dict(inp_norm=f(9, 3, False, "TRN", "SAT"), exp_table=f(18, 8, True, "RND", "SAT"),
             accum=f(13, 2, True), inv_inp=f(10, 3, False, "RND", "WRAP"),
             inv_table=f(14, 6, False, "RND_INF", "SAT_SYM"), result=f(16, 6, True, "RND", "SAT"), sizes=(256, 1024)),
        dict(inp_norm=f(12, 4, False, "TRN", "SAT"), exp_table=f(18, 8, True, "RND", "SAT"),
             accum=f(40, 20, True), inv_inp=f(18, 8, True, "RND", "SAT"),
             inv_table=f(30, 8, True, "RND", "SAT"), result=f(16, 6, True, "RND", "SAT"), sizes=(1024, 1024)),
    ]
    nodes = [x]
    for k, s in enumerate(specs):
        exp_size, inv_size = s.pop("sizes")
        nodes.append(Node(f"sm_{k}", "softmax", [nodes[-1].name], (7,), types=s,
                          attrs={"implementation": "stable", "exp_table_size": exp_size, "inv_table_size": inv_size}))
    return Graph("native_softmax", nodes, inputs=["x"], outputs=[nodes[-1].name])


@needs_gxx
def test_native_softmax_equals_csim_and_emulator(tmp_path):
    """The integer softmax_stable (nnet's steps on the raw codes, tables from the emulator) gives the HLS code's
    bits; where the 64-bit steps would not be exact the nnet call stays."""
    g = _softmax_chain()
    project = Project(g, ProjectConfig(name="native_softmax"))
    d = tmp_path / "prj"
    project.write(d)
    top = (d / "firmware" / "native_softmax.cpp").read_text()
    assert top.count("fpga_gen_native::softmax_stable<") == 2
    assert top.endswith("    nnet::softmax<sm_1_t, result_t, config_sm_2>(sm_1_out, sm_2_out);\n}\n")
    # the third softmax keeps nnet::softmax: the native build includes nnet_activation.h and its config too
    params = (d / "firmware" / "parameters.h").read_text()
    assert '\n#include "nnet_utils/nnet_activation.h"\n' in params and "#ifndef FPGA_GEN_NATIVE    //" not in params
    assert params.count("#ifndef FPGA_GEN_NATIVE\nstruct config_sm_") == 2
    x = np.concatenate([_cpp_safe(edge_inputs(g["x"].types["result"], 7, 400, seed=5)),
                        np.random.default_rng(5).uniform(-0.25, 0.25, size=(200, 7))])   # small differences
    ref = project.predict(x, backend="emu")
    trace = project.emulator().predict(x, trace=True)
    assert len(np.unique(trace["sm_0"])) > 20 and len(np.unique(trace["sm_1"])) > 20
    assert np.array_equal(csim.predict(d, x), ref)
    assert np.array_equal(csim.predict(d, x, native=True), ref)


def _pooling_chain() -> Graph:
    """Poolings through every branch of fpga_gen_native::pool: an average over padded windows into a saturating
    accumulator (the order of the sums counts, the divisor is the real cells), a max over padded windows, a
    max over an unsigned type and a global average with a wrapping accumulator."""
    f = FixedType

    def pool(name, src, shape, mode, size, strides, pads, accum, result):
        h, w, c = src.shape
        return Node(name, "pooling", [src.name], shape, types={"result": result, "accum": accum},
                    attrs={"in_height": h, "in_width": w, "n_chan": c, "mode": mode, "pool_size": size,
                           "strides": strides, "padding": "same" if any(pads) else "valid", "pads": pads})

    x = Node("x", "input", [], (7, 7, 3), types={"result": f(10, 3)})
    p0 = pool("p0", x, (4, 4, 3), "average", (2, 2), (2, 2), (0, 1, 0, 1), f(8, 3, True, "TRN", "SAT"),
              f(8, 2, True, "RND", "SAT"))
    p1 = pool("p1", p0, (4, 4, 3), "max", (3, 3), (1, 1), (1, 1, 1, 1), f(7, 1, True, "RND_CONV", "SAT"),
              f(6, 1, True, "TRN", "WRAP"))
    u = Node("u", "activation", ["p1"], (4, 4, 3), attrs={"activation": "linear"},
             types={"result": f(8, 2, False, "TRN", "SAT")})
    p2 = pool("p2", u, (2, 2, 3), "max", (2, 2), (2, 2), (0, 0, 0, 0), f(8, 2, False), f(7, 2, False, "RND", "SAT"))
    p3 = pool("p3", p2, (3,), "average", (2, 2), (2, 2), (0, 0, 0, 0), f(6, 1, False), f(12, 4, True, "RND_ZERO", "SAT"))
    return Graph("native_pool", [x, p0, p1, u, p2, p3], inputs=["x"], outputs=["p3"])


@needs_gxx
def test_native_pooling_equals_csim_and_emulator(tmp_path):
    """The integer pool (nnet::pooling2d_cl's and global_pooling2d_cl's steps on the raw codes) gives the HLS
    code's bits, on edge inputs that saturate the narrow accumulators."""
    g = _pooling_chain()
    project = Project(g, ProjectConfig(name="native_pool"))
    d = tmp_path / "prj"
    project.write(d)
    top = (d / "firmware" / "native_pool.cpp").read_text()
    assert top.count("fpga_gen_native::pool<") == 4 and "global_pooling2d_cl" in top
    # every layer has an integer form: the native build skips the nnet headers and config structs
    params = (d / "firmware" / "parameters.h").read_text()
    assert re.search(r'#ifndef FPGA_GEN_NATIVE[^\n]*\n#include "nnet_utils/nnet_activation.h"\n'
                     r'#include "nnet_utils/nnet_pooling.h"\n#include "nnet_utils/nnet_pooling_stream.h"\n#endif\n', params)
    assert params.count("#ifndef FPGA_GEN_NATIVE\nstruct config_p") == 4
    x = _cpp_safe(edge_inputs(g["x"].types["result"], g["x"].size, 400, seed=7)).reshape(-1, 7, 7, 3)
    ref = project.predict(x, backend="emu")
    trace = project.emulator().predict(x, trace=True)
    assert len(np.unique(trace["p1"])) > 20 and len(np.unique(trace["p3"])) > 10
    assert np.array_equal(csim.predict(d, x), ref)
    assert np.array_equal(csim.predict(d, x, native=True), ref)



@needs_gxx
def test_gemm_raw_casts_equal_the_ap_fixed_casts(tmp_path):
    """Gemm's RAW_CASTS path (cast_raw for accum_t(bias) and the final cast) against its ap_fixed path, and the
    ap_fixed path with a 63-bit accumulator (past cast_raw's 62 bits; no written project has one, the emulator
    stops at 53) against the sums done in ap_fixed itself, on random codes of every width."""
    import subprocess
    from pathlib import Path

    import hls4ml
    from fpga_gen.templating import render
    ap_types = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    (tmp_path / "fpga_gen_native.h").write_text(render("hls/firmware/fpga_gen_native.h.j2"))
    f = FixedType
    # (data, result, accum, weight, bias): products truncated onto a coarse accumulator, or shifted onto a fine one
    configs = [
        (f(10, 4), f(8, 3, True, "RND_CONV", "SAT"), f(12, 5), f(6, 1), f(9, 2, True, "RND", "SAT")),
        (f(7, 2, False), f(6, 1, False, "RND_ZERO", "SAT_ZERO"), f(9, 4), f(5, 0), f(4, 2, False)),
        (f(12, 6), f(16, 4, True, "RND_INF", "WRAP"), f(30, 12), f(6, 2), f(8, 8)),
        (f(20, 8), f(10, 6, True, "TRN_ZERO", "SAT_SYM"), f(63, 25), f(8, 1), f(8, 3)),
    ]
    body = []
    for k, (d, r, a, w, b) in enumerate(configs):
        ps = d.frac + w.frac - a.frac
        body.append(f"    bad += run<{d.cpp()}, {r.cpp()}, {a.cpp()}, {w.cpp()}, {b.cpp()}, int64_t, {max(ps, 0)}, "
                    f"{max(-ps, 0)}>({k});")
    src = "\n".join([
        '#include "ap_fixed.h"', '#include "fpga_gen_native.h"', "#include <cstdio>", "#include <cstdlib>",
        "namespace n = fpga_gen_native;",
        "template <class T> T rnd() { T x; x.setBits(((uint64_t)rand() << 31) ^ (uint64_t)rand() ^ ((uint64_t)rand() << 50)); return x; }",
        "template <class D, class R, class A, class W, class B, class ACC, int PS, int SH> int run(int k) {",
        "    const unsigned NI = 6, NO = 4; W w[NI * NO]; B b[NO]; int bad = 0;",
        "    for (unsigned i = 0; i < NI * NO; i++) w[i] = rnd<W>();",
        "    for (unsigned o = 0; o < NO; o++) b[o] = rnd<B>();",
        "    const bool raw_ok = n::fixed_traits<A>::width <= 62;",
        "    for (int s = 0; s < 3000; s++) {",
        "        D x[NI]; R y0[NO], y1[NO], y2[NO];",
        "        for (unsigned i = 0; i < NI; i++) x[i] = rnd<D>();",
        "        n::Gemm<D, R, A, W, B, ACC, NI, 1, NI, NO, false, PS, SH, false>(w, b).run(x, y0, nullptr);",
        "        if (raw_ok) n::Gemm<D, R, A, W, B, ACC, NI, 1, NI, NO, false, PS, SH, raw_ok>(w, b).run(x, y1, nullptr);",
        "        for (unsigned o = 0; o < NO; o++) {",
        "            A s = b[o];",
        "            for (unsigned i = 0; i < NI; i++) s += (A)(x[i] * w[i * NO + o]);",
        "            y2[o] = (R)s;",
        "            if (n::raw(y0[o]) != n::raw(y2[o]) || (raw_ok && n::raw(y1[o]) != n::raw(y0[o]))) {",
        '                if (bad++ < 5) printf("config %d: %lld %lld %lld\\n", k, (long long)n::raw(y0[o]),',
        "                                      (long long)n::raw(y1[o]), (long long)n::raw(y2[o]));",
        "            }", "        }", "    }", "    return bad;", "}",
        "int main() {", "    int bad = 0;", *body, '    printf("%d differ\\n", bad);', "    return bad != 0;", "}"])
    (tmp_path / "t.cpp").write_text(src)
    subprocess.run(["g++", "-std=c++14", "-O1", "-DFPGA_GEN_NATIVE", f"-I{ap_types}", f"-I{tmp_path}",
                    str(tmp_path / "t.cpp"), "-o", str(tmp_path / "t")], check=True, capture_output=True)
    r = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "0 differ\n", r.stdout
