"""Models for the QONNX frontend tests, made in the test (nothing downloaded, nothing committed):

* :func:`random_qonnx`: a random QONNX graph written with onnx.helper (the Quant op of qonnx 1.0): 1-8-bit
  activations (signed, unsigned, narrow, every rounding mode with a fixed-point equivalent, bipolar), 2-8-bit
  weights with per-tensor or per-channel power-of-two scales, quantized, float or no biases, Gemm and Conv
  (padding, strides, max/average pooling, flatten).  The fuzzer of tests/test_qonnx.py.
* :func:`brevitas_mlp` / :func:`brevitas_cnn`: Brevitas modules with fixed-point quantizers, exported with
  ``export_qonnx`` (needs brevitas; seeded).
"""

from __future__ import annotations

import numpy as np

QDOMAIN = "qonnx.custom_op.general"
MODES = ("ROUND", "HALF_EVEN", "FLOOR", "DOWN", "HALF_UP", "HALF_DOWN")


def _make(nodes, inits, in_shape, out_shape, name, opset=13, ir=8):
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, *out_shape])],
        initializer=[numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(QDOMAIN, 1)])
    model.ir_version = ir
    return model


class _Builder:
    def __init__(self, rng, float_scales: bool = False):
        self.rng = rng
        self.float_scales = float_scales
        self.nodes, self.inits, self.k = [], {}, 0
        self.desc = []

    def name(self, base):
        self.k += 1
        return f"{base}{self.k}"

    def const(self, base, v):
        n = self.name(base)
        self.inits[n] = np.asarray(v, dtype=np.float32)
        return n

    def node(self, op, inputs, domain="", **attrs):
        from onnx import helper
        out = self.name(op.lower() + "_out")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), domain=domain, **attrs))
        return out

    def _f(self, s):
        """A power-of-two scale, or with float_scales a float32 near it."""
        return s * float(self.rng.uniform(0.55, 1.45)) if self.float_scales else s

    def quant(self, x, frac, bits, signed, narrow=False, mode="ROUND", scale=None):
        s = scale if scale is not None else self._f(2.0 ** -frac)
        return self.node("Quant", [x, self.const("s", s), self.const("z", 0.0), self.const("b", float(bits))],
                         domain=QDOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode=mode)

    def act_quant(self, x, relu: bool):
        r = self.rng
        bits = int(r.integers(2 if self.float_scales else 1, 9))
        signed = not relu and bits > 1 or (not relu and r.random() < 0.5)
        narrow = bool(r.random() < 0.3) and bits > 1
        mode = str(r.choice(MODES))
        frac = int(bits - r.integers(0, 3) - (1 if signed else 0))
        self.desc.append(f"act {'s' if signed else 'u'}{bits}f{frac}{'n' if narrow else ''}{mode[:5]}")
        return self.quant(x, frac, bits, signed, narrow, mode)

    def weights(self, shape, per_channel: bool, bits: int):
        r = self.rng
        w = r.normal(0, 0.5, size=shape)
        n_out = shape[0]
        if per_channel:
            fr = r.integers(bits - 3, bits + 1, size=n_out).astype(float)
            scale = np.array([self._f(2.0 ** -f) for f in fr]).reshape((n_out,) + (1,) * (len(shape) - 1))
        else:
            scale = self._f(2.0 ** -float(r.integers(bits - 3, bits + 1)))
        narrow = bool(r.random() < 0.5)
        self.desc.append(f"w{bits}{'pc' if per_channel else 'pt'}{'n' if narrow else ''}")
        return self.node("Quant", [self.const("w", w), self.const("ws", scale), self.const("z", 0.0),
                                   self.const("b", float(bits))], domain=QDOMAIN, signed=1, narrow=int(narrow),
                         rounding_mode="ROUND")

    def bias(self, n_out, kind):
        r = self.rng
        b = r.normal(0, 0.5, size=n_out)
        self.desc.append(f"bias:{kind}")
        if kind == "none":
            return None
        if kind == "float":
            return self.const("bias", b)
        return self.node("Quant", [self.const("bias", b), self.const("bs", 2.0 ** -8), self.const("z", 0.0),
                                   self.const("b", 16.0)], domain=QDOMAIN, signed=1, narrow=0, rounding_mode="ROUND")


def random_qonnx(seed: int, kind: str = "linear", bias: str | None = None, float_scales: bool = False):
    """A random QONNX model (ModelProto) and a description.  kind: 'linear' or 'conv'; bias: 'quant' | 'float' |
    'none' (random when None).  Every Quant has a power-of-two scale, so fpga-gen is exact; accumulators stay
    below 2**24 so execute_onnx's float32 is exact too (a float bias excepted: see test_qonnx).  float_scales:
    every scale a float32 between 0.55 and 1.45 times a power of two (Brevitas' default quantizers), 2-8-bit
    activations, no average pooling (it takes real values; fpga-gen refuses nothing there but it is not what
    this profile tests), biases float or none."""
    r = np.random.default_rng(seed)
    bld = _Builder(r, float_scales)
    bias_kind = bias or str(r.choice(["float", "none"] if float_scales else ["quant", "float", "none"]))
    if kind == "linear":
        in_shape = (int(r.integers(3, 17)),)
    else:
        in_shape = (int(r.integers(1, 4)), int(r.integers(4, 8)), int(r.integers(4, 8)))
    in_bits = int(r.integers(2, 9))
    x = bld.quant("x", int(in_bits - 1 - r.integers(0, 3)), in_bits, True, bool(r.random() < 0.3),
                  str(r.choice(MODES)))
    shape = in_shape
    if kind == "conv":
        c, h, w = shape
        f = int(r.integers(1, 5))
        k = int(r.integers(1, 4))
        s = int(r.integers(1, 3))
        p = int(r.integers(0, k))
        wq = bld.weights((f, c, k, k), bool(r.random() < 0.5), int(r.integers(2, 9)))
        inputs = [x, wq]
        b = bld.bias(f, bias_kind)
        if b is not None:
            inputs.append(b)
        x = bld.node("Conv", inputs, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        bld.desc.append(f"conv{f}x{k}s{s}p{p}")
        relu = bool(r.random() < 0.7)
        if relu:
            x = bld.node("Relu", [x])
        x = bld.act_quant(x, relu)
        shape = (f, oh, ow)
        if oh >= 2 and ow >= 2 and r.random() < 0.6:
            pool = "MaxPool" if float_scales else str(r.choice(["MaxPool", "AveragePool"]))
            x = bld.node(pool, [x], kernel_shape=[2, 2], strides=[2, 2])
            shape = (f, oh // 2, ow // 2)
            bld.desc.append(pool)
        x = bld.node("Flatten", [x], axis=1)
        shape = (int(np.prod(shape)),)
    n_layers = int(r.integers(1, 3))
    for k in range(n_layers):
        n_in = shape[0]
        n_out = int(r.integers(2, 13))
        wq = bld.weights((n_out, n_in), bool(r.random() < 0.5), int(r.integers(2, 9)))
        b = bld.bias(n_out, bias_kind)
        inputs = [x, wq] + ([b] if b is not None else [])
        x = bld.node("Gemm", inputs, transB=1)
        shape = (n_out,)
        last = k == n_layers - 1
        if not last or r.random() < 0.5:
            relu = bool(r.random() < 0.6)
            if relu:
                x = bld.node("Relu", [x])
            x = bld.act_quant(x, relu)
    bld.nodes[-1].output[0] = "y"
    return _make(bld.nodes, bld.inits, in_shape, shape, f"rand{seed}"), " ".join(bld.desc)


# ---------------------------------------------------------------------------------------------- Brevitas
def brevitas_mlp(seed: int = 0, n_in: int = 64, hidden: int = 16, n_out: int = 10, w_bits: int = 8,
                 a_bits: int = 8, bias_quant: str = "int16"):
    """QuantIdentity -> QuantLinear -> QuantReLU -> QuantLinear with fixed-point (power-of-two) quantizers."""
    import torch
    import brevitas.nn as qnn
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias,
                                Uint8ActPerTensorFixedPoint, Int8Bias)
    torch.manual_seed(seed)
    bq = {"int16": Int16Bias, "int8": Int8Bias, "float": None}[bias_quant]
    layers = [
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True),
        qnn.QuantLinear(n_in, hidden, bias=True, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=w_bits,
                        bias_quant=bq, return_quant_tensor=True),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True),
        qnn.QuantLinear(hidden, n_out, bias=True, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=w_bits,
                        bias_quant=bq, return_quant_tensor=False),
    ]
    return torch.nn.Sequential(*layers).eval()


def brevitas_cnn(seed: int = 0, channels: int = 1, size: int = 8, n_out: int = 10, w_bits: int = 8,
                 a_bits: int = 8, per_channel: bool = False):
    """QuantIdentity -> QuantConv2d(pad 1) -> QuantReLU -> MaxPool2d -> Flatten -> QuantLinear (fixed point)."""
    import torch
    import brevitas.nn as qnn
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias,
                                Uint8ActPerTensorFixedPoint)
    from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
    torch.manual_seed(seed)
    wq = Int8WeightPerChannelFixedPoint if per_channel else Int8WeightPerTensorFixedPoint
    f = 4
    layers = [
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True),
        qnn.QuantConv2d(channels, f, 3, padding=1, weight_quant=wq, weight_bit_width=w_bits, bias_quant=Int16Bias,
                        return_quant_tensor=True),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=a_bits, return_quant_tensor=True),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        qnn.QuantLinear(f * (size // 2) ** 2, n_out, bias=True, weight_quant=wq, weight_bit_width=w_bits,
                        bias_quant=Int16Bias, return_quant_tensor=False),
    ]
    return torch.nn.Sequential(*layers).eval()


def export_brevitas(module, in_shape, path, calib=None, dynamo=False):
    """Run a calibration batch through the module (Brevitas' fixed-point activation scales depend on the data
    seen in training mode), then export_qonnx to ``path``."""
    import torch
    from brevitas.export import export_qonnx
    g = torch.Generator().manual_seed(1)
    x = calib if calib is not None else torch.rand((32,) + tuple(in_shape), generator=g) * 2 - 0.5
    module.train()
    with torch.no_grad():
        module(torch.as_tensor(x, dtype=torch.float32))
    module.eval()
    # dynamo=False: the TorchScript exporter (0.3 s; IR 9, opset 20 here); dynamo=True: torch.export (~15 s; IR 10,
    # opset 20), torch 2.13's default
    export_qonnx(module, torch.zeros((1,) + tuple(in_shape)), export_path=str(path), dynamo=dynamo)
    return path
