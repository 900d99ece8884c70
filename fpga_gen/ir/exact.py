"""The exactness rules of ap_fixed casts that every stage must agree on.

Converting ``src`` to a type with ``shift = src.frac - dst.frac`` fewer fraction bits under a rounding mode
reads bit ``shift - 1`` of ``src``; when ``shift > src.width`` that bit is past the MSB and the AMD headers
abort (``Attempting to read bit beyond MSB``).  The SafeCasts pass (:mod:`fpga_gen.passes.safe_casts`) widens
or refuses such casts; the HLS writer's native kernels take the fast path only for casts these rules call
safe.  A merge casts the ap_fixed operator's own result (:func:`merge_cast_sources`) to its result type.
"""

from __future__ import annotations

from .graph import Graph, Node
from .types import FixedType

__all__ = ["cast_reads_past_msb", "bits_lacking", "merge_cast_sources", "widen"]


def cast_reads_past_msb(src: FixedType, dst: FixedType) -> int:
    """How many bits ``src`` lacks for the cast to ``dst`` (0 when the cast is safe)."""
    if dst.rounding == "TRN" or (dst.rounding == "TRN_ZERO" and not src.signed):
        return 0
    shift = src.frac - dst.frac
    return max(0, shift - src.width)


def bits_lacking(width: int, frac: int, signed: bool, dst: FixedType) -> int:
    """cast_reads_past_msb for a source given as (width, frac, signed): it may be wider than a FixedType."""
    if dst.rounding == "TRN" or (dst.rounding == "TRN_ZERO" and not signed):
        return 0
    return max(0, frac - dst.frac - width)


def merge_cast_sources(node: Node, graph: Graph) -> list[tuple[int, int, bool]]:
    """(width, frac, signed) of what a merge/concatenate node casts to its result type, as the headers type it."""
    a, b = graph.producer_types(node)
    mode = node.attrs.get("mode", "concatenate") if node.op == "merge" else "concatenate"
    if mode in ("maximum", "minimum", "concatenate"):
        return [(a.width, a.frac, a.signed), (b.width, b.frac, b.signed)]
    if mode == "multiply":
        return [(a.width + b.width, a.frac + b.frac, a.signed or b.signed)]
    # ap_fixed_base::RType plus/minus: max(I1 + (S2 && !S1), I2 + (S1 && !S2)) + 1 integer bits, max fraction bits
    integer = max(a.integer + (b.signed and not a.signed), b.integer + (a.signed and not b.signed)) + 1
    frac = max(a.frac, b.frac)
    signed = a.signed or b.signed or mode == "subtract"
    if mode == "average":                      # times ap_ufixed<1,0>(0.5): one more bit, one more fraction bit
        return [(integer + frac + 1, frac + 1, signed)]
    return [(integer + frac, frac, signed)]


def widen(t: FixedType, k: int) -> FixedType:
    return FixedType(t.width + k, t.integer + k, t.signed, t.rounding, t.saturation)
