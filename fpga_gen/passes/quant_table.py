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
from ..ir.types import FixedType
from .base import PassError

__all__ = ["table_function", "build_table", "table_types", "MAX_TABLE_INPUT_BITS"]

MAX_TABLE_INPUT_BITS = 22
_EPS = float(np.float32(1e-7))          # K.epsilon() as the float32 TensorFlow compares with


def _po2_exponent(a: np.ndarray, attrs: dict) -> np.ndarray:
    """QKeras' _clip_power_of_two on |x|, in float32 as TensorFlow computes it (the quadratic approximation
    puts exact ties log2(sqrt(2**(2k+1))) = k + 1/2 on the grid: float32's rounding of the sqrt decides them)."""
    min_exp, max_exp = int(attrs["min_exp"]), int(attrs["max_exp"])
    mv = attrs.get("max_value")
    a = np.asarray(a, dtype=np.float32)
    eps = np.float32(_EPS)
    af = np.where(a < eps, eps, a)
    if mv is not None:
        af = np.where(af >= np.float32(mv), np.float32(mv), af)
    q = 2.0 if attrs.get("quadratic") else 1.0
    xin = np.sqrt(af) if attrs.get("quadratic") else af
    lg = (np.log(xin) / np.float32(np.log(2.0))).astype(np.float32)
    lg = np.floor(lg) if attrs.get("log2_rounding") == "floor" else np.rint(lg)
    return np.where(a < eps, float(min_exp), q * np.clip(lg.astype(np.float64), min_exp, max_exp))


def table_function(attrs: dict):
    fn = attrs["fn"]
    bits = int(attrs["bits"])
    sym = bool(attrs.get("symmetric"))
    if fn == "tanh":
        m = 2.0 ** (bits - 1)
        return lambda v: np.clip(np.rint(np.tanh(v) * m) / m, -1.0 + sym / m, 1.0 - 1.0 / m)
    if fn == "sigmoid":
        m = 2.0 ** bits
        return lambda v: np.clip(np.rint(1.0 / (1.0 + np.exp(-v)) * m) / m, sym / m, 1.0 - 1.0 / m)
    if fn == "po2":
        return lambda v: np.where(v < 0, -1.0, 1.0) * 2.0 ** _po2_exponent(np.abs(v), attrs)
    if fn == "relu_po2":
        s = float(attrs.get("negative_slope") or 0.0)

        def relu_po2(v):
            pos = 2.0 ** _po2_exponent(np.maximum(v, 0.0), attrs)
            neg = -(2.0 ** _po2_exponent(np.maximum(-v, 0.0) * s, attrs))
            return np.where((v >= 0) | (s == 0), pos, neg)
        return relu_po2
    raise PassError(f"quant_act table function {fn!r} is unknown")


def build_table(xt: FixedType, attrs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, levels): output = levels[number of thresholds <= x]; thresholds on xt's grid."""
    if xt.width > MAX_TABLE_INPUT_BITS:
        raise PassError(f"{attrs['fn']} quantizer: its input type {xt.cpp()} has {xt.width} bits; a table over "
                        f"its values needs <= {MAX_TABLE_INPUT_BITS}: quantize the input first (e.g. quantized_bits)")
    v = np.arange(xt.raw_min, xt.raw_max + 1, dtype=np.float64) * 2.0 ** -xt.frac
    with np.errstate(over="ignore"):
        y = table_function(attrs)(v)
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
