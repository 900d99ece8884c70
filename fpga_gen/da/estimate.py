"""The estimator entry of a distributed-arithmetic dense layer, from its adder graph.

LUTs: every add/subtract of the graph is a ripple-carry adder over its result bits, one LUT per bit in front of
the carry chain (LUT2 + CARRY4 on 7-series), less the low bits the shift leaves untouched (a shifted operand's
bits below the other's LSB are wires).  ``lut_per_da_bit`` scales that count; it was fitted against yosys
``synth_xilinx`` on random layers (benchmarks/bench_da.py; docs/distributed_arithmetic.md gives the error).
Then the cast of each exact sum to the result type (free when it truncates and wraps).  No DSP.

Latency: da4ml's depth in adder levels; Vitis HLS registers the straight-line code every
``clock / t_add`` levels (its own scheduling), so ``ceil(levels * t_add / t_eff) - 1`` registers.  FF: the register
bits of da4ml's own pipelining of the graph at that many levels per stage (:func:`register_bits`; yosys counts
exactly these in the RTL) [guess for what Vitis HLS registers from the C++].  II 1.
"""

from __future__ import annotations

import math

__all__ = ["da_layer_cost", "adder_bits", "LUT_PER_DA_BIT"]

#: LUTs per adder bit of the adder graph [fit: benchmarks/bench_da.py --seed 0, 24 random layers, yosys 0.23
#: synth_xilinx -family xc7: median yosys LUT / adder bits 0.928; checked on --seed 1]
LUT_PER_DA_BIT = 0.93


def _kif_bits(qint) -> int:
    from da4ml.types import minimal_kif
    return int(sum(minimal_kif(qint)))


def adder_bits(comb) -> int:
    """Bits of carry-chain adders the graph needs: per add/sub/constant-add, the result bits at or above the LSB
    of the lower-significance operand's overlap (the bits below are copied)."""
    from da4ml.types import minimal_kif
    ops = comb.ops
    total = 0
    for op in ops:
        if op.opcode in (0, 1):
            k, i, f = minimal_kif(op.qint)
            a, b = ops[op.id0].qint, ops[op.id1].qint
            # the LSB positions of the two operands (b shifted by op.data); below the higher LSB: wires
            lsb_a = -minimal_kif(a)[2]
            lsb_b = -minimal_kif(b)[2] + op.data
            lsb = max(lsb_a, lsb_b)
            total += max(1, (k + i) - lsb) if op.opcode == 0 else max(1, (k + i) + f)
        elif op.opcode == 4:
            k, i, f = minimal_kif(op.qint)
            step = op.qint.step
            c = abs(op.data) * step
            lsb_c = int(math.floor(math.log2(c & -c if isinstance(c, int) else _lowbit(c)))) if c else 0
            total += max(1, (k + i) - max(lsb_c, -f))
    return total


def _lowbit(v: float) -> float:
    """The value of the lowest set bit of a dyadic rational ``v`` > 0."""
    m, e = math.frexp(v)
    mant = int(m * (1 << 53))
    return math.ldexp(mant & -mant, e - 53)


_REG_CACHE: dict = {}


def register_bits(comb, levels_per_stage: int) -> int:
    """Register bits of the graph pipelined with a register every ``levels_per_stage`` adder levels: da4ml's own
    pipelining (``to_pipeline``, the one ``--rtl``/``fpga-gen synth`` write), its ``reg_bits`` (the input register
    included, as in the RTL)."""
    if levels_per_stage <= 0 or not comb.ops or max(comb.latency) <= levels_per_stage:
        return 0
    key = (id(comb), levels_per_stage)
    hit = _REG_CACHE.get(key)
    if hit is None or hit[0] is not comb:
        from da4ml.trace import to_pipeline
        hit = (comb, int(to_pipeline(comb, levels_per_stage, verbose=False).reg_bits))
        _REG_CACHE[key] = hit
    return hit[1]


def da_layer_cost(comb) -> dict:
    """{LUT, levels, n_adders, out_bits} of one adder graph (no casts, no registers)."""
    bits = adder_bits(comb)
    n_adders = sum(1 for op in comb.ops if op.opcode in (0, 1, 4))
    levels = int(max(comb.latency)) if comb.shape[1] and comb.ops else 0
    out_bits = sum(_kif_bits(q) for q in comb.out_qint) if comb.shape[1] else 0
    return {"LUT": int(math.ceil(bits * LUT_PER_DA_BIT)), "bits": bits, "levels": levels, "n_adders": n_adders,
            "out_bits": out_bits, "da4ml_cost": float(comb.cost)}
