"""HGQ2 (Keras 3, hgq2 0.2) .keras archives: read as data, computed bit for bit as HGQ2 computes them.

The references under tests/data/hgq2/ (the .keras archives and HGQ2's own model.predict outputs, <name>.npz)
are made by tests/data/hgq2/make_refs.py in a separate venv with hgq2 installed (see its docstring); this
suite needs neither hgq2 nor Keras 3: the frontend reads the archives with zipfile, json and h5py."""

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fpga_gen
from fpga_gen.cli import main
from fpga_gen.ir.fixed import NP, cast
from fpga_gen.frontend import FrontendError
from fpga_gen.frontend.hgq2 import is_hgq2_archive, load_hgq2_graph, supported_layers
from fpga_gen.ir.graph import Graph, Node
from fpga_gen.ir.types import FixedType
from helpers_graphs import assert_csim_equals_emulator, assert_torch_equals_emulator

DATA = Path(__file__).parent / "data" / "hgq2"
REFS = sorted(p.stem for p in DATA.glob("*.keras"))
NAMED = [r for r in REFS if not r.startswith("random")]
RANDOM = [r for r in REFS if r.startswith("random")]


def ref(name):
    d = np.load(DATA / f"{name}.npz")
    return d["x"], d["y"]


@pytest.fixture(scope="module")
def projects():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = fpga_gen.convert(DATA / f"{name}.keras")
        return cache[name]
    return get


def test_references_exist():
    # the named models of make_refs.py and at least a few random ones; every archive has its outputs
    assert {"mlp", "seq", "softmax", "lut", "modes", "cnn", "branches", "bndense", "norm"} <= set(NAMED)
    assert len(RANDOM) >= 8
    for r in REFS:
        assert (DATA / f"{r}.npz").is_file()
        assert is_hgq2_archive(DATA / f"{r}.keras")


@pytest.mark.parametrize("name", REFS)
def test_emulator_equals_hgq2(projects, name):
    x, y = ref(name)
    got = projects(name).predict(x, backend="emu")
    assert np.array_equal(got.reshape(y.shape), y), f"{np.mean(got.reshape(y.shape) == y):.4f} of outputs equal"


def test_references_are_heterogeneous(projects):
    """The references exercise what the issue asks for: per-element grids (fixed_quant nodes) with zero and
    negative widths, every overflow mode and the rounding modes, on weights and activations."""
    widths, modes, ops = [], set(), set()
    for name in REFS:
        g = projects(name).graph
        for n in g:
            ops.add(n.op)
            if n.op == "fixed_quant":
                widths.append(n.weights["k"] + n.weights["i"] + n.weights["f"])
                modes.add((n.attrs["rounding"], n.attrs["overflow"]))
    w = np.concatenate(widths)
    assert np.sum(w == 0) > 0 and w.max() >= 8
    assert {o for _, o in modes} == {"WRAP", "SAT", "SAT_SYM"}
    assert {"TRN", "RND", "RND_CONV"} <= {r for r, _ in modes}
    assert {"dense", "conv2d", "pooling", "merge", "concatenate", "batchnorm", "fixed_quant", "hgq_softmax",
            "lut"} <= ops


def test_no_one_bit_symmetric_casts(projects):
    """Regression (random201's testbench): HGQ2's one-bit SAT_SYM quantizer (k=1, k+i+f=1) has the single value 0,
    but the AMD header's ap_fixed<1, I, Q, AP_SAT_SYM> keeps its negative code (as the emulator's cast does):
    the frontend makes it a fixed_quant (an integer clamp to [0, 0]), never an ap_fixed SAT_SYM cast of width 1."""
    g = projects("random201").graph
    assert g["d1_iq"].op == "fixed_quant"
    w = g["d1_iq"].weights
    assert np.all((w["k"] == 1) & (w["k"] + w["i"] + w["f"] == 1)) and g["d1_iq"].attrs["overflow"] == "SAT_SYM"
    for name in REFS:
        for n in projects(name).graph:
            t = n.types.get("result")
            assert not (t is not None and t.signed and t.width == 1 and t.saturation == "SAT_SYM"), (name, n.name)


def test_negative_widths_quantize_to_zero(projects):
    # a trained model's elements with k + i + f <= 0 are 0 in HGQ2: the graph's fixed_quant gives 0 there
    g = projects("mlp").graph
    fq = [n for n in g if n.op == "fixed_quant"]
    x, _ = ref("mlp")
    trace = projects("mlp").emulator().predict(x, trace=True)
    dead = 0
    for n in fq:
        d = (n.weights["k"] + n.weights["i"] + n.weights["f"]) <= 0
        dead += int(d.sum())
        assert np.all(np.asarray(trace[n.name]).reshape(len(x), -1)[:, d] == 0)
    assert dead > 0


def test_lut_tables_are_not_constant(projects):
    # the lut reference's tables take several levels (a constant table would test nothing)
    tables = {n.name: n.weights["table"] for n in projects("lut").graph if n.op == "lut"}
    assert set(tables) == {"tanh", "sig", "affine", "exp"}
    assert all(len(set(t.tolist())) >= 3 for t in tables.values())


@pytest.mark.parametrize("name", ["softmax", "lut"])
def test_csim_equals_emulator(projects, name, tmp_path):
    """The new ops' references in the default suite (fixed_quant in both, hgq_softmax, lut); every other
    reference in the slow test below."""
    x, y = ref(name)
    p = projects(name)
    p.write(tmp_path / "prj")
    emu = assert_csim_equals_emulator(p, tmp_path / "prj", x[::4])
    assert np.array_equal(emu.reshape(y[::4].shape), y[::4])


@pytest.mark.slow
@pytest.mark.parametrize("name", [r for r in REFS if r not in ("softmax", "lut")])
def test_csim_equals_emulator_all(projects, name, tmp_path):
    x, y = ref(name)
    p = projects(name)
    p.write(tmp_path / "prj")
    emu = assert_csim_equals_emulator(p, tmp_path / "prj", x[::4])
    assert np.array_equal(emu.reshape(y[::4].shape), y[::4])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["modes", "lut"])
def test_io_stream_csim_equals_emulator(projects, tmp_path, name):
    """fixed_quant's io_stream form (per word, its constants offset by the word) and lut's (one table)."""
    x, y = ref(name)
    p = fpga_gen.convert(DATA / f"{name}.keras", io_type="stream")
    p.write(tmp_path / "prj")
    emu = assert_csim_equals_emulator(p, tmp_path / "prj", x[::8])
    assert np.array_equal(emu.reshape(y[::8].shape), y[::8])


@pytest.mark.parametrize("name", ["branches", "softmax", "lut"])
def test_torch_equals_numpy(projects, name):
    x, _ = ref(name)
    assert_torch_equals_emulator(projects(name), x[::8])


# ----------------------------------------------------------------------------- the fixed_quant op
ROUNDINGS = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOWS = ("WRAP", "SAT", "SAT_SYM")


def _fq_graph(rounding, overflow, k, i, f, xt):
    from fpga_gen.frontend.hgq2.quantizer import union_type
    g = Graph("fq")
    g.add(Node("x", "input", [], (len(k),), types={"result": xt}))
    g.add(Node("q", "fixed_quant", ["x"], (len(k),), attrs={"rounding": rounding, "overflow": overflow},
               weights={"k": np.asarray(k, float), "i": np.asarray(i, float), "f": np.asarray(f, float)},
               types={"result": union_type(np.asarray(k), np.asarray(i), np.asarray(f))}))
    g.inputs, g.outputs = ["x"], ["q"]
    return g


@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_fixed_quant_is_an_ap_fixed_cast_per_element(rounding, overflow):
    """Every element equals the (AMD-header-verified) emulator cast to ap_fixed<k+i+f, k+i, Q, O> of its own
    (k, i, f), on every code of the input type; elements of width <= 0 give 0, and a one-bit signed SAT_SYM
    element HGQ2's 0."""
    from fpga_gen.emulate.kernels import KERNELS
    xt = FixedType(9, 4, True)
    kif = [(1, 2, 1), (0, 2, 1), (1, 0, 3), (1, -1, 2), (0, 3, -1), (1, 3, -2), (1, 1, -1), (0, 1, -1), (1, -2, 2),
           (0, -3, 2), (1, 4, 5), (0, 0, 0)]
    k, i, f = (np.array(v) for v in zip(*kif))
    g = _fq_graph(rounding, overflow, k, i, f, xt)
    codes = np.arange(xt.raw_min, xt.raw_max + 1, dtype=np.float64)
    x = np.repeat(codes[:, None], len(kif), axis=1)
    node = g["q"]
    got = KERNELS["fixed_quant"](node, [x], [xt], NP)
    rt = node.types["result"]
    for j, (kk, ii, ff) in enumerate(kif):
        if kk + ii + ff <= 0:
            assert np.all(got[:, j] == 0)
            continue
        ii = max(ii, -ff)
        if overflow == "SAT_SYM" and kk == 1 and kk + ii + ff == 1:
            # HGQ2's one-bit symmetric range is [-0, 0]: every value is 0, where ap_fixed<1, ., ., AP_SAT_SYM>
            # keeps its negative code (the AMD header, and the emulator's cast since FixedType.sat_min)
            assert np.all(got[:, j] == 0), (rounding, overflow, (kk, ii, ff))
            assert np.any(cast(codes, xt, FixedType(1, 1 + ii, True, rounding, "SAT_SYM")) < 0)
            continue
        sat = "SAT" if (overflow == "SAT_SYM" and kk == 0) else overflow
        t = FixedType(kk + ii + ff, kk + ii, bool(kk), rounding, sat)
        want = cast(codes, xt, t) * 2.0 ** (rt.frac - t.frac)
        assert np.array_equal(got[:, j], want), (rounding, overflow, (kk, ii, ff))


def test_fixed_quant_csim_every_mode(tmp_path):
    """One project holding a fixed_quant node per rounding x overflow mode (concatenated): csim == emulator."""
    from fpga_gen.frontend.hgq2.quantizer import union_type
    from fpga_gen.config import ProjectConfig
    xt = FixedType(10, 4, True)
    kif = [(1, 2, 1), (0, 2, 2), (1, 0, 3), (1, -1, 2), (0, 3, -1), (1, 3, -2), (1, -2, 2), (0, -3, 2)]
    k, i, f = (np.array(v) for v in zip(*kif))
    g = Graph("fqmodes")
    g.add(Node("x", "input", [], (len(kif),), types={"result": xt}))
    prev = None
    for r in ROUNDINGS:
        for o in OVERFLOWS:
            name = f"q_{r}_{o}".lower()
            g.add(Node(name, "fixed_quant", ["x"], (len(kif),), attrs={"rounding": r, "overflow": o},
                       weights={"k": k.astype(float), "i": i.astype(float), "f": f.astype(float)},
                       types={"result": union_type(k, i, f)}))
            if prev is not None:
                cat = f"cat_{name}"
                n1 = g[prev].shape[0]
                g.add(Node(cat, "concatenate", [prev, name], (n1 + len(kif),),
                           attrs={"axis": 0, "shape1": (n1,), "shape2": (len(kif),)}))
                prev = cat
            else:
                prev = name
    g.inputs, g.outputs = ["x"], [prev]
    from fpga_gen.api import Project
    from fpga_gen.passes import DEFAULT_PASSES, run_passes
    cfg = ProjectConfig(input_precision=xt)
    run_passes(g, cfg, DEFAULT_PASSES)
    p = Project(g, cfg)
    p.write(tmp_path / "prj")
    codes = np.arange(xt.raw_min, xt.raw_max + 1) * xt.step
    x = np.stack([np.roll(codes, 37 * j) for j in range(len(kif))], axis=1)
    assert_csim_equals_emulator(p, tmp_path / "prj", x)


# ----------------------------------------------------------------------------- integration and errors
def test_cli_build_and_inspect(capsys, tmp_path):
    rc = main(["inspect", str(DATA / "cnn.keras")])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert "fixed_quant" in out and "c1" in out and "conv2d" in out
    rc = main(["build", str(DATA / "mlp.keras"), "-o", str(tmp_path / "prj")])
    assert rc == 0
    assert (tmp_path / "prj" / "firmware" / "fpga_gen_quant.h").is_file()


def _rewrite(src: Path, dst: Path, edit=None, drop=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            if item in drop:
                continue
            data = zin.read(item)
            if item == "config.json" and edit is not None:
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    return dst


def test_unsupported_layer_is_one_line(capsys, tmp_path):
    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["config"].get("name") == "fc2":
                layer["class_name"] = "QLinformerAttention"
    bad = _rewrite(DATA / "mlp.keras", tmp_path / "bad.keras", edit)
    rc = main(["build", str(bad), "-o", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert rc == 2
    assert err == (f"fpga-gen: error: {bad}: layer 'fc2' has class 'QLinformerAttention', which the HGQ2 "
                   f"frontend does not support; supported: {', '.join(supported_layers())}\n")
    assert not (tmp_path / "out").exists()


def test_unsupported_quantizer_is_one_line(tmp_path):
    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["config"].get("name") == "fc1":
                layer["config"]["iq_conf"]["config"]["q_type"] = "float"
    bad = _rewrite(DATA / "mlp.keras", tmp_path / "bad.keras", edit)
    with pytest.raises(FrontendError) as e:
        load_hgq2_graph(bad)
    assert str(e.value) == (f"{bad}: layer 'fc1' (QDense) iq: quantizer type 'float' is not supported; "
                            f"supported: kif, kbi (fixed point)")


def test_unsupported_table_function_is_one_line(tmp_path):
    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["config"].get("name") == "tanh":
                layer["config"]["activation"] = "gelu"
    bad = _rewrite(DATA / "lut.keras", tmp_path / "bad.keras", edit)
    with pytest.raises(FrontendError) as e:
        load_hgq2_graph(bad)
    assert str(e.value) == (f"{bad}: layer 'tanh' (QUnaryFunctionLUT): table function 'gelu' is not supported; "
                            f"supported: elu, exp, exponential, linear, relu, relu6, selu, sigmoid, silu, softplus, "
                            f"softsign, swish, tanh")


@pytest.mark.parametrize("case", ["no_weights", "truncated", "bad_json"])
def test_malformed_archive_is_one_line(capsys, tmp_path, case):
    path = tmp_path / "broken.keras"
    if case == "no_weights":
        _rewrite(DATA / "mlp.keras", path, drop=("model.weights.h5",))
        want = f"{path}: the .keras archive has no model.weights.h5; re-save the model with model.save()"
    elif case == "truncated":
        # config.json intact, the weights file cut in half inside the archive
        with zipfile.ZipFile(DATA / "mlp.keras") as zin, zipfile.ZipFile(path, "w") as zout:
            for item in zin.namelist():
                data = zin.read(item)
                zout.writestr(item, data[:len(data) // 2] if item == "model.weights.h5" else data)
        want = (f"{path}: cannot read model.weights.h5 (OSError); the archive is truncated or corrupt; "
                f"re-save the model")
    else:
        with zipfile.ZipFile(DATA / "mlp.keras") as zin, zipfile.ZipFile(path, "w") as zout:
            for item in zin.namelist():
                zout.writestr(item, b"{not json" if item == "config.json" else zin.read(item))
        want = f"{path}: the .keras archive has no valid config.json; re-save the model"
    if case == "bad_json":
        # an archive whose config cannot be read is not recognised as HGQ2: the Keras loader reports it
        assert not is_hgq2_archive(path)
        with pytest.raises(FrontendError) as e:
            fpga_gen.convert(path)
        assert str(e.value) == want
        return
    rc = main(["build", str(path), "-o", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert rc == 2
    assert err == f"fpga-gen: error: {want}\n"
    assert not (tmp_path / "out").exists()


def test_frontend_imports_no_keras():
    """The HGQ2 frontend reads archives without Keras, TensorFlow or hgq (a fresh interpreter)."""
    import subprocess
    import sys
    code = ("import sys; from fpga_gen.frontend.hgq2 import load_hgq2_graph; "
            f"g = load_hgq2_graph({str(DATA / 'cnn.keras')!r}); "
            "bad = [m for m in ('tensorflow', 'keras', 'hgq', 'tf_keras', 'qkeras') if m in sys.modules]; "
            "print(len(g), bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__('os').environ, "PYTHONPATH": str(Path(fpga_gen.__file__).parents[1])})
    assert r.returncode == 0, r.stderr
    n, bad = r.stdout.strip().split(" ", 1)
    assert int(n) > 5 and bad == "[]"


def test_fixed_quant_constants_of_any_parity(tmp_path):
    """Regression: the per-element constants (bits 2 and 4 only, every shift even) are written in integer types
    that hold them (a type fitted to even values had dropped a bit)."""
    from fpga_gen.api import Project
    from fpga_gen.config import ProjectConfig
    from fpga_gen.passes import DEFAULT_PASSES, run_passes
    xt = FixedType(10, 4, True)
    g = _fq_graph("RND", "WRAP", [1, 1, 0, 1], [1, 1, 2, 3], [0, 2, 2, 0], xt)
    cfg = ProjectConfig(input_precision=xt)
    run_passes(g, cfg, DEFAULT_PASSES)
    p = Project(g, cfg)
    p.write(tmp_path / "prj")
    text = (tmp_path / "prj" / "firmware" / "weights" / "bits_q.h").read_text()
    assert "    2.0, 4.0, 4.0, 4.0\n" in text


@pytest.mark.parametrize("name", ["mlp", "modes", "softmax", "lut", "random104"])
def test_float_reference_equals_hgq2(name):
    """The float64 reference of the untyped graph (what calibration profiles) is HGQ2's forward pass too: every
    HGQ2 op is quantized, so its float values are the quantized ones."""
    from fpga_gen.emulate.float_ref import float_forward
    x, y = ref(name)
    g = load_hgq2_graph(DATA / f"{name}.keras")
    got = float_forward(g, x)[g.outputs[0]]
    assert np.array_equal(got.reshape(y.shape), y)


@pytest.mark.slow
def test_generated_project_is_deterministic(tmp_path):
    """Two builds of one HGQ2 archive write byte-identical projects (per-element constants, tables, weights)."""
    import filecmp
    for d in ("a", "b"):
        assert main(["build", str(DATA / "softmax.keras"), "-o", str(tmp_path / d)]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", [str(f) for f in files], shallow=False)
    assert mismatch == [] and errors == []
