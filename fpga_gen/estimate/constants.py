"""Every number the estimator uses, in one place, with where it came from.

Sources, quoted as [tag] below:

[ug479]   Xilinx UG479, 7 Series DSP48E1 Slice: a 25 x 18 two's-complement multiplier, 48-bit post-adder.
[ug579]   Xilinx UG579, UltraScale DSP48E2 Slice: a 27 x 18 multiplier (also UltraScale+ and Alveo U50/U250).
[am004]   Xilinx AM004, Versal DSP58: 27 x 24 multiplier.
[ug473]   Xilinx UG473 / UG573: a BRAM_18K is 18 Kib, widest port 36 bits at depth 512 (18 x 1024, 9 x 2048, ...);
          two ports; URAM (UltraScale+) is 4K x 72 bits.
[ug474]   Xilinx UG474, 7 Series CLB: LUT6 (64 x 1 distributed ROM), CARRY4 chain (one LUT per adder bit).
[ds187]   Zynq-7000 / UltraScale+ data sheets DS187 / DS925: DSP, BRAM clock-to-out and fabric delays.
[ds190]   Zynq-7000 overview DS190 and the ``Available`` rows of the calibration csynth reports (device totals).
[hls4ml]  hls4ml 1.3 sources: ``multiplier_limit = DIV_ROUNDUP(n_in*n_out, RF) - n_zeros/RF``
          (backends/vivado/passes/core_templates.py); Resource strategy ``block_factor = DIV_ROUNDUP(n_in*n_out, RF)``
          and ``#pragma HLS ARRAY_RESHAPE variable=weights block factor=block_factor`` (nnet_dense_resource.h);
          softmax tables 1024 entries of ``ap_fixed<18,8,AP_RND,AP_SAT>`` (backends/fpga/fpga_backend.py);
          Vitis HLS default clock uncertainty 27 % (hls4ml writes ``ClockUncertainty: 27%``), Vivado HLS 12.5 %.
[ug1399]  Vitis HLS user guide UG1399: constant multiplications are strength-reduced (zero removed, powers of two
          become shifts), ``ALLOCATION operation instances=mul limit=N`` bounds the number of multipliers,
          arrays under ~1 Kib are implemented in registers/LUTRAM rather than BRAM.
[fit]     Fitted by ``benchmarks/calibrate_estimator.py`` on the csynth reports in /work/shared/calibration
          (per-layer reports of nrp-model_1 [Vitis 2022.2, xcu250], thifjj iris [Vitis 2025.1, xc7z020],
          pominiq dense models [Vivado HLS 2020.1, xc7z020], jmduarte [Vivado HLS 2019.1, xc7z020]).
          The value is the one the script's grid search picks (median error over the records); rerun it to refit.
[guess]   Engineering estimate, not yet checked against a report (conv/pool/stream paths); replace when a
          calibration project exercises it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from types import SimpleNamespace

__all__ = ["Constants", "DEFAULT", "FAMILY", "DSP_PORTS", "DEVICE_RESOURCES", "with_overrides"]

#: DSP multiplier port widths (A x B, signed, sign bit included) per part family [ug479][ug579][am004]
DSP_PORTS = {
    "7series": (25, 18),
    "ultrascale": (27, 18),
    "ultrascale+": (27, 18),
    "versal": (27, 24),
}

#: Part-string prefixes -> family; the first matching prefix wins (see parts.part_family)
FAMILY = (
    ("xc7", "7series"),
    ("xa7", "7series"),
    ("xq7", "7series"),
    ("xczu", "ultrascale+"),
    ("xazu", "ultrascale+"),
    ("xcu", "ultrascale+"),          # Alveo U50/U55C/U200/U250/U280 (Virtex UltraScale+ dies)
    ("xck26", "ultrascale+"),        # Kria K26
    ("xck24", "ultrascale+"),
    ("xcvc", "versal"), ("xcve", "versal"), ("xcvm", "versal"), ("xcvp", "versal"), ("xcvh", "versal"),
    ("xcau", "ultrascale+"),
    ("xcku", "ultrascale"),          # refined: a 'p' after the number means UltraScale+ (parts.part_family)
    ("xcvu", "ultrascale"),
)

#: Whole-device resources [ds190] and the ``Available`` rows of the calibration reports.
DEVICE_RESOURCES = {
    "xc7z007s": {"BRAM_18K": 100, "DSP": 66, "FF": 28800, "LUT": 14400, "URAM": 0},
    "xc7z010": {"BRAM_18K": 120, "DSP": 80, "FF": 35200, "LUT": 17600, "URAM": 0},
    "xc7z020": {"BRAM_18K": 280, "DSP": 220, "FF": 106400, "LUT": 53200, "URAM": 0},
    "xc7a200t": {"BRAM_18K": 730, "DSP": 740, "FF": 269200, "LUT": 134600, "URAM": 0},
    "xczu3eg": {"BRAM_18K": 432, "DSP": 360, "FF": 141120, "LUT": 70560, "URAM": 0},
    "xczu5ev": {"BRAM_18K": 288, "DSP": 1248, "FF": 234240, "LUT": 117120, "URAM": 64},
    "xcku15p": {"BRAM_18K": 1968, "DSP": 1968, "FF": 1045440, "LUT": 522720, "URAM": 128},
    "xcvu13p": {"BRAM_18K": 5376, "DSP": 12288, "FF": 3456000, "LUT": 1728000, "URAM": 1280},
    "xcu50": {"BRAM_18K": 2688, "DSP": 5952, "FF": 1743360, "LUT": 871680, "URAM": 640},
    "xcu250": {"BRAM_18K": 5376, "DSP": 12288, "FF": 3456000, "LUT": 1728000, "URAM": 1280},
}


@dataclass(frozen=True)
class Constants:
    """Tunable model constants.  Per-family values are dicts keyed by part family."""

    # ---- multiplier binding: DSP or LUT ------------------------------------------------------------------
    #: A product by a *constant* goes to a DSP when the constant's canonical-signed-digit form has at least this
    #: many non-zero digits (1 digit: a shift; 2 digits: one adder in LUTs), and identical constants on the same
    #: input share one product.  This reproduces the per-layer DSP counts of nrp-model_1 (Vitis 2022.2, xcu250:
    #: 719/1097/614/122 exactly), thifjj iris (Vitis 2025.1, xc7z020: 30/56/21 exactly) and pominiq RF 1
    #: (Vivado HLS 2020.1, xc7z020: 358 vs 354, 307 exactly) [ug1399][fit].
    dsp_min_csd_digits: dict = field(default_factory=lambda: {
        "7series": 3, "ultrascale": 3, "ultrascale+": 3, "versal": 3})
    #: A product of two *variables* (Resource strategy: weights come from a ROM) goes to a DSP when either
    #: operand is at least this wide [fit: jmduarte bits_6 (7x7-bit products: 0 DSP); kendermag and Rank
    #: (16 x 6: DSPs, per-layer counts exact), berkbilgin model_2/3 (24 x 8: 816/800 vs 813/800 DSPs)].
    dsp_min_var_bits: dict = field(default_factory=lambda: {
        "7series": 10, "ultrascale": 10, "ultrascale+": 10, "versal": 10})
    #: Data and constant type both narrower than this: constant products stay in LUTs whatever the constant
    #: [fit: rishthakkar dense_1, 6 x 6 bits, Latency strategy RF 1: 0 DSPs]
    dsp_min_data_bits: int = 10
    #: Data narrower than dsp_min_data_bits times a constant of a type at least that wide: a DSP when the constant
    #: has at least this many CSD digits [fit, one layer: rishthakkar output_dense, 6-bit data x 16-bit weights,
    #: RF 1: 168 DSPs for 640 products; 4 digits would give 371, 5 digits 101; narrow x narrow: 0 DSPs]
    dsp_min_csd_digits_narrow_data: int = 5

    # ---- LUT costs -----------------------------------------------------------------------------------------
    #: LUTs per bit of one adder/subtractor (one LUT6 + carry per bit) [ug474 CLB carry chain]
    lut_per_adder_bit: float = 1.0
    #: Latency strategy: LUTs per non-zero product per accumulator bit: the product's adder in the sum tree plus
    #: the alignment/sign extension the tool builds around it.  The reports give a steady 28-32 LUTs per
    #: non-zero product at 16-bit accum on every tool and part (nrp 28.8/29.6/28.3/28.4, pominiq 28.0/28.6,
    #: thifjj 32/30.6/32) [fit]
    #: Refitted on the hls4ml types (16-bit accumulators where hls4ml keeps them) over every calibration source,
    #: per tool: the jet tutorial reports give ~22 LUT per non-zero product at 16 bits on Vivado HLS 2019.2 [fit]
    lut_per_product_bit: dict = field(default_factory=lambda: {"vitis": 1.5, "vivado": 1.4})
    #: Variable x variable multiply in LUTs: this many LUTs per partial-product bit (a*b) [guess: ~a*b/2 LUT6]
    lut_var_mult_per_bit: float = 0.55
    #: Per output bit of a cast that rounds or saturates (a TRN/WRAP cast is wiring) [guess]
    lut_per_output_bit: float = 1.0
    #: Resource strategy: accumulator select/write-back logic (``acc[out_index] += ...`` with a moving index),
    #: LUTs per accumulator bit per output [fit: jmduarte bits_6, Vivado HLS 2019.1: 14647 LUT for 64 outputs x
    #: 32 bits, 57847 for 256 x 32 -> ~7]
    lut_resource_acc_mux: float = 7.0
    #: ReLU: a compare + mux per element, LUTs per result bit [fit: nrp relu 1792 LUT / 64 x 16 bits]
    lut_relu_per_bit: float = 1.75
    #: Rounding cast: LUTs per result bit of the incrementer; saturating cast: LUTs per source bit of the
    #: overflow compare and result mux [fit, see _cast_lut]
    lut_cast_rnd_per_bit: float = 2.0
    lut_cast_sat_per_bit: float = 2.5
    #: Linear activation / cast: LUTs per result bit (0 when the cast is only wiring) [guess]
    lut_cast_per_bit: float = 0.25
    #: Control logic per layer (FSM, handshake) [guess]
    lut_layer_overhead: int = 20
    ff_layer_overhead: int = 10

    # ---- FF costs ------------------------------------------------------------------------------------------
    #: Latency strategy, II = 1: FFs per non-zero product per pipeline stage at a 16-bit accumulator (scaled by
    #: accum width / 16: every report had 16-bit accumulators).  Vitis 2025.1 on xc7z020 registers
    #: the DSP operands and outputs (thifjj: 101/96/102 FF per product at 4-5 stages), Vitis 2022.2 on xcu250
    #: much less (nrp: 5-6 FF per product at 1 stage) [fit]
    ff_per_product_stage: dict = field(default_factory=lambda: {
        "7series": 12, "ultrascale": 2.0, "ultrascale+": 2.0, "vitis:7series": 12, "vivado:7series": 12})
    # (refit over every source, issue #21: 2 FF per product per stage on UltraScale(+), the jet tutorial's 1.7-2.4;
    #  12 on 7-series for both tools [fit])
    #: Latency strategy, II > 1 (multipliers shared over RF cycles): FF per non-zero product for the operand
    #: multiplexing and partial sums held across the II cycles [fit: pominiq RF 8/16 dense 8-14 FF per product,
    #: stream dense/conv at RF 16 15-35]
    ff_folded_per_product: float = 4.0
    ff_folded_io: float = 0.55              # BatchNorm with II > 1: FF per input bit
    #: FFs per DSP used outside the DSP (operand and result registers) [guess]
    ff_per_dsp: float = 0.0

    # ---- timing (ns) ---------------------------------------------------------------------------------------
    #: Clock uncertainty the tool subtracts from the period (fraction).  Vitis HLS default 27 %, Vivado HLS
    #: 12.5 % [hls4ml][ug1399]; the calibration reports' ``clock_uncertainty_ns`` agree.  fpga-gen writes Vitis
    #: HLS projects (``--tool vitis``, the default).
    clock_uncertainty: dict = field(default_factory=lambda: {"vitis": 0.27, "vivado": 0.125})
    #: Delay of one DSP multiply (combinational, no MREG) [ds187/ds925 switching characteristics, rounded; fit]
    t_dsp_mult: dict = field(default_factory=lambda: {
        "7series": 12.0, "ultrascale": 2.6, "ultrascale+": 2.4, "versal": 2.0, "vivado:7series": 6.0})
    # (7series: not the DS187 datasheet delay (~4 ns) but what Vitis HLS 2025.1 schedules on xc7z020 at 5 ns:
    #  a 4-input dense layer takes 4 cycles; the value makes the schedule come out right) [fit: thifjj]
    #: Delay of one LUT-based adder level of ~16 bits (LUT + carry chain + routing) [fit]
    t_add: dict = field(default_factory=lambda: {
        "7series": 1.5, "ultrascale": 0.75, "ultrascale+": 0.7, "versal": 0.6})
    #: Delay of a BRAM read (clock-to-out) [ds187]
    t_bram: dict = field(default_factory=lambda: {
        "7series": 2.5, "ultrascale": 1.8, "ultrascale+": 1.6, "versal": 1.5})

    # ---- memories ------------------------------------------------------------------------------------------
    bram_width: int = 36          # [ug473] widest port of an 18K block at depth 512
    bram_depth_at_width: int = 512
    bram_bits: int = 18432
    bram_ports: int = 2           # [ug473] true dual port: two reads per cycle per copy
    #: Arrays smaller than this many bits are built from LUTRAM/registers, not BRAM [ug1399]
    bram_min_bits: int = 1024
    #: Resource strategy ROMs shallower than this go to LUTRAM instead of BRAM [guess; jmduarte's 512-deep ROMs
    #: are BRAM, no report has a shallow one]
    bram_min_depth: int = 64
    #: Resource strategy dense: extra BRAM per layer (bias / output staging) [fit: jmduarte 2-3 BRAM per layer]
    bram_resource_extra: int = 1
    #: LUTRAM: LUTs per 64 bits of a distributed ROM (LUT6 = 64 x 1) [ug474]
    lutram_bits_per_lut: int = 64

    # ---- latency / II --------------------------------------------------------------------------------------
    #: Resource strategy: loop pipeline depth added to the RF iterations [fit: jmduarte 514..516 cycles at RF 512]
    resource_pipeline_depth: int = 3
    #: Softmax: pipeline stages besides the table reads (max tree, sum tree, multiply) at a 5 ns clock [fit]
    softmax_base_stages: int = 2
    #: Softmax LUT / FF scale on the comparator, subtractor, adder and multiplier widths [fit: 309-742 LUT,
    #: 54-736 FF for n = 3..5]
    softmax_lut_factor: float = 1.7
    softmax_ff_factor: float = 1.0
    #: Top level: cycles of I/O registering around the whole network [fit]
    top_overhead_cycles: int = 0
    #: io_stream dense/conv layers: LUT scale per strategy and FF scale of the kernel for the stream wrapper
    #: around it (1.0 = the kernel alone) [fit: LUT 1.3x Latency, 2.5x Resource; FF 1.3x]
    stream_kernel_lut_factor: dict = field(default_factory=lambda: {"latency": 1.3, "resource": 2.5})
    stream_kernel_ff_factor: float = 1.3
    #: Top level: registers outside every layer (I/O registers, the pipeline's control) [fit: the jet tutorial
    #: reports hold 2.4-3.4 k FF in the top function that no per-layer report contains]
    ff_top: dict = field(default_factory=lambda: {"vitis": 1500.0, "vivado": 3000.0})
    #: io_parallel: top-level FF per bit of every layer output but the last (the stage registers between the
    #: inlined layers; the jet tutorial's 2.4-3.4 k for 2,128 output bits) [fit]
    ff_top_per_bit: dict = field(default_factory=lambda: {"vitis": 1.0, "vivado": 0.0})
    #: Latency strategy, multipliers shared (DSP products > multiplier_limit): extra II cycles to fill and drain
    #: the shared units; 0 keeps the older rule II = min(RF, ceil(products / limit)) [fit]
    folded_ii_extra: dict = field(default_factory=lambda: {"vitis": 0, "vivado": 0})
    #: Top level: extra cycles per layer boundary (function call / dataflow handshake) [fit]
    stage_overhead_cycles: float = 0.5
    #: io_parallel dataflow (Resource strategy): channel registers between processes, FF per output bit
    #: [fit: jmduarte bits_6/f32, the only io_parallel dataflow reports: top FF 59-64 k vs 46 k in the layers]
    dataflow_channel_ff_per_bit: float = 0.3
    #: Dataflow (io_stream or Resource strategy): handshake cycles per process [fit]
    dataflow_stage_cycles: int = 2

    # ---- pooling / conv / io_stream ------------------------------------------------------------------------
    lut_pool_compare_per_bit: float = 1.0
    #: io_stream pooling: line buffer and window registers on top of the compare tree [fit: pominiq]
    pool_stream_lut_factor: float = 2.1
    pool_stream_ff_factor: float = 1.7
    #: io_stream: a pipelined per-pixel loop takes pixels + this many cycles [fit: relu/pooling 676 px -> 678]
    stream_loop_overhead: int = 2
    #: io_stream relu: LUTs per input bit of one pixel's channels [fit: pominiq 295 LUT for 4 x 16 bits, 479 for
    #: 8 x 16; Rank 535 for 4 x 32]
    lut_relu_stream_per_bit: float = 4.0
    #: io_stream conv window selection, LUTs per window bit [guess]
    conv_window_lut_per_bit: float = 0.5
    #: io_stream FIFOs this shallow are SRLs; deeper ones use BRAM (hls4ml sizes them to the pixel count) [guess]
    fifo_srl_depth: int = 64
    #: io_stream FIFO registers (output register, read/write pointers), FF per data bit [fit: pominiq MNIST
    #: stream FF -37 % / -26 % before this term]
    fifo_ff_per_bit: float = 2.0
    fifo_min_bram_bits: int = 1024

    def per_family(self, name: str, family: str, tool: str = "vitis"):
        """A constant for a part family and a tool family: dict keys ``'tool:family'``, then ``tool``, then
        ``family`` (then ultrascale+), so one number can depend on the tool, the part family or both."""
        v = getattr(self, name)
        if isinstance(v, dict) and not any(k.split(":")[-1] in _FAMILIES or k in ("vitis", "vivado") for k in v):
            return v                     # keyed by something else (e.g. strategy): the model picks
        if isinstance(v, dict):
            for k in (f"{tool}:{family}", tool, family):
                if k in v:
                    return v[k]
            return v.get("ultrascale+", next(iter(v.values())))
        return v

    def resolved(self, family: str, tool: str = "vitis") -> "SimpleNamespace":
        """Every constant with per-family/per-tool dicts replaced by this family's value (cached; the
        estimator's models read ``ctx.c.t_add`` etc. from this)."""
        key = (id(self), family, tool)
        hit = _RESOLVED.get(key)
        if hit is not None and hit[0] is self:
            return hit[1]
        ns = SimpleNamespace(**{f.name: self.per_family(f.name, family, tool) for f in fields(self)})
        _RESOLVED[key] = (self, ns)
        return ns


_RESOLVED: dict = {}
_FAMILIES = ("7series", "ultrascale", "ultrascale+", "versal")


DEFAULT = Constants()


def with_overrides(base: Constants = DEFAULT, **kw) -> Constants:
    """A copy with some constants changed (per-family dicts merge: ``t_add={'7series': 1.0}``)."""
    merged = {}
    for k, v in kw.items():
        cur = getattr(base, k)
        if isinstance(cur, dict) and isinstance(v, dict):
            merged[k] = {**cur, **v}
        elif isinstance(cur, dict):
            merged[k] = {f: v for f in cur}
        else:
            merged[k] = v
    return replace(base, **merged)
