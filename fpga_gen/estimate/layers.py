"""One cost model per op, registered by name: ``@register('dense')``.

A model is ``f(node, ctx) -> Cost``.  ``ctx`` (:class:`Context`) carries the part family, the constants, the
clock, the io type and the node's resolved strategy / reuse factor and input type.  Adding an op means adding one
function here (and its constants in constants.py).

How the Vitis HLS kernels of hls4ml turn into hardware (the reasoning behind each model):

* io_parallel, Latency strategy: weights are ``static const`` arrays, so the tool constant-folds each product.
  A zero weight disappears (and so does its adder), a power-of-two weight is a shift (wiring), a narrow constant
  becomes a few shift-and-add adders in LUTs, and only wide constants get a DSP.  ``RF > 1`` limits the number of
  ``mul`` instances to hls4ml's ``multiplier_limit``; constant products strength-reduced to adders are not ``mul``
  instances, so II = ceil(DSP products / limit) (<= RF) — the pominiq RF 8 reports show II 5 and 6, not 8.
* io_parallel, Resource strategy: weights live in a ROM reshaped by ``block_factor`` = ceil(n_in*n_out/RF);
  nothing is constant-folded (zeros still cost), ``block_factor`` general multipliers run for RF cycles.
  The ROM is RF deep and ``block_factor * W`` bits wide: BRAM when deep enough, otherwise LUTRAM/registers.
* Softmax (stable): max tree, ``exp`` table read per element (table copies = ceil(n/2), dual-port), sum tree,
  one ``inv`` table read, n multiplies (18 x 18 bits: DSPs).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..ir.reuse import is_valid_reuse
from ..ir.types import FixedType
from .constants import Constants
from .parts import dsp_ports
from .weights import MAXW as MAX_DIGITS, weight_stats
from ..da.estimate import da_layer_cost, register_bits
from ..da.solve import solve_node
import numpy as np

__all__ = ["Cost", "Context", "register", "ESTIMATORS", "UnsupportedOp"]


class UnsupportedOp(KeyError):
    pass


@dataclass(slots=True)
class Cost:
    DSP: float = 0
    LUT: float = 0
    FF: float = 0
    BRAM_18K: float = 0
    URAM: float = 0
    latency_cycles: float = 0
    ii_cycles: float = 1
    notes: tuple = ()


@dataclass(slots=True)
class Context:
    family: str
    c: Constants                    # resolved for the family: per-family dicts replaced by their value
    clock_period: float
    t_eff: float                    # clock period minus uncertainty (ns)
    io_type: str
    strategy: str
    reuse_factor: int
    in_type: FixedType | None
    graph: object = None
    in_shape: tuple = ()            # the producer's output shape (io_stream: pixels x channels)
    mult_impl: str = "auto"         # dense/conv products: auto (the tool decides), dsp or lut (BIND_OP)


ESTIMATORS: dict = {}


def register(op: str):
    def deco(fn):
        ESTIMATORS[op] = fn
        return fn
    return deco


# ---------------------------------------------------------------------------------------------- helpers

def _cdiv(a, b) -> int:
    return -(-int(a) // int(b))


@lru_cache(maxsize=1024)
def closest_valid_reuse(n_in: int, n_out: int, rf: int) -> int:
    """The reuse factor hls4ml actually uses for a Resource-strategy layer: the closest valid one (ties go to the
    smaller), with validity as in hls4ml's ``_validate_reuse_factor`` / fpga_gen.ir.reuse.is_valid_reuse."""
    best = 1
    for r in range(1, n_in * n_out + 1):
        if is_valid_reuse(n_in, n_out, r):
            if abs(r - rf) < abs(best - rf):
                best = r
            if r > rf:
                break
    return best


def dsp_per_product(family: str, wa: int, wb: int, min_slice: int = 10) -> int:
    """DSP slices for one wa x wb product (two's complement) on this family's DSP ports.

    Wider operands are split into port-sized slices; a leftover slice narrower than ``min_slice`` bits is built
    in LUTs, as the tool does (jmduarte: a 32 x 16-bit BatchNorm product takes 1 DSP48E1, not 2)."""
    pa, pb = dsp_ports(family)
    hi, lo = (wa, wb) if wa >= wb else (wb, wa)

    def slices(w, port):
        n, rest = divmod(w, port)
        return max(1, n + (1 if rest >= min_slice else 0))
    return slices(hi, pa) * slices(lo, pb)


def rom_cost(c: Constants, depth: int, width: int, copies: int = 1, min_depth: int | None = None) -> tuple:
    """(BRAM_18K, LUT, FF) for a ROM of depth x width bits (``copies`` for more parallel reads)."""
    bits = depth * width
    if bits <= 0:
        return 0, 0, 0
    if depth <= 1:
        return 0, 0, width * copies               # a register
    md = c.bram_min_depth if min_depth is None else min_depth
    if bits >= c.bram_min_bits and depth >= md:
        # an 18K block holds 512 x 36, 1024 x 18, 2048 x 9, ... pick the aspect that fits the depth
        per_w, per_d = c.bram_width, c.bram_depth_at_width
        while per_d < depth and per_w > 1:
            per_w //= 2
            per_d *= 2
        n = _cdiv(width, per_w) * _cdiv(depth, per_d)
        return n * copies, 0, 0
    return 0, _cdiv(bits, c.lutram_bits_per_lut) * copies, 0


def adder_tree_time(c: Constants, family: str, n_terms: int, width: int) -> float:
    if n_terms <= 1:
        return 0.0
    return math.ceil(math.log2(n_terms)) * c.t_add * max(width, 8) / 16.0


def cycles(t_ns: float, t_eff: float) -> int:
    """Registers needed to fit a combinational path of t_ns into the (uncertainty-reduced) period."""
    return max(0, math.ceil(t_ns / t_eff - 1e-9) - 1) if t_ns > 0 else 0


def _cast_lut(c: Constants, src: FixedType, dst: FixedType) -> float:
    """LUTs of one cast: free (wiring) when it only truncates and wraps.  Rounding adds an incrementer of the
    result width (``lut_cast_rnd_per_bit``); saturation compares the source bits the result drops above its
    integer part and muxes the result (``lut_cast_sat_per_bit`` per source bit) [fit: the jet tutorial's 6-bit
    rounding/saturating ReLU casts of 16-bit inputs cost 56-77 LUT per element]."""
    rnd = dst.rounding not in ("TRN", "TRN_ZERO")
    sat = dst.saturation != "WRAP"
    if not rnd and not sat:
        return 0.0
    lut = dst.width * c.lut_per_output_bit
    if rnd:
        lut += dst.width * c.lut_cast_rnd_per_bit
    if sat:
        lut += max(src.width, dst.width) * c.lut_cast_sat_per_bit
    return lut


def _pixels(shape: tuple) -> int:
    """io_stream: how many stream words (pixels) a tensor of this shape takes: all but the last dimension."""
    return math.prod(shape[:-1]) if len(shape) > 1 else 1


def _in_width(ctx: Context, default: int = 16) -> int:
    return ctx.in_type.width if ctx.in_type is not None else default


# ---------------------------------------------------------------------------------------------- ops

@register("input")
def _input(node, ctx: Context) -> Cost:
    return Cost(ii_cycles=1)


def _dense_core(ctx: Context, kernel, bias, wtype: FixedType, btype: FixedType, acc: FixedType, res: FixedType,
                n_in: int, n_out: int, instances: int = 1) -> Cost:
    """The multiply-accumulate of one dense/conv kernel (n_in x n_out), ``instances`` copies run in parallel."""
    c, fam = ctx.c, ctx.family
    wx = _in_width(ctx)
    wacc = acc.width
    rf = max(1, int(ctx.reuse_factor))
    n_total = n_in * n_out
    notes = []
    if ctx.strategy == "resource" and rf > 1:
        rf_valid = closest_valid_reuse(n_in, n_out, rf)
        if rf_valid != rf:
            notes.append(f"reuse factor {rf} -> {rf_valid} (closest valid for {n_in}x{n_out}, as hls4ml)")
            rf = rf_valid
        bf = _cdiv(n_total, rf)
        ww = wtype.width
        mv = c.dsp_min_var_bits
        # a DSP when either operand is wide: jmduarte bits_6 (7 x 7 bits) stays in LUTs; kendermag and Rank
        # (16 x 6), berkbilgin (24 x 8) and kendermag's last dense (6 x 16) use DSPs [fit; 1-bit operands: guess].
        # mult_impl dsp / lut (a BIND_OP pragma on every product) overrides the tool's choice: one product per
        # dsp_per_product slices whatever the widths, or a LUT multiplier [guess: no calibration design binds
        # its products; BIND_OP also keeps the accumulating add out of the DSP (UG1399), so the accumulator
        # logic is the same]
        if ctx.mult_impl == "dsp" or (ctx.mult_impl != "lut" and max(wx, ww) >= mv and min(wx, ww) > 1):
            dsp = bf * dsp_per_product(fam, wx, ww)
            lut_mult = 0.0
        else:
            dsp = 0
            lut_mult = bf * wx * ww * c.lut_var_mult_per_bit
            notes.append(f"{wx}x{ww}-bit products in LUTs")
        if ctx.mult_impl != "auto":
            notes.append(f"products bound to {'DSPs' if ctx.mult_impl == 'dsp' else 'LUTs'} (mult_impl) [guess]")
        bram, lut_rom, ff_rom = rom_cost(c, rf, bf * ww)
        if bram:
            bram += c.bram_resource_extra
            notes.append(f"weights in BRAM ({rf} x {bf * ww} bits)")
        elif lut_rom:
            notes.append("weights in LUTRAM")
        lut_acc = n_out * wacc * c.lut_resource_acc_mux + bf * wacc * c.lut_per_adder_bit
        lut = (lut_mult + lut_rom + lut_acc + n_out * res.width * c.lut_per_output_bit) * instances
        ff = (n_out * wacc + bf * (wx + ww + wacc) + ff_rom + dsp * c.ff_per_dsp) * instances
        latency = rf + c.resource_pipeline_depth
        return Cost(DSP=dsp * instances, LUT=lut + c.lut_layer_overhead, FF=ff + c.ff_layer_overhead,
                    BRAM_18K=bram * instances, latency_cycles=latency, ii_cycles=rf, notes=tuple(notes))

    # Latency strategy (constant weights, folded by the tool)
    rf = min(rf, n_total)
    st = weight_stats(kernel, wtype, bias, btype)
    n_nonzero = st.n_nonzero
    if ctx.mult_impl == "dsp":
        # [guess] BIND_OP impl=dsp: every constant product with two or more CSD digits is a DSP (zeros and
        # powers of two are folded before binding: there is no mul left to bind)
        n_dsp_prod, n_lut_prod, lut_adders = st.split(2)
        notes.append("products bound to DSPs (mult_impl) [guess]")
    elif ctx.mult_impl == "lut":
        # [guess] BIND_OP impl=fabric: every constant product as shift-and-add adders, as for narrow data
        n_dsp_prod, n_lut_prod, lut_adders = st.split(MAX_DIGITS)
        notes.append("products bound to LUTs (mult_impl) [guess]")
    elif wx >= c.dsp_min_data_bits:
        n_dsp_prod, n_lut_prod, lut_adders = st.split(c.dsp_min_csd_digits)
    elif wtype.width >= c.dsp_min_data_bits:
        # narrow data times a wide constant still gets DSPs, for constants with more digits
        n_dsp_prod, n_lut_prod, lut_adders = st.split(c.dsp_min_csd_digits_narrow_data)
    else:
        n_dsp_prod, n_lut_prod, lut_adders = st.split(MAX_DIGITS)
    per = dsp_per_product(fam, wx, max(st.max_const_bits, 1))
    limit = max(1, _cdiv(n_total, rf) - st.n_zero // rf)      # hls4ml's multiplier_limit
    if n_dsp_prod > limit:
        dsp_units = limit
        # the scheduler shares `limit` multipliers over the DSP products, plus the cycles it takes to fill and
        # drain the shared units [fit: Vivado HLS 2019.2, jet tutorial RF 64 Latency: ceil(DSP products /
        # limit) + 2, not capped by RF]
        ii = _cdiv(n_dsp_prod, limit) + c.folded_ii_extra if c.folded_ii_extra else min(rf, _cdiv(n_dsp_prod, limit))
    else:
        dsp_units = n_dsp_prod
        ii = 1
    dsp = dsp_units * per
    n_adds = max(0, n_nonzero + st.n_nonzero_bias - n_out)
    lut_add = n_nonzero * wacc * c.lut_per_product_bit
    lut_mult = lut_adders * wx * c.lut_per_adder_bit
    lut = lut_mult + lut_add + n_out * _cast_lut(c, acc, res)
    if st.n_zero:
        notes.append(f"{st.n_zero}/{st.n_total} zero weights removed")
    if st.n_pow2:
        notes.append(f"{st.n_pow2} power-of-two weights as shifts")
    if n_lut_prod:
        notes.append(f"{n_lut_prod} two-digit constant products as one adder in LUTs")
    # timing: one product (DSP or shift-add), then the adder tree of the widest output
    t_mult = c.t_dsp_mult if n_dsp_prod else (c.t_add if n_lut_prod else 0.0)
    t = t_mult + adder_tree_time(c, fam, st.max_col_nnz + (1 if st.n_nonzero_bias else 0), wacc)
    stages = cycles(t, ctx.t_eff)
    if ii > 1:
        latency = stages + ii - 1
        ff = c.ff_folded_per_product * n_nonzero * wacc / 16.0
    else:
        latency = stages
        ff = stages * n_nonzero * c.ff_per_product_stage * wacc / 16.0
    ff += dsp * c.ff_per_dsp if stages else 0
    del n_adds
    return Cost(DSP=dsp * instances, LUT=lut * instances + c.lut_layer_overhead,
                FF=ff * instances + (c.ff_layer_overhead if stages else 0), latency_cycles=latency, ii_cycles=ii,
                notes=tuple(notes))


@register("dense")
def _dense(node, ctx: Context) -> Cost:
    t = node.types
    n_in = int(node.attrs.get("n_in") or node.weights["kernel"].shape[0])
    n_out = int(node.attrs.get("n_out") or node.weights["kernel"].shape[1])
    res = t["result"]
    if ctx.strategy == "distributed_arithmetic":
        cost = _dense_da(node, ctx, t.get("accum", res), res, n_out)
    else:
        cost = _dense_core(ctx, node.weights["kernel"], node.weights.get("bias"), t.get("weight", res),
                           t.get("bias", res), t.get("accum", res), res, n_in, n_out)
    if ctx.io_type == "stream":
        # read the input pixels from the stream, compute, write: + pixels cycles [fit: pominiq dense_array 6
        # cycles for 4 pixels at RF 1]
        pix = _pixels(ctx.in_shape)
        cost.latency_cycles += pix + 1
        cost.ii_cycles = max(cost.ii_cycles, pix)
    return cost


def _dense_da(node, ctx: Context, acc: FixedType, res: FixedType, n_out: int) -> Cost:
    """Distributed arithmetic (da4ml's adder graph, fpga_gen/da/estimate.py): LUTs from the graph's adder bits,
    no DSP; the graph's adder levels at t_add per 16-bit level give the pipeline registers; II 1."""
    if ctx.in_type is None:
        raise UnsupportedOp("a distributed_arithmetic layer needs its input type")
    c = ctx.c
    comb = solve_node(node, ctx.in_type)
    d = da_layer_cost(comb)
    t_level = c.t_add * max(acc.width, 8) / 16.0
    stages = cycles(d["levels"] * t_level, ctx.t_eff)
    lut = d["LUT"] + n_out * _cast_lut(c, acc, res) + c.lut_layer_overhead
    # the registers of da4ml's pipelining at the levels one clock holds [guess: what Vitis HLS registers]
    per_stage = max(1, int(ctx.t_eff // t_level))
    ff = register_bits(comb, per_stage) + (c.ff_layer_overhead if stages else 0) if stages else 0
    return Cost(DSP=0, LUT=lut, FF=ff, latency_cycles=stages, ii_cycles=1,
                notes=(f"distributed arithmetic: {d['n_adders']} adders, {d['bits']} adder bits, "
                       f"{d['levels']} levels (da4ml cost {d['da4ml_cost']:g})",))


@register("activation")
def _activation(node, ctx: Context) -> Cost:
    c = ctx.c
    n = node.size
    res = node.types["result"]
    act = node.attrs.get("activation", "linear")
    quant = _cast_lut(c, ctx.in_type or res, res)          # rounding / saturation of the result, per element
    dsp = bram = 0
    latency = 0
    wx = _in_width(ctx)
    t = node.types
    if act == "relu":
        lut = n * (res.width * c.lut_relu_per_bit + quant)
    elif act == "linear":
        same = ctx.in_type is not None and ctx.in_type.plain() == res.plain()
        lut = 0 if same else n * (res.width * c.lut_cast_per_bit + quant)
    elif act in ("relu_max", "thresholded_relu"):
        # [guess] two compares and a mux per element: twice relu's logic
        lut = n * (2 * res.width * c.lut_relu_per_bit + quant)
    elif act in ("leaky_relu", "prelu", "elu", "hard_sigmoid", "hard_tanh"):
        # [guess] one constant (or per-element) product per element, a compare and a mux; elu adds its table
        other = t.get("param", t.get("slope", FixedType(16, 0)))
        dsp = n * dsp_per_product(ctx.family, wx, other.width)
        lut = n * (res.width * c.lut_relu_per_bit + quant)
        latency = 1
    elif act in ("sigmoid", "tanh", "softplus", "softsign"):
        lut = n * (wx * c.lut_cast_per_bit + quant)             # [guess] index arithmetic and clamp
        latency = 1
    else:
        raise UnsupportedOp(f"activation {act!r} has no cost model yet")
    if "table" in t:
        # [guess] the table is a ROM read by every element in the same cycle: one copy per port pair
        copies = _cdiv(n, c.bram_ports)
        b, lt, _ = rom_cost(c, int(node.attrs.get("table_size", 1024)), t["table"].width, copies, min_depth=1)
        bram, lut = bram + b, lut + lt
        latency += 1
    if ctx.io_type == "stream":
        # one pixel (n_chan elements) per cycle through a pipelined loop [fit: pominiq/cestmerneil/Rank stream
        # relu: latency = pixels + 2; 60-134 LUT per channel, scaling with the input width]
        pix = _pixels(node.shape)
        ch = node.shape[-1] if node.shape else 1
        per_bit = c.lut_relu_stream_per_bit if act == "relu" else c.lut_cast_per_bit
        return Cost(LUT=ch * (_in_width(ctx) * per_bit + quant) + c.lut_layer_overhead, FF=ch + c.ff_layer_overhead,
                    latency_cycles=pix + c.stream_loop_overhead, ii_cycles=pix + c.stream_loop_overhead)
    return Cost(LUT=lut, DSP=dsp, BRAM_18K=bram, latency_cycles=latency, ii_cycles=1)


@register("softmax")
def _softmax(node, ctx: Context) -> Cost:
    c, fam = ctx.c, ctx.family
    t = node.types
    n = node.shape[-1] if node.shape else 1
    impl = node.attrs.get("implementation", "stable")
    if impl == "argmax":
        # [guess] a chain of n - 1 compares and muxes over the input width
        wx = _in_width(ctx)
        return Cost(LUT=(n - 1) * wx * 2 * c.lut_relu_per_bit + n, latency_cycles=max(1, n // 4), ii_cycles=1)
    if impl == "legacy":
        t = dict(t, exp_table=t.get("table", FixedType(18, 8)), inv_table=t.get("table", FixedType(18, 8)),
                 accum=t.get("table", FixedType(18, 8)))
    exp_t = t.get("exp_table", FixedType(18, 8))
    inv_t = t.get("inv_table", FixedType(18, 8))
    acc = t.get("accum", FixedType(18 + max(0, math.ceil(math.log2(max(n, 1)))), 8))
    exp_size = int(node.attrs.get("exp_table_size", 1024))
    inv_size = int(node.attrs.get("inv_table_size", 1024))
    wx = _in_width(ctx)
    copies = _cdiv(n, c.bram_ports)
    b1, l1, f1 = rom_cost(c, exp_size, exp_t.width, copies, min_depth=1)
    b2, l2, f2 = rom_cost(c, inv_size, inv_t.width, 1, min_depth=1)
    per = dsp_per_product(fam, exp_t.width, t.get("inv_inp", inv_t).width)
    ii = 1
    if ctx.io_type == "stream":
        # nnet_activation_stream.h: multiplier_limit = ceil(n / RF), II = n / limit
        limit = _cdiv(n, max(1, int(ctx.reuse_factor)))
        ii = max(1, n // limit)
        dsp = limit * per
    else:
        dsp = n * per
    lut = (c.softmax_lut_factor * ((n - 1) * wx * 2 + n * wx + (n - 1) * acc.width + n * t["result"].width)
           + l1 + l2 + 2 * c.lut_layer_overhead)
    t_path = (2 * c.t_bram + c.t_dsp_mult
              + 2 * adder_tree_time(c, fam, n, max(wx, acc.width)))
    latency = c.softmax_base_stages + cycles(t_path, ctx.t_eff)
    ff = c.softmax_ff_factor * latency * n * max(wx, exp_t.width) + f1 + f2
    return Cost(DSP=dsp, LUT=lut, FF=ff, BRAM_18K=b1 + b2, latency_cycles=latency + ii - 1, ii_cycles=ii,
                notes=(f"exp table x{copies}, inv table x1",))


@register("batchnorm")
def _batchnorm(node, ctx: Context) -> Cost:
    """y = x * scale + bias per element (per channel, repeated): one constant product and one add per element;
    nnet::normalize limits the multipliers to ceil(n / RF) (RF: the model's reuse factor, fpga_gen.passes.reuse)
    and pipelines with II = n / that limit; io_stream over an image runs one pixel per iteration (its own
    per-pixel model here, not _per_word's share: the per-channel constants decide the DSPs)."""
    c, fam = ctx.c, ctx.family
    t = node.types
    res = t["result"]
    scale = np.asarray(node.weights["scale"], dtype=np.float64)
    n_total = node.size
    rf = max(1, int(ctx.reuse_factor))
    # multiplier_limit = ceil(n_in / RF) over the whole tensor; the loop's II = n_in / multiplier_limit (integer
    # division: n_in, not RF, once RF > n_in) [rishthakkar bn_dense_*: 42 and 64 elements at RF 128/256 take
    # 45/42 and 67/64 cycles]
    limit = _cdiv(n_total, rf)
    ii_k = max(1, n_total // limit)
    # io_stream over a multi-dim tensor: one pixel (n_chan elements, per-channel constants) per loop iteration
    pixels = _pixels(node.shape) if ctx.io_type == "stream" and len(node.shape) > 1 else 1
    reps = max(1, n_total // pixels // max(scale.size, 1))
    k = np.tile(scale.reshape(-1), reps).reshape(-1, 1)
    st = weight_stats(k, t.get("scale", res), None, None)
    wx = _in_width(ctx)
    n = k.shape[0]
    if wx >= c.dsp_min_data_bits:
        n_dsp, n_lut, adders = st.split(c.dsp_min_csd_digits)
    else:
        n_dsp, n_lut, adders = st.split(MAX_DIGITS)
    dsp_units = min(n_dsp, limit)
    # the allocation limit can stretch the requested II (n = 5 at RF 2: II 5 // 3 = 1, but 5 DSP products on 3
    # multipliers take 2 cycles)
    ii_k = max(ii_k, _cdiv(n_dsp, limit))
    dsp = dsp_units * dsp_per_product(fam, wx, max(st.max_const_bits, 1))
    lut = adders * wx * c.lut_per_adder_bit + n * res.width * (c.lut_per_adder_bit + c.lut_per_output_bit)
    t_path = (c.t_dsp_mult if n_dsp else 0.0) + c.t_add
    stages = cycles(t_path, ctx.t_eff)
    ff = (n * res.width * stages * 0.5) if ii_k == 1 else c.ff_folded_io * 2 * n * wx / ii_k
    # [guess] pixels x II: the kernel asks II = 16 per pixel on pominiq a44b786 (RF 16), Vivado HLS 2020.1
    # reports 6-7 cycles per pixel (225 pixels: 1352; 9 pixels: 65)
    ii = pixels * ii_k
    latency = stages + ii - 1
    return Cost(DSP=dsp, LUT=lut + c.lut_layer_overhead, FF=ff + c.ff_layer_overhead,
                latency_cycles=latency, ii_cycles=ii)


def _per_word(cost: Cost, node, ctx: Context, ii_word: int = 1) -> Cost:
    """io_stream form of an element-wise layer: the stream kernel runs one word (a pixel's channels) per
    iteration, II ``ii_word``, so one word's share of the element logic, once per word [guess: the
    activation's stream loop model]."""
    c = ctx.c
    ch = node.shape[-1] if len(node.shape) > 1 else node.size
    share = ch / max(node.size, 1)
    words = _pixels(node.shape)
    return Cost(DSP=cost.DSP * share, LUT=cost.LUT * share + c.lut_layer_overhead, FF=cost.FF * share + c.ff_layer_overhead,
                BRAM_18K=cost.BRAM_18K, latency_cycles=words * ii_word + cost.latency_cycles + c.stream_loop_overhead,
                ii_cycles=words * ii_word + c.stream_loop_overhead, notes=cost.notes)


def _conv(node, ctx: Context, spatial: int) -> Cost:
    """conv2d (ops.py attrs: in_height, in_width, n_chan, n_filt, kernel_size, strides, ...).

    io_parallel (nnet::conv_2d_latency_cl): the output pixels are computed in ``n_partitions`` = pixels /
    ``parallelization_factor`` pipelined iterations (II = RF each), each one a dense layer over the
    (kh, kw, n_chan) patch instantiated ``parallelization_factor`` times; the multipliers are shared by all
    iterations, so DSPs are one patch-kernel's worth and the layer's II is n_partitions * RF.  A mux selects each
    iteration's patch from the fully partitioned input [guess: ~W/2 LUT per bit per doubling of the choices].
    io_stream (line buffer): one patch per input pixel, the kernel II cycles per pixel; (kh - 1) rows of input
    in shift registers (BRAM when big) [guess]; padded layers read the zero-padded image (+ its padding stage
    and FIFO) [guess]."""
    a = node.attrs
    n_chan, n_filt = int(a["n_chan"]), int(a["n_filt"])
    kern = tuple(int(k) for k in (a.get("kernel_size") or (1,) * spatial))
    ksz = math.prod(kern)
    in_h = int(a.get("in_height", 1)) if spatial == 2 else 1
    in_w = int(a.get("in_width", 1))
    n_pix_in = in_h * in_w
    n_pix_out = max(1, node.size // max(n_filt, 1))
    t = node.types
    res = t["result"]
    k2 = np.asarray(node.weights["kernel"]).reshape(ksz * n_chan, n_filt)
    c = ctx.c
    if ctx.strategy == "distributed_arithmetic" and ctx.io_type == "parallel":
        # one adder graph per output pixel, all in parallel (templates/hls/layers/conv2d_da.j2)
        one = _dense_da(node, ctx, t.get("accum", res), res, n_filt)
        return Cost(DSP=0, LUT=(one.LUT - c.lut_layer_overhead) * n_pix_out + c.lut_layer_overhead,
                    FF=one.FF * n_pix_out, latency_cycles=one.latency_cycles, ii_cycles=1,
                    notes=(f"{n_pix_out} output pixels x " + one.notes[0],))
    wx = _in_width(ctx)
    if ctx.io_type == "parallel":
        pf = max(1, int(a.get("parallelization_factor", 1)))
        n_part = _cdiv(n_pix_out, pf)
        core = _dense_core(ctx, k2, node.weights.get("bias"), t.get("weight", res), t.get("bias", res),
                           t.get("accum", res), res, ksz * n_chan, n_filt, instances=pf)
        sel = math.ceil(math.log2(n_part)) if n_part > 1 else 0
        core.LUT += ksz * n_chan * wx * pf * sel * 0.5
        core.FF += ksz * n_chan * wx * pf if n_part > 1 else 0
        core.latency_cycles = n_part * core.ii_cycles + core.latency_cycles
        core.ii_cycles = n_part * core.ii_cycles
        return core
    core = _dense_core(ctx, k2, node.weights.get("bias"), t.get("weight", res), t.get("bias", res),
                       t.get("accum", res), res, ksz * n_chan, n_filt)
    pads = tuple(int(p) for p in (a.get("pads") or (0, 0, 0, 0)))
    if any(pads):
        # 'same' in io_stream: a zero-padding process in front (hls4ml's nnet::zeropad2d_cl, as the writer
        # inserts it) feeds the line buffer the padded image through a FIFO of all its pixels [guess: one
        # pipelined loop of padded pixels, a 2:1 mux per bit, the FIFO as io_stream FIFOs are costed]
        in_h, in_w = in_h + pads[0] + pads[1], in_w + pads[2] + pads[3]
        n_pix_in = in_h * in_w
        f_bram, f_lut, f_ff = rom_cost(c, n_pix_in, n_chan * wx, 1, min_depth=1) if n_pix_in > c.fifo_srl_depth \
            else (0, _cdiv(n_pix_in * n_chan * wx, 32), 0)
        core.BRAM_18K += f_bram
        core.LUT += f_lut + n_chan * wx * c.lut_cast_per_bit + c.lut_layer_overhead
        core.FF += n_chan * wx * (1 + c.fifo_ff_per_bit) + c.ff_layer_overhead
        core.notes = tuple(core.notes) + (f"zero padding to {in_h}x{in_w} in front (io_stream 'same') [guess]",)
    # a folded kernel (II > 1) costs one more cycle per pixel for the window hand-over [fit: pominiq RF 16
    # stream conv: 13 cycles per pixel for a 12-cycle kernel, 10194 cycles for 784 pixels]
    ii_pix = core.ii_cycles + (1 if core.ii_cycles > 1 else 0)
    lb_bits = (kern[0] - 1) * in_w * n_chan * wx if spatial == 2 else (kern[0] - 1) * n_chan * wx
    # shift_line_buffer: (kh - 1) rows in SRLs (LUT) and the kh x kw window in registers
    core.LUT += lb_bits / 32.0 + ksz * n_chan * wx * c.conv_window_lut_per_bit
    core.FF += ksz * n_chan * wx + lb_bits / 32.0
    core.latency_cycles = n_pix_in * ii_pix + core.latency_cycles + c.stream_loop_overhead
    core.ii_cycles = n_pix_in * ii_pix + c.stream_loop_overhead
    return core


@register("conv2d")
def _conv2d(node, ctx: Context) -> Cost:
    return _conv(node, ctx, 2)


@register("depthwise_conv2d")
def _depthwise_conv2d(node, ctx: Context) -> Cost:
    """depthwise_conv2d (depth multiplier 1): the conv2d model over the block-diagonal (kh, kw, C, C) kernel that
    computes the same sums, its zero weights free as in a conv with pruned weights [guess: the adder trees of
    nnet::depthwise_product are C trees of kh * kw terms, which the zero-skipping dense model approximates].
    io_parallel has the latency strategy only; the reuse factor limits the multipliers."""

    k = np.asarray(node.weights["kernel"], dtype=np.float64)
    kh, kw, n_chan = k.shape
    full = np.zeros((kh, kw, n_chan, n_chan))
    full[:, :, np.arange(n_chan), np.arange(n_chan)] = k
    shadow = dataclasses.replace(node, weights={**node.weights, "kernel": full})
    cost = _conv(shadow, dataclasses.replace(ctx, strategy="latency"), 2)
    if ctx.reuse_factor > 1:
        # the multiplier limit does not bind: every product the CSD rule sends to a DSP gets its own [fit:
        # pominiq a44b786, RF 16, Vivado HLS 2020.1: 222 and 469 DSPs, exactly the rule's count without the
        # limit (the limit would give 18 and 36); its first, 3-channel layer: 6 vs 26]; latency keeps the RF model
        cost.DSP = _conv(shadow, dataclasses.replace(ctx, strategy="latency", reuse_factor=1), 2).DSP
    return cost


@register("pooling")
def _pooling(node, ctx: Context) -> Cost:
    """Max / average pooling (ops.py attrs: mode, pool_size, in_height, in_width, n_chan): (pool - 1) compares or
    adds per output element; average adds a constant division [guess]."""
    c = ctx.c
    a = node.attrs
    pool = math.prod(tuple(int(p) for p in (a.get("pool_size") or (2, 2))))
    wx = _in_width(ctx)
    acc = node.types.get("accum", node.types["result"])
    n_out = node.size
    n_chan = int(a.get("n_chan") or 1)
    per = (pool - 1) * max(wx, acc.width) * c.lut_pool_compare_per_bit * (2 if a.get("mode", "max") == "max" else 1)
    if a.get("mode") == "average":
        per += acc.width * 2                     # constant division as multiply-shift
    t_path = math.ceil(math.log2(pool)) * c.t_add if pool > 1 else 0.0
    if ctx.io_type == "parallel":
        return Cost(LUT=n_out * per, latency_cycles=cycles(t_path, ctx.t_eff), ii_cycles=1)
    n_pix_in = int(a.get("in_height", 1)) * int(a.get("in_width", 1))
    if n_pix_in > 1 and tuple(int(p) for p in (a.get("pool_size") or ())) == (int(a.get("in_height", 1)),
                                                                              int(a.get("in_width", 1))):
        # global pooling (nnet::global_pooling*_cl, stream): one running max/sum per channel, one compare (or add)
        # per channel per pixel, no line buffer [seanlipps 5d10485: 894 LUT, 528 FF, 131 cycles for 128 x 16]
        per1 = max(wx, acc.width) * c.lut_pool_compare_per_bit * (2 if a.get("mode", "max") == "max" else 1)
        if a.get("mode") == "average":
            per1 += acc.width * 2
        return Cost(LUT=n_chan * per1 * c.pool_stream_lut_factor + c.lut_layer_overhead,
                    FF=n_chan * max(wx, acc.width) * c.pool_stream_ff_factor + c.ff_layer_overhead,
                    latency_cycles=n_pix_in + c.stream_loop_overhead, ii_cycles=n_pix_in + c.stream_loop_overhead)
    # line buffer + window registers + compare tree per channel [fit: pominiq stream pooling 3998 LUT /
    # 1716 FF for 4 channels, 4x4 window, 16 bits]
    return Cost(LUT=n_chan * per * c.pool_stream_lut_factor + c.lut_layer_overhead,
                FF=n_chan * pool * wx * c.pool_stream_ff_factor + c.ff_layer_overhead,
                latency_cycles=n_pix_in + c.stream_loop_overhead, ii_cycles=n_pix_in + c.stream_loop_overhead)


@register("zeropad")
@register("cropping")
@register("upsampling")
@register("transpose")
def _moved(node, ctx: Context) -> Cost:
    """zeropad, cropping, upsampling, transpose (ops.py): io_parallel arrays are fully partitioned, so every
    output is a wire from an input (or a constant 0) and the layer is free; only a cast to a result type that
    rounds or saturates costs its logic per element (the same rule as an activation's cast) [reasoned]."""
    res = node.types["result"]
    cast = 0 if ctx.in_type is None or ctx.in_type.plain() == res.plain() else _cast_lut(ctx.c, ctx.in_type, res)
    if ctx.io_type == "stream":
        # io_stream: a pipelined loop moving one word per cycle (the larger of the input and the output words;
        # transpose reads the whole tensor into registers first) [guess: the activation's stream loop model]
        c = ctx.c
        ch = node.shape[-1] if node.shape else 1
        words = max(_pixels(node.shape), _pixels(ctx.in_shape or node.shape))
        ff = ch + c.ff_layer_overhead + (node.size * res.width if node.op == "transpose" else 0)
        return Cost(LUT=ch * cast + c.lut_layer_overhead, FF=ff, latency_cycles=words + c.stream_loop_overhead,
                    ii_cycles=words + c.stream_loop_overhead)
    return Cost(LUT=node.size * cast) if cast else Cost()


@register("float_activation")
def _float_activation(node, ctx: Context) -> Cost:
    # runs on the CPU/GPU fallback, after the FPGA part: nothing on the FPGA
    return Cost(notes=("CPU/GPU fallback",))


def _input_types(node, ctx: Context) -> list:
    graph = ctx.graph
    return [graph[i].types.get("result") if graph is not None and i in graph else ctx.in_type for i in node.inputs]


@register("merge")
def _merge(node, ctx: Context) -> Cost:
    """Element-wise merge of two arrays (nnet_merge.h), io_parallel, every element in parallel [guess, not yet
    fitted to a synthesis report]: add/subtract/average one adder of the aligned width per element (average's
    * 0.5 is wiring), multiply one variable x variable product (a DSP when either operand reaches
    ``dsp_min_var_bits``, as the Resource-strategy products, else LUTs), maximum/minimum a comparator and a multiplexer; plus the cast to the
    result where it rounds or saturates."""
    c, fam = ctx.c, ctx.family
    n = node.size
    res = node.types["result"]
    ta, tb = (t or res for t in _input_types(node, ctx))
    mode = node.attrs.get("mode")
    frac = max(ta.frac, tb.frac)
    aligned = max(ta.integer + (tb.signed and not ta.signed), tb.integer + (ta.signed and not tb.signed)) + frac
    dsp, t_path = 0, c.t_add * max(aligned, 8) / 16.0
    if mode in ("add", "subtract", "average"):
        lut = n * (aligned + 1) * c.lut_per_adder_bit
    elif mode == "multiply":
        if max(ta.width, tb.width) >= c.dsp_min_var_bits and min(ta.width, tb.width) > 1:
            dsp, lut = n * dsp_per_product(fam, ta.width, tb.width), 0.0
            t_path = c.t_dsp_mult
        else:
            lut = n * ta.width * tb.width * c.lut_var_mult_per_bit
            t_path = c.t_add * max(ta.width + tb.width, 8) / 8.0
    elif mode in ("maximum", "minimum"):
        lut = n * (aligned * c.lut_pool_compare_per_bit + res.width)
    else:
        raise UnsupportedOp(f"merge mode {mode!r} has no cost model yet")
    lut += n * _cast_lut(c, res, res)
    if ctx.io_type == "stream":
        # nnet_merge_stream.h: one word (a pixel's channels) of both inputs per cycle, so one word's worth of
        # the element logic, run once per word [guess: the activation's stream loop model]
        ch = node.shape[-1] if node.shape else 1
        words = _pixels(node.shape)
        return Cost(DSP=dsp * ch / n, LUT=lut * ch / n + c.lut_layer_overhead, FF=ch + c.ff_layer_overhead,
                    latency_cycles=words + c.stream_loop_overhead + cycles(t_path, ctx.t_eff),
                    ii_cycles=words + c.stream_loop_overhead)
    return Cost(DSP=dsp, LUT=lut, latency_cycles=cycles(t_path, ctx.t_eff), ii_cycles=1)


@register("concatenate")
def _concatenate(node, ctx: Context) -> Cost:
    """Concatenation (nnet::concatenate{1,2,3}d), io_parallel: wiring; a value whose type differs from the result
    costs a cast (only rounding or saturation costs LUTs, and the exact result type needs neither) [guess]."""
    res = node.types["result"]
    if ctx.io_type == "stream":
        # nnet_merge_stream.h copies words through: one output word per cycle [guess: the stream loop model]
        words = _pixels(node.shape)
        return Cost(LUT=ctx.c.lut_layer_overhead, FF=ctx.c.ff_layer_overhead,
                    latency_cycles=words + ctx.c.stream_loop_overhead, ii_cycles=words + ctx.c.stream_loop_overhead)
    return Cost(LUT=node.size * _cast_lut(ctx.c, res, res), ii_cycles=1)
@register("quant_act")
def _quant_act(node, ctx: Context) -> Cost:
    """[guess] QKeras activation quantizers, per element: 'round' is an adder (the offset) and the rounding/
    saturating cast, like a linear cast plus an adder; 'leaky' a relu, a shifted rounding cast and a
    compare, muxed; 'step' one or two comparators of the input's width and a mux of constants; 'table' a
    comparator per threshold and a mux over the levels."""
    c = ctx.c
    n = node.size
    res = node.types["result"]
    wx = _in_width(ctx)
    fn = node.attrs.get("function")
    quant = _cast_lut(c, ctx.in_type or res, res)
    if fn == "round":
        per = res.width * c.lut_cast_per_bit + quant + (wx * c.lut_per_adder_bit if node.attrs.get("offset") else 0)
    elif fn == "leaky":
        per = res.width * (c.lut_relu_per_bit + c.lut_cast_per_bit) + 2 * quant + wx * c.lut_per_adder_bit
    elif fn == "step":
        per = (2 if node.attrs.get("mid") is not None else 1) * wx * c.lut_per_adder_bit + res.width
    elif fn == "table":
        # one comparator of the input's width per threshold and a mux over the levels
        n_thr = len(node.weights.get("thresholds", ()))
        per = n_thr * wx * c.lut_per_adder_bit + (n_thr + 1) * res.width * c.lut_cast_per_bit
    elif fn == "multithreshold":
        # [guess] as 'table': a comparator per threshold (one channel's row) and an adder of the counts
        n_thr = len(node.weights["thresholds"][0])
        per = n_thr * wx * c.lut_per_adder_bit + res.width * c.lut_per_adder_bit
    else:
        raise UnsupportedOp(f"quant_act {fn!r} has no cost model yet")
    cost = Cost(LUT=n * per, latency_cycles=0, ii_cycles=1)
    return _per_word(cost, node, ctx) if ctx.io_type == "stream" else cost


@register("fixed_quant")
def _fixed_quant(node, ctx: Context) -> Cost:
    """[guess] HGQ2's per-element quantizers: each element is a cast to its own k+i+f bits (constant shifts are
    wiring), costed as a linear cast of that width: its bits plus the rounding/saturation logic of a cast from
    the input type; elements of zero width are constants (free)."""
    c = ctx.c
    res = node.types["result"]
    bits = np.asarray(node.weights["k"]) + np.asarray(node.weights["i"]) + np.asarray(node.weights["f"])
    live = bits > 0
    quant = _cast_lut(c, ctx.in_type or res, res)
    lut = float(np.sum(np.where(live, bits, 0))) * c.lut_cast_per_bit + int(np.sum(live)) * quant
    return Cost(LUT=lut, latency_cycles=0, ii_cycles=1)


@register("hgq_softmax")
def _hgq_softmax(node, ctx: Context) -> Cost:
    """[guess] HGQ2's softmax: a max tree and a subtractor per element, an exp table read per element (a ROM of
    2**w entries, as LUTs: entries * width / 64), an adder tree, one 1/x table read and a multiplier per element
    (LUT-built: width product)."""
    c = ctx.c
    n = node.size
    t = node.types
    wx = _in_width(ctx)
    rom = lambda inp, out: (1 << inp.width) * out.width / 64.0
    lut = (n * 2 * wx * c.lut_per_adder_bit + n * rom(t["exp_in"], t["exp_out"])
           + n * t["sum"].width * c.lut_per_adder_bit + rom(t["inv_in"], t["inv_out"])
           + n * t["exp_out"].width * t["inv_out"].width)
    return Cost(LUT=lut, latency_cycles=4 + max(1, n).bit_length(), ii_cycles=1)


@register("lut")
def _lut(node, ctx: Context) -> Cost:
    """[guess] a lookup table per element: a ROM of 2**w entries of the result's width, as LUTs (entries * width
    / 64 per element, the table replicated for a fully parallel layer)."""
    res = node.types["result"]
    entries = 1 << _in_width(ctx)
    return Cost(LUT=node.size * entries * res.width / 64.0, latency_cycles=1, ii_cycles=1)


@register("apply_scale")
def _apply_scale(node, ctx: Context) -> Cost:
    """nnet::normalize with power-of-two scales: the batchnorm model (constant products, here shifts)."""
    return _batchnorm(node, ctx)
