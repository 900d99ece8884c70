"""Boards: ``boards/<name>.yaml`` (or a user's own YAML file) -> :class:`Board`.

A board file is data only::

    name: pynq-z2                              # lower-case, letters, digits, '-', '_'
    description: TUL PYNQ-Z2 (Zynq-7000 XC7Z020, 512 MB DDR3)        # optional
    part: xc7z020clg400-1                      # the FPGA part Vivado / Vitis HLS target
    board_part: tul.com.tw:pynq-z2:part0:1.0   # Vivado board part (vendor:board:part0:version)
    board_part_alternatives: []                # optional: names other Vivado releases use for it
    processing_system: ps7                     # ps7 (Zynq-7000) | zynq_ultra_ps_e (Zynq UltraScale+)
    clock_period: 10.0                         # ns: the default fabric clock (FCLK_CLK0 / pl_clk0)
    dma_width: 64                              # AXI DMA stream and memory width in bits
    resources: {LUT: 53200, FF: 106400, BRAM_18K: 280, DSP: 220, URAM: 0}
    board_files: where to get the board files  # optional, shown in errors and the README

``load_board('pynq-z2')`` reads a shipped board; ``load_board('path/to/my_board.yaml')`` a
user's own.  Every problem is reported on one line naming the file, the field and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .data_paths import boards_dir

__all__ = ["Board", "BoardError", "load_board", "list_boards", "board_from_dict", "PROCESSING_SYSTEMS",
           "RESOURCE_KINDS"]

PROCESSING_SYSTEMS = ("ps7", "zynq_ultra_ps_e")
RESOURCE_KINDS = ("LUT", "FF", "BRAM_18K", "DSP", "URAM")
REQUIRED_RESOURCES = ("LUT", "FF", "BRAM_18K", "DSP")
DMA_WIDTHS = (32, 64, 128, 256, 512, 1024)
# the widest AXI slave port of the processing system the DMA writes through (S_AXI_HP0 / S_AXI_HP0_FPD)
MAX_DMA_WIDTH = {"ps7": 64, "zynq_ultra_ps_e": 128}

_REQUIRED = ("name", "part", "board_part", "processing_system", "clock_period", "dma_width", "resources")
_OPTIONAL = ("description", "board_part_alternatives", "board_files")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PART_RE = re.compile(r"^x[a-z0-9]+-?[a-z0-9-]+$", re.IGNORECASE)
_BOARD_PART_RE = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+:[0-9][0-9.]*$")


class BoardError(ValueError):
    pass


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    board_part: str
    processing_system: str
    clock_period: float
    dma_width: int
    resources: dict = field(default_factory=dict, hash=False)
    description: str = ""
    board_part_alternatives: tuple[str, ...] = ()
    board_files: str = ""
    source: str = "<dict>"

    @property
    def is_zynq_mpsoc(self) -> bool:
        return self.processing_system == "zynq_ultra_ps_e"

    @property
    def clock_mhz(self) -> float:
        return 1000.0 / self.clock_period

    @property
    def board_part_candidates(self) -> tuple[str, ...]:
        """The board part first, then the alternatives (the Vivado script takes the first one installed)."""
        return (self.board_part,) + tuple(self.board_part_alternatives)

    def to_dict(self) -> dict:
        d = {"name": self.name, "description": self.description, "part": self.part, "board_part": self.board_part,
             "board_part_alternatives": list(self.board_part_alternatives),
             "processing_system": self.processing_system, "clock_period": self.clock_period,
             "dma_width": self.dma_width, "resources": dict(self.resources), "board_files": self.board_files}
        return d


def list_boards() -> list[str]:
    """Names of the boards shipped with fpga-gen, sorted."""
    return sorted(p.stem for p in _shipped_dir().glob("*.yaml"))


def load_board(name_or_path: str | Path) -> Board:
    """A shipped board by name ('pynq-z2') or a user's board YAML file by path."""
    text = str(name_or_path)
    p = Path(text)
    looks_like_path = text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text
    if looks_like_path:
        if not p.is_file():
            raise BoardError(f"{p}: board file not found; give one of the known boards "
                             f"({', '.join(list_boards())}) or the path of an existing board YAML file")
        return _load_file(p)
    shipped = _shipped_dir() / f"{text}.yaml"
    if not shipped.is_file():
        raise BoardError(f"unknown board {text!r}; known boards: {', '.join(list_boards())} "
                         f"(or give the path of your own board YAML file)")
    return _load_file(shipped)


def _shipped_dir() -> Path:
    return boards_dir()


def _load_file(p: Path) -> Board:
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise BoardError(f"{p}: {where}invalid YAML ({getattr(e, 'problem', None) or e})") from None
    board = board_from_dict(data, str(p))
    if p.parent.resolve() == _shipped_dir().resolve() and board.name != p.stem:
        raise BoardError(f"{p}: name: {board.name!r} differs from the file name; set name: {p.stem}")
    return board


def board_from_dict(data, source: str = "<dict>") -> Board:
    """Validate a board mapping; every error is one line naming ``source``, the field and the fix."""
    if not isinstance(data, dict):
        raise BoardError(f"{source}: a board file must be a YAML mapping with the fields {', '.join(_REQUIRED)}")
    for k in data:
        if k not in _REQUIRED + _OPTIONAL:
            raise BoardError(f"{source}: unknown field {k!r}; allowed fields: {', '.join(_REQUIRED + _OPTIONAL)}")
    for k in _REQUIRED:
        if k not in data or data[k] is None:
            raise BoardError(f"{source}: missing field {k!r}; add it, e.g. {k}: {_EXAMPLES[k]}")

    name = data["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BoardError(f"{source}: name must be lower-case letters, digits, '-' or '_', got {name!r}; "
                         f"e.g. name: my-board")
    part = data["part"]
    if not isinstance(part, str) or not _PART_RE.match(part):
        raise BoardError(f"{source}: part must be an AMD part name such as xc7z020clg400-1, got {part!r}")
    candidates = [data["board_part"]] + list(_as_list(data.get("board_part_alternatives"), source,
                                                      "board_part_alternatives"))
    for i, bp in enumerate(candidates):
        what = "board_part" if i == 0 else f"board_part_alternatives[{i - 1}]"
        if not isinstance(bp, str) or not _BOARD_PART_RE.match(bp):
            raise BoardError(f"{source}: {what} must be vendor:board:part0:version such as "
                             f"tul.com.tw:pynq-z2:part0:1.0, got {bp!r}")
    ps = data["processing_system"]
    if ps not in PROCESSING_SYSTEMS:
        raise BoardError(f"{source}: processing_system must be one of {', '.join(PROCESSING_SYSTEMS)} "
                         f"(ps7 for Zynq-7000, zynq_ultra_ps_e for Zynq UltraScale+), got {ps!r}")
    period = data["clock_period"]
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not 1.0 <= period <= 100.0:
        raise BoardError(f"{source}: clock_period must be the fabric clock period in ns between 1 and 100, "
                         f"got {period!r}; e.g. clock_period: 10.0 for 100 MHz")
    width = data["dma_width"]
    if isinstance(width, bool) or width not in DMA_WIDTHS:
        raise BoardError(f"{source}: dma_width must be one of {', '.join(map(str, DMA_WIDTHS))} bits, got {width!r}")
    if width > MAX_DMA_WIDTH[ps]:
        raise BoardError(f"{source}: dma_width {width} is wider than the {MAX_DMA_WIDTH[ps]}-bit high-performance "
                         f"port of {ps}; use dma_width: {MAX_DMA_WIDTH[ps]} or less")
    res = data["resources"]
    if not isinstance(res, dict):
        raise BoardError(f"{source}: resources must be a mapping such as {_EXAMPLES['resources']}")
    for k in res:
        if k not in RESOURCE_KINDS:
            raise BoardError(f"{source}: resources: unknown resource {k!r}; allowed: {', '.join(RESOURCE_KINDS)}")
    for k in REQUIRED_RESOURCES:
        if k not in res:
            raise BoardError(f"{source}: resources: missing {k!r}; add the device total from the AMD data sheet, "
                             f"e.g. {k}: {_EXAMPLE_RESOURCES[k]}")
    resources = {}
    for k in RESOURCE_KINDS:
        v = res.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (k in REQUIRED_RESOURCES and v == 0):
            raise BoardError(f"{source}: resources.{k} must be a positive whole number, got {v!r}")
        resources[k] = v
    for k in ("description", "board_files"):
        if k in data and not isinstance(data[k], str):
            raise BoardError(f"{source}: {k} must be a string, got {data[k]!r}")
    return Board(name=name, part=part, board_part=data["board_part"], processing_system=ps,
                 clock_period=float(period), dma_width=int(width), resources=resources,
                 description=data.get("description") or "", board_part_alternatives=tuple(candidates[1:]),
                 board_files=(data.get("board_files") or "").strip(), source=source)


def _as_list(v, source: str, key: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise BoardError(f"{source}: {key} must be a list of board parts, e.g. [digilentinc.com:zedboard:part0:1.0]")
    return v


_EXAMPLE_RESOURCES = {"LUT": 53200, "FF": 106400, "BRAM_18K": 280, "DSP": 220}
_EXAMPLES = {
    "name": "my-board",
    "part": "xc7z020clg400-1",
    "board_part": "tul.com.tw:pynq-z2:part0:1.0",
    "processing_system": "ps7",
    "clock_period": "10.0",
    "dma_width": "64",
    "resources": "{LUT: 53200, FF: 106400, BRAM_18K: 280, DSP: 220, URAM: 0}",
}
