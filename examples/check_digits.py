"""Compare the generated digits project (C-simulation) with the QKeras model on the test split."""

import argparse
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="examples/digits_mlp.h5")
    ap.add_argument("--project", default="hls_projects/digits_mlp")
    args = ap.parse_args()

    import numpy as np
    import fpga_gen
    from fpga_gen.frontend import load_keras_model

    x = np.load(os.path.join(os.path.dirname(args.model), "digits_x_test.npy"))
    y = np.load(os.path.join(os.path.dirname(args.model), "digits_y_test.npy"))
    model = load_keras_model(args.model)
    keras_prob = model.predict(x, verbose=0)
    project = fpga_gen.load_project(args.project)
    csim = project.predict(x, backend="csim")
    emu = project.predict(x, backend="emu")
    print(f"samples                     {len(x)}")
    print(f"QKeras accuracy             {np.mean(keras_prob.argmax(1) == y) * 100:.2f} %")
    print(f"C-simulation accuracy       {np.mean(csim.argmax(1) == y) * 100:.2f} %")
    print(f"csim == emulator (bitwise)  {np.array_equal(csim, emu)}")
    print(f"argmax agreement with Keras {np.mean(csim.argmax(1) == keras_prob.argmax(1)) * 100:.2f} %")
    print(f"max |softmax diff| vs Keras {np.abs(csim - keras_prob).max():.4f}")
    return 0 if np.array_equal(csim, emu) else 1


if __name__ == "__main__":
    sys.exit(main())
