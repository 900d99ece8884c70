"""The ``gpu`` back end on a real GPU: replay every graph the tests run on PyTorch, bit for bit, on CUDA.

    python benchmarks/check_gpu.py record DIR [--examples 60]    # here (TensorFlow, QKeras, the test suite)
    python benchmarks/check_gpu.py replay DIR [--device cuda]     # on the GPU machine (PyTorch, numpy; no TF)

``record`` runs the test files that check the PyTorch back end with ``FPGA_GEN_RECORD_TORCH`` set (see
tests/conftest.py: each graph and batch they hand to TorchOps is pickled), adds the random models of
``compare_emulator_bits.py`` (conv, pooling, odd rounding and overflow modes, edge inputs) and the three benchmark
models, and stores the numpy emulator's output of every node for each (``cases.pkl.gz``, ``refs.npz``).

``replay`` runs each recorded graph on ``TorchOps(device)`` and compares every node's output with the stored numpy
result: equal values, NaN where NaN, and the same sign of zeros.  It then times the benchmark models at batch
10,000 and 100,000: the numpy emulator on this machine's cores against the same kernels on the device.  Writes
``DIR/replay.json`` (or ``--out``) and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

TEST_FILES = ["test_backends.py", "test_activations.py", "test_bnconv.py", "test_float_models.py",
              "test_fuzz_mixed.py", "test_merge.py", "test_quantizers.py", "test_sep1d.py", "test_spatial.py",
              "test_split.py", "test_emulate_fast_paths.py"]
BENCH_MODELS = ("digits", "mlp16", "cnn")


def record(directory: Path, examples: int) -> int:
    import numpy as np
    directory.mkdir(parents=True, exist_ok=True)
    rec = directory / "recorded"
    env = dict(os.environ, FPGA_GEN_RECORD_TORCH=str(rec), TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
                       + [str(ROOT / "tests" / f) for f in TEST_FILES], cwd=ROOT, env=env)
    if r.returncode != 0:
        print("the tests failed: nothing recorded")
        return 1
    cases = []
    for f in sorted(glob.glob(str(rec / "*.pkl"))):
        with open(f, "rb") as fh:
            d = pickle.load(fh)
        cases.append((f"test:{d['test']}", d["graph"], d["x"]))
    # the random models of compare_emulator_bits.py, and the benchmark models at a large batch
    import compare_emulator_bits as ceb
    with tempfile.TemporaryDirectory(prefix="fpga_gen_gpu_") as tmp:
        gen = Path(tmp) / "gen.py"
        gen.write_text(ceb.GEN)
        subprocess.run([sys.executable, str(gen), str(ROOT), str(Path(tmp) / "items.pkl"), str(examples)],
                       check=True, env=env)
        with open(Path(tmp) / "items.pkl", "rb") as fh:
            items = pickle.load(fh)
    cases += [(f"fuzz:{k}", g, x) for k, (g, x) in enumerate(items)]
    import bench_backends as bb
    import fpga_gen
    bench = {}
    for m in BENCH_MODELS:
        g = fpga_gen.convert(str(bb.model_path(m, directory))).graph
        x = bb.inputs(m, 4096)
        cases.append((f"bench:{m}", g, x))
        bench[m] = (g, x)               # examples/*.npy do not travel: the inputs go with the graph
    # the same graph and batch recorded twice (a trace, then the back end's predict) is replayed once; batches are
    # cut to 1,024 rows (rows are independent; the device runs a batch whole, without numpy's threaded chunks)
    import hashlib
    unique, seen = [], set()
    for name, g, x in cases:
        x = [a[:1024] for a in x] if isinstance(x, (list, tuple)) else x[:1024]
        key = hashlib.sha256(pickle.dumps((g, x))).hexdigest()
        if key not in seen:
            seen.add(key)
            unique.append((name, g, x))
    cases = unique
    from fpga_gen.emulate import Emulator
    refs = {}
    for k, (name, g, x) in enumerate(cases):
        try:
            with np.errstate(all="ignore"):
                out = Emulator(g).predict(x, trace=True)
        except Exception as e:          # a graph the emulator refuses must be refused on the device too
            refs[f"{k}/error"] = np.array(f"{type(e).__name__}: {e}")
            continue
        for node, v in out.items():
            refs[f"{k}/{node}"] = v
    with gzip.open(directory / "cases.pkl.gz", "wb") as fh:
        pickle.dump({"cases": cases, "bench": bench}, fh)
    np.savez_compressed(directory / "refs.npz", **refs)
    size = sum(p.stat().st_size for p in (directory / "cases.pkl.gz", directory / "refs.npz"))
    print(f"{len(cases)} distinct cases (tests, {len(items)} random models, {len(BENCH_MODELS)} benchmark models), "
          f"{len(refs)} node outputs, {size / 2**20:.1f} MiB")
    return 0


def _same_bits(ref, got) -> bool:
    import numpy as np
    if ref.shape != got.shape or ref.dtype != got.dtype:
        return False
    nan = np.isnan(ref)
    if not np.array_equal(np.isnan(got), nan):
        return False
    known = ~nan
    return bool(np.array_equal(ref[known], got[known]) and np.array_equal(np.signbit(ref[known]),
                                                                          np.signbit(got[known])))


def replay(directory: Path, device: str, out: Path | None, budget_s: float) -> int:
    import numpy as np
    import torch

    from fpga_gen.emulate import Emulator
    from fpga_gen.emulate.torch_ops import TorchOps
    t_start = time.perf_counter()
    with gzip.open(directory / "cases.pkl.gz", "rb") as fh:
        data = pickle.load(fh)
    refs = np.load(directory / "refs.npz")
    ops = TorchOps(device)
    info = {"device": device, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count()}
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda)
    print(json.dumps(info))
    done, bad, nodes, ops_seen, failures, dumps = 0, 0, 0, set(), [], {}
    for k, (name, g, x) in enumerate(data["cases"]):
        if time.perf_counter() - t_start > budget_s:
            break
        expected_error = str(refs[f"{k}/error"]) if f"{k}/error" in refs.files else None
        try:
            with np.errstate(all="ignore"):
                got = Emulator(g, xp=ops).predict(x, trace=True)
        except Exception as e:              # the same refusal as numpy's passes; any other error fails
            done += 1
            if f"{type(e).__name__}: {e}" != expected_error:
                bad += 1
                failures.append(f"{name}: {type(e).__name__}: {str(e)[:200]}")
            continue
        if expected_error is not None:
            bad += 1
            done += 1
            failures.append(f"{name}: ran on the device, numpy refused: {expected_error[:200]}")
            continue
        # +0.0: the references were recorded by to_float, which gives every zero as +0.0 (older recordings
        # may hold -0.0)
        differ = [node for node, v in got.items() if not _same_bits(refs[f"{k}/{node}"] + 0.0, v)]
        nodes += len(got)
        done += 1
        if differ:
            bad += 1
            node = differ[0]
            ref, v = refs[f"{k}/{node}"] + 0.0, got[node]
            values = not np.array_equal(ref, v, equal_nan=True) if ref.shape == v.shape else True
            failures.append(f"{name}: nodes {differ[:5]} differ ({'values' if values else 'signs of zeros'})")
            if len(dumps) < 24:
                dumps[f"{k}_ref"], dumps[f"{k}_got"] = ref, v
                dumps[f"{k}_x"] = x[0] if isinstance(x, (list, tuple)) else x
        else:
            ops_seen.update(n.op for n in g)
    total = len(data["cases"])
    if dumps:                               # the first differing arrays, to study off the GPU machine
        np.savez_compressed((out or directory / "replay.json").with_suffix(".diffs.npz"), **dumps)
    print(f"{done}/{total} graphs replayed on {device}, {nodes} node outputs compared, {bad} with differences")
    for f in failures[:20]:
        print("  ", f)
    print("ops covered bit-exact:", ", ".join(sorted(ops_seen)))

    # throughput: the numpy emulator on this machine's cores against the same kernels on the device
    timing = {}
    for m, (g, x0) in data["bench"].items():
        for batch in (10_000, 100_000):
            x = np.resize(x0, (batch,) + x0.shape[1:])
            emu_np, emu_dev = Emulator(g), Emulator(g, xp=ops)
            ref = emu_np.predict(x)
            got = emu_dev.predict(x)
            same = _same_bits(ref, got)

            def best(fn, n=5):
                ts = []
                for _ in range(n):
                    t = time.perf_counter()
                    fn()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    ts.append(time.perf_counter() - t)
                return min(ts)
            t_np, t_dev = best(lambda: emu_np.predict(x)), best(lambda: emu_dev.predict(x))
            timing[f"{m}/{batch}"] = {"numpy_per_s": batch / t_np, "device_per_s": batch / t_dev,
                                      "device_over_numpy": t_np / t_dev, "bit_identical": same}
            print(f"{m:6s} batch {batch:>7,}: numpy emulator ({min(os.cpu_count() or 1, 8)} threads) "
                  f"{batch / t_np:>12,.0f}/s, {device} {batch / t_dev:>12,.0f}/s ({t_np / t_dev:.2f}x), "
                  f"bit-identical: {same}")
    result = {"info": info, "graphs": total, "replayed": done, "node_outputs": nodes, "with_differences": bad,
              "failures": failures, "ops": sorted(ops_seen), "timing": timing,
              "seconds": time.perf_counter() - t_start}
    (out or directory / "replay.json").write_text(json.dumps(result, indent=1))
    return 0 if bad == 0 and done == total else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("dir", type=Path)
    r.add_argument("--examples", type=int, default=60, help="random models drawn per strategy (default 60)")
    p = sub.add_parser("replay")
    p.add_argument("dir", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path)
    p.add_argument("--budget", type=float, default=1e9, help="stop replaying after this many seconds")
    args = ap.parse_args(argv)
    if args.cmd == "record":
        return record(args.dir, args.examples)
    return replay(args.dir, args.device, args.out, args.budget)


if __name__ == "__main__":
    sys.exit(main())
