"""HLS handler of the fixed_quant op (HGQ2's per-element quantizers): fpga_gen::fixed_quant in the generated
fpga_gen_quant.h, with the per-element constants of :func:`fpga_gen.ir.fixed_quant.fixed_quant_params` as
weight arrays (shift, out_shift, lo, hi, bits)."""

from __future__ import annotations

import numpy as np

from ..ir.fixed_quant import FIXED_QUANT_OVERFLOW, FIXED_QUANT_ROUNDING, fixed_quant_params
from ..ir.graph import Graph, Node
from ..ir.types import exact_type_for_range
from .layers import LayerCode, TypeDef, _fail, _type, handler, weight_array
from .layers_quant import QUANT_HEADER
from .names import Namer
from ..ir.fixed_quant import softmax_diff_type

__all__ = []

MAX_RAW_BITS = 62      # the C++ computes on long long codes


@handler("fixed_quant")
def fixed_quant(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    if code.n_in != code.n_out:
        _fail(node, f"a quantizer keeps its size, got {code.n_in} -> {code.n_out}")
    xt, rt = graph[node.inputs[0]].types["result"], _type(node, "result")
    rnd, ovf = node.attrs.get("rounding"), node.attrs.get("overflow")
    if rnd not in FIXED_QUANT_ROUNDING or ovf not in FIXED_QUANT_OVERFLOW:
        _fail(node, f"rounding {rnd!r} / overflow {ovf!r} is not supported")
    for w in ("k", "i", "f"):
        if np.asarray(node.weights[w]).shape != (code.n_in,):
            _fail(node, f"{w} has shape {np.asarray(node.weights[w]).shape}, expected ({code.n_in},)")
    p = fixed_quant_params(node.weights["k"], node.weights["i"], node.weights["f"], ovf, xt, rt)
    if xt.width + max(0, -int(p["shift"].min())) > MAX_RAW_BITS or rt.width > MAX_RAW_BITS:
        _fail(node, f"input {xt.cpp()} / result {rt.cpp()} need more than {MAX_RAW_BITS} bits of raw code")
    arrays = {"shift": p["shift"], "out_shift": p["out_shift"], "lo": p["lo"], "hi": p["hi"], "bits": p["bits"]}
    slots = {"shift": ("shift", "out_shift"), "bound": ("lo", "hi"), "bits": ("bits",)}
    for slot, names in slots.items():
        vals = np.concatenate([arrays[n] for n in names]).astype(np.int64)
        t = exact_type_for_range(int(vals.min()), int(vals.max()), 0, force_signed=True)   # an integer type
        td = namer.unique(f"{code.stem}_{slot}_t")
        code.typedefs.append(TypeDef(td, t.cpp()))
        code.params[f"{slot}_t"] = td
        for n in names:
            wa = weight_array(namer, f"{n}_{code.stem}", td, node, arrays[n].astype(np.float64), t, n)
            code.weights.append(wa)
            code.params[n] = wa.name
    code.params["weight_roles"] = tuple(n for names in slots.values() for n in names)
    code.includes = (QUANT_HEADER,)
    code.summary = f"{node.meta.get('quantizer', 'per-element fixed-point quantizer')} ({rnd}, {ovf})"
    code.params.update(rounding=FIXED_QUANT_ROUNDING.index(rnd), wrap="true" if ovf == "WRAP" else "false",
                       in_width=xt.width, in_signed="true" if xt.signed else "false", out_width=rt.width,
                       quantizer=node.meta.get("quantizer", "fixed_quant"))
    return code


@handler("hgq_softmax")
def hgq_softmax(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    if code.n_in != code.n_out or len(node.shape) != 1:
        _fail(node, f"softmax over a 1-D tensor keeps its size, got {code.n_in} -> {code.n_out}")
    xt = graph[node.inputs[0]].types["result"]
    ty = {s: _type(node, s) for s in ("exp_in", "exp_out", "sum", "inv_in", "inv_out")}
    td = {s: namer.unique(f"{code.stem}_{s}_t") for s in ty}
    td["diff"] = namer.unique(f"{code.stem}_diff_t")
    code.typedefs += [TypeDef(td[s], ty[s].cpp()) for s in ty] + [TypeDef(td["diff"], softmax_diff_type(xt).cpp())]
    for name, slot in (("exp_table", "exp_out"), ("inv_table", "inv_out")):
        values = np.asarray(node.weights[name], dtype=np.float64)
        n_codes = 1 << ty[slot.replace("out", "in")].width
        if values.shape != (n_codes,):
            _fail(node, f"{name} has {values.size} entries, expected {n_codes} (one per code of its input type)")
        wa = weight_array(namer, f"{name}_{code.stem}", td[slot], node, values, ty[slot], name)
        code.weights.append(wa)
        code.params[name] = wa.name
    code.params["weight_roles"] = ("exp_table", "inv_table")
    code.includes = (QUANT_HEADER,)
    code.summary = (f"HGQ2 softmax: exp table {1 << ty['exp_in'].width} x {ty['exp_out'].cpp()}, 1/x table "
                    f"{1 << ty['inv_in'].width} x {ty['inv_out'].cpp()}")
    code.params.update({f"{s}_t": td[s] for s in td})
    code.params.update(exp_in_width=ty["exp_in"].width, exp_in_signed="true" if ty["exp_in"].signed else "false",
                       inv_in_width=ty["inv_in"].width, inv_in_signed="true" if ty["inv_in"].signed else "false",
                       exp_table_size=1 << ty["exp_in"].width, inv_table_size=1 << ty["inv_in"].width)
    return code


MAX_LUT_BITS = 16


@handler("lut")
def lut(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    if code.n_in != code.n_out:
        _fail(node, f"a lookup table keeps its size, got {code.n_in} -> {code.n_out}")
    xt, rt = graph[node.inputs[0]].types["result"], _type(node, "result")
    if node.attrs.get("in_type") is not None and node.attrs["in_type"].plain() != xt.plain():
        _fail(node, f"its table is built over {node.attrs['in_type'].cpp()}, its input is {xt.cpp()}")
    if xt.width > MAX_LUT_BITS:
        _fail(node, f"input type {xt.cpp()} has {xt.width} bits; a table over its codes needs <= {MAX_LUT_BITS}")
    values = np.asarray(node.weights["table"], dtype=np.float64)
    if values.shape != (1 << xt.width,):
        _fail(node, f"table has {values.size} entries, expected {1 << xt.width} (one per code of {xt.cpp()})")
    wa = weight_array(namer, f"table_{code.stem}", code.out_type, node, values, rt, "table")
    code.weights.append(wa)
    code.params.update(table=wa.name, weight_roles=("table",), in_width=xt.width,
                       in_signed="true" if xt.signed else "false", table_size=1 << xt.width,
                       function=node.meta.get("function", "table"))
    code.includes = (QUANT_HEADER,)
    code.summary = f"lookup table {node.meta.get('function', '')} ({1 << xt.width} entries of {rt.cpp()})"
    return code
