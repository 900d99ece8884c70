"""The HLS project writer: files, names, weights, determinism, errors, the Tcl script (no compiler needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpga_gen.config import ProjectConfig
from fpga_gen.emulate import emulate
from fpga_gen.hls import HlsWriteError, write_project
from fpga_gen.ir.reuse import valid_reuse_factors
from fpga_gen.ir import FixedType, Node
from fpga_gen.data_paths import hls4ml_vivado_dir
from helpers_graphs import mlp_graph, random_inputs

WEIRD_NAMES = ["in put/1", "dense-1", "dense_1", "Dense_1", "int", "3rd layer", 'q"uote*/\\', "relu\n2", "ap_x",
               "__init", "ü", "class", "softmax?"]


def weird(i, name):
    return WEIRD_NAMES[i % len(WEIRD_NAMES)]


def write(graph, tmp_path, name="p", config=None, **kw) -> Path:
    d = tmp_path / name
    d.mkdir()
    write_project(graph, config or ProjectConfig(), d, **kw)
    return d


def tree(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def weight_literals(project: Path, name: str) -> np.ndarray:
    """The values of the FPGA_GEN_VALUES_<name> macro of a weights header."""
    text = (project / "firmware/weights" / f"{name}.h").read_text()
    body = text[text.index(f"#define FPGA_GEN_VALUES_{name} \\\n"):].split("\n\n")[0]
    body = body.split("\n", 1)[1].replace("\\", " ")
    return np.array([float(v) for v in body.replace("\n", " ").split(",")])


def test_project_files(tmp_path):
    g = mlp_graph(softmax=True)
    x = random_inputs(g, 5)
    d = tmp_path / "p"
    d.mkdir()
    files = write_project(g, ProjectConfig(name="my_net"), d, tb_x=x, tb_y=emulate(g, x))
    rel = {p.relative_to(d).as_posix() for p in files}
    for f in ("firmware/my_net.cpp", "firmware/my_net.h", "firmware/defines.h", "firmware/parameters.h",
              "firmware/weights/w_dense_1.h", "firmware/weights/b_dense_4.h", "my_net_test.cpp",
              "my_net_bridge.cpp", "build_prj.tcl", "README.md", "tb_data/tb_input_features.dat",
              "tb_data/tb_output_predictions.dat", "firmware/ap_types/ap_fixed.h", "firmware/nnet_utils/nnet_dense.h"):
        assert f in rel, f
    assert rel == {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
    top = (d / "firmware/my_net.cpp").read_text()
    assert "void my_net(input_t input_1_in[N_IN], result_t softmax_out[N_OUT])" in top
    assert "#pragma HLS INTERFACE ap_vld port=input_1_in,softmax_out" in top
    assert "#pragma HLS PIPELINE" in top
    assert "#pragma HLS ARRAY_PARTITION variable=input_1_in complete dim=0" in top
    assert "nnet::softmax<dense_4_t, result_t, config_softmax>(dense_4_out, softmax_out);" in top
    defines = (d / "firmware/defines.h").read_text()
    assert "typedef ap_fixed<16,6> input_t;" in defines
    assert "typedef ap_fixed<16,6,AP_RND,AP_SAT> result_t;" in defines
    assert "static const unsigned N_IN = 16;" in defines and "static const unsigned N_OUT = 5;" in defines
    params = (d / "firmware/parameters.h").read_text()
    assert "using kernel = nnet::DenseLatency<data_T, res_T, CONFIG_T>;" in params
    assert "implementation = nnet::softmax_implementation::stable" in params
    assert "multiplier_limit = DIV_ROUNDUP(n_in * n_out, reuse_factor)" in params
    # copied hls4ml files are byte-identical to the installed ones
    src = hls4ml_vivado_dir()
    assert (d / "firmware/nnet_utils/nnet_activation.h").read_bytes() == (src / "nnet_utils/nnet_activation.h").read_bytes()


def test_weights_are_exact_literals(tmp_path):
    g = mlp_graph((16, 8, 4), bits=6, strategy="resource", reuse_factor=[4, 32])
    d = write(g, tmp_path)

    def literals(name, project=d):
        return weight_literals(project, name)

    k1 = g["dense_1"].weights["kernel"]
    # resource strategy: hls4ml's kernels read the transposed (n_out, n_in) kernel
    assert np.array_equal(literals("w_dense_1"), k1.T.ravel())
    assert np.array_equal(literals("b_dense_1"), g["dense_1"].weights["bias"])
    params = (d / "firmware/parameters.h").read_text()
    assert "using kernel = nnet::DenseResource_rf_leq_nin<data_T, res_T, CONFIG_T>;" in params
    assert "using kernel = nnet::DenseResource_rf_gt_nin_rem0<data_T, res_T, CONFIG_T>;" in params
    g2 = mlp_graph((16, 8, 4), bits=6)
    d2 = write(g2, tmp_path, "latency")
    assert np.array_equal(weight_literals(d2, "w_dense_1"), g2["dense_1"].weights["kernel"].ravel())
    text = (d2 / "firmware/weights/w_dense_1.h").read_text()
    # synthesis sees one ap_fixed array initialised with the literals
    assert "#ifdef __SYNTHESIS__\ndense_1_weight_t w_dense_1[128] = {FPGA_GEN_VALUES_w_dense_1};" in text


def test_testbench_vectors_round_trip(tmp_path):
    g = mlp_graph((16, 8, 4))
    x = random_inputs(g, 7) / 3.0          # values with long decimal expansions
    y = emulate(g, x)
    d = write(g, tmp_path, tb_x=x, tb_y=y)
    back = np.loadtxt(d / "tb_data/tb_input_features.dat")
    assert np.array_equal(back, x)
    assert np.array_equal(np.loadtxt(d / "tb_data/tb_output_predictions.dat"), y)


def test_deterministic(tmp_path):
    g = mlp_graph(softmax=True, strategy="resource", reuse_factor=[2, 4, 8, 160])
    x = random_inputs(g, 10)
    a = write(g, tmp_path, "a", tb_x=x, tb_y=emulate(g, x))
    b = write(mlp_graph(softmax=True, strategy="resource", reuse_factor=[2, 4, 8, 160]), tmp_path, "b",
              tb_x=x, tb_y=emulate(g, x))
    ta, tb = tree(a), tree(b)
    assert ta == tb
    for rel, data in ta.items():
        if rel.startswith(("firmware/ap_types/", "firmware/nnet_utils/")):
            continue
        text = data.decode()
        assert str(tmp_path) not in text and str(Path.home()) not in text, rel
        assert not re.search(r"20\d\d-\d\d-\d\d", text), rel


def test_deterministic_across_hash_seeds(tmp_path):
    script = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from pathlib import Path; from helpers_graphs import mlp_graph;"
        "from fpga_gen.hls import write_project; from fpga_gen.config import ProjectConfig;"
        "d = Path(sys.argv[1]); d.mkdir();"
        "write_project(mlp_graph(softmax=True, node_names=lambda i, n: ['x', 'a b', 'a-b', 'a_b', 'A_B'][i % 5] + str(i // 5)),"
        " ProjectConfig(), d)"
    )
    tests_dir = str(Path(__file__).parent)
    for seed, name in (("1", "s1"), ("2", "s2")):
        env = {**__import__("os").environ, "PYTHONHASHSEED": seed}
        subprocess.run([__import__("sys").executable, "-c", script, str(tmp_path / name), tests_dir],
                       check=True, env=env)
    assert tree(tmp_path / "s1") == tree(tmp_path / "s2")


def test_weird_names_give_unique_identifiers(tmp_path):
    g = mlp_graph((4, 6, 5, 3), softmax=True, node_names=weird)
    d = write(g, tmp_path, config=ProjectConfig(name="int"))
    assert (d / "firmware/l_int.cpp").is_file()
    top = (d / "firmware/l_int.cpp").read_text()
    defines = (d / "firmware/defines.h").read_text()
    typedefs = re.findall(r"typedef .* (\w+);", defines)
    assert len(typedefs) == len(set(typedefs))
    arrays = re.findall(r"^    \w+ (\w+)\[\d+\];", top, re.M)
    assert len(arrays) == len(set(arrays)) == len(g) - 2      # no array for the input and the output
    weights = sorted(p.name.lower() for p in (d / "firmware/weights").iterdir())
    assert len(weights) == len(set(weights)) == 6              # unique even ignoring case
    for ident in typedefs + arrays:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", ident) and "__" not in ident
    # raw names only appear inside C++ string literals in comments
    assert '"relu\\0122"' not in top and "// layer \"relu\\n" not in top
    assert all("\n" not in line for line in top.splitlines())


def test_reuse_factor_rules():
    assert valid_reuse_factors(16, 64) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert 10 not in valid_reuse_factors(16, 5)       # hls4ml: multiplier_limit % n_out must be 0 below n_in


def test_invalid_reuse_factor(tmp_path):
    g = mlp_graph((16, 8, 4), reuse_factor=[3, 1])
    with pytest.raises(HlsWriteError, match=r"layer 'dense_1' \(dense\): reuse factor 3 .*valid: 1, 2, 4"):
        write(g, tmp_path)


def test_weights_must_be_representable(tmp_path):
    g = mlp_graph((16, 8, 4))
    g["dense_2"].weights["kernel"][0, 0] = 0.3
    with pytest.raises(HlsWriteError, match=r"layer 'dense_2' \(dense\): kernel values are not exactly representable"):
        write(g, tmp_path)


def test_unsupported_graphs(tmp_path):
    g = mlp_graph((16, 8, 4))
    with pytest.raises(ValueError, match=r"node 't': unknown op 'tanh'; known ops: "):     # ir/ops.py declares them
        g.add(Node("t", "tanh", [g.outputs[0]], (4,), types={"result": FixedType(8, 2)}))
    g.add(Node("t", "activation", [g.outputs[0]], (4,), attrs={"activation": "tanh"},
               types={"result": FixedType(8, 2)}))
    g["t"].op = "tanh"                                  # an op changed after the fact: the writer names it
    g.outputs = ["t"]
    with pytest.raises(HlsWriteError, match="op 'tanh' has no HLS template"):
        write(g, tmp_path, "a")
    with pytest.raises(HlsWriteError, match="io_type 'serial' is not supported by the HLS writer; use 'parallel' "
                                            "or 'stream'"):
        write(mlp_graph((16, 8, 4)), tmp_path, "b", config=ProjectConfig(io_type="serial"))
    g = mlp_graph((16, 8, 4), softmax=True)
    g["softmax"].attrs["exp_table_size"] = 1000
    with pytest.raises(HlsWriteError, match="exp_table_size must be a power of two"):
        write(g, tmp_path, "c")
    g = mlp_graph((16, 8, 4))
    del g["dense_1"].types["accum"]
    with pytest.raises(HlsWriteError, match="has no 'accum' type"):
        write(g, tmp_path, "d")


# ---------------------------------------------------------------------------- build_prj.tcl under tclsh
TCL_STUBS = r"""
set ::calls {}
foreach cmd {open_project set_top add_files open_solution set_part create_clock config_export
             csim_design csynth_design cosim_design export_design} {
    proc $cmd {args} [string map [list CMD $cmd] {lappend ::calls [concat CMD $args]}]
}
rename exit ::real_exit
proc exit {{code 0}} {
    set f [open calls.txt w]
    foreach c $::calls { puts $f $c }
    close $f
    ::real_exit $code
}
set script [lindex $argv 0]
set argv [lrange $argv 1 end]
source $script
"""


def run_tcl(project: Path, *args) -> list[str]:
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        pytest.skip("tclsh is not installed")
    stub = project / "stub.tcl"
    stub.write_text(TCL_STUBS)
    (project / "calls.txt").unlink(missing_ok=True)
    subprocess.run([tclsh, str(stub), str(project / "build_prj.tcl"), *args], cwd="/", check=True,
                   capture_output=True, text=True)
    return (project / "calls.txt").read_text().splitlines()


def test_build_script(tmp_path):
    g = mlp_graph((16, 8, 4))
    x = random_inputs(g, 3)
    d = write(g, tmp_path, config=ProjectConfig(name="net", part="xczu3eg-sbva484-1-e", clock_period=5),
              tb_x=x, tb_y=emulate(g, x))
    calls = run_tcl(d)
    assert calls[:3] == ["open_project -reset net_prj", "set_top net", "add_files firmware/net.cpp -cflags -std=c++14"]
    assert "add_files -tb tb_data" in calls
    assert "open_solution -reset solution1 -flow_target vivado" in calls
    assert "set_part xczu3eg-sbva484-1-e" in calls and "create_clock -period 5 -name default" in calls
    assert "config_export -format ip_catalog -version 1.0" in calls
    steps = [c for c in calls if c.endswith("_design")]
    assert steps == ["csim_design", "csynth_design"]
    steps = [c.split()[0] for c in run_tcl(d, "synth=0", "cosim=1", "export=1") if "_design" in c]
    assert steps == ["csim_design", "cosim_design", "export_design"]
    (d / "build_opt.tcl").write_text("array set opt {csim 0 synth 1}\n")       # the vitis-run way
    steps = [c.split()[0] for c in run_tcl(d) if "_design" in c]
    assert steps == ["csynth_design"]


def test_synthesis_weights_path(tmp_path):
    """Under __SYNTHESIS__ each weights header is one ap_fixed array initialised with the literals."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    g = mlp_graph((16, 8, 4), bits=6, strategy="resource", reuse_factor=[4, 32])
    d = write(g, tmp_path)
    decls = []
    for name, node, key in (("w_dense_1", "dense_1", "kernel"), ("b_dense_2", "dense_2", "bias")):
        out = subprocess.run(["g++", "-E", "-P", "-D__SYNTHESIS__", "-x", "c++", f"firmware/weights/{name}.h"],
                             cwd=d, check=True, capture_output=True, text=True).stdout.strip()
        m = re.fullmatch(rf"(\w+) {name}\[(\d+)\] = \{{(.*)\}};", out, re.S)
        assert m, out
        values = np.array([float(v) for v in m.group(3).split(",")])
        expected = g[node].weights[key].T.ravel() if key == "kernel" else g[node].weights[key]
        assert np.array_equal(values, expected)
        decls.append(out.replace(f" {name}[", f" synth_{name}["))
    # and it is valid C++ for those types
    (d / "check.cpp").write_text('#include "defines.h"\n' + "\n".join(decls) + "\n")
    subprocess.run(["g++", "-std=c++14", "-fsyntax-only", "-Ifirmware/ap_types", "-Ifirmware", "check.cpp"], cwd=d,
                   check=True, capture_output=True)
