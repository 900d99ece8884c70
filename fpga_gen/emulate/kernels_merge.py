"""Bit-exact kernels of the two-input ops (merge, concatenate), registered into :data:`KERNELS`.

What nnet_merge.h computes per element ``res[i] = f(data1[i], data2[i])``:

* add / subtract / multiply: the ap_fixed ``+ - *`` operators give the exact result (their result type
  grows to hold it), then the assignment casts it to ``res_T`` (its rounding and overflow modes);
* average: ``(data1 + data2) * ap_ufixed<1,0>(0.5)``: the exact sum with one more fraction bit, cast to
  ``res_T``;
* maximum / minimum: ``data1 > data2 ? static_cast<res_T>(data1) : static_cast<res_T>(data2)`` (``<``
  for minimum): the exact values compared, the chosen input cast to ``res_T`` from its own type;
* concatenate: ``res[j] = data1[i]`` / ``data2[i]`` in the concatenated order, each cast to ``res_T``.

The inputs are aligned on the finer of the two grids (a multiplication by a power of two: exact).  Every
aligned raw value and result must stay below 2**53 so float64 holds it; the bound is checked from the types.
"""

from __future__ import annotations

from ..ir.fixed import EXACT_LIMIT, EmulationRangeError, cast
from ..ir.graph import Node
from ..ir.types import FixedType, exact_type_for_range
from .kernels import kernel

__all__ = ["merge_kernel", "concatenate_kernel"]


def _exact(lo: int, hi: int, frac: int, what: str) -> FixedType:
    """The exact type of raw values in [lo, hi] at ``frac`` fraction bits, refused past 2**53."""
    if max(abs(lo), abs(hi)) >= EXACT_LIMIT:
        raise EmulationRangeError(f"{what} can reach 2**{max(abs(lo), abs(hi)).bit_length() - 1}; the emulator "
                                  f"is exact below 2**53: narrow the input types")
    return exact_type_for_range(lo, hi, frac, force_signed=lo < 0)


@kernel("merge")
def merge_kernel(node: Node, inputs, in_types, xp):
    a, b = inputs
    ta, tb = in_types
    rt = node.types["result"]
    mode = node.attrs["mode"]
    if mode in ("maximum", "minimum"):
        frac = max(ta.frac, tb.frac)
        aa, bb = a * 2.0 ** (frac - ta.frac), b * 2.0 ** (frac - tb.frac)
        _exact(min(ta.raw_min << (frac - ta.frac), tb.raw_min << (frac - tb.frac)),
               max(ta.raw_max << (frac - ta.frac), tb.raw_max << (frac - tb.frac)), frac, f"aligning {ta} and {tb}")
        first = aa > bb if mode == "maximum" else aa < bb
        return xp.where(first, cast(a, ta, rt, xp), cast(b, tb, rt, xp))
    if mode == "multiply":
        corners = [x * y for x in (ta.raw_min, ta.raw_max) for y in (tb.raw_min, tb.raw_max)]
        pt = _exact(min(corners), max(corners), ta.frac + tb.frac, f"the product of {ta} and {tb}")
        return cast(a * b, pt, rt, xp)
    frac = max(ta.frac, tb.frac)
    sa, sb = frac - ta.frac, frac - tb.frac
    aa, bb = a * 2.0 ** sa, b * 2.0 ** sb
    if mode in ("add", "average"):
        s = aa + bb
        st = _exact((ta.raw_min << sa) + (tb.raw_min << sb), (ta.raw_max << sa) + (tb.raw_max << sb), frac,
                    f"the sum of {ta} and {tb}")
    elif mode == "subtract":
        s = aa - bb
        st = _exact((ta.raw_min << sa) - (tb.raw_max << sb), (ta.raw_max << sa) - (tb.raw_min << sb), frac,
                    f"the difference of {ta} and {tb}")
    else:
        raise NotImplementedError(f"merge mode {mode!r} has no emulator kernel")
    if mode == "average":
        # times ap_ufixed<1,0>(0.5): raw 1 at one more fraction bit, so the raw sum is unchanged
        st = FixedType(st.width + 1, st.integer, st.signed)
    return cast(s, st, rt, xp)


@kernel("concatenate")
def concatenate_kernel(node: Node, inputs, in_types, xp):
    a, b = inputs
    ta, tb = in_types
    rt = node.types["result"]
    axis = int(node.attrs["axis"])
    s1, s2 = tuple(node.attrs["shape1"]), tuple(node.attrs["shape2"])
    batch = a.shape[0]
    ca = xp.reshape(cast(a, ta, rt, xp), (batch,) + s1)
    cb = xp.reshape(cast(b, tb, rt, xp), (batch,) + s2)
    return xp.reshape(xp.concat([ca, cb], axis=axis + 1), (batch, -1))
