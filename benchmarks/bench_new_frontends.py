"""fpga-gen on an HGQ2 model and a Brevitas (QONNX) model, against the framework's own inference, in one run.

    python benchmarks/bench_new_frontends.py [--repeat 3] [--batch 10000] [--onnx-samples 300] [--no-write]

Models:

* **hgq2 jet**: a 16-64-32-32-5 MLP of HGQ2 ``QDense`` layers (relu, relu, relu, linear), trained 3 epochs on
  seeded synthetic 5-class "jet" data, then its bit widths moved as longer training with a resource penalty
  moves them (``roughen`` of tests/data/hgq2/make_refs.py: heterogeneous per-element widths, some 0), saved as a
  Keras 3 ``.keras`` archive.  HGQ2 (hgq2 0.2, TensorFlow 2.21) lives in a venv of its own
  (``HGQ2_PYTHON``, default /work/venvs/hgq2/bin/python; hgq2 installs a ``qkeras`` package of its own, so it never
  enters fpga-gen's venv): this script runs itself there with ``--hgq2-side DIR``, which makes the model, the
  inputs (uniform in [-4, 4) on the grid 1/64: exact in float32 and in fpga-gen's default input type) and times
  HGQ2's ``model.predict`` on them (batch_size 32, Keras' default, and batch_size = the whole batch), writing the
  archive, the inputs, HGQ2's outputs and the timings to DIR.
* **brevitas mlp**: the Brevitas MLP of examples/brevitas_digits.py (64-32-32-10, 6-bit fixed-point weights
  and activations, Int16Bias), trained 5 epochs on scikit-learn's digits and exported by ``export_qonnx``;
  inputs: the digits images (k/16), repeated to the batch.  The framework's own inference is qonnx's
  ``execute_onnx`` on the exported model, which runs one sample per call (the export has batch 1): it is timed
  on ``--onnx-samples`` samples and its throughput scaled from those; its outputs are compared on those samples.

Per model, in this process: conversion (``fpga_gen.convert`` + ``Project.write``; median of ``--repeat``), the
numpy emulator (``Project.predict(x, backend="emu")``) and the native library (``backend="native"``: the
generated C++ built with ``-DFPGA_GEN_NATIVE``; its first call builds it, timed apart) at batch ``--batch``
(medians of ``--repeat``), the framework's throughput, the ratios, and the share of output elements equal
(``==``, elementwise) to the framework's.  hls4ml is not run here (see the printed reason).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
HGQ2_PYTHON = os.environ.get("HGQ2_PYTHON", "/work/venvs/hgq2/bin/python")
SECTION = "## New frontends: HGQ2 and Brevitas/QONNX (issue #19)"
HLS4ML_SKIP = ("hls4ml skipped: hls4ml 1.3 reads an HGQ2 0.2 model only through Keras 3 with HGQ2 itself (`hgq`) "
               "installed in hls4ml's environment; benchmarks/.hls4ml-venv holds TensorFlow 2.14 / Keras 2 and no hgq, "
               "and hgq2 cannot join fpga-gen's venv (its `qkeras` package replaces QKeras 0.9)")


def median_time(fn, repeat: int):
    """(median wall seconds, median process CPU seconds, last result)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return float(np.median(walls)), float(np.median(cpus)), out


# ---------------------------------------------------------------------------- the HGQ2 side (hgq2 venv)
def hgq2_side(out: Path, batch: int, repeat: int) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import keras
    from hgq import layers as L
    sys.path.insert(0, str(ROOT / "tests" / "data" / "hgq2"))
    from make_refs import quantizers, roughen

    keras.utils.set_random_seed(19)
    rng = np.random.default_rng(19)
    # synthetic jets: 5 classes, 16 features, class means apart, unit noise
    centers = rng.normal(0, 1.5, (5, 16))
    labels = rng.integers(0, 5, 4096)
    xt = (centers[labels] + rng.normal(0, 1, (4096, 16))).astype(np.float32)

    inp = keras.Input((16,))
    h = inp
    for k, n in enumerate((64, 32, 32)):
        h = L.QDense(n, activation="relu", beta0=1e-5, name=f"fc{k + 1}")(h)
    h = L.QDense(5, beta0=1e-5, name="out")(h)
    model = keras.Model(inp, h, name="jet")
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(xt, labels, epochs=3, batch_size=64, verbose=0)
    roughen(model, np.random.default_rng(19))
    bare = model.__class__.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    path = out / "jet.keras"
    bare.save(path)
    m = keras.saving.load_model(path, compile=False)

    x = (np.floor(rng.uniform(-4, 4, (batch, 16)) * 64) / 64).astype(np.float32)
    m.predict(x[:64], verbose=0)
    res = {"keras": keras.__version__}
    import hgq
    import tensorflow as tf
    res["hgq2"], res["tensorflow"] = getattr(hgq, "__version__", "0.2"), tf.__version__
    for bs in (32, batch):
        m.predict(x[:bs], batch_size=bs, verbose=0)
        w, c, y = median_time(lambda: m.predict(x, batch_size=bs, verbose=0), repeat)
        res[f"predict_bs{bs}_s"], res[f"predict_bs{bs}_cpu_s"] = w, c
    widths = np.concatenate([np.ravel(sum(np.asarray(v) for v in q.kif)) for q in quantizers(m)])
    res["bits_min"], res["bits_max"] = int(widths.min()), int(widths.max())
    res["bits_zero"], res["bits_n"] = int(np.sum(widths <= 0)), int(widths.size)
    res["bits_distinct"] = int(len(np.unique(widths)))
    np.save(out / "x.npy", x.astype(np.float64))
    np.save(out / "y.npy", np.asarray(y, dtype=np.float64))
    (out / "hgq2.json").write_text(json.dumps(res, indent=1))


# ---------------------------------------------------------------------------- fpga-gen side
def measure_fpga_gen(path: Path, x: np.ndarray, work: Path, repeat: int, **convert_kw) -> dict:
    import fpga_gen
    r: dict = {}
    t = time.perf_counter()
    project = fpga_gen.convert(str(path), **convert_kw)
    r["convert_first_s"] = time.perf_counter() - t            # the first model of its kind in the process

    def convert_write():
        p = fpga_gen.convert(str(path), **convert_kw)
        p.write(work / f"prj_{path.stem}", force=True)
        return p
    r["convert_write_s"], _, project = median_time(convert_write, repeat)
    r["convert_s"], _, _ = median_time(lambda: fpga_gen.convert(str(path), **convert_kw), repeat)
    project.predict(x[:8], backend="emu")
    r["emu_s"], r["emu_cpu_s"], emu = median_time(lambda: project.predict(x, backend="emu"), repeat)
    saved = os.environ.get("FPGA_GEN_CACHE_DIR")
    os.environ["FPGA_GEN_CACHE_DIR"] = str(work / f"cache_{path.stem}")     # an empty cache: a cold build
    try:
        t = time.perf_counter()
        project.predict(x[:8], backend="native")
        r["native_build_s"] = time.perf_counter() - t
        r["native_s"], r["native_cpu_s"], nat = median_time(lambda: project.predict(x, backend="native"), repeat)
    finally:
        if saved is None:
            os.environ.pop("FPGA_GEN_CACHE_DIR", None)
        else:
            os.environ["FPGA_GEN_CACHE_DIR"] = saved
    r["native_same"] = bool(np.array_equal(nat, emu))
    r["summary"] = project.graph.summary()
    return r, emu


def run_hgq2(work: Path, batch: int, repeat: int) -> dict:
    side = work / "hgq2"
    side.mkdir()
    if not Path(HGQ2_PYTHON).is_file():
        raise SystemExit(f"HGQ2 venv missing ({HGQ2_PYTHON}): python3 -m venv /work/venvs/hgq2 && "
                         "/work/venvs/hgq2/bin/pip install hgq2==0.2.0 'tensorflow==2.21.*' scikit-learn")
    t = time.perf_counter()
    subprocess.run([HGQ2_PYTHON, __file__, "--hgq2-side", str(side), "--batch", str(batch), "--repeat", str(repeat)],
                   check=True)
    print(f"  hgq2 side: {time.perf_counter() - t:.1f} s", flush=True)
    h = json.loads((side / "hgq2.json").read_text())
    x, y = np.load(side / "x.npy"), np.load(side / "y.npy")
    r, emu = measure_fpga_gen(side / "jet.keras", x, work, repeat)
    r["framework"] = h
    r["batch"] = batch
    r["fw_s"], r["fw_cpu_s"] = h[f"predict_bs{batch}_s"], h[f"predict_bs{batch}_cpu_s"]
    r["fw32_s"], r["fw32_cpu_s"] = h["predict_bs32_s"], h["predict_bs32_cpu_s"]
    r["fw_n"] = batch
    r["equal"] = float(np.mean(emu == y))
    r["rows_equal"] = float(np.mean(np.all(emu == y, axis=1)))
    r["argmax_equal"] = float(np.mean(emu.argmax(1) == y.argmax(1)))
    return r


def run_brevitas(work: Path, batch: int, repeat: int, onnx_samples: int) -> dict:
    import torch
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from sklearn.datasets import load_digits
    sys.path.insert(0, str(ROOT / "examples"))
    from brevitas_digits import brevitas_model, train

    torch.manual_seed(7)
    d = load_digits()
    xd = (d.data / 16.0).astype(np.float32)
    model = train(brevitas_model(6), xd, d.target.astype(np.int64), epochs=5)
    path = work / "brevitas_mlp.onnx"
    export_qonnx(model, torch.zeros(1, 64), export_path=str(path), dynamo=False)
    x = np.resize(xd, (batch, 64)).astype(np.float64)
    r, emu = measure_fpga_gen(path, x, work, repeat)

    # qonnx execute_onnx on the exported model (shapes inferred), one sample per call (its batch dimension is 1)
    from qonnx.transformation.infer_shapes import InferShapes
    mw = ModelWrapper(str(path)).transform(InferShapes())      # execute_onnx needs every tensor's shape
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    xs = x[:onnx_samples].astype(np.float32)
    execute_onnx(mw, {iname: xs[:1]})

    def run_all():
        return np.concatenate([np.asarray(execute_onnx(mw, {iname: xs[k:k + 1]})[oname], dtype=np.float64)
                               for k in range(len(xs))])
    w, c, y = median_time(run_all, repeat)
    r["batch"] = batch
    r["fw_n"] = onnx_samples
    r["fw_s"], r["fw_cpu_s"] = w * batch / onnx_samples, c * batch / onnx_samples       # scaled to the batch
    r["equal"] = float(np.mean(emu[:onnx_samples] == y))
    r["rows_equal"] = float(np.mean(np.all(emu[:onnx_samples] == y, axis=1)))
    r["argmax_equal"] = float(np.mean(emu[:onnx_samples].argmax(1) == y.argmax(1)))
    k = min(len(xd), batch)
    r["accuracy"] = float(np.mean(emu[:k].argmax(1) == d.target[:k]))
    import brevitas
    import qonnx
    r["framework"] = {"brevitas": brevitas.__version__, "qonnx": getattr(qonnx, "__version__", "?"),
                      "torch": torch.__version__}
    return r


# ---------------------------------------------------------------------------- report
def fmt_x(a: float, b: float) -> str:
    r = a / b
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x"


def fmt_s(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"


def table(res: dict) -> list[str]:
    h, b = res["hgq2 jet"], res["brevitas mlp"]
    n = h["batch"]
    rows = ["| | HGQ2 jet 16-64-32-32-5 (`.keras`) | Brevitas MLP 64-32-32-10 (QONNX) |", "|---|---|---|"]

    def row(label, f):
        rows.append(f"| {label} | {f(h)} | {f(b)} |")
    row("framework's inference", lambda r: f"HGQ2 `model.predict`, batch_size {n:,}" if r is h
        else f"qonnx `execute_onnx`, 1 sample/call ({r['fw_n']} timed, scaled)")
    row("fpga-gen convert (first in process)", lambda r: fmt_s(r["convert_first_s"]))
    row("fpga-gen convert + write (median)", lambda r: fmt_s(r["convert_write_s"]))
    row("native C++ build, empty cache", lambda r: fmt_s(r["native_build_s"]))
    row(f"framework throughput (batch {n:,})", lambda r: f"{r['fw_n'] / (r['fw_s'] * r['fw_n'] / n):,.0f}/s")
    rows.append(f"| HGQ2 `model.predict`, batch_size 32 (Keras' default) | {n / h['fw32_s']:,.0f}/s | |")
    row(f"emulator throughput (batch {n:,})", lambda r: f"{n / r['emu_s']:,.0f}/s")
    row("emulator / framework, wall (CPU)", lambda r: f"{fmt_x(r['fw_s'], r['emu_s'])} ({fmt_x(r['fw_cpu_s'], r['emu_cpu_s'])})")
    row(f"native throughput, {os.cpu_count()} threads (batch {n:,})", lambda r: f"{n / r['native_s']:,.0f}/s")
    row("native / framework, wall (CPU)",
        lambda r: f"{fmt_x(r['fw_s'], r['native_s'])} ({fmt_x(r['fw_cpu_s'], r['native_cpu_s'])})")
    rows.append(f"| emulator / HGQ2 predict at batch_size 32, wall | {h['fw32_s'] / h['emu_s']:.0f}x | |")
    row("output elements equal to the framework's (fpga-gen)",
        lambda r: f"{r['equal'] * 100:.2f} % (rows {r['rows_equal'] * 100:.2f} %, of {r['fw_n']:,} samples)")
    row("native == emulator, bit for bit", lambda r: "yes" if r["native_same"] else "NO")
    row("output elements equal (hls4ml 1.3)", lambda r: "not run (below)" if r is h else "n/a")
    return rows


def report(res: dict, args, load0: str, load1: str) -> str:
    import bench_backends as bb
    h, b = res["hgq2 jet"], res["brevitas mlp"]
    hf = h["framework"]
    return "\n".join([
        SECTION, "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `python "
        f"benchmarks/bench_new_frontends.py --repeat {args.repeat} --batch {args.batch} --onnx-samples "
        f"{args.onnx_samples}` (HGQ2 side in /work/venvs/hgq2: hgq2 {hf['hgq2']}, Keras {hf['keras']}, TensorFlow "
        f"{hf['tensorflow']}, CPU; Brevitas {b['framework']['brevitas']}, torch {b['framework']['torch']}). "
        f"Machine: {bb.machine()}; load average {load0} before, {load1} after: **the machine was loaded** (another "
        f"long test run used the cores), so absolute numbers are low and only the ratios of this one run mean much. "
        f"Medians of {args.repeat}; native = `Project.predict(x, backend=\"native\")` on both cores; wall time, "
        "CPU-time ratios in parentheses.",
        "",
        *table(res),
        "",
        f"- HGQ2 jet: 4 `QDense` layers (relu, linear out), `beta0=1e-5`, 3 epochs on seeded synthetic 5-class data, "
        f"then `roughen` (tests/data/hgq2/make_refs.py): {hf['bits_distinct']} distinct quantizer widths "
        f"{hf['bits_min']}..{hf['bits_max']} bits, {hf['bits_zero']} of {hf['bits_n']} elements at 0 bits or fewer. "
        f"Inputs uniform in [-4, 4) on the grid 1/64. Argmax equal to HGQ2's: {h['argmax_equal'] * 100:.2f} %.",
        f"- Brevitas MLP: examples/brevitas_digits.py's model (6-bit `Int8WeightPerTensorFixedPoint`, "
        f"`Uint8ActPerTensorFixedPoint`, `Int16Bias`), 5 epochs on digits; inputs: the 1,797 digits repeated to "
        f"{args.batch:,}. `execute_onnx` runs one sample per call on the exported graph (batch 1): its throughput is "
        f"that of {args.onnx_samples} samples, scaled, and equality is counted on those samples. Emulator accuracy on "
        f"the digits (first min(1,797, batch) rows): {b['accuracy'] * 100:.2f} %.",
        "- The HGQ2 graph has a `fixed_quant` node before each dense layer (HGQ2's per-element input quantizers: "
        "one ap_fixed cast per element). Native runs dense and relu on integer codes but has no integer kernel for "
        "`fixed_quant`, which keeps its ap_fixed code in the native library; HGQ2's own predict is TensorFlow's "
        "batched float32 matrix code. Both keep the margins small here: per CPU second native is "
        f"{fmt_x(h['fw_cpu_s'], h['native_cpu_s'])} and the emulator {fmt_x(h['fw_cpu_s'], h['emu_cpu_s'])} HGQ2's "
        "batched predict in this run.",
        f"- {HLS4ML_SKIP}.",
        "",
    ])


def write_results(text: str) -> None:
    old = RESULTS.read_text()
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        nxt = rest.find("\n## ")
        old = head + (rest[nxt + 1:] if nxt >= 0 else "")
    RESULTS.write_text(old.rstrip("\n") + "\n\n" + text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--onnx-samples", type=int, default=300)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--hgq2-side", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.hgq2_side:
        hgq2_side(Path(args.hgq2_side), args.batch, args.repeat)
        return 0
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    import bench_backends as bb
    load0 = bb.load_average()
    res = {}
    with tempfile.TemporaryDirectory(prefix="fpga_gen_frontends_") as tmp:
        print("[hgq2 jet] ...", flush=True)
        res["hgq2 jet"] = run_hgq2(Path(tmp), args.batch, args.repeat)
        print("[brevitas mlp] ...", flush=True)
        res["brevitas mlp"] = run_brevitas(Path(tmp), args.batch, args.repeat, args.onnx_samples)
    print(HLS4ML_SKIP, flush=True)
    text = report(res, args, load0, bb.load_average())
    print()
    print(text)
    print(res["hgq2 jet"]["summary"])
    if not args.no_write:
        write_results(text)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
