"""Byte-for-byte check of a refactoring: the projects this work tree writes against those of a git revision.

    python benchmarks/compare_project_bytes.py [--base HEAD] [--examples 25]

For work that must not change one byte of any generated project (file moves, import clean-ups, new
checks): saves a fixed list of Keras models as .h5 files once (the examples' architectures: digits MLP,
CNN, skip CNN, the float calibration model; the benchmark MLP; seeded fuzz draws of
``tests/fuzz_models.py`` and ``tests/fuzz_mixed.py``, parallel and stream), then converts and writes every one
with the fpga_gen of ``--base`` (a ``git archive`` copy) and with this work tree's, in separate processes,
and compares every file of every project (and every refusal message) byte for byte.  Exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GEN = r'''
import json, os, pickle, sys
root, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [root + "/tests", root + "/benchmarks", root + "/examples", root]
os.environ["TF_USE_LEGACY_KERAS"] = "1"
from pathlib import Path
import numpy as np
from hypothesis import HealthCheck, given, settings
from fpga_gen.frontend.keras.loader import import_tf
tf = import_tf()
from fuzz_models import model_specs, specs_with_overrides
from fuzz_mixed import mixed_specs
out = Path(out)
items = []           # (h5 path, convert kwargs as plain data)
def save(model, name, **kw):
    p = out / f"{len(items):03d}_{name}.h5"
    model.save(p)
    items.append((str(p), kw))
import bench_backends as bb
items.append((str(bb.mlp16_model(out)), {}))
digits = Path(root) / "examples" / "digits_mlp.h5"
if digits.is_file():
    items.append((str(digits), {"input_precision": "ap_ufixed<6,1>"}))
    items.append((str(digits), {"io": "stream", "reuse": 4, "strategy": "resource"}))
from train_digits_cnn import build_model as cnn
from train_digits_skip import build_model as skip
from float_digits_calibrate import build_model as float_model
tf.keras.utils.set_random_seed(3); save(cnn(), "digits_cnn", input_precision="ap_ufixed<5,1>")
tf.keras.utils.set_random_seed(3); save(cnn(), "digits_cnn_stream", input_precision="ap_ufixed<5,1>", io="stream")
tf.keras.utils.set_random_seed(4); save(skip(), "digits_skip", input_precision="ap_ufixed<5,1>")
tf.keras.utils.set_random_seed(5); save(float_model(tf), "float_digits",
    calibrate=np.random.default_rng(5).uniform(0, 1, (64, 64)).round(4).tolist())
def add(spec, tag):
    try:
        model = spec.build()
    except Exception:
        return
    kw = {"config": spec.config()}
    if getattr(spec, "float_model", False):
        kw["calibrate"] = spec.inputs(64, seed=spec.seed % 997 + 1).tolist()
    save(model, tag, **kw)
s = settings(max_examples=n, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
s(given(spec=model_specs())(lambda spec: add(spec, "fuzz")))()
s(given(spec=specs_with_overrides(allow_conv=False))(lambda spec: add(spec, "fuzz_over")))()
s(given(spec=mixed_specs())(lambda spec: add(spec, "mixed")))()
pickle.dump(items, open(out / "items.pkl", "wb"))
print(len(items), "models")
'''

RUN = r'''
import os, pickle, sys, traceback
root, inp, out = sys.argv[1:4]
sys.path.insert(0, root)
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import fpga_gen
assert fpga_gen.__file__.startswith(root), fpga_gen.__file__
from pathlib import Path
out = Path(out)
for k, (path, kw) in enumerate(pickle.load(open(inp, "rb"))):
    kw = dict(kw)
    if "calibrate" in kw:
        kw["calibrate"] = np.asarray(kw["calibrate"])
    d = out / f"{k:03d}"
    try:
        fpga_gen.convert(path, name=f"m{k:03d}", **kw).write(d, force=True)
    except Exception as e:
        d.mkdir(parents=True, exist_ok=True)
        (d / "ERROR").write_text(type(e).__name__ + ": " + str(e))
print(k + 1, "projects")
'''


def _diff(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b)
    bad = [f"only in base: {a / x}" for x in cmp.left_only] + [f"only in tree: {b / x}" for x in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    bad += [f"differs: {b / x}" for x in mismatch + errors]
    for d in cmp.common_dirs:
        bad += _diff(a / d, b / d)
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare against (default HEAD)")
    ap.add_argument("--examples", type=int, default=25, help="models drawn per fuzz strategy (default 25)")
    ap.add_argument("--keep", help="write the models and projects here instead of a temporary folder")
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="fpga_gen_bytes_") as tmp:
        tmp = Path(args.keep or tmp)
        base = tmp / "base"
        base.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", args.base, "fpga_gen", "templates", "boards", "pyproject.toml"],
                                 cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        (tmp / "gen.py").write_text(GEN)
        (tmp / "run.py").write_text(RUN)
        (tmp / "models").mkdir(exist_ok=True)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
        subprocess.run([py, str(tmp / "gen.py"), str(ROOT), str(tmp / "models"), str(args.examples)],
                       check=True, env=env)
        for name, root in (("base", base), ("tree", ROOT)):
            subprocess.run([py, str(tmp / "run.py"), str(root), str(tmp / "models" / "items.pkl"),
                            str(tmp / f"out_{name}")], check=True, env=env, cwd=str(tmp))
        bad = _diff(tmp / "out_base", tmp / "out_tree")
        files = sum(1 for p in (tmp / "out_tree").rglob("*") if p.is_file())
        refused = sum(1 for _ in (tmp / "out_tree").glob("*/ERROR"))
        for line in bad[:20]:
            print(line)
        print(f"{len(list((tmp / 'out_tree').iterdir()))} projects ({refused} refusals), {files} files "
              f"against {args.base}: " + ("byte-identical" if not bad else f"{len(bad)} differences"))
        return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
