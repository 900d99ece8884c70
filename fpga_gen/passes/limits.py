"""Find io_parallel designs that Vitis HLS cannot build, so they are refused before anything is written.

The pass only records the problem (``node.meta["hls_limit"]``, a one-line message): the emulator and the
estimator still run on any model, and :meth:`fpga_gen.api.Project.write` raises :func:`check_hls_limits`'s
error before it creates a file.

io_parallel keeps every layer's output in a completely partitioned array (one register per element) and
the Latency strategy unrolls a dense kernel's n_in * n_out multiplications completely (the products array
is partitioned completely too; a reuse factor only caps the multiplier instances).  Past 4096 elements
HLS stops: "XFORM 203-504 Stop unrolling loop ... because it may cause large runtime" (a limit hard-coded
in Vivado/Vitis HLS, hls4ml issues #904, #1013, #427) and "XFORM 203-103 partitioned elements number (N)
has exceeded the threshold" (``config_array_partition -maximum_size``, 1024 by default in Vivado HLS,
raised to 4096 by hls4ml's scripts; hls4ml issue #134).  hls4ml's tutorials warn at the same 4096 per
layer.  The Resource strategy unrolls n_in * n_out / reuse_factor multiplications per step, so a reuse
factor that brings that to 4096 or fewer fits.

io_stream keeps tensors in FIFOs, so big layer outputs are fine there; its dense and conv kernels still
unroll the same products (nnet::dense reads its whole input into a completely partitioned array first), so
the unroll limit and a dense layer's input size are checked in io_stream too.
"""

from __future__ import annotations

import math

from ..config import ProjectConfig
from ..ir.graph import Graph
from ..ir.reuse import valid_reuse_factors
from .base import Pass, PassError

__all__ = ["CheckHlsLimits", "check_hls_limits", "MAX_UNROLL", "MAX_PARTITION", "kernel_size"]

MAX_UNROLL = 4096        # multiplications one unrolled dense kernel may hold
MAX_PARTITION = 4096     # elements of one completely partitioned array


def kernel_size(node) -> tuple[int, int] | None:
    """(n_in, n_out) of the dense kernel a dense or conv2d node runs (conv2d: per output pixel)."""
    if node.op == "dense":
        return node.attrs["n_in"], node.attrs["n_out"]
    if node.op == "conv2d":
        kh, kw = node.attrs["kernel_size"]
        return kh * kw * node.attrs["n_chan"], node.attrs["n_filt"]
    if node.op == "depthwise_conv2d":          # kh * kw products per channel, no cross-channel sums
        kh, kw = node.attrs["kernel_size"]
        return kh * kw, node.attrs["n_chan"]
    return None


def _fitting_reuse(n_in: int, n_out: int) -> int | None:
    for rf in valid_reuse_factors(n_in, n_out):
        if math.ceil(n_in * n_out / rf) <= MAX_UNROLL:
            return rf
    return None


class CheckHlsLimits(Pass):
    name = "check-hls-limits"
    max_iterations = 1

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            node.meta.pop("hls_limit", None)
            problem = self.problem(node, config)
            if problem:
                node.meta["hls_limit"] = problem
        return False

    @staticmethod
    def problem(node, config: ProjectConfig) -> str | None:
        stream = config.io_type == "stream"
        n = math.prod(node.shape)
        if stream and node.op == "dense" and node.attrs["n_in"] > MAX_PARTITION:
            return (f"layer {node.name!r}: dense input of {node.attrs['n_in']} values is too large: io_stream's "
                    f"nnet::dense reads it into one completely partitioned array and Vitis HLS partitions at most "
                    f"{MAX_PARTITION} elements; pool or stride more before it, or use a smaller layer")
        if n > MAX_PARTITION and not stream:
            return (
                f"layer {node.name!r}: its {node.op} output of {n} values ({'x'.join(map(str, node.shape))}) is "
                f"too large for io_parallel, which holds it in one completely partitioned array; Vitis HLS "
                f"partitions at most {MAX_PARTITION} elements: use io_type stream or a smaller layer")
        size = kernel_size(node)
        if size is None:
            return None
        n_in, n_out = size
        strategy = node.attrs.get("strategy", config.layer_strategy(node.name))
        rf = int(node.attrs.get("reuse_factor", config.layer_reuse(node.name)))
        if strategy == "distributed_arithmetic":     # straight-line adder code from da4ml: no loop to unroll
            return None
        unrolled = n_in * n_out if strategy == "latency" else math.ceil(n_in * n_out / rf)
        if unrolled <= MAX_UNROLL:
            return None
        what = f"a {n_in}x{n_out} {node.op} layer" + (" (per output pixel)" if node.op != "dense" else "")
        io = f"io_{config.io_type}"
        fit = None if node.op == "depthwise_conv2d" else _fitting_reuse(n_in, n_out)
        fix = (f"use strategy resource with reuse factor {fit} or a larger valid one (config: layers: "
               f"{node.name}: {{strategy: resource, reuse_factor: {fit}}})" if fit else "use a smaller layer")
        if node.op == "depthwise_conv2d":     # no resource strategy: hls4ml asserts on it
            fix = "nnet's depthwise kernel has the latency strategy only: use fewer channels or a smaller kernel"
        how = ("the Latency strategy unrolls all its" if strategy == "latency"
               else f"the Resource strategy with reuse factor {rf} unrolls")
        other = "" if stream else ", or io_type stream"
        return (
            f"layer {node.name!r}: {what} is too large for {io}: {how} {unrolled} multiplications, and "
            f"Vitis HLS stops unrolling and partitioning past {MAX_UNROLL}; {fix}{other}")


def check_hls_limits(graph: Graph) -> None:
    """Raise the first problem :class:`CheckHlsLimits` found (call before writing a project)."""
    for node in graph:
        if node.meta.get("hls_limit"):
            raise PassError(node.meta["hls_limit"])
