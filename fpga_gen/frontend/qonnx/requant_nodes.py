"""The graph side of :mod:`.requant` (float-scale Quants): the multithreshold node, weighted layers on integer
codes, and turning codes/accumulators back into real values where an op needs them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...ir.graph import Node
from ...ir.quant import exact_value_type
from ...ir.types import exact_type_for_range
from .convert import ROUNDING_MODES, Context, Value, _fail, _scalar
from .requant import float_thresholds, level_thresholds

__all__ = ["float_quant", "materialize", "weighted_codes", "flat_vectors"]


def _vec(x, n: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    return np.broadcast_to(a, (n,)).copy() if a.size in (1, n) else a


def float_quant(ctx: Context, n, v: Value, s: float, zeropt, bitwidth, signed: bool, narrow: bool, mode: str):
    z = _scalar(n, zeropt, "zero point")
    b = _scalar(n, bitwidth, "bit width")
    if z != 0:
        _fail(n, f"zero point {z!r} is not supported; use a zero point of 0 (a symmetric or unsigned quantizer)")
    if b != int(b) or not 2 <= b <= 16 or (b == 1 and signed):
        _fail(n, f"bit width {b!r} with a float scale is not supported; use 2 to 16 bits")
    b = int(b)
    if str(mode).upper() not in ROUNDING_MODES and str(mode).upper() not in ("CEIL", "UP"):
        _fail(n, f"rounding_mode {mode!r} is unknown")
    shape = ctx.node_shape(v)
    if v.scale is None:
        # real-valued input (the model input): the smallest float32 reaching each level
        thr, first = float_thresholds(s, b, signed, narrow, mode)
        last = first + thr.shape[1]
    else:
        if v.pending and len(v.scale) not in (1, shape[-1]):
            _fail(n, f"{len(v.scale)} channel scales do not fit the {shape} tensor")
        n_chan = shape[-1] if (len(v.scale) > 1 or (v.bias is not None and len(v.bias) > 1)) else 1
        S = np.asarray(_vec(v.scale, n_chan), np.float32)
        B = None if v.bias is None else np.asarray(_vec(v.bias, n_chan), np.float32)
        relu = v.relu

        def real_of(a, c):
            r = np.float32(a) * S[c]
            if B is not None:
                r = r + B[c]
            return np.maximum(r, np.float32(0)) if relu else r
        thr, first, last = level_thresholds(real_of, int(v.range[0]), int(v.range[1]), n_chan, s, b, signed,
                                            narrow, mode)
    name = ctx.unique(n.name)
    ctx.add(Node(name, "quant_act", [v.node], shape, attrs={"function": "multithreshold", "lo": int(first)},
                 weights={"thresholds": thr}, types={"result": exact_type_for_range(first, last, 0)},
                 meta={"quantizer": f"{'int' if signed else 'uint'}{b} scale {s!r}"}), n)
    return ctx.set(n, Value(name, v.shape, v.cl, True, scale=np.array([float(np.float32(s))]), range=(first, last)))


def materialize(ctx: Context, n, v: Value) -> Value:
    """The real values of a code/accumulator Value: codes -> float32(k * s) exactly as the reference's Quant
    gives them (a 'table' over the codes); an accumulator -> acc * S + B held exactly (apply_scale), relu."""
    if v.scale is None:
        return v
    shape = ctx.node_shape(v)
    name = ctx.unique(f"{v.node}_real")
    if not v.pending:
        lo, hi = int(v.range[0]), int(v.range[1])
        k = np.arange(lo, hi + 1, dtype=np.float64)
        levels = (np.float32(k) * np.float32(v.scale[0])).astype(np.float64)
        thr = k[1:] if hi > lo else np.array([float(hi)])
        if hi == lo:
            levels = np.array([levels[0], levels[0]])
        ctx.add(Node(name, "quant_act", [v.node], shape, attrs={"function": "table", "fn": "given"},
                     weights={"thresholds": thr, "levels": levels}, meta={"quantizer": "codes to float32"}), n)
        out = Value(name, v.shape, v.cl, v.quantized)
    else:
        n_chan = shape[-1]
        scale = np.asarray(_vec(v.scale, n_chan), np.float32).astype(np.float64)
        bias = np.zeros(n_chan) if v.bias is None else np.asarray(_vec(v.bias, n_chan), np.float32).astype(np.float64)
        # float32 values are dyadic: held exactly (the sum x * scale + bias too)
        ctx.add(Node(name, "apply_scale", [v.node], shape, weights={"scale": scale, "bias": bias},
                     types={"scale": exact_value_type(scale), "bias": exact_value_type(bias)},
                     meta={"onnx_op": "scale", "keras_class": "scale"}))
        out = Value(name, v.shape, v.cl, v.quantized)
        if v.relu:
            rname = ctx.unique(f"{name}_relu")
            ctx.add(Node(rname, "activation", [name], shape, attrs={"activation": "relu"},
                         meta={"onnx_op": "Relu", "keras_class": "Relu"}))
            out = Value(rname, v.shape, v.cl, v.quantized)
    ctx.values = {t: (out if x is v else x) for t, x in ctx.values.items()}    # every later reader: real values
    return out


def weighted_codes(ctx: Context, n, v: Value, w_name: str, orient, b_name, bias, make_node, out_shape):
    """A Gemm/MatMul/Conv on integer codes: the node multiplies by the weights' integer codes (bias 0); the
    returned Value is its accumulator with scale float32(s_x * s_w[c]) and the float bias pending."""
    if v.pending:
        _fail(n, "two weighted layers follow each other with float scales and no Quant between them; "
                 "quantize the activation in between")
    if w_name not in ctx.codes:
        _fail(n, "its weight is not quantized (no Quant), but its input has a float scale; quantize the weight")
    codes, wscale = ctx.codes[w_name]
    kernel, wsc = orient(codes), orient(np.asarray(wscale, np.float32))
    n_out = kernel.shape[-1]
    per_out = wsc.reshape(-1, n_out)
    if np.any(per_out != per_out[:1]):
        _fail(n, "the weight scale varies along an input axis; only per-tensor or per-output-channel scales")
    sw = per_out[0].astype(np.float32)
    S = (np.float32(v.scale[0]) * sw).astype(np.float64)
    if np.any(S <= 0):
        _fail(n, "scales must be positive")
    lo_x, hi_x = float(v.range[0]), float(v.range[1])
    k2 = kernel.reshape(-1, n_out)
    lo = int(np.minimum(k2 * lo_x, k2 * hi_x).sum(axis=0).min())
    hi = int(np.maximum(k2 * lo_x, k2 * hi_x).sum(axis=0).max())
    node = make_node(kernel.astype(np.float64), np.zeros(n_out))
    node.types = {"weight": exact_value_type(kernel), "bias": exact_value_type([0.0])}
    ctx.add(node, n)
    B = None if bias is None or not np.any(bias) else np.asarray(bias, np.float32).astype(np.float64)
    return ctx.set(n, Value(node.name, out_shape, node.op != "dense", True, scale=S, bias=B, pending=True,
                            range=(min(lo, 0), max(hi, 0))))


def flat_vectors(v: Value, new_shape) -> Value:
    """A Flatten/Reshape of a code Value: per-channel scale/bias as one value per element of the NCHW order."""
    if v.scale is None:
        return replace(v, shape=tuple(new_shape), cl=False)
    per = [x is not None and len(x) > 1 for x in (v.scale, v.bias)]
    if not any(per):
        return replace(v, shape=tuple(new_shape), cl=False)
    c = v.shape[0]
    rep = int(np.prod(v.shape)) // c

    def expand(x):
        return None if x is None else (np.repeat(_vec(x, c), rep) if len(x) > 1 else x)
    return replace(v, shape=tuple(new_shape), cl=False, scale=expand(v.scale), bias=expand(v.bias))
