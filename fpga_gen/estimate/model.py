"""Walk the graph, cost each node with its registered model, and sum up the dataflow."""

from __future__ import annotations

import json
import math

from ..boards import load_board
from ..ir.reuse import DEFAULT_REUSE_FACTOR, DEFAULT_STRATEGY, layer_first
from .constants import DEFAULT, Constants
from .layers import ESTIMATORS, Context, UnsupportedOp, rom_cost
from .parts import device_resources, part_family
from .accuracy import error_band

__all__ = ["Estimate", "estimate", "EstimateError", "RESOURCES", "TOOLS", "tool_family"]

RESOURCES = ("DSP", "LUT", "FF", "BRAM_18K", "URAM")
LAYER_KEYS = ("name", "op") + RESOURCES + ("latency_cycles", "ii_cycles")


class EstimateError(ValueError):
    pass


class Estimate:
    """Per-layer and total resources / latency of a graph on one part at one clock."""

    def __init__(self, layers: list[dict], total: dict, part: str, family: str, io_type: str,
                 board: str | None = None, available: dict | None = None):
        self.layers = layers
        self.total = total
        self.part = part
        self.family = family
        self.io_type = io_type
        self.board = board
        self.available = available

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        d = {"part": self.part, "family": self.family, "board": self.board, "io_type": self.io_type,
             "tool": getattr(self, "tool", "vitis"), "layers": self.layers, "total": self.total,
             "error_band": self.error_band()}
        if self.available:
            d["available"] = self.available
            d["utilization_pct"] = self.utilization(self.available)
        return d

    def to_json(self) -> dict:
        """The report.json content: a JSON-ready dict (``json.dumps(est.to_json())``)."""
        return self.to_dict()

    def to_json_text(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True) + "\n"

    def error_band(self) -> dict | None:
        """The measured error of estimates like this one (:mod:`fpga_gen.estimate.accuracy`): median and 90th
        percentile |error| %, leave-one-source-out, with the group, records and sources it comes from."""
        return error_band(getattr(self, "tool", "vitis"), self.family, self.io_type)

    def band_text(self) -> str:
        b = self.error_band()
        if not b:
            return "No accuracy table: error band unknown."
        cells = []
        for m in ("DSP", "LUT", "FF", "BRAM_18K", "latency"):
            if m in b:
                cells.append(f"{m} {b[m]['median']:g} % (90 %: {b[m]['p90']:g} %)")
        return (f"Expected |error| vs csynth, median (90th percentile), measured leave-one-source-out on "
                f"{b['n']} hls4ml projects from {b['sources']} repositories ({b['group']}): " + ", ".join(cells)
                + (f"; II exact on {b['II_exact_pct']:g} %" if b.get("II_exact_pct") is not None else "") + ".")

    def utilization(self, available: dict) -> dict:
        out = {}
        for r in RESOURCES:
            av = available.get(r)
            if av:
                out[r] = round(100.0 * self.total[r] / av, 1)
        return out

    def to_markdown(self, available: dict | None = None) -> str:
        available = available or self.available
        head = ["layer", "op", "DSP", "LUT", "FF", "BRAM_18K", "URAM", "latency (cycles)", "II (cycles)"]
        lines = [f"# Resource and latency estimate", "",
                 f"Part `{self.part}` ({self.family})" + (f", board `{self.board}`" if self.board else "")
                 + f", io_{self.io_type}, clock {self.total['clock_period_ns']:g} ns.", "",
                 "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 7) + "|"]
        for L in self.layers:
            lines.append("| " + " | ".join([L["name"], L["op"]] + [_fmt(L[k]) for k in LAYER_KEYS[2:]]) + " |")
        T = self.total
        lines.append("| **total** | | " + " | ".join(f"**{_fmt(T[k])}**" for k in LAYER_KEYS[2:]) + " |")
        if available:
            util = self.utilization(available)
            lines.append("| available | | " + " | ".join(_fmt(available.get(r, "")) for r in RESOURCES) + " | | |")
            lines.append("| utilisation | | " + " | ".join(f"{util[r]:g} %" if r in util else "" for r in RESOURCES)
                         + " | | |")
        lat_ns = T["latency_cycles"] * T["clock_period_ns"]
        lines += ["", f"Latency {T['latency_cycles']} cycles = {lat_ns:g} ns; initiation interval "
                  f"{T['ii_cycles']} cycles ({1e3 / (T['ii_cycles'] * T['clock_period_ns']):.3g} M inferences/s).",
                  "", f"Analytic estimate of {'Vivado' if getattr(self, 'tool', 'vitis') == 'vivado' else 'Vitis'} "
                  "HLS C synthesis (not post-implementation); see docs/estimator.md for the model.", "",
                  self.band_text()]
        over = [r for r, u in (self.utilization(available).items() if available else []) if u > 100]
        if over:
            lines.append(f"\n**Warning:** exceeds the device in {', '.join(over)}.")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        T = self.total
        return (f"Estimate(part={self.part!r}, DSP={T['DSP']}, LUT={T['LUT']}, FF={T['FF']}, "
                f"BRAM_18K={T['BRAM_18K']}, latency={T['latency_cycles']}, II={T['ii_cycles']})")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def estimate(graph, config=None, part: str | None = None, board: str | None = None, *,
             clock_period: float | None = None, constants: Constants = DEFAULT,
             available: dict | None = None, board_part: str | None = None, tool: str | None = None) -> Estimate:
    """Estimate resources and latency of ``graph`` built with ``config`` (a :class:`ProjectConfig`).

    ``part`` overrides the config's part; ``board`` names a board (its part must be given by ``board_part`` or
    be resolvable through ``fpga_gen.boards`` if that module exists).  ``available`` (resource -> count)
    enables utilisation percentages; for known devices it is filled in from the part.
    """
    io_type = getattr(config, "io_type", "parallel") if config is not None else "parallel"
    default_strategy = getattr(config, "strategy", DEFAULT_STRATEGY) if config is not None else DEFAULT_STRATEGY
    default_rf = int(getattr(config, "reuse_factor", DEFAULT_REUSE_FACTOR)) if config is not None else DEFAULT_REUSE_FACTOR
    default_mult_impl = getattr(config, "mult_impl", "auto") if config is not None else "auto"
    period = float(clock_period or (getattr(config, "clock_period", None) if config is not None else None) or 10.0)
    board = board or (getattr(config, "board", None) if config is not None else None)
    if board is not None and (part is None or available is None):
        b_part, b_res = _board(board) if board_part is None else (board_part, None)
        part = part or b_part
        if available is None and b_res and part == b_part:
            available = dict(b_res)
    if part is None:
        part = getattr(config, "part", None) if config is not None else None
    if part is None:
        raise EstimateError("no part: give part=..., board=... or a config with a part")
    family = part_family(part)
    if available is None:
        available = device_resources(part)
    tool = tool_family(tool or getattr(config, "tool", None))
    c = constants.resolved(family, tool)
    t_eff = period * (1.0 - c.clock_uncertainty)
    layer_cfg = getattr(config, "layers", None) or {}

    layers = []
    tot = {r: 0.0 for r in RESOURCES}
    lat = 0.0
    ii = 1.0
    n_stages = 0
    dataflow = io_type == "stream"
    # FIFOs / dataflow channels between the layers: one extra row, so that per-layer rows stay comparable with
    # per-function csynth reports and rows still add up to the totals
    glue = {r: 0 for r in RESOURCES}
    nodes = graph.nodes
    types_by_name = {n.name: n.types.get("result") for n in nodes}
    shapes_by_name = {n.name: tuple(n.shape) for n in nodes}
    readers: dict = {}
    for node in nodes:
        for i in node.inputs:
            readers[i] = readers.get(i, 0) + 1
    for node in nodes:
        if io_type == "stream" and readers.get(node.name, 0) > 1:
            # a tensor read by k layers: a clone process copies it into k FIFOs as deep as the first (hls4ml's
            # clone_stream; the writer's io_stream branches) [reasoned: k times the FIFO model, the copy is wiring]
            f_bram, f_lut, f_ff = _fifo_cost(c, node)
            k = readers[node.name]
            glue["BRAM_18K"] += k * f_bram
            glue["LUT"] += k * f_lut
            glue["FF"] += k * f_ff
        fn = ESTIMATORS.get(node.op)
        if fn is None:
            raise EstimateError(f"node {node.name!r}: op {node.op!r} has no estimator "
                                f"(known: {', '.join(sorted(ESTIMATORS))})")
        lc = layer_cfg.get(node.name) or {}
        strategy = layer_first(lc.get("strategy"), node.attrs.get("strategy"), default=default_strategy)
        rf = int(layer_first(lc.get("reuse_factor"), node.attrs.get("reuse_factor"), default=default_rf))
        in_type = types_by_name.get(node.inputs[0]) if node.inputs else node.types.get("result")
        in_shape = shapes_by_name.get(node.inputs[0], ()) if node.inputs else node.shape
        mult_impl = layer_first(lc.get("mult_impl"), node.attrs.get("mult_impl"), default=default_mult_impl)
        ctx = Context(family, c, period, t_eff, io_type, strategy, rf, in_type, graph, in_shape, mult_impl)
        try:
            cost = fn(node, ctx)
        except UnsupportedOp as e:
            raise EstimateError(f"node {node.name!r} ({node.op}): {e.args[0]}") from None
        except (KeyError, ValueError, TypeError) as e:
            raise EstimateError(f"node {node.name!r} ({node.op}): cannot estimate: {e!r}") from e
        if node.op == "input":
            continue
        if io_type == "stream" and node.op in _STREAM_KERNELS:
            # the io_stream wrappers around a dense/conv kernel (word unpacking, window buffers, the per-pixel
            # loop's control) cost in proportion to the kernel [fit: io_stream LUT/FF were under-estimated on 11
            # of 14 sources, dense_array/conv_*_cl wrappers of Vivado HLS 2019-2020]
            k = c.stream_kernel_lut_factor.get(strategy, 1.0) if isinstance(c.stream_kernel_lut_factor, dict) \
                else c.stream_kernel_lut_factor
            cost.LUT *= k
            cost.FF *= c.stream_kernel_ff_factor
        if strategy == "resource" and node.op in ("dense", "conv2d") and rf > 1:
            dataflow = True
        row = {"name": node.name, "op": node.op,
               "DSP": int(math.ceil(cost.DSP)), "LUT": int(math.ceil(cost.LUT)), "FF": int(math.ceil(cost.FF)),
               "BRAM_18K": int(math.ceil(cost.BRAM_18K)), "URAM": int(math.ceil(cost.URAM)),
               "latency_cycles": int(math.ceil(cost.latency_cycles)), "ii_cycles": int(math.ceil(cost.ii_cycles))}
        if cost.notes:
            row["notes"] = list(cost.notes)
        if io_type == "stream" and node.name not in graph.outputs:
            f_bram, f_lut, f_ff = _fifo_cost(c, node)
            glue["BRAM_18K"] += f_bram
            glue["LUT"] += f_lut
            glue["FF"] += f_ff
        layers.append(row)
        for r in RESOURCES:
            tot[r] += row[r]
        lat += row["latency_cycles"]
        ii = max(ii, row["ii_cycles"])
        n_stages += 1
    if dataflow and io_type == "parallel" and c.dataflow_channel_ff_per_bit:
        # io_parallel dataflow (Resource strategy): each layer's output array becomes a channel between processes
        for row in layers:
            if row["name"] in graph.outputs:
                continue
            node = graph[row["name"]]
            glue["FF"] += int(math.ceil(node.size * node.types["result"].width * c.dataflow_channel_ff_per_bit))
    n_layers = len(layers)
    if any(glue.values()):
        layers.append({"name": "(dataflow channels)", "op": "dataflow", **glue, "latency_cycles": 0, "ii_cycles": 1,
                       "notes": ["FIFOs (io_stream) or ping-pong channels (io_parallel dataflow) between layers"]})
        for r in RESOURCES:
            tot[r] += glue[r]
    out_bits = 0
    if io_type == "parallel" and c.ff_top_per_bit:
        # io_parallel: the layers' output arrays are registered in the top function between the inlined layers
        # (the pipeline's stage registers), outside every per-layer report [fit, constants.ff_top_per_bit]
        out_bits = sum(graph[L["name"]].size * graph[L["name"]].types["result"].width for L in layers[:n_layers]
                       if L["name"] not in graph.outputs)
    if (c.ff_top or out_bits) and n_layers:
        # the top function's own registers, outside every layer (I/O, pipeline control): a row of its own, so the
        # layer rows stay comparable with per-function reports [fit, constants.ff_top]
        top = {r: 0 for r in RESOURCES}
        top["FF"] = int(round(c.ff_top + c.ff_top_per_bit * out_bits))
        layers.append({"name": "(top level)", "op": "top", **top, "latency_cycles": 0, "ii_cycles": 1,
                       "notes": ["registers of the top function outside every layer"]})
        tot["FF"] += top["FF"]
    if io_type == "stream" and n_layers:
        # streaming dataflow: the layers overlap; the slowest one sets the pace and every other one only adds its
        # pipeline fill (latency - II + 1) [fit: pominiq MNIST stream 794 cycles = conv 787 + 7]
        real = layers[:n_layers]
        lats = [L["latency_cycles"] for L in real]
        k = max(range(len(lats)), key=lats.__getitem__)
        fill = sum(max(1, L["latency_cycles"] - L["ii_cycles"] + 1) for i, L in enumerate(real) if i != k)
        latency = int(math.ceil(lats[k] + fill + c.top_overhead_cycles))
    else:
        per_stage = c.dataflow_stage_cycles if dataflow else c.stage_overhead_cycles
        # parallel branches overlap: the latency is the longest path (on a single path: every layer's sum)
        row_lat = {L["name"]: L["latency_cycles"] + per_stage for L in layers[:n_layers]}
        done: dict = {}
        for node in nodes:
            start = max((done.get(i, 0.0) for i in node.inputs), default=0.0)
            done[node.name] = start + row_lat.get(node.name, 0.0)
        path = max((done.get(o, 0.0) for o in graph.outputs), default=0.0)
        latency = int(math.ceil(path + c.top_overhead_cycles))
    total = {r: int(tot[r]) for r in RESOURCES}
    total.update({"latency_cycles": latency, "ii_cycles": int(ii), "clock_period_ns": period})
    est = Estimate(layers, total, part, family, io_type, board, available)
    est.tool = tool
    return est


#: ``--tool`` values: a family and, optionally, the version the calibration reports came from
TOOLS = ("vitis", "vivado")


def tool_family(tool: str | None) -> str:
    """'vitis-2024.1' -> 'vitis', 'vivado-2020.1' / 'vivado_hls' -> 'vivado'; None -> 'vitis' (the flow fpga-gen
    writes)."""
    if not tool:
        return "vitis"
    t = str(tool).strip().lower()
    for fam in TOOLS:
        if t.startswith(fam):
            return fam
    raise EstimateError(f"unknown tool {tool!r}; give vitis[-VERSION] (Vitis HLS, the default) or "
                        f"vivado[-VERSION] (Vivado HLS 2019-2020)")


_STREAM_KERNELS = ("dense", "conv1d", "conv2d", "depthwise_conv2d")


def _fifo_cost(c: Constants, node) -> tuple[int, int, int]:
    """io_stream: hls4ml sizes each layer's output FIFO to the pixels it carries (depth) x n_chan words; deep
    ones become BRAM, shallow ones SRLs [fit: pominiq MNIST stream BRAM 14-16]."""
    shape = tuple(node.shape)
    depth = math.prod(shape[:-1]) if len(shape) > 1 else 1
    width = (shape[-1] if shape else 1) * node.types["result"].width
    ff = int(width * c.fifo_ff_per_bit + c.ff_layer_overhead)        # output register + pointers
    if depth <= c.fifo_srl_depth:
        return 0, (int(math.ceil(width * max(depth, 1) / 32.0)) if depth > 2 else 0), ff
    bram, lut, _ = rom_cost(c, depth, width, 1, min_depth=1)
    return int(bram), int(lut), ff


def _board(board) -> tuple[str, dict | None]:
    """(part, resources) of a board name, a board YAML path or a Board object."""
    if hasattr(board, "part"):
        return board.part, getattr(board, "resources", None)
    try:
        b = load_board(board)
    except Exception as e:
        raise EstimateError(f"board {board!r}: {e}") from None
    return b.part, dict(b.resources)
