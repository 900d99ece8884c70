"""Run a generated Tcl script under tclsh with the Vivado / Vitis HLS stubs and read back the calls."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "run.tcl"
FAKE_VITIS_HLS = HERE / "fake_vitis_hls"
FAKE_VIVADO = HERE / "fake_vivado"


@dataclass
class Call:
    cmd: str
    args: list

    def opt(self, name: str):
        """The value after option ``name`` (None when absent)."""
        if name in self.args:
            i = self.args.index(name)
            return self.args[i + 1] if i + 1 < len(self.args) else None
        return None

    def prop_dict(self) -> dict:
        """set_property -dict {CONFIG.a v ...} obj  ->  {CONFIG.a: v}  (values are plain words here)."""
        assert self.cmd == "set_property" and self.args[0] == "-dict", self
        words = self.args[1].split()
        return dict(zip(words[0::2], words[1::2]))


@dataclass
class TclRun:
    returncode: int
    stdout: str
    stderr: str
    calls: list

    def named(self, cmd: str) -> list:
        return [c for c in self.calls if c.cmd == cmd]

    def one(self, cmd: str) -> Call:
        found = self.named(cmd)
        assert len(found) == 1, f"expected one {cmd} call, got {len(found)}: {found}"
        return found[0]

    def index(self, cmd: str) -> int:
        return [c.cmd for c in self.calls].index(cmd)

    @property
    def ok(self) -> bool:
        return (self.returncode == 0 and not self.named("__unknown__") and not self.named("__error__")
                and not self.named("__tcl_error__"))


def stub_env(log: Path, board_parts=(), hls_ip: str = "", hls_tdata: int = 0) -> dict:
    env = dict(os.environ)
    env.update({
        "FPGA_GEN_STUB_LOG": str(log),
        "FPGA_GEN_STUB_BOARD_PARTS": " ".join(board_parts),
        "FPGA_GEN_STUB_HLS_IP": hls_ip,
        "FPGA_GEN_STUB_HLS_TDATA": str(hls_tdata),
    })
    return env


def read_log(log: Path) -> list:
    if not log.exists():
        return []
    return [Call(**json.loads(line)) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_tcl(tool: str, script: Path, args=(), cwd: Path | None = None, **env_kw) -> TclRun:
    """``tool``: 'vivado' or 'vitis_hls'."""
    tclsh = shutil.which("tclsh")
    assert tclsh, "tclsh is needed for the Tcl script tests"
    script = Path(script)
    log = script.parent / f".stub_{tool}.jsonl"
    if log.exists():
        log.unlink()
    env = stub_env(log, **env_kw)
    env["FPGA_GEN_STUB_TOOL"] = tool
    p = subprocess.run([tclsh, str(RUNNER), str(script), *args], cwd=cwd or script.parent, env=env,
                       capture_output=True, text=True, timeout=120)
    return TclRun(p.returncode, p.stdout, p.stderr, read_log(log))
