"""The command line as a user meets it: exit codes, one-line errors, nothing half-written."""

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fpga_gen.cli import main
from qmodels import qmlp


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "tiny_mlp.h5"
    qmlp([8, 6, 4], bits=6, softmax=True, seed=4).save(p)
    return p


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_inspect(capsys, model_file):
    rc, out, err = run(capsys, "inspect", model_file)
    assert rc == 0
    assert "dense_0" in out and "ap_fixed<16,6>" in out and "softmax" in out


def test_missing_model(capsys, tmp_path):
    rc, out, err = run(capsys, "build", tmp_path / "nope.h5", "-o", tmp_path / "out")
    assert rc == 2
    assert err == f"fpga-gen: error: {tmp_path / 'nope.h5'}: model file not found\n"
    assert not (tmp_path / "out").exists()


def test_invalid_reuse_writes_nothing(capsys, tmp_path, model_file):
    rc, out, err = run(capsys, "build", model_file, "-o", tmp_path / "out", "--reuse", "5")
    assert rc == 2
    assert err == ("fpga-gen: error: layer 'dense_0': reuse factor 5 is not valid for a 8x6 dense layer; "
                   "nearest valid values: 4, 8\n")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(capsys, tmp_path, model_file):
    out_dir = tmp_path / "proj"
    assert run(capsys, "build", model_file, "-o", out_dir)[0] == 0
    (out_dir / "marker").write_text("keep")
    rc, out, err = run(capsys, "build", model_file, "-o", out_dir)
    assert rc == 2
    assert err == f"fpga-gen: error: {out_dir}: output directory exists; pass --force (force=True) to overwrite it\n"
    assert (out_dir / "marker").read_text() == "keep"
    assert run(capsys, "build", model_file, "-o", out_dir, "--force")[0] == 0
    assert not (out_dir / "marker").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]       # no temp folders left behind


def test_output_path_is_a_file(capsys, tmp_path, model_file):
    f = tmp_path / "file"
    f.write_text("x")
    rc, out, err = run(capsys, "build", model_file, "-o", f, "--force")
    assert rc == 2 and err == f"fpga-gen: error: {f}: exists and is not a directory; choose another output path\n"


def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_generation_is_deterministic(capsys, tmp_path, model_file):
    assert run(capsys, "build", model_file, "-o", tmp_path / "a")[0] == 0
    assert run(capsys, "build", model_file, "-o", tmp_path / "b")[0] == 0
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_deterministic_across_processes(tmp_path, model_file):
    """A fresh interpreter with another hash seed writes the same bytes."""
    outs = []
    for seed in ("1", "2"):
        d = tmp_path / f"p{seed}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-m", "fpga_gen.cli", "build", str(model_file), "-o", str(d)],
                           env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        outs.append(_tree(d))
    assert outs[0] == outs[1]


def test_predict_emu_from_project(capsys, tmp_path, model_file):
    d = tmp_path / "proj"
    assert run(capsys, "build", model_file, "-o", d)[0] == 0
    x = np.random.default_rng(0).normal(size=(50, 8))
    np.save(tmp_path / "x.npy", x)
    rc, out, err = run(capsys, "predict", d, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert rc == 0
    import fpga_gen
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(y, fpga_gen.convert(str(model_file)).predict(x))
    rc, out, err = run(capsys, "predict", tmp_path / "nope", "--input", tmp_path / "x.npy", "--output", "y.npy")
    assert rc == 2 and "not an fpga-gen project" in err
