"""Train a small QKeras CNN on scikit-learn's bundled digits (8x8x1 images, 10 classes), convert it,
C-simulate the generated HLS project and check that it classifies exactly like QKeras.

    python examples/train_digits_cnn.py                # ~1 minute on 2 cores
    python examples/train_digits_cnn.py --epochs 40 --out examples/digits_cnn.h5 --project hls_projects/digits_cnn

The model ends in logits (softmax is in the loss), so QKeras, the emulator and the C++ compute the same
numbers bit for bit: Conv2D(same) -> quantized_relu -> MaxPooling2D -> Conv2D(valid) -> quantized_relu ->
AveragePooling2D -> Flatten -> Dense.  Inputs are k/16, exact in ap_ufixed<5,1>.  Exits 1 if the C-simulation
differs from the emulator or its accuracy from QKeras'.
"""

import sys

from _common import run_digits_example   # sets TF_USE_LEGACY_KERAS; the train -> convert -> csim -> compare part


def build_model(bits: int = 6):
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

    q = lambda: quantized_bits(bits, 0, alpha=1)  # noqa: E731
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(8, 8, 1), name="image"),
        QConv2D(8, (3, 3), padding="same", kernel_quantizer=q(), bias_quantizer=q(), name="conv1"),
        QActivation(quantized_relu(bits, 2), name="relu1"),
        tf.keras.layers.MaxPooling2D((2, 2), name="pool1"),
        QConv2D(16, (3, 3), padding="valid", kernel_quantizer=q(), bias_quantizer=q(), name="conv2"),
        QActivation(quantized_relu(bits, 2), name="relu2"),
        tf.keras.layers.AveragePooling2D((2, 2), name="pool2"),
        tf.keras.layers.Flatten(name="flatten"),
        QDense(10, kernel_quantizer=q(), bias_quantizer=q(), name="logits"),
    ], name="digits_cnn")


if __name__ == "__main__":
    sys.exit(run_digits_example(build_model, "digits_cnn"))
