"""QONNX / ONNX graph -> layer graph, one handler per ONNX op type (:data:`HANDLERS`).

Every ONNX tensor is either a constant (an initializer, or a Quant of one: evaluated here with qonnx's own
``int_quant`` in float32, so the weights are bit for bit what ``execute_onnx`` uses) or a dynamic
:class:`Value`: the graph node holding it, its ONNX shape without the batch, and its layout.  fpga-gen's
spatial ops are channels-last, ONNX's NCHW: a (C, H, W) tensor is held as (H, W, C) (``cl``) from the first
spatial op on; a transpose node goes in where an NCHW order is needed again (the input of a Flatten or
Reshape of more than one pixel, the model output), so the project keeps the ONNX model's interface.

A Quant with a power-of-two scale 2**-f, zero point 0 and bit width b is a fixed-point cast: x / 2**-f in
float32 is exact, and clipping to [min_int, max_int] before rounding equals rounding before saturating, so
it is ``ap_[u]fixed<b, b - f, mode, SAT>`` (narrow signed: SAT_SYM; narrow unsigned: a clamp to 2**b - 2).
qonnx's rounding modes map onto ap_fixed's: ROUND/HALF_EVEN RND_CONV, FLOOR TRN, DOWN TRN_ZERO, HALF_UP
RND_INF, HALF_DOWN RND_ZERO (CEIL and UP have none).  A 1-bit signed Quant and BipolarQuant are steps.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from ...ir.graph import Graph, Node
from ...ir.quant import exact_value_type
from ...ir.types import FixedType
from ..registry import FrontendError, Registry

__all__ = ["HANDLERS", "qonnx_to_graph", "supported_ops", "ROUNDING_MODES"]


ROUNDING_MODES = {"ROUND": "RND_CONV", "HALF_EVEN": "RND_CONV", "FLOOR": "TRN", "DOWN": "TRN_ZERO",
                  "HALF_UP": "RND_INF", "HALF_DOWN": "RND_ZERO"}
# an exact float32 bias wider than this is rounded to nearest at this width (its type would grow the accumulator
# past the emulator's 53 bits)
MAX_EXACT_BIAS_WIDTH = 32


# the frontend's handlers (fpga_gen/frontend/registry.py): source op -> function
OPS = Registry("op")
HANDLERS = OPS.handlers
handler = OPS.register


def supported_ops() -> list[str]:
    return sorted(HANDLERS)


@dataclass
class Value:
    node: str                    # the graph node that holds the tensor
    shape: tuple                 # the ONNX shape without the batch dimension
    cl: bool = False             # an ONNX (C, H, W) tensor held channels-last as (H, W, C)
    quantized: bool = False      # a Quant (or only exact ops) on every path from the input
    # float-scale Quants (requant.py): None, the node holds real values; else the node holds integers and the
    # real value is node * scale[c] (+ bias[c], then relu when pending), c the node's last axis
    scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    relu: bool = False
    pending: bool = False        # an accumulator (scale, bias, relu still to apply) rather than a Quant's codes
    range: tuple = (0, 0)        # the integers the node can hold


def _ident(name: str) -> str:
    s = re.sub(r"\W", "_", str(name)).strip("_") or "node"
    return s if not s[0].isdigit() else "n_" + s


class Context:
    def __init__(self, model, graph: Graph):
        from onnx import numpy_helper
        self.model = model
        self.graph = graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.quantized: set[str] = set()        # constants a Quant made
        self.codes: dict[str, tuple] = {}       # those constants as (integer codes, float32 scale)
        self.values: dict[str, Value] = {}
        self._cl_cache: dict[str, str] = {}       # node -> its transposed copy
        self._plain_cache: dict[str, str] = {}

    # ------------------------------------------------------------------ tensors
    def const(self, name: str):
        return self.consts.get(name) if name else None

    def need_const(self, onnx_node, k: int, what: str) -> np.ndarray:
        if k >= len(onnx_node.input) or not onnx_node.input[k]:
            raise FrontendError(f"node {onnx_node.name!r} ({onnx_node.op_type}): its {what} input is missing")
        c = self.const(onnx_node.input[k])
        if c is None:
            raise FrontendError(f"node {onnx_node.name!r} ({onnx_node.op_type}): its {what} "
                                f"({onnx_node.input[k]!r}) must be a constant, it is computed from the input")
        return c

    def value(self, onnx_node, k: int = 0, scaled: bool = False) -> Value:
        """The dynamic input k; its real values unless ``scaled`` (the op takes integer codes, requant.py)."""
        name = onnx_node.input[k]
        if name not in self.values:
            raise FrontendError(f"node {onnx_node.name!r} ({onnx_node.op_type}): input {name!r} is a constant; "
                                f"only ops on the model input's data are supported there")
        v = self.values[name]
        return v if scaled else self.real(onnx_node, v)

    def real(self, onnx_node, v: Value) -> Value:
        if v.scale is None:
            return v
        return materialize(self, onnx_node, v)

    def set(self, onnx_node, v: Value, k: int = 0) -> Value:
        self.values[onnx_node.output[k]] = v
        return v

    def unique(self, base: str) -> str:
        base = _ident(base)
        name, k = base, 1
        while name in self.graph:
            k += 1
            name = f"{base}_{k}"
        return name

    def add(self, node: Node, onnx_node=None) -> Node:
        if onnx_node is not None:
            node.meta.setdefault("onnx_op", onnx_node.op_type)
            node.meta.setdefault("keras_class", onnx_node.op_type)
        return self.graph.add(node)

    # ------------------------------------------------------------------ layouts
    def channels_last(self, onnx_node, v: Value) -> Value:
        """v as an (H, W, C) node: a transpose after an NCHW-ordered node."""
        if v.cl:
            return v
        if len(v.shape) != 3:
            raise FrontendError(f"node {onnx_node.name!r} ({onnx_node.op_type}): needs a (channels, height, width) "
                                f"input, got shape {tuple(v.shape)} (only 2-D spatial ops are supported)")
        if v.scale is not None and any(x is not None and len(x) > 1 for x in (v.scale, v.bias)):
            v = self.real(onnx_node, v)
        c, h, w = v.shape
        if h * w == 1 or c == 1:
            return replace(v, cl=True)
        if v.node not in self._cl_cache:
            name = self.unique(f"{v.node}_to_nhwc")
            self.add(Node(name, "transpose", [v.node], (h, w, c), attrs={"in_shape": (c, h, w), "perm": (1, 2, 0)},
                          meta={"onnx_op": "Transpose", "keras_class": "Transpose"}))
            self._cl_cache[v.node] = name
        return replace(v, node=self._cl_cache[v.node], cl=True)

    def plain(self, v: Value) -> Value:
        """v in the ONNX (C order of the NCHW shape) layout."""
        if not v.cl:
            return v
        c, h, w = v.shape
        if h * w == 1 or c == 1:
            return replace(v, cl=False)
        if v.node not in self._plain_cache:
            name = self.unique(f"{v.node}_to_nchw")
            self.add(Node(name, "transpose", [v.node], (c, h, w), attrs={"in_shape": (h, w, c), "perm": (2, 0, 1)},
                          meta={"onnx_op": "Transpose", "keras_class": "Transpose"}))
            self._plain_cache[v.node] = name
        return replace(v, node=self._plain_cache[v.node], cl=False)

    def node_shape(self, v: Value) -> tuple:
        return (v.shape[1], v.shape[2], v.shape[0]) if v.cl else tuple(v.shape)


def _attrs(onnx_node) -> dict:
    from onnx import helper
    out = {}
    for a in onnx_node.attribute:
        val = helper.get_attribute_value(a)
        out[a.name] = val.decode() if isinstance(val, bytes) else val
    return out


def _fail(onnx_node, msg: str):
    raise FrontendError(f"node {onnx_node.name!r} ({onnx_node.op_type}): {msg}")


# ---------------------------------------------------------------------------------------------- quantizers
def _scalar(onnx_node, arr, what: str) -> float:
    a = np.asarray(arr, dtype=np.float64).ravel()
    if a.size == 0 or np.any(a != a[0]):
        _fail(onnx_node, f"a per-channel {what} on activations is not supported yet; use a per-tensor quantizer "
                         f"(e.g. brevitas' Int8ActPerTensorFixedPoint)")
    return float(a[0])


def _po2_frac(onnx_node, s: float) -> int:
    """f with s == 2**-f, or a one-line error."""
    if not (s > 0 and math.isfinite(s)):
        _fail(onnx_node, f"scale {s!r} must be positive and finite")
    m, e = math.frexp(s)
    if m != 0.5:
        _fail(onnx_node, f"scale {s!r} is not a power of two; only power-of-two scales on activations are "
                         f"supported yet (brevitas' *FixedPoint quantizers, e.g. Int8ActPerTensorFixedPoint)")
    return -(e - 1)


def quant_cast(onnx_node, scale, zeropt, bitwidth, signed: bool, narrow: bool, mode: str):
    """The graph form of a Quant on data: ('cast', FixedType, hi clamp or None) or ('step', s)."""
    s = _scalar(onnx_node, scale, "scale")
    z = _scalar(onnx_node, zeropt, "zero point")
    b = _scalar(onnx_node, bitwidth, "bit width")
    if z != 0:
        _fail(onnx_node, f"zero point {z!r} is not supported; use a zero point of 0 (a symmetric or unsigned "
                         f"quantizer)")
    if b != int(b) or not 1 <= b <= 32:
        _fail(onnx_node, f"bit width {b!r} must be an integer between 1 and 32")
    b = int(b)
    f = _po2_frac(onnx_node, s)
    if b == 1 and signed:
        return ("step", s)
    rnd = ROUNDING_MODES.get(str(mode).upper())
    if rnd is None:
        _fail(onnx_node, f"rounding_mode {mode!r} has no fixed-point equivalent; supported: "
                         f"{', '.join(ROUNDING_MODES)}")
    if signed:
        return ("cast", FixedType(b, b - f, True, rnd, "SAT_SYM" if narrow else "SAT"), None)
    t = FixedType(b, b - f, False, rnd, "SAT")
    return ("cast", t, (2 ** b - 2) * s if narrow else None)


def _quant_node(ctx: Context, onnx_node, v: Value, spec) -> Value:
    name = ctx.unique(onnx_node.name)
    shape = ctx.node_shape(v)
    if spec[0] == "step":
        s = spec[1]
        node = Node(name, "quant_act", [v.node], shape,
                    attrs={"function": "step", "threshold": 0.0, "inclusive": True, "hi": s, "lo": -s},
                    types={"result": exact_value_type([s, -s])}, meta={"quantizer": f"bipolar {s:g}"})
    else:
        _, t, hi = spec
        if hi is None:
            node = Node(name, "activation", [v.node], shape, attrs={"activation": "linear"}, types={"result": t},
                        meta={"quantizer": t.cpp()})
        else:
            node = Node(name, "quant_act", [v.node], shape, attrs={"function": "round", "shift": 0, "offset": 0.0,
                                                                    "hi": hi}, types={"result": t},
                        meta={"quantizer": f"{t.cpp()} narrow"})
    ctx.add(node, onnx_node)
    return ctx.set(onnx_node, Value(name, v.shape, v.cl, True))


@handler("Quant")
def _quant(n, ctx: Context):
    a = _attrs(n)
    signed, narrow, mode = bool(a.get("signed", 1)), bool(a.get("narrow", 0)), a.get("rounding_mode", "ROUND")
    scale = ctx.need_const(n, 1, "scale")
    zeropt = ctx.need_const(n, 2, "zero point")
    bitwidth = ctx.need_const(n, 3, "bit width")
    x = ctx.const(n.input[0])
    if x is not None:
        # weights: qonnx's own function on float32, as execute_onnx computes them
        from qonnx.custom_op.general.intquant import int_quant
        f32 = lambda t: np.asarray(t, dtype=np.float32)  # noqa: E731
        y = int_quant(f32(x), f32(scale), f32(zeropt), f32(bitwidth), signed, narrow, mode)
        ctx.consts[n.output[0]] = np.asarray(y, dtype=np.float32)
        ctx.quantized.add(n.output[0])
        if np.all(np.asarray(zeropt) == 0) and np.all(np.asarray(scale) > 0):
            codes = quant_codes(f32(x) / f32(scale), int(np.asarray(bitwidth).ravel()[0]), signed, narrow, mode)
            ctx.codes[n.output[0]] = (codes, np.broadcast_to(f32(scale), codes.shape))
        return
    v = ctx.value(n, scaled=True)
    s = _scalar(n, scale, "scale")
    if s > 0 and math.isfinite(s) and math.frexp(s)[0] != 0.5:
        return float_quant(ctx, n, v, s, zeropt, bitwidth, signed, narrow, mode)
    _quant_node(ctx, n, ctx.real(n, v), quant_cast(n, scale, zeropt, bitwidth, signed, narrow, mode))


@handler("BipolarQuant")
def _bipolar(n, ctx: Context):
    scale = ctx.need_const(n, 1, "scale")
    x = ctx.const(n.input[0])
    if x is not None:
        from qonnx.custom_op.general.bipolar_quant import binary_quant
        ctx.consts[n.output[0]] = np.asarray(binary_quant(np.asarray(x, np.float32), np.asarray(scale, np.float32)),
                                             dtype=np.float32)
        ctx.quantized.add(n.output[0])
        return
    s = _scalar(n, scale, "scale")
    _po2_frac(n, s)
    _quant_node(ctx, n, ctx.value(n), ("step", s))


def _known_frac(ctx: Context, name: str):
    """Fraction bits every value of node ``name`` is known (at conversion time) to fit in, or None: a type the
    frontend set (a Quant), through data movement, max pooling and average pooling of power-of-two windows."""
    node = ctx.graph[name]
    t = node.types.get("result") or node.meta.get("override", {}).get("result")
    if t is not None:
        return t.frac
    if node.op in ("transpose",) or (node.op == "pooling" and node.attrs["mode"] == "max"):
        return _known_frac(ctx, node.inputs[0])
    if node.op == "pooling" and not any(node.attrs["pads"]):
        cells = int(np.prod(node.attrs["pool_size"]))
        f = _known_frac(ctx, node.inputs[0])
        if f is not None and cells & (cells - 1) == 0:
            return f + cells.bit_length() - 1          # the average of 2**k cells: k more fraction bits, exact
    return None


@handler("Trunc")
def _trunc(n, ctx: Context):
    """qonnx 1.0 Trunc (opset 2, Brevitas' TruncAvgPool2d): y = round(x / s) / 2**(fi - fo), clipped, rounded with
    rounding_mode, times 2**-fo.  With x on the grid of s the first rounding is exact, and the rest is a cast."""
    if len(n.input) != 6:
        _fail(n, "the 5-input Trunc of qonnx opset 1 is not supported; export with qonnx opset 2 (Brevitas >= 0.11)")
    a = _attrs(n)
    s = _scalar(n, ctx.need_const(n, 1, "scale"), "scale")
    z = _scalar(n, ctx.need_const(n, 2, "zero point"), "zero point")
    so = _scalar(n, ctx.need_const(n, 4, "output scale"), "output scale")
    ob = _scalar(n, ctx.need_const(n, 5, "output bit width"), "output bit width")
    if z != 0:
        _fail(n, f"zero point {z!r} is not supported; use a zero point of 0")
    fi, fo = _po2_frac(n, s), _po2_frac(n, so)
    v = ctx.value(n)
    known = _known_frac(ctx, v.node)
    if known is None or known > fi:
        _fail(n, f"its input is not known to lie on the grid of its scale {s!r}, so its first rounding is not a "
                 f"fixed-point cast; supported: a Trunc after an average pooling of power-of-two windows of a "
                 f"quantized tensor (Brevitas' TruncAvgPool2d)")
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    if narrow and not signed:
        _fail(n, "narrow unsigned truncation is not supported")
    spec = quant_cast(n, so, 0.0, ob, signed, narrow, a.get("rounding_mode", "FLOOR"))
    _quant_node(ctx, n, v, spec)


# ---------------------------------------------------------------------------------------------- weighted
def _weight_types(ctx: Context, onnx_node, kernel, bias, w_name: str, b_name: str | None) -> dict:
    """Exact types for a quantized layer's kernel and bias (float32 values are dyadic: held exactly); {} for a
    float layer (the precision pass or calibration gives it types)."""
    if w_name not in ctx.quantized:
        return {}
    types = {"weight": exact_value_type(kernel)}
    bt = exact_value_type(bias)
    if bt.width > MAX_EXACT_BIAS_WIDTH and (b_name is None or b_name not in ctx.quantized):
        m = float(np.max(np.abs(bias)))
        integer = max(1, int(np.floor(np.log2(m))) + 2) if m > 0 else 1
        bt = FixedType(MAX_EXACT_BIAS_WIDTH, integer, True)
    types["bias"] = bt
    return types


def _dense(ctx: Context, n, v: Value, kernel: np.ndarray, bias: np.ndarray, w_name: str, b_name,
           orient=lambda w: w) -> Value:
    v = ctx.plain(v)
    n_in, n_out = kernel.shape
    if v.scale is not None:
        if len(v.shape) != 1 or v.shape[0] != n_in:
            _fail(n, f"input of shape {tuple(v.shape)} does not fit the {n_in}-row weight matrix")
        return weighted_codes(ctx, n, v, w_name, orient, b_name, bias,
                              lambda k, b: Node(ctx.unique(n.name), "dense", [v.node], (int(n_out),),
                                                attrs={"n_in": int(n_in), "n_out": int(n_out)},
                                                weights={"kernel": k, "bias": b}, meta={"zero_bias": b_name is None}),
                              (int(n_out),))
    if len(v.shape) != 1:
        _fail(n, f"input of shape {tuple(v.shape)} is not flat; flatten it first (a product over a "
                 f"{len(v.shape)}-d input is not supported yet)")
    if v.shape[0] != n_in:
        _fail(n, f"the weight matrix has {n_in} rows but the input has {v.shape[0]} values")
    kernel = np.asarray(kernel, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        _fail(n, "weights contain NaN or Inf; retrain or clean the model")
    types = _weight_types(ctx, n, kernel, bias, w_name, b_name)
    name = ctx.unique(n.name)
    ctx.add(Node(name, "dense", [v.node], (int(n_out),), attrs={"n_in": int(n_in), "n_out": int(n_out)},
                 weights={"kernel": kernel, "bias": bias}, types=types,
                 meta={"onnx_weight": w_name, "zero_bias": b_name is None}), n)
    return ctx.set(n, Value(name, (int(n_out),), False, v.quantized and bool(types)))


@handler("Gemm")
def _gemm(n, ctx: Context):
    a = _attrs(n)
    if a.get("transA", 0):
        _fail(n, "transA=1 is not supported; the input must be (batch, features)")
    B = ctx.need_const(n, 1, "weight")
    kernel = np.asarray(B, dtype=np.float32)
    kernel = kernel.T if a.get("transB", 0) else kernel
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        kernel = np.float32(alpha) * kernel
    b_name = n.input[2] if len(n.input) > 2 and n.input[2] else None
    bias = np.zeros(kernel.shape[1], dtype=np.float32)
    if b_name is not None:
        C = np.asarray(ctx.need_const(n, 2, "bias"), dtype=np.float32)
        if beta != 1.0:
            C = np.float32(beta) * C
        try:
            bias = np.broadcast_to(C.reshape(-1) if C.size == kernel.shape[1] else C, (kernel.shape[1],)).copy()
        except ValueError:
            _fail(n, f"bias of shape {C.shape} does not broadcast to the {kernel.shape[1]} outputs")
    _dense(ctx, n, ctx.value(n, scaled=True), kernel, bias, n.input[1], b_name,
           orient=lambda w: w.T if a.get("transB", 0) else w)


@handler("MatMul")
def _matmul(n, ctx: Context):
    W = ctx.need_const(n, 1, "weight")
    if W.ndim != 2:
        _fail(n, f"a weight of shape {W.shape} is not supported; MatMul needs a 2-d constant weight")
    _dense(ctx, n, ctx.value(n, scaled=True), np.asarray(W, np.float32), np.zeros(W.shape[1], np.float32), n.input[1],
           None)


def _consumers(ctx: Context, tensor: str) -> list:
    return [m for m in ctx.model.graph.node if tensor in m.input]


def _channel_vector(ctx: Context, n, v: Value, c: np.ndarray) -> np.ndarray | None:
    """A constant broadcast against v as one value per channel (the node's last axis), or None."""
    c = np.asarray(c, dtype=np.float32)
    shape = v.shape
    full = np.broadcast_to(c, (1,) + tuple(shape)) if c.ndim <= len(shape) + 1 else None
    if full is None:
        return None
    full = full[0]
    if len(shape) == 1:
        return full.astype(np.float64)
    if len(shape) == 3:
        per = full.reshape(shape[0], -1)
        if np.all(per == per[:, :1]):
            return per[:, 0].astype(np.float64)
    return None


@handler("Add", "Sub", "Mul")
def _binary(n, ctx: Context):
    a, b = n.input[0], n.input[1]
    ca, cb = ctx.const(a), ctx.const(b)
    if ca is None and cb is None:
        va, vb = ctx.real(n, ctx.values[a]), ctx.real(n, ctx.values[b])
        if tuple(va.shape) != tuple(vb.shape):
            _fail(n, f"inputs of shapes {tuple(va.shape)} and {tuple(vb.shape)}: broadcasting merges are not "
                     f"supported")
        if va.cl != vb.cl:
            va, vb = ctx.plain(va), ctx.plain(vb)
        mode = {"Add": "add", "Sub": "subtract", "Mul": "multiply"}[n.op_type]
        name = ctx.unique(n.name)
        ctx.add(Node(name, "merge", [va.node, vb.node], ctx.node_shape(va), attrs={"mode": mode}), n)
        ctx.set(n, Value(name, va.shape, va.cl, va.quantized and vb.quantized))
        return
    if ca is not None and cb is not None:
        _fail(n, "both inputs are constants (qonnx's constant folding should have removed this node)")
    v = ctx.value(n, 0 if cb is not None else 1, scaled=True)
    c = cb if cb is not None else ca
    if v.scale is not None:
        if n.op_type == "Add" and v.pending and v.bias is None and not v.relu:
            vec = _channel_vector(ctx, n, v, c)
            if vec is not None:
                return ctx.set(n, replace(v, bias=vec))
        v = ctx.real(n, v)
    c_name = b if cb is not None else a
    if n.op_type == "Sub" and cb is None:
        _fail(n, "constant - data is not supported; write it as data * -1 + constant")
    vec = _channel_vector(ctx, n, v, -np.asarray(c, np.float32) if n.op_type == "Sub" else c)
    if vec is None:
        _fail(n, f"a constant of shape {np.shape(c)} is not one value per channel of the {tuple(v.shape)} input")
    src = ctx.graph[v.node]
    # MatMul + Add: the constant is the dense layer's bias
    if n.op_type in ("Add", "Sub") and src.op == "dense" and src.meta.get("zero_bias") \
            and len(_consumers(ctx, _onnx_output_of(ctx, v.node))) == 1:
        src.weights["bias"] = vec
        src.meta["zero_bias"] = False
        if "weight" in src.types:
            src.types["bias"] = _weight_types(ctx, n, src.weights["kernel"], vec, src.meta["onnx_weight"],
                                              c_name)["bias"]
        ctx.set(n, v)
        return
    n_chan = len(vec)
    scale = vec if n.op_type == "Mul" else np.ones(n_chan)
    bias = np.zeros(n_chan) if n.op_type == "Mul" else vec
    name = ctx.unique(n.name)
    ctx.add(Node(name, "apply_scale", [v.node], ctx.node_shape(v), weights={"scale": scale, "bias": bias}), n)
    ctx.set(n, Value(name, v.shape, v.cl, v.quantized))


def _onnx_output_of(ctx: Context, node_name: str) -> str:
    for t, v in ctx.values.items():
        if v.node == node_name:
            return t
    return ""


def _pads(n, a: dict) -> tuple[int, int, int, int]:
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        _fail(n, f"auto_pad={a['auto_pad']!r} is not supported; export with explicit pads")
    p = list(a.get("pads", [0, 0, 0, 0]))
    if len(p) != 4:
        _fail(n, f"pads {p} are not 2-d pads")
    return (int(p[0]), int(p[2]), int(p[1]), int(p[3]))      # ONNX (top, left, bottom, right) -> (t, b, l, r)


def _spatial_out(n, h, w, k, s, pads, ceil_mode=0):
    t, b, left, r = pads
    if ceil_mode:
        oh, ow = -(-(h + t + b - k[0]) // s[0]) + 1, -(-(w + left + r - k[1]) // s[1]) + 1
        if (oh, ow) != ((h + t + b - k[0]) // s[0] + 1, (w + left + r - k[1]) // s[1] + 1):
            _fail(n, "ceil_mode=1 with a partial last window is not supported")
    oh, ow = (h + t + b - k[0]) // s[0] + 1, (w + left + r - k[1]) // s[1] + 1
    if oh < 1 or ow < 1:
        _fail(n, f"the window {tuple(k)} is larger than the padded input {h}x{w}")
    return oh, ow


@handler("Conv")
def _conv(n, ctx: Context):
    a = _attrs(n)
    v = ctx.channels_last(n, ctx.value(n, scaled=True))
    c, h, w = v.shape
    W = np.asarray(ctx.need_const(n, 1, "weight"), dtype=np.float32)
    if W.ndim != 4:
        _fail(n, f"only 2-d convolutions are supported, the weight has shape {W.shape}")
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        _fail(n, f"dilations={list(a['dilations'])} are not supported; use dilation 1")
    group = int(a.get("group", 1))
    f = W.shape[0]
    k = (int(W.shape[2]), int(W.shape[3]))
    s = tuple(int(x) for x in a.get("strides", [1, 1]))
    pads = _pads(n, a)
    oh, ow = _spatial_out(n, h, w, k, s, pads)
    b_name = n.input[2] if len(n.input) > 2 and n.input[2] else None
    bias = np.asarray(ctx.need_const(n, 2, "bias"), np.float64).reshape(-1) if b_name else np.zeros(f)
    if group == 1:
        if W.shape[1] != c:
            _fail(n, f"the weight expects {W.shape[1]} input channels, the input has {c}")
        kernel, op = W.transpose(2, 3, 1, 0).astype(np.float64), "conv2d"
    elif group == c == f and W.shape[1] == 1:
        kernel, op = W[:, 0].transpose(1, 2, 0).astype(np.float64), "depthwise_conv2d"
    else:
        _fail(n, f"group={group} is not supported; use group=1 or a depthwise convolution (group = channels)")
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        _fail(n, "weights contain NaN or Inf; retrain or clean the model")
    attrs = {"in_height": h, "in_width": w, "n_chan": c, "n_filt": f, "kernel_size": k, "strides": s,
             "padding": "same" if any(pads) else "valid", "pads": pads}
    if v.scale is not None:
        orient = (lambda q: q.transpose(2, 3, 1, 0)) if op == "conv2d" else (lambda q: q[:, 0].transpose(1, 2, 0))
        return weighted_codes(ctx, n, v, n.input[1], orient, b_name, bias,
                              lambda kk, bb: Node(ctx.unique(n.name), op, [v.node], (oh, ow, f), attrs=attrs,
                                                  weights={"kernel": kk, "bias": bb}), (f, oh, ow))
    types = _weight_types(ctx, n, kernel, bias, n.input[1], b_name)
    name = ctx.unique(n.name)
    ctx.add(Node(name, op, [v.node], (oh, ow, f),
                 attrs={"in_height": h, "in_width": w, "n_chan": c, "n_filt": f, "kernel_size": k, "strides": s,
                        "padding": "same" if any(pads) else "valid", "pads": pads},
                 weights={"kernel": kernel, "bias": bias}, types=types), n)
    ctx.set(n, Value(name, (f, oh, ow), True, v.quantized and bool(types)))


def _pool(n, ctx: Context, mode: str, window=None):
    a = _attrs(n)
    # max pooling commutes with the pending increasing per-channel x * S + B (S > 0): it may take codes
    v = ctx.channels_last(n, ctx.value(n, scaled=mode == "max"))
    c, h, w = v.shape
    if window is None:
        k = tuple(int(x) for x in a["kernel_shape"])
        s = tuple(int(x) for x in a.get("strides", [1, 1]))
        pads = _pads(n, a)
        if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            _fail(n, "dilations are not supported")
        if mode == "average" and any(pads) and a.get("count_include_pad", 0):
            _fail(n, "count_include_pad=1 with padding is not supported (the average divides by the cells "
                     "inside the image); use count_include_pad=False or no padding")
        if mode == "max" and any(pads):
            _fail(n, "max pooling with padding is not supported yet")
        oh, ow = _spatial_out(n, h, w, k, s, pads, a.get("ceil_mode", 0))
    else:
        k, s, pads, (oh, ow) = (h, w), (h, w), (0, 0, 0, 0), (1, 1)
    name = ctx.unique(n.name)
    ctx.add(Node(name, "pooling", [v.node], (oh, ow, c),
                 attrs={"mode": mode, "in_height": h, "in_width": w, "n_chan": c, "pool_size": k, "strides": s,
                        "padding": "same" if any(pads) else "valid", "pads": pads}), n)
    ctx.set(n, replace(v, node=name, shape=(c, oh, ow), cl=True))


@handler("MaxPool")
def _maxpool(n, ctx):
    _pool(n, ctx, "max")


@handler("AveragePool")
def _avgpool(n, ctx):
    _pool(n, ctx, "average")


@handler("GlobalAveragePool")
def _gap(n, ctx):
    _pool(n, ctx, "average", window=True)


@handler("GlobalMaxPool")
def _gmp(n, ctx):
    _pool(n, ctx, "max", window=True)


# ---------------------------------------------------------------------------------------------- element-wise
def _activation(n, ctx: Context, attrs: dict):
    v = ctx.value(n)
    name = ctx.unique(n.name)
    ctx.add(Node(name, "activation", [v.node], ctx.node_shape(v), attrs=attrs), n)
    ctx.set(n, Value(name, v.shape, v.cl, v.quantized))


@handler("Relu")
def _relu(n, ctx):
    v = ctx.value(n, scaled=True)
    if v.scale is not None and v.pending:
        return ctx.set(n, replace(v, relu=True))          # applied by the next Quant's thresholds
    if v.scale is not None:
        name = ctx.unique(n.name)                         # codes k * s, s > 0: relu on the codes
        ctx.add(Node(name, "activation", [v.node], ctx.node_shape(v), attrs={"activation": "relu"}), n)
        return ctx.set(n, replace(v, node=name, range=(max(v.range[0], 0), max(v.range[1], 0))))
    _activation(n, ctx, {"activation": "relu"})


@handler("Sigmoid")
def _sigmoid(n, ctx):
    _activation(n, ctx, {"activation": "sigmoid"})


@handler("Tanh")
def _tanh(n, ctx):
    _activation(n, ctx, {"activation": "tanh"})


@handler("Clip")
def _clip(n, ctx: Context):
    a = _attrs(n)
    lo = ctx.const(n.input[1]) if len(n.input) > 1 and n.input[1] else a.get("min")
    hi = ctx.const(n.input[2]) if len(n.input) > 2 and n.input[2] else a.get("max")
    lo = None if lo is None else float(np.asarray(lo))
    hi = None if hi is None else float(np.asarray(hi))
    if lo == 0.0 and hi is None:
        return _activation(n, ctx, {"activation": "relu"})
    if lo == 0.0 and hi is not None and hi == int(hi) and hi > 0:
        return _activation(n, ctx, {"activation": "relu_max", "max_int": int(hi)})
    _fail(n, f"Clip({lo}, {hi}) is not supported; supported: Clip(0, N) for a positive integer N (ReLU6) "
             f"and Clip(0, inf) (ReLU)")


@handler("Identity", "Dropout")
def _identity(n, ctx: Context):
    ctx.set(n, ctx.value(n, scaled=True))


@handler("Softmax")
def _softmax(n, ctx: Context):
    v = ctx.plain(ctx.value(n))
    axis = int(_attrs(n).get("axis", -1))
    if len(v.shape) != 1 or axis not in (-1, 1):
        _fail(n, f"softmax over axis {axis} of a {tuple(v.shape)} tensor is not supported; flatten first")
    name = ctx.unique(n.name)
    ctx.add(Node(name, "softmax", [v.node], tuple(v.shape)), n)
    ctx.set(n, Value(name, v.shape, False, v.quantized))


@handler("BatchNormalization")
def _batchnorm(n, ctx: Context):
    v = ctx.value(n)
    eps = np.float32(_attrs(n).get("epsilon", 1e-5))
    gamma, beta, mean, var = (np.asarray(ctx.need_const(n, k, w), np.float32)
                              for k, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    scale = gamma / np.sqrt(var + eps)
    bias = beta - mean * scale
    if len(v.shape) == 3:
        v = ctx.channels_last(n, v)
    n_filt = v.shape[0]
    name = ctx.unique(n.name)
    ctx.add(Node(name, "batchnorm", [v.node], ctx.node_shape(v), attrs={"n_filt": int(n_filt)},
                 weights={"scale": scale.astype(np.float64), "bias": bias.astype(np.float64)},
                 meta={"quantized": v.quantized}), n)
    ctx.set(n, Value(name, v.shape, v.cl, v.quantized))


# ---------------------------------------------------------------------------------------------- data movement
@handler("Flatten")
def _flatten(n, ctx: Context):
    axis = int(_attrs(n).get("axis", 1))
    if axis != 1:
        _fail(n, f"axis={axis} is not supported; flatten everything but the batch (axis=1)")
    v = ctx.plain(ctx.value(n, scaled=True))
    ctx.set(n, replace(flat_vectors(v, (int(np.prod(v.shape)),)), node=v.node))


@handler("Reshape")
def _reshape(n, ctx: Context):
    v = ctx.value(n, scaled=True)
    target = [int(d) for d in np.asarray(ctx.need_const(n, 1, "shape")).ravel()]
    full = (1,) + tuple(v.shape)
    shape = [full[i] if d == 0 else d for i, d in enumerate(target)]
    if shape.count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1]))
        shape[shape.index(-1)] = int(np.prod(full)) // max(known, 1)
    if int(np.prod(shape)) != int(np.prod(full)) or not shape or shape[0] != 1:
        _fail(n, f"reshape of {full} to {tuple(target)} is not supported; the batch dimension must stay")
    v = ctx.plain(v)
    if v.scale is not None and len(shape) != 2:
        v = ctx.real(n, v)
    ctx.set(n, replace(flat_vectors(v, tuple(shape[1:])), node=v.node))


@handler("Transpose")
def _transpose(n, ctx: Context):
    v = ctx.plain(ctx.value(n))
    perm = [int(p) for p in _attrs(n).get("perm", list(range(len(v.shape), -1, -1)))]
    if perm[0] != 0:
        _fail(n, f"perm {perm} moves the batch dimension; only the other axes may move")
    perm = tuple(p - 1 for p in perm[1:])
    shape = tuple(v.shape[p] for p in perm)
    name = ctx.unique(n.name)
    ctx.add(Node(name, "transpose", [v.node], shape, attrs={"in_shape": tuple(v.shape), "perm": perm}), n)
    ctx.set(n, Value(name, shape, False, v.quantized))


@handler("Concat")
def _concat(n, ctx: Context):
    vs = [ctx.values.get(i) for i in n.input]
    if len(vs) != 2 or any(v is None for v in vs):
        _fail(n, "only the concatenation of two computed tensors is supported")
    vs = [ctx.real(n, v) for v in vs]
    axis = int(_attrs(n).get("axis", 1))
    va, vb = vs
    if va.cl != vb.cl:
        va, vb = ctx.plain(va), ctx.plain(vb)
    rank = len(va.shape)
    axis = axis - 1 if axis > 0 else rank + axis
    node_axis = ((rank - 1) if axis == 0 else axis - 1) if va.cl else axis
    shape = list(va.shape)
    shape[axis] += vb.shape[axis]
    name = ctx.unique(n.name)
    v_out = Value(name, tuple(shape), va.cl, va.quantized and vb.quantized)
    ctx.add(Node(name, "concatenate", [va.node, vb.node], ctx.node_shape(v_out),
                 attrs={"axis": node_axis, "shape1": ctx.node_shape(va), "shape2": ctx.node_shape(vb)}), n)
    ctx.set(n, v_out)


# ---------------------------------------------------------------------------------------------- the walk
def qonnx_to_graph(model, name: str) -> Graph:
    """Walk the (cleaned-up, topologically sorted) ONNX graph and build the layer graph."""
    graph = Graph(_ident(name))
    ctx = Context(model, graph)
    inits = set(ctx.consts)
    (inp,) = [i for i in model.graph.input if i.name not in inits]
    shape = model.get_tensor_shape(inp.name)
    if not shape or len(shape) < 2 or any(not isinstance(d, int) or d < 1 for d in shape[1:]):
        raise FrontendError(f"input {inp.name!r}: shape {shape} needs a batch dimension and fixed positive sizes")
    in_shape = tuple(int(d) for d in shape[1:])
    in_name = ctx.unique(inp.name)
    in_node = Node(in_name, "input", [], in_shape, meta={"onnx_op": "input", "keras_class": "InputLayer"})
    graph.add(in_node)
    graph.inputs.append(in_name)
    ctx.values[inp.name] = Value(in_name, in_shape, False, False)
    nodes = list(model.graph.node)
    # a model that starts with a Quant: the input type is that quantizer's (the cast happens as the input is read)
    first = [m for m in nodes if inp.name in m.input]
    if len(first) == 1 and first[0].op_type == "Quant" and first[0].input[0] == inp.name:
        q = first[0]
        a = _attrs(q)
        try:
            spec = quant_cast(q, ctx.need_const(q, 1, "scale"), ctx.need_const(q, 2, "zero point"),
                              ctx.need_const(q, 3, "bit width"), bool(a.get("signed", 1)), bool(a.get("narrow", 0)),
                              a.get("rounding_mode", "ROUND"))
        except FrontendError:
            spec = None
        if spec is not None and spec[0] == "cast" and spec[2] is None:
            in_node.meta["override"] = {"result": spec[1]}
            in_node.meta["quantizer"] = spec[1].cpp()
            ctx.values[q.output[0]] = Value(in_name, in_shape, False, True)
            nodes.remove(q)
    for n in nodes:
        fn = HANDLERS.get(n.op_type)
        if fn is None:
            raise FrontendError(f"node {n.name!r} ({n.op_type}{'' if n.domain in ('', 'ai.onnx') else ', ' + n.domain}) "
                                f"is not supported; supported ops: {', '.join(supported_ops())}")
        n_nodes = len(graph)
        try:
            fn(n, ctx)
        except FrontendError:
            raise
        except Exception as e:
            raise FrontendError(f"node {n.name!r} ({n.op_type}): {type(e).__name__}: {e}") from e
        for node in list(graph)[n_nodes:]:
            if any(int(d) < 1 for d in node.shape):
                _fail(n, f"output shape {tuple(node.shape)} has a zero dimension")
    (out,) = model.graph.output
    if out.name not in ctx.values:
        raise FrontendError(f"output {out.name!r} is a constant; the model computes nothing from its input")
    v = ctx.plain(ctx.real(None, ctx.values[out.name]))
    out_shape = tuple(int(d) for d in (model.get_tensor_shape(out.name) or [1])[1:]) or tuple(v.shape)
    node = graph[v.node]
    if tuple(node.shape) != out_shape or node.op == "input" or node.name in graph.inputs:
        oname = ctx.unique(f"{out.name}")
        graph.add(Node(oname, "activation", [v.node], out_shape, attrs={"activation": "linear"},
                       meta={"onnx_op": "Identity", "keras_class": "Identity"}))
        graph.outputs = [oname]
    else:
        graph.outputs = [v.node]
    return graph


# the float-scale (requantizing) half of the frontend; it imports Context and Value from here, so it comes last
from .requant import quant_codes  # noqa: E402
from .requant_nodes import flat_vectors, float_quant, materialize, weighted_codes  # noqa: E402
