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

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_model(bits: int = 6):
    from fpga_gen.frontend.loader import import_tf
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="examples/digits_skip.h5")
    ap.add_argument("--project", default="hls_projects/digits_skip")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--bits", type=int, default=6)
    args = ap.parse_args()

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import fpga_gen
    from fpga_gen import csim as fpga_csim
    from fpga_gen.frontend.loader import import_tf

    tf = import_tf()            # quiet TensorFlow start-up

    tf.keras.utils.set_random_seed(7)
    tf.config.experimental.enable_op_determinism()
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]      # 0..16 -> k/16: exact in ap_ufixed<5,1>
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)

    model = build_model(args.bits)
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=0, validation_split=0.1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)

    x_test = x_test.astype(np.float64)
    keras_logits = model.predict(x_test.astype(np.float32), verbose=0).astype(np.float64)
    project = fpga_gen.convert(out, input_precision="ap_ufixed<5,1>", name="digits_skip")
    project.write(args.project, force=True)
    emu = project.predict(x_test, backend="emu")
    csim = fpga_csim.predict(args.project, x_test)
    acc = {k: float(np.mean(v.argmax(1) == y_test)) for k, v in
           (("QKeras", keras_logits), ("emulator", emu), ("C-simulation", csim))}
    print(project.graph.summary())
    print(f"samples                       {len(x_test)}")
    for k, v in acc.items():
        print(f"{k + ' accuracy':<30}{v * 100:.2f} %")
    print(f"emulator == QKeras (bitwise)  {np.array_equal(emu, keras_logits)}")
    print(f"csim == emulator (bitwise)    {np.array_equal(csim, emu)}")
    ok = np.array_equal(csim, emu) and acc["C-simulation"] == acc["QKeras"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
