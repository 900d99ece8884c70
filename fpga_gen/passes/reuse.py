"""The config's implementation settings onto the graph: the graph-level ones in ``graph.settings`` (io_type,
strategy, reuse_factor, mult_impl, clock_period, part); per dense/conv2d layer its strategy and reuse factor
(the layer's own over the model's, :func:`fpga_gen.ir.reuse.layer_first`), validated the way the nnet_utils
kernels require; the multiplier binding (``mult_impl``) of dense, conv2d and depthwise_conv2d layers, kept in
``node.attrs['mult_impl']`` only when it is not ``auto`` (so graphs without a binding stay as they were)."""

from __future__ import annotations

from ..config import ProjectConfig
from ..ir.graph import Graph
from ..ir.reuse import is_valid_reuse, nearest_valid_reuse
from .base import Pass, PassError

__all__ = ["ApplyReuse", "graph_settings"]

GRAPH_SETTINGS = ("io_type", "strategy", "reuse_factor", "mult_impl", "clock_period", "part")


def graph_settings(config: ProjectConfig) -> dict:
    """The model-wide implementation settings of ``config``, as ``graph.settings`` records them."""
    return {k: getattr(config, k) for k in GRAPH_SETTINGS}


class ApplyReuse(Pass):
    name = "apply-reuse"

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        graph.settings = graph_settings(config)          # idempotent: not a change that needs another round
        changed = False
        for node in graph:
            if node.op in ("batchnorm", "depthwise_conv2d"):
                # nnet::normalize and nnet::depthwise_conv_2d_latency_cl: II = reuse factor, the multipliers
                # limited to match; any RF >= 1 is valid and the arithmetic does not change.  Like hls4ml they
                # take the model's reuse factor (per-layer settings are for dense and conv layers); io_parallel
                # depthwise has the latency strategy only (hls4ml asserts on resource)
                want = {"reuse_factor": int(config.reuse_factor)}
                if node.op == "depthwise_conv2d":
                    want["strategy"] = "latency"
                if any(node.attrs.get(k) != v for k, v in want.items()):
                    node.attrs.update(want)
                    changed = True
                if node.op == "depthwise_conv2d":
                    changed |= _set_mult_impl(node, config)
                continue
            if node.op == "dense":
                n_in, n_out = node.attrs["n_in"], node.attrs["n_out"]
            elif node.op == "conv2d":   # the dense kernel that runs on every output pixel
                kh, kw = node.attrs["kernel_size"]
                n_in, n_out = kh * kw * node.attrs["n_chan"], node.attrs["n_filt"]
            else:
                continue
            strategy = config.layer_strategy(node.name)
            rf = config.layer_reuse(node.name)
            if not is_valid_reuse(n_in, n_out, rf, node.op, strategy):
                near = nearest_valid_reuse(n_in, n_out, rf, node.op, strategy)
                raise PassError(f"layer {node.name!r}: reuse factor {rf} is not valid for a {n_in}x{n_out} "
                                f"{'resource ' if node.op == 'conv2d' and strategy == 'resource' else ''}{node.op} layer; nearest valid values: {', '.join(map(str, near))}")
            if node.attrs.get("strategy") != strategy or node.attrs.get("reuse_factor") != rf:
                node.attrs["strategy"] = strategy
                node.attrs["reuse_factor"] = rf
                changed = True
            changed |= _set_mult_impl(node, config)
        return changed


def _set_mult_impl(node, config: ProjectConfig) -> bool:
    impl = config.layer_mult_impl(node.name)
    if impl == "auto":
        return node.attrs.pop("mult_impl", None) is not None
    if node.attrs.get("mult_impl") == impl:
        return False
    node.attrs["mult_impl"] = impl
    return True
