"""Calibrated types for a float model: integer bits from the ranges observed on calibration data.

The ranges come from :func:`fpga_gen.calibrate.profile` (the float graph run on the data).  For each
slot that would otherwise take ``default_precision`` the width stays the configured one
(``default_precision.width``) and only the split between integer and fraction bits is chosen:

- results (the model input, float dense/conv results, sigmoid/tanh): the smallest signed type whose range
  holds the observed [min, max] (``max|v| < 2**(I-1)``, at least 1 integer bit: the sign), plus
  ``headroom_bits`` more integer bits (default 1: twice the observed range) for inputs the
  calibration data did not show and for the rounding of earlier layers.
- weights and biases: the smallest integer bits that hold every value after rounding to nearest
  (no headroom: the values are known).
- accumulators of float dense/conv layers: the exact type's fraction bits (no product is rounded)
  with the result's calibrated integer bits, when that is narrower than the exact type.  The
  accumulator wraps (AP_WRAP): partial sums may leave its range, the final sum is exact whenever
  it lies inside it, as two's complement addition is modular.

Slots the config sets (``layers.<name>.precision.<slot>``, ``input_precision``) and slots a QKeras
quantizer fixes are left alone: explicit settings win.  Everything derived from these types
(relu, pooling, softmax tables) follows in :class:`~fpga_gen.passes.infer_precision.InferPrecision`.
"""

from __future__ import annotations

import numpy as np

from ..config import ProjectConfig
from ..ir.graph import Graph
from ..ir.types import MAX_WIDTH, FixedType
from .base import Pass

__all__ = ["Calibrate", "narrowed_accum", "integer_bits_for_range", "integer_bits_for_values", "DEFAULT_HEADROOM_BITS"]

DEFAULT_HEADROOM_BITS = 1


def integer_bits_for_range(lo: float, hi: float, headroom_bits: int = DEFAULT_HEADROOM_BITS) -> int:
    """Integer bits (sign included) of a signed type holding [lo, hi]: max|v| < 2**(I-1), I >= 1, + headroom."""
    m = max(abs(float(lo)), abs(float(hi)))
    i = 1
    while m >= 2.0 ** (i - 1):
        i += 1
    return i + int(headroom_bits)


def integer_bits_for_values(values: np.ndarray, width: int) -> int:
    """The fewest integer bits (>= 1) of ap_fixed<width, I> holding every value rounded to nearest."""
    v = np.asarray(values, dtype=np.float64)
    i = integer_bits_for_range(v.min(initial=0.0), v.max(initial=0.0), 0)
    i = max(1, i - 1)         # rounding can only need fewer bits than the magnitude: start one lower
    while i < MAX_WIDTH:
        t = FixedType(width, i)
        raw = np.round(v * 2.0 ** t.frac)        # half to even, as the weights are rounded (RND_CONV)
        if raw.max(initial=0) <= t.raw_max and raw.min(initial=0) >= t.raw_min:
            return i
        i += 1
    return i


class Calibrate(Pass):
    """Set calibrated types as overrides on the nodes (where neither the config nor a quantizer sets one)."""

    name = "calibrate"
    max_iterations = 1

    def __init__(self, ranges: dict, headroom_bits: int = DEFAULT_HEADROOM_BITS):
        self.ranges = ranges
        self.headroom_bits = int(headroom_bits)

    def _result_type(self, name: str, width: int, base: FixedType) -> FixedType | None:
        if name not in self.ranges:
            return None
        lo, hi = self.ranges[name]
        i = integer_bits_for_range(lo, hi, self.headroom_bits)
        return FixedType(width, i, True, base.rounding, base.saturation)

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        d = config.default_precision
        for node in graph:
            ov = node.meta.setdefault("override", {})
            chosen = {}
            if node.op == "input" and "result" not in ov and config.input_precision is None:
                chosen["result"] = self._result_type(node.name, d.width, d)
            elif node.op in ("dense", "conv2d") and "weight" not in node.types:      # a float (not QKeras) layer
                for slot, wname in (("weight", "kernel"), ("bias", "bias")):
                    if slot not in ov and slot not in node.types:
                        i = integer_bits_for_values(node.weights[wname], d.width)
                        chosen[slot] = FixedType(d.width, i, True)
                if "result" not in ov and "result" not in node.types:
                    chosen["result"] = self._result_type(node.name, d.width, d)
                if "accum" not in ov and node.name in self.ranges:
                    lo, hi = self.ranges[node.name]
                    node.meta["calibrated_accum_integer"] = integer_bits_for_range(lo, hi, self.headroom_bits)
            elif node.op == "float_activation" and "result" not in ov and "result" not in node.types:
                chosen["result"] = self._result_type(node.name, d.width, d.with_modes("RND_CONV", "SAT"))
            chosen = {k: v for k, v in chosen.items() if v is not None}
            ov.update(chosen)
            if chosen:
                node.meta["calibrated"] = sorted(chosen)
        return False


def narrowed_accum(exact: FixedType, integer: int) -> FixedType:
    """``exact`` with ``integer`` integer bits (same fraction bits, AP_WRAP) when that is narrower."""
    if integer >= exact.integer or exact.frac + integer < 1 or exact.frac + integer > MAX_WIDTH:
        return exact
    return FixedType(exact.frac + integer, integer, exact.signed)

