"""Board packaging (fpga_gen.hls.board_project): every generated Tcl script under tclsh with stubbed
Vivado / Vitis HLS commands, the AXI4-Stream wrapper under g++ against the emulator, the PYNQ
driver against a fake pynq whose DMA runs the emulator, and the make flow end to end."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from board_graphs import config_for, random_floats, small_graph
from fpga_gen.boards import list_boards, load_board
from fpga_gen.emulate import emulate
from fpga_gen.ir.fixed import from_float
from fpga_gen.hls import write_project
from fpga_gen.emulate import reference_predictor
from fpga_gen.hls.board_project import (IP_VENDOR, BoardProjectError, StreamLayout, board_context,
                                        write_board_files)
from fpga_gen.ir import FixedType
from tcl_stubs.harness import FAKE_VITIS_HLS, FAKE_VIVADO, read_log, run_tcl, stub_env

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed")
needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is needed")


def make_project(root: Path, board, graph=None, config=None, name: str = "net") -> tuple[Path, dict]:
    board = load_board(board) if isinstance(board, str) else board
    graph = graph or small_graph(name=name)
    config = config or config_for(board, name)
    root.mkdir(parents=True, exist_ok=True)
    write_project(graph, config, root)
    write_board_files(graph, config, board, root, reference_predictor(graph))
    return root, board_context(graph, config, board)


def run_chain(root: Path, ctx: dict, board_parts=None, hls_args=(), vivado_args=("jobs=2",)):
    """build_axi_ip.tcl (Vitis HLS stubs: exports the IP) then vivado/build_bitstream.tcl (Vivado stubs)."""
    board = ctx["board"]
    kw = dict(board_parts=board_parts if board_parts is not None else [board.board_part],
              hls_ip=ctx["ip_vlnv"], hls_tdata=board.dma_width)
    hls = run_tcl("vitis_hls", root / "build_axi_ip.tcl", hls_args, **kw)
    viv = run_tcl("vivado", root / "vivado" / "build_bitstream.tcl", vivado_args, cwd=root, **kw)
    return hls, viv


# ============================================================================ (a) Tcl scripts under stubs
@needs_tclsh
@pytest.mark.parametrize("board_name", list_boards())
def test_every_board_generates_and_its_scripts_run(tmp_path, board_name):
    board = load_board(board_name)
    root, ctx = make_project(tmp_path / "prj", board)
    top, axi = "net", "net_axi"
    hls, viv = run_chain(root, ctx)
    assert hls.ok, hls.stderr + str(hls.calls[-3:])
    assert viv.ok, viv.stderr + str(viv.calls[-3:])

    # ---- Vitis HLS: the AXI4-Stream top, the board's part and clock, the IP's VLNV
    assert hls.one("open_project").args == ["-reset", f"{axi}_prj"]
    assert hls.one("set_top").args == [axi]
    added = [c.args for c in hls.named("add_files")]
    assert ["firmware/net.cpp", "-cflags", "-std=c++14"] in added
    assert [f"firmware/{axi}.cpp", "-cflags", "-std=c++14"] in added
    assert ["-tb", f"{axi}_test.cpp", "-cflags", "-std=c++14"] in added
    assert hls.one("set_part").args == [board.part]
    assert hls.one("create_clock").args == ["-period", "10", "-name", "default"]
    order = [c.cmd for c in hls.calls if c.cmd in ("csim_design", "csynth_design", "cosim_design", "export_design")]
    assert order == ["csim_design", "csynth_design", "export_design"]
    exp = hls.one("export_design")
    assert (exp.opt("-format"), exp.opt("-vendor"), exp.opt("-library"), exp.opt("-version"), exp.opt("-ipname"),
            exp.opt("-rtl")) == ("ip_catalog", IP_VENDOR, "hls", "1.0", axi, "verilog")
    assert ctx["ip_vlnv"] == f"{IP_VENDOR}:hls:{axi}:1.0"
    assert (root / f"{axi}_prj/solution1/impl/ip/component.xml").is_file()

    # ---- Vivado: project, board part, IP repository
    cp = viv.one("create_project")
    assert cp.args[:2] == [f"net_{board_name.replace('-', '_')}", str(root / "vivado" / cp.args[0])]
    assert cp.opt("-part") == board.part and "-force" in cp.args
    props = {c.args[0]: c.args[1] for c in viv.named("set_property") if c.args[0] != "-dict"}
    assert props["board_part"] == board.board_part
    assert props["ip_repo_paths"] == str(root / f"{axi}_prj/solution1/impl/ip")
    assert props["top"] == "system_wrapper"

    # ---- block design: cells and their IP
    cells = {c.args[-1]: c.opt("-vlnv") for c in viv.named("create_bd_cell")}
    ps_ip = "processing_system7" if board.processing_system == "ps7" else "zynq_ultra_ps_e"
    ps_cell = f"{ps_ip}_0"
    assert cells == {
        ps_cell: {"ps7": "xilinx.com:ip:processing_system7:5.5",
                  "zynq_ultra_ps_e": "xilinx.com:ip:zynq_ultra_ps_e:3.5"}[board.processing_system],
        "axi_dma_0": "xilinx.com:ip:axi_dma:7.1",
        f"{axi}_0": f"{IP_VENDOR}:hls:{axi}:1.0",
        "axi_smc_ctrl": "xilinx.com:ip:smartconnect:1.0",
        "axi_smc_mem": "xilinx.com:ip:smartconnect:1.0",
        "rst_fabric": "xilinx.com:ip:proc_sys_reset:5.0",
    }
    auto = viv.one("apply_bd_automation")
    assert auto.opt("-rule") == f"xilinx.com:bd_rule:{ps_ip}" and auto.args[-1] == ps_cell
    assert 'apply_board_preset "1"' in auto.opt("-config")

    # ---- configuration: PS clock and HP port width, DMA widths
    cfg = {}
    for c in viv.named("set_property"):
        if c.args[0] == "-dict":
            cfg.setdefault(c.args[-1], {}).update(c.prop_dict())
    w = str(board.dma_width)
    if board.processing_system == "ps7":
        assert cfg[ps_cell]["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == "100"
        assert cfg[ps_cell]["CONFIG.PCW_S_AXI_HP0_DATA_WIDTH"] == w
        assert cfg[ps_cell]["CONFIG.PCW_USE_S_AXI_HP0"] == "1"
        master, slave, clk, rstn = "M_AXI_GP0", "S_AXI_HP0", "FCLK_CLK0", "FCLK_RESET0_N"
        assert cfg["axi_dma_0"]["CONFIG.c_addr_width"] == "32"
    else:
        assert cfg[ps_cell]["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "100"
        assert cfg[ps_cell]["CONFIG.PSU__SAXIGP2__DATA_WIDTH"] == w
        assert cfg[ps_cell]["CONFIG.PSU__USE__S_AXI_GP2"] == "1"
        master, slave, clk, rstn = "M_AXI_HPM0_FPD", "S_AXI_HP0_FPD", "pl_clk0", "pl_resetn0"
        assert cfg["axi_dma_0"]["CONFIG.c_addr_width"] == "64"
    dma = cfg["axi_dma_0"]
    for k in ("c_m_axi_mm2s_data_width", "c_m_axis_mm2s_tdata_width", "c_m_axi_s2mm_data_width",
              "c_s_axis_s2mm_tdata_width"):
        assert dma[f"CONFIG.{k}"] == w, k
    assert dma["CONFIG.c_include_sg"] == "0" and dma["CONFIG.c_sg_length_width"] == "26"
    assert cfg["axi_smc_mem"] == {"CONFIG.NUM_SI": "2", "CONFIG.NUM_MI": "1"}

    # ---- connections
    intf = {tuple(c.args) for c in viv.named("connect_bd_intf_net")}
    assert intf == {
        (f"/{ps_cell}/{master}", "/axi_smc_ctrl/S00_AXI"),
        ("/axi_smc_ctrl/M00_AXI", "/axi_dma_0/S_AXI_LITE"),
        ("/axi_dma_0/M_AXI_MM2S", "/axi_smc_mem/S00_AXI"),
        ("/axi_dma_0/M_AXI_S2MM", "/axi_smc_mem/S01_AXI"),
        ("/axi_smc_mem/M00_AXI", f"/{ps_cell}/{slave}"),
        ("/axi_dma_0/M_AXIS_MM2S", f"/{axi}_0/in_stream"),
        (f"/{axi}_0/out_stream", "/axi_dma_0/S_AXIS_S2MM"),
    }
    nets = [c.args for c in viv.named("connect_bd_net")]
    clock_net = next(n for n in nets if n[0] == f"/{ps_cell}/{clk}")
    assert f"/{axi}_0/ap_clk" in clock_net and "/axi_dma_0/m_axi_s2mm_aclk" in clock_net
    assert [f"/{ps_cell}/{rstn}", "/rst_fabric/ext_reset_in"] in nets
    reset_net = next(n for n in nets if n[0] == "/rst_fabric/peripheral_aresetn")
    assert f"/{axi}_0/ap_rst_n" in reset_net and "/axi_dma_0/axi_resetn" in reset_net

    # ---- order: address map, validation, wrapper, runs, bitstream, export
    seq = [c.cmd for c in viv.calls]
    assert (seq.index("assign_bd_address") < seq.index("validate_bd_design") < seq.index("make_wrapper")
            < seq.index("launch_runs"))
    runs = [c.args for c in viv.named("launch_runs")]
    assert runs == [["synth_1", "-jobs", "2"], ["impl_1", "-to_step", "write_bitstream", "-jobs", "2"]]
    assert [c.args for c in viv.named("wait_on_run")] == [["synth_1"], ["impl_1"]]
    assert viv.one("write_hw_platform").opt("-file") == str(root / "deploy" / f"{top}.xsa")
    bit, hwh = root / "deploy" / f"{top}.bit", root / "deploy" / f"{top}.hwh"
    assert bit.read_text() == "BIT" and hwh.read_text() == "<hwh/>"   # copied from the run and the bd handoff
    assert bit.with_suffix("") == hwh.with_suffix("")
    assert f"fpga-gen: wrote {bit} and {hwh}" in viv.stdout


@needs_tclsh
def test_clock_period_reaches_hls_and_the_fabric_clock(tmp_path):
    board = load_board("zcu104")
    cfg = config_for(board)
    cfg.clock_period = 5
    root, ctx = make_project(tmp_path / "p", board, config=cfg)
    hls, viv = run_chain(root, ctx)
    assert hls.ok and viv.ok
    assert hls.one("create_clock").args == ["-period", "5", "-name", "default"]
    ps = next(c for c in viv.named("set_property") if c.args[0] == "-dict" and c.args[-1] == "zynq_ultra_ps_e_0")
    assert ps.prop_dict()["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "200"


@needs_tclsh
def test_user_board_with_a_128_bit_dma(tmp_path):
    board = _board(tmp_path, "mpsoc128")
    root, ctx = make_project(tmp_path / "p", board)
    hls, viv = run_chain(root, ctx)
    assert hls.ok and viv.ok, viv.stderr
    cfg = {}
    for c in viv.named("set_property"):
        if c.args[0] == "-dict":
            cfg.setdefault(c.args[-1], {}).update(c.prop_dict())
    assert cfg["zynq_ultra_ps_e_0"]["CONFIG.PSU__SAXIGP2__DATA_WIDTH"] == "128"
    assert cfg["axi_dma_0"]["CONFIG.c_m_axis_mm2s_tdata_width"] == "128"
    assert cfg["axi_dma_0"]["CONFIG.c_s_axis_s2mm_tdata_width"] == "128"
    assert "FPGA_GEN_AXI_WIDTH = 128;" in (root / "firmware" / "net_axi.h").read_text()
    assert viv.one("create_project").args[0] == "net_mpsoc128"


@needs_tclsh
@pytest.mark.parametrize("installed, chosen", [
    (["digilentinc.com:zedboard:part0:1.0"], "digilentinc.com:zedboard:part0:1.0"),      # an alternative name
    (["avnet.com:zedboard:part0:1.3", "avnet.com:zedboard:part0:1.1"], "avnet.com:zedboard:part0:1.3"),  # newest
    (["em.avnet.com:zed:part0:1.4", "avnet.com:zedboard:part0:1.4"], "avnet.com:zedboard:part0:1.4"),    # exact first
])
def test_board_part_falls_back_to_what_is_installed(tmp_path, installed, chosen):
    root, ctx = make_project(tmp_path / "p", "zedboard")
    _, viv = run_chain(root, ctx, board_parts=installed)
    assert viv.ok, viv.stderr
    assert next(c for c in viv.named("set_property") if c.args[0] == "board_part").args[1] == chosen


@needs_tclsh
def test_missing_board_files_is_one_clear_error(tmp_path):
    root, ctx = make_project(tmp_path / "p", "pynq-z2")
    _, viv = run_chain(root, ctx, board_parts=[])
    assert viv.returncode == 1 and not viv.named("create_bd_design")
    assert "the board files of pynq-z2 (tul.com.tw:pynq-z2:part0:1.0) are not installed. TUL board files" in viv.stderr


@needs_tclsh
def test_vivado_without_the_ip_says_run_make_ip(tmp_path):
    root, ctx = make_project(tmp_path / "p", "pynq-z1")
    viv = run_tcl("vivado", root / "vivado" / "build_bitstream.tcl", board_parts=[ctx["board"].board_part],
                  hls_ip=ctx["ip_vlnv"], hls_tdata=64)
    assert viv.returncode == 1 and not viv.named("create_project")
    assert "the HLS IP is missing" in viv.stderr and "run 'make ip'" in viv.stderr


@needs_tclsh
def test_stubs_catch_width_mismatch_and_unknown_commands(tmp_path):
    """The harness itself: a stream-width mismatch fails validate_bd_design; an unknown command fails the run."""
    root, ctx = make_project(tmp_path / "p", "pynq-z2")
    _, viv = run_chain(root, ctx)
    assert viv.ok
    bad = run_tcl("vivado", root / "vivado" / "build_bitstream.tcl", board_parts=[ctx["board"].board_part],
                  hls_ip=ctx["ip_vlnv"], hls_tdata=32)
    assert bad.returncode == 1 and "c_m_axis_mm2s_tdata_width is 64, the HLS IP streams 32 bits" in bad.stderr
    script = tmp_path / "typo.tcl"
    script.write_text("create_project p p -part xc7z020clg400-1\ncreat_bd_design system\n")
    typo = run_tcl("vivado", script)
    assert typo.returncode == 1 and typo.named("__unknown__")[0].args[0] == "creat_bd_design"


@needs_tclsh
def test_hls_ip_script_steps_and_arguments(tmp_path):
    root, ctx = make_project(tmp_path / "p", "kv260")
    kw = dict(hls_ip=ctx["ip_vlnv"], hls_tdata=64)
    r = run_tcl("vitis_hls", root / "build_axi_ip.tcl", ["cosim=1"], **kw)
    assert r.ok and [c.cmd for c in r.calls if c.cmd.endswith("_design")] == [
        "csim_design", "csynth_design", "cosim_design", "export_design"]
    assert r.one("set_part").args == ["xck26-sfvc784-2LV-c"]
    csim_only = run_tcl("vitis_hls", root / "build_axi_ip.tcl", ["csim=1", "synth=0", "export=0"], **kw)
    assert csim_only.ok and [c.cmd for c in csim_only.calls if c.cmd.endswith("_design")] == ["csim_design"]
    assert csim_only.one("open_project").args == ["net_axi_prj"]          # no -reset: keeps the synthesis
    bad = run_tcl("vitis_hls", root / "build_axi_ip.tcl", ["cosim=yes"], **kw)
    assert bad.returncode == 1 and "unknown argument 'cosim=yes'" in bad.stderr


@needs_tclsh
def test_writers_build_prj_tcl_runs_under_the_stubs(tmp_path):
    """The HLS writer's build_prj.tcl, with the arguments the Makefile passes."""
    root, ctx = make_project(tmp_path / "p", "pynq-z2")
    for args, steps in ((["csim=1", "synth=0", "cosim=0", "export=0"], ["csim_design"]),
                        (["csim=0", "synth=1", "cosim=1", "export=0"], ["csynth_design", "cosim_design"]),
                        ([], ["csim_design", "csynth_design"])):
        r = run_tcl("vitis_hls", root / "build_prj.tcl", args)
        assert r.ok, r.stderr
        assert [c.cmd for c in r.calls if c.cmd.endswith("_design")] == steps
        assert r.one("set_top").args == ["net"]
        assert r.one("set_part").args == ["xc7z020clg400-1"]


@needs_tclsh
def test_paths_with_spaces_and_tcl_characters(tmp_path):
    """Scripts find everything relative to themselves; a project folder with odd characters works."""
    root, ctx = make_project(tmp_path / "my [odd] $dir {x}", "ultra96v2")
    hls, viv = run_chain(root, ctx)
    assert hls.ok, hls.stderr
    assert viv.ok, viv.stderr
    assert (root / "deploy" / "net.bit").is_file() and (root / "deploy" / "net.hwh").is_file()


@needs_tclsh
def test_make_flow_end_to_end_with_fake_tools(tmp_path, monkeypatch):
    """make package: ip (vitis_hls) -> bitstream (vivado) -> tarball with .bit, .hwh, the driver and the C++ of
    its CPU fallback, which runs from the unpacked tarball (the host's g++ standing in for the board's)."""
    if shutil.which("make") is None:
        pytest.skip("make is needed")
    root, ctx = make_project(tmp_path / "p", "pynq-z2")
    log = tmp_path / "tools.jsonl"
    env = stub_env(log, board_parts=["tul.com.tw:pynq-z2:part0:1.0"], hls_ip=ctx["ip_vlnv"], hls_tdata=64)
    make = ["make", "-C", str(root), f"VITIS_HLS={FAKE_VITIS_HLS}", f"VIVADO={FAKE_VIVADO}", "JOBS=3"]
    r = subprocess.run(make + ["package"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = read_log(log)
    starts = [c.args for c in calls if c.cmd == "__start__"]
    assert starts == [["vitis_hls", "build_axi_ip.tcl", "csim=1", "synth=1", "cosim=0", "export=1"],
                      ["vivado", "vivado/build_bitstream.tcl", "jobs=3"]]
    assert not [c for c in calls if c.cmd in ("__unknown__", "__error__", "__tcl_error__")]
    with tarfile.open(root / "net_pynq-z2_pynq.tar.gz") as tar:
        names = sorted(tar.getnames())
        files = sorted(m.name for m in tar.getmembers() if m.isfile())
        tar.extractall(tmp_path / "board")
    # the bitstream, the hwh, the driver, and the C++ of the driver's CPU fallback in net_native/
    assert [n for n in names if not n.startswith("net_native/")] == ["net.bit", "net.hwh", "net_driver.py",
                                                                      "net_native"]
    shipped = sorted(["net_native/net_bridge.cpp"] + [f"net_native/{p.relative_to(root).as_posix()}"
                                                      for p in (root / "firmware").rglob("*") if p.is_file()])
    assert [f for f in files if f.startswith("net_native/")] == shipped
    assert {"net_native/firmware/net.cpp", "net_native/firmware/parameters.h", "net_native/firmware/fpga_gen_native.h",
            "net_native/firmware/ap_types/ap_fixed.h", "net_native/firmware/nnet_utils/nnet_dense.h"} <= set(files)
    assert not (root / ".package").exists()
    if shutil.which("g++") is not None:
        # on the board (x86 g++ standing in for the ARM one): no pynq, NativeNetwork from the unpacked folder
        monkeypatch.setitem(sys.modules, "pynq", None)
        drv = _load_driver(tmp_path / "board" / "net_driver.py")
        nn = drv.NativeNetwork(cache_dir=tmp_path / "cache")
        x = random_floats(small_graph(), 33, seed=12)
        assert nn.source_dir == str(tmp_path / "board" / "net_native")
        assert np.array_equal(nn.predict(x), emulate(small_graph(), x))
    # the network-level targets call the HLS writer's build_prj.tcl
    for target, args in (("csim", ["csim=1", "synth=0", "cosim=0", "export=0"]),
                         ("csynth", ["csim=0", "synth=1", "cosim=0", "export=0"]),
                         ("cosim", ["csim=0", "synth=1", "cosim=1", "export=0"])):
        log.unlink()
        r = subprocess.run(make + [target], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert [c.args for c in read_log(log) if c.cmd == "__start__"] == [["vitis_hls", "build_prj.tcl", *args]]
    # up to date: nothing runs again
    r = subprocess.run(make + ["-q", "package"], env=env, capture_output=True, text=True)
    assert r.returncode == 0


# ============================================================================ generation checks
def test_generated_files_and_errors(tmp_path):
    board = load_board("pynq-z2")
    g = small_graph()
    root = tmp_path / "p"
    root.mkdir()
    files = write_board_files(g, config_for(board), board, root, reference_predictor(g))
    rel = sorted(str(p.relative_to(root)) for p in files)
    assert rel == ["Makefile", "README_board.md", "build_axi_ip.tcl", "deploy/net_driver.py", "firmware/net_axi.cpp",
                   "firmware/net_axi.h", "net_axi_test.cpp", "tb_data/axi_expected.txt", "tb_data/axi_in.txt",
                   "vivado/build_bitstream.tcl"]
    again = tmp_path / "q"
    again.mkdir()
    write_board_files(g, config_for(board), "pynq-z2", again, reference_predictor(g))        # a board name works too
    for p in files:                                                      # deterministic
        assert (again / p.relative_to(root)).read_bytes() == p.read_bytes()
    with pytest.raises(BoardProjectError, match=r"part xczu9eg-ffvb1156-2-e differs from the part of board pynq-z2 "
                                                r"\(xc7z020clg400-1\); remove 'part' from the config"):
        write_board_files(g, config_for(load_board("zcu102")), board, root, reference_predictor(g))
    with pytest.raises(BoardProjectError, match="output folder does not exist"):
        write_board_files(g, config_for(board), board, tmp_path / "missing", reference_predictor(g))


def test_type_wider_than_the_dma_is_an_error(tmp_path):
    data = yaml.safe_load(load_board("pynq-z2").source and Path(load_board("pynq-z2").source).read_text())
    data.update(name="narrow", dma_width=32)
    p = tmp_path / "narrow.yaml"
    p.write_text(yaml.safe_dump(data))
    board = load_board(p)
    g = small_graph(out_type=FixedType(40, 20))
    with pytest.raises(BoardProjectError, match=r"the output type ap_fixed<40,20> needs a 64-bit lane, wider than "
                                                r"the 32-bit DMA of board narrow; narrow the output precision"):
        board_context(g, config_for(board), board)


@pytest.mark.parametrize("t, lane, dtype", [
    (FixedType(16, 6), 16, "<i2"), (FixedType(8, 3, False), 8, "<u1"), (FixedType(6, 2), 8, "<i1"),
    (FixedType(12, 4, False), 16, "<u2"), (FixedType(18, 8), 32, "<i4"), (FixedType(33, 8), 64, "<i8"),
])
def test_stream_layout(t, lane, dtype):
    lay = StreamLayout(10, t, 64)
    assert (lay.lane_bits, lay.numpy_dtype, lay.lanes) == (lane, dtype, 64 // lane)
    assert lay.words == -(-10 // lay.lanes) and lay.bytes_per_sample == lay.words * 8
    rng = np.random.default_rng(0)
    raw = rng.integers(t.raw_min, t.raw_max, size=(3, 10), endpoint=True)
    words = lay.pack_raw(raw)
    assert len(words) == 3 * lay.words and all(0 <= w < 2 ** 64 for w in words)
    assert np.array_equal(lay.unpack_raw(words), raw)
    # the words are exactly a little-endian buffer of lanes of the numpy dtype
    lanes = np.zeros((3, lay.padded), dtype=dtype)
    lanes[:, :10] = raw
    as_words = np.frombuffer(lanes.tobytes(), dtype="<u8")
    assert [int(w) for w in as_words] == words


# ============================================================================ (b) the wrapper under g++
def _compile_axi_tb(root: Path, ctx: dict) -> Path:
    exe = root / "axi_tb"
    cmd = ["g++", "-std=c++14", "-O0", "-I", str(root / "firmware"), "-I", str(root / "firmware" / "ap_types"),
           "-o", str(exe), str(root / "firmware" / f"{ctx['top']}.cpp"),
           str(root / "firmware" / f"{ctx['axi_top']}.cpp"), str(root / f"{ctx['axi_top']}_test.cpp")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    return exe


def _words_file(path: Path, words, n_words_per_sample: int, digits: int, packets) -> None:
    lines, end, lasts = [], 0, set()
    for n in packets:
        end += n
        lasts.add(end * n_words_per_sample - 1)
    for k, w in enumerate(words):
        lines.append(f"{w:0{digits}x} {int(k in lasts)}\n")
    path.write_text("".join(lines))


def _read_words(path: Path):
    rows = [line.split() for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return [int(h, 16) for h, _ in rows], [int(last) for _, last in rows]


def _load_driver(path: Path, fake_pynq=None):
    if fake_pynq is not None:
        sys.modules["pynq"] = fake_pynq
    spec = importlib.util.spec_from_file_location(f"drv_{abs(hash(str(path)))}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


WRAPPER_CASES = {
    # board, graph: signed 16-bit in and out, 64-bit words (4 lanes in, 4 lanes out)
    "pynq-z2-i16-o16": ("pynq-z2", dict()),
    # unsigned 8-bit output (relu) in 8-bit lanes, 1 word out; 8-bit signed inputs
    "zcu104-i8-u8": ("zcu104", dict(n_in=13, n_hidden=9, input_type=FixedType(8, 4, True, "RND", "SAT"),
                                   out_type=None)),
    # 18-bit output in 32-bit lanes, 128-bit words (user board)
    "mpsoc128-i16-o18": ("mpsoc128", dict(n_in=9, n_out=6, out_type=FixedType(18, 9, True, "RND", "SAT"))),
}


def _board(tmp_path: Path, name: str):
    if name != "mpsoc128":
        return load_board(name)
    data = yaml.safe_load(Path(load_board("zcu104").source).read_text())
    data.update(name="mpsoc128", dma_width=128)
    p = tmp_path / "mpsoc128.yaml"
    p.write_text(yaml.safe_dump(data))
    return load_board(p)


@needs_gxx
@pytest.mark.parametrize("case", list(WRAPPER_CASES))
def test_axi_wrapper_under_gxx_matches_the_emulator(tmp_path, case):
    board_name, graph_kw = WRAPPER_CASES[case]
    board = _board(tmp_path, board_name)
    g = small_graph(**graph_kw)
    root, ctx = make_project(tmp_path / "p", board, graph=g)
    assert "ap_axi_sdata.h" not in os.listdir(root / "firmware" / "ap_types")   # hls4ml's copy lacks it
    exe = _compile_axi_tb(root, ctx)

    # 1. the generated vectors (emulator's expected words, two packets)
    r = subprocess.run([str(exe)], cwd=root, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "PASS: net_axi matches the emulator on 8 samples" in r.stdout, r.stdout + r.stderr

    # 2. driver-packed random floats through the wrapper, back through the driver, against the emulator
    drv = _load_driver(root / "deploy" / "net_driver.py")
    x = random_floats(g, 23, seed=5)
    x[0, 0], x[1, 1], x[2, 2] = np.nan, np.inf, -np.inf
    lanes = drv.pack(x)
    lin, lout = ctx["lin"], ctx["lout"]
    words = [int.from_bytes(lanes.tobytes()[i:i + board.dma_width // 8], "little")
             for i in range(0, lanes.nbytes, board.dma_width // 8)]
    assert len(words) == 23 * lin.words
    _words_file(root / "in.txt", words, lin.words, board.dma_width // 4, packets=(1, 15, 7))
    r = subprocess.run([str(exe), "in.txt", "out.txt", "none.txt"], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out_words, lasts = _read_words(root / "out.txt")
    assert len(out_words) == 23 * lout.words
    ends = {(1 * lout.words) - 1, (16 * lout.words) - 1, (23 * lout.words) - 1}
    assert lasts == [int(k in ends) for k in range(len(out_words))]        # TLAST follows the input packets
    out_bytes = b"".join(w.to_bytes(board.dma_width // 8, "little") for w in out_words)
    y = drv.unpack(np.frombuffer(out_bytes, dtype=lout.numpy_dtype))
    expected = emulate(g, x)
    assert y.dtype == np.float64 and y.shape == expected.shape
    assert np.array_equal(y, expected)
    # unused output lanes are zero, values are sign/zero-extended to their lane
    raw = np.frombuffer(out_bytes, dtype=lout.numpy_dtype).reshape(23, lout.padded)
    assert not raw[:, lout.n_values:].any()
    assert np.array_equal(raw[:, :lout.n_values].astype(np.float64) * 2.0 ** -lout.type.frac,
                          expected.reshape(23, -1))


@needs_gxx
def test_axi_wrapper_detects_a_wrong_expectation(tmp_path):
    root, ctx = make_project(tmp_path / "p", "pynq-z1")
    exe = _compile_axi_tb(root, ctx)
    exp = root / "tb_data" / "axi_expected.txt"
    lines = exp.read_text().splitlines()
    h, last = lines[3].split()
    lines[3] = f"{int(h, 16) ^ 1:0{len(h)}x} {last}"
    exp.write_text("\n".join(lines) + "\n")
    r = subprocess.run([str(exe)], cwd=root, capture_output=True, text=True)
    assert r.returncode == 1 and "FAIL: 1 of" in r.stderr and "word 3 (sample 1)" in r.stderr


# ============================================================================ (c) the PYNQ driver with a fake pynq
class FakeBuffer(np.ndarray):
    flushed = invalidated = freed = 0

    def flush(self):
        self.flushed += 1

    def invalidate(self):
        self.invalidated += 1

    def freebuffer(self):
        self.freed += 1


class FakeDMA:
    """An AXI DMA whose stream side is the network, computed by the emulator from the raw stream words."""

    def __init__(self, graph, ctx):
        self.graph, self.lin, self.lout = graph, ctx["lin"], ctx["lout"]
        self.word_bytes = ctx["dma_width"] // 8
        self.sendchannel = types.SimpleNamespace(transfer=self._send, wait=self._send_wait)
        self.recvchannel = types.SimpleNamespace(transfer=self._recv, wait=self._recv_wait)
        self.sent = None
        self.target = None
        self.transfers = []

    def _recv(self, buf):
        assert self.sent is None, "start the receive channel before the send channel"
        self.target = buf

    def _send(self, buf):
        assert self.target is not None, "start the receive channel before the send channel"
        assert isinstance(buf, FakeBuffer) and buf.flushed, "send a flushed pynq buffer"
        assert buf.nbytes <= (1 << 26) - 1
        self.sent = buf.tobytes()

    def _send_wait(self):
        assert self.sent is not None

    def _recv_wait(self):
        data, target = self.sent, self.target
        assert len(data) % self.word_bytes == 0
        words = [int.from_bytes(data[i:i + self.word_bytes], "little") for i in range(0, len(data), self.word_bytes)]
        raw = self.lin.unpack_raw(words)                                     # what the wrapper reads
        node = self.graph[self.graph.inputs[0]]
        x = (raw * 2.0 ** -self.lin.type.frac).reshape((len(raw),) + node.shape)
        y = emulate(self.graph, x)
        raw_out = np.rint(y.reshape(len(raw), -1) * 2.0 ** self.lout.type.frac).astype(np.int64)
        out = b"".join(w.to_bytes(self.word_bytes, "little") for w in self.lout.pack_raw(raw_out))
        assert len(out) == target.nbytes, f"the output buffer holds {target.nbytes} bytes, the IP writes {len(out)}"
        target.view(np.uint8).reshape(-1)[:] = np.frombuffer(out, dtype=np.uint8)
        self.transfers.append(len(raw))
        self.sent = self.target = None


def fake_pynq(graph, ctx, loaded: list):
    mod = types.ModuleType("pynq")

    def allocate(shape, dtype):
        return np.zeros(shape, dtype=dtype).view(FakeBuffer)

    class Overlay:
        def __init__(self, bitfile, download=True):
            assert Path(bitfile).with_suffix(".hwh").is_file(), "PYNQ needs the .hwh next to the .bit"
            loaded.append(bitfile)
            self.axi_dma_0 = FakeDMA(graph, ctx)

    mod.allocate = allocate
    mod.Overlay = Overlay
    return mod


@pytest.fixture
def driver_env(tmp_path, monkeypatch):
    board = load_board("ultra96v2")
    g = small_graph(n_in=11, n_hidden=6, n_out=3, input_type=FixedType(12, 5, True, "RND_CONV", "SAT"))
    root = tmp_path / "p"
    root.mkdir()
    write_board_files(g, config_for(board), board, root, reference_predictor(g))
    ctx = board_context(g, config_for(board), board)
    (root / "deploy" / "net.bit").write_text("BIT")
    (root / "deploy" / "net.hwh").write_text("HWH")
    loaded = []
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq(g, ctx, loaded))
    drv = _load_driver(root / "deploy" / "net_driver.py")
    return types.SimpleNamespace(drv=drv, graph=g, ctx=ctx, root=root, loaded=loaded)


def test_driver_predict_matches_the_emulator(driver_env):
    e = driver_env
    nn = e.drv.NeuralNetwork()
    assert e.loaded == [str(e.root / "deploy" / "net.bit")]
    x = random_floats(e.graph, 40, seed=3)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    x[1, :4] = [0.03125 * 0.5, -0.03125 * 1.5, 0.03125 * 2.5, -0.03125 * 0.5]    # ties for RND_CONV
    y = nn.predict(x)
    assert y.dtype == np.float64 and y.shape == (40, 3)
    assert np.array_equal(y, emulate(e.graph, x))
    assert nn.dma.transfers == [40]                                      # one DMA transfer for the batch


def test_driver_batch_of_one_and_single_sample(driver_env):
    e = driver_env
    nn = e.drv.NeuralNetwork()
    x = random_floats(e.graph, 1, seed=4)
    y1 = nn.predict(x)
    y0 = nn.predict(x[0])                                                 # one sample without a batch axis
    assert y1.shape == y0.shape == (1, 3)
    assert np.array_equal(y1, emulate(e.graph, x)) and np.array_equal(y0, y1)
    assert nn.predict(x.tolist()).shape == (1, 3)                        # lists work


def test_driver_splits_large_batches(driver_env):
    e = driver_env
    nn = e.drv.NeuralNetwork(max_batch=16)
    x = random_floats(e.graph, 37, seed=6)
    y, t = nn.predict(x, timing=True)
    assert np.array_equal(y, emulate(e.graph, x))
    assert nn.dma.transfers == [16, 16, 5]
    assert isinstance(t, e.drv.Timing) and t.samples == 37 and t.seconds >= t.dma_seconds >= 0
    assert t.samples_per_second > 0
    first = nn._buffers[1]
    nn.close()
    assert nn._buffers is None and first.freed == 1


def test_driver_shape_and_argument_errors(driver_env):
    e = driver_env
    nn = e.drv.NeuralNetwork()
    with pytest.raises(e.drv.ShapeError, match=r"x must have shape \(batch, 11\) or \(11\), got \(4, 12\)"):
        nn.predict(np.zeros((4, 12)))
    with pytest.raises(ValueError, match=r"got \(2, 11, 1\)"):
        nn.predict(np.zeros((2, 11, 1)))
    with pytest.raises(ValueError, match="holds no samples"):
        nn.predict(np.zeros((0, 11)))
    with pytest.raises(TypeError, match=r"x must be an array of numbers of shape \(batch, 11\)"):
        nn.predict([["a"] * 11])
    with pytest.raises(ValueError, match="max_batch must be a whole number from 1 to"):
        e.drv.NeuralNetwork(max_batch=0)
    with pytest.raises(FileNotFoundError, match="other.bit: bitstream not found"):
        e.drv.NeuralNetwork(bitfile=str(e.root / "other.bit"))
    with pytest.raises(RuntimeError, match="no DMA named 'dma_9'"):
        e.drv.NeuralNetwork(dma="dma_9")


def test_driver_with_a_2d_input(tmp_path, monkeypatch):
    board = load_board("pynq-z1")
    g = small_graph(input_shape=(3, 4), out_type=None)
    write_board_files(g, config_for(board), board, tmp_path, reference_predictor(g))
    ctx = board_context(g, config_for(board), board)
    for f in ("net.bit", "net.hwh"):
        (tmp_path / "deploy" / f).write_text("x")
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq(g, ctx, []))
    drv = _load_driver(tmp_path / "deploy" / "net_driver.py")
    assert drv.INPUT_SHAPE == (3, 4) and drv.OUTPUT_SHAPE == (7,)
    nn = drv.NeuralNetwork()
    x = random_floats(g, 9, seed=8)
    assert np.array_equal(nn.predict(x), emulate(g, x))
    assert nn.predict(x[0]).shape == (1, 7)
    with pytest.raises(drv.ShapeError, match=r"x must have shape \(batch, 3, 4\) or \(3, 4\), got \(9, 12\)"):
        nn.predict(x.reshape(9, 12))


def test_driver_quantize_is_the_emulators_from_float(tmp_path):
    """Every rounding and overflow mode: the driver's numpy quantizer equals the emulator's from_float."""
    from fpga_gen.ir.types import ROUNDING_MODES, SATURATION_MODES

    board = load_board("pynq-z2")
    rng = np.random.default_rng(9)
    values = np.concatenate([rng.uniform(-80, 80, 500), np.arange(-40, 40) * 0.5 ** 7,
                             [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e300]])
    write_board_files(small_graph(), config_for(board), board, tmp_path, reference_predictor(small_graph()))
    drv = _load_driver(tmp_path / "deploy" / "net_driver.py")
    for signed in (True, False):
        for rnd in ROUNDING_MODES:
            for sat in SATURATION_MODES:
                t = FixedType(10, 3, signed, rnd, sat)
                got = drv.quantize(values, t.width, t.frac, t.signed, t.rounding, t.saturation)
                assert np.array_equal(got, from_float(values, t).astype(np.int64)), t


def test_driver_module_is_standalone_python(driver_env):
    """The driver imports nothing from fpga_gen (the board has no fpga-gen installed); the C symbols of its
    CPU fallback (fpga_gen_predict, ...) are not the package."""
    text = (driver_env.root / "deploy" / "net_driver.py").read_text()
    assert not re.search(r"\bfpga_gen\b", re.sub(r'""".*?"""', "", text, flags=re.S))
    assert "fpga_gen_predict" in text
    compile(text, "net_driver.py", "exec")
    # it loads with neither fpga_gen nor pynq importable
    code = ("import sys; sys.modules['fpga_gen'] = sys.modules['pynq'] = None; import importlib.util as u; "
            f"s = u.spec_from_file_location('d', {str(driver_env.root / 'deploy' / 'net_driver.py')!r}); "
            "m = u.module_from_spec(s); s.loader.exec_module(m); print(m.NativeNetwork.__name__)")
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.path.dirname(np.__path__[0])})
    assert r.returncode == 0 and r.stdout == "NativeNetwork\n", r.stderr


# ============================================================================ the whole path from a Keras model
@pytest.mark.slow
@needs_gxx
@needs_tclsh
def test_cli_build_with_board_from_the_digits_model(tmp_path):
    """fpga-gen build --board on the example model: every board file, scripts under the stubs, wrapper PASS."""
    repo = Path(__file__).resolve().parent.parent
    model = repo / "examples" / "digits_mlp.h5"
    if not model.is_file():
        pytest.skip("examples/digits_mlp.h5 is made by `make demo`")
    out = tmp_path / "digits"
    r = subprocess.run([sys.executable, "-m", "fpga_gen.cli", "build", str(model), "--board", "zedboard",
                        "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    graph_name = "digits_mlp"
    for rel in ("Makefile", "README_board.md", "build_axi_ip.tcl", "vivado/build_bitstream.tcl",
                f"deploy/{graph_name}_driver.py", f"firmware/{graph_name}_axi.cpp"):
        assert (out / rel).is_file(), rel
    board = load_board("zedboard")
    vlnv = f"{IP_VENDOR}:hls:{graph_name}_axi:1.0"
    kw = dict(board_parts=["em.avnet.com:zed:part0:1.4"], hls_ip=vlnv, hls_tdata=board.dma_width)
    hls = run_tcl("vitis_hls", out / "build_axi_ip.tcl", **kw)
    viv = run_tcl("vivado", out / "vivado" / "build_bitstream.tcl", **kw)
    assert hls.ok and viv.ok, hls.stderr + viv.stderr
    assert viv.one("create_project").opt("-part") == "xc7z020clg484-1"
    assert (out / "deploy" / f"{graph_name}.bit").is_file() and (out / "deploy" / f"{graph_name}.hwh").is_file()
    exe = out / "axi_tb"
    r = subprocess.run(["g++", "-std=c++14", "-O0", "-I", str(out / "firmware"), "-I", str(out / "firmware" / "ap_types"),
                        "-o", str(exe), str(out / "firmware" / f"{graph_name}.cpp"),
                        str(out / "firmware" / f"{graph_name}_axi.cpp"), str(out / f"{graph_name}_axi_test.cpp")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(exe)], cwd=out, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
