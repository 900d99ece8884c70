"""The graph in plain float64: what the model computes before any fixed-point type is chosen.

Used to profile a model on calibration data (per node: observed min and max, see
:mod:`fpga_gen.calibrate`).  It walks the graph built by the frontend with its float weights,
one function per op (what the Keras layer computes in float), like the bit-exact interpreter:

- dense ``x @ kernel + bias``; conv2d the same on every im2col window (padded cells are 0);
  depthwise_conv2d per channel over its window; batchnorm ``x * scale + bias`` per channel;
- max pooling over the cells inside the image; average pooling the mean over those cells (what Keras
  and nnet divide by); global pooling is pooling over one whole-input window;
- zeropad, cropping, upsampling, transpose: the op's index map (:mod:`fpga_gen.ir.spatial`), padded cells 0;
- apply_scale ``x * scale + bias`` per channel; quant_act: the QKeras quantizer on the float input (round,
  leaky, step; table: the QKeras function the op tabulates);
- merge: a + b, a - b, a * b, (a + b) / 2, max, min; concatenate along the op's axis (both inputs);
- activation kinds: relu, relu_max ``clip(x, 0, max_int)``, leaky_relu / prelu ``x > 0 ? x : alpha * x``,
  thresholded_relu ``x > theta ? x : 0``, elu ``x > 0 ? x : alpha * (exp(x) - 1)``, hard_sigmoid
  ``clip(slope * x + shift, 0, 1)``, hard_tanh ``2 * clip(...) - 1``, sigmoid, tanh, softplus
  ``log(1 + exp(x))``, softsign ``x / (1 + |x|)`` (the exact functions, not nnet's tables);
- an activation carrying a QKeras quantizer (``meta['quantizer']``, a cast to its type): the function, then
  that cast (QKeras rounds and clips onto the quantizer's grid);
- softmax (stable, latency, legacy: the softmax; argmax: the one-hot of the first maximum, which is
  what that implementation computes); float_activation (selu, swish, gelu, exponential, mish) with
  the emulator's float64 functions.

The floats of the attrs are the frontend's (float32 values of the Keras config), not the rounded
params the precision pass writes into a typed graph.
Arrays are flat channels_last (batch, size), as in the emulator.
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import from_float, to_float
from ..ir.graph import Graph, Node
from ..ir.spatial import window_indices
from ..ir.tables import table_function
from ..ir.types import FixedType
from .kernels import _FLOAT_FUNCTIONS
from .kernels_reshaping import _index_map
from .kernels_fixed_quant import round_raw
from ..ir.fixed_quant import fixed_quant_params
from ..ir.types import FixedType

__all__ = ["float_forward", "error_bound", "FLOAT_OPS"]

FLOAT_OPS: dict = {}


def _op(name: str):
    def deco(fn):
        FLOAT_OPS[name] = fn
        return fn
    return deco


def _windows(node: Node, x: np.ndarray, n_chan: int, window, pad: float) -> tuple[np.ndarray, np.ndarray]:
    a = node.attrs
    idx = window_indices(int(a["in_height"]), int(a["in_width"]), n_chan, tuple(window), tuple(a["strides"]),
                         tuple(a["pads"]))
    padded = np.concatenate([x, np.full((x.shape[0], 1), pad)], axis=1)
    return padded[:, np.where(idx < 0, x.shape[1], idx)], idx >= 0


@_op("input")
def _input(node: Node, x: np.ndarray) -> np.ndarray:
    return x


@_op("dense")
def _dense(node: Node, x: np.ndarray) -> np.ndarray:
    return x @ node.weights["kernel"] + node.weights["bias"]


@_op("conv2d")
def _conv2d(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    k = node.weights["kernel"].reshape(-1, int(a["n_filt"]))
    out = []
    for i in range(0, x.shape[0], 256):                      # bounded memory for the gathered windows
        win, _ = _windows(node, x[i:i + 256], int(a["n_chan"]), a["kernel_size"], 0.0)
        out.append((win @ k + node.weights["bias"]).reshape(win.shape[0], -1))
    return np.concatenate(out, axis=0)


@_op("pooling")
def _pooling(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    c = int(a["n_chan"])
    b = x.shape[0]
    # one channel at a time: the window indices of a 1-channel image, applied to each channel's plane
    planes = x.reshape(b, -1, c)
    out = np.empty((b, node.size // c, c))
    for k in range(c):
        win, inside = _windows(node, planes[:, :, k], 1, a["pool_size"], 0.0)
        if a["mode"] == "max":
            out[:, :, k] = np.where(inside[None], win, -np.inf).max(axis=2)
        else:
            out[:, :, k] = (win * inside[None]).sum(axis=2) / inside.sum(axis=1)[None]
    return out.reshape(b, -1)


@_op("depthwise_conv2d")
def _depthwise_conv2d(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    kh, kw = (int(k) for k in a["kernel_size"])
    c = int(a["n_chan"])
    k = np.asarray(node.weights["kernel"], dtype=np.float64).reshape(kh * kw, c)
    out = []
    for i in range(0, x.shape[0], 256):
        win, _ = _windows(node, x[i:i + 256], c, (kh, kw), 0.0)          # (B, P, kh*kw*C), cells (kh, kw, C)
        win = win.reshape(win.shape[0], win.shape[1], kh * kw, c)
        out.append(((win * k).sum(axis=2) + node.weights["bias"]).reshape(win.shape[0], -1))
    return np.concatenate(out, axis=0)


@_op("batchnorm")
def _batchnorm(node: Node, x: np.ndarray) -> np.ndarray:
    n = int(node.attrs["n_filt"])
    s = np.asarray(node.weights["scale"], dtype=np.float64).reshape(-1)
    t = np.asarray(node.weights["bias"], dtype=np.float64).reshape(-1)
    return (x.reshape(x.shape[0], -1, n) * s + t).reshape(x.shape[0], -1)


@_op("apply_scale")
def _apply_scale(node: Node, x: np.ndarray) -> np.ndarray:
    s = np.asarray(node.weights["scale"], dtype=np.float64).reshape(-1)
    t = np.asarray(node.weights["bias"], dtype=np.float64).reshape(-1)
    return (x.reshape(x.shape[0], -1, s.size) * s + t).reshape(x.shape[0], -1)


def _round_to(v: np.ndarray, t, saturate: bool = True) -> np.ndarray:
    """v rounded half to even onto the grid of type t (QKeras' tf.round), saturated to t's range."""
    q = np.round(v * 2.0 ** t.frac) * 2.0 ** -t.frac
    return np.clip(q, t.min, t.max) if saturate else q


@_op("quant_act")
def _quant_act(node: Node, x: np.ndarray) -> np.ndarray:
    """The QKeras activation quantizer on the float input (QKeras computes it in float): round / leaky / step
    as the op defines them with the exact input; 'table' the QKeras function (passes/quant_table.py, ir/tables.py)."""
    a = node.attrs
    fn = a["function"]
    if fn == "step":
        t = float(a["threshold"])
        up = x >= t if a.get("inclusive", True) else x > t
        if a.get("mid") is None:
            return np.where(up, float(a["hi"]), float(a["lo"]))
        down = x <= -t if a.get("inclusive", True) else x < -t
        return np.where(up, float(a["hi"]), np.where(down, float(a["lo"]), float(a["mid"])))
    if fn == "table":
        # the QKeras function itself (the typed op tabulates it on the input grid: passes/quant_table.py)
        with np.errstate(over="ignore", divide="ignore"):
            return table_function(a)(x)
    rt = node.types.get("result")
    if fn == "round" and rt is not None:
        v = _round_to(x * 2.0 ** -int(a.get("shift", 0)) + float(a.get("offset", 0.0)), rt)
        if a.get("lo") is not None:
            v = np.maximum(v, float(a["lo"]))
        if a.get("hi") is not None:
            v = np.minimum(v, float(a["hi"]))
        return v
    if fn == "leaky":
        bits, integer, k = int(a["bits"]), int(a["integer"]), int(a["shift"])
        pos = _round_to(x, FixedType(bits - 1, integer, False))
        neg = np.round(x * 2.0 ** -k * 2.0 ** (bits - 1 - integer)) * 2.0 ** -(bits - 1 - integer)
        return np.where(x > 0, pos, np.maximum(neg, float(a["neg_min"])))
    raise ValueError(f"layer {node.name!r}: quant_act {fn!r} has no float reference")


def _quantize(v: np.ndarray, t) -> np.ndarray:
    """v rounded onto type t's grid by its rounding mode, then brought into range by its overflow mode."""
    r = round_raw(np.asarray(v, dtype=np.float64) * 2.0 ** t.frac, t.rounding, np)
    if t.saturation == "WRAP":
        r = np.mod(r - t.raw_min, 2.0 ** t.width) + t.raw_min
    else:
        lo = -t.raw_max if (t.saturation == "SAT_SYM" and t.signed) else t.raw_min
        r = np.clip(r, lo, t.raw_max)
    return r * 2.0 ** -t.frac


@_op("fixed_quant")
def _fixed_quant(node: Node, x: np.ndarray) -> np.ndarray:
    """HGQ2's quantizer in float: each element rounded onto its own grid 2**-f, then saturated or wrapped."""
    a, w = node.attrs, node.weights
    unit = FixedType(1, 1)
    p = fixed_quant_params(w["k"], w["i"], w["f"], a["overflow"], unit, unit)
    f = np.asarray(w["f"], dtype=np.float64)
    r = round_raw(x * 2.0 ** f, a["rounding"], np)
    if a["overflow"] == "WRAP":
        r = np.mod(r - p["lo"], 2.0 ** p["bits"]) + p["lo"]
    else:
        r = np.clip(r, p["lo"], p["hi"])
    return np.where(p["live"], r * 2.0 ** -f, 0.0)


def _table_at(table, t, v: np.ndarray) -> np.ndarray:
    idx = np.clip(np.rint(v * 2.0 ** t.frac) - t.raw_min, 0, len(table) - 1).astype(np.int64)
    return np.asarray(table, dtype=np.float64)[idx]


@_op("lut")
def _lut(node: Node, x: np.ndarray) -> np.ndarray:
    """The table at the input's value (its input is a quantizer's output: on the grid of the table's type)."""
    return _table_at(node.weights["table"], node.attrs["in_type"], x)


@_op("hgq_softmax")
def _hgq_softmax(node: Node, x: np.ndarray) -> np.ndarray:
    """HGQ2's softmax in float: (max - x) quantized to the exp table's input, the table, the sum quantized to the
    1/x table's input, that table, the product."""
    t = node.types
    c = _quantize(np.max(x, axis=1, keepdims=True) - x, t["exp_in"])
    e = _table_at(node.weights["exp_table"], t["exp_in"], c)
    ci = _quantize(np.sum(e, axis=1, keepdims=True), t["inv_in"])
    return e * _table_at(node.weights["inv_table"], t["inv_in"], ci)


def _gather(node: Node, x: np.ndarray) -> np.ndarray:
    idx = _index_map(node)
    padded = np.concatenate([x, np.zeros((x.shape[0], 1))], axis=1)
    return padded[:, np.where(idx < 0, x.shape[1], idx)]


for _name in ("zeropad", "cropping", "upsampling", "transpose"):
    FLOAT_OPS[_name] = _gather


_MERGE = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
          "average": lambda a, b: (a + b) / 2.0, "maximum": np.maximum, "minimum": np.minimum}


@_op("merge")
def _merge(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _MERGE[node.attrs["mode"]](a, b)


@_op("concatenate")
def _concatenate(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    ax = int(node.attrs["axis"]) + 1
    return np.concatenate([a.reshape((n,) + tuple(node.attrs["shape1"])),
                           b.reshape((n,) + tuple(node.attrs["shape2"]))], axis=ax).reshape(n, -1)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))            # = 1 / (1 + exp(-x)), no overflow warning


def _hard(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    s = np.clip(float(a.get("slope", 0.2 if a["activation"] == "hard_sigmoid" else 0.5)) * x
                + float(a.get("shift", 0.5)), 0.0, 1.0)
    return s if a["activation"] == "hard_sigmoid" else 2.0 * s - 1.0


def _elu(node: Node, x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, float(node.attrs["param"]) * np.expm1(np.minimum(x, 0.0)))


def _prelu(node: Node, x: np.ndarray) -> np.ndarray:
    alpha = np.asarray(node.weights["alpha"], dtype=np.float64).reshape(1, -1)      # one alpha per element
    return np.where(x > 0, x, alpha * x)


# activation kind -> float function (node, x): what the Keras layer computes
ACTIVATION_FUNCTIONS = {
    "linear": lambda node, x: x,
    "relu": lambda node, x: np.maximum(x, 0.0),
    "relu_max": lambda node, x: np.clip(x, 0.0, float(node.attrs["max_int"])),
    "leaky_relu": lambda node, x: np.where(x > 0, x, float(node.attrs["param"]) * x),
    "thresholded_relu": lambda node, x: np.where(x > float(node.attrs["param"]), x, 0.0),
    "prelu": _prelu,
    "elu": _elu,
    "hard_sigmoid": _hard,
    "hard_tanh": _hard,
    "sigmoid": lambda node, x: _sigmoid(x),
    "tanh": lambda node, x: np.tanh(x),
    "softplus": lambda node, x: np.logaddexp(0.0, x),
    "softsign": lambda node, x: x / (1.0 + np.abs(x)),
}


@_op("activation")
def _activation(node: Node, x: np.ndarray) -> np.ndarray:
    kind = node.attrs["activation"]
    if kind not in ACTIVATION_FUNCTIONS:
        raise ValueError(f"layer {node.name!r}: activation {kind!r} has no float reference")
    y = ACTIVATION_FUNCTIONS[kind](node, x)
    t = node.types.get("result")
    if node.meta.get("quantizer") and t is not None:
        # a QKeras quantizer the op computes as a cast (quantized_bits, quantized_relu, hard quantized_tanh):
        # QKeras rounds and clips the float value onto the quantizer's grid, which is the cast to its type
        y = to_float(from_float(y, t), t)
    return y


@_op("softmax")
def _softmax(node: Node, x: np.ndarray) -> np.ndarray:
    if node.attrs.get("implementation") == "argmax":
        # the argmax implementation computes a one-hot of the first maximum, not a softmax
        return (np.arange(x.shape[1])[None] == x.argmax(axis=1)[:, None]).astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@_op("float_activation")
def _float_activation(node: Node, x: np.ndarray) -> np.ndarray:
    fn = node.attrs["function"]
    if fn not in _FLOAT_FUNCTIONS:
        raise ValueError(f"layer {node.name!r}: float function {fn!r} has no float reference")
    with np.errstate(over="ignore"):
        return _FLOAT_FUNCTIONS[fn](x)


def float_forward(graph: Graph, x: np.ndarray, keep: bool = True) -> dict[str, np.ndarray]:
    """float64 values of every node (flat, batch first) for the batch ``x`` of the single graph input;
    a two-input node (merge, concatenate) gets both inputs' values, in its input order."""
    (name,) = graph.inputs
    values = {name: np.asarray(x, dtype=np.float64).reshape(len(x), -1)}
    for node in graph:
        if node.op not in FLOAT_OPS:
            raise ValueError(f"layer {node.name!r}: op {node.op!r} has no float reference")
        args = [values[node.name]] if node.op == "input" else [values[i] for i in node.inputs]
        values[node.name] = FLOAT_OPS[node.op](node, *args)
    return values


def _with_weights(node: Node, kernel: np.ndarray, bias: np.ndarray) -> Node:
    return Node(node.name, node.op, list(node.inputs), tuple(node.shape), attrs=dict(node.attrs),
                weights={"kernel": kernel, "bias": bias})


def _fused_reference(reference: Graph, node: Node) -> dict:
    """The float weights of a typed node: the frontend's, with a folded batchnorm applied as FuseBatchNorm does."""
    ref = {k: np.asarray(v, dtype=np.float64) for k, v in reference[node.name].weights.items()}
    bn = node.meta.get("fused_batchnorm")
    if bn is not None:
        s = np.asarray(reference[bn].weights["scale"], dtype=np.float64)
        t = np.asarray(reference[bn].weights["bias"], dtype=np.float64)
        ref = {"kernel": ref["kernel"] * s, "bias": ref["bias"] * s + t}
    return ref


def _cast_step(t, frac_needed: int) -> float:
    """One step of ``t`` when it has fewer fraction bits than the exact value needs, else 0 (an exact cast)."""
    return 0.0 if t.frac >= frac_needed else t.step


def error_bound(typed: Graph, reference: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per node and element, a bound on |fixed-point value - float value| for the batch ``x``, valid when
    no value leaves its type's range (what calibration aims for; check it with the emulator's trace).

    ``typed``: the converted graph (its weights rounded to their types); ``reference``: the frontend's
    graph of the same model with the float weights (:func:`fpga_gen.frontend.load_graph`; a batchnorm the
    converted graph folded into its dense/conv is folded here too, in float).  Rules, with e the input's
    bound and v the float input, for one step ``s`` of a type (2**-frac); "+ s" marks a result cast that
    is added only when the result has fewer fraction bits than the exact value (else the cast is exact):

    - input: ``|q(x) - x|`` exactly (the cast of the data into the input type);
    - dense / conv2d / depthwise_conv2d: ``|Wq|^T e + |W - Wq|^T |v| + |b - bq| + s(result)`` (the
      accumulator is exact or holds the sum; the result cast rounds or truncates by less than one step);
    - batchnorm: ``|scale_q| e + |scale - scale_q| |v| + |bias - bias_q| + s(result)``;
    - relu, relu_max, linear: e (1-Lipschitz), + s;
    - leaky_relu / prelu: ``max(1, |alpha_q|) e + |alpha - alpha_q| |v|``, + s;
    - thresholded_relu: e, and where v lies within e + |theta - theta_q| of theta (the two may sit on
      either side of the threshold) ``|v| + e`` more;
    - hard_sigmoid: ``slope_q e + |slope - slope_q| |v| + |shift - shift_q| + s(result)``; hard_tanh twice that;
    - zeropad, cropping, upsampling, transpose: e moved with the values, + s;
    - merge: add / subtract ``e_a + e_b``; average half that; multiply ``|v_a| e_b + |v_b| e_a + e_a e_b``;
      maximum / minimum ``max(e_a, e_b)`` (each 1-Lipschitz in both inputs); + s; concatenate: e moved, + s;
    - max pooling: the window's max of e; average pooling: the window's mean of e, plus one step of
      the accumulator and of the result;
    - not bounded here (inf): softmax, the table activations (sigmoid, tanh, softplus, softsign, elu:
      their error depends on the table's size and type) and float_activation; compare their inputs or the
      argmax instead.
    """
    values = dict(float_forward(reference, x))
    (name,) = typed.inputs
    bound = {}
    for node in typed:
        t = node.types.get("result")
        step = t.step if t is not None else 0.0
        if node.meta.get("fused_batchnorm") in values:          # the float value after the folded batchnorm
            values[node.name] = values[node.meta["fused_batchnorm"]]
        if node.op == "input":
            q = to_float(from_float(values[name], t), t)
            bound[node.name] = np.abs(q - values[name])
            continue
        ins = [typed[i].types["result"] for i in node.inputs]
        es = [bound[i] for i in node.inputs]
        vs = [np.abs(values[i]) for i in node.inputs]
        e, v, in_t = es[0], vs[0], ins[0]
        op = node.op
        if op in ("dense", "conv2d", "depthwise_conv2d"):
            ref = _fused_reference(reference, node)
            kq, bq = node.weights["kernel"], node.weights["bias"]
            fn = FLOAT_OPS[op]
            bound[node.name] = (fn(_with_weights(node, np.abs(kq), np.zeros_like(bq)), e)
                                + fn(_with_weights(node, np.abs(ref["kernel"] - kq), np.abs(ref["bias"] - bq)), v)
                                + step)
        elif op == "batchnorm":
            ref = reference[node.name].weights
            sq, bq = node.weights["scale"], node.weights["bias"]
            n = int(node.attrs["n_filt"])
            rs = lambda a: a.reshape(a.shape[0], -1, n)                       # noqa: E731
            b = (rs(e) * np.abs(sq) + rs(v) * np.abs(np.asarray(ref["scale"]) - sq)
                 + np.abs(np.asarray(ref["bias"]) - bq)).reshape(e.shape)
            bound[node.name] = b + step
        elif op == "activation":
            bound[node.name] = _activation_bound(node, reference[node.name], e, v, values[node.inputs[0]],
                                                 in_t, t)
        elif op in ("zeropad", "cropping", "upsampling", "transpose"):
            bound[node.name] = _gather(node, e) + _cast_step(t, in_t.frac)
        elif op == "merge":
            mode = node.attrs["mode"]
            (ea, eb), (va, vb), (ta, tb) = es, vs, ins
            if mode in ("add", "subtract"):
                b, frac = ea + eb, max(ta.frac, tb.frac)
            elif mode == "average":
                b, frac = (ea + eb) / 2.0, max(ta.frac, tb.frac) + 1
            elif mode == "multiply":
                b, frac = va * eb + vb * ea + ea * eb, ta.frac + tb.frac
            else:
                b, frac = np.maximum(ea, eb), max(ta.frac, tb.frac)
            bound[node.name] = b + _cast_step(t, frac)
        elif op == "concatenate":
            bound[node.name] = _concatenate(node, *es) + _cast_step(t, max(i.frac for i in ins))
        elif op == "pooling":
            b = FLOAT_OPS["pooling"](node, e)
            bound[node.name] = b if node.attrs["mode"] == "max" else b + node.types["accum"].step + step
        else:
            bound[node.name] = np.full_like(values[node.name], np.inf)
    return bound


def _activation_bound(node: Node, ref: Node, e, v, v_signed, in_t, t) -> np.ndarray:
    kind = node.attrs["activation"]
    a, ra = node.attrs, ref.attrs
    if kind in ("linear", "relu", "relu_max"):
        return e + _cast_step(t, in_t.frac)
    if kind in ("leaky_relu", "prelu"):
        if kind == "prelu":
            aq = np.asarray(node.weights["alpha"], dtype=np.float64).reshape(1, -1)
            af = np.asarray(ref.weights["alpha"], dtype=np.float64).reshape(1, -1)
        else:
            aq, af = float(a["param"]), float(ra["param"])
        pt = node.types["param"]
        return np.maximum(1.0, np.abs(aq)) * e + np.abs(af - aq) * v + _cast_step(t, in_t.frac + pt.frac)
    if kind == "thresholded_relu":
        th_q, th = float(a["param"]), float(ra["param"])
        near = np.abs(v_signed - th) <= e + abs(th - th_q)
        return e + np.where(near, v + e, 0.0) + _cast_step(t, in_t.frac)
    if kind in ("hard_sigmoid", "hard_tanh"):
        d = 0.2 if kind == "hard_sigmoid" else 0.5
        sq, hq = float(a["slope"]), float(a["shift"])
        sf, hf = float(ra.get("slope", d)), float(ra.get("shift", 0.5))
        b = sq * e + abs(sf - sq) * v + abs(hf - hq)
        return (b if kind == "hard_sigmoid" else 2.0 * b) + t.step
    return np.full_like(e, np.inf)
