"""Train a small QKeras MLP on scikit-learn's bundled digits data set (8x8 images, 10 classes).

Writes the model (.h5) and the held-out test split (inputs scaled to k/16, exactly representable
in the default ap_fixed<16,6> input type) next to it.

    python examples/train_digits_mlp.py --out examples/digits_mlp.h5
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="examples/digits_mlp.h5")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--bits", type=int, default=6)
    args = ap.parse_args()

    import warnings

    import numpy as np
    from fpga_gen.frontend.keras.loader import import_tf   # TensorFlow without its start-up chatter
    tf = import_tf()
    warnings.filterwarnings("ignore", category=UserWarning)
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    tf.keras.utils.set_random_seed(7)
    tf.config.experimental.enable_op_determinism()
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)          # 0..16 -> k/16: exact in ap_fixed<16,6>
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)

    b = args.bits
    q = lambda: quantized_bits(b, 0, alpha=1)  # noqa: E731
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(64,), name="pixels"),
        QDense(32, kernel_quantizer=q(), bias_quantizer=q(), name="fc1"),
        QActivation(quantized_relu(b, 0), name="relu1"),
        QDense(16, kernel_quantizer=q(), bias_quantizer=q(), name="fc2"),
        QActivation(quantized_relu(b, 0), name="relu2"),
        QDense(10, kernel_quantizer=q(), bias_quantizer=q(), name="fc3"),
        tf.keras.layers.Activation("softmax", name="softmax"),
    ], name="digits_mlp")
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=0, validation_split=0.1)
    acc = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    np.save(out.with_name("digits_x_test.npy"), x_test.astype(np.float64))
    np.save(out.with_name("digits_y_test.npy"), y_test)
    print(f"trained {model.name}: QKeras test accuracy {acc * 100:.2f} % on {len(y_test)} samples -> {out}")


if __name__ == "__main__":
    main()
