"""Speed of every fpga-gen back end on two QKeras MLPs, at batch 10,000.

    python benchmarks/bench_backends.py [--repeat 5] [--batch 10000] [--models digits,mlp16]

Models: the digits MLP of examples/ (64-32-16-10, 6-bit; trained by examples/train_digits_mlp.py
when examples/digits_mlp.h5 is missing) and a 16-64-32-32-5 QKeras MLP with 6-bit weights and
activations, made here with random weights; on request (``--models cnn``) the digits CNN of
examples/train_digits_cnn.py (Conv2D, max and average pooling, Dense).  Measured per model:

* convert (Keras file -> typed graph; the first model the process loads, TensorFlow and QKeras
  already imported) and project write (HLS files, testbench vectors, report);
* emulator throughput: numpy (the spec) and the same kernels on PyTorch's CPU back end (and on
  CUDA, the ``gpu`` back end, when a GPU is visible);
* C++ build: g++ of the written project into the shared library (``fpga_gen.csim.build``), the
  native one (``-DFPGA_GEN_NATIVE``: dense, conv2d, relu/linear, softmax and pooling on the raw integer
  codes) and the csim one (the HLS code as written), cold (empty cache: the csim build builds the
  precompiled header too, the native build does not build one) and with only what the cold build cached
  (what a second project costs); wall and CPU seconds (compilers included);
* native batch throughput on all cores and on one thread, and csim's on one thread.

Every back end's output is checked bit-identical to the numpy emulator.  Each model is measured
in its own Python process (one compiled library per process, nothing shared).  Times are the best of
``--repeat`` runs (builds: of 2) on this machine, whose load is printed with the table: the
machine is shared, so compare ratios measured in one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 10_000
MODELS = ("digits", "mlp16")
EXTRA_MODELS = ("cnn",)          # measured only when named (--models cnn): bench_vs_hls4ml compares MODELS


# ---------------------------------------------------------------------------- models and inputs
def digits_model() -> Path:
    path = ROOT / "examples" / "digits_mlp.h5"
    if not path.is_file():
        print("examples/digits_mlp.h5 is missing: training it (examples/train_digits_mlp.py) ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "examples" / "train_digits_mlp.py"), "--out", str(path)],
                       check=True)
    return path


def mlp16_model(directory: Path) -> Path:
    """A 16-64-32-32-5 QKeras MLP: 6-bit weights and biases, 6-bit quantized_relu, softmax; random weights."""
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(16)
    sizes = (16, 64, 32, 32, 5)
    layers = [tf.keras.layers.InputLayer(input_shape=(sizes[0],), name="x")]
    for k, n in enumerate(sizes[1:]):
        layers.append(QDense(n, kernel_quantizer=quantized_bits(6, 0, alpha=1),
                             bias_quantizer=quantized_bits(6, 0, alpha=1),
                             kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                             bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5), name=f"fc{k + 1}"))
        if k < len(sizes) - 2:
            layers.append(QActivation(quantized_relu(6, 0), name=f"relu{k + 1}"))
    layers.append(tf.keras.layers.Activation("softmax", name="softmax"))
    model = tf.keras.Sequential(layers, name="mlp16")
    path = directory / "mlp16.h5"
    model.save(path)
    return path


def cnn_model(directory: Path) -> Path:
    """The digits CNN of examples/train_digits_cnn.py (examples/digits_cnn.h5 when trained; else its
    architecture with random weights: the speed does not depend on the weights)."""
    trained = ROOT / "examples" / "digits_cnn.h5"
    if trained.is_file():
        return trained
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    sys.path.insert(0, str(ROOT / "examples"))
    from train_digits_cnn import build_model
    tf.keras.utils.set_random_seed(3)
    path = directory / "digits_cnn.h5"
    build_model().save(path)
    return path


def model_path(name: str, directory: Path) -> Path:
    return {"digits": digits_model, "mlp16": lambda: mlp16_model(directory),
            "cnn": lambda: cnn_model(directory)}[name]()


def inputs(name: str, batch: int) -> np.ndarray:
    """digits: the held-out test images, repeated to ``batch`` rows; mlp16: values in [-2, 2] on a
    1/16 grid (exact in the default ap_fixed<16,6> input type and in float32)."""
    if name == "digits":
        x = np.load(ROOT / "examples" / "digits_x_test.npy")
        return np.resize(x, (batch, x.shape[1]))
    if name == "cnn":                   # the digits images as k/16 (exact in the CNN's input type), 8x8x1
        x = np.round(np.load(ROOT / "examples" / "digits_x_test.npy") * 16) / 16
        return np.resize(x, (batch, x.shape[1])).reshape(batch, 8, 8, 1)
    rng = np.random.default_rng(20261125)
    return np.round(rng.uniform(-2.0, 2.0, size=(batch, 16)) * 16) / 16


# ---------------------------------------------------------------------------- timing helpers
def best_of(fn, repeat: int, cpu: dict | None = None, key: str = ""):
    """(best wall seconds, last result); the best process CPU seconds (all threads) go to ``cpu[key]``,
    and the medians of both to ``cpu[key + "_median"]`` and ``cpu[key + "_wall_median"]`` (on a shared
    machine the median is the steadier figure)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    if cpu is not None:
        cpu[key] = min(cpus)
        cpu[key + "_median"] = float(np.median(cpus))
        cpu[key + "_wall_median"] = float(np.median(walls))
    return min(walls), out


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def machine() -> str:
    gxx = shutil.which("g++")
    ver = subprocess.run([gxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0] if gxx else "none"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {ver}"


# ---------------------------------------------------------------------------- our measurements
def measure_ours(path: Path, x: np.ndarray, work: Path, repeat: int, torch_cpu: bool = True) -> dict:
    """Convert, write, emulate (numpy, torch), build (cold, warm header) and run native on ``x``."""
    import fpga_gen
    from fpga_gen import csim
    from fpga_gen.emulate import Emulator

    from fpga_gen.frontend.keras.loader import import_tf
    import_tf()                  # importing TensorFlow and QKeras is not part of convert (as for hls4ml);
    import qkeras  # noqa: F401  # Keras's one-time set-up on the first model loaded is
    r: dict = {"batch": len(x)}
    r["convert_s"], project = best_of(lambda: fpga_gen.convert(str(path)), 1)
    out = work / f"prj_{path.stem}"
    r["write_s"], _ = best_of(lambda: project.write(out, force=True), 1)

    emu = Emulator(project.graph)
    emu.predict(x[:8])
    r["emu_s"], ref = best_of(lambda: emu.predict(x), repeat, r, "emu_cpu_s")
    if torch_cpu:
        try:
            from fpga_gen.emulate.torch_ops import TorchOps
            temu = Emulator(project.graph, xp=TorchOps("cpu"))
        except ImportError:
            r["torch_s"] = None
        else:
            temu.predict(x[:8])
            r["torch_s"], y = best_of(lambda: temu.predict(x), repeat, r, "torch_cpu_s")
            r["torch_same"] = bool(np.array_equal(y, ref))
            import torch
            if torch.cuda.is_available():      # the gpu back end proper (outputs come back to the host)
                cemu = Emulator(project.graph, xp=TorchOps("cuda"))
                cemu.predict(x[:8])
                r["cuda_s"], y = best_of(lambda: cemu.predict(x), repeat)
                r["cuda_same"] = bool(np.array_equal(y, ref))
                r["cuda_device"] = torch.cuda.get_device_name(0)

    # C++ builds, of the csim library (the HLS code as written) and of the native one (-DFPGA_GEN_NATIVE: dense and
    # conv2d as integer sums): cold = empty cache (precompiled header included); warm = only the header cached
    saved = os.environ.get("FPGA_GEN_CACHE_DIR")
    try:
        for kind, native in (("", False), ("native_", True)):
            cold, cold_cpu, warm, warm_cpu = [], [], [], []
            for i in range(2):
                cache = work / f"cache_{path.stem}_{kind}{i}"
                shutil.rmtree(cache, ignore_errors=True)
                os.environ["FPGA_GEN_CACHE_DIR"] = str(cache)
                c0, t0 = children_cpu(), time.perf_counter()
                csim.build(out, library=True, testbench=False, native=native)
                cold.append(time.perf_counter() - t0)
                cold_cpu.append(children_cpu() - c0)
                for d in ("obj", "lib"):
                    shutil.rmtree(cache / "csim" / d, ignore_errors=True)
                c0, t0 = children_cpu(), time.perf_counter()
                csim.build(out, library=True, testbench=False, native=native)
                warm.append(time.perf_counter() - t0)
                warm_cpu.append(children_cpu() - c0)
            r[f"build_{kind}cold_s"], r[f"build_{kind}cold_cpu_s"] = min(cold), min(cold_cpu)
            r[f"build_{kind}warm_s"], r[f"build_{kind}warm_cpu_s"] = min(warm), min(warm_cpu)
        csim.predict(out, x[:8], native=True)
        r["native_s"], y = best_of(lambda: csim.predict(out, x, native=True), repeat, r, "native_cpu_s")
        r["native_same"] = bool(np.array_equal(y, ref))
        r["native_1t_s"], y1 = best_of(lambda: csim.predict(out, x, threads=1, native=True), repeat, r,
                                       "native_1t_cpu_s")
        r["native_same"] &= bool(np.array_equal(y1, ref))
        csim.predict(out, x[:8])
        r["csim_1t_s"], y2 = best_of(lambda: csim.predict(out, x, threads=1), repeat, r, "csim_1t_cpu_s")
        r["csim_same"] = bool(np.array_equal(y2, ref))
    finally:
        if saved is None:
            os.environ.pop("FPGA_GEN_CACHE_DIR", None)
        else:
            os.environ["FPGA_GEN_CACHE_DIR"] = saved
    return r


# ---------------------------------------------------------------------------- report
def rate(seconds, n) -> str:
    return "n/a" if seconds is None else f"{n / seconds:,.0f}/s"


def ms(seconds) -> str:
    return "n/a" if seconds is None else (f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s")


def ratio(a, b) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def backends_table(results: dict) -> str:
    lines = ["| model | stage | time | throughput | per CPU-second | vs numpy emulator | bit-identical to emulator |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        n = r["batch"]
        e = r["emu_s"]
        cpu = {"emulator, numpy": r.get("emu_cpu_s"), "emulator, torch CPU": r.get("torch_cpu_s"),
               f"native, {os.cpu_count()} threads": r.get("native_cpu_s"),
               "native, 1 thread": r.get("native_1t_cpu_s"), "csim, 1 thread": r.get("csim_1t_cpu_s")}
        rows = [
            ("convert (Keras -> graph)", r["convert_s"], None, None, ""),
            ("project write", r["write_s"], None, None, ""),
            ("emulator, numpy", e, n, "1.00x", "(spec)"),
            ("emulator, torch CPU", r.get("torch_s"), n, ratio(e, r.get("torch_s")),
             {True: "yes", False: "NO"}.get(r.get("torch_same"), "n/a")),
        ]
        if r.get("cuda_s"):
            rows.append((f"emulator, torch CUDA ({r['cuda_device']})", r["cuda_s"], n, ratio(e, r["cuda_s"]),
                         "yes" if r["cuda_same"] else "NO"))
        rows += [
            (f"native C++ build, cold (CPU {r['build_native_cold_cpu_s']:.1f} s)", r["build_native_cold_s"], None, None,
             ""),
            (f"native C++ build, header cached (CPU {r['build_native_warm_cpu_s']:.1f} s)", r["build_native_warm_s"],
             None, None, ""),
            (f"csim C++ build, cold (CPU {r['build_cold_cpu_s']:.1f} s)", r["build_cold_s"], None, None, ""),
            (f"csim C++ build, header cached (CPU {r['build_warm_cpu_s']:.1f} s)", r["build_warm_s"], None, None, ""),
            (f"native, {os.cpu_count()} threads", r["native_s"], n, ratio(e, r["native_s"]),
             "yes" if r["native_same"] else "NO"),
            ("native, 1 thread", r["native_1t_s"], n, ratio(e, r["native_1t_s"]), "yes" if r["native_same"] else "NO"),
            ("csim, 1 thread", r["csim_1t_s"], n, ratio(e, r["csim_1t_s"]), "yes" if r["csim_same"] else "NO"),
        ]
        for stage, s, count, rel, same in rows:
            per_cpu = rate(cpu[stage], count) if count and cpu.get(stage) else ""
            lines.append(f"| {name} | {stage} | {ms(s)} | {rate(s, count) if count else ''} | {per_cpu} | {rel or ''} "
                         f"| {same} |")
    return "\n".join(lines)


def run_isolated(model: str, batch: int, repeat: int, path: Path) -> dict:
    """``measure_ours`` for one model (its .h5 at ``path``) in a fresh Python process (this script with --json),
    so that the model is the first one that process loads."""
    with tempfile.TemporaryDirectory(prefix="fpga_gen_bench_") as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, __file__, "--models", model, "--batch", str(batch), "--repeat", str(repeat),
                        "--model-path", str(path), "--json", str(out)], check=True)
        return json.loads(out.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--json", help="measure the one model given in this process and write the numbers here")
    ap.add_argument("--model-path", help="with --json: the model's .h5 (default: made or trained here)")
    args = ap.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    for m in names:
        if m not in MODELS + EXTRA_MODELS:
            ap.error(f"unknown model {m!r}; use {', '.join(MODELS + EXTRA_MODELS)}")
    if args.json:
        if len(names) != 1:
            ap.error("--json measures exactly one model")
        with tempfile.TemporaryDirectory(prefix="fpga_gen_bench_") as tmp:
            work = Path(tmp)
            path = Path(args.model_path) if args.model_path else model_path(names[0], work)
            r = measure_ours(path, inputs(names[0], args.batch), work, args.repeat)
        Path(args.json).write_text(json.dumps(r, indent=1))
        return 0
    load0 = load_average()
    results = {}
    with tempfile.TemporaryDirectory(prefix="fpga_gen_bench_") as tmp:
        for m in names:
            print(f"[{m}] measuring ...", flush=True)
            results[m] = run_isolated(m, args.batch, args.repeat, model_path(m, Path(tmp)))
    print()
    print(f"batch {args.batch:,}; best of {args.repeat} (builds: best of 2); {machine()}; "
          f"load average before {load0}, after {load_average()}")
    print()
    print(backends_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
