"""Strategy and reuse factor per dense layer, validated the way the nnet_utils kernels require; the multiplier
binding (``mult_impl``) of dense, conv2d and depthwise_conv2d layers, kept in ``node.attrs['mult_impl']`` only when
it is not ``auto`` (so graphs without a binding stay as they were)."""

from __future__ import annotations

from ..config import ProjectConfig
from ..ir.graph import Graph
from .base import Pass, PassError

__all__ = ["ApplyReuse", "is_valid_reuse", "valid_reuse_factors", "nearest_valid_reuse"]


def is_valid_reuse(n_in: int, n_out: int, rf: int, op: str = "dense", strategy: str = "latency") -> bool:
    """hls4ml's rule (and the static asserts of nnet_dense_resource.h).  A conv2d with the resource strategy
    also needs rf <= n_in (kh * kw * n_chan): nnet_conv2d_resource.h asserts it."""
    if rf < 1 or rf > n_in * n_out:
        return False
    if op == "conv2d" and strategy == "resource" and rf > n_in:
        return False
    mult_factor = min(n_in, rf)
    multiplier_limit = -(-(n_in * n_out) // mult_factor)
    ok = (multiplier_limit % n_out == 0) or rf >= n_in
    ok = ok and (rf % n_in == 0 or rf < n_in)
    ok = ok and (n_in * n_out) % rf == 0
    return ok


def valid_reuse_factors(n_in: int, n_out: int, op: str = "dense", strategy: str = "latency") -> list[int]:
    """Every reuse factor the dense kernels accept, ascending (only divisors of n_in*n_out can be)."""
    total = n_in * n_out
    divisors = sorted({d for k in range(1, int(total ** 0.5) + 1) if total % k == 0 for d in (k, total // k)})
    return [rf for rf in divisors if is_valid_reuse(n_in, n_out, rf, op, strategy)]


def nearest_valid_reuse(n_in: int, n_out: int, rf: int, op: str = "dense", strategy: str = "latency") -> list[int]:
    valid = valid_reuse_factors(n_in, n_out, op, strategy)
    below = [v for v in valid if v <= rf]
    above = [v for v in valid if v >= rf]
    out = []
    if below:
        out.append(below[-1])
    if above and above[0] not in out:
        out.append(above[0])
    return out


class ApplyReuse(Pass):
    name = "apply-reuse"

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
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
