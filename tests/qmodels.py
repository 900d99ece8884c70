"""Small QKeras models made in the tests (never downloaded)."""

from __future__ import annotations

import numpy as np


def qmlp(sizes, bits=6, integer=0, act="quantized_relu", softmax=False, seed=0, input_quant=False,
         act_bits=None, act_integer=None, name="qmlp"):
    """A QKeras MLP sizes[0] -> ... -> sizes[-1] with random weights.

    act: 'quantized_relu' | 'relu' | 'linear' | 'quantized_bits' between layers (none after the last).
    """
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    ab = bits if act_bits is None else act_bits
    ai = integer if act_integer is None else act_integer
    layers = [tf.keras.layers.InputLayer(input_shape=(sizes[0],), name="x")]
    for k, n in enumerate(sizes[1:]):
        layers.append(QDense(n, kernel_quantizer=quantized_bits(bits, integer, alpha=1),
                             bias_quantizer=quantized_bits(bits, integer, alpha=1),
                             kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                             bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5),
                             name=f"dense_{k}"))
        if k < len(sizes) - 2:
            if act == "quantized_relu":
                layers.append(QActivation(quantized_relu(ab, ai), name=f"act_{k}"))
            elif act == "quantized_bits":
                layers.append(QActivation(quantized_bits(ab, ai, alpha=1), name=f"act_{k}"))
            elif act == "relu":
                layers.append(tf.keras.layers.Activation("relu", name=f"act_{k}"))
    if softmax:
        layers.append(tf.keras.layers.Activation("softmax", name="softmax"))
    return tf.keras.Sequential(layers, name=name)


def grid_inputs(n, n_in, frac_bits=4, lo=-2.0, hi=2.0, seed=1):
    """Random inputs on a 2**-frac_bits grid: exactly representable in ap_fixed<16,6> and in float32."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=(n, n_in))
    return np.round(x * 2 ** frac_bits) / 2 ** frac_bits


def qbits(bits=6, integer=0):
    """QKeras ``quantized_bits(bits, integer, alpha=1)``: the layer tests' weight and activation quantizer."""
    from qkeras import quantized_bits
    return quantized_bits(bits, integer, alpha=1)


def uniform_init(lo=-1.0, hi=1.0):
    """A Keras ``RandomUniform(lo, hi)`` initializer (weights that use the quantizer's whole range)."""
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf().keras.initializers.RandomUniform(lo, hi)


def grid_images(n, shape, frac_bits=4, lo=-4.0, hi=4.0, seed=1):
    """``n`` random inputs of ``shape`` (an image or a sequence) on a 2**-frac_bits grid: exact in float32 and in
    the layer tests' ap_fixed<12,4> input type."""
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(lo, hi, size=(n,) + tuple(shape)) * 2 ** frac_bits) / 2 ** frac_bits


def one_layer_model(layer, shape):
    """A Sequential model: an input of ``shape`` named 'inp', then ``layer`` (for the frontend's error tests)."""
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=shape, name="inp"), layer])
