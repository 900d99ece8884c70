"""Resources of distributed-arithmetic layers measured by synthesis: da4ml's Verilog, yosys ``synth_xilinx``.

:func:`write_verilog` writes a layer's adder graph as Verilog with da4ml's RTL writer (combinational, or pipelined
with a register every ``latency_cutoff`` adder levels).  :func:`synth_layer` runs yosys on it,
``synth_xilinx -family xc7|xcup -flatten -noiopad`` for the part's family, and :func:`parse_stat` reads the cell
counts of its ``stat`` into LUT (LUT1..LUT6 and INV, which Vivado maps to a LUT1), FF (FD*), CARRY (CARRY4 on
7-series, CARRY8 on UltraScale+), DSP (DSP48E1/E2) and MUX (MUXF7/F8).

yosys is not Vivado: yosys maps each adder bit to a LUT2 in front of the carry chain and does not pack LUTs or
retime, Vivado packs two LUT5s into one LUT6 site and optimises across the adders, so on adder trees Vivado's LUT
count is usually lower (docs/distributed_arithmetic.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["SynthError", "yosys_family", "write_verilog", "parse_stat", "synth_verilog", "synth_layer",
           "YOSYS_PACKAGE"]

YOSYS_PACKAGE = "yosys"
#: the RTL building blocks da4ml's Verilog instantiates (src/static/); lookup_table.v is read only for tables
_STATIC = ("shift_adder.v", "negative.v", "mux.v", "binop.v", "multiplier.v")


class SynthError(RuntimeError):
    pass


def yosys_family(part: str) -> str:
    """synth_xilinx's -family for a Xilinx part: xc7 (7-series, Zynq-7000) or xcup (UltraScale+, Zynq MPSoC)."""
    p = part.lower()
    if p.startswith(("xc7", "xa7", "xq7")):
        return "xc7"
    if p.startswith(("xczu", "xcvu", "xcku", "xcau", "xck26", "xcvp")):
        return "xcup"
    raise SynthError(f"part {part!r}: yosys synth_xilinx has no family for it; fpga-gen synthesizes for "
                     f"7-series (xc7*) and UltraScale+ (xczu*, xcvu*, xcku*) parts")


def write_verilog(comb, name: str, out_dir, latency_cutoff: float = -1) -> tuple[list[Path], str]:
    """da4ml's Verilog of an adder graph under ``out_dir``; returns (the files to read, the top module)."""
    from da4ml.codegen import VerilogModel
    out = Path(out_dir)
    VerilogModel(comb, name, out, latency_cutoff=latency_cutoff, print_latency=False).write()
    src = out / "src"
    files = sorted(p for p in src.glob("*.v") if not p.name.endswith("_wrapper.v"))
    files += [src / "static" / f for f in _STATIC]
    return files, name


def parse_stat(text: str) -> dict:
    """Cell counts of yosys' ``stat`` text (the last module listed, or the design total)."""
    cells: dict[str, int] = {}
    block = text.rsplit("=== ", 1)[-1]
    for m in re.finditer(r"^\s+([A-Za-z_$][\w$]*)\s+(\d+)\s*$", block, re.M):
        cells[m.group(1)] = int(m.group(2))
    if not cells and "Number of cells" not in text:
        raise SynthError("yosys printed no cell statistics")

    def total(pred):
        return sum(v for k, v in cells.items() if pred(k))
    return {"LUT": total(lambda k: re.fullmatch(r"LUT[1-6]|INV", k) is not None),
            "FF": total(lambda k: k.startswith("FD")),
            "CARRY": total(lambda k: k.startswith("CARRY")),
            "DSP": total(lambda k: k.startswith("DSP48")),
            "MUX": total(lambda k: k.startswith("MUXF")),
            "cells": dict(sorted(cells.items()))}


def synth_verilog(files, top: str, family: str, timeout: float = 1800) -> dict:
    """yosys ``synth_xilinx`` of the Verilog ``files`` with top module ``top``; the parsed stat."""
    yosys = shutil.which("yosys")
    if yosys is None:
        raise SynthError(f"yosys is not installed: apt-get install {YOSYS_PACKAGE} (Debian/Ubuntu)")
    with tempfile.TemporaryDirectory(prefix="fpga_gen_yosys_") as tmp:
        stat = Path(tmp) / "stat.txt"
        script = (f"read_verilog {' '.join(str(f) for f in files)}; "
                  f"synth_xilinx -family {family} -top {top} -flatten -noiopad; tee -q -o {stat} stat")
        try:
            r = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SynthError(f"yosys did not finish {top} within {timeout:g} s") from None
        if r.returncode != 0 or not stat.is_file():
            last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SynthError(f"yosys failed on {top}: {last[0]}")
        return parse_stat(stat.read_text())


def synth_layer(comb, name: str, part: str, latency_cutoff: float = -1) -> dict:
    """Write one adder graph's Verilog to a temporary folder and synthesize it for ``part``'s family."""
    family = yosys_family(part)
    name = re.sub(r"\W", "_", name)
    name = name if re.match(r"[A-Za-z_]", name) else f"m_{name}"       # a Verilog identifier
    with tempfile.TemporaryDirectory(prefix="fpga_gen_da_rtl_") as tmp:
        files, top = write_verilog(comb, name, tmp, latency_cutoff)
        res = synth_verilog(files, top, family)
    res["family"] = family
    return res
