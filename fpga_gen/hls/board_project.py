"""Board packaging: the files a project gets on top of the HLS project when a board is given.

For a graph whose HLS project :func:`fpga_gen.hls.write_project` has written, this adds

``firmware/<top>_axi.h``, ``firmware/<top>_axi.cpp``
    ``<top>_axi``: an AXI4-Stream wrapper around ``<top>`` (the IP the block design uses).
``<top>_axi_test.cpp``, ``tb_data/axi_in.txt``, ``tb_data/axi_expected.txt``
    its testbench with stream words and the words the emulator says must come out.
``build_axi_ip.tcl``
    Vitis HLS: csim, csynth, (cosim,) export of ``<top>_axi`` to an ip_catalog repository.
``vivado/build_bitstream.tcl``
    Vivado: project for the board, block design (processing system, AXI DMA, the HLS IP,
    SmartConnects, clock, reset, address map), bitstream, and ``deploy/<top>.bit`` + ``.hwh``.
``deploy/<top>_driver.py``
    PYNQ driver: ``NeuralNetwork(...).predict(x)``.
``Makefile``, ``README_board.md``
    ``make csim csynth cosim ip bitstream package`` and the steps on the host and the board.

Stream layout (one rule for inputs and outputs, shared by the wrapper, the testbench data
and the driver): each value's raw bits sit in a *lane* of ``lane_bits`` = the smallest of
8, 16, 32, 64 that holds the type's width; ``dma_width // lane_bits`` lanes make one
stream word, value ``i`` of a sample goes to lane ``i % lanes`` (least significant first)
of word ``i // lanes``; every sample starts on a new word and unused lanes of its last
word are zero.  Values are sign-extended (signed types) or zero-extended to the lane, so a
little-endian buffer of lanes is exactly a numpy array of int8/16/32/64 (uint for unsigned
types).  TLAST: the input's TLAST on a sample's last word is copied to the TLAST of that
sample's last output word, so a batch sent as one DMA transfer comes back as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..boards import Board, load_board
from ..config import ProjectConfig
from ..ir.graph import Graph
from ..ir.types import FixedType
from ..templating import render
from .names import Namer
from .writer import io_context, write_files

__all__ = ["write_board_files", "StreamLayout", "BoardProjectError", "board_context", "IP_VENDOR", "IP_LIBRARY",
           "IP_VERSION", "TB_SAMPLES"]

IP_VENDOR = "fpga-gen.org"
IP_LIBRARY = "hls"
IP_VERSION = "1.0"
TB_SAMPLES = 8           # stream test vectors: two DMA packets (5 + 3 samples)
TB_PACKETS = (5, 3)
MAX_TRANSFER_BYTES = (1 << 26) - 1   # AXI DMA with c_sg_length_width = 26


# io type -> the AXI4-Stream wrapper: io_parallel reads a sample into an array and calls the top once;
# io_stream converts words to the top's stream words in a dataflow region
AXIS_WRAPPERS = {"parallel": "hls/axis_wrapper.cpp.j2", "stream": "hls/axis_wrapper_stream.cpp.j2"}


class BoardProjectError(ValueError):
    pass


@dataclass(frozen=True)
class StreamLayout:
    """How ``n_values`` values of ``type`` travel in ``word_bits``-bit stream words."""
    n_values: int
    type: FixedType
    word_bits: int

    @property
    def lane_bits(self) -> int:
        return max(8, 1 << (self.type.width - 1).bit_length())

    @property
    def lanes(self) -> int:
        return self.word_bits // self.lane_bits

    @property
    def words(self) -> int:
        return math.ceil(self.n_values / self.lanes)

    @property
    def padded(self) -> int:
        """Lanes per sample (values plus the unused lanes of the last word)."""
        return self.words * self.lanes

    @property
    def bytes_per_sample(self) -> int:
        return self.words * self.word_bits // 8

    @property
    def numpy_dtype(self) -> str:
        return ("<i" if self.type.signed else "<u") + str(self.lane_bits // 8)

    def check(self, what: str, board_name: str) -> None:
        if self.lane_bits > self.word_bits:
            raise BoardProjectError(
                f"the {what} type {self.type} needs a {self.lane_bits}-bit lane, wider than the {self.word_bits}-bit "
                f"DMA of board {board_name}; narrow the {what} precision to {self.word_bits} bits or less")

    def pack_raw(self, raw) -> list[int]:
        """Raw integers (samples, n_values) -> stream words (Python ints), sample after sample."""
        raw = np.asarray(raw, dtype=np.int64).reshape(-1, self.n_values)
        mask = (1 << self.lane_bits) - 1
        words = []
        for sample in raw:
            for w in range(self.words):
                word = 0
                for lane in range(self.lanes):
                    i = w * self.lanes + lane
                    if i < self.n_values:
                        word |= (int(sample[i]) & mask) << (lane * self.lane_bits)
                words.append(word)
        return words

    def unpack_raw(self, words) -> np.ndarray:
        """Stream words -> raw integers (samples, n_values), reading ``type.width`` bits of each lane."""
        words = list(words)
        if len(words) % self.words:
            raise BoardProjectError(f"{len(words)} words is not a whole number of samples of {self.words} words")
        t = self.type
        out = np.zeros((len(words) // self.words, self.n_values), dtype=np.int64)
        for s in range(out.shape[0]):
            for i in range(self.n_values):
                w, lane = divmod(i, self.lanes)
                v = (words[s * self.words + w] >> (lane * self.lane_bits)) & ((1 << t.width) - 1)
                if t.signed and v >> (t.width - 1):
                    v -= 1 << t.width
                out[s, i] = v
        return out

    def to_dict(self) -> dict:
        t = self.type
        return {"n_values": self.n_values, "type": t.cpp(), "width": t.width, "integer": t.integer,
                "frac": t.frac, "signed": t.signed, "rounding": t.rounding, "saturation": t.saturation,
                "word_bits": self.word_bits, "lane_bits": self.lane_bits, "lanes": self.lanes,
                "words": self.words, "padded": self.padded, "bytes_per_sample": self.bytes_per_sample,
                "numpy_dtype": self.numpy_dtype}


# What differs between the two processing systems; the Vivado template only reads these.
_PS = {
    "ps7": {
        "vlnv": "xilinx.com:ip:processing_system7",
        "cell": "processing_system7_0",
        "rule": "xilinx.com:bd_rule:processing_system7",
        "automation": 'make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"',
        "config": lambda w, mhz: [("PCW_USE_M_AXI_GP0", "1"), ("PCW_USE_S_AXI_HP0", "1"),
                                  ("PCW_S_AXI_HP0_DATA_WIDTH", str(w)), ("PCW_EN_CLK0_PORT", "1"),
                                  ("PCW_EN_RST0_PORT", "1"), ("PCW_FPGA0_PERIPHERAL_FREQMHZ", mhz)],
        "master": "M_AXI_GP0", "master_clk": "M_AXI_GP0_ACLK",
        "slave": "S_AXI_HP0", "slave_clk": "S_AXI_HP0_ACLK",
        "clk": "FCLK_CLK0", "resetn": "FCLK_RESET0_N",
        "addr_width": 32,
    },
    "zynq_ultra_ps_e": {
        "vlnv": "xilinx.com:ip:zynq_ultra_ps_e",
        "cell": "zynq_ultra_ps_e_0",
        "rule": "xilinx.com:bd_rule:zynq_ultra_ps_e",
        "automation": 'apply_board_preset "1"',
        # M_AXI_HPM0_FPD for the DMA registers, S_AXI_HP0_FPD (GP2) for its memory traffic; the
        # other PL ports the board presets switch on are switched off so no clock pin is left open.
        "config": lambda w, mhz: [("PSU__USE__M_AXI_GP0", "1"), ("PSU__USE__M_AXI_GP1", "0"),
                                  ("PSU__USE__M_AXI_GP2", "0"), ("PSU__USE__S_AXI_GP2", "1"),
                                  ("PSU__SAXIGP2__DATA_WIDTH", str(w)), ("PSU__FPGA_PL0_ENABLE", "1"),
                                  ("PSU__NUM_FABRIC_RESETS", "1"),
                                  ("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", mhz)],
        "master": "M_AXI_HPM0_FPD", "master_clk": "maxihpm0_fpd_aclk",
        "slave": "S_AXI_HP0_FPD", "slave_clk": "saxihp0_fpd_aclk",
        "clk": "pl_clk0", "resetn": "pl_resetn0",
        "addr_width": 64,
    },
}


def board_context(graph: Graph, config: ProjectConfig, board) -> dict:
    """Everything the board templates read (also handy for tests)."""
    if not isinstance(board, Board):
        board = load_board(board)
    if config.part != board.part:
        raise BoardProjectError(
            f"{config.source}: part {config.part} differs from the part of board {board.name} ({board.part}); "
            f"remove 'part' from the config or set part: {board.part}")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise BoardProjectError(f"board packaging supports one input and one output, the graph has "
                                f"{len(graph.inputs)} inputs and {len(graph.outputs)} outputs")
    in_node, out_node = graph[graph.inputs[0]], graph[graph.outputs[0]]
    for n in (in_node, out_node):
        if "result" not in n.types:
            raise BoardProjectError(f"layer {n.name!r} has no result type; run precision inference first")
    top = Namer().unique(config.name)          # the same first name the HLS writer gives the top function
    axi_top = f"{top}_axi"
    lin = StreamLayout(in_node.size, in_node.types["result"], board.dma_width)
    lout = StreamLayout(out_node.size, out_node.types["result"], board.dma_width)
    lin.check("input", board.name)
    lout.check("output", board.name)
    ps = dict(_PS[board.processing_system])
    mhz = _mhz(config.clock_period)
    ps["config"] = ps["config"](board.dma_width, mhz)
    hls_project = f"{axi_top}_prj"
    ip_vlnv = f"{IP_VENDOR}:{IP_LIBRARY}:{axi_top}:{IP_VERSION}"
    max_batch = max(1, MAX_TRANSFER_BYTES // max(lin.bytes_per_sample, lout.bytes_per_sample))
    return {
        "version": __version__,
        "name": config.name, "top": top, "axi_top": axi_top, "graph_name": graph.name,
        "board": board, "ps": ps, "part": board.part, "clock_period": _number(config.clock_period),
        "clock_mhz": mhz, "dma_width": board.dma_width, "addr_width": ps["addr_width"],
        "input_shape": tuple(int(d) for d in in_node.shape), "output_shape": tuple(int(d) for d in out_node.shape),
        "input_shape_text": _shape_text(in_node.shape), "output_shape_text": _shape_text(out_node.shape),
        "input_node": in_node.name, "output_node": out_node.name,
        "lin": lin, "lout": lout, "lin_d": lin.to_dict(), "lout_d": lout.to_dict(),
        "input_type": lin.type.cpp(), "output_type": lout.type.cpp(),
        "hls_project": hls_project, "ip_dir": f"{hls_project}/solution1/impl/ip",
        "ip_vendor": IP_VENDOR, "ip_library": IP_LIBRARY, "ip_version": IP_VERSION, "ip_vlnv": ip_vlnv,
        "ip_cell": f"{axi_top}_0", "bd_name": "system", "vivado_project": f"{top}_{board.name.replace('-', '_')}",
        "deploy_base": top, "driver_module": f"{top}_driver", "max_batch": max_batch, "native_dir": f"{top}_native",
        "max_transfer_bytes": MAX_TRANSFER_BYTES, "tb_packets": TB_PACKETS,
        **io_context(graph, config),
    }


def write_board_files(graph: Graph, config: ProjectConfig, board, out_dir, predict=None) -> list[Path]:
    """Write the board files of ``graph`` into ``out_dir`` (an HLS project folder); return the files written.

    ``board``: a :class:`fpga_gen.boards.Board`, a board name or a board YAML path.  ``predict``: ``x -> outputs``
    of the graph, or a string saying why there are none (:func:`fpga_gen.emulate.reference_predictor`): the stream
    testbench's expected words; without it the testbench only checks that every sample comes back.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise BoardProjectError(f"{out}: output folder does not exist")
    ctx = board_context(graph, config, board)
    top = ctx["top"]
    files = {
        f"firmware/{top}_axi.h": render("hls/axis_wrapper.h.j2", **ctx),
        f"firmware/{top}_axi.cpp": render(AXIS_WRAPPERS[ctx["io_type"]], **ctx),
        f"{top}_axi_test.cpp": render("hls/axis_test.cpp.j2", **ctx),
        "build_axi_ip.tcl": render("board/build_axi_ip.tcl.j2", **ctx),
        "vivado/build_bitstream.tcl": render("vivado/build_bitstream.tcl.j2", **ctx),
        f"deploy/{ctx['driver_module']}.py": render("pynq/driver.py.j2", **ctx),
        "Makefile": render("board/Makefile.j2", **ctx),
        "README_board.md": render("board/README.md.j2", **ctx),
    }
    files.update(_tb_files(ctx, predict))
    return write_files(out, files)


def _tb_files(ctx: dict, predict) -> dict[str, str]:
    """Deterministic stream test vectors: raw inputs over the whole input range, outputs from ``predict``."""
    lin, lout = ctx["lin"], ctx["lout"]
    t = lin.type
    rng = np.random.default_rng(20261125)
    raw_in = rng.integers(t.raw_min, t.raw_max, size=(TB_SAMPLES, lin.n_values), endpoint=True)
    raw_in[0] = t.raw_min
    raw_in[1] = t.raw_max
    x = (raw_in.astype(np.float64) * 2.0 ** -t.frac).reshape((TB_SAMPLES,) + ctx["input_shape"])
    y = predict(x) if predict is not None else "no predictor given"
    if isinstance(y, str):
        # the testbench then only checks that every sample comes back, with the right TLAST
        note = f"# no expected words: the emulator cannot run this graph ({y})\n"
        return {"tb_data/axi_in.txt": _words_text(lin, lin.pack_raw(raw_in)), "tb_data/axi_expected.txt": note}
    raw_out = np.rint(np.asarray(y, dtype=np.float64).reshape(TB_SAMPLES, -1) * 2.0 ** lout.type.frac)
    return {"tb_data/axi_in.txt": _words_text(lin, lin.pack_raw(raw_in)),
            "tb_data/axi_expected.txt": _words_text(lout, lout.pack_raw(raw_out.astype(np.int64)))}


def _words_text(layout: StreamLayout, words: list[int]) -> str:
    """One stream word a line: hex data (most significant digit first) and TLAST (0/1)."""
    lines = []
    digits = layout.word_bits // 4
    last_words = set()
    end = 0
    for n in TB_PACKETS:
        end += n
        last_words.add(end * layout.words - 1)
    for k, w in enumerate(words):
        lines.append(f"{w:0{digits}x} {1 if k in last_words else 0}\n")
    return "".join(lines)


def _shape_text(shape) -> str:
    """A shape as Python writes it: (10,) or (4, 4)."""
    dims = [str(int(d)) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _mhz(period) -> str:
    mhz = 1000.0 / float(period)
    return _number(round(mhz, 6))


def _number(v) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)
