"""Hostile and broken input, limits users hit, and nothing half-written.

Every user-facing error is checked as the exact one line the CLI prints (``fpga-gen: error: ...`` on
stderr, exit code 2).  Complements test_frontend.py, test_cli.py, test_passes.py and test_boards.py,
which already cover missing/empty/corrupt model files, Lambda and custom classes, config keys and the
reuse factor message.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fpga_gen import convert
from fpga_gen.cli import main
from fpga_gen.passes import PassError
from qmodels import grid_inputs, qmlp

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed")
needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is needed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def cli_error(capsys, *argv) -> str:
    """Run the CLI expecting an error: exit code 2 and exactly one line on stderr; return its text."""
    rc, out, err = run(capsys, *argv)
    assert rc == 2, (rc, out, err)
    assert err.startswith("fpga-gen: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err[len("fpga-gen: error: "):-1]


def tree(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "small.h5"
    qmlp([8, 6, 4], bits=6, softmax=True, seed=4).save(p)
    return p


# ============================================================================ limits (fpga_gen/passes/limits.py)
def _dense_model(n_in, n_out, name="big"):
    tf = _tf()
    from qkeras import QDense, quantized_bits
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(n_in,), name="x"),
                                QDense(n_out, kernel_quantizer=quantized_bits(4, 0, alpha=1),
                                       bias_quantizer=quantized_bits(4, 0, alpha=1), name=name)])


def test_latency_layer_over_the_unroll_limit_is_refused_before_writing(tmp_path, capsys):
    path = tmp_path / "wide.h5"
    _dense_model(128, 64).save(path)
    msg = cli_error(capsys, "build", path, "-o", tmp_path / "out")
    assert msg == ("layer 'big': a 128x64 dense layer is too large for io_parallel: the Latency strategy unrolls all "
                   "its 8192 multiplications, and Vitis HLS stops unrolling and partitioning past 4096; use strategy "
                   "resource with reuse factor 2 or a larger valid one (config: layers: big: {strategy: resource, "
                   "reuse_factor: 2}), or io_type stream")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.h5"]
    # the proposed fix works; emulating and estimating never needed it
    assert run(capsys, "build", path, "-o", tmp_path / "out", "--strategy", "resource", "--reuse", "2")[0] == 0
    assert run(capsys, "estimate", path)[0] == 0
    x = grid_inputs(5, 128)
    assert convert(str(path)).predict(x).shape == (5, 64)


def test_resource_layer_with_too_small_a_reuse_factor(tmp_path):
    project = convert(_dense_model(256, 64), strategy="resource", reuse=2)
    with pytest.raises(PassError) as e:
        project.write(tmp_path / "p")
    assert str(e.value) == (
        "layer 'big': a 256x64 dense layer is too large for io_parallel: the Resource strategy with reuse factor 2 "
        "unrolls 8192 multiplications, and Vitis HLS stops unrolling and partitioning past 4096; use strategy "
        "resource with reuse factor 4 or a larger valid one (config: layers: big: {strategy: resource, "
        "reuse_factor: 4}), or io_type stream")
    assert list(tmp_path.iterdir()) == []
    convert(_dense_model(256, 64), strategy="resource", reuse=4).write(tmp_path / "ok")


def test_array_over_the_partition_limit(tmp_path):
    project = convert(_dense_model(4, 4100, name="huge_out"), strategy="resource", reuse=8)
    with pytest.raises(PassError) as e:
        project.write(tmp_path / "p")
    assert str(e.value) == (
        "layer 'huge_out': its dense output of 4100 values (4100) is too large for io_parallel, which holds it in "
        "one completely partitioned array; Vitis HLS partitions at most 4096 elements: use io_type stream or a "
        "smaller layer")


def test_limit_boundary_fits():
    """4096 multiplications and 4096-element arrays are still accepted."""
    from fpga_gen.passes.limits import check_hls_limits
    check_hls_limits(convert(_dense_model(64, 64)).graph)
    check_hls_limits(convert(_dense_model(1, 4096)).graph)


# ============================================================================ hostile model files
def test_text_file_renamed_h5(tmp_path, capsys):
    p = tmp_path / "model.h5"
    p.write_text("#!/bin/sh\nrm -rf /\n")
    assert cli_error(capsys, "build", p, "-o", tmp_path / "out") == (
        f"{p}: not an HDF5 file (wrong signature): the file is corrupt or not a Keras .h5 model; re-save it with "
        f"model.save('model.h5')")
    assert not (tmp_path / "out").exists()


def test_truncated_and_corrupt_h5(tmp_path, capsys, model_file):
    data = model_file.read_bytes()
    for name, blob in (("trunc.h5", data[:len(data) // 2]), ("magic_only.h5", data[:8]),
                       ("garbage.h5", data[:8] + os.urandom(4096))):
        p = tmp_path / name
        p.write_bytes(blob)
        msg = cli_error(capsys, "build", p, "-o", tmp_path / "out")
        assert msg.startswith(f"{p}: cannot read the HDF5 file (")
        assert msg.endswith("the file is truncated or corrupt; re-save the model")
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    assert cli_error(capsys, "inspect", empty) == (
        f"{empty}: the file is empty; pass a Keras model saved with model.save()")
    notzip = tmp_path / "m.keras"
    notzip.write_bytes(b"PK\x03\x04 not really a zip")
    assert cli_error(capsys, "inspect", notzip) == (
        f"{notzip}: not a .keras archive (not a zip file): the file is corrupt; re-save the model")
    assert not (tmp_path / "out").exists()


def test_corrupt_weights_inside_a_valid_h5(tmp_path, capsys, model_file):
    """Bytes of a weight dataset flipped to NaN: refused, never written."""
    import h5py
    p = tmp_path / "nan_weights.h5"
    shutil.copy(model_file, p)
    with h5py.File(p, "r+") as f:
        def first_kernel(name, obj):
            if isinstance(obj, h5py.Dataset) and "kernel" in name:
                return name
        name = f["model_weights"].visititems(first_kernel)
        ds = f["model_weights"][name]
        arr = ds[...]
        arr.flat[0] = np.nan
        ds[...] = arr
    assert cli_error(capsys, "build", p, "-o", tmp_path / "out") == (
        "layer 'dense_0': weights contain NaN or Inf; retrain or clean the model")
    assert not (tmp_path / "out").exists()


def test_lambda_in_a_file_is_refused_by_the_cli_without_running(tmp_path, capsys):
    tf = _tf()
    marker = tmp_path / "executed"
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="inp"),
                             tf.keras.layers.Lambda(lambda t: t * 2, name="double")])
    p = tmp_path / "lambda.h5"
    m.save(p)
    # a Lambda whose saved code would write the marker if it were ever deserialised and run
    import h5py
    with h5py.File(p, "r+") as f:
        cfg = f.attrs["model_config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        f.attrs["model_config"] = cfg.replace('"function_type": "lambda"', '"function_type": "lambda"')
    assert cli_error(capsys, "build", p, "-o", tmp_path / "out") == (
        f"{p}: layer 'double' (Lambda): Lambda layers hold Python code, which fpga-gen never executes; rewrite the "
        f"layer with supported layers")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_layer_name_keras_itself_refuses(tmp_path, capsys, model_file):
    """A file edited to carry a layer name with spaces/quotes: Keras refuses to build it; one line, nothing written."""
    import h5py
    p = tmp_path / "hacked.h5"
    shutil.copy(model_file, p)
    with h5py.File(p, "r+") as f:
        cfg = f.attrs["model_config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        f.attrs["model_config"] = cfg.replace('"dense_0"', '"dense 0; $(rm -rf ~)"')
    msg = cli_error(capsys, "build", p, "-o", tmp_path / "out")
    assert msg.startswith(f"{p}: Keras could not load the model (ValueError: ")
    assert not (tmp_path / "out").exists()


# ============================================================================ shapes and bit widths
def _save(model, path) -> Path:
    model.save(path)
    return path


def test_zero_sized_shapes(tmp_path, capsys):
    tf = _tf()
    from qkeras import QDense
    p = _save(tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(0,), name="x"), QDense(3, name="d")]),
              tmp_path / "zero_in.h5")
    assert cli_error(capsys, "inspect", p) == "layer 'x': input shape (0,) must have positive dimensions"
    p = _save(tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="x"), QDense(0, name="d")]),
              tmp_path / "zero_units.h5")
    assert cli_error(capsys, "inspect", p) == (
        "layer 'd' (QDense): output shape (0,) has a zero dimension; every layer needs at least one output value")


def test_huge_input_is_refused_before_writing(tmp_path, capsys):
    tf = _tf()
    from qkeras import QDense, quantized_bits
    p = _save(tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(5000,), name="x"),
                                   QDense(1, kernel_quantizer=quantized_bits(4, 0, alpha=1), name="d")]),
              tmp_path / "huge.h5")
    assert cli_error(capsys, "build", p, "-o", tmp_path / "out", "--strategy", "resource", "--reuse", "5000") == (
        "layer 'x': its input output of 5000 values (5000) is too large for io_parallel, which holds it in one "
        "completely partitioned array; Vitis HLS partitions at most 4096 elements: use io_type stream or a smaller "
        "layer")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bits", [0, -3, 33, 65])
def test_quantizer_bit_widths_out_of_range(tmp_path, capsys, bits):
    tf = _tf()
    from qkeras import QDense, quantized_bits
    p = _save(tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="x"),
                                   QDense(3, kernel_quantizer=quantized_bits(bits, 0, alpha=1), name="d")]),
              tmp_path / f"b{bits}.h5")
    assert cli_error(capsys, "inspect", p) == (
        f"layer 'd': kernel quantizer quantized_bits({bits},0,0,alpha=1): bits must be between 1 and 32")


@pytest.mark.parametrize("flag,value,message", [
    ("--precision", "ap_fixed<0,0>", "fixed-point width must be between 1 and 64, got 0"),
    ("--precision", "ap_fixed<65,3>", "fixed-point width must be between 1 and 64, got 65"),
    ("--input-precision", "ap_fixed<-3,1>",
     "<defaults>: input_precision: fixed-point width must be between 1 and 64, got -3"),
])
def test_type_widths_out_of_range(capsys, model_file, flag, value, message):
    assert cli_error(capsys, "inspect", model_file, flag, value) == message


def test_quantizer_with_more_integer_than_total_bits_is_exact():
    """quantized_bits(4, 6) / quantized_relu(3, 5): odd but consistent (LSB 8 and 4): ap_fixed<4,7> and
    ap_ufixed<3,5>, equal to QKeras on inputs inside the input type."""
    tf = _tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="x"),
                             QDense(3, kernel_quantizer=quantized_bits(4, 6, alpha=1),
                                    bias_quantizer=quantized_bits(4, 6, alpha=1), name="d"),
                             QActivation(quantized_relu(3, 5), name="a")])
    project = convert(m, input_precision="ap_fixed<8,4>")
    assert project.graph["d"].types["weight"].cpp() == "ap_fixed<4,7>"
    assert project.graph["a"].types["result"].cpp() == "ap_ufixed<3,5,AP_RND_CONV,AP_SAT>"
    x = grid_inputs(2000, 4, frac_bits=4, lo=-8, hi=8 - 2 ** -4)
    assert np.array_equal(project.predict(x), m.predict(x.astype(np.float32), verbose=0).astype(np.float64))


def test_nan_and_inf_inputs(tmp_path, capsys, model_file):
    bad = tmp_path / "x.npy"
    np.save(bad, np.array([[np.nan, 1, np.inf, -np.inf, 0, 0, 0, 0]] * 3))
    assert cli_error(capsys, "build", model_file, "-o", tmp_path / "out", "--tb-data", bad) == (
        "tb_x holds NaN or infinite values, which the testbench cannot read back")
    assert not (tmp_path / "out").exists()
    wrong = tmp_path / "w.npy"
    np.save(wrong, np.zeros((3, 5)))
    assert cli_error(capsys, "build", model_file, "-o", tmp_path / "out", "--tb-data", wrong) == (
        "input 'x' expects shape (batch, 8), got (3, 5)")
    # predicting on NaN/Inf is defined (the emulator and csim agree on it, see test_csim.py): no crash
    y = convert(str(model_file)).predict(np.load(bad))
    assert y.shape == (3, 4)


# ============================================================================ config files
TOP_KEYS = "board, clock_period, default_precision, input_precision, io_type, layers, name, part, reuse_factor, " \
           "softmax, strategy"
try:
    from fpga_gen.config import _TOP_KEYS
    TOP_KEYS = ", ".join(sorted(_TOP_KEYS))      # the list grows with the config; the message format is checked
except ImportError:  # pragma: no cover
    pass

@pytest.mark.parametrize("text,message", [
    ("strategy: latency\nreuse_factor: 2\nstrategy: resource\n", "c.yml: line 3: duplicate key 'strategy'"),
    ("layers:\n  dense_0:\n    reuse_factor: 2\n    reuse_factor: 3\n", "c.yml: line 4: duplicate key 'reuse_factor'"),
    ("reuse_factr: 2\n", f"c.yml: line 1: unknown key 'reuse_factr'; allowed keys: {TOP_KEYS}"),
    ("reuse_factor: [2]\n", "c.yml: line 1: reuse_factor must be a positive integer, got [2]"),
    ("reuse_factor: true\n", "c.yml: line 1: reuse_factor must be a positive integer, got True"),
    ("clock_period: fast\n", "c.yml: line 1: clock_period must be a positive number of ns, got 'fast'"),
    ("layers: 3\n", "c.yml: line 1: layers must be a mapping of layer name -> settings"),
    ("- a\n- b\n", f"c.yml: the config must be a YAML mapping of keys such as {TOP_KEYS}"),
    ("strategy: [\n", "c.yml: line 2: invalid YAML"),
    ("!!python/object/apply:os.system ['touch pwned']\n", "c.yml: line 1: invalid YAML"),
    ("strategy: latency\nlayers:\n  dense_0:\n    strategy: fastest\n",
     "c.yml: line 4: layers.dense_0.strategy must be one of latency, resource, distributed_arithmetic, got 'fastest'"),
    ("layers:\n  dense_0:\n    precision:\n      accum: ap_fixed<70,3>\n",
     "c.yml: line 4: layers.dense_0.precision.accum: fixed-point width must be between 1 and 64, got 70"),
])
def test_config_file_errors_from_the_cli(tmp_path, capsys, monkeypatch, model_file, text, message):
    cfg = tmp_path / "c.yml"
    cfg.write_text(text)
    monkeypatch.chdir(tmp_path)
    msg = cli_error(capsys, "build", model_file, "-c", "c.yml", "-o", tmp_path / "out")
    assert msg.startswith(message), msg
    assert not (tmp_path / "out").exists() and not (tmp_path / "pwned").exists()


def test_reuse_factor_that_does_not_divide_from_config(tmp_path, capsys, model_file):
    cfg = tmp_path / "c.yml"
    cfg.write_text("layers:\n  dense_1:\n    reuse_factor: 5\n")
    assert cli_error(capsys, "build", model_file, "-c", cfg, "-o", tmp_path / "out") == (
        "layer 'dense_1': reuse factor 5 is not valid for a 6x4 dense layer; nearest valid values: 3, 6")
    assert not (tmp_path / "out").exists()


def test_board_file_missing_fields_from_the_cli(tmp_path, capsys, model_file):
    board = tmp_path / "myboard.yaml"
    board.write_text("name: myboard\npart: xc7z020clg400-1\n")
    msg = cli_error(capsys, "build", model_file, "--board", board, "-o", tmp_path / "out")
    assert msg == f"{board}: missing field 'board_part'; add it, e.g. board_part: tul.com.tw:pynq-z2:part0:1.0"
    assert not (tmp_path / "out").exists()


# ============================================================================ output paths
def test_output_path_under_a_file(tmp_path, capsys, model_file):
    (tmp_path / "f").write_text("x")
    assert cli_error(capsys, "build", model_file, "-o", tmp_path / "f" / "sub") == (
        f"{tmp_path / 'f'}: cannot create the output folder (File exists)")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_output_folder_not_writable(tmp_path, capsys, model_file):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert cli_error(capsys, "build", model_file, "-o", ro / "out") == (
            f"{ro}: not writable; choose another output path")
    finally:
        ro.chmod(0o755)


def test_output_folder_not_writable_even_as_root(tmp_path, capsys, monkeypatch, model_file):
    """The same check where the tests run as root (which may write anywhere): os.access says no."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro and mode & os.W_OK
                        else real_access(p, mode, **kw))
    assert cli_error(capsys, "build", model_file, "-o", ro / "out") == f"{ro}: not writable; choose another output path"
    assert list(ro.iterdir()) == []


def _build_cmd(model, out, *extra):
    return [sys.executable, "-m", "fpga_gen.cli", "build", str(model), "-o", str(out), *map(str, extra)]


def test_kill_9_during_build_leaves_the_previous_project_intact(tmp_path, model_file):
    """SIGKILL while the new project is being written: the old one is untouched and no folder named like the
    target is half-written (the temporary folder is a hidden sibling)."""
    out = tmp_path / "proj"
    r = subprocess.run(_build_cmd(model_file, out), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    before = tree(out)
    killed_mid_write = 0
    for attempt in range(3):
        p = subprocess.Popen(_build_cmd(model_file, out, "--force"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while p.poll() is None and time.monotonic() < deadline:
            tmp = [d for d in tmp_path.iterdir() if d.name.startswith(".proj.tmp-")]
            if tmp and any(tmp[0].rglob("*")):
                os.kill(p.pid, signal.SIGKILL)
                killed_mid_write += 1
                break
            time.sleep(0.001)
        p.wait(timeout=60)
        assert tree(out) == before
        names = sorted(d.name for d in tmp_path.iterdir())
        assert [n for n in names if n.startswith("proj")] == ["proj"], names
        for d in tmp_path.iterdir():           # what a kill leaves: hidden temporary folders only
            if d.name != "proj":
                assert d.name.startswith(f".proj.tmp-{p.pid}-") or d.name == f".proj.old-{p.pid}", d.name
        if killed_mid_write:
            break
    assert killed_mid_write >= 1
    # the next build clears what the killed one left
    r = subprocess.run(_build_cmd(model_file, out, "--force"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(d.name for d in tmp_path.iterdir()) == ["proj"]


def test_replacing_a_project_never_moves_the_old_one_away_first(tmp_path, monkeypatch, model_file):
    """The old project keeps its name until the new one swaps in (one renameat2 RENAME_EXCHANGE on Linux):
    there is no moment at which a kill leaves neither."""
    project = convert(str(model_file))
    out = project.write(tmp_path / "proj")
    real_rename = os.rename

    def rename(src, dst, *a, **kw):
        assert Path(src) != out, "the old project was renamed away before the new one was in place"
        return real_rename(src, dst, *a, **kw)

    monkeypatch.setattr(os, "rename", rename)
    (out / "marker").write_text("old")
    project.write(out, force=True)
    assert not (out / "marker").exists() and (out / "fpga_gen_project.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


# ============================================================================ g++ missing
@needs_gxx
def test_gxx_missing_is_one_line_saying_how_to_install(tmp_path, capsys, model_file):
    out = tmp_path / "proj"
    assert run(capsys, "build", model_file, "-o", out)[0] == 0
    env = dict(os.environ, PATH=str(tmp_path / "empty_bin"), FPGA_GEN_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("CXX", None)
    r = subprocess.run([sys.executable, "-m", "fpga_gen.cli", "csim", str(out)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr == ("fpga-gen: error: g++ was not found on PATH; C simulation needs it: install it "
                        "(apt-get install g++)\n")


# ============================================================================ hostile names
# What Keras lets through as layer names (its scope pattern: [A-Za-z0-9.][A-Za-z0-9_.\\/>-]*), C++ and Tcl
# keywords among them; the model file name (which names the project) may hold anything.
HOSTILE_LAYER_NAMES = ["class", "proc", "namespace", "set", "int", "back\\slash", "a/b", "a>b", "1st-layer.v2",
                       ".hidden", "ends\\"]
HOSTILE_FILE_NAME = "my model; $x [exec rm] {ünï} \"q\" 'class'\n.h5"


def _hostile_model():
    tf = _tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    tf.keras.utils.set_random_seed(7)
    names = iter(HOSTILE_LAYER_NAMES)
    layers = [tf.keras.layers.InputLayer(input_shape=(6,), name=next(names))]
    for units in (5, 4, 3):
        layers.append(QDense(units, kernel_quantizer=quantized_bits(6, 0, alpha=1),
                             bias_quantizer=quantized_bits(6, 0, alpha=1), name=next(names)))
        layers.append(QActivation(quantized_relu(6, 2), name=next(names)))
    layers.append(tf.keras.layers.Dropout(0.1, name=next(names)))
    layers.append(QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), name=next(names)))
    layers.append(tf.keras.layers.Activation("linear", name=next(names)))
    layers.append(tf.keras.layers.Activation("softmax", name=next(names)))
    assert next(names, None) is None
    return tf.keras.Sequential(layers, name="hostile")


@needs_gxx
@needs_tclsh
def test_hostile_names_give_valid_cpp_and_tcl_with_the_same_meaning(tmp_path):
    import fpga_gen
    from fpga_gen.boards import load_board
    from fpga_gen.hls.board_project import board_context
    from tcl_stubs.harness import run_tcl
    from test_board_project import run_chain

    model_path = tmp_path / HOSTILE_FILE_NAME
    _hostile_model().save(model_path, save_format="h5")
    out = tmp_path / "out dir $x;[y]"
    r = subprocess.run(_build_cmd(model_path, out, "--board", "pynq-z2"), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    project = fpga_gen.load_project(out)
    top = project.name
    assert top.isidentifier() and top.isascii()
    assert [n.name for n in project.graph][:2] == ["class", "proc"]        # the graph keeps the Keras names
    # C++: compiles, and computes what the emulator computes (softmax included)
    x = grid_inputs(300, 6, frac_bits=4, lo=-4, hi=4)
    assert np.array_equal(project.predict(x, backend="csim"), project.predict(x))
    # the testbench written at build time passes
    from fpga_gen import csim
    tb = csim.run_testbench(out)
    assert tb.returncode == 0 and tb.passed, tb.stderr
    # Tcl: the HLS script and the board chain run under the stubs and name the same top function
    hls = run_tcl("vitis_hls", out / "build_prj.tcl", ["csim=1", "synth=1"])
    assert hls.ok, hls.stderr
    assert hls.one("set_top").args == [top]
    board = load_board("pynq-z2")
    hls_ip, viv = run_chain(out, board_context(project.graph, project.config, board))
    assert hls_ip.ok and viv.ok, hls_ip.stderr + viv.stderr


# ============================================================================ determinism across processes
def _two_processes(argv_for, tmp_path):
    trees = []
    for seed in ("0", "12345"):
        d = tmp_path / f"p{seed}"
        r = subprocess.run(argv_for(d), env=dict(os.environ, PYTHONHASHSEED=seed), capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        trees.append(tree(d))
    a, b = trees
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_board_project_is_byte_identical_across_processes(tmp_path, model_file):
    _two_processes(lambda d: _build_cmd(model_file, d, "--board", "pynq-z2"), tmp_path)


def test_cnn_project_is_byte_identical_across_processes(tmp_path):
    from fpga_gen.hls.layers import HANDLERS
    if not {"conv2d", "pooling"} <= set(HANDLERS):
        pytest.skip("the HLS writer has no conv2d/pooling templates yet")
    from test_conv import CONVS, POOLS, qcnn
    p = tmp_path / "cnn.h5"
    qcnn((8, 8, 2), CONVS["same_3x3"], POOLS["max_valid_2x2"], seed=3).save(p)
    _two_processes(lambda d: _build_cmd(p, d, "--input-precision", "ap_fixed<12,4>"), tmp_path)


@pytest.mark.parametrize("quantizer,message", [
    ("bits", "layer 'd': kernel quantizer quantized_bits(6,-1,0,alpha=1): integer=-1 is negative, which QKeras cannot "
             "compute (TensorFlow refuses the negative power); use integer >= 0"),
    ("relu", "layer 'a': quantized_relu(4,-2): integer=-2 is negative, which QKeras cannot compute (TensorFlow refuses "
             "the negative power); use integer >= 0"),
])
def test_negative_integer_bits_are_refused(tmp_path, capsys, quantizer, message):
    tf = _tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    kq = quantized_bits(6, -1, alpha=1) if quantizer == "bits" else quantized_bits(6, 0, alpha=1)
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(4,), name="x"),
                             QDense(3, kernel_quantizer=kq, name="d"),
                             QActivation(quantized_relu(4, -2) if quantizer == "relu" else "linear", name="a")])
    with pytest.raises(Exception) as e:
        convert(m)
    assert str(e.value) == message


# ============================================================================ known, pinned
@needs_gxx
def test_rounding_cast_to_a_type_without_fraction_bits_runs_in_csim(tmp_path):
    """ap_types aborts ('Attempting to read bit beyond MSB') when a rounding cast drops more bits than its source
    has (ap_fixed<12,2> -> ap_ufixed<2,5,AP_RND_CONV,AP_SAT>); the SafeCasts pass sign-extends the exact
    accumulator so csim runs and equals the emulator (run in a subprocess: an abort would kill pytest)."""
    tf = _tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    tf.keras.utils.set_random_seed(0)
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2,), name="x"),
                             QDense(2, kernel_quantizer=quantized_bits(2, 0, alpha=1), use_bias=False, name="d"),
                             QActivation(quantized_relu(2, 5), name="a")])
    project = convert(m, input_precision="ap_fixed<4,1>")
    out = project.write(tmp_path / "p")
    x = grid_inputs(64, 2, frac_bits=3, lo=-1, hi=1 - 2 ** -3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ref.npy", project.predict(x))
    code = (f"import numpy as np; from fpga_gen import csim; "
            f"y = csim.predict({str(out)!r}, np.load({str(tmp_path / 'x.npy')!r})); "
            f"assert np.array_equal(y, np.load({str(tmp_path / 'ref.npy')!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-500:]
