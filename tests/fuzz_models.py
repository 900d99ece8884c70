"""Hypothesis strategies for random valid QKeras models, and the references they are checked against.

A drawn :class:`ModelSpec` is plain data (shown in full when Hypothesis reports a failure); ``build()``
makes the tf.keras model, ``config()`` the fpga-gen settings (strategy, valid reuse factor per layer),
``inputs()`` a batch on the input type's grid.

References:
- :func:`reference_forward` -- an independent float64 numpy forward pass with the exact fixed-point
  semantics fpga-gen promises (quantizers round half to even and saturate, quantized layers exact, a float
  Dense/Conv2D result truncated and wrapped to the default precision).  The emulator must equal it bit for
  bit on every model.
- QKeras itself, wherever its float32 arithmetic is exact: :func:`float32_exact` checks, with the actual
  intermediate values, that every sum QKeras forms stays below 2**24 units of its grid.

:class:`SpecBase`, :func:`set_weights` and :func:`out_size` serve tests/fuzz_mixed.py's ``MixedSpec`` as well.

Layers drawn: Dense/QDense (quantized_bits kernel/bias quantizers of 2-16 bits), QActivation
quantized_relu/quantized_bits, Activation relu, linear, Dropout, Flatten, softmax at the end, and
Conv2D/QConv2D, MaxPooling2D, AveragePooling2D.  Average pooling windows have 1 or 2 cells per axis, so
every window size is a power of two and the average is exact (fpga-gen keeps guard bits otherwise,
which QKeras' float32 average cannot be compared with bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from fpga_gen.ir.reuse import valid_reuse_factors

DEFAULT_FRAC, DEFAULT_INT = 10, 6          # ap_fixed<16,6>: the type float layers take


class SpecBase:
    """What ModelSpec and fuzz_mixed.MixedSpec share, over their fields input_shape, input_bits, input_int,
    layers (dicts with a 'name', maybe a 'reuse' factor and a 'branch' of layers) and strategy."""

    @property
    def input_precision(self) -> str:
        return f"ap_fixed<{self.input_bits},{self.input_int}>"

    def base_config(self, **extra) -> dict:
        """The fpga-gen settings: strategy, input precision, ``extra``, and the reuse factor of every layer
        (skip branches included) whose factor is not 1."""
        layers = {}
        for l in self.layers:
            for x in [l] + l.get("branch", []):
                if x.get("reuse", 1) != 1:
                    layers[x["name"]] = {"reuse_factor": x["reuse"]}
        return {"strategy": self.strategy, "input_precision": self.input_precision, **extra, "layers": layers}

    def inputs(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples on the input grid, spanning the whole range of the input type (ends included)."""
        rng = np.random.default_rng(seed)
        frac = self.input_bits - self.input_int
        lo, hi = -(2 ** (self.input_bits - 1)), 2 ** (self.input_bits - 1) - 1
        raw = rng.integers(lo, hi + 1, size=(n,) + tuple(self.input_shape))
        raw.reshape(n, -1)[:2] = [[lo], [hi]]
        return raw / 2.0 ** frac


def set_weights(layer, l, rng, float_span):
    """Random weights for a built weighted layer of spec ``l``: uniform in +-1.5 when it is quantized (its
    quantizers round them), else uniform in +-float_span on the 2**-l['wfrac'] grid, which the default precision
    holds (rounding them changes nothing)."""
    weights = []
    for w in layer.get_weights():
        if l["quant"] is None:
            weights.append(np.round(rng.uniform(-float_span, float_span, w.shape) * 2 ** l["wfrac"]) / 2 ** l["wfrac"])
        else:
            weights.append(rng.uniform(-1.5, 1.5, w.shape))
    layer.set_weights(weights)


def out_size(n, window, stride, padding):
    """The output length of a window sliding over n cells ('valid' or 'same' padding, as Keras)."""
    return (n - window) // stride + 1 if padding == "valid" else -(-n // stride)


@dataclass
class ModelSpec(SpecBase):
    input_shape: tuple
    input_bits: int
    input_int: int
    layers: list = field(default_factory=list)     # dicts, see build()
    softmax: bool = False
    strategy: str = "latency"
    seed: int = 0

    # ------------------------------------------------------------------ fpga-gen side (and SpecBase)
    overrides: dict = field(default_factory=dict)  # layer name -> {slot: type string}: config precision overrides

    def config(self) -> dict:
        config = self.base_config()
        for name, slots in self.overrides.items():
            config["layers"].setdefault(name, {})["precision"] = dict(slots)
        return config

    # ------------------------------------------------------------------ Keras side
    def build(self):
        from fpga_gen.frontend.keras.loader import import_tf
        tf = import_tf()
        from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

        rng = np.random.default_rng(self.seed)
        K = tf.keras.layers
        model = tf.keras.Sequential(name="fuzz")
        model.add(K.InputLayer(input_shape=self.input_shape, name="x"))
        for l in self.layers:
            kind = l["kind"]
            if kind in ("dense", "conv"):
                q = l["quant"]
                kw = dict(name=l["name"], use_bias=l["bias"])
                if q is not None:
                    kw.update(kernel_quantizer=quantized_bits(q[0], q[1], alpha=1),
                              bias_quantizer=quantized_bits(q[2], q[3], alpha=1))
                    cls = QDense if kind == "dense" else QConv2D
                else:
                    cls = K.Dense if kind == "dense" else K.Conv2D
                if l.get("act_arg"):
                    kw["activation"] = _quantizer(l["act_arg"], quantized_bits, quantized_relu)
                if kind == "dense":
                    layer = cls(l["units"], **kw)
                else:
                    layer = cls(l["filters"], l["kernel"], strides=l["strides"], padding=l["padding"], **kw)
                model.add(layer)
                set_weights(layer, l, rng, float_span=2)
            elif kind == "qact":
                model.add(QActivation(_quantizer(l["q"], quantized_bits, quantized_relu), name=l["name"]))
            elif kind == "relu":
                model.add(K.Activation("relu", name=l["name"]))
            elif kind == "linear":
                model.add(K.Activation("linear", name=l["name"]))
            elif kind == "dropout":
                model.add(K.Dropout(0.25, name=l["name"]))
            elif kind == "flatten":
                model.add(K.Flatten(name=l["name"]))
            elif kind == "pool":
                cls = K.MaxPooling2D if l["mode"] == "max" else K.AveragePooling2D
                model.add(cls(l["pool"], strides=l["strides"], padding=l["padding"], name=l["name"]))
            else:  # pragma: no cover
                raise ValueError(kind)
        if self.softmax:
            model.add(K.Activation("softmax", name="softmax"))
        return model


def _quantizer(q, quantized_bits, quantized_relu):
    kind, bits, integer = q
    if kind == "relu":
        return quantized_relu(bits, integer)
    return quantized_bits(bits, integer, keep_negative=kind == "bits", alpha=1)


# ---------------------------------------------------------------------- strategies
def _wquant(draw):
    bits = st.one_of(st.integers(2, 8), st.integers(2, 16))       # mostly narrow, like real models
    kb, bb = draw(bits), draw(bits)
    return (kb, draw(st.integers(0, min(3, kb - 1))), bb, draw(st.integers(0, min(3, bb - 1))))


def _act_quant(draw):
    kind = draw(st.sampled_from(["relu", "bits", "ubits"]))       # ubits: quantized_bits(keep_negative=False)
    bits = draw(st.integers(2, 12))
    integer = draw(st.integers(0, min(4, bits - 1)))
    return (kind, bits, integer)


def _weighted_common(draw, name):
    quantized = draw(st.sampled_from([True, True, True, True, True, False]))     # 5 in 6 quantized
    return dict(name=name, quant=_wquant(draw) if quantized else None, bias=draw(st.integers(0, 4)) > 0,
                wfrac=draw(st.integers(0, 4)))


def _activation(draw, k, state):
    """An activation after a weighted layer; state['unquantized'] limits how wide exact types grow."""
    choices = ["qact", "qact", "none"] + (["relu", "linear"] if state["unquantized"] < 1 else [])
    kind = draw(st.sampled_from(choices))
    if kind == "none":
        state["unquantized"] += 1
        return []
    if kind in ("relu", "linear"):
        state["unquantized"] += 1
        return [dict(kind=kind, name=f"act_{k}")]
    state["unquantized"] = 0
    return [dict(kind="qact", name=f"act_{k}", q=_act_quant(draw))]


@st.composite
def dense_layer(draw, k, n_in, state, last=False):
    l = dict(kind="dense", units=draw(st.integers(1, 12)), **_weighted_common(draw, f"fc_{k}"))
    l["reuse"] = draw(st.sampled_from(valid_reuse_factors(n_in, l["units"])))
    out = [l]
    if not last:
        if l["quant"] is not None and draw(st.integers(0, 4)) == 0:
            l["act_arg"] = _act_quant(draw)           # QDense(activation=quantizer): becomes its own node
            state["unquantized"] = 0
        else:
            out += _activation(draw, k, state)
        if draw(st.integers(0, 5)) == 0:
            out.append(dict(kind="dropout", name=f"drop_{k}"))
    return out, l["units"]


@st.composite
def model_specs(draw, allow_conv: bool = True, max_dense: int = 3):
    seed = draw(st.integers(0, 2 ** 31 - 1))
    ib = draw(st.one_of(st.integers(4, 8), st.integers(4, 12)))
    spec = ModelSpec(input_shape=(), input_bits=ib, input_int=draw(st.integers(1, min(5, ib - 1))),
                     strategy=draw(st.sampled_from(["latency", "resource", "distributed_arithmetic"])), seed=seed)
    state = {"unquantized": 0}
    layers = []
    cnn = allow_conv and draw(st.booleans())
    if cnn:
        h, w, c = draw(st.integers(3, 8)), draw(st.integers(3, 8)), draw(st.integers(1, 3))
        spec.input_shape = (h, w, c)
        signed = True
        for k in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 1):
            kh, kw_ = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
            pad = draw(st.sampled_from(["valid", "same"]))
            s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            l = dict(kind="conv", filters=draw(st.integers(1, 4)), kernel=(kh, kw_), strides=s, padding=pad,
                     **_weighted_common(draw, f"conv_{k}"))
            l["reuse"] = draw(st.sampled_from(valid_reuse_factors(kh * kw_ * c, l["filters"], "conv2d", spec.strategy)))
            layers.append(l)
            acts = _activation(draw, f"c{k}", state)
            layers += acts
            signed = not any(a["kind"] == "relu" or (a["kind"] == "qact" and a["q"][0] in ("relu", "ubits"))
                             for a in acts)
            h, w, c = out_size(h, kh, s[0], pad), out_size(w, kw_, s[1], pad), l["filters"]
            if draw(st.sampled_from([True, True, False])):
                mode = draw(st.sampled_from(["max", "average"]))
                # average: 1 or 2 cells per axis (power-of-two window sizes); max 'same' needs a signed input
                ph = draw(st.integers(1, min(2 if mode == "average" else 3, h)))
                pw = draw(st.integers(1, min(2 if mode == "average" else 3, w)))
                ppad = draw(st.sampled_from(["valid", "same"] if (signed or mode == "average") else ["valid"]))
                ps = (draw(st.integers(1, ph)), draw(st.integers(1, pw)))
                layers.append(dict(kind="pool", name=f"pool_{k}", mode=mode, pool=(ph, pw), strides=ps,
                                   padding=ppad))
                h, w = out_size(h, ph, ps[0], ppad), out_size(w, pw, ps[1], ppad)
        layers.append(dict(kind="flatten", name="flat"))
        n = h * w * c
        n_dense = draw(st.integers(1, 2))
    else:
        n = draw(st.integers(1, 16))
        spec.input_shape = (n,)
        n_dense = draw(st.integers(1, max_dense))
    for k in range(n_dense):
        new, n = draw(dense_layer(k, n, state, last=k == n_dense - 1))
        layers += new
    if spec.strategy == "distributed_arithmetic":     # da4ml's adder graphs: reuse factor 1 only (fpga_gen/da)
        for l in layers:
            if l["kind"] in ("dense", "conv"):
                l["reuse"] = 1
    spec.layers = layers
    spec.softmax = draw(st.integers(0, 3)) == 0
    return spec


# ---------------------------------------------------------------------- references
def _round_half_even(v):
    return np.round(v)          # numpy rounds half to even, like tf.round


def q_bits(v, bits, integer):
    f = bits - 1 - integer
    return np.clip(_round_half_even(v * 2.0 ** f), -2.0 ** (bits - 1), 2.0 ** (bits - 1) - 1) / 2.0 ** f


def q_ubits(v, bits, integer):
    f = bits - integer
    return np.clip(_round_half_even(v * 2.0 ** f), 0, 2.0 ** bits - 1) / 2.0 ** f


def q_relu(v, bits, integer):
    f = bits - integer
    return np.clip(_round_half_even(np.maximum(v, 0) * 2.0 ** f), 0, 2.0 ** bits - 1) / 2.0 ** f


def to_default(v):
    """ap_fixed<16,6> (TRN, WRAP): what a float layer's result becomes."""
    raw = np.floor(v * 2.0 ** DEFAULT_FRAC)
    raw = (raw + 2 ** 15) % 2 ** 16 - 2 ** 15
    return raw / 2.0 ** DEFAULT_FRAC


def _quantized_weights(layer):
    """The weights QKeras uses in its forward pass (float32 values, held in float64)."""
    import tensorflow as tf
    ws = layer.get_weights()
    kernel = np.asarray(ws[0], np.float64)
    bias = np.asarray(ws[1], np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    kq = getattr(layer, "kernel_quantizer_internal", None)
    if kq is not None:
        kernel = np.asarray(kq(tf.constant(kernel, tf.float32)).numpy(), np.float64)
        if layer.use_bias:
            bias = np.asarray(layer.bias_quantizer_internal(tf.constant(bias, tf.float32)).numpy(), np.float64)
    return kernel, bias


def _patches(x, kernel, strides, padding, pad_value=0.0):
    """(B, H, W, C) -> (B, OH, OW, kh, kw, C) windows, Keras' 'same' padding split (pad before = total // 2)."""
    b, h, w, c = x.shape
    kh, kw = kernel
    pads = []
    for n, k, s in ((h, kh, strides[0]), (w, kw, strides[1])):
        if padding == "valid":
            pads.append((0, 0, (n - k) // s + 1))
        else:
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2, out))
    xp = np.pad(x, ((0, 0), pads[0][:2], pads[1][:2], (0, 0)), constant_values=pad_value)
    oh, ow = pads[0][2], pads[1][2]
    out = np.empty((b, oh, ow, kh, kw, c))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = xp[:, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw]
    valid = np.pad(np.ones((h, w)), (pads[0][:2], pads[1][:2]))
    counts = np.array([[valid[i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw].sum()
                        for j in range(ow)] for i in range(oh)])
    return out, counts


def reference_forward(spec: ModelSpec, model, x: np.ndarray, record=None):
    """Float64 forward pass of the fpga-gen semantics; returns the pre-softmax output (batch, n).

    ``record``: a list that receives (grid fraction bits, bound on every partial sum) per weighted layer,
    for :func:`float32_exact`."""
    h = np.asarray(x, np.float64)
    frac = spec.input_bits - spec.input_int          # grid of h: multiples of 2**-frac
    for l in spec.layers:
        kind = l["kind"]
        if kind in ("dense", "conv"):
            layer = model.get_layer(l["name"])
            kernel, bias = _quantized_weights(layer)
            if l["quant"] is not None:
                wf = max(l["quant"][0] - 1 - l["quant"][1], l["quant"][2] - 1 - l["quant"][3])
            else:
                wf = l["wfrac"]
            if kind == "dense":
                h2 = h.reshape(len(h), -1)
                y = h2 @ kernel + bias
                bound = np.abs(h2) @ np.abs(kernel) + np.abs(bias)
            else:
                pt, _ = _patches(h, l["kernel"], l["strides"], l["padding"])
                k2 = kernel.reshape(-1, kernel.shape[-1])
                flat = pt.reshape(pt.shape[:3] + (-1,))
                y = flat @ k2 + bias
                bound = np.abs(flat) @ np.abs(k2) + np.abs(bias)
            if record is not None:
                record.append((frac + wf, float(bound.max()) if bound.size else 0.0))
            frac = frac + wf
            if l["quant"] is None:
                y = to_default(y)
                frac = DEFAULT_FRAC
            h = y
            if l.get("act_arg"):
                h, frac = _apply_quant(h, l["act_arg"], frac)
        elif kind == "qact":
            h, frac = _apply_quant(h, l["q"], frac)
        elif kind == "relu":
            h = np.maximum(h, 0)
        elif kind == "pool":
            if l["mode"] == "max":
                pt, _ = _patches(h, l["pool"], l["strides"], l["padding"], pad_value=-np.inf)
                h = pt.max(axis=(3, 4))
            else:
                pt, counts = _patches(h, l["pool"], l["strides"], l["padding"])
                h = pt.sum(axis=(3, 4)) / counts[None, :, :, None]
                frac += 1 if max(l["pool"]) > 1 else 0
                frac += 1 if min(l["pool"]) > 1 else 0
        # linear, dropout, flatten: nothing
    return h.reshape(len(h), -1)


def _apply_quant(h, q, frac):
    kind, bits, integer = q
    if kind == "relu":
        return q_relu(h, bits, integer), bits - integer
    if kind == "ubits":
        return q_ubits(h, bits, integer), bits - integer
    return q_bits(h, bits, integer), bits - 1 - integer


def float32_exact(spec: ModelSpec, record) -> bool:
    """QKeras (float32) computes this model's values exactly on this batch: float layers are left out
    (their results are rounded to the default precision, which QKeras does not do), every sum stays
    below 2**24 grid units."""
    if any(l["kind"] in ("dense", "conv") and l["quant"] is None for l in spec.layers):
        return False
    return all(bound * 2.0 ** frac < 2.0 ** 24 for frac, bound in record)


@st.composite
def fixed_types(draw, signed=None, saturation=None):
    """A random ap_fixed/ap_ufixed type with any rounding and overflow mode."""
    from fpga_gen.ir.types import ROUNDING_MODES, SATURATION_MODES
    width = draw(st.integers(2, 24))
    sign = draw(st.booleans()) if signed is None else signed
    # 0 <= integer <= width: a rounding cast into a type without fraction bits (or from one with a negative
    # integer part) can drop more bits than its source has, which ap_types asserts on (see
    # test_robustness.py::test_rounding_cast_to_a_type_without_fraction_bits_runs_in_csim)
    t = f"ap_{'' if sign else 'u'}fixed<{width},{draw(st.integers(0, width))}"
    rnd, sat = draw(st.sampled_from(ROUNDING_MODES)), saturation or draw(st.sampled_from(SATURATION_MODES))
    return t + f",AP_{rnd},AP_{sat}>"


@st.composite
def specs_with_overrides(draw, **kw):
    """A model whose dense/conv result (and sometimes accumulator) types are overridden in the config with
    random widths, rounding and overflow modes: rounding and wrap-around everywhere, so only csim == emulator
    holds (the float64 and QKeras references do not apply)."""
    spec = draw(model_specs(**kw))
    for l in spec.layers:
        if l["kind"] in ("dense", "conv") and draw(st.booleans()):
            slots = {"result": draw(fixed_types())}
            if draw(st.integers(0, 3)) == 0 and spec.strategy != "distributed_arithmetic":   # DA sums exactly
                # WRAP only: a saturating accumulator's result depends on the order of the additions, which
                # the emulator models for the latency kernel only (test_csim.py pins the resource case as xfail)
                slots["accum"] = draw(fixed_types(signed=True, saturation="WRAP"))
            spec.overrides[l["name"]] = slots
    return spec
