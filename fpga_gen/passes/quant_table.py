"""Monotonic QKeras quantizers that QKeras computes with float functions (quantized_tanh/sigmoid with
the real tanh/sigmoid, quantized_po2 and quantized_relu_po2 as activations) as an exact table: the
function is evaluated once on every value of the input type (float64, numpy), and the op compares
the input with the points where the output changes (``thresholds``, on the input grid) and picks
one of the ``levels``.  The emulator and the C++ then compute exactly the same thing; against
QKeras (float32 tanh/log) an output can differ only where float32 puts an input on the other side
of a rounding boundary (tests/test_quantizers.py measures it: none on the tested types)."""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ..ir.quant import exact_value_type
from ..ir.tables import table_function
from ..ir.types import FixedType
from .base import PassError

__all__ = ["build_table", "table_types", "MAX_TABLE_INPUT_BITS"]

MAX_TABLE_INPUT_BITS = 22
def build_table(xt: FixedType, attrs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, levels): output = levels[number of thresholds <= x]; thresholds on xt's grid."""
    if xt.width > MAX_TABLE_INPUT_BITS:
        raise PassError(f"{attrs['fn']} quantizer: its input type {xt.cpp()} has {xt.width} bits; a table over "
                        f"its values needs <= {MAX_TABLE_INPUT_BITS}: quantize the input first (e.g. quantized_bits)")
    v = np.arange(xt.raw_min, xt.raw_max + 1, dtype=np.float64) * 2.0 ** -xt.frac
    try:
        fn = table_function(attrs)
    except ValueError as e:
        raise PassError(str(e)) from None
    with np.errstate(over="ignore"):
        y = fn(v)
    if np.any(np.diff(y) < 0):
        raise PassError(f"{attrs['fn']} quantizer: QKeras' float32 function is not monotonic on the values of its "
                        f"input type {xt.cpp()} (float32 log rounding near 2**(k+1/2)), so no threshold table "
                        f"reproduces it; give it a narrower input type")
    change = np.nonzero(np.diff(y))[0] + 1
    if change.size == 0:                  # constant: one threshold that changes nothing (C++ arrays are never empty)
        return np.array([v[-1]]), np.array([y[0], y[0]])
    return v[change], np.concatenate([[y[0]], y[change]])


def table_types(node: Node, xt: FixedType) -> None:
    if node.attrs.get("fn") == "given":     # thresholds and levels from the frontend (QONNX: codes -> float32 values)
        node.types["result"] = node.meta.get("override", {}).get("result") or exact_value_type(node.weights["levels"])
        return
    thr, levels = build_table(xt, node.attrs)
    node.weights["thresholds"] = thr
    node.weights["levels"] = levels
    node.types["result"] = node.meta.get("override", {}).get("result") or exact_value_type(levels)
