"""HLS handlers of the QKeras quantizer ops: quant_act (fpga_gen::quant_act_* in the generated
fpga_gen_quant.h) and apply_scale (nnet::normalize, as hls4ml writes QKeras' ApplyAlpha)."""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.quant import affine_type, leaky_types, multithreshold_type
from .layers import LayerCode, TypeDef, _fail, _type, handler, weight_array
from .names import Namer

__all__ = ["QUANT_HEADER"]

QUANT_HEADER = "fpga_gen_quant.h"


def _num(v) -> str:
    """A double literal that C++ reads back exactly."""
    return repr(float(v))


def _cbool(v) -> str:
    return "true" if v else "false"


@handler("quant_act")
def quant_act(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    if code.n_in != code.n_out:
        _fail(node, f"an activation keeps its size, got {code.n_in} -> {code.n_out}")
    xt = graph[node.inputs[0]].types["result"]
    a = node.attrs
    fn = a["function"]
    p = {"function": fn, "quantizer": node.meta.get("quantizer", fn)}
    if fn == "round":
        at = affine_type(xt, int(a.get("shift", 0)), float(a.get("offset", 0.0)))
        td = namer.unique(f"{code.stem}_affine_t")
        code.typedefs.append(TypeDef(td, at.cpp()))
        p.update(affine_t=td, shift=int(a.get("shift", 0)), offset=_num(a.get("offset", 0.0)),
                 clamp_lo=_cbool(a.get("lo") is not None), lo=_num(a.get("lo") or 0.0),
                 clamp_hi=_cbool(a.get("hi") is not None), hi=_num(a.get("hi") or 0.0))
    elif fn == "leaky":
        ty = leaky_types(xt, int(a["shift"]), int(a["bits"]), int(a["integer"]))
        for slot in ("pos", "negw", "neg"):
            td = namer.unique(f"{code.stem}_{slot}_t")
            code.typedefs.append(TypeDef(td, ty[slot].cpp()))
            p[f"{slot}_t"] = td
        p.update(shift=int(a["shift"]), neg_min=_num(a["neg_min"]))
    elif fn == "step":
        if xt.width > 53:
            _fail(node, f"input type {xt.cpp()} is wider than the 53 bits a double compares exactly")
        p.update(threshold=_num(a["threshold"]), inclusive=_cbool(a.get("inclusive", True)), hi=_num(a["hi"]),
                 lo=_num(a["lo"]), has_mid=_cbool(a.get("mid") is not None), mid=_num(a.get("mid") or 0.0))
    elif fn == "table":
        thr, levels = node.weights["thresholds"], node.weights["levels"]
        td = namer.unique(f"{code.stem}_threshold_t")
        code.typedefs.append(TypeDef(td, xt.plain().cpp()))
        t = weight_array(namer, f"t_{code.stem}", td, node, thr, xt.plain(), "thresholds")
        lv = weight_array(namer, f"l_{code.stem}", code.out_type, node, levels, _type(node, "result"), "levels")
        code.weights += [t, lv]
        p.update(threshold_t=td, n_thr=len(thr), t=t.name, levels=lv.name)
    elif fn == "multithreshold":
        thr = np.asarray(node.weights["thresholds"], dtype=np.float64)
        n_chan, n_thr = thr.shape
        if code.n_in % n_chan:
            _fail(node, f"{n_chan} channels of thresholds do not fit {code.n_in} values")
        tt = multithreshold_type(thr, xt)
        td = namer.unique(f"{code.stem}_threshold_t")
        code.typedefs.append(TypeDef(td, tt.cpp()))
        t = weight_array(namer, f"t_{code.stem}", td, node, thr.reshape(-1), tt, "thresholds")
        code.weights += [t]
        p.update(threshold_t=td, n_thr=n_thr, n_chan=n_chan, lo=int(a["lo"]), t=t.name)
    else:
        _fail(node, f"quant_act function {fn!r} has no HLS template; supported: round, leaky, step, table, "
                    f"multithreshold")
    code.includes = (QUANT_HEADER,)
    code.summary = f"{p['quantizer']} ({fn})"
    code.params.update(p)
    return code


@handler("apply_scale")
def apply_scale(node: Node, graph: Graph, namer: Namer, code: LayerCode) -> LayerCode:
    scale = np.asarray(node.weights["scale"], dtype=np.float64)
    bias = np.asarray(node.weights["bias"], dtype=np.float64)
    n_chan = len(scale)
    if bias.shape != (n_chan,) or code.n_in != code.n_out or code.n_in % n_chan:
        _fail(node, f"scale/bias of {n_chan} channels do not fit {code.n_in} values")
    st, bt = _type(node, "scale"), _type(node, "bias")
    td = {s: namer.unique(f"{code.stem}_{s}_t") for s in ("scale", "bias")}
    code.typedefs += [TypeDef(td["scale"], st.cpp()), TypeDef(td["bias"], bt.cpp())]
    s = weight_array(namer, f"s_{code.stem}", td["scale"], node, scale, st, "scale")
    b = weight_array(namer, f"b_{code.stem}", td["bias"], node, bias, bt, "bias")
    code.weights += [s, b]
    code.includes = ("nnet_utils/nnet_batchnorm.h",)
    code.summary = f"per-channel scale {st.cpp()} and bias {bt.cpp()} ({n_chan} channels)"
    code.params.update(n_chan=n_chan, scale_t=td["scale"], bias_t=td["bias"], s=s.name, b=b.name)
    return code
