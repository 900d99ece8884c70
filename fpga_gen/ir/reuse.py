"""Reuse factor and strategy, each rule in one place: the defaults, the precedence of a layer's own setting
over the model-wide one (:func:`layer_first`), and which reuse factors a dense (or conv2d) layer accepts
(the nnet_utils kernels' rule, :func:`is_valid_reuse`).  The config, the ApplyReuse pass, the HLS writer,
the estimator, the hls4ml config reader and the sweep all call these."""

from __future__ import annotations

__all__ = ["DEFAULT_REUSE_FACTOR", "DEFAULT_STRATEGY", "layer_first", "node_reuse", "is_valid_reuse",
           "valid_reuse_factors", "nearest_valid_reuse"]

DEFAULT_REUSE_FACTOR = 1
DEFAULT_STRATEGY = "latency"


def layer_first(*settings, default):
    """The precedence of per-layer settings over model-wide ones, written once: the first setting given (not
    None) wins, callers listing them most specific first (a layer's own config entry, what its graph node
    carries, the model's setting); else ``default``."""
    for s in settings:
        if s is not None:
            return s
    return default


def node_reuse(node) -> int:
    """The reuse factor a graph node carries (the ApplyReuse pass sets it), else the default."""
    return int(node.attrs.get("reuse_factor", DEFAULT_REUSE_FACTOR))


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
