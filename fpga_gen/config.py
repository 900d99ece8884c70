"""Project configuration: defaults, the YAML file users write, and command-line overrides.

YAML form (every key optional)::

    name: digits_mlp            # project / top-function name (a C++ identifier is derived from it)
    io_type: parallel           # parallel | stream
    strategy: latency           # latency | resource | distributed_arithmetic (alias da: da4ml adder graphs, no DSP)
    da: {hard_dc: -1}           # distributed_arithmetic solver options (fpga_gen/da/solve.py, docs/distributed_arithmetic.md)
    reuse_factor: 1
    mult_impl: auto             # auto | dsp | lut: where dense/conv products run (auto: the tool decides)
    clock_period: 10            # ns
    part: xc7z020clg400-1
    board: pynq-z2
    default_precision: ap_fixed<16,6>
    input_precision: ap_fixed<16,6>     # defaults to default_precision
    layers:
      dense_1:
        reuse_factor: 4
        strategy: resource
        mult_impl: dsp                  # dense, conv2d, depthwise_conv2d: bind the products to DSP slices
        precision:                      # any type slot of the layer's op: result, weight, bias, accum, ...
          result: ap_fixed<18,8>
        table_size: 2048                # table-based activations (sigmoid, tanh, softplus, softsign, elu)
        implementation: latency         # softmax layers; also exp_table_size, inv_table_size
    softmax:                            # defaults for softmax layers
      implementation: stable            # stable | latency | legacy | argmax
      exp_table_size: 1024
      inv_table_size: 1024
    activations:                        # defaults for table-based activations
      table_size: 1024
      table_precision: ap_fixed<18,8>   # layers.<name>.precision.table overrides it per layer
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .da.solve import DaError, check_options, normalize_strategy
from .ir.ops import SOFTMAX_IMPLEMENTATIONS
from .ir.reuse import DEFAULT_REUSE_FACTOR, DEFAULT_STRATEGY, layer_first
from .ir.types import FixedType, TypeParseError

__all__ = ["ProjectConfig", "ConfigError", "load_config", "IO_TYPES", "STRATEGIES", "MULT_IMPLS"]

IO_TYPES = ("parallel", "stream")
STRATEGIES = ("latency", "resource", "distributed_arithmetic")   # "da": an alias of the last (fpga_gen.da)
#: where the products of dense / conv2d / depthwise_conv2d layers run: auto (Vitis HLS decides; narrow products
#: in LUTs), dsp or lut (a BIND_OP pragma in the layer's product class, firmware/fpga_gen_product.h)
MULT_IMPLS = ("auto", "dsp", "lut")
LAYER_KEYS = ("reuse_factor", "strategy", "mult_impl", "da", "precision", "table_size", "implementation", "exp_table_size",
              "inv_table_size")
TABLE_KEYS = ("table_size", "exp_table_size", "inv_table_size")
SOFTMAX_KEYS = ("implementation", "exp_table_size", "inv_table_size")
ACTIVATION_KEYS = ("table_size", "table_precision")


class ConfigError(ValueError):
    """``key``: the path of the offending key (e.g. ("layers", "fc1", "strategy")), so that a config read from a
    file can name its line."""

    def __init__(self, message: str, key: tuple = ()):
        super().__init__(message)
        self.key = tuple(key)


@dataclass
class ProjectConfig:
    name: str = "myproject"
    io_type: str = "parallel"
    strategy: str = DEFAULT_STRATEGY
    reuse_factor: int = DEFAULT_REUSE_FACTOR
    mult_impl: str = "auto"
    clock_period: float = 10.0
    part: str = "xc7z020clg400-1"
    board: str | None = None
    default_precision: FixedType = field(default_factory=lambda: FixedType(16, 6))
    input_precision: FixedType | None = None
    layers: dict = field(default_factory=dict)
    softmax: dict = field(default_factory=dict)
    activations: dict = field(default_factory=dict)
    da: dict = field(default_factory=dict)      # distributed_arithmetic solver options (fpga_gen/da/solve.py)
    source: str = "<defaults>"

    def layer(self, name: str) -> dict:
        return self.layers.get(name, {})

    def layer_strategy(self, name: str) -> str:
        return layer_first(self.layer(name).get("strategy"), self.strategy, default=DEFAULT_STRATEGY)

    def layer_da(self, name: str) -> dict:
        """The da4ml solver options of a layer: the defaults, then the global ``da:``, then the layer's."""
        return {**self.da, **self.layer(name).get("da", {})}

    def layer_mult_impl(self, name: str) -> str:
        return layer_first(self.layer(name).get("mult_impl"), self.mult_impl, default="auto")

    def layer_reuse(self, name: str) -> int:
        return int(layer_first(self.layer(name).get("reuse_factor"), self.reuse_factor, default=DEFAULT_REUSE_FACTOR))

    def layer_precision(self, name: str) -> dict[str, FixedType]:
        return dict(self.layer(name).get("precision", {}))

    def to_dict(self) -> dict:
        d = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "source":
                continue
            if isinstance(v, FixedType):
                v = v.cpp()
            if f.name == "layers":
                v = {ln: {k: ({s: t.cpp() for s, t in lv.items()} if k == "precision" else lv)
                          for k, lv in spec.items()} for ln, spec in v.items()}
            if f.name == "activations":
                v = {k: (x.cpp() if isinstance(x, FixedType) else x) for k, x in v.items()}
            d[f.name] = v
        return d

    def copy(self, **overrides) -> "ProjectConfig":
        c = copy.deepcopy(self)
        for k, v in overrides.items():
            if v is not None:
                setattr(c, k, v)
        c.validate()
        return c

    def validate(self) -> "ProjectConfig":
        src = self.source
        if self.io_type not in IO_TYPES:
            raise ConfigError(f"{src}: io_type must be one of {', '.join(IO_TYPES)}, got {self.io_type!r}",
                              ("io_type",))
        self.strategy = normalize_strategy(self.strategy)
        _check_da(self.da, f"{src}: da", ("da",))
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"{src}: strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}",
                              ("strategy",))
        if self.mult_impl not in MULT_IMPLS:
            raise ConfigError(f"{src}: mult_impl must be one of {', '.join(MULT_IMPLS)}, got {self.mult_impl!r}",
                              ("mult_impl",))
        if not isinstance(self.reuse_factor, int) or isinstance(self.reuse_factor, bool) or self.reuse_factor < 1:
            raise ConfigError(f"{src}: reuse_factor must be a positive integer, got {self.reuse_factor!r}",
                              ("reuse_factor",))
        if not isinstance(self.clock_period, (int, float)) or self.clock_period <= 0:
            raise ConfigError(f"{src}: clock_period must be a positive number of ns, got {self.clock_period!r}",
                              ("clock_period",))
        for k in ("default_precision", "input_precision"):
            v = getattr(self, k)
            if v is not None and not isinstance(v, FixedType):
                setattr(self, k, _parse_type(v, f"{src}: {k}", (k,)))
        for key, allowed in (("softmax", SOFTMAX_KEYS), ("activations", ACTIVATION_KEYS)):
            d = getattr(self, key)
            if not isinstance(d, dict):
                raise ConfigError(f"{src}: {key} must be a mapping with keys {', '.join(allowed)}", (key,))
            for k in d:
                if k not in allowed:
                    raise ConfigError(f"{src}: unknown key {k!r} in {key}; allowed keys: {', '.join(allowed)}",
                                      (key, k))
            _check_sizes(d, f"{src}: {key}", (key,))
        if "implementation" in self.softmax:
            _check_implementation(self.softmax["implementation"], f"{src}: softmax.implementation",
                                  ("softmax", "implementation"))
        if "table_precision" in self.activations:
            self.activations["table_precision"] = _parse_type(
                self.activations["table_precision"], f"{src}: activations.table_precision",
                ("activations", "table_precision"))
        for lname, spec in self.layers.items():
            if not isinstance(spec, dict):
                raise ConfigError(f"{src}: layers.{lname} must be a mapping with keys {', '.join(LAYER_KEYS)}",
                                  ("layers", lname))
            for k in spec:
                if k not in LAYER_KEYS:
                    raise ConfigError(f"{src}: unknown key {k!r} in layers.{lname}; allowed keys: {', '.join(LAYER_KEYS)}",
                                      ("layers", lname, k))
            if "strategy" in spec:
                spec["strategy"] = normalize_strategy(spec["strategy"])
            if "da" in spec:
                _check_da(spec["da"], f"{src}: layers.{lname}.da", ("layers", lname, "da"))
            if "strategy" in spec and spec["strategy"] not in STRATEGIES:
                raise ConfigError(f"{src}: layers.{lname}.strategy must be one of {', '.join(STRATEGIES)}, "
                                  f"got {spec['strategy']!r}", ("layers", lname, "strategy"))
            if "mult_impl" in spec and spec["mult_impl"] not in MULT_IMPLS:
                raise ConfigError(f"{src}: layers.{lname}.mult_impl must be one of {', '.join(MULT_IMPLS)}, "
                                  f"got {spec['mult_impl']!r}", ("layers", lname, "mult_impl"))
            if "reuse_factor" in spec and (not isinstance(spec["reuse_factor"], int) or spec["reuse_factor"] < 1):
                raise ConfigError(f"{src}: layers.{lname}.reuse_factor must be a positive integer, "
                                  f"got {spec['reuse_factor']!r}", ("layers", lname, "reuse_factor"))
            if isinstance(spec, dict):
                _check_sizes(spec, f"{src}: layers.{lname}", ("layers", lname))
                if "implementation" in spec:
                    _check_implementation(spec["implementation"], f"{src}: layers.{lname}.implementation",
                                          ("layers", lname, "implementation"))
            if "precision" in spec:
                p = spec["precision"]
                if isinstance(p, (str, FixedType)):
                    p = {"result": p}
                if not isinstance(p, dict):
                    raise ConfigError(f"{src}: layers.{lname}.precision must be a type or a mapping slot -> type",
                                      ("layers", lname, "precision"))
                spec["precision"] = {s: _parse_type(t, f"{src}: layers.{lname}.precision.{s}",
                                                       ("layers", lname, "precision", s)) for s, t in p.items()}
        return self


def _check_sizes(d: dict, where: str, key: tuple) -> None:
    for k in TABLE_KEYS:
        if k in d:
            v = d[k]
            if not isinstance(v, int) or isinstance(v, bool) or v < 2 or v & (v - 1):
                raise ConfigError(f"{where}.{k} must be a power of two >= 2, got {v!r}", key + (k,))


def _check_da(d, where: str, key: tuple) -> None:
    try:
        check_options(d, where)
    except DaError as e:
        raise ConfigError(str(e), key) from None


def _check_implementation(v, where: str, key: tuple) -> None:
    if v not in SOFTMAX_IMPLEMENTATIONS:
        raise ConfigError(f"{where} must be one of {', '.join(SOFTMAX_IMPLEMENTATIONS)}, got {v!r}", key)


def _parse_type(v, where: str, key: tuple = ()) -> FixedType:
    if isinstance(v, FixedType):
        return v
    try:
        return FixedType.parse(str(v))
    except TypeParseError as e:
        raise ConfigError(f"{where}: {e}", key) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"{loader.name}: line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_TOP_KEYS = {f.name for f in fields(ProjectConfig)} - {"source"}


def config_from_dict(data: dict, source: str = "<dict>", base: ProjectConfig | None = None) -> ProjectConfig:
    cfg = copy.deepcopy(base) if base else ProjectConfig()
    cfg.source = source
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping of keys such as {', '.join(sorted(_TOP_KEYS))}")
    for k, v in data.items():
        if k not in _TOP_KEYS:
            raise ConfigError(f"{source}: unknown key {k!r}; allowed keys: {', '.join(sorted(_TOP_KEYS))}", (k,))
        if k == "layers":
            if not isinstance(v, dict):
                raise ConfigError(f"{source}: layers must be a mapping of layer name -> settings", ("layers",))
            v = copy.deepcopy(v)
        setattr(cfg, k, v)
    return cfg.validate()


def load_config(path: str | Path | None, base: ProjectConfig | None = None) -> ProjectConfig:
    if path is None:
        return copy.deepcopy(base) if base else ProjectConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    text = p.read_text()
    loader = _UniqueKeyLoader(text)
    loader.name = str(p)
    try:
        data = loader.get_single_data()
    except ConfigError:
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"{p}: {where}invalid YAML ({getattr(e, 'problem', None) or e})") from None
    finally:
        loader.dispose()
    try:
        return config_from_dict(data, str(p), base)
    except ConfigError as e:
        line = _key_line(text, e.key)
        prefix = f"{p}: "
        if line is None or not str(e).startswith(prefix):
            raise
        raise ConfigError(f"{prefix}line {line}: {str(e)[len(prefix):]}", e.key) from None


def _key_line(text: str, key: tuple) -> int | None:
    """The 1-based line of the key path ``key`` in the YAML text (None when the text does not hold it)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in key:
        if not isinstance(node, yaml.MappingNode):
            return None
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                line, node = k.start_mark.line + 1, v
                break
        else:
            return None
    return line
