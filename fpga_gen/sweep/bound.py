"""A lower bound on the II that the board's multipliers allow, to tell how close a design is to the limit.

Every dense/conv product x*w of the model must run on a multiplier once per inference.  With an initiation
interval of T cycles, layer l (M_l products; conv: per output pixel) needs M_l / T products per cycle.  A product
runs either on DSP slices (``dsp_per_product`` of its data x weight widths, as the estimator counts them) or on a
LUT multiplier (``wx * ww * lut_var_mult_per_bit`` LUTs, the estimator's Resource-strategy cost).  The budget gives
D DSPs and L LUTs.  The bound is the smallest integer T for which the relaxed (fractional) assignment fits: DSPs go
first to the layers that save the most LUTs per DSP, the rest goes to LUTs, and it fits when the LUTs stay <= L.

It counts only multipliers: accumulators, weight ROMs, activations, softmax and control are left out, and every
product may take a DSP even when the tool would build it in LUTs, so no design can beat it; how far a design is
above it (``ii / bound``) is the price of everything else.  Constant folding (zero and power-of-two weights under
the Latency strategy) is not counted as a saving: the Resource strategy that small-II designs need at this size
does not fold, and a bound that assumed folding would need the estimator's per-weight statistics.

The estimator's variant (``model_rules``) takes the LUTs and DSPs that no design of the sweep avoids off the
budget first.  Without multiplier binding it also keeps a product off the DSPs where the estimator builds it in
LUTs (both operands under ``dsp_min_var_bits``, or a 1-bit operand); with binding (the per-layer search may set
``mult_impl: dsp``, which puts any product on DSP slices) every product may take a DSP, as in the device bound.
The assignment stays fractional: a bound may split a layer's products between DSPs and LUTs, a design binds a
whole layer one way.
"""

from __future__ import annotations

import math

from ..estimate import DEFAULT
from ..estimate.layers import dsp_per_product
from ..estimate.parts import part_family

__all__ = ["ii_lower_bound"]


def _layer_products(graph):
    out = []
    for node in graph:
        if node.op not in ("dense", "conv2d"):
            continue
        if node.op == "dense":
            n = int(node.attrs["n_in"]) * int(node.attrs["n_out"])
        else:
            kh, kw = node.attrs["kernel_size"]
            pixels = math.prod(node.shape[:-1]) if len(node.shape) > 1 else 1
            n = int(kh * kw * node.attrs["n_chan"] * node.attrs["n_filt"] * pixels)
        wx = graph[node.inputs[0]].types["result"].width
        ww = node.types["weight"].width
        out.append((node.name, n, wx, ww))
    return out


def _clean(layers):
    return [{k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in x.items()} for x in layers]


def ii_lower_bound(graph, part: str, limits: dict, model_rules: bool = False, floor: dict | None = None,
                   dsp_binding: bool = False) -> dict:
    """{'ii': T, 'dsp': D, 'lut': L, 'products': total, 'layers': [...]} for the budget ``limits``.

    ``model_rules=True``: the estimator's variant — ``floor`` (the smallest DSP / LUT any design of the sweep
    needs: what does not shrink with the II) is taken off the budget first, and unless ``dsp_binding`` (the
    sweep may bind products to DSPs) the products the estimator builds in LUTs (both operands narrower than
    ``dsp_min_var_bits``, or a 1-bit operand) may not take a DSP.  A bound for this estimator, not for the
    device."""
    fam = part_family(part)
    c = DEFAULT.resolved(fam)
    floor = floor or {}
    D = max(0.0, float(limits.get("DSP", 0)) - floor.get("DSP", 0))
    L = max(0.0, float(limits.get("LUT", 0)) - floor.get("LUT", 0))
    layers = []
    for name, n, wx, ww in _layer_products(graph):
        dsp_ok = not model_rules or dsp_binding or (max(wx, ww) >= c.dsp_min_var_bits and min(wx, ww) > 1)
        layers.append({"name": name, "products": n,
                       "dsp_per_product": dsp_per_product(fam, wx, ww) if dsp_ok else math.inf,
                       "lut_per_product": wx * ww * c.lut_var_mult_per_bit})
    total = sum(x["products"] for x in layers)
    if not layers:
        return {"ii": 1, "dsp": D, "lut": L, "products": 0, "layers": []}
    order = sorted(layers, key=lambda x: -x["lut_per_product"] / x["dsp_per_product"])

    def fits(T: int) -> bool:
        dsp_left, lut = D, 0.0
        for x in order:
            p = x["products"] / T
            on_dsp = min(p, dsp_left / x["dsp_per_product"])
            dsp_left -= on_dsp * x["dsp_per_product"] if on_dsp else 0.0
            lut += (p - on_dsp) * x["lut_per_product"]
        return lut <= L + 1e-9

    lo, hi = 1, max(x["products"] for x in layers)
    if not fits(hi):
        return {"ii": None, "dsp": D, "lut": L, "products": total, "layers": _clean(layers)}
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return {"ii": lo, "dsp": D, "lut": L, "products": total, "layers": _clean(layers)}
