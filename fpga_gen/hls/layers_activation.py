"""HLS handlers for the activation op (every nnet_activation.h kind) and softmax (every implementation).

Config structs as hls4ml 1.3 writes them (backends/vivado/passes/core_templates.py): activ_config for
plain and table functions, param_activ_config (table_t + param_t) for leaky_relu / thresholded_relu / elu
and prelu, hard_activ_config (slope and shift constants) for hard_sigmoid / hard_tanh, softmax_config.
Constants are written as exact decimal literals of their values in their types.
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import from_float
from ..ir.graph import Graph, Node
from ..ir.ops import SOFTMAX_IMPLEMENTATIONS
from ..ir.reuse import node_reuse
from .layers import LayerCode, TypeDef, _fail, _type, handler, weight_array
from .names import Namer
from .native import cast_ok, include_header, softmax_plan

__all__ = ["ACTIVATION_FORMS"]

# kind -> (template form, nnet function)
ACTIVATION_FORMS = {
    "linear": ("plain", "linear"), "relu": ("plain", "relu"), "sigmoid": ("table", "sigmoid"),
    "tanh": ("table", "tanh"), "softplus": ("table", "softplus"), "softsign": ("table", "softsign"),
    "relu_max": ("relu_max", "relu_max"), "leaky_relu": ("param", "leaky_relu"),
    "thresholded_relu": ("param", "thresholded_relu"), "elu": ("param", "elu"), "prelu": ("prelu", "prelu"),
    "hard_sigmoid": ("hard", "hard_sigmoid"), "hard_tanh": ("hard", "hard_tanh"),
}
DEFAULT_TABLE_T = "ap_fixed<18,8>"            # activ_config's own table_t


def _literal(node: Node, value: float, slot: str) -> str:
    t = _type(node, slot)
    raw = float(from_float(np.array([float(value)]), t)[0])
    return repr(raw * 2.0 ** -t.frac)


def _table_size(node: Node, key: str = "table_size") -> int:
    n = int(node.attrs.get(key, 1024))
    if n < 2 or n & (n - 1):
        _fail(node, f"{key} must be a power of two >= 2, got {n}")
    return n


@handler("activation")
def activation(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    act = node.attrs.get("activation")
    if act not in ACTIVATION_FORMS:
        _fail(node, f"activation {act!r} has no HLS template; supported: {', '.join(ACTIVATION_FORMS)}")
    if code.n_in != code.n_out:
        _fail(node, f"an activation keeps its size, got {code.n_in} -> {code.n_out}")
    form, fn = ACTIVATION_FORMS[act]
    p = dict(form=form, function=f"nnet::{fn}", reuse_factor=node_reuse(node),
             table_size=int(node.attrs.get("table_size", 1024)), table_t=DEFAULT_TABLE_T)
    summary = act
    if form == "table" or act == "elu":
        p["table_size"] = _table_size(node)
        p["table_t"] = namer.unique(f"{code.stem}_table_t")
        code.typedefs.append(TypeDef(p["table_t"], _type(node, "table").cpp()))
        summary += f", table {p['table_size']} x {_type(node, 'table').cpp()}"
    if form in ("param", "prelu"):
        p["param_t"] = namer.unique(f"{code.stem}_param_t")
        code.typedefs.append(TypeDef(p["param_t"], _type(node, "param").cpp()))
    if form == "param":
        p["param"] = _literal(node, node.attrs["param"], "param")
        summary += f", param {p['param']}"
    if form == "prelu":
        alpha = np.asarray(node.weights.get("alpha"), dtype=np.float64).reshape(-1)
        if alpha.size != code.n_in:
            _fail(node, f"alpha has {alpha.size} values, expected {code.n_in} (one per element)")
        w = weight_array(namer, f"a_{code.stem}", p["param_t"], node, alpha, _type(node, "param"), "alpha")
        code.weights.append(w)
        p["param"] = w.name
        p["weight_roles"] = ("alpha",)
    if form == "relu_max":
        p["max_int"] = int(node.attrs["max_int"])
        summary += f", max {p['max_int']}"
    if form == "hard":
        for s in ("slope", "shift"):
            p[f"{s}_t"] = namer.unique(f"{code.stem}_{s}_t")
            code.typedefs.append(TypeDef(p[f"{s}_t"], _type(node, s).cpp()))
            p[s] = _literal(node, node.attrs[s], s)
        summary += f", slope {p['slope']}, shift {p['shift']}"
    code.includes = ("nnet_utils/nnet_activation.h",)
    p["native"] = None
    if act in ("linear", "relu") and len(node.inputs) == 1:
        # the native back end's integer form (fpga_gen_native.h): the same casts on the raw codes
        if cast_ok(graph[node.inputs[0]].types["result"], node.types["result"]):
            p["native"] = act
            include_header(code)
    code.summary = summary
    code.params.update(p)
    return code


def _log2_exact(n: int) -> int | None:
    return n.bit_length() - 1 if n >= 1 and n & (n - 1) == 0 else None


@handler("softmax")
def softmax(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    impl = node.attrs.get("implementation", "stable")
    if impl not in SOFTMAX_IMPLEMENTATIONS:
        _fail(node, f"softmax implementation {impl!r} is not supported; use one of {', '.join(SOFTMAX_IMPLEMENTATIONS)}")
    if code.n_in != code.n_out:
        _fail(node, f"softmax keeps its size, got {code.n_in} -> {code.n_out}")
    in_t = graph[node.inputs[0]].types["result"]
    if impl in ("stable", "latency"):
        slots = ("exp_table", "inv_table", "accum", "inv_inp", "inp_norm")
    elif impl == "legacy":
        slots = ("table",)
    else:
        slots = ()
    slot_types = {s: _type(node, s) for s in slots}
    sizes = {}
    for key, addr_slot in (("exp_table_size", "inp_norm"), ("inv_table_size", "inv_inp")):
        n = int(node.attrs.get(key, 1024))
        bits = _log2_exact(n)
        if bits is None or bits < 1:
            _fail(node, f"{key} must be a power of two >= 2, got {n}")
        addr_t = in_t if (impl == "latency" and addr_slot == "inp_norm") else slot_types.get(addr_slot)
        if addr_t is not None and bits > addr_t.width:
            what = "input" if addr_t is in_t else addr_slot
            _fail(node, f"{key} {n} needs {bits} address bits but the {what} type {addr_t.cpp()} has only "
                        f"{addr_t.width}")
        sizes[key] = n
    td = {s: namer.unique(f"{code.stem}_{s}_t") for s in slots}
    code.typedefs += [TypeDef(td[s], slot_types[s].cpp()) for s in slots]
    code.includes = ("nnet_utils/nnet_activation.h",)
    code.summary = (f"{impl}, exp table {sizes['exp_table_size']}, inverse table {sizes['inv_table_size']}"
                    if impl != "argmax" else "argmax")
    unused_width = max(18, *(_log2_exact(n) for n in sizes.values()))
    code.params.update(sizes, implementation=impl, unused_width=unused_width, reuse_factor=node_reuse(node),
                       typedefs={f"{s}_t": td[s] for s in slots})
    # the native back end's integer form (fpga_gen_native.h): nnet::softmax_stable's steps on the raw codes
    code.params["native"] = softmax_plan(node, graph, namer, code, sizes)
    return code
