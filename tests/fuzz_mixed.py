"""Hypothesis strategies for random valid QKeras models that mix the layers main gained together.

A drawn :class:`MixedSpec` is plain data (Hypothesis prints it in full on a failure); ``build()`` makes a
tf.keras functional model.  Layers drawn:

- 1-D (length, channels) or 2-D (height, width, channels) inputs on the input type's grid;
- Conv1D/Conv2D (QKeras quantized or float), DepthwiseConv2D/QDepthwiseConv2D, DepthwiseConv1D,
  SeparableConv1D/2D (quantized or float), BatchNormalization (after a float layer: folded by FuseBatchNorm;
  after a quantized layer or an activation: its own batchnorm node);
- ZeroPadding, Cropping, UpSampling, Max/AveragePooling, GlobalMax/AveragePooling, Flatten, Permute, Reshape
  (an image into a sequence of pixels and back);
- skip blocks: ``y = Add([x, branch(x)])`` or ``Concatenate([x, branch(x)])`` with a 'same' convolution branch;
- activations: QActivation with the quantizer zoo (quantized_bits, quantized_relu (with negative_slope),
  quantized_tanh, quantized_sigmoid, binary, ternary, quantized_po2, quantized_relu_po2), and the activation
  kinds (ReLU, relu6, LeakyReLU, ELU, sigmoid, tanh);
- weight quantizers: quantized_bits (alpha=1 / auto_po2), binary / ternary (alpha auto_po2), quantized_po2;
- a Dense/QDense head, io_parallel or io_stream.

``qkeras_exact`` says whether QKeras computes every layer of the model in fixed point (quantized weights,
quantized or piecewise-linear activations, power-of-two average windows, no batchnorm): only then is the
emulator compared with QKeras bit for bit (after checking every type is at most 24 bits wide, so QKeras'
float32 sums are exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from fpga_gen.ir.reuse import valid_reuse_factors
from fuzz_models import SpecBase, out_size, set_weights


@dataclass
class MixedSpec(SpecBase):     # input_precision, inputs(), base_config()
    input_shape: tuple
    input_bits: int
    input_int: int
    layers: list = field(default_factory=list)
    io_type: str = "parallel"
    strategy: str = "latency"
    seed: int = 0
    float_model: bool = False       # no QKeras layer: converted with calibrate= (the float-model flow)

    def config(self) -> dict:
        return self.base_config(io_type=self.io_type)

    @property
    def qkeras_exact(self) -> bool:
        return all(_exact(l) for l in self.layers)

    @property
    def end_activation(self) -> bool:
        """The model ends in a softmax/sigmoid after its dense layer (QKeras is then compared before it)."""
        return self.layers[-1]["kind"] == "act" and self.layers[-1]["name"].startswith("out")

    @property
    def qkeras_exact_before_end(self) -> bool:
        return self.end_activation and all(_exact(l) for l in self.layers[:-1])

    def build(self):
        from fpga_gen.frontend.keras.loader import import_tf
        tf = import_tf()
        rng = np.random.default_rng(self.seed)
        x = tf.keras.Input(shape=self.input_shape, name="x")
        y = x
        for l in self.layers:
            y = _apply(tf, l, y, rng)
        return tf.keras.Model(x, y, name="mixed")


def _exact(l) -> bool:
    k = l["kind"]
    if k == "skip":
        return all(_exact(b) for b in l["branch"])
    if k in ("conv", "dw", "sep"):
        # TensorFlow's oneDNN convolution (on by default on x86) is wrong for some unequal strides, e.g. a (1, 3)
        # kernel with strides (1, 2) on a (5, 4, 1) image (test_tensorflow_onednn_convolution_bug): no reference
        return l["quant"] is not None and len(set(l["strides"])) == 1
    if k == "dense":
        return l["quant"] is not None
    if k == "bn":
        return False
    if k == "act":
        return l["fn"] in ("relu", "relu6", "linear")
    if k == "qact":
        return True
    if k == "pool":
        return l["mode"] == "max" or all(p & (p - 1) == 0 for p in l["pool"])
    if k == "gpool":
        return l["mode"] == "max" or (l["size"] & (l["size"] - 1)) == 0
    return True


# ---------------------------------------------------------------------- building
def _wq(q):
    """A weight quantizer from its spec tuple."""
    from qkeras import binary, quantized_bits, quantized_po2, ternary
    kind = q[0]
    if kind == "bits":
        return quantized_bits(q[1], q[2], alpha=1)
    if kind == "bits_po2":
        return quantized_bits(q[1], q[2], alpha="auto_po2")
    if kind == "binary":
        return binary(alpha="auto_po2")
    if kind == "ternary":
        return ternary(alpha="auto_po2")
    if kind == "po2":
        return quantized_po2(q[1])
    raise ValueError(kind)


def _aq(q):
    from qkeras import (binary, quantized_bits, quantized_po2, quantized_relu, quantized_relu_po2,
                        quantized_sigmoid, quantized_tanh, ternary)
    kind = q[0]
    if kind == "bits":
        return quantized_bits(q[1], q[2], alpha=1)
    if kind == "ubits":
        return quantized_bits(q[1], q[2], keep_negative=False, alpha=1)
    if kind == "relu":
        return quantized_relu(q[1], q[2])
    if kind == "leaky":
        return quantized_relu(q[1], q[2], negative_slope=q[3])
    if kind == "tanh":
        return quantized_tanh(q[1])
    if kind == "sigmoid":
        return quantized_sigmoid(q[1])
    if kind == "binary":
        return binary()
    if kind == "ternary":
        return ternary()
    if kind == "po2":
        return quantized_po2(q[1])
    if kind == "relu_po2":
        return quantized_relu_po2(q[1])
    raise ValueError(kind)


def _apply(tf, l, y, rng):
    import qkeras
    K = tf.keras.layers
    k, name = l["kind"], l["name"]
    rank = len(y.shape) - 2
    D = f"{rank}D"
    if k == "skip":
        b = y
        for bl in l["branch"]:
            b = _apply(tf, bl, b, rng)
        cls = {"add": K.Add, "concat": K.Concatenate, "subtract": K.Subtract, "multiply": K.Multiply,
               "average": K.Average, "maximum": K.Maximum, "minimum": K.Minimum}[l["merge"]]
        return cls(name=name)([y, b])
    if k in ("conv", "sep", "dw"):
        q = l["quant"]
        kw = dict(name=name, strides=l["strides"], padding=l["padding"], use_bias=l["bias"])
        if l.get("act_arg"):
            kw["activation"] = _aq(l["act_arg"])
        if k == "conv":
            if q is None:
                layer = getattr(K, f"Conv{D}")(l["filters"], l["kernel"], **kw)
            else:
                layer = getattr(qkeras, f"QConv{D}")(l["filters"], l["kernel"], kernel_quantizer=_wq(q),
                                                     bias_quantizer=_wq(l["bq"]), **kw)
        elif k == "sep":
            if q is None:
                layer = getattr(K, f"SeparableConv{D}")(l["filters"], l["kernel"], **kw)
            else:
                layer = getattr(qkeras, f"QSeparableConv{D}")(
                    l["filters"], l["kernel"], depthwise_quantizer=_wq(q), pointwise_quantizer=_wq(l["pq"]),
                    bias_quantizer=_wq(l["bq"]), **kw)
        else:
            if q is None:
                layer = getattr(K, f"DepthwiseConv{D}")(l["kernel"], depth_multiplier=l["mult"], **kw)
            else:
                layer = qkeras.QDepthwiseConv2D(l["kernel"], depth_multiplier=l["mult"], depthwise_quantizer=_wq(q),
                                                bias_quantizer=_wq(l["bq"]), **kw)
        out = layer(y)
        set_weights(layer, l, rng, float_span=1.5)
        return out
    if k == "dense":
        q = l["quant"]
        if q is None:
            layer = K.Dense(l["units"], name=name, use_bias=l["bias"])
        else:
            layer = qkeras.QDense(l["units"], name=name, use_bias=l["bias"], kernel_quantizer=_wq(q),
                                  bias_quantizer=_wq(l["bq"]))
        out = layer(y)
        set_weights(layer, l, rng, float_span=1.5)
        return out
    if k == "bn":
        layer = K.BatchNormalization(name=name)
        out = layer(y)
        c = y.shape[-1]
        layer.set_weights([rng.uniform(0.5, 1.5, c), rng.uniform(-0.5, 0.5, c), rng.uniform(-0.5, 0.5, c),
                           rng.uniform(0.5, 1.5, c)])
        return out
    if k == "qact":
        return qkeras.QActivation(_aq(l["q"]), name=name)(y)
    if k == "act":
        fn = l["fn"]
        if fn == "relu6":
            return K.ReLU(max_value=6.0, name=name)(y)
        if fn == "leaky":
            return K.LeakyReLU(alpha=l["alpha"], name=name)(y)
        if fn == "elu":
            return K.ELU(alpha=1.0, name=name)(y)
        return K.Activation(fn, name=name)(y)
    if k == "pad":
        return getattr(K, f"ZeroPadding{D}")(l["pad"], name=name)(y)
    if k == "crop":
        return getattr(K, f"Cropping{D}")(l["crop"], name=name)(y)
    if k == "up":
        return getattr(K, f"UpSampling{D}")(l["size"], name=name)(y)
    if k == "pool":
        cls = getattr(K, ("MaxPooling" if l["mode"] == "max" else "AveragePooling") + D)
        return cls(l["pool"], strides=l["strides"], padding=l["padding"], name=name)(y)
    if k == "gpool":
        cls = getattr(K, ("GlobalMaxPooling" if l["mode"] == "max" else "GlobalAveragePooling") + D)
        return cls(name=name)(y)
    if k == "flatten":
        return K.Flatten(name=name)(y)
    if k == "permute":
        return K.Permute(l["perm"], name=name)(y)
    if k == "reshape":
        return K.Reshape(l["shape"], name=name)(y)
    raise ValueError(k)


# ---------------------------------------------------------------------- strategies
def _weight_quant(draw, allow_zoo=True):
    kinds = ["bits", "bits", "bits", "bits_po2", "binary", "ternary", "po2"] if allow_zoo else ["bits"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("bits", "bits_po2"):
        b = draw(st.integers(2, 8))
        return (kind, b, draw(st.integers(0, min(2, b - 1))))
    if kind == "po2":
        return (kind, draw(st.integers(3, 5)))
    return (kind,)


def _bias_quant(draw):
    b = draw(st.integers(4, 10))
    return ("bits", b, draw(st.integers(1, min(3, b - 1))))


def _act_quant(draw, zoo=True):
    kinds = ["bits", "relu", "ubits"] * 3 + (["leaky", "tanh", "sigmoid", "binary", "ternary", "po2", "relu_po2"]
                                            if zoo else [])
    kind = draw(st.sampled_from(kinds))
    if kind in ("bits", "relu", "ubits"):
        b = draw(st.integers(2, 10))
        return (kind, b, draw(st.integers(0, min(4, b - 1))))
    if kind == "leaky":
        b = draw(st.integers(3, 8))
        return (kind, b, draw(st.integers(1, min(3, b - 1))), draw(st.sampled_from([0.25, 0.125, 0.5])))
    if kind in ("tanh", "sigmoid"):
        return (kind, draw(st.integers(3, 8)))
    if kind in ("po2", "relu_po2"):
        return (kind, draw(st.integers(3, 5)))
    return (kind,)


class _State:
    def __init__(self, draw, shape, stream):
        self.draw, self.shape, self.stream, self.k = draw, list(shape), stream, 0
        self.unquantized = 0       # layers since the last quantizer: bounds how wide exact types grow
        self.float = False         # a float model (no QKeras layer): converted with calibration
        self.simple = False        # io_stream: mostly the ops and quantizers io_stream has

    def name(self, stem):
        self.k += 1
        return f"{stem}{self.k}"

    @property
    def spatial(self):
        return self.shape[:-1]


def _window(draw, st_, cap=3):
    return tuple(draw(st.integers(1, min(cap, n))) for n in st_.spatial)


def _conv(draw, s: _State, kind="conv", same_shape=False, filters=None):
    rank = len(s.spatial)
    kernel = _window(draw, s)
    if same_shape:
        strides, padding = (1,) * rank, "same"
    else:
        strides = tuple(draw(st.integers(1, 2)) for _ in range(rank))
        if s.stream and kernel[0] == 1:
            strides = (1,) + strides[1:]        # io_stream's line buffer ignores the row stride of a 1-row kernel
        padding = draw(st.sampled_from(["valid", "same"]))
    quantized = draw(st.integers(0, 4)) > 0 and not (kind == "dw" and rank == 1) and not s.float
    l = dict(kind=kind, name=s.name(kind), kernel=kernel, strides=strides, padding=padding,
             bias=draw(st.booleans()), quant=_weight_quant(draw, not s.simple) if quantized else None,
             bq=_bias_quant(draw), wfrac=draw(st.integers(0, 3)))
    if kind == "sep":
        l["pq"] = _weight_quant(draw)
    c = s.shape[-1]
    if kind == "dw":
        l["mult"] = 1          # depth_multiplier > 1: refused in one line (nnet needs n_filt == n_chan)
        c *= l["mult"]
    if kind != "dw":
        l["filters"] = filters or draw(st.integers(1, 4))
        if kind == "conv":
            n_in = int(np.prod(kernel)) * c     # the resource conv kernel takes reuse factors up to n_in
            l["reuse"] = draw(st.sampled_from([v for v in valid_reuse_factors(n_in, l["filters"]) if v <= n_in]))
        c = l["filters"]
    s.shape = [out_size(n, k, st_, padding) for n, k, st_ in zip(s.spatial, kernel, strides)] + [c]
    if quantized and draw(st.integers(0, 4)) == 0:
        l["act_arg"] = _act_quant(draw, zoo=False)     # QConv(activation=quantizer): its own node
        s.unquantized = 0
        return [l]
    s.unquantized += 1
    return [l] + _after_weighted(draw, s, quantized)


def _after_weighted(draw, s: _State, quantized) -> list:
    out = []
    if draw(st.integers(0, 3)) == 0:
        if not s.simple:
            out.append(dict(kind="bn", name=s.name("bn")))
        s.unquantized += 1
    if s.unquantized >= 2 or draw(st.integers(0, 2)) > 0:
        out.append(_activation(draw, s))
    return out


def _activation(draw, s: _State):
    if draw(st.integers(0, 3)) > 0 and not s.float:
        s.unquantized = 0
        return dict(kind="qact", name=s.name("qa"), q=_act_quant(draw, not s.simple))
    fn = draw(st.sampled_from(["relu"] if s.simple else ["relu", "relu6", "leaky", "elu", "sigmoid", "tanh"]))
    l = dict(kind="act", name=s.name("a"), fn=fn)
    if fn == "leaky":
        l["alpha"] = draw(st.sampled_from([0.1, 0.25, 0.3]))
    s.unquantized = 0            # a float activation's result takes the default precision (or a table type)
    return l


def _spatial_layer(draw, s: _State) -> list:
    kind = draw(st.sampled_from(["pad", "crop", "up", "pool", "pool", "permute", "reshape"]))
    rank = len(s.spatial)
    if kind == "permute":
        if rank == 1:
            return []
        perm = draw(st.sampled_from([(2, 1, 3), (1, 3, 2), (3, 2, 1), (3, 1, 2), (2, 3, 1)]))
        s.shape = [s.shape[p - 1] for p in perm]
        return [dict(kind="permute", name=s.name("perm"), perm=perm)]
    if kind == "reshape":        # an image as a sequence of its pixels, or back
        if rank == 2:
            s.shape = [s.shape[0] * s.shape[1], s.shape[2]]
        else:
            n = s.shape[0]
            h = max(d for d in range(1, n + 1) if n % d == 0 and d * d <= n)
            s.shape = [h, n // h, s.shape[1]]
        return [dict(kind="reshape", name=s.name("reshape"), shape=tuple(s.shape))]
    if kind == "pad":
        pad = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
        s.shape = [n + a + b for n, (a, b) in zip(s.spatial, pad)] + [s.shape[-1]]
        return [dict(kind="pad", name=s.name("pad"), pad=pad[0] if rank == 1 else pad)]
    if kind == "crop":
        if min(s.spatial) < 3:
            return []
        crop = tuple((draw(st.integers(0, 1)), draw(st.integers(0, 1))) for _ in range(rank))
        s.shape = [n - a - b for n, (a, b) in zip(s.spatial, crop)] + [s.shape[-1]]
        return [dict(kind="crop", name=s.name("crop"), crop=crop[0] if rank == 1 else crop)]
    if kind == "up":
        if max(s.spatial) > 5:
            return []
        size = tuple(draw(st.integers(1, 2)) for _ in range(rank))
        s.shape = [n * f for n, f in zip(s.spatial, size)] + [s.shape[-1]]
        return [dict(kind="up", name=s.name("up"), size=size[0] if rank == 1 else size)]
    mode = draw(st.sampled_from(["max", "average"]))
    pool = _window(draw, s, 3)
    strides = tuple(draw(st.integers(1, p)) for p in pool)
    padding = draw(st.sampled_from(["valid", "same"]))
    if s.stream:
        strides, padding = pool, "valid"
    s.shape = [out_size(n, p, st_, padding) for n, p, st_ in zip(s.spatial, pool, strides)] + [s.shape[-1]]
    return [dict(kind="pool", name=s.name("pool"), mode=mode, pool=pool, strides=strides, padding=padding)]


def _skip(draw, s: _State) -> list:
    merge = draw(st.sampled_from(["add", "add", "concat", "concat", "subtract", "multiply", "average", "maximum",
                                  "minimum"]))
    c = s.shape[-1]
    inner = _State(draw, s.shape, s.stream)
    inner.float = s.float
    inner.k, inner.unquantized = s.k + 100, s.unquantized
    kind = draw(st.sampled_from(["conv", "conv", "sep"] + (["dw"] if merge != "concat" else [])))
    branch = _conv(draw, inner, kind=kind, same_shape=True, filters=None if merge == "concat" else c)
    s.k = inner.k
    if merge == "concat":
        s.shape = s.shape[:-1] + [c + inner.shape[-1]]
    s.unquantized = max(s.unquantized, inner.unquantized) + 1
    out = [dict(kind="skip", name=s.name("merge"), merge=merge, branch=branch)]
    if s.unquantized >= 2:
        out.append(_activation(draw, s))
    return out


@st.composite
def mixed_specs(draw, stream=None):
    seed = draw(st.integers(0, 2 ** 31 - 1))
    ib = draw(st.integers(4, 8))
    io = draw(st.sampled_from(["parallel", "parallel", "stream"])) if stream is None else (
        "stream" if stream else "parallel")
    simple = io == "stream" and draw(st.booleans())     # half the time only ops io_stream has
    rank = 2 if simple else draw(st.sampled_from([1, 2]))
    shape = tuple(draw(st.integers(3, 7)) for _ in range(rank)) + (draw(st.integers(1, 3)),)
    spec = MixedSpec(input_shape=shape, input_bits=ib, input_int=draw(st.integers(1, min(4, ib - 1))),
                     io_type=io, strategy=draw(st.sampled_from(["latency", "resource"])), seed=seed)
    s = _State(draw, shape, io == "stream")
    s.float = spec.float_model = draw(st.integers(0, 5)) == 0
    s.simple = simple
    layers: list = []
    for _ in range(draw(st.integers(1, 4))):
        if simple:
            kind = draw(st.sampled_from(["conv", "conv", "pool"]))
        else:
            kind = draw(st.sampled_from(["conv", "conv", "dw", "sep", "spatial", "spatial", "skip", "act"]))
        if kind in ("conv", "dw", "sep"):
            layers += _conv(draw, s, kind)
        elif kind == "pool":
            if min(s.spatial) >= 2:
                mode = draw(st.sampled_from(["max", "average"]))
                layers.append(dict(kind="pool", name=s.name("pool"), mode=mode, pool=(2, 2), strides=(2, 2),
                                   padding="valid"))
                s.shape = [n // 2 for n in s.spatial] + [s.shape[-1]]
        elif kind == "spatial":
            layers += _spatial_layer(draw, s)
        elif kind == "skip":
            layers += _skip(draw, s)
        else:
            layers.append(_activation(draw, s))
        if min(s.spatial) < 1 or any(n > 12 for n in s.spatial):
            # sizes drawn out of range: fall back to a single convolution on the input
            s = _State(draw, shape, io == "stream")
            s.float, s.simple = spec.float_model, simple
            layers = _conv(draw, s, "conv", same_shape=True)
    head = "flatten" if simple else draw(st.sampled_from(["flatten", "gpool"]))
    if head == "gpool":
        mode = draw(st.sampled_from(["max", "average"]))
        layers.append(dict(kind="gpool", name=s.name("gpool"), mode=mode, size=int(np.prod(s.spatial))))
        n = s.shape[-1]
    else:
        layers.append(dict(kind="flatten", name=s.name("flat")))
        n = int(np.prod(s.shape))
    if s.unquantized >= 1 and not simple:
        layers.append(_activation(draw, s))
    quantized = draw(st.integers(0, 4)) > 0 and not s.float
    units = draw(st.integers(1, 6))
    layers.append(dict(kind="dense", name=s.name("fc"), units=units, bias=draw(st.booleans()),
                       quant=_weight_quant(draw, not s.simple) if quantized else None, bq=_bias_quant(draw),
                       wfrac=draw(st.integers(0, 3)), reuse=draw(st.sampled_from(valid_reuse_factors(n, units)))))
    end = draw(st.sampled_from([None, None, "softmax"] if simple else [None, None, None, "softmax", "sigmoid"]))
    if end:
        layers.append(dict(kind="act", name=s.name("out"), fn=end))
    spec.layers = layers
    return spec
