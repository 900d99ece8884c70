"""The estimator on small hand-checkable layers, its monotonic behaviour, and its output shapes.

Every expected number below is derived in the comments from the model in fpga_gen/estimate/layers.py and the
constants in fpga_gen/estimate/constants.py (read from DEFAULT, so a refit of a [fit] constant does not break
the arithmetic checks, only a change of the model does).
"""

import json
import math

import numpy as np
import pytest

from fpga_gen.config import ProjectConfig
from fpga_gen.estimate import DEFAULT, RESOURCES, estimate, part_family, weight_stats, with_overrides
from fpga_gen.estimate.layers import dsp_per_product
from fpga_gen.estimate.weights import csd_digits, csd_digits_array, quantize_raw
from fpga_gen.ir import FixedType, Graph, Node

T16 = FixedType(16, 6)          # frac 10: raw = w * 1024
C = DEFAULT
R = DEFAULT.resolved("7series", "vitis")      # the constants as the xc7z020 / Vitis HLS estimates use them


def dense_graph(raw_kernel, in_type=T16, wtype=T16, acc=T16, res=T16, bias=None, strategy="latency", rf=1):
    k = np.asarray(raw_kernel, dtype=np.float64) / (1 << wtype.frac)
    n_in, n_out = k.shape
    g = Graph("t")
    g.add(Node("x", "input", [], (n_in,), types={"result": in_type}))
    g.inputs = ["x"]
    g.add(Node("fc", "dense", ["x"], (n_out,), attrs={"n_in": n_in, "n_out": n_out, "strategy": strategy,
                                                       "reuse_factor": rf},
               weights={"kernel": k, "bias": np.zeros(n_out) if bias is None else np.asarray(bias, float)},
               types={"result": res, "weight": wtype, "bias": wtype, "accum": acc}))
    g.outputs = ["fc"]
    return g


def layer(est, name="fc"):
    return next(L for L in est.layers if L["name"] == name)


# 21 = 0b10101, 37 = 0b100101, 41 = 0b101001, 73 = 0b1001001: three non-zero CSD digits each -> a DSP each.
# Every row has four different constants, so no product is shared.
K4 = [[21, 37, 41, 73]] * 4


def cfg(**kw):
    kw.setdefault("part", "xc7z020clg400-1")
    kw.setdefault("clock_period", 10.0)
    return ProjectConfig(**kw)


# ---------------------------------------------------------------------------------------------- 4x4 dense

def test_dense_4x4_rf1_by_hand():
    e = estimate(dense_graph(K4), cfg())
    L = layer(e)
    # 16 non-zero constants with 3 CSD digits, 16-bit data: 16 DSP products, 1 DSP each (16 x 7 bits fits 25x18)
    assert L["DSP"] == 16
    # LUT: every non-zero product has an adder in the sum tree: 16 products * 16 accum bits * lut_per_product_bit;
    # no shift-and-add products, a TRN/WRAP cast is free; plus the per-layer control overhead.
    assert L["LUT"] == math.ceil(16 * 16 * R.lut_per_product_bit + C.lut_layer_overhead)
    assert L["ii_cycles"] == 1
    assert L["BRAM_18K"] == 0 and L["URAM"] == 0
    # latency: DSP multiply + a 2-level adder tree (4 terms) in 10 ns * (1 - 27 %) = 7.3 ns per cycle
    t = R.t_dsp_mult + 2 * R.t_add
    assert L["latency_cycles"] == max(0, math.ceil(t / 7.3) - 1)


def test_dense_4x4_rf2_rf4_by_hand():
    # hls4ml: multiplier_limit = ceil(16 / RF) - n_zeros // RF -> 8 at RF 2, 4 at RF 4;
    # the 16 DSP products then need II = 16 / limit = RF cycles.
    e2 = layer(estimate(dense_graph(K4, rf=2), cfg()))
    e4 = layer(estimate(dense_graph(K4, rf=4), cfg()))
    assert (e2["DSP"], e2["ii_cycles"]) == (8, 2)
    assert (e4["DSP"], e4["ii_cycles"]) == (4, 4)
    # folded: latency = pipeline stages + II - 1
    assert e4["latency_cycles"] >= e2["latency_cycles"] + 2


def test_zero_weights_are_removed():
    k = np.array(K4)
    k[0, :] = 0          # input 0 unused: 4 products and their adders disappear
    k[1, 2] = 0
    L = layer(estimate(dense_graph(k), cfg()))
    assert L["DSP"] == 11
    assert L["LUT"] == math.ceil(11 * 16 * R.lut_per_product_bit + C.lut_layer_overhead)
    # zeros also lower hls4ml's multiplier limit: ceil(16/4) - 5//4 = 3
    L4 = layer(estimate(dense_graph(k, rf=4), cfg()))
    assert L4["DSP"] == 3 and L4["ii_cycles"] == 4


def test_power_of_two_and_two_digit_weights_use_no_dsp():
    # 1024 = 1.0, -512 = -0.5, 256, 2048: shifts.  3 = 0b11 = 4 - 1 and 5 = 0b101 = 4 + 1: one adder each.
    k = [[1024, -512, 3, 5]] * 4
    L = layer(estimate(dense_graph(k), cfg()))
    assert L["DSP"] == 0
    # LUT = sum-tree adders + one 16-bit shift-and-add adder for each of the 8 two-digit products
    assert L["LUT"] == math.ceil(16 * 16 * R.lut_per_product_bit + 8 * 16 * C.lut_per_adder_bit
                                 + C.lut_layer_overhead)
    assert any("shifts" in n for n in L["notes"])


def test_identical_constants_on_one_input_share_a_multiplier():
    k = [[21, 21, -21, 37]] * 4          # per row: 21 and -21 are different signed constants, 21 appears twice
    L = layer(estimate(dense_graph(k), cfg()))
    assert L["DSP"] == 4 * 3


def test_narrow_data_goes_to_luts():
    narrow = FixedType(6, 2)
    L = layer(estimate(dense_graph(K4, in_type=narrow), cfg()))
    assert L["DSP"] == 0
    assert L["LUT"] > 16 * 16          # shift-and-add logic for every product


def test_dsp_threshold_differs_by_family():
    # a 36 x 18 product: two DSP48E1 (25 x 18 ports; the 11-bit leftover slice is wide enough for a DSP) on
    # 7-series; a 26 x 18 product fits one DSP48E2 (27 x 18) on UltraScale+
    assert dsp_per_product("7series", 36, 18) == 2
    assert dsp_per_product("7series", 32, 16) == 1          # the 7-bit leftover slice goes to LUTs
    assert dsp_per_product("ultrascale+", 26, 18) == 1
    assert part_family("xc7z020clg400-1") == "7series"
    assert part_family("xczu3eg-sbva484-1-e") == "ultrascale+"
    assert part_family("XCU250-FIGD2104-2L-E") == "ultrascale+"
    assert part_family("xcku15p-ffve1517-1-i") == "ultrascale+"
    assert part_family("xcku040-ffva1156-2-e") == "ultrascale"
    assert part_family("xcvc1902-vsva2197-2MP-e-S") == "versal"
    with pytest.raises(ValueError):
        part_family("ep4ce22f17c6")


# ---------------------------------------------------------------------------------------------- resource strategy

def test_resource_strategy_rf4_by_hand():
    # block_factor = ceil(16 / 4) = 4 general 16 x 16 multipliers (weights are no longer constants: zeros still cost)
    k = np.array(K4)
    k[0, :] = 0
    L = layer(estimate(dense_graph(k, strategy="resource", rf=4), cfg()))
    assert L["DSP"] == 4
    assert L["ii_cycles"] == 4
    assert L["latency_cycles"] == 4 + C.resource_pipeline_depth
    # the weight ROM is 4 deep x 64 bits: too shallow for BRAM -> LUTRAM (ceil(256 / 64) = 4 LUTs)
    assert L["BRAM_18K"] == 0


def test_resource_strategy_large_rf_puts_weights_in_bram():
    rng = np.random.default_rng(1)
    k = rng.integers(-500, 500, (64, 64))
    L = layer(estimate(dense_graph(k, strategy="resource", rf=128), cfg()))
    # block factor 32 -> ROM 128 deep x 512 bits: ceil(512/36) = 15 blocks of 512 x 36 (+ the fitted extra)
    assert L["BRAM_18K"] == 15 + C.bram_resource_extra
    assert L["DSP"] == 32
    assert any("BRAM" in n for n in L["notes"])


# ---------------------------------------------------------------------------------------------- monotonic

@pytest.mark.parametrize("strategy", ["latency", "resource"])
def test_more_reuse_never_costs_more_dsp_or_fewer_cycles(strategy):
    rng = np.random.default_rng(0)
    k = rng.integers(-900, 900, (16, 16))
    k[rng.random((16, 16)) < 0.2] = 0
    prev = None
    for rf in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        L = layer(estimate(dense_graph(k, strategy=strategy, rf=rf), cfg()))
        if prev is not None:
            assert L["DSP"] <= prev["DSP"], (rf, L, prev)
            assert L["latency_cycles"] >= prev["latency_cycles"], (rf, L, prev)
            assert L["ii_cycles"] >= prev["ii_cycles"], (rf, L, prev)
        prev = L


def test_wider_clock_never_adds_cycles():
    rng = np.random.default_rng(2)
    k = rng.integers(-900, 900, (32, 8))
    lat = [layer(estimate(dense_graph(k), cfg(clock_period=p)))["latency_cycles"] for p in (2.5, 5, 10, 20)]
    assert lat == sorted(lat, reverse=True)


def test_constant_overrides_change_the_estimate():
    g = dense_graph(K4)
    a = estimate(g, cfg())
    b = estimate(g, cfg(), constants=with_overrides(DEFAULT, dsp_min_csd_digits=4))
    assert a.total["DSP"] == 16 and b.total["DSP"] == 0


# ---------------------------------------------------------------------------------------------- weights

def test_csd_digits_and_quantization():
    assert [csd_digits(v) for v in (0, 1, 2, 3, 5, 7, 21, 255)] == [0, 1, 1, 2, 2, 2, 3, 2]
    v = np.arange(-3000, 3000)
    assert np.array_equal(csd_digits_array(v), np.array([csd_digits(x) for x in v]))
    t = FixedType(8, 3)
    # frac 5: 0.03 * 32 = 0.96 -> 0 (TRN floors), -0.96 -> -1, 100 * 32 = 3200 wraps: (3200 + 128) % 256 - 128 = -128
    assert quantize_raw(np.array([0.03, -0.03, 100.0]), t).tolist() == [0, -1, -128]
    assert quantize_raw(np.array([100.0]), FixedType(8, 3, True, "TRN", "SAT")).tolist() == [127]
    assert quantize_raw(np.array([0.0625 * 1.5]), FixedType(8, 3, True, "RND")).tolist() == [3]


def test_weight_stats_are_cached_per_array_and_type():
    k = np.array(K4, dtype=float) / 1024
    s1 = weight_stats(k, T16)
    assert weight_stats(k, T16) is s1
    assert weight_stats(k, FixedType(8, 3)) is not s1
    assert s1.n_nonzero == 16 and s1.split(3)[0] == 16


# ---------------------------------------------------------------------------------------------- softmax, totals, output

def mlp_graph():
    rng = np.random.default_rng(0)
    g = dense_graph(rng.integers(-900, 900, (16, 8)))
    g.add(Node("relu", "activation", ["fc"], (8,), attrs={"activation": "relu"}, types={"result": T16}))
    tab = FixedType(18, 8, True, "RND", "SAT")
    g.add(Node("sm", "softmax", ["relu"], (8,), attrs={"exp_table_size": 1024, "inv_table_size": 1024},
               types={"result": T16, "exp_table": tab, "inv_table": tab, "accum": FixedType(21, 11),
                      "inv_inp": tab, "inp_norm": FixedType(15, 5, False)}))
    g.outputs = ["sm"]
    return g


def test_softmax_tables_and_totals():
    e = estimate(mlp_graph(), cfg())
    sm = layer(e, "sm")
    # 1024 x 18-bit tables are one BRAM_18K each; 8 reads of the exp table per inference on dual-port copies:
    # ceil(8 / 2) = 4 exp copies + 1 inv table
    assert sm["BRAM_18K"] == 5
    assert sm["DSP"] == 8            # one 18 x 18 multiply per output
    relu = layer(e, "relu")
    assert relu["LUT"] == math.ceil(8 * 16 * C.lut_relu_per_bit)
    T = e.total
    for r in RESOURCES:
        assert T[r] == sum(L[r] for L in e.layers)
    assert T["ii_cycles"] == max(L["ii_cycles"] for L in e.layers)
    assert T["latency_cycles"] >= sum(L["latency_cycles"] for L in e.layers)
    assert T["clock_period_ns"] == 10.0


def test_to_json_shape():
    e = estimate(mlp_graph(), cfg())
    d = e.to_json()
    json.dumps(d)                                   # JSON-ready
    assert set(d["total"]) == {"DSP", "LUT", "FF", "BRAM_18K", "URAM", "latency_cycles", "ii_cycles",
                               "clock_period_ns"}
    assert [L["name"] for L in d["layers"]] == ["fc", "relu", "sm", "(top level)"]   # + the top function's FFs
    for L in d["layers"]:
        assert {"name", "op", "DSP", "LUT", "FF", "BRAM_18K", "URAM", "latency_cycles", "ii_cycles"} <= set(L)
        assert all(isinstance(L[k], int) for k in ("DSP", "LUT", "FF", "BRAM_18K", "URAM", "latency_cycles",
                                                   "ii_cycles"))
    assert d["part"] == "xc7z020clg400-1" and d["family"] == "7series"
    assert d["available"]["DSP"] == 220 and "utilization_pct" in d
    assert json.loads(e.to_json_text())["total"] == d["total"]


def test_to_markdown_with_utilisation():
    e = estimate(mlp_graph(), cfg())
    md = e.to_markdown(available={"DSP": 220, "LUT": 53200, "FF": 106400, "BRAM_18K": 280, "URAM": 0})
    assert "| fc | dense |" in md and "**total**" in md and "utilisation" in md
    pct = 100.0 * e.total["DSP"] / 220
    assert f"{round(pct, 1):g} %" in md


def test_unknown_op_names_the_node():
    g = mlp_graph()
    with pytest.raises(ValueError, match="weird.*lstm"):           # the graph holds only ops of ir/ops.py
        g.add(Node("weird", "lstm", ["sm"], (8,), types={"result": T16}))
    g["sm"].op = "lstm"                                             # changed after the fact: the estimator names it
    with pytest.raises(ValueError, match="sm.*lstm"):
        estimate(g, cfg())


def test_board_gives_part_and_resources():
    pytest.importorskip("fpga_gen.boards")
    e = estimate(mlp_graph(), cfg(), board="pynq-z2")
    assert e.family == "7series" and e.available["DSP"] == 220


def test_conv2d_and_pooling_have_models():
    rng = np.random.default_rng(3)
    t = T16
    g = Graph("cnn")
    g.add(Node("x", "input", [], (8, 8, 2), types={"result": t}))
    g.inputs = ["x"]
    k = rng.integers(-900, 900, (3, 3, 2, 4)) / 1024
    g.add(Node("conv", "conv2d", ["x"], (6, 6, 4),
               attrs={"in_height": 8, "in_width": 8, "n_chan": 2, "n_filt": 4, "kernel_size": (3, 3),
                      "strides": (1, 1), "padding": "valid", "pads": (0, 0, 0, 0), "reuse_factor": 1},
               weights={"kernel": k, "bias": np.zeros(4)}, types={"result": t, "weight": t, "bias": t, "accum": t}))
    g.add(Node("pool", "pooling", ["conv"], (3, 3, 4),
               attrs={"in_height": 6, "in_width": 6, "n_chan": 4, "mode": "max", "pool_size": (2, 2),
                      "strides": (2, 2), "padding": "valid", "pads": (0, 0, 0, 0)}, types={"result": t, "accum": t}))
    g.outputs = ["pool"]
    e = estimate(g, cfg())
    conv = layer(e, "conv")
    # one (3*3*2 -> 4) patch kernel shared by the 36 output pixels, one pixel per cycle at RF 1
    assert 0 < conv["DSP"] <= 72
    assert conv["ii_cycles"] == 36
    pool = layer(e, "pool")
    assert pool["DSP"] == 0 and pool["LUT"] > 0


def test_every_op_has_an_estimator():
    from fpga_gen.estimate import ESTIMATORS
    from fpga_gen.ir import OPS
    assert set(OPS) <= set(ESTIMATORS), f"ops without a cost model: {sorted(set(OPS) - set(ESTIMATORS))}"


def test_resource_reuse_factor_snaps_to_the_closest_valid_one_like_hls4ml():
    from fpga_gen.estimate.layers import closest_valid_reuse
    # 4x4: 3 is not a valid reuse factor (16 % 3 != 0): the tie 2 / 4 goes to 2
    assert closest_valid_reuse(4, 4, 3) == 2
    assert closest_valid_reuse(4, 4, 1000) == 16          # never above n_in * n_out
    L = layer(estimate(dense_graph(K4, strategy="resource", rf=3), cfg()))
    assert L["ii_cycles"] == 2 and any("closest valid" in n for n in L["notes"])


# ---------------------------------------------------------------------------------------------- calibration rules
# (docs/estimator.md "Calibration": rules read off the csynth reports that became readable with Conv1D,
# QConv2DBatchnorm, separable convs and global pooling)

def test_narrow_data_times_a_wide_constant_uses_a_dsp_for_many_digits():
    narrow = FixedType(6, 2)
    # 341 = 0b101010101: five CSD digits (>= dsp_min_csd_digits_narrow_data) -> a DSP per column; K4's
    # three-digit constants stay in LUTs with 6-bit data
    assert C.dsp_min_csd_digits_narrow_data == 5
    k = [[341, 341 + 1024, 341 + 4096, 341 + 16384 // 2]]
    assert layer(estimate(dense_graph(k, in_type=narrow), cfg()))["DSP"] == 4
    assert layer(estimate(dense_graph(K4, in_type=narrow), cfg()))["DSP"] == 0
    # both operands narrow: LUTs whatever the digits
    w6 = FixedType(6, 0)
    assert layer(estimate(dense_graph([[21, -21, 11, -11]], in_type=narrow, wtype=w6), cfg()))["DSP"] == 0


def test_resource_strategy_one_wide_operand_is_enough_for_a_dsp():
    # 16-bit data x 6-bit weights (kendermag, Rank) and 6 x 16 use DSPs; 7 x 7 bits (jmduarte bits_6) does not
    k = np.array(K4) % 31
    for data, w, dsp in ((T16, FixedType(6, 1), 4), (FixedType(6, 2), T16, 4), (FixedType(7, 2), FixedType(7, 1), 0)):
        L = layer(estimate(dense_graph(k, in_type=data, wtype=w, strategy="resource", rf=4), cfg()))
        assert L["DSP"] == dsp, (data, w)


def bn_graph(shape, rf):
    g = Graph("bn")
    g.add(Node("x", "input", [], shape, types={"result": T16}))
    g.inputs = ["x"]
    n_chan = shape[-1]
    scale = np.full(n_chan, 21 / 16)            # 21 = 0b10101: three CSD digits, a DSP product per element
    g.add(Node("bn", "batchnorm", ["x"], shape, attrs={"n_filt": int(n_chan), "reuse_factor": rf},
               weights={"scale": scale, "bias": np.zeros(n_chan)}, types={"result": T16, "scale": T16, "bias": T16}))
    g.outputs = ["bn"]
    return g


def test_batchnorm_ii_is_n_over_the_multiplier_limit():
    # nnet::normalize: multiplier_limit = ceil(n / RF), II = n / multiplier_limit: 42 elements at RF 128 -> II 42
    # (rishthakkar bn_dense_0: 45 cycles), not 128; at RF 6: limit 7, II 42 // 7 = 6
    assert layer(estimate(bn_graph((42,), 128), cfg()), "bn")["ii_cycles"] == 42
    assert layer(estimate(bn_graph((42,), 6), cfg()), "bn")["ii_cycles"] == 6


def test_stream_batchnorm_on_pixels_costs_one_pixel_of_multipliers():
    # io_stream over (6, 6, 8): one pixel of 8 per-channel products per iteration, 36 iterations
    L = layer(estimate(bn_graph((6, 6, 8), 1), cfg(io_type="stream")), "bn")
    assert L["DSP"] <= 8
    assert L["ii_cycles"] == 36
    P = layer(estimate(bn_graph((6, 6, 8), 1), cfg()), "bn")        # io_parallel: every element at once
    assert P["DSP"] > 8


def test_stream_global_pooling_does_not_grow_with_the_input():
    def gp(n_pix):
        g = Graph("gp")
        g.add(Node("x", "input", [], (n_pix, 16), types={"result": T16}))
        g.inputs = ["x"]
        g.add(Node("gp", "pooling", ["x"], (16,), attrs={"in_height": 1, "in_width": n_pix, "n_chan": 16,
                   "mode": "max", "pool_size": (1, n_pix), "strides": (1, n_pix), "padding": "valid",
                   "pads": (0, 0, 0, 0)}, types={"result": T16, "accum": T16}))
        g.outputs = ["gp"]
        return layer(estimate(g, cfg(io_type="stream")), "gp")
    small, big = gp(8), gp(128)
    assert small["LUT"] == big["LUT"] < 2000          # seanlipps 5d10485: 894 LUT for 128 x 16
    assert big["latency_cycles"] == 128 + C.stream_loop_overhead


def test_batchnorm_allocation_limit_stretches_the_ii():
    # 5 elements at RF 2: multiplier_limit 3, the kernel asks II 5 // 3 = 1, but 5 DSP products on 3 multipliers
    # need 2 cycles; 42 at RF 4: limit 11, II 42 // 11 = 3 -> ceil(42 / 11) = 4
    L = layer(estimate(bn_graph((5,), 2), cfg()), "bn")
    assert L["DSP"] == 3 and L["ii_cycles"] == 2
    assert layer(estimate(bn_graph((42,), 4), cfg()), "bn")["ii_cycles"] == 4
