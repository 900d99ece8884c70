"""The reuse-factor rule of the nnet_utils kernels, in one place: which reuse factors a dense (or conv2d) layer
accepts.  The ApplyReuse pass checks the config with it; the HLS writer, the estimator and the sweep pick
from it."""

from __future__ import annotations

__all__ = ["is_valid_reuse", "valid_reuse_factors", "nearest_valid_reuse"]


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
