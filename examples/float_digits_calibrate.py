"""Train a plain (float) Keras MLP on scikit-learn's bundled digits, build it with types calibrated on the
training data, C-simulate the HLS project and compare it with float Keras.

    python examples/float_digits_calibrate.py                     # ~30 s on 2 cores
    python examples/float_digits_calibrate.py --precision 'ap_fixed<10,6>' --headroom-bits 0

The inputs are the raw pixel counts 0..16 (not rescaled), so the hidden values reach well past 32, the range of
the default ap_fixed<16,6>.  ``fpga-gen build --calibrate x_train.npy`` profiles the float model on the
training inputs and gives every input, weight, bias, result and accumulator its integer bits at the
configured width (the table is in the project's report.md).  The script prints the accuracy of float Keras,
of the C-simulated calibrated project and of an uncalibrated build at the same width (emulated), the argmax
agreement with Keras, and exits 1 unless the C-simulation equals the emulator bit for bit.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_model(tf):
    L = tf.keras.layers
    return tf.keras.Sequential([
        L.InputLayer(input_shape=(64,), name="pixels"),
        L.Dense(32, activation="relu", name="fc1"),
        L.Dense(32, activation="relu", name="fc2"),
        L.Dense(10, name="logits"),                      # softmax in the loss: the project outputs logits
    ], name="float_digits")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="hls_projects/float_digits", help="folder for the model, data and project")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--precision", default="ap_fixed<16,6>", help="total width (and the uncalibrated split)")
    ap.add_argument("--headroom-bits", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import fpga_gen
    from fpga_gen import csim as fpga_csim
    from fpga_gen.cli import main as fpga_gen_cli
    from fpga_gen.frontend.keras.loader import import_tf
    from fpga_gen.ir.types import FixedType

    tf = import_tf()
    tf.keras.utils.set_random_seed(11)
    tf.config.experimental.enable_op_determinism()
    digits = load_digits()
    x = digits.data.astype(np.float64)                   # pixel counts 0..16
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)

    model = build_model(tf)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train.astype(np.float32), y_train, epochs=args.epochs, batch_size=32, verbose=0)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model.save(work / "model.h5")
    np.save(work / "x_train.npy", x_train)
    np.save(work / "x_test.npy", x_test)

    # the command line, as a user would run it
    project_dir = work / "hls_project"
    argv = ["build", str(work / "model.h5"), "--calibrate", str(work / "x_train.npy"), "--precision", args.precision,
            "--headroom-bits", str(args.headroom_bits), "--tb-data", str(work / "x_test.npy"), "-o", str(project_dir),
            "--name", "float_digits", "--force"]
    print("$ fpga-gen " + " ".join(f"'{a}'" if "<" in a else a for a in argv))
    rc = fpga_gen_cli(argv)
    if rc != 0:
        return rc

    keras_logits = model.predict(x_test.astype(np.float32), verbose=0).astype(np.float64)
    project = fpga_gen.load_project(project_dir)
    csim = fpga_csim.predict(project_dir, x_test)
    emu = project.predict(x_test, backend="emu")
    plain = fpga_gen.convert(work / "model.h5", precision=args.precision).predict(x_test)   # no calibration

    def acc(v):
        return float(np.mean(v.argmax(1) == y_test))

    def agree(v):
        return float(np.mean(v.argmax(1) == keras_logits.argmax(1)))

    exact = bool(np.array_equal(csim, emu))
    print(f"\n{len(x_test)} test digits, {args.precision}: width {FixedType.parse(args.precision).width}"
          f" bits, headroom {args.headroom_bits} bit(s)")
    print(f"  float Keras                 accuracy {acc(keras_logits) * 100:6.2f} %")
    print(f"  csim, calibrated            accuracy {acc(csim) * 100:6.2f} %   argmax agreement with Keras "
          f"{agree(csim) * 100:6.2f} %   max |logit - Keras| {np.abs(csim - keras_logits).max():.4g}")
    print(f"  emulator, not calibrated    accuracy {acc(plain) * 100:6.2f} %   argmax agreement with Keras "
          f"{agree(plain) * 100:6.2f} %   max |logit - Keras| {np.abs(plain - keras_logits).max():.4g}")
    print(f"  csim == emulator bit for bit: {exact}")
    print(f"  calibration table: {project_dir / 'report.md'}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
