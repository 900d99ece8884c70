"""Give every tensor an exact fixed-point type.

- Per-layer overrides from the config win (``layers.<name>.precision.<slot>``).
- Model inputs take ``input_precision`` (default: ``default_precision``).
- Float weights (layers without a QKeras quantizer) are rounded to ``default_precision``
  (round to nearest, saturate); quantized weights keep the quantizer's type.
- A dense accumulator is the smallest type that holds every possible sum exactly, computed
  from the input type's range and the actual weights.  The result of a quantized dense layer
  (QDense with a kernel quantizer) is that same exact type — a value computed from quantized
  operands is never silently rounded; a float Dense layer's result takes ``default_precision``
  (otherwise exact types would grow layer after layer of a float model).
- conv2d: a dense layer per output pixel over its (kh, kw, n_chan) patch; the same rule with the
  kernel reshaped to (kh * kw * n_chan, n_filt) (padded cells are 0, inside the input's range).
- max pooling: accum and result are the input type.  average pooling: the sum is held exactly in
  accum, whose extra fraction bits make the division exact when every window size is a power of
  two, and otherwise leave ``AVG_GUARD_BITS`` guard bits below the input's; the result is accum.
- relu without a quantizer: the unsigned type that holds the non-negative part exactly.
- softmax: table types chosen so argmax is preserved (see :func:`softmax_types`).
- quant_act: the quantizer's type from the frontend.  apply_scale: scale/bias types exact from their
  values, the result the exact type of x * scale + bias (see :mod:`fpga_gen.passes.quant_scale`).
- float_activation (sigmoid, tanh; CPU/GPU fallback only): ``default_precision`` with RND_CONV, SAT.
"""

from __future__ import annotations

import numpy as np

from ..config import ProjectConfig
from ..emulate.fixed import ceillog2, from_float
from ..ir.graph import Graph, Node
from ..ir.ops import op_def
from ..ir.types import FixedType, exact_type_for_range
from .base import Pass, PassError

__all__ = ["InferPrecision", "ApplyLayerConfig", "RemoveIdentity", "softmax_types", "dense_accum_type",
           "pool_window_sizes", "AVG_GUARD_BITS"]

# fraction bits average pooling keeps below the input's when a window size is not a power of two
AVG_GUARD_BITS = 8


class ApplyLayerConfig(Pass):
    """Check that every layer named in the config exists and its precision slots are valid; fix them on nodes."""

    name = "apply-layer-config"
    max_iterations = 1

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        names = [n.name for n in graph]
        for lname, spec in config.layers.items():
            if lname not in graph:
                raise PassError(f"{config.source}: layers.{lname}: no layer named {lname!r} in the model; "
                                f"layers: {', '.join(names)}")
            node = graph[lname]
            slots = op_def(node.op).type_slots
            for slot, t in spec.get("precision", {}).items():
                if slot not in slots:
                    raise PassError(f"{config.source}: layers.{lname}.precision.{slot}: a {node.op} layer has no "
                                    f"{slot!r} type; its types: {', '.join(slots)}")
                node.meta.setdefault("override", {})[slot] = t
            if ("strategy" in spec or "reuse_factor" in spec) and node.op not in ("dense", "conv2d"):
                raise PassError(f"{config.source}: layers.{lname}: strategy/reuse_factor apply to dense and conv2d "
                                f"layers, {lname!r} is a {node.op} layer")
        return False


class RemoveIdentity(Pass):
    """Drop linear activations that have no type of their own (they would be plain copies)."""

    name = "remove-identity"

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            if node.op == "activation" and node.attrs.get("activation") == "linear" and "result" not in node.types \
                    and "result" not in node.meta.get("override", {}) and node.name not in graph.outputs:
                graph.remove(node.name)
                return True
        return False


def _quantize_weights(values: np.ndarray, t: FixedType) -> np.ndarray:
    rt = t.with_modes("RND_CONV", "SAT")
    return from_float(values, rt) * 2.0 ** -t.frac


def _raw(values: np.ndarray, t: FixedType) -> np.ndarray:
    return np.asarray(values, dtype=np.float64) * 2.0 ** t.frac


def dense_accum_type(x: FixedType, w: FixedType, b: FixedType, kernel: np.ndarray, bias: np.ndarray) -> FixedType:
    """Smallest type holding every x @ kernel + bias exactly, for x anywhere in x's range."""
    frac = max(x.frac + w.frac, b.frac)
    wr = _raw(kernel, w) * 2.0 ** (frac - x.frac - w.frac)   # weights scaled so products land on frac
    br = _raw(bias, b) * 2.0 ** (frac - b.frac)
    lo_x, hi_x = float(x.raw_min), float(x.raw_max)
    hi = br + np.where(wr > 0, wr * hi_x, wr * lo_x).sum(axis=0)
    lo = br + np.where(wr > 0, wr * lo_x, wr * hi_x).sum(axis=0)
    if max(np.abs(hi).max(initial=0), np.abs(lo).max(initial=0)) >= 2.0 ** 53:
        raise PassError("dense accumulator range exceeds 53 bits")
    t = exact_type_for_range(int(lo.min(initial=0)), int(hi.max(initial=0)), frac,
                             force_signed=bool(lo.min(initial=0) < 0) or x.signed or w.signed)
    return t


def pool_window_sizes(attrs: dict) -> set[int]:
    """The numbers of cells inside the image over all pooling windows (what nnet divides by)."""
    from ..ir.spatial import window_indices
    idx = window_indices(int(attrs["in_height"]), int(attrs["in_width"]), 1, tuple(attrs["pool_size"]),
                         tuple(attrs["strides"]), tuple(attrs["pads"]))
    return {int(n) for n in np.unique((idx >= 0).sum(axis=1))}


def softmax_types(in_type: FixedType, n: int, exp_table_size: int, inv_table_size: int) -> dict[str, FixedType]:
    """Softmax table types.  d = max - x is indexed with its top log2(size) bits over [0, 8);
    exp values in (0, 1] with 17 fraction bits; the sum of n of them is held exactly."""
    n_exp, n_inv = ceillog2(exp_table_size), ceillog2(inv_table_size)
    s = ceillog2(n)
    exp_t = FixedType(18, 1, False, "RND", "SAT")
    accum = FixedType(18 + s, 1 + s, False)
    return {
        "inp_norm": FixedType(max(n_exp, 1), 3, False, "TRN", "SAT"),
        "exp_table": exp_t,
        "accum": accum,
        "inv_inp": FixedType(max(18 + s, n_inv), 1 + s, False),
        "inv_table": FixedType(18, 1, False, "RND", "SAT"),
        "result": FixedType(16, 1, False, "RND_CONV", "SAT"),
    }


class InferPrecision(Pass):
    name = "infer-precision"
    max_iterations = 1

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:
        for node in graph:
            ov = node.meta.get("override", {})
            try:
                getattr(self, "_" + node.op)(graph, node, config, ov)
            except PassError as e:
                if str(e).startswith("layer "):
                    raise
                raise PassError(f"layer {node.name!r}: {e}") from None
            for slot, t in ov.items():
                if slot != "weight" and slot != "bias":
                    node.types[slot] = t
        return False

    def _input(self, graph, node: Node, config: ProjectConfig, ov):
        node.types["result"] = ov.get("result") or config.input_precision or config.default_precision

    def _weighted(self, graph, node: Node, config: ProjectConfig, ov, kernel_2d) -> None:
        """dense and conv: weight/bias types, exact accumulator, result type."""
        x = graph[node.inputs[0]].types["result"]
        quantized = "weight" in node.types          # set by the frontend from a QKeras kernel quantizer
        for slot, wname in (("weight", "kernel"), ("bias", "bias")):
            t = ov.get(slot) or node.types.get(slot) or config.default_precision
            node.weights[wname] = _quantize_weights(node.weights[wname], t)
            node.types[slot] = t.plain()
        if "accum" in ov:
            node.types["accum"] = ov["accum"]
        else:
            node.types["accum"] = dense_accum_type(x, node.types["weight"], node.types["bias"],
                                                   kernel_2d(node.weights["kernel"]), node.weights["bias"])
        # quantized layer: its exact value, never silently rounded; float layer: the default precision
        exact = node.types["accum"] if quantized else config.default_precision
        node.types["result"] = ov.get("result") or node.types.get("result") or exact

    def _dense(self, graph, node: Node, config: ProjectConfig, ov):
        self._weighted(graph, node, config, ov, lambda k: k)

    def _conv2d(self, graph, node: Node, config: ProjectConfig, ov):
        self._weighted(graph, node, config, ov, lambda k: k.reshape(-1, k.shape[-1]))

    def _pooling(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        mode = node.attrs["mode"]
        if mode == "max":
            if not x.signed and any(node.attrs["pads"]):
                # nnet's pad value is the type's top bit: the most negative value only for a signed type
                raise PassError(f"layer {node.name!r}: max pooling with padding='same' needs a signed input, "
                                f"got {x}; use padding='valid' or a signed (quantized_bits) activation before it")
            node.types["accum"] = ov.get("accum") or x.plain()
        elif mode == "average":
            sizes = pool_window_sizes(node.attrs)
            extra = max(ceillog2(n) for n in sizes)
            guard = extra if all(n & (n - 1) == 0 for n in sizes) else extra + AVG_GUARD_BITS
            # the sum of max(sizes) inputs, with the guard bits as extra fraction bits
            lo, hi = x.raw_min * max(sizes), x.raw_max * max(sizes)
            t = exact_type_for_range(lo << guard, hi << guard, x.frac + guard, force_signed=x.signed)
            node.types["accum"] = ov.get("accum") or t
        else:
            raise PassError(f"layer {node.name!r}: pooling mode {mode!r} is not supported; use 'max' or 'average'")
        node.types["result"] = ov.get("result") or node.types.get("result") or node.types["accum"]

    def _activation(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        if "result" in ov or "result" in node.types:
            node.types["result"] = ov.get("result") or node.types["result"]
            return
        act = node.attrs["activation"]
        if act == "relu":
            node.types["result"] = FixedType(max(x.width - 1, 1), x.integer - 1, False) if x.signed else x.plain()
        else:
            node.types["result"] = x.plain()

    def _quant_act(self, graph, node: Node, config: ProjectConfig, ov):
        # the frontend sets the quantizer's exact type; a table's comes from the levels it reaches
        if node.attrs.get("function") == "table":
            from .quant_table import table_types
            table_types(node, graph[node.inputs[0]].types["result"])
            return
        node.types["result"] = ov.get("result") or node.types["result"]

    def _apply_scale(self, graph, node: Node, config: ProjectConfig, ov):
        from .quant_scale import apply_scale_types
        apply_scale_types(graph, node, ov, config.default_precision)

    def _float_activation(self, graph, node: Node, config: ProjectConfig, ov):
        node.types["result"] = ov.get("result") or node.types.get("result") or \
            config.default_precision.with_modes("RND_CONV", "SAT")

    def _softmax(self, graph, node: Node, config: ProjectConfig, ov):
        x = graph[node.inputs[0]].types["result"]
        sm = config.softmax or {}
        node.attrs.setdefault("implementation", "stable")
        # exp table: enough index bits to tell logits 2**-(frac) apart over [0, 8), between 1024 and 4096
        # entries (4096 x 18 bits = 4 BRAM_18K); ties below that resolution are what costs argmax agreement
        default_exp = min(max(1 << (3 + max(x.frac, 0)), 1024), 4096)
        node.attrs.setdefault("exp_table_size", int(sm.get("exp_table_size", default_exp)))
        node.attrs.setdefault("inv_table_size", int(sm.get("inv_table_size", 1024)))
        for k in ("exp_table_size", "inv_table_size"):
            v = node.attrs[k]
            if v < 2 or v & (v - 1):
                raise PassError(f"layer {node.name!r}: {k} must be a power of two >= 2, got {v}")
        types = softmax_types(x, node.size, node.attrs["exp_table_size"], node.attrs["inv_table_size"])
        for slot, t in types.items():
            node.types[slot] = ov.get(slot) or node.types.get(slot) or t
        if node.types["inp_norm"].width < ceillog2(node.attrs["exp_table_size"]):
            raise PassError(f"layer {node.name!r}: inp_norm type {node.types['inp_norm']} is narrower than the "
                            f"{ceillog2(node.attrs['exp_table_size'])} index bits of the exp table")
