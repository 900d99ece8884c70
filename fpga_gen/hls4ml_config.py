"""Read the ``hls4ml_config.yml`` hls4ml writes into its projects, and apply the same settings to fpga-gen.

hls4ml resolves a layer's type slot ``var`` (``result``, ``weight``, ``bias``, ``accum``, ...) in this order
(``hls4ml.model.graph.HLSConfig.get_precision``, hls4ml 1.3):

1. ``LayerName.<layer>.Precision.<var>``      (dict form)
2. ``LayerName.<layer>.Precision``            (string form: every slot of that layer)
3. ``LayerType.<class>.Precision.<var>`` then ``LayerType.<class>.Precision``
4. ``Model.Precision.<var>``                  (dict form at model level)
5. ``Model.Precision`` / ``Model.Precision.default``

So a Dense layer whose config gives only ``weight`` and ``bias`` gets ``result`` *and* ``accum`` from the model
default, exactly like hls4ml.  Reuse factor and strategy resolve the same way (layer name, layer type, model).
Softmax follows hls4ml 1.3's Vivado/Vitis backend: ``exp_table_t`` and ``inv_table_t`` default to
``ap_fixed<18,8,AP_RND,AP_SAT>``; an accum that came from the model default becomes
``ap_fixed<18+ceil(log2 n), 8+ceil(log2 n)>``; ``inv_inp_t`` defaults to the exp table type; ``inp_norm_t`` is the
input type without its sign bit; the exp table is cut to ``2**(W-1)`` entries for a signed ``W``-bit input.

Keras ``Dense(..., activation='relu')`` becomes two hls4ml layers, ``<name>`` and ``<name>_relu`` (hls4ml names the
split activation ``<layer>_<activation>``); the reader applies ``<name>_relu`` settings to the activation node the
frontend creates for it, whatever that node is called, through :func:`apply_to_graph`'s ``aliases``.

``LayerType`` keys: hls4ml matches them against its own layer class (``Pooling2D`` for MaxPooling2D,
``GlobalPooling2D``, ``Merge`` for Add/Subtract/..., ``Resize`` for UpSampling, ``Transpose`` for Permute,
``ParametrizedActivation`` for LeakyReLU/ELU/ThresholdedReLU, ...), while its ``config_from_keras_model`` writes
the Keras class names (``Add``, ``ELU``, ``GlobalAveragePooling2D``); :func:`layer_classes` tries hls4ml's class
first, then the Keras class the frontend recorded in ``node.meta['keras_class']``, so both reach the layer.

Nothing here imports TensorFlow or hls4ml.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import ConfigError, ProjectConfig
from .ir.fixed import quantize_raw
from .ir.ops import op_def
from .ir.reuse import is_valid_reuse, layer_first, nearest_valid_reuse
from .ir.types import FixedType, TypeParseError
import bisect
import numpy as np

__all__ = ["Hls4mlConfig", "read_hls4ml_config", "config_from_hls4ml", "parse_hls4ml_precision", "to_project_config", "apply_to_graph", "layer_classes",
           "layer_type_settings",
           "SOFTMAX_TABLE_DEFAULT", "Plan", "plan", "apply_plan", "snapshot_float_weights",
           "hls4ml_valid_reuse_factors", "hls4ml_closest_reuse_factor"]

#: hls4ml 1.3 default for softmax exp/inv tables (backends/fpga/fpga_backend.py)
SOFTMAX_TABLE_DEFAULT = FixedType(18, 8, True, "RND", "SAT")
SOFTMAX_TABLE_SIZE_DEFAULT = 1024


class _Loader(yaml.SafeLoader):
    """SafeLoader that accepts hls4ml's ``!keras_model 'path'`` tag (and any other unknown tag) as plain data."""


def _any_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", _any_tag)


def parse_hls4ml_precision(text) -> FixedType:
    """hls4ml precision strings: 'ap_fixed<16,6>', 'fixed<16,6>', 'ap_fixed<28, 16, AP_RND_ZERO, AP_SAT>',
    'ap_int<8>', 'uint<4>'.  ``float``/``double`` raise (no fixed-point type)."""
    if isinstance(text, FixedType):
        return text
    s = str(text).strip()
    if s in ("float", "double", "half"):
        raise TypeParseError(f"precision {s!r} is floating point; fpga-gen needs a fixed-point type")
    return FixedType.parse(s)


@dataclass
class Hls4mlConfig:
    """The settings of one hls4ml project, as hls4ml would resolve them."""

    path: str
    backend: str = "Vivado"
    part: str | None = None
    board: str | None = None
    clock_period: float = 5.0
    clock_uncertainty: str | None = None
    io_type: str = "parallel"
    project_name: str = "myproject"
    model_precision: dict = field(default_factory=dict)     # var -> FixedType ('default' for the string form)
    model_reuse: int = 1
    model_strategy: str = "latency"
    layer_precision: dict = field(default_factory=dict)     # layer -> {var -> FixedType}  ('default' = string form)
    layer_reuse: dict = field(default_factory=dict)
    layer_strategy: dict = field(default_factory=dict)
    layer_extra: dict = field(default_factory=dict)          # layer -> {table_size, exp_table_t, ...}
    type_precision: dict = field(default_factory=dict)       # layer class (lower case) -> {var -> FixedType}
    type_reuse: dict = field(default_factory=dict)
    type_strategy: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ hls4ml's resolution order
    def precision(self, layer: str, var: str, layer_class=None) -> tuple[FixedType, str]:
        """(type, where it came from) for slot ``var`` of ``layer``; where is 'layer', 'type', 'model' or
        'model_default' (hls4ml's ``model_default_t``).  ``layer_class``: a LayerType key or a sequence of
        them (:func:`layer_classes`), tried in order."""
        lp = self.layer_precision.get(layer.lower(), {})
        if var in lp:
            return lp[var], "layer"
        if "default" in lp:
            return lp["default"], "layer"
        for cls in _classes(layer_class):
            tp = self.type_precision.get(cls.lower(), {})
            if var in tp:
                return tp[var], "type"
            if "default" in tp:
                return tp["default"], "type"
        if var in self.model_precision and var != "default":
            return self.model_precision[var], "model"
        if "default" in self.model_precision:
            return self.model_precision["default"], "model_default"
        raise ConfigError(f"{self.path}: no precision for {layer}.{var} and no model default precision")

    def reuse_factor(self, layer: str, layer_class: str | None = None) -> int:
        return layer_first(self.layer_reuse.get(layer.lower()),
                           *(self.type_reuse.get(cls.lower()) for cls in _classes(layer_class)), default=self.model_reuse)

    def strategy(self, layer: str, layer_class: str | None = None) -> str:
        if layer.lower() in self.layer_strategy:
            return self.layer_strategy[layer.lower()]
        for cls in _classes(layer_class):
            if cls.lower() in self.type_strategy:
                return self.type_strategy[cls.lower()]
        return self.model_strategy


def _classes(layer_class) -> tuple[str, ...]:
    """A LayerType key or several (:func:`layer_classes`: the first one the config names wins)."""
    if not layer_class:
        return ()
    return (layer_class,) if isinstance(layer_class, str) else tuple(layer_class)


def _strategy(v, where: str) -> str:
    s = str(v).strip().lower()
    if s in ("latency", "resource"):
        return s
    if s in ("resource_unrolled", "unrolled"):
        return "resource"
    if s in ("distributed_arithmetic", "da"):
        return "distributed_arithmetic"
    if s in ("none", "null", ""):
        return "latency"
    raise ConfigError(f"{where}: unknown Strategy {v!r}; hls4ml uses Latency, Resource or distributed_arithmetic")


def _precisions(v, where: str) -> dict:
    if v is None:
        return {}
    if isinstance(v, dict):
        out = {}
        for k, t in v.items():
            if t is None or str(t).strip().lower() == "auto":
                continue          # hls4ml infers 'auto' types; leave them to the model default here
            try:
                out[str(k)] = parse_hls4ml_precision(t)
            except TypeParseError as e:
                raise ConfigError(f"{where}.{k}: {e}") from None
        return out
    if str(v).strip().lower() == "auto":
        return {}
    try:
        return {"default": parse_hls4ml_precision(v)}
    except TypeParseError as e:
        raise ConfigError(f"{where}: {e}") from None


def _clock(v) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    m = re.match(r"^\s*([0-9.]+)\s*(ns)?\s*$", str(v))
    if not m:
        raise ConfigError(f"ClockPeriod {v!r} is not a number of ns")
    return float(m.group(1))


_EXTRA_KEYS = ("table_size", "exp_table_size", "inv_table_size", "exp_table_t", "inv_table_t", "table_t",
               "accum_t", "inv_inp_t", "inp_norm_t", "implementation")


def read_hls4ml_config(path: str | Path) -> Hls4mlConfig:
    p = Path(path)
    if p.is_dir():
        p = p / "hls4ml_config.yml"
    if not p.is_file():
        raise ConfigError(f"{p}: hls4ml config not found")
    try:
        data = yaml.load(p.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML ({e})") from None
    src = str(p)
    h = Hls4mlConfig(path=src, raw=data)
    h.backend = str(data.get("Backend", "Vivado"))
    accel = data.get("AcceleratorConfig") or {}
    h.board = data.get("Board") or accel.get("Board")
    part = data.get("Part") or data.get("XilinxPart")
    h.part = str(part).strip() if part else None        # kept as written: Vivado reads it case-insensitively
    if "ClockPeriod" in data:
        h.clock_period = _clock(data["ClockPeriod"])
    h.clock_uncertainty = data.get("ClockUncertainty")
    hls = data.get("HLSConfig") or {}
    model = hls.get("Model") or {}
    io = data.get("IOType") or model.get("IOType") or "io_parallel"     # the top-level key wins (hls4ml 1.x)
    io = str(io).lower().replace("io_", "")
    if io not in ("parallel", "stream"):
        raise ConfigError(f"{src}: IOType {io!r} is not io_parallel or io_stream")
    h.io_type = io
    h.project_name = str(data.get("ProjectName", "myproject"))
    h.model_precision = _precisions(model.get("Precision"), f"{src}: HLSConfig.Model.Precision")
    h.model_reuse = int(model.get("ReuseFactor", 1) or 1)
    h.model_strategy = _strategy(model.get("Strategy", "Latency"), f"{src}: HLSConfig.Model.Strategy")
    for lt, spec in (hls.get("LayerType") or {}).items():
        spec = spec or {}
        key = str(lt).lower()
        h.type_precision[key] = _precisions(spec.get("Precision"), f"{src}: LayerType.{lt}.Precision")
        if spec.get("ReuseFactor") is not None:
            h.type_reuse[key] = int(spec["ReuseFactor"])
        if spec.get("Strategy") is not None:
            h.type_strategy[key] = _strategy(spec["Strategy"], f"{src}: LayerType.{lt}.Strategy")
    for ln, spec in (hls.get("LayerName") or {}).items():
        spec = spec or {}
        key = str(ln).lower()
        h.layer_precision[key] = _precisions(spec.get("Precision"), f"{src}: LayerName.{ln}.Precision")
        if spec.get("ReuseFactor") is not None:
            h.layer_reuse[key] = int(spec["ReuseFactor"])
        if spec.get("Strategy") is not None and str(spec["Strategy"]).lower() in ("latency", "resource",
                                                                                  "distributed_arithmetic", "da"):
            h.layer_strategy[key] = _strategy(spec["Strategy"], f"{src}: LayerName.{ln}.Strategy")
        extra = {}
        for k in _EXTRA_KEYS:
            if k in spec and spec[k] is not None:
                v = spec[k]
                extra[k] = parse_hls4ml_precision(v) if k.endswith("_t") else v
        if str(spec.get("Strategy", "")).lower() == "stable":       # old hls4ml: softmax Strategy: Stable
            extra["implementation"] = "stable"
        if extra:
            h.layer_extra[key] = extra
    return h


# ---------------------------------------------------------------------------------------------- applying

def _model_settings(h: Hls4mlConfig, base: ProjectConfig | None) -> ProjectConfig:
    """A ProjectConfig with the hls4ml config's model-level settings (io type, strategy, reuse factor, clock,
    part, board, default precision) over ``base``."""
    cfg = ProjectConfig() if base is None else base.copy()
    cfg.source = h.path
    cfg.io_type = h.io_type
    cfg.strategy = h.model_strategy
    cfg.reuse_factor = h.model_reuse
    cfg.clock_period = h.clock_period
    if h.part:
        cfg.part = h.part
    cfg.board = h.board
    if "default" in h.model_precision:
        cfg.default_precision = h.model_precision["default"]
    elif "result" in h.model_precision:
        cfg.default_precision = h.model_precision["result"]
    return cfg


def to_project_config(h: Hls4mlConfig, base: ProjectConfig | None = None, graph=None) -> ProjectConfig:
    """A :class:`ProjectConfig` with the model-level settings and per-layer reuse/strategy/precision overrides.

    Per-layer precision overrides carry only what the hls4ml config states for that layer; slots it leaves open
    are resolved by :func:`apply_to_graph` (which needs the node's op to know hls4ml's defaults).  With the
    frontend's ``graph``, ``LayerType`` settings become per-layer settings of the nodes they reach
    (:func:`layer_type_settings`) wherever the layer's own entry leaves the slot open."""
    cfg = _model_settings(h, base)
    layers = {}
    names = set(h.layer_precision) | set(h.layer_reuse) | set(h.layer_strategy)
    for ln in sorted(names):
        spec = {}
        if ln in h.layer_reuse:
            spec["reuse_factor"] = h.layer_reuse[ln]
        if ln in h.layer_strategy:
            spec["strategy"] = h.layer_strategy[ln]
        prec = h.layer_precision.get(ln, {})
        if prec:
            spec["precision"] = {("result" if k == "default" else k): t for k, t in prec.items()}
        if spec:
            layers[ln] = spec
    if graph is not None:
        lower = {k.lower(): k for k in layers}
        for name, spec in layer_type_settings(h, graph).items():
            mine = layers.setdefault(lower.get(name.lower(), name), {})
            for k, v in spec.items():
                if k == "precision":
                    prec = mine.setdefault("precision", {})
                    for slot, t in v.items():
                        prec.setdefault(slot, t)
                else:
                    mine.setdefault(k, v)
    cfg.layers = layers
    return cfg.validate()


def layer_type_settings(h: Hls4mlConfig, graph) -> dict:
    """Per node, the ``LayerType`` settings that reach it (:func:`layer_classes`): ``{name: {"precision": {slot:
    type}, "reuse_factor": n, "strategy": s}}``, for the slots of :data:`_OP_SLOTS` (result only for the other
    ops; none for upsampling, whose result is its input type, and softmax, whose tables follow hls4ml's
    defaults).  The layer's own LayerName entries are merged over these by :func:`to_project_config`."""
    out = {}
    for node in graph:
        if node.op in ("upsampling", "softmax"):
            continue
        classes = [c.lower() for c in layer_classes(node)]
        spec, prec = {}, {}
        for var in _OP_SLOTS.get(node.op, ("result",)):
            for c in classes:
                tp = h.type_precision.get(c, {})
                if var in tp or "default" in tp:
                    prec[var] = tp.get(var, tp.get("default"))
                    break
        if prec:
            spec["precision"] = prec
        if node.op in ("dense", "conv2d"):                  # the ops whose reuse factor the config sets
            for key, table in (("reuse_factor", h.type_reuse), ("strategy", h.type_strategy)):
                hit = next((table[c] for c in classes if c in table), None)
                if hit is not None:
                    spec[key] = hit
        if spec:
            out[node.name] = spec
    return out


def config_from_hls4ml(path: str | Path, base: ProjectConfig | None = None, graph=None) -> ProjectConfig:
    """``to_project_config(read_hls4ml_config(path), base, graph)``: what ``fpga-gen ... --hls4ml-config f.yml``
    uses (with the frontend's graph, so LayerType keys reach their layers)."""
    return to_project_config(read_hls4ml_config(path), base, graph)


# type slots hls4ml resolves through get_precision for each of our ops
_OP_SLOTS = {
    "dense": ("result", "weight", "bias", "accum"),
    "conv2d": ("result", "weight", "bias", "accum"),
    "depthwise_conv2d": ("result", "weight", "bias", "accum"),
    "batchnorm": ("result", "scale", "bias"),
    "activation": ("result",),
    "pooling": ("result", "accum"),
    "input": ("result",),
}
# op -> hls4ml's layer class (``layer.class_name``, what HLSConfig.get_precision matches LayerType keys against)
_OP_CLASS = {"dense": "Dense", "conv2d": "Conv2D", "depthwise_conv2d": "DepthwiseConv2D",
             "activation": "Activation", "float_activation": "Activation",
             "softmax": "Softmax", "batchnorm": "BatchNormalization", "input": "InputLayer", "pooling": "Pooling2D",
             "zeropad": "ZeroPadding2D", "cropping": "Cropping2D", "upsampling": "Resize", "transpose": "Transpose",
             "merge": "Merge", "concatenate": "Concatenate", "quant_act": "Activation", "apply_scale": "ApplyAlpha",
             "fixed_quant": "FixedPointQuantizer", "hgq_softmax": "Softmax", "lut": "UnaryLUT"}
# activation kind -> hls4ml class (keras converter: LeakyReLU/ELU/ThresholdedReLU are ParametrizedActivation)
_ACTIVATION_CLASS = {"leaky_relu": "ParametrizedActivation", "elu": "ParametrizedActivation",
                     "thresholded_relu": "ParametrizedActivation", "prelu": "PReLU",
                     "hard_sigmoid": "HardActivation", "hard_tanh": "HardActivation"}
# Keras classes whose layer is one activation node (other layers' activation nodes are their split activation)
_ACTIVATION_LAYERS = ("Activation", "QActivation", "ReLU", "LeakyReLU", "ELU", "PReLU", "ThresholdedReLU", "Softmax")
_MERGE_CLASS = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply", "average": "Average",
                "maximum": "Maximum", "minimum": "Minimum"}


def layer_classes(node) -> tuple[str, ...]:
    """The LayerType keys that reach ``node``, first match wins: hls4ml's layer class (what hls4ml itself
    resolves: Pooling2D, GlobalPooling2D, Merge, Resize, ParametrizedActivation, ...), then the Keras class the
    frontend recorded (``node.meta['keras_class']``: Conv1D, GlobalAveragePooling2D, Add, ELU, ... as hls4ml's
    ``config_from_keras_model(granularity='type')`` writes them).  1-D layers are 2-D
    ops with a 2-d node shape (width, channels); global pooling covers the whole input in one window."""
    op, a = node.op, node.attrs
    keras = node.meta.get("keras_class")
    one_d = len(tuple(node.shape)) <= 2 and int(a.get("in_height", 0) or 0) == 1
    if op == "apply_scale":
        keras = None                                    # hls4ml's own <layer>_alpha layer, not the QDense/QConv
    if op == "activation" and keras not in _ACTIVATION_LAYERS:
        keras = None                                    # Dense(activation=...)'s split activation: 'Activation'
    dim = "1D" if one_d else "2D"
    if op in ("conv2d", "depthwise_conv2d") and (keras or "").startswith(("SeparableConv", "QSeparableConv")):
        hls = "SeparableConv" + dim                     # hls4ml keeps the separable layer whole
    elif op == "conv2d":
        hls = "Conv" + dim
    elif op == "depthwise_conv2d":
        hls = "DepthwiseConv" + dim
    elif op == "pooling":
        is_global = (keras or "").startswith("Global") or (
            keras is None and tuple(a.get("pool_size", ())) == (a.get("in_height"), a.get("in_width")) and
            node.size == int(a.get("n_chan", 0)))
        hls = ("GlobalPooling" if is_global else "Pooling") + ("1D" if (keras or "").endswith("1D") or
                                                              (keras is None and one_d and not is_global) else "2D")
    elif op in ("zeropad", "cropping"):
        hls = {"zeropad": "ZeroPadding", "cropping": "Cropping"}[op] + ("1D" if one_d else "2D")
    elif op == "activation":
        hls = _ACTIVATION_CLASS.get(a.get("activation"), "Activation")
    elif op == "input":
        hls = "Input"
    else:
        hls = _OP_CLASS.get(op)
    names = [hls, keras, "InputLayer" if op == "input" else None]
    if op == "merge" and keras is None:
        names.append(_MERGE_CLASS.get(a.get("mode")))
    out = []
    for n in names:
        if n and n not in out:
            out.append(n)
    return tuple(out)


def apply_to_graph(graph, h: Hls4mlConfig, aliases: dict | None = None) -> None:
    """Set every node's types, reuse factor and strategy exactly as hls4ml would for this config.

    ``aliases`` maps our node names to the hls4ml layer name when they differ (e.g. the activation split out of a
    ``Dense(activation='relu')`` that hls4ml calls ``<dense>_relu``).  Weights are not re-quantized here."""
    aliases = aliases or {}
    for node in graph:
        lname = aliases.get(node.name, node.name)
        cls = layer_classes(node)
        if node.op == "softmax":
            _apply_softmax(graph, node, h, lname)
            continue
        for var in _OP_SLOTS.get(node.op, ("result",)):
            node.types[var] = h.precision(lname, var, cls)[0]
        if "reuse_factor" in node.attrs or node.op in ("dense", "conv2d", "depthwise_conv2d"):
            node.attrs["reuse_factor"] = h.reuse_factor(lname, cls)
            node.attrs["strategy"] = h.strategy(lname, cls)


def _apply_softmax(graph, node, h: Hls4mlConfig, lname: str) -> None:
    extra = h.layer_extra.get(lname.lower(), {})
    result, _ = h.precision(lname, "result", "Softmax")
    node.types["result"] = result
    lp = h.layer_precision.get(lname.lower(), {})
    exp_t = extra.get("exp_table_t") or lp.get("exp_table") or SOFTMAX_TABLE_DEFAULT
    inv_t = extra.get("inv_table_t") or lp.get("inv_table") or SOFTMAX_TABLE_DEFAULT
    size = int(extra.get("table_size", SOFTMAX_TABLE_SIZE_DEFAULT))
    exp_size = int(extra.get("exp_table_size", size))
    inv_size = int(extra.get("inv_table_size", size))
    n = node.size or int(node.attrs.get("n_in", 1))
    acc, where = h.precision(lname, "accum", "Softmax")
    if "accum_t" in extra:
        acc = extra["accum_t"]
    elif where == "model_default":
        scale = math.ceil(math.log2(n)) if n > 1 else 0
        acc = FixedType(exp_t.width + scale, exp_t.integer + scale, exp_t.signed)
    inv_inp = extra.get("inv_inp_t") or lp.get("inv_inp") or exp_t
    inp_types = graph.producer_types(node) if node.inputs else [result]
    it = inp_types[0]
    if "inp_norm_t" in extra:
        inp_norm = extra["inp_norm_t"]
    else:
        w, i = it.width - int(it.signed), it.integer - int(it.signed)
        inp_norm = FixedType(max(w, 1), i, False)
    if it.signed:
        exp_size = min(exp_size, 2 ** (it.width - 1))
    node.types.update({"exp_table": exp_t, "inv_table": inv_t, "accum": acc, "inv_inp": inv_inp,
                       "inp_norm": inp_norm})
    node.attrs["exp_table_size"] = exp_size
    node.attrs["inv_table_size"] = inv_size
    node.attrs.setdefault("implementation", extra.get("implementation", "stable"))


# ---------------------------------------------------------------------------------------------- one path
# ``fpga-gen ... --hls4ml-config``, the Python API (``convert(model, hls4ml=...)``), the hls4ml project reader and
# benchmarks/calibrate_estimator.py all go through :func:`plan` (before the passes) and :func:`apply_plan` (after
# them), so that every one of them estimates the graph hls4ml would have built.

#: suffixes of the nodes hls4ml's converters insert after a layer, and what fpga-gen builds for them: ``_linear``
#: (the linear activation after every Dense/Conv/QDense: an identity cast fpga-gen does not build), ``_relu`` &c.
#: (a layer's own ``activation=``: fpga-gen's activation node), ``_alpha`` (QKeras alpha scale: apply_scale),
#: ``_input`` (old hls4ml's name for the input layer), ``_bn`` (a folded batchnorm)
_INSERTED = ("_linear", "_alpha", "_input", "_bn", "_relu", "_softmax", "_sigmoid", "_tanh", "_elu", "_selu",
             "_softplus", "_softsign", "_hard_sigmoid", "_leaky_relu", "_quantized_relu", "_quantized_bits",
             "_quantized_tanh", "_quantized_sigmoid", "_activation")
_HLS_RF_OPS = ("dense", "conv2d")         # the ops whose reuse factor/strategy the config sets in fpga-gen


@dataclass
class Plan:
    """What hls4ml would build, resolved against fpga-gen's graph: node name -> hls4ml layer name (``aliases``),
    the reuse factor and strategy hls4ml uses per dense/conv node (``reuse``, ``strategy``), and one line per
    place where fpga-gen changes or ignores what the config says (``notes``)."""

    aliases: dict = field(default_factory=dict)
    reuse: dict = field(default_factory=dict)
    strategy: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    float_weights: dict = field(default_factory=dict)      # node -> {kernel, bias}: float values before rounding


def hls4ml_valid_reuse_factors(n_in: int, n_out: int) -> list[int]:
    """hls4ml 1.3 ``FPGABackend.get_valid_reuse_factors``: every RF in 1..n_in*n_out its dense check accepts."""
    out = []
    for rf in range(1, n_in * n_out + 1):
        mult = min(n_in, rf)
        limit = int(math.ceil((n_in * n_out) / float(mult)))
        ok = (limit % n_out == 0) or rf >= n_in
        ok = ok and (rf % n_in == 0 or rf < n_in)
        ok = ok and (n_in * n_out) % rf == 0
        if ok:
            out.append(rf)
    return out


def hls4ml_closest_reuse_factor(valid: list[int], chosen: int) -> int:
    """hls4ml 1.3 ``get_closest_reuse_factor``: the nearest valid value, the smaller one on a tie."""
    pos = bisect.bisect_left(valid, chosen)
    if pos == 0:
        return valid[0]
    if pos == len(valid):
        return valid[-1]
    before, after = valid[pos - 1], valid[pos]
    return after if after - chosen < chosen - before else before


def _mult_size(node) -> tuple[int, int]:
    a = node.attrs
    if node.op == "dense":
        return int(a["n_in"]), int(a["n_out"])
    kh, kw = a["kernel_size"]
    return int(kh * kw * a["n_chan"]), int(a["n_filt"])


def _resolve_name(h: Hls4mlConfig, ln: str, names: dict, graph) -> tuple[str | None, str | None]:
    """(our node name or None, a note when the config's layer is not one of our nodes)."""
    if ln in names:
        return names[ln], None
    for suf in _INSERTED:
        if ln.endswith(suf) and ln[: -len(suf)] in names:
            base = names[ln[: -len(suf)]]
            if suf == "_linear":
                return None, (f"{ln}: hls4ml's linear activation after {base}; fpga-gen casts {base}'s result "
                              f"to that type itself (no extra node)")
            if suf == "_input":
                return None, f"{ln}: hls4ml's input layer of {base}; the model input takes the model precision"
            readers = [n for n in graph if n.inputs and n.inputs[0] == base
                       and n.op in ("activation", "softmax", "apply_scale", "quant_act", "batchnorm")]
            if len(readers) == 1:
                return readers[0].name, None
            return None, f"{ln}: hls4ml's {suf[1:]} node after {base}; fpga-gen builds none, settings ignored"
    return None, f"{ln}: no such node in fpga-gen's graph (a layer it removes or builds as wiring); settings ignored"


def plan(h: Hls4mlConfig, graph, base: ProjectConfig | None = None) -> tuple[ProjectConfig, Plan]:
    """The ProjectConfig to run fpga-gen's passes with (model-level settings; reuse/strategy of the dense and conv
    nodes as fpga-gen's kernels accept them) and the :class:`Plan` that :func:`apply_plan` imposes afterwards.

    Reuse factors as hls4ml 1.3 (``VivadoBackend.init_dense`` / ``init_conv*``): under Resource they are snapped
    to the closest valid value (``set_closest_reuse_factor``); under Latency they are kept whatever they are
    (Vivado synthesised RF 64 on a 32x5 Latency layer).  Names hls4ml inserts (``<layer>_linear`` & c.) attach to
    their layer; layers fpga-gen removes are ignored, as hls4ml ignores names it does not know.  Every change is
    one line in ``Plan.notes``."""
    cfg = _model_settings(h, base)
    p = Plan()
    names = {n.name.lower(): n.name for n in graph}
    for ln in sorted(set(h.layer_precision) | set(h.layer_reuse) | set(h.layer_strategy) | set(h.layer_extra)):
        ours, note = _resolve_name(h, ln, names, graph)
        if note:
            p.notes.append(note)
        if ours is not None and ours.lower() != ln:
            p.aliases[ours] = ln
    layers = {}
    for node in graph:
        # hls4ml's result/accum types during the passes too, so that what follows is typed from them
        slots = [v for v in _OP_SLOTS.get(node.op, ("result",)) if v in ("result", "accum")
                 and v in op_def(node.op).type_slots]
        if node.op not in ("softmax", "input") and slots:
            lname = p.aliases.get(node.name, node.name)
            layers[node.name] = {"precision": {v: h.precision(lname, v, layer_classes(node))[0] for v in slots}}
        if node.op not in _HLS_RF_OPS:
            continue
        lname = p.aliases.get(node.name, node.name)
        cls = layer_classes(node)
        strategy = h.strategy(lname, cls)
        rf = int(h.reuse_factor(lname, cls))
        n_in, n_out = _mult_size(node)
        if strategy == "resource":
            valid = hls4ml_valid_reuse_factors(n_in, n_out)
            snapped = hls4ml_closest_reuse_factor(valid, rf)
            if snapped != rf:
                p.notes.append(f"{node.name}: Resource strategy: reuse factor {rf} is not valid for a {n_in}x{n_out} "
                               f"{node.op}; hls4ml uses {snapped}, and so does fpga-gen")
                rf = snapped
        p.reuse[node.name], p.strategy[node.name] = rf, strategy
        build = rf
        if not is_valid_reuse(n_in, n_out, rf, node.op, strategy):
            near = nearest_valid_reuse(n_in, n_out, rf, node.op, strategy)
            build = near[0] if near else 1
            if strategy == "latency":
                p.notes.append(f"{node.name}: Latency strategy: reuse factor {rf} kept as hls4ml keeps it (not a "
                               f"valid Resource reuse factor for a {n_in}x{n_out} {node.op}; the latency kernel "
                               f"only caps its multipliers at ceil({n_in * n_out}/{rf}))")
            else:
                p.notes.append(f"{node.name}: Resource strategy: reuse factor {rf} fails fpga-gen's "
                               f"{node.op} resource kernel check; estimated at {rf}, built at {build}")
        layers.setdefault(node.name, {}).update({"reuse_factor": build, "strategy": strategy})
    cfg.layers = layers
    return cfg.validate(), p


def snapshot_float_weights(graph, p: Plan) -> None:
    """Keep the dense/conv weights as they are before fpga-gen's precision pass rounds them (after batchnorm
    fusion), so that :func:`apply_plan` can quantize them the way hls4ml's C++ does (the type's own rounding:
    ``ap_fixed<16,6>`` truncates)."""
    for node in graph:
        if node.op in ("dense", "conv2d", "depthwise_conv2d"):
            # QKeras layers (the frontend typed them): hls4ml writes the quantizer's exact values; keep those
            keep = {"kernel": "weight" not in node.types, "bias": "bias" not in node.types}
            p.float_weights[node.name] = {k: np.array(v, dtype=np.float64, copy=True)
                                          for k, v in node.weights.items() if keep.get(k)}


def apply_plan(graph, cfg: ProjectConfig, h: Hls4mlConfig, p: Plan) -> None:
    """After the passes: hls4ml's types on every node (:func:`apply_to_graph`), float weights quantized with
    the weight type's own rounding, and hls4ml's reuse factors (including Latency ones fpga-gen would refuse)."""
    apply_to_graph(graph, h, p.aliases)
    for node in graph:
        fw = p.float_weights.get(node.name)
        if fw:
            for slot, wname in (("weight", "kernel"), ("bias", "bias")):
                t = node.types.get(slot)
                if wname in fw and t is not None:
                    node.weights[wname] = quantize_raw(fw[wname], t).astype(np.float64) * 2.0 ** -t.frac
                    node.types[slot] = t.plain() if hasattr(t, "plain") else t
        if node.name in p.reuse:
            node.attrs["reuse_factor"] = p.reuse[node.name]
            node.attrs["strategy"] = p.strategy[node.name]
            spec = cfg.layers.setdefault(node.name, {})
            spec["reuse_factor"], spec["strategy"] = p.reuse[node.name], p.strategy[node.name]
