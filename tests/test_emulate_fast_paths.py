"""The numpy emulator's fast paths give the bits of its general forms, the sign of every zero included.

Random conv2d -> activation -> pooling -> dense graphs (every rounding and overflow mode, -0.0 inputs and
biases, edge values) run twice: as they are, and with every fast path off (conv2d on gathered windows, no
tiled pooling, no float32 products or narrow values: float64 throughout, the emulator's plain form).  Every node's
raw output must be the same bytes.  benchmarks/compare_emulator_bits.py checks the same against a git
revision on the fuzz models.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fpga_gen.emulate.interpreter as interpreter
import fpga_gen.emulate.kernels_conv as kernels_conv
from fpga_gen.emulate import Emulator
from fpga_gen.ir.fixed import NumpyOps, is_narrow
from fpga_gen.ir import Graph, Node
from fpga_gen.ir.types import ROUNDING_MODES, SATURATION_MODES, FixedType


@st.composite
def fixed_types(draw, min_width=1, max_width=24, signed=None):
    width = draw(st.integers(min_width, max_width))
    return FixedType(width, draw(st.integers(-2, width + 2)), draw(st.booleans()) if signed is None else signed,
                     draw(st.sampled_from(ROUNDING_MODES)), draw(st.sampled_from(SATURATION_MODES)))


def _grid_values(rng, t: FixedType, shape, neg_zero: bool):
    raw = rng.integers(t.raw_min, t.raw_max + 1, size=shape).astype(np.float64)
    if neg_zero:
        raw[rng.random(shape) < 0.2] = -0.0
    return raw * 2.0 ** -t.frac


def _out(n, k, s, pad):
    return (n - k) // s + 1 if pad == "valid" else -(-n // s)


def _pads(n, k, s, pad):
    if pad == "valid":
        return 0, 0
    total = max((_out(n, k, s, pad) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


@st.composite
def graphs(draw):
    """(graph builder, input batch): conv2d, an optional activation, an optional pooling, a dense."""
    seed = draw(st.integers(0, 2 ** 31 - 1))
    h, w, c = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 3))
    xt = draw(fixed_types(2, 16, signed=True))
    kh, kw = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pad = draw(st.sampled_from(["valid", "same"]))
    f = draw(st.integers(1, 4))
    wt, bt = draw(fixed_types(2, 8, signed=True)), draw(fixed_types(2, 8, signed=True))
    at = draw(st.one_of(fixed_types(8, 30), st.just(None)))    # None: an exact WRAP accumulator
    conv_rt = draw(st.one_of(fixed_types(4, 30), st.just(None)))
    act = draw(st.sampled_from(["relu", "linear", None]))
    act_rt = draw(fixed_types(2, 24))
    pool = draw(st.sampled_from(["max", "average", None]))
    tiles = draw(st.booleans())                                    # stride == pool size, no padding
    neg_zero = draw(st.booleans())
    dense_rt = draw(fixed_types(4, 30))
    dense_at = draw(st.one_of(fixed_types(8, 30), st.just(None)))

    pfrac = xt.frac + wt.frac
    acc = at or FixedType(min(xt.width + wt.width + 6, 50), min(xt.width + wt.width + 6, 50) - pfrac)

    def build():
        rng = np.random.default_rng(seed)
        g = Graph("g")
        g.add(Node("x", "input", [], (h, w, c), types={"result": xt}))
        pt, pb = _pads(h, kh, sh, pad)
        pl, pr = _pads(w, kw, sw, pad)
        oh, ow = _out(h, kh, sh, pad), _out(w, kw, sw, pad)
        # h == 1: a Conv1D, whose nodes have no height in their shape
        shape = (lambda hh, ww, cc: (ww, cc)) if h == 1 else (lambda hh, ww, cc: (hh, ww, cc))
        g.add(Node("conv", "conv2d", ["x"], shape(oh, ow, f),
                   attrs={"in_height": h, "in_width": w, "n_chan": c, "n_filt": f, "kernel_size": (kh, kw),
                          "strides": (sh, sw), "padding": pad, "pads": (pt, pb, pl, pr),
                          "strategy": "latency", "reuse_factor": 1},
                   weights={"kernel": _grid_values(rng, wt, (kh, kw, c, f), False),
                            "bias": _grid_values(rng, bt, (f,), neg_zero)},
                   types={"weight": wt, "bias": bt, "accum": acc, "result": conv_rt or acc}))
        last, (lh, lw, lc) = "conv", (oh, ow, f)
        if act:
            g.add(Node("act", "activation", [last], shape(lh, lw, lc), attrs={"activation": act},
                       types={"result": act_rt}))
            last = "act"
        if pool:
            ph, pw = draw_pool
            ps = (ph, pw) if tiles else pool_strides
            g.add(Node("pool", "pooling", [last], shape(lh // ps[0] if tiles else _out(lh, ph, ps[0], "valid"),
                                                         lw // ps[1] if tiles else _out(lw, pw, ps[1], "valid"), lc),
                       attrs={"mode": pool, "in_height": lh, "in_width": lw, "n_chan": lc, "pool_size": (ph, pw),
                              "strides": ps, "padding": "valid", "pads": (0, 0, 0, 0)},
                       types={"accum": pool_at, "result": pool_rt}))
            last = "pool"
        n_in = g[last].size
        lt = g[last].types["result"]
        dacc = dense_at or FixedType(min(lt.width + wt.width + 6, 50), min(lt.width + wt.width + 6, 50) -
                                     lt.frac - wt.frac)
        g.add(Node("dense", "dense", [last], (3,), attrs={"n_in": n_in, "n_out": 3, "strategy": "latency",
                                                         "reuse_factor": 1},
                   weights={"kernel": _grid_values(rng, wt, (n_in, 3), False),
                            "bias": _grid_values(rng, bt, (3,), neg_zero)},
                   types={"weight": wt, "bias": bt, "accum": dacc, "result": dense_rt}))
        g.inputs, g.outputs = ["x"], ["dense"]
        return g

    oh, ow = _out(h, kh, sh, pad), _out(w, kw, sw, pad)
    draw_pool = (draw(st.integers(1, min(3, oh))), draw(st.integers(1, min(3, ow))))
    pool_strides = (draw(st.integers(1, draw_pool[0])), draw(st.integers(1, draw_pool[1])))
    if tiles:
        draw_pool = (draw(st.sampled_from([p for p in (1, 2, 3) if p <= oh and oh % p == 0])),
                     draw(st.sampled_from([p for p in (1, 2, 3) if p <= ow and ow % p == 0])))
    pool_at, pool_rt = draw(fixed_types(2, 24)), draw(fixed_types(2, 24))
    if draw(st.booleans()):                                        # the plain max pool: types unchanged
        src = act_rt if act else (conv_rt or acc)
        pool_at = pool_rt = src
    rng = np.random.default_rng(seed + 1)
    x = _grid_values(rng, FixedType(xt.width + 2, xt.integer + 1), (64, h, w, c), neg_zero)
    x[0], x[1], x[2] = np.inf, -np.inf, 1e300                       # saturated and wrapped edge rows
    x[3] = -0.0
    return build, x


def _reference(monkeypatch):
    """Every fast path off: float64 values and products, window conv2d, pooling on gathered windows."""
    monkeypatch.setattr(kernels_conv, "TOEPLITZ_MAX_ENTRIES", 0)
    monkeypatch.setattr(kernels_conv, "_max_pool_tiles", lambda *a: None)
    monkeypatch.setattr(kernels_conv, "_average_pool_tiles", lambda *a: None)
    monkeypatch.setattr(NumpyOps, "exact_float32", False)


def _trace(build, x, xp=None):
    emu = Emulator(build()) if xp is None else Emulator(build(), xp=xp)
    try:
        raw = {k: emu.xp.to_numpy(v) for k, v in emu.run_raw([x], trace=True).items()}
    except Exception as e:  # noqa: BLE001 - both forms must refuse alike
        return {"error": str(e)}
    assert not any(is_narrow(v) for v in raw.values()), "run_raw returns float64"
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in raw.items()}


def _torch_ops():
    from fpga_gen.emulate.torch_ops import TorchOps, torch_available
    return TorchOps("cpu") if torch_available() else None


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(case=graphs())
def test_fast_paths_give_the_bits_of_the_plain_form(case):
    build, x = case
    fast = _trace(build, x)
    with pytest.MonkeyPatch.context() as mp:
        _reference(mp)
        plain = _trace(build, x)
    assert fast.keys() == plain.keys()
    for k in fast:
        assert fast[k] == plain[k], f"node {k} differs"
    ops = _torch_ops()                      # the same kernels on PyTorch (the bands gathered by index there)
    if ops is not None:
        assert _trace(build, x, ops) == plain


def test_fast_paths_are_taken_on_the_digits_cnn_shapes(monkeypatch):
    """The 8x8 conv2d runs as one matrix product, max pooling as tiles, narrow values in between, and the
    result equals the plain form's; a -0.0 bias or a -0.0 in the pooled values turns the fast path off."""
    taken = []
    toeplitz, tiles = kernels_conv._toeplitz_dense, kernels_conv._max_pool_tiles
    monkeypatch.setattr(kernels_conv, "_toeplitz_dense", lambda *a: taken.append("toeplitz") or toeplitz(*a))
    monkeypatch.setattr(kernels_conv, "_max_pool_tiles",
                        lambda n, x, *a: taken.append(("tiles", is_narrow(x), tiles(n, x, *a) is not None))
                        or tiles(n, x, *a))
    t = FixedType
    g = Graph("cnn")
    g.add(Node("x", "input", [], (8, 8, 1), types={"result": t(16, 6)}))
    rng = np.random.default_rng(1)
    bias = rng.integers(-31, 32, 8) / 32
    g.add(Node("conv", "conv2d", ["x"], (8, 8, 8),
               attrs={"in_height": 8, "in_width": 8, "n_chan": 1, "n_filt": 8, "kernel_size": (3, 3),
                      "strides": (1, 1), "padding": "same", "pads": (1, 1, 1, 1), "strategy": "latency",
                      "reuse_factor": 1},
               weights={"kernel": rng.integers(-31, 32, (3, 3, 1, 8)) / 32, "bias": bias},
               types={"weight": t(6, 1), "bias": t(6, 1), "accum": t(24, 9), "result": t(24, 9)}))
    g.add(Node("relu", "activation", ["conv"], (8, 8, 8), attrs={"activation": "relu"},
               types={"result": t(6, 2, False, "RND_CONV", "SAT")}))
    g.add(Node("pool", "pooling", ["relu"], (4, 4, 8),
               attrs={"mode": "max", "in_height": 8, "in_width": 8, "n_chan": 8, "pool_size": (2, 2),
                      "strides": (2, 2), "padding": "valid", "pads": (0, 0, 0, 0)},
               types={"accum": t(6, 2, False), "result": t(6, 2, False)}))
    g.inputs, g.outputs = ["x"], ["pool"]
    x = np.round(rng.uniform(-4, 4, (300, 8, 8, 1)) * 16) / 16
    emu = Emulator(g)
    y = emu.predict(x)
    assert y.dtype == np.float64
    assert taken == ["toeplitz", ("tiles", True, True)]
    with monkeypatch.context() as mp:
        _reference(mp)
        assert np.array_equal(Emulator(g_copy := _copy(g)).predict(x), y)
        del g_copy
    # a -0.0 bias: the window form (whose zero sums keep their sign)
    g2 = _copy(g)
    g2["conv"].weights["bias"] = np.where(np.arange(8) == 3, -0.0, bias)
    taken.clear()
    Emulator(g2).predict(x)
    assert taken[0] == "toeplitz" and g2["conv"].meta["_emu_conv_toeplitz"][1] is None
    # a -0.0 among the pooled values: the folded form
    relu_out = np.zeros((2, 512))
    relu_out[1, 7] = -0.0
    for dtype in (np.float32, np.float64):
        v = relu_out.astype(dtype)
        assert kernels_conv._sign_bits(v, False) is None and kernels_conv._sign_bits(v, True) is None
        assert kernels_conv._sign_bits(np.abs(v), False) is not None
        v[0, 0] = -1.0
        assert kernels_conv._sign_bits(v, True) is None
        v[1, 7] = 0.0
        assert kernels_conv._sign_bits(v, True) is not None


def _copy(g: Graph) -> Graph:
    out = Graph(g.name)
    for n in g:
        out.add(Node(n.name, n.op, list(n.inputs), n.shape, dict(n.attrs), dict(n.weights), dict(n.types)))
    out.inputs, out.outputs = list(g.inputs), list(g.outputs)
    return out


def test_pieces_give_the_whole_batch(monkeypatch):
    """predict runs a batch in pieces of about PIECE_VALUES values per layer: the same arrays."""
    g = Graph("g")
    g.add(Node("x", "input", [], (4, 4, 2), types={"result": FixedType(10, 3)}))
    g.add(Node("pool", "pooling", ["x"], (2, 2, 2),
               attrs={"mode": "max", "in_height": 4, "in_width": 4, "n_chan": 2, "pool_size": (2, 2),
                      "strides": (2, 2), "padding": "valid", "pads": (0, 0, 0, 0)},
               types={"accum": FixedType(10, 3), "result": FixedType(8, 3, True, "RND", "SAT")}))
    g.inputs, g.outputs = ["x"], ["pool"]
    x = np.random.default_rng(2).normal(size=(5000, 4, 4, 2)) * 3
    whole = Emulator(g).run_raw([x])["pool"]
    monkeypatch.setattr(interpreter, "PIECE_VALUES", 32 * 37)
    monkeypatch.setattr(interpreter, "PIECE_MIN_ROWS", 1)
    emu = Emulator(g)
    assert np.array_equal(emu._run_pieces([x], False)["pool"], whole)
    assert np.array_equal(emu.predict(x).reshape(len(x), -1), whole * 2.0 ** -5)


@pytest.mark.parametrize("signed", [True, False])
def test_max_pool_of_zeros_of_both_signs(signed):
    """Windows whose maximum is a zero of both signs: the tiled form steps aside, the fold's first zero wins."""
    t = FixedType(6, 3, signed)
    g = Graph("g")
    g.add(Node("x", "input", [], (4, 6, 3), types={"result": t}))
    g.add(Node("pool", "pooling", ["x"], (2, 3, 3),
               attrs={"mode": "max", "in_height": 4, "in_width": 6, "n_chan": 3, "pool_size": (2, 2),
                      "strides": (2, 2), "padding": "valid", "pads": (0, 0, 0, 0)},
               types={"accum": t, "result": t}))
    g.inputs, g.outputs = ["x"], ["pool"]
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([-0.0, 0.0, -1.0, 0.5] if signed else [-0.0, 0.0]), size=(400, 4, 6, 3))
    fast = Emulator(g).run_raw([x])["pool"]
    with pytest.MonkeyPatch.context() as mp:
        _reference(mp)
        plain = Emulator(_copy(g)).run_raw([x])["pool"]
    assert np.signbit(plain[plain == 0]).any() and not np.signbit(plain[plain == 0]).all()
    assert fast.tobytes() == plain.tobytes()


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("extra_int,extra_frac", [(0, 0), (1, 0), (2, 0), (3, 1), (4, -1), (6, 2)])
@pytest.mark.parametrize("saturation", ["WRAP", "SAT", "SAT_SYM", "SAT_ZERO"])
def test_average_pool_over_tiles(signed, extra_int, extra_frac, saturation):
    """Tiled average pooling sums without the loop's casts only where no partial sum can leave accum and accum
    holds the input grid: narrow, coarse and just-too-narrow accumulators against the loop, the extremes and
    windows of -0.0 included."""
    xt = FixedType(7, 3, signed)
    at = FixedType(7 + extra_int + extra_frac, 3 + extra_int, signed, "RND", saturation)
    g = Graph("g")
    g.add(Node("x", "input", [], (4, 4, 2), types={"result": xt}))
    g.add(Node("pool", "pooling", ["x"], (2, 2, 2),
               attrs={"mode": "average", "in_height": 4, "in_width": 4, "n_chan": 2, "pool_size": (2, 2),
                      "strides": (2, 2), "padding": "valid", "pads": (0, 0, 0, 0)},
               types={"accum": at, "result": FixedType(16, 10, True, "TRN", "WRAP")}))   # holds every accum
    g.inputs, g.outputs = ["x"], ["pool"]
    rng = np.random.default_rng(4)
    raw = rng.integers(xt.raw_min, xt.raw_max + 1, size=(600, 4, 4, 2)).astype(np.float64)
    raw[:100] = rng.choice([xt.raw_min, xt.raw_max, -0.0, 0.0], size=(100, 4, 4, 2))
    x = raw * 2.0 ** -xt.frac
    fast = Emulator(g).run_raw([x])["pool"]
    with pytest.MonkeyPatch.context() as mp:
        _reference(mp)
        plain = Emulator(_copy(g)).run_raw([x])["pool"]
    assert fast.tobytes() == plain.tobytes()
