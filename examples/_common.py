"""The part the QKeras digits CNN examples share (train_digits_cnn.py, train_digits_skip.py): parse the
command line, train on scikit-learn's bundled digits (8x8x1 images, inputs k/16), save the .h5, convert it,
C-simulate the written project and compare QKeras, the emulator and the C++.

Each example keeps only its model: ``sys.exit(run_digits_example(build_model, "digits_cnn"))``.  The name
gives the defaults (``--out examples/<name>.h5``, ``--project hls_projects/<name>``) and the project's name.
Imported by the scripts as ``_common`` (a script's folder is first on ``sys.path``); not part of fpga_gen.
"""

import argparse
import os
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_digits_example(build_model: Callable[[int], object], name: str) -> int:
    """Train ``build_model(bits)`` (a model ending in logits), convert, C-simulate, print the comparison.
    Returns 0 when csim == emulator bit for bit and the csim accuracy equals QKeras', else 1."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=f"examples/{name}.h5")
    ap.add_argument("--project", default=f"hls_projects/{name}")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--bits", type=int, default=6)
    args = ap.parse_args()

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import fpga_gen
    from fpga_gen import csim as fpga_csim
    from fpga_gen.frontend.keras.loader import import_tf

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
    project = fpga_gen.convert(out, input_precision="ap_ufixed<5,1>", name=name)
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
