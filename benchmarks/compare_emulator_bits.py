"""Bit-for-bit check of an emulator change: every node's raw output, this work tree against a git revision.

    python benchmarks/compare_emulator_bits.py [--base HEAD] [--examples 60] [--torch]

For speed work on fpga_gen/emulate/ that must not change a single output bit (the sign of a zero
included): draws random valid models from tests/fuzz_models.py (``model_specs()`` with conv and pooling,
and ``specs_with_overrides()`` with random rounding and overflow modes), adds the benchmark MLPs, and feeds
each a batch on its input grid plus edge rows (NaN, +-inf, +-1e300, -0.0, wide random values, values half an
LSB off the grid).  The graphs are converted once, here; the emulator of ``--base`` (a ``git archive``
copy) and of this work tree then run them in separate processes (trace of every node, and a batch large
enough for the threaded chunks), and the raw arrays are compared byte for byte.  Exits 1 on any
difference.  ``--torch`` runs this tree's kernels on TorchOps (CPU) too, against the base's numpy (there a raw zero may have
either sign: PyTorch's sums pick their own; every back end gives zeros out as +0.0).
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GEN = r'''
import os, pickle, sys
root, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [root, root + "/tests", root + "/benchmarks"]
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
from hypothesis import HealthCheck, given, settings
from fuzz_models import model_specs, specs_with_overrides
import fpga_gen
items = []
def add(spec):
    try:
        project = fpga_gen.convert(spec.build(), config=spec.config())
    except Exception as e:  # a draw the flow rejects is not a bit check
        return
    x = spec.inputs(300, seed=spec.seed % 1000)
    rng = np.random.default_rng(spec.seed)
    flat = x.reshape(len(x), -1).copy()
    flat[0], flat[1], flat[2], flat[3], flat[4], flat[5] = np.nan, np.inf, -np.inf, 1e300, -1e300, -0.0
    flat[6:30] = rng.uniform(-300, 300, flat[6:30].shape)
    flat[30:60] = np.round(rng.uniform(-40, 40, flat[30:60].shape) * 2**12) / 2**12 + 2.0 ** -13
    items.append((project.graph, flat.reshape(x.shape)))
s = settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
s(given(spec=model_specs())(lambda spec: add(spec)))()
s(given(spec=specs_with_overrides(allow_conv=False))(lambda spec: add(spec)))()
import bench_backends as bb
from pathlib import Path
for m in bb.MODELS + bb.EXTRA_MODELS:
    items.append((fpga_gen.convert(str(bb.model_path(m, Path(os.path.dirname(out))))).graph, bb.inputs(m, 3000)))
pickle.dump(items, open(out, "wb"))
print(len(items), "graphs")
'''

RUN = r'''
import pickle, sys
root, inp, out, backend = sys.argv[1:5]
sys.path.insert(0, root)
import numpy as np
import fpga_gen
assert fpga_gen.__file__.startswith(root), fpga_gen.__file__
from fpga_gen.emulate import Emulator
res = {}
for k, (g, x) in enumerate(pickle.load(open(inp, "rb"))):
    if backend == "torch":
        from fpga_gen.emulate.torch_ops import TorchOps
        emu = Emulator(g, xp=TorchOps("cpu"))
    else:
        emu = Emulator(g)
    try:
        raw = emu.run_raw([x], trace=True)
        if k % 5 == 0:                                  # the threaded chunks of a large batch
            big = emu.predict(np.concatenate([x] * 20))
            res[f"{k}/big"] = np.asarray(big[0] if isinstance(big, list) else big)
    except Exception as e:
        res[f"{k}/error"] = np.array([str(e)[:200]])
        continue
    for name, v in raw.items():
        res[f"{k}/{name}"] = np.asarray(emu.xp.to_numpy(v))
np.savez(out, **res)
'''


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare against (default HEAD)")
    ap.add_argument("--examples", type=int, default=60, help="models drawn per strategy (default 60)")
    ap.add_argument("--torch", action="store_true", help="also run this tree's kernels on TorchOps (CPU)")
    args = ap.parse_args(argv)
    import numpy as np
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="fpga_gen_bits_") as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.base, "fpga_gen", "templates"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        (tmp / "gen.py").write_text(GEN)
        (tmp / "run.py").write_text(RUN)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run([py, str(tmp / "gen.py"), str(ROOT), str(tmp / "items.pkl"), str(args.examples)],
                       check=True, env=env)
        runs = [("base", base, "numpy"), ("tree", ROOT, "numpy")] + ([("tree-torch", ROOT, "torch")]
                                                                    if args.torch else [])
        for name, root, backend in runs:
            subprocess.run([py, str(tmp / "run.py"), str(root), str(tmp / "items.pkl"), str(tmp / f"{name}.npz"),
                            backend], check=True, env=env)
        ref = np.load(tmp / "base.npz")
        bad = 0
        for name, _, _ in runs[1:]:
            other = np.load(tmp / f"{name}.npz")
            if set(ref.files) != set(other.files):
                print(f"{name}: different arrays: {sorted(set(ref.files) ^ set(other.files))[:10]}")
                bad += 1
            for key in sorted(set(ref.files) & set(other.files)):
                a, b = ref[key], other[key]
                if name == "tree-torch" and a.dtype.kind == "f" and b.dtype.kind == "f":
                    a, b = a + 0.0, b + 0.0    # a raw zero's sign is the library's (BLAS sums): not a value
                if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                    bad += 1
                    if bad <= 10:
                        print(f"{name}: {key} differs ({a.dtype}{a.shape} vs {b.dtype}{b.shape})")
            print(f"{name}: {len(other.files)} arrays against {args.base}")
        print("bit-identical" if bad == 0 else f"{bad} differences")
        return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
