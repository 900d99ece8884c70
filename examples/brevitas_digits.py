"""PyTorch users' path: train a small Brevitas MLP (fixed-point quantizers) on scikit-learn's bundled digits,
export it with brevitas.export.export_qonnx, build the HLS project from the .onnx, C-simulate it and compare it
with qonnx's execute_onnx.  Then the same for a plain float PyTorch MLP through torch.onnx.export and
``--calibrate`` (types from the observed ranges).

    python examples/brevitas_digits.py                  # ~1-2 min on 2 cores (needs torch, brevitas, onnx, qonnx)

Exits 1 unless, on the test set, csim == emulator == execute_onnx bit for bit for the fixed-point Brevitas
model, csim == emulator and argmax agreement >= 99.8 % with execute_onnx for Brevitas' default (float-scale)
quantizers, and csim == emulator for the float one.
"""

import argparse
import sys
from pathlib import Path


def brevitas_model(bits: int):
    import torch
    import brevitas.nn as qnn
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias,
                                Uint8ActPerTensorFixedPoint)
    w = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits, bias_quant=Int16Bias)
    return torch.nn.Sequential(
        # the input quantizer: pixels k/16 in [0, 1] are exact in an 8-bit signed fixed-point type
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8, return_quant_tensor=True),
        qnn.QuantLinear(64, 32, bias=True, return_quant_tensor=True, **w),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits, return_quant_tensor=True),
        qnn.QuantLinear(32, 32, bias=True, return_quant_tensor=True, **w),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits, return_quant_tensor=True),
        qnn.QuantLinear(32, 10, bias=True, return_quant_tensor=False, **w),     # logits
    )


def brevitas_default_model():
    """Brevitas' default quantizers: float (non-power-of-two) scales, float biases: FINN-style integer codes and
    per-channel thresholds on the FPGA (docs/qonnx.md)."""
    import torch
    import brevitas.nn as qnn
    return torch.nn.Sequential(
        qnn.QuantIdentity(return_quant_tensor=True),                       # Int8ActPerTensorFloat
        qnn.QuantLinear(64, 32, bias=True, return_quant_tensor=True),      # Int8WeightPerTensorFloat, float bias
        qnn.QuantReLU(return_quant_tensor=True),                           # Uint8ActPerTensorFloat
        qnn.QuantLinear(32, 10, bias=True, return_quant_tensor=False),     # float logits
    )


def train(model, x, y, epochs: int, lr: float = 3e-3):
    import torch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for k in range(0, len(xt), 32):
            idx = perm[k:k + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="hls_projects/brevitas_digits", help="folder for the models and projects")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--bits", type=int, default=6)
    args = ap.parse_args()

    import numpy as np
    import torch
    from brevitas.export import export_qonnx
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import fpga_gen
    from fpga_gen import csim as fpga_csim

    torch.manual_seed(7)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ok = True

    # ---- Brevitas, fixed-point quantizers: exact
    model = train(brevitas_model(args.bits), x_train, y_train, args.epochs)
    onnx_path = work / "brevitas_mlp.onnx"
    export_qonnx(model, torch.zeros(1, 64), export_path=str(onnx_path), dynamo=False)
    project = fpga_gen.convert(str(onnx_path), tb_inputs=x_test[:100], name="brevitas_mlp")
    project.write(work / "brevitas_mlp", force=True)
    emu = project.predict(x_test)
    ref = project.model.predict(x_test)                        # qonnx execute_onnx
    csim = fpga_csim.predict(work / "brevitas_mlp", x_test)
    with torch.no_grad():
        torch_logits = model(torch.as_tensor(x_test)).numpy()
    print(project.graph.summary())
    acc = {k: float(np.mean(v.argmax(1) == y_test)) for k, v in
           (("Brevitas (PyTorch)", torch_logits), ("execute_onnx", ref), ("emulator", emu), ("C-simulation", csim))}
    for k, v in acc.items():
        print(f"{k + ' accuracy':<32}{v * 100:.2f} %")
    print(f"emulator == execute_onnx (bitwise) {np.array_equal(emu, ref)}")
    print(f"csim == emulator (bitwise)         {np.array_equal(csim, emu)}")
    ok &= bool(np.array_equal(emu, ref) and np.array_equal(csim, emu))

    # ---- Brevitas' default (float-scale) quantizers: integer codes + thresholds, float logits within float32
    dmodel = train(brevitas_default_model(), x_train, y_train, args.epochs)
    default_path = work / "brevitas_default.onnx"
    export_qonnx(dmodel, torch.zeros(1, 64), export_path=str(default_path), dynamo=False)
    # the pixels k/16 are exact in ap_ufixed<5,1>: the first Quant's float32 thresholds see the true inputs
    dproject = fpga_gen.convert(str(default_path), input_precision="ap_ufixed<5,1>", tb_inputs=x_test[:100],
                                name="brevitas_default")
    dproject.write(work / "brevitas_default", force=True)
    demu = dproject.predict(x_test)
    dref = dproject.model.predict(x_test)
    dcsim = fpga_csim.predict(work / "brevitas_default", x_test)
    agree = float(np.mean(demu.argmax(1) == dref.argmax(1)))
    print(f"default quantizers: execute_onnx accuracy {np.mean(dref.argmax(1) == y_test) * 100:.2f} %, "
          f"csim {np.mean(dcsim.argmax(1) == y_test) * 100:.2f} %, argmax agreement {agree * 100:.2f} %, "
          f"max |logit diff| {np.abs(demu - dref).max():.3g}")
    print(f"csim == emulator (bitwise)         {np.array_equal(dcsim, demu)}")
    ok &= bool(np.array_equal(dcsim, demu) and agree >= 0.998)

    # ---- plain float PyTorch through torch.onnx.export, types calibrated on the training inputs
    fmodel = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    train(fmodel, x_train, y_train, args.epochs)
    float_path = work / "float_mlp.onnx"
    torch.onnx.export(fmodel, torch.zeros(1, 64), str(float_path), dynamo=False, opset_version=13)
    np.save(work / "x_train.npy", x_train)
    fproject = fpga_gen.convert(str(float_path), calibrate=str(work / "x_train.npy"), name="float_mlp")
    fproject.write(work / "float_mlp", force=True)
    femu = fproject.predict(x_test)
    fcsim = fpga_csim.predict(work / "float_mlp", x_test)
    with torch.no_grad():
        flogits = fmodel(torch.as_tensor(x_test)).numpy()
    print(f"float PyTorch accuracy          {np.mean(flogits.argmax(1) == y_test) * 100:.2f} %")
    print(f"calibrated csim accuracy        {np.mean(fcsim.argmax(1) == y_test) * 100:.2f} %")
    print(f"argmax agreement with PyTorch   {np.mean(fcsim.argmax(1) == flogits.argmax(1)) * 100:.2f} %")
    print(f"csim == emulator (bitwise)      {np.array_equal(fcsim, femu)}")
    ok &= bool(np.array_equal(fcsim, femu))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
