"""The board driver's CPU fallback: ``NativeNetwork`` compiles the project's C++ with the system g++
(-DFPGA_GEN_NATIVE, as fpga_gen.csim's native build) on first use, caches the library and gives the
FPGA's bits; ``NeuralNetwork(fallback="native")`` uses it when the bitstream or pynq is missing.

On the board this is the ARM core's g++; here the host's x86 g++ stands in for it (the same sources,
flags and entry points: only the instruction set differs, and the kernels compute on integers).
The driver is loaded with ``import pynq`` failing (as on a PC) or with the fake pynq of
test_board_project, and without importing fpga_gen (see test_driver_module_is_standalone_python).
Each project is written and compiled once per module (shared cache folder)."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from board_graphs import config_for, small_graph
from fpga_gen.boards import load_board
from fpga_gen.csim.build import CXXFLAGS
from fpga_gen.emulate import emulate
from fpga_gen.hls import write_project
from fpga_gen.emulate import reference_predictor
from fpga_gen.hls.board_project import board_context, write_board_files
from helpers_graphs import mlp_graph
from test_board_project import _load_driver, fake_pynq

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed")


def _write(root: Path, graph, board="pynq-z2", name="net"):
    board = load_board(board)
    config = config_for(board, name)
    root.mkdir(parents=True)
    write_project(graph, config, root)
    write_board_files(graph, config, board, root, reference_predictor(graph))
    return board_context(graph, config, board)


def _cnn_project(root: Path, io: str):
    """A QKeras CNN (conv, relu, average pooling, dense, softmax) converted for the PYNQ-Z2."""
    from fpga_gen import convert
    from test_conv import IN_PREC
    from test_stream import qchain

    model = qchain((9, 8, 1), [("conv", 2, (2, 3), (2, 1), "valid"), ("act", "quantized_relu"),
                               ("avg", 2, None, "valid"), ("act", "quantized_bits"), ("flat",), ("dense", 4),
                               ("softmax",)], seed=1, name=f"cnn_{io}")
    project = convert(model, input_precision=IN_PREC, io=io, board="pynq-z2", name="cnn")
    project.write(root)
    return project


class Case:
    def __init__(self, root, predict_ref, input_shape, top):
        self.root, self.predict_ref, self.input_shape, self.top = root, predict_ref, input_shape, top


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp("board_fallback")


@pytest.fixture(scope="module")
def cases(shared):
    """name -> Case: the projects the tests share (written once)."""
    out = {}
    g = small_graph()                                                       # dense, relu, dense
    _write(shared / "mlp", g)
    out["dense_relu_dense"] = Case(shared / "mlp", lambda x, g=g: emulate(g, x), (10,), "net")
    g2 = mlp_graph((12, 9, 6), activation="quant_relu", softmax=True, name="smx")   # dense, relu, dense, softmax
    _write(shared / "smx", g2, board="zcu104")
    out["dense_relu_softmax"] = Case(shared / "smx", lambda x, g=g2: emulate(g, x), (12,), "net")
    for io in ("parallel", "stream"):
        p = _cnn_project(shared / f"cnn_{io}", io)
        out[f"cnn_{io}"] = Case(shared / f"cnn_{io}", lambda x, p=p: p.predict(x, backend="emu"), (9, 8, 1), "cnn")
    return out


@pytest.fixture
def no_pynq(monkeypatch, shared):
    """``import pynq`` fails, and the default cache folder is under a HOME of the tests."""
    monkeypatch.setitem(sys.modules, "pynq", None)
    monkeypatch.setenv("HOME", str(shared / "home"))
    with pytest.raises(ImportError):
        import pynq  # noqa: F401


def _inputs(shape, n, seed, specials=True):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-12.0, 12.0, size=(n,) + tuple(shape))
    if specials:                   # quantized by the driver first: the C++ sees codes only
        flat = x.reshape(n, -1)
        flat[0, :4] = [np.nan, np.inf, -np.inf, 1e300]
        flat[1, :3] = [-1e300, 0.0, -0.0]
    return x


# ============================================================================ (a) NativeNetwork without pynq
@pytest.mark.parametrize("name", ["dense_relu_dense", "dense_relu_softmax", "cnn_parallel", "cnn_stream"])
def test_native_network_without_pynq_equals_the_emulator(cases, shared, no_pynq, name):
    c = cases[name]
    drv = _load_driver(c.root / "deploy" / f"{c.top}_driver.py")
    cache = shared / "cache"
    nn = drv.NativeNetwork(cache_dir=cache)
    assert nn.backend == "native" and nn.source_dir == str(c.root)      # the project, from its deploy/ folder
    assert Path(nn.library).parent.parent == cache and Path(nn.library).name == f"lib{c.top}.so"
    assert nn.thread_safe == (name != "cnn_stream")
    x = _inputs(c.input_shape, 300, seed=7)
    y, t = nn.predict(x, timing=True)
    ref = c.predict_ref(x)
    assert y.dtype == np.float64 and y.shape == ref.shape
    assert np.array_equal(y, ref)
    assert isinstance(t, drv.Timing) and t.samples == 300 and t.seconds >= t.dma_seconds > 0
    one = nn.predict(x[2])                                                 # one sample without the batch axis
    assert one.shape == (1,) + ref.shape[1:] and np.array_equal(one[0], ref[2])
    # a large batch split over threads (io_parallel): the same bits; a second instance loads the cached library
    big = _inputs(c.input_shape, 1100, seed=8, specials=False)
    again = drv.NativeNetwork(cache_dir=cache, threads=2)
    assert (again.library, again.compiled) == (nn.library, False)
    assert np.array_equal(again.predict(big), c.predict_ref(big))
    assert not [p for p in Path(nn.library).parent.iterdir() if p.name != f"lib{c.top}.so"]   # no temp files


def test_native_flags_are_the_csim_native_build(cases, shared, no_pynq):
    drv = _load_driver(cases["dense_relu_dense"].root / "deploy" / "net_driver.py")
    assert drv.NATIVE_CXXFLAGS == tuple("-O2" if f == "-O1" else f for f in CXXFLAGS) + ("-DFPGA_GEN_NATIVE",)
    assert {"-std=c++14", "-fPIC", "-fno-gnu-unique"} <= set(drv.NATIVE_CXXFLAGS)


def test_default_cache_folder_and_its_fallback_next_to_the_driver(cases, shared, tmp_path, no_pynq, monkeypatch):
    c = cases["dense_relu_dense"]
    drv = _load_driver(c.root / "deploy" / "net_driver.py")
    nn = drv.NativeNetwork()
    assert nn.cache_dir == str(shared / "home" / ".cache" / "fpga-gen-board")
    # HOME not writable: the cache goes next to the driver
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("a file, not a folder")
    monkeypatch.setenv("HOME", str(home))
    copy = tmp_path / "pkg"
    shutil.copytree(c.root / "deploy", copy)
    shutil.copytree(c.root / "firmware", copy / "net_native" / "firmware")
    shutil.copy(c.root / "net_bridge.cpp", copy / "net_native")
    drv2 = _load_driver(copy / "net_driver.py")
    nn2 = drv2.NativeNetwork()
    assert nn2.cache_dir == str(copy / "net_native_cache") and nn2.source_dir == str(copy / "net_native")
    assert nn2.compiled and Path(nn2.library).is_file()
    x = _inputs((10,), 50, seed=2)
    assert np.array_equal(nn2.predict(x), nn.predict(x))


def test_edited_sources_build_a_new_library(cases, tmp_path, no_pynq):
    c = cases["dense_relu_dense"]
    copy = tmp_path / "prj"
    shutil.copytree(c.root, copy, ignore=shutil.ignore_patterns("*.bit", "*.hwh"))
    drv = _load_driver(copy / "deploy" / "net_driver.py")
    a = drv.NativeNetwork(cache_dir=tmp_path / "cache")
    b = drv.NativeNetwork(cache_dir=tmp_path / "cache")
    assert a.compiled and not b.compiled and a.library == b.library
    with open(copy / "firmware" / "parameters.h", "a") as f:
        f.write("\n// edited\n")
    e = drv.NativeNetwork(cache_dir=tmp_path / "cache")
    assert e.compiled and e.library != a.library


# ============================================================================ (b) NeuralNetwork(fallback="native")
def test_neural_network_falls_back_when_the_bitstream_is_missing(cases, shared, monkeypatch):
    c = cases["dense_relu_dense"]
    g = small_graph()
    ctx = board_context(g, config_for(load_board("pynq-z2")), load_board("pynq-z2"))
    loaded = []
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq(g, ctx, loaded))
    monkeypatch.setenv("HOME", str(shared / "home"))
    drv = _load_driver(c.root / "deploy" / "net_driver.py")
    bit = c.root / "deploy" / "net.bit"
    assert not bit.exists()
    # the default keeps today's error
    with pytest.raises(FileNotFoundError) as e:
        drv.NeuralNetwork()
    assert str(e.value) == f"{bit}: bitstream not found; copy net.bit and net.hwh next to it"
    with pytest.warns(drv.FallbackWarning) as w:
        nn = drv.NeuralNetwork(fallback="native")
    assert [str(r.message) for r in w] == [
        f"{bit}: bitstream not found; net runs on the CPU instead (NativeNetwork: the same bits, without the FPGA)"]
    assert nn.backend == "native" and nn.overlay is None and loaded == []
    x = _inputs((10,), 64, seed=4)
    y, t = nn.predict(x, timing=True)
    assert np.array_equal(y, emulate(g, x)) and t.samples == 64
    # with the bitstream, fallback="native" still uses the FPGA, silently, and the bits agree
    try:
        bit.write_text("BIT")
        bit.with_suffix(".hwh").write_text("HWH")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fpga = drv.NeuralNetwork(fallback="native")
        assert fpga.backend == "fpga" and fpga.native is None and loaded == [str(bit)]
        assert np.array_equal(fpga.predict(x), y)
        assert drv.NeuralNetwork().backend == "fpga"
    finally:
        bit.unlink()
        bit.with_suffix(".hwh").unlink()
    with pytest.raises(ValueError, match="fallback must be None or 'native', got 'cpu'"):
        drv.NeuralNetwork(fallback="cpu")
    with pytest.raises(ValueError, match="max_batch must be a whole number from 1 to"):
        drv.NeuralNetwork(fallback="native", max_batch=0)


def test_neural_network_falls_back_without_pynq(cases, no_pynq):
    c = cases["dense_relu_softmax"]
    drv = _load_driver(c.root / "deploy" / "net_driver.py")
    with pytest.raises(ImportError):                                   # the default: as before
        drv.NeuralNetwork()
    with pytest.warns(drv.FallbackWarning, match=r"^pynq cannot be imported \(.*\); net runs on the CPU instead"):
        nn = drv.NeuralNetwork(fallback="native")
    assert nn.backend == "native"
    x = _inputs((12,), 40, seed=5)
    assert np.array_equal(nn.predict(x), c.predict_ref(x))


# ============================================================================ (d) one-line errors
def test_errors_name_what_is_missing_and_the_fix(cases, tmp_path, no_pynq, monkeypatch):
    c = cases["dense_relu_dense"]
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(c.root / "deploy" / "net_driver.py", alone)
    drv = _load_driver(alone / "net_driver.py")
    with pytest.raises(drv.NativeBuildError) as e:
        drv.NativeNetwork(cache_dir=tmp_path / "cache")
    assert str(e.value) == (f"the C++ sources of net (net_bridge.cpp and firmware/) are not in {alone / 'net_native'} "
                            f"or {tmp_path}; `make package` ships them in net_native/ next to net_driver.py, or "
                            f"pass NativeNetwork(source_dir=<the project folder>)")
    with pytest.raises(drv.NativeBuildError) as e:
        drv.NativeNetwork(source_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    assert str(e.value).startswith(f"the C++ sources of net (net_bridge.cpp and firmware/) are not in "
                                   f"{tmp_path / 'nowhere'} or {tmp_path / 'nowhere' / 'net_native'}; ")
    # source_dir: the project folder, or a folder holding net_native/
    assert drv.NativeNetwork(source_dir=c.root, cache_dir=tmp_path / "cache").source_dir == str(c.root)

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(drv.NativeBuildError) as e:
        drv.NativeNetwork(source_dir=c.root, cache_dir=tmp_path / "cache")
    assert str(e.value) == ("g++ was not found on PATH; the native fallback compiles the network with it: "
                            "install it (apt-get install g++)")
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "pynq", None)

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(drv.NativeBuildError) as e:
        drv.NativeNetwork(source_dir=c.root, cache_dir=blocker)
    assert str(e.value) == (f"{blocker}: cache folder is not writable; pass NativeNetwork(cache_dir=...) "
                            f"a folder you can write")
    with pytest.raises(ValueError, match="threads must be a whole number from 1, got 0"):
        drv.NativeNetwork(threads=0)


def test_compile_errors_and_foreign_sources_are_one_line(cases, tmp_path, no_pynq):
    c = cases["dense_relu_dense"]
    broken = tmp_path / "broken"
    shutil.copytree(c.root, broken)
    (broken / "firmware" / "net.cpp").write_text("this is not C++\n")
    drv = _load_driver(c.root / "deploy" / "net_driver.py")
    with pytest.raises(drv.NativeBuildError) as e:
        drv.NativeNetwork(source_dir=broken, cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert msg.startswith(f"g++ failed to compile the native fallback of net from {broken} (exit 1); log: ")
    log = Path(msg.split("log: ")[1])
    assert "this is not C++" in log.read_text() and "\n" not in msg
    assert [p.name for p in (tmp_path / "cache").rglob("*.so*")] == []      # nothing half-written is left
    # sources of another network (another input shape) are refused
    other = cases["dense_relu_softmax"].root
    with pytest.raises(drv.NativeBuildError) as e:
        drv.NativeNetwork(source_dir=other, cache_dir=tmp_path / "cache")
    assert str(e.value) == (f"{other}: the input shape of these sources is (12,), this driver's is (10,); "
                            f"point source_dir at the project of net")


# ============================================================================ the board's instruction sets
HARNESS = r"""// reads n samples of doubles, runs the driver's library, writes the outputs (little-endian doubles)
#include <cstdio>
#include <cstdlib>
#include <vector>
extern "C" int fpga_gen_predict(const double *x, double *y, long n);
extern "C" long fpga_gen_n_in();
extern "C" long fpga_gen_n_out();
int main(int argc, char **argv) {
    long n = atol(argv[3]);
    std::vector<double> x(n * fpga_gen_n_in()), y(n * fpga_gen_n_out());
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(x.data(), sizeof(double), x.size(), f) != x.size()) return 3;
    fclose(f);
    int rc = fpga_gen_predict(x.data(), y.data(), n);
    FILE *g = fopen(argv[2], "wb");
    fwrite(y.data(), sizeof(double), y.size(), g);
    fclose(g);
    return rc;
}
"""

ARM = {"armhf": ("arm-linux-gnueabihf-g++", "qemu-arm", "/usr/arm-linux-gnueabihf"),           # PYNQ-Z1/Z2, ZedBoard
       "aarch64": ("aarch64-linux-gnu-g++", "qemu-aarch64", "/usr/aarch64-linux-gnu")}          # ZCU10x, Ultra96, KV260


@pytest.mark.parametrize("arch", sorted(ARM))
def test_native_library_built_by_the_driver_for_arm_runs_under_qemu(cases, tmp_path, arch, no_pynq):
    """The driver's own build (_native_build, its flags) with a cross g++ for the board's ARM cores, run under
    qemu-user through a small C++ harness: the same bits as the emulator (32-bit long on armhf included)."""
    import subprocess

    cxx, qemu, sysroot = ARM[arch]
    if shutil.which(cxx) is None or shutil.which(qemu) is None:
        pytest.skip(f"{cxx} and {qemu} are needed (apt-get install g++-{cxx[:-4]} qemu-user)")
    (tmp_path / "harness.cpp").write_text(HARNESS)
    for name in ("dense_relu_softmax", "cnn_parallel"):
        c = cases[name]
        drv = _load_driver(c.root / "deploy" / f"{c.top}_driver.py")
        path, ident = drv._native_compiler(cxx)
        assert arch.replace("armhf", "arm-linux-gnueabihf") in ident
        lib, compiled = drv._native_build(str(c.root), str(tmp_path / "cache"), path, ident)
        exe = tmp_path / f"{name}_{arch}"
        subprocess.run([path, "-O1", str(tmp_path / "harness.cpp"), lib, f"-Wl,-rpath,{Path(lib).parent}", "-o",
                        str(exe)], check=True, capture_output=True)
        x = _inputs(c.input_shape, 200, seed=11)
        codes = drv.quantize(x.reshape(200, -1)).astype(np.float64) * 2.0 ** -drv.INPUT["frac"]   # as predict does
        codes.astype("<f8").tofile(tmp_path / "x.bin")
        r = subprocess.run([qemu, "-L", sysroot, str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin"), "200"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        y = np.fromfile(tmp_path / "y.bin", dtype="<f8").reshape((200,) + drv.OUTPUT_SHAPE)
        assert np.array_equal(y, c.predict_ref(x)), (name, arch)
