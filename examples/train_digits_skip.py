"""Train a small QKeras functional model with a skip connection on scikit-learn's bundled digits (8x8x1
images, 10 classes), convert it, C-simulate the generated HLS project and check that it classifies exactly
like QKeras.

    python examples/train_digits_skip.py               # ~1 minute on 2 cores
    python examples/train_digits_skip.py --epochs 40 --out examples/digits_skip.h5 --project hls_projects/digits_skip

A tiny conv residual block: Conv2D(same) -> quantized_relu = h; h -> Conv2D(same) -> Add(h) ->
quantized_relu -> MaxPooling2D -> Flatten -> Dense, plus a second branch from the input (a 1x1 Conv2D
projection) concatenated with the block's output channels before the pooling.  The model ends in logits
(softmax is in the loss), so QKeras, the emulator and the C++ compute the same numbers bit for bit.  Inputs
are k/16, exact in ap_ufixed<5,1>.  Exits 1 if the C-simulation differs from the emulator or its accuracy
from QKeras'.
"""

import sys

from _common import run_digits_example   # sets TF_USE_LEGACY_KERAS; the train -> convert -> csim -> compare part


def build_model(bits: int = 6):
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

    L = tf.keras.layers
    q = lambda: dict(kernel_quantizer=quantized_bits(bits, 0, alpha=1),  # noqa: E731
                     bias_quantizer=quantized_bits(bits, 0, alpha=1))
    x = L.Input((8, 8, 1), name="image")
    h = QActivation(quantized_relu(bits, 2), name="relu1")(QConv2D(6, (3, 3), padding="same", name="conv1", **q())(x))
    r = QConv2D(6, (3, 3), padding="same", name="conv2", **q())(h)
    s = QActivation(quantized_relu(bits, 2), name="relu2")(L.Add(name="skip_add")([r, h]))     # the skip connection
    p = QActivation(quantized_relu(bits, 2), name="relu_proj")(QConv2D(2, (1, 1), name="proj", **q())(x))
    c = L.Concatenate(axis=-1, name="concat")([s, p])                                          # 6 + 2 channels
    c = L.MaxPooling2D((2, 2), name="pool")(c)
    y = QDense(10, name="logits", **q())(L.Flatten(name="flatten")(c))
    return tf.keras.Model(x, y, name="digits_skip")


if __name__ == "__main__":
    sys.exit(run_digits_example(build_model, "digits_skip"))
