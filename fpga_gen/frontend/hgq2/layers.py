"""HGQ2 layer handlers: one function per layer class (a small registry; :data:`HANDLERS`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...ir.graph import Graph, Node
from ...ir.quant import exact_value_type
from ...ir.spatial import out_size_and_pads
from ...ir.types import FixedType
from ..keras.loader import REJECTED_CLASSES
from ..registry import FrontendError, Registry
from .archive import Archive
from .quantizer import element_types, parse_quantizer, quantize_f32, union_type

__all__ = ["HANDLERS", "build_graph"]

# the frontend's handlers (fpga_gen/frontend/registry.py): source layer -> function
LAYERS = Registry("layer")
HANDLERS = LAYERS.handlers
handler = LAYERS.register


class Ctx:
    def __init__(self, archive: Archive, graph: Graph):
        self.archive = archive
        self.graph = graph
        self.src: dict[str, str] = {}           # Keras layer name -> node holding its output
        self.kshape: dict[str, tuple] = {}      # Keras layer name -> its Keras output shape (no batch)
        self.layer = None                       # the layer entry being converted
        self.reserved: set[str] = set()         # every Keras layer's name: generated nodes avoid them

    # -------------------------------------------------------------- helpers for handlers
    @property
    def name(self) -> str:
        return self.layer["config"].get("name") or self.layer.get("name")

    @property
    def cls(self) -> str:
        return self.layer["class_name"]

    @property
    def cfg(self) -> dict:
        return self.layer["config"]

    def fail(self, msg: str):
        raise FrontendError(f"{self.archive.path}: layer {self.name!r} ({self.cls}): {msg}")

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.graph or name in self.reserved:
            k += 1
            name = f"{base}_{k}"
        return name

    def add(self, node: Node) -> str:
        self.graph.add(node)
        return node.name

    def own_vars(self) -> list[np.ndarray]:
        v = self.archive.layer_vars(self.name)
        if v is None:
            self.fail("its variables are missing from model.weights.h5; re-save the model")
        return v

    def quantizer(self, attr: str, conf_key: str, enabled: bool = True):
        conf = self.cfg.get(conf_key) if enabled else None
        if conf is None:
            return None
        return parse_quantizer(conf, self.archive.layer_vars(self.name, f"{attr}/quantizer"),
                               f"{self.archive.path}: layer {self.name!r} ({self.cls}) {attr}")

    def quantize_tensor(self, src: str, q, shape: tuple, label: str) -> str:
        """A quantizer on the tensor held by node ``src`` (Keras shape ``shape``): a linear cast when every
        element has one grid, else a fixed_quant node.  Returns the node holding the result."""
        if q is None:
            return src
        k, i, f = element_types(q, shape)
        n = int(np.prod(shape))
        node_shape = self.graph[src].shape
        name = self.unique(f"{self.name}_{label}")
        meta = {"quantizer": q.text()}
        w = k + i + f
        # one grid for every element: a plain cast, except a one-bit signed SAT_SYM type, whose only HGQ2 value
        # is 0 (the symmetric range [-0, 0]) while the AMD header's ap_fixed<1, ., ., AP_SAT_SYM> keeps its
        # negative code: fixed_quant clamps it to 0 as HGQ2 does
        one_bit_sym = q.overflow_mode == "SAT_SYM" and k[0] == 1 and w[0] == 1
        if len(set(zip(k.tolist(), i.tolist(), f.tolist()))) == 1 and w[0] > 0 and not one_bit_sym:
            sat = q.overflow_mode if not (q.overflow_mode == "SAT_SYM" and k[0] == 0) else "SAT"
            t = FixedType(int(w[0]), int(k[0] + i[0]), bool(k[0]), q.round_mode, sat)
            return self.add(Node(name, "activation", [src], node_shape, attrs={"activation": "linear"},
                                 types={"result": t}, meta=meta))
        rt = union_type(k, i, f)
        return self.add(Node(name, "fixed_quant", [src], node_shape,
                             attrs={"rounding": q.round_mode, "overflow": q.overflow_mode},
                             weights={"k": k.astype(np.float64), "i": i.astype(np.float64),
                                      "f": f.astype(np.float64)},
                             types={"result": rt}, meta=meta))

    def input_quant(self, src: str, shape: tuple) -> str:
        if not self.cfg.get("enable_iq", True):
            return src
        return self.quantize_tensor(src, self.quantizer("iq", "iq_conf"), shape, "iq")

    def output_quant(self, src: str, shape: tuple) -> str:
        if not self.cfg.get("enable_oq", False):
            return src
        return self.quantize_tensor(src, self.quantizer("oq", "oq_conf"), shape, "oq")

    def constant(self, attr: str, conf_key: str, values: np.ndarray, what: str):
        """A weight/bias tensor through its quantizer (float32, as HGQ2) -> (exact values, their type)."""
        if not np.all(np.isfinite(values)):
            self.fail(f"{what} contains NaN or Inf; retrain or clean the model")
        q = self.quantizer(attr, conf_key)
        if q is None:
            self.fail(f"{what} has no quantizer ({conf_key} is None); HGQ2 layers quantize their weights")
        if q.k.shape != tuple(values.shape) and q.k.size != 1:
            try:
                np.broadcast_to(q.k, values.shape)
            except ValueError:
                self.fail(f"{what} quantizer has bit widths of shape {q.k.shape}, the {what} {values.shape}")
        v = quantize_f32(q, values)
        return v, exact_value_type(v)


def _history(t) -> str:
    if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
        h = t["config"]["keras_history"]
        return str(h[0])
    raise FrontendError(f"unexpected inbound tensor {str(t)[:80]}")


def _inbound(layer: dict) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    if not nodes:
        return []
    if len(nodes) > 1:
        raise FrontendError(f"layer {layer.get('name')!r} is called {len(nodes)} times; shared layers are not "
                            f"supported")
    args = nodes[0].get("args", [])
    if len(args) == 1 and isinstance(args[0], list):
        args = args[0]
    return [_history(a) for a in args]


def _model_layers(cfg: dict, path: Path) -> tuple[list[dict], list[str], list[str]]:
    cls = cfg.get("class_name")
    c = cfg.get("config", {})
    layers = c.get("layers")
    if not isinstance(layers, list):
        raise FrontendError(f"{path}: config.json holds no layer list; re-save the model")
    if cls == "Sequential":
        out, prev = [], None
        for k, l in enumerate(layers):
            l = dict(l)
            lname = l["config"].get("name")
            l["name"] = lname
            if prev is None and l["class_name"] != "InputLayer":
                bs = c.get("build_input_shape") or l.get("build_config", {}).get("input_shape")
                if not bs:
                    raise FrontendError(f"{path}: the Sequential model has no input shape; build it before saving")
                out.append({"class_name": "InputLayer", "name": "input_layer", "inbound": [],
                            "config": {"name": "input_layer", "batch_shape": bs}})
                prev = "input_layer"
            l["inbound"] = [prev] if prev else []
            out.append(l)
            prev = lname
        return out, [out[0]["name"]], [prev]
    if cls not in ("Functional", "Model"):
        raise FrontendError(f"{path}: model class {cls!r} is not supported; save a Sequential or functional model")
    out = []
    for l in layers:
        l = dict(l)
        l["name"] = l.get("name") or l["config"].get("name")
        l["inbound"] = _inbound(l)
        out.append(l)

    def names(v):
        # [[name, 0, 0], ...] or [name, 0, 0]
        if isinstance(v, list) and v and isinstance(v[0], str):
            return [v[0]]
        return [x[0] for x in v]
    return out, names(c.get("input_layers", [])), names(c.get("output_layers", []))


def build_graph(path: Path, name: str | None = None) -> Graph:
    archive = Archive(path)
    cfg = archive.config
    layers, ins, outs = _model_layers(cfg, path)
    if len(ins) != 1 or len(outs) != 1:
        raise FrontendError(f"{path}: the model has {len(ins)} inputs and {len(outs)} outputs; fpga-gen supports "
                            f"models with one input and one output")
    for l in layers:
        c = l["class_name"]
        if c in REJECTED_CLASSES:
            raise FrontendError(f"{path}: layer {l['name']!r} ({c}): {REJECTED_CLASSES[c]}")
        if c not in HANDLERS:
            raise FrontendError(f"{path}: layer {l['name']!r} has class {c!r}, which the HGQ2 frontend does not "
                                f"support; supported: {', '.join(sorted(HANDLERS))}")
    graph = Graph(re.sub(r"\W", "_", name or cfg.get("config", {}).get("name") or path.stem))
    ctx = Ctx(archive, graph)
    ctx.reserved = {l["name"] for l in layers}
    for l in layers:
        ctx.layer = l
        for i in l["inbound"]:
            if i not in ctx.src:
                ctx.fail(f"its input {i!r} is not defined before it")
        HANDLERS[l["class_name"]](ctx, l)
    out = ctx.src[outs[0]]
    if graph[out].op == "input":
        raise FrontendError(f"{path}: the model computes nothing (its output is its input)")
    graph.outputs = [out]
    return graph


# ====================================================================== handlers
def _one_input(ctx: Ctx) -> tuple[str, tuple]:
    if len(ctx.layer["inbound"]) != 1:
        ctx.fail(f"expects one input, got {len(ctx.layer['inbound'])}")
    (i,) = ctx.layer["inbound"]
    return ctx.src[i], ctx.kshape[i]


def _set(ctx: Ctx, node_name: str, shape: tuple):
    ctx.src[ctx.name] = node_name
    ctx.kshape[ctx.name] = tuple(int(d) for d in shape)


def _dense_node(ctx, x: str, kernel, bias, n_in: int, n_out: int) -> str:
    """The dense node of a QDense-like layer: kernel and bias quantized by the layer's own quantizers (kq, bq)."""
    k, kt = ctx.constant("kq", "kq_conf", kernel, "kernel")
    if bias is not None:
        b, bt = ctx.constant("bq", "bq_conf", bias, "bias")
    else:
        b, bt = np.zeros(n_out), FixedType(1, 1, True)
    return ctx.add(Node(ctx.name, "dense", [x], (n_out,), attrs={"n_in": n_in, "n_out": n_out},
                        weights={"kernel": k, "bias": b}, types={"weight": kt, "bias": bt}))


@handler("InputLayer")
def _input(ctx: Ctx, layer):
    bs = ctx.cfg.get("batch_shape") or ctx.cfg.get("batch_input_shape")
    if not bs or any(d is None for d in bs[1:]) or any(int(d) <= 0 for d in bs[1:]):
        ctx.fail(f"input shape {bs} must have known positive dimensions")
    shape = tuple(int(d) for d in bs[1:])
    ctx.graph.add(Node(ctx.name, "input", [], shape))
    ctx.graph.inputs.append(ctx.name)
    _set(ctx, ctx.name, shape)


def _act_name(a) -> str:
    if a is None:
        return "linear"
    if isinstance(a, dict):                       # a serialized activation function
        a = a.get("config", a.get("class_name"))
    return str(a)


def _activation(ctx: Ctx, src: str, act, shape: tuple, own: bool = False) -> str:
    """The layer's activation after node ``src``: a node <layer>_relu (own: named after the layer itself)."""
    kind = _act_name(act)
    if kind == "linear":
        return src
    if kind == "relu":
        name = ctx.name if own else ctx.unique(f"{ctx.name}_relu")
        return ctx.add(Node(name, "activation", [src], ctx.graph[src].shape, attrs={"activation": "relu"}))
    ctx.fail(f"activation {kind!r} is not supported; supported: relu, linear (quantize other functions with "
             f"QUnaryFunctionLUT)")


@handler("QDense", "QBatchNormDense")
def _qdense(ctx: Ctx, layer):
    src, shape = _one_input(ctx)
    if len(shape) != 1:
        ctx.fail(f"a dense layer on a {len(shape)}-d input {shape} is not supported; Flatten first")
    n_in, n_out = shape[0], int(ctx.cfg["units"])
    x = ctx.input_quant(src, shape)
    v = ctx.own_vars()
    use_bias = bool(ctx.cfg.get("use_bias", True))
    kernel = np.asarray(v[0], dtype=np.float32)
    if kernel.shape != (n_in, n_out):
        ctx.fail(f"kernel has shape {kernel.shape}, expected {(n_in, n_out)}")
    bias = np.asarray(v[1], dtype=np.float32) if use_bias else None
    if ctx.cls == "QBatchNormDense":
        kernel, bias = _fused_bn_dense(ctx, v, kernel, bias, n_in)
    out = _dense_node(ctx, x, kernel, bias, n_in, n_out)
    out = _activation(ctx, out, ctx.cfg.get("activation"), (n_out,))
    _set(ctx, ctx.output_quant(out, (n_out,)), (n_out,))


def _fused_bn_dense(ctx: Ctx, v, kernel, bias, n_in):
    """QBatchNormDense at inference: kernel * (gamma / sqrt(var + eps))[:, None] and bias - mean @ kernel, in
    float32 as HGQ2 (hgq/layers/core/dense.py)."""
    scale = bool(ctx.cfg.get("scale", True))
    # trainable first: kernel, bias, [bn_gamma]; then beta, ebops (with ebops enabled), moving mean, variance
    n_t = 3 if scale else 2
    gamma = np.asarray(v[2], dtype=np.float32) if scale else np.float32(1.0)
    mean, var = np.asarray(v[-2], dtype=np.float32), np.asarray(v[-1], dtype=np.float32)
    if mean.shape != (n_in,) or var.shape != (n_in,) or len(v) < n_t + 2:
        ctx.fail("its batch-norm variables do not match the input size")
    eps = np.float32(ctx.cfg.get("epsilon", 1e-3))
    scaler = (gamma / np.sqrt(var + eps)).astype(np.float32)
    fused_k = (scaler[:, None] * kernel).astype(np.float32)
    offset = -(mean.astype(np.float32) @ kernel).astype(np.float32)
    return fused_k, (bias + offset).astype(np.float32)


@handler("ReLU", "Activation")
def _relu(ctx: Ctx, layer):
    src, shape = _one_input(ctx)
    if ctx.cls == "ReLU":
        c = ctx.cfg
        if c.get("max_value") is not None or float(c.get("negative_slope", 0.0) or 0.0) != 0.0 or \
                float(c.get("threshold", 0.0) or 0.0) != 0.0:
            ctx.fail("only the plain ReLU (no max_value, negative_slope or threshold) is supported")
        act = "relu"
    else:
        act = _act_name(ctx.cfg.get("activation"))
        if act not in ("relu", "linear"):
            ctx.fail(f"activation {act!r} is not supported; supported: relu, linear")
    _set(ctx, _activation(ctx, src, act, shape, own=True), shape)


@handler("Flatten", "Reshape", "Dropout")
def _relabel(ctx: Ctx, layer):
    src, shape = _one_input(ctx)
    n = int(np.prod(shape))
    if ctx.cls == "Flatten":
        new = (n,)
    elif ctx.cls == "Dropout":
        new = shape
    else:
        t = list(ctx.cfg["target_shape"])
        if t.count(-1) == 1:
            known = int(np.prod([d for d in t if d != -1]))
            t[t.index(-1)] = n // known
        new = tuple(int(d) for d in t)
        if int(np.prod(new)) != n:
            ctx.fail(f"target shape {tuple(ctx.cfg['target_shape'])} does not hold the {n} input values")
    _set(ctx, src, new)


def _ints(v, n: int) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    return tuple(int(x) for x in v)


def _spatial(ctx: Ctx, rank: int) -> tuple[str, tuple, tuple]:
    """The input of a 1-D/2-D layer: (node, Keras shape, (height, width, channels))."""
    src, shape = _one_input(ctx)
    if ctx.cfg.get("data_format", "channels_last") not in ("channels_last", None):
        ctx.fail(f"data_format={ctx.cfg['data_format']!r} is not supported; use channels_last")
    if len(shape) != rank + 1:
        ctx.fail(f"needs a {rank + 1}-d input, got shape {shape}")
    hwc = (shape[0], shape[1], shape[2]) if rank == 2 else (1, shape[0], shape[1])
    return src, shape, hwc


@handler("QConv2D", "QConv1D")
def _qconv(ctx: Ctx, layer):
    rank = 2 if ctx.cls == "QConv2D" else 1
    src, shape, (h, w, c) = _spatial(ctx, rank)
    cfg = ctx.cfg
    padding = cfg.get("padding", "valid")
    if padding not in ("valid", "same"):
        ctx.fail(f"padding={padding!r} is not supported; use 'valid' or 'same'")
    if _ints(cfg.get("dilation_rate", 1), rank) != (1,) * rank or int(cfg.get("groups", 1) or 1) != 1:
        ctx.fail("dilation_rate and groups must be 1")
    ks, st = _ints(cfg["kernel_size"], rank), _ints(cfg.get("strides", 1), rank)
    if rank == 1:
        ks, st = (1,) + ks, (1,) + st
    oh, pt, pb = out_size_and_pads(h, ks[0], st[0], padding)
    ow, pl, pr = out_size_and_pads(w, ks[1], st[1], padding)
    n_filt = int(cfg["filters"])
    x = ctx.input_quant(src, shape)
    v = ctx.own_vars()
    kernel = np.asarray(v[0], dtype=np.float32)
    if kernel.shape != tuple(ks[2 - rank:]) + (c, n_filt):
        ctx.fail(f"kernel has shape {kernel.shape}, expected {tuple(ks[2 - rank:]) + (c, n_filt)}")
    k, kt = ctx.constant("kq", "kq_conf", kernel, "kernel")
    if cfg.get("use_bias", True):
        b, bt = ctx.constant("bq", "bq_conf", np.asarray(v[1], dtype=np.float32), "bias")
    else:
        b, bt = np.zeros(n_filt), FixedType(1, 1, True)
    out_shape = (oh, ow, n_filt) if rank == 2 else (ow, n_filt)
    out = ctx.add(Node(ctx.name, "conv2d", [x], out_shape,
                       attrs={"in_height": h, "in_width": w, "n_chan": c, "n_filt": n_filt,
                              "kernel_size": tuple(ks), "strides": tuple(st), "padding": padding,
                              "pads": (pt, pb, pl, pr)},
                       weights={"kernel": k.reshape(ks[0], ks[1], c, n_filt), "bias": b},
                       types={"weight": kt, "bias": bt}))
    out = _activation(ctx, out, cfg.get("activation"), out_shape)
    _set(ctx, ctx.output_quant(out, out_shape), out_shape)


_POOL = {"QMaxPooling2D": ("max", 2), "QMaxPool2D": ("max", 2), "QAveragePooling2D": ("average", 2),
         "QAvgPool2D": ("average", 2), "QMaxPooling1D": ("max", 1), "QMaxPool1D": ("max", 1),
         "QAveragePooling1D": ("average", 1), "QAvgPool1D": ("average", 1)}
_GPOOL = {"QGlobalMaxPooling2D": ("max", 2), "QGlobalMaxPool2D": ("max", 2),
          "QGlobalAveragePooling2D": ("average", 2), "QGlobalAvgPool2D": ("average", 2),
          "QGlobalMaxPooling1D": ("max", 1), "QGlobalMaxPool1D": ("max", 1),
          "QGlobalAveragePooling1D": ("average", 1), "QGlobalAvgPool1D": ("average", 1)}


@handler(*_POOL, *_GPOOL)
def _pool(ctx: Ctx, layer):
    mode, rank = (_POOL.get(ctx.cls) or _GPOOL[ctx.cls])
    src, shape, (h, w, c) = _spatial(ctx, rank)
    cfg = ctx.cfg
    x = ctx.input_quant(src, shape)
    if ctx.cls in _GPOOL:
        pool, st, padding = (h, w), (h, w), "valid"
        out_shape = (c,) if not cfg.get("keepdims") else (1,) * rank + (c,)
        oh = ow = 1
        pads = (0, 0, 0, 0)
    else:
        padding = cfg.get("padding", "valid")
        pool = _ints(cfg["pool_size"], rank)
        st = _ints(cfg.get("strides") or pool, rank)
        if rank == 1:
            pool, st = (1,) + pool, (1,) + st
        oh, pt, pb = out_size_and_pads(h, pool[0], st[0], padding)
        ow, pl, pr = out_size_and_pads(w, pool[1], st[1], padding)
        pads = (pt, pb, pl, pr)
        out_shape = (oh, ow, c) if rank == 2 else (ow, c)
    if mode == "average" and any(p & (p - 1) for p in pool) or (mode == "average" and any(pads)):
        ctx.fail(f"average pooling over a {pool[0]}x{pool[1]} window{' with padding' if any(pads) else ''} is not "
                 f"exact in fixed point; use power-of-two windows and padding='valid'")
    out = ctx.add(Node(ctx.name, "pooling", [x], out_shape,
                       attrs={"mode": mode, "in_height": h, "in_width": w, "n_chan": c, "pool_size": tuple(pool),
                              "strides": tuple(st), "padding": padding, "pads": pads}))
    _set(ctx, ctx.output_quant(out, out_shape), out_shape)


def _multi_path(n: int) -> str:
    """Where Keras stores input n's quantizer of a multi-input layer: iq/quantizers/quantizer[_n]/quantizer."""
    return f"iq/quantizers/quantizer{'' if n == 0 else f'_{n}'}/quantizer"


_MERGE = {"QAdd": "add", "QSubtract": "subtract", "QMultiply": "multiply", "QMaximum": "maximum",
          "QMinimum": "minimum"}


@handler(*_MERGE, "Concatenate", "Add", "Subtract", "Multiply", "Maximum", "Minimum")
def _merge(ctx: Ctx, layer):
    ins = ctx.layer["inbound"]
    if len(ins) < 2:
        ctx.fail(f"a merge needs at least two inputs, got {len(ins)}")
    shapes = [ctx.kshape[i] for i in ins]
    srcs = [ctx.src[i] for i in ins]
    if ctx.cls.startswith("Q") and ctx.cfg.get("enable_iq", True) and ctx.cfg.get("iq_confs") is not None:
        confs = ctx.cfg["iq_confs"]
        confs = confs if isinstance(confs, list) else [confs] * len(ins)
        for n, (conf, s) in enumerate(zip(confs, shapes)):
            q = parse_quantizer(conf, ctx.archive.layer_vars(ctx.name, _multi_path(n)),
                                f"{ctx.archive.path}: layer {ctx.name!r} ({ctx.cls}) iq {n}")
            srcs[n] = ctx.quantize_tensor(srcs[n], q, s, f"iq{n}")
    if ctx.cls == "Concatenate":
        axis = int(ctx.cfg.get("axis", -1))
        rank = len(shapes[0])
        axis = axis + rank if axis < 0 else axis - 1 if axis > 0 else axis
        if not 0 <= axis < rank:
            ctx.fail(f"axis {ctx.cfg.get('axis')} is outside the inputs' {rank} dimensions")
        cur, cur_shape = srcs[0], shapes[0]
        for k, (s, sh) in enumerate(zip(srcs[1:], shapes[1:])):
            new_shape = tuple(a + b if d == axis else a for d, (a, b) in enumerate(zip(cur_shape, sh)))
            name = ctx.name if k == len(srcs) - 2 else ctx.unique(f"{ctx.name}_{k}")
            cur = ctx.add(Node(name, "concatenate", [cur, s], new_shape,
                               attrs={"axis": axis, "shape1": tuple(cur_shape), "shape2": tuple(sh)}))
            cur_shape = new_shape
        _set(ctx, cur, cur_shape)
        return
    mode = _MERGE.get(ctx.cls) or ctx.cls.lower()
    if any(s != shapes[0] for s in shapes):
        ctx.fail(f"inputs of shapes {shapes} differ; broadcasting merges are not supported")
    cur = srcs[0]
    for k, s in enumerate(srcs[1:]):
        name = ctx.name if k == len(srcs) - 2 else ctx.unique(f"{ctx.name}_{k}")
        cur = ctx.add(Node(name, "merge", [cur, s], ctx.graph[srcs[0]].shape, attrs={"mode": mode}))
    _set(ctx, ctx.output_quant(cur, shapes[0]), shapes[0])


@handler("Quantizer")
def _quantizer(ctx: Ctx, layer):
    src, shape = _one_input(ctx)
    conf = ctx.cfg.get("config")
    q = parse_quantizer(conf, ctx.archive.layer_vars(ctx.name, "quantizer"),
                        f"{ctx.archive.path}: layer {ctx.name!r} ({ctx.cls})")
    _set(ctx, ctx.quantize_tensor(src, q, shape, "q"), shape)


@handler("QBatchNormalization")
def _qbatchnorm(ctx: Ctx, layer):
    """iq, then x * kq(gamma / sqrt(var + eps)) + bq(beta - mean * scale) per channel (the last axis), scale and
    offset in float32 as HGQ2 (hgq/layers/batch_normalization.py; center=False uses beta = 1 as HGQ2 does)."""
    src, shape = _one_input(ctx)
    cfg = ctx.cfg
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, len(shape)):
        ctx.fail(f"axis={cfg.get('axis')!r} is not supported; normalise the last axis")
    c = shape[-1]
    x = ctx.input_quant(src, shape)
    v = ctx.own_vars()
    scale_on, center = bool(cfg.get("scale", True)), bool(cfg.get("center", True))
    n_t = int(scale_on) + int(center)
    if len(v) < n_t + 2:
        ctx.fail("its batch-norm variables are missing")
    gamma = np.asarray(v[0], dtype=np.float32) if scale_on else np.float32(1.0)
    beta = np.asarray(v[int(scale_on)], dtype=np.float32) if center else np.float32(1.0)
    mean, var = (np.asarray(a, dtype=np.float32) for a in (v[n_t], v[n_t + 1]))
    if mean.shape != (c,) or var.shape != (c,):
        ctx.fail(f"moving mean/variance have shapes {mean.shape}, {var.shape}, expected ({c},)")
    eps = np.float32(cfg.get("epsilon", 1e-3))
    scale = (gamma / np.sqrt(var + eps)).astype(np.float32)
    offset = (beta - mean * scale).astype(np.float32)
    s, st = ctx.constant("kq", "kq_conf", scale, "scale")
    b, bt = ctx.constant("bq", "bq_conf", offset, "offset")
    out = ctx.add(Node(ctx.name, "batchnorm", [x], ctx.graph[x].shape, attrs={"n_filt": int(c)},
                       weights={"scale": s, "bias": b}, types={"scale": st, "bias": bt},
                       meta={"quantized": True}))
    _set(ctx, ctx.output_quant(out, shape), shape)


_EINSUM = re.compile(r"^(\.\.\.|[a-z]?)([a-z]),([a-z])([a-z])->(\.\.\.|[a-z]?)([a-z])$")


@handler("QEinsumDense", "QEinsumDenseBatchnorm")
def _qeinsum_dense(ctx: Ctx, layer):
    """QEinsumDense computing a dense layer: equation '...a,ab->...b' (or 'xa,ab->xb') on a 1-D input.
    QEinsumDenseBatchnorm (normalising the output axis): kernel * scaler[None, :] and bias - mean * scaler with
    scaler = gamma / sqrt(var + 1e-7) (Keras' epsilon(), not the layer's), in float32 as HGQ2
    (hgq/layers/einsum_dense_batchnorm.py)."""
    src, shape = _one_input(ctx)
    cfg = ctx.cfg
    eq = str(cfg.get("equation", "")).replace(" ", "")
    m = _EINSUM.match(eq)
    if not m or m.group(1) != m.group(5) or m.group(2) != m.group(3) or m.group(4) != m.group(6) \
            or len(shape) != 1:
        ctx.fail(f"equation {eq!r} on a {shape} input is not a dense layer; supported: '...a,ab->...b' on a "
                 f"1-D input")
    bias_axes = cfg.get("bias_axes")
    bn = ctx.cls == "QEinsumDenseBatchnorm"
    if bn and (cfg.get("normalize_axes") or bias_axes) != m.group(4):
        ctx.fail(f"normalize_axes={cfg.get('normalize_axes')!r} is not supported; normalise the output axis "
                 f"{m.group(4)!r}")
    if bias_axes not in (None, "", m.group(4)):
        ctx.fail(f"bias_axes={bias_axes!r} is not supported; use {m.group(4)!r} or None")
    n_in = shape[0]
    x = ctx.input_quant(src, shape)
    v = ctx.own_vars()
    kernel = np.asarray(v[0], dtype=np.float32)
    if kernel.ndim != 2 or kernel.shape[0] != n_in:
        ctx.fail(f"kernel has shape {kernel.shape}, expected ({n_in}, units)")
    n_out = kernel.shape[1]
    bias = np.asarray(v[1], dtype=np.float32).reshape(n_out) if bias_axes else None
    if bn:
        # trainable at creation: kernel, bias, [gamma]; then beta, ebops (with ebops), moving mean, variance
        gamma = np.asarray(v[2], dtype=np.float32).reshape(n_out) if cfg.get("scale", True) else np.float32(1.0)
        mean, var = (np.asarray(a, dtype=np.float32).reshape(-1) for a in (v[-2], v[-1]))
        if mean.shape != (n_out,) or var.shape != (n_out,):
            ctx.fail("its batch-norm variables do not match the output size")
        scaler = (gamma / np.sqrt(var + np.float32(1e-7))).astype(np.float32)
        kernel = (kernel * scaler[None, :]).astype(np.float32)
        bias = (bias + (-mean * scaler).astype(np.float32)).astype(np.float32)
    out = _dense_node(ctx, x, kernel, bias, n_in, n_out)
    out = _activation(ctx, out, cfg.get("activation"), (n_out,))
    _set(ctx, ctx.output_quant(out, (n_out,)), (n_out,))


MAX_TABLE_BITS = 16


def _uniform_type(ctx: Ctx, q, what: str) -> FixedType:
    """The one ap_fixed type of a per-tensor quantizer (a table's input or output)."""
    k, i, f = (a.reshape(-1) for a in q.broadcast(q.k.shape))
    if len(set(zip(k.tolist(), i.tolist(), f.tolist()))) != 1:
        ctx.fail(f"its {what} quantizer has heterogeneous bit widths; tables need one width "
                 f"(allow_heterogeneous_table=False)")
    k, i, f = int(k[0]), int(i[0]), int(f[0])
    if k + i + f <= 0:
        ctx.fail(f"its {what} quantizer has {k + i + f} bits: the table would be constant; retrain with more bits")
    if q.overflow_mode == "SAT_SYM" and k == 1 and k + i + f == 1:
        ctx.fail(f"its {what} quantizer has one bit with symmetric saturation: its only value is 0; retrain with "
                 f"more bits")
    i = max(i, -f)
    sat = "SAT" if (q.overflow_mode == "SAT_SYM" and k == 0) else q.overflow_mode
    return FixedType(k + i + f, k + i, bool(k), q.round_mode, sat)


def _table(ctx: Ctx, tin: FixedType, q_out, fn, what: str) -> tuple[np.ndarray, FixedType]:
    """fn on every value of tin (float32, as TensorFlow), through HGQ2's output quantizer ``q_out`` -> (levels,
    the smallest type holding them)."""
    if tin.width > MAX_TABLE_BITS:
        ctx.fail(f"its {what} table input {tin.cpp()} has {tin.width} bits; at most {MAX_TABLE_BITS} are supported")
    codes = np.arange(tin.raw_min, tin.raw_max + 1, dtype=np.float64)
    v = np.float32(codes * 2.0 ** -tin.frac)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        y = fn(v).astype(np.float32)
    _uniform_type(ctx, q_out, f"{what} output")
    levels = quantize_f32(q_out, y.reshape((-1,) + (1,) * max(q_out.k.ndim - 1, 0))).reshape(-1)
    t = exact_value_type(levels).plain() if np.any(levels != 0) else FixedType(1, 1, False)
    return levels, t


@handler("QSoftmax")
def _qsoftmax(ctx: Ctx, layer):
    """HGQ2's QSoftmax (hgq/layers/softmax.py), stable form over the last axis of a 1-D input: [iq], max - x,
    exp table (its iq, exp(-x * input_scaler) in float32, its oq), the sum, 1/(s + 1e-7) table (iq, oq), the
    product."""
    src, shape = _one_input(ctx)
    cfg = ctx.cfg
    axes = cfg.get("axes") or [-1]
    if len(shape) != 1 or [a if a >= 0 else a + 2 for a in axes] != [1]:
        ctx.fail(f"softmax over axes {axes} of a {shape} input is not supported; use a 1-D input (Flatten first)")
    if not cfg.get("stable", True):
        ctx.fail("stable=False is not supported; use the default stable=True")
    x = ctx.input_quant(src, shape)
    qs = {}
    for table in ("exp", "inv"):
        for io in ("iq", "oq"):
            qs[f"{table}_{io}"] = parse_quantizer(
                cfg.get(f"{table}_{io}_conf"), ctx.archive.layer_vars(ctx.name, f"{table}_table/{io}/quantizer"),
                f"{ctx.archive.path}: layer {ctx.name!r} ({ctx.cls}) {table}_table {io}")
            if qs[f"{table}_{io}"] is None:
                ctx.fail(f"its {table} table has no {io} quantizer")
    scaler = np.float32(cfg.get("input_scaler", 1.0))
    exp_in = _uniform_type(ctx, qs["exp_iq"], "exp table input")
    exp_levels, exp_out = _table(ctx, exp_in, qs["exp_oq"], lambda v: np.exp(-v * scaler), "exp")
    n = shape[0]
    grow = max(1, (n - 1).bit_length())
    sum_t = FixedType(exp_out.width + grow, exp_out.integer + grow, exp_out.signed)
    inv_in = _uniform_type(ctx, qs["inv_iq"], "1/x table input")
    eps = np.float32(1e-7)
    inv_levels, inv_out = _table(ctx, inv_in, qs["inv_oq"], lambda v: np.float32(1.0) / (v + eps), "1/x")
    signed = exp_out.signed or inv_out.signed
    result = FixedType(exp_out.width + inv_out.width, exp_out.integer + inv_out.integer, signed)
    out = ctx.add(Node(ctx.name, "hgq_softmax", [x], ctx.graph[x].shape,
                       weights={"exp_table": exp_levels, "inv_table": inv_levels},
                       types={"exp_in": exp_in, "exp_out": exp_out, "sum": sum_t, "inv_in": inv_in,
                              "inv_out": inv_out, "result": result}))
    _set(ctx, ctx.output_quant(out, shape), shape)


def _f64(fn):
    """fn in float64, rounded once to float32 (TensorFlow computes the float32 function to within an ulp or two;
    the table's output quantizer maps both to the same level except within an ulp of a rounding boundary)."""
    return lambda v: fn(np.asarray(v, dtype=np.float64)).astype(np.float32)


LUT_FUNCTIONS = {
    "linear": lambda v: np.asarray(v, dtype=np.float32),
    "relu": lambda v: np.maximum(np.asarray(v, dtype=np.float32), np.float32(0)),
    "relu6": lambda v: np.clip(np.asarray(v, dtype=np.float32), np.float32(0), np.float32(6)),
    "tanh": _f64(np.tanh),
    "sigmoid": _f64(lambda v: 1.0 / (1.0 + np.exp(-v))),
    "exp": _f64(np.exp),
    "exponential": _f64(np.exp),
    "softplus": _f64(lambda v: np.logaddexp(0.0, v)),
    "softsign": _f64(lambda v: v / (1.0 + np.abs(v))),
    "silu": _f64(lambda v: v / (1.0 + np.exp(-v))),
    "swish": _f64(lambda v: v / (1.0 + np.exp(-v))),
    "elu": _f64(lambda v: np.where(v > 0, v, np.expm1(v))),
    "selu": _f64(lambda v: 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * np.expm1(v))),
}


@handler("QUnaryFunctionLUT", "QAffinedUnaryFunctionLUT")
def _qlut(ctx: Ctx, layer):
    """QUnaryFunctionLUT (hgq/layers/activation.py): iq, the function in float32, oq -> one lookup table over
    every code of the input quantizer's type (per-element input widths share it: each value lies on its grid).
    QAffinedUnaryFunctionLUT: the function of x * scale + bias (float32 product, then float32 sum)."""
    src, shape = _one_input(ctx)
    cfg = ctx.cfg
    name = _act_name(cfg.get("activation"))
    fn = LUT_FUNCTIONS.get(name)
    if fn is None:
        ctx.fail(f"table function {name!r} is not supported; supported: {', '.join(sorted(LUT_FUNCTIONS))}")
    if not cfg.get("enable_iq", True) or not cfg.get("enable_oq", True):
        ctx.fail("a table needs its input and output quantizers (enable_iq=True, enable_oq=True)")
    if ctx.cls == "QAffinedUnaryFunctionLUT":
        v = ctx.own_vars()
        scale, bias = (np.asarray(a, dtype=np.float32).reshape(-1) for a in v[:2])
        if scale.shape != (1,) or bias.shape != (1,) or not np.all(np.isfinite([scale, bias])):
            ctx.fail("its scale and bias must be single finite numbers")
        plain, s0, b0 = fn, scale[0], bias[0]
        fn = lambda u: plain((np.asarray(u, dtype=np.float32) * s0).astype(np.float32) + b0)  # noqa: E731
    x = ctx.input_quant(src, shape)
    xt = ctx.graph[x].types["result"].plain()
    q_out = ctx.quantizer("oq", "oq_conf")
    levels, t = _table(ctx, xt, q_out, fn, name)
    _set(ctx, ctx.add(Node(ctx.name, "lut", [x], ctx.graph[x].shape, attrs={"in_type": xt}, weights={"table": levels},
                           types={"result": t}, meta={"function": name})), shape)
