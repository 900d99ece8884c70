"""The QONNX frontend (fpga_gen/frontend/qonnx): .onnx models from Brevitas' export_qonnx, hand-written QONNX
graphs (the fuzzer, tests/qonnx_models.py) and float ONNX from torch.onnx.export.

Reference: qonnx's execute_onnx.  With power-of-two Quant scales every fpga-gen value is exact, and so is the
reference's float32 wherever its sums need at most 24 significant bits (the models here): csim == emulator ==
execute_onnx, np.array_equal.  A float (unquantized) bias is held exactly by fpga-gen; the reference adds it in
float32, so there the stated bound is tested instead (test_float_bias_within_bound)."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("qonnx")

import onnx  # noqa: E402

import fpga_gen  # noqa: E402
from fpga_gen import csim  # noqa: E402
from fpga_gen.cli import main  # noqa: E402
from fpga_gen.frontend.keras.loader import FrontendError  # noqa: E402
from qonnx_models import _Builder, _make, brevitas_cnn, brevitas_mlp, export_brevitas, random_qonnx  # noqa: E402


def _inputs(shape, n=200, seed=0, lo=-3.0, hi=3.0):
    return (np.random.default_rng(seed).random((n,) + tuple(shape)) * (hi - lo) + lo).astype(np.float32)


def _save(model, tmp_path, name="m.onnx"):
    p = tmp_path / name
    onnx.save(model, str(p))
    return p


def _assert_exact(path, x, csim_too=True):
    project = fpga_gen.convert(str(path))
    emu = project.predict(x)
    ref = project.model.predict(x)
    assert emu.shape == ref.shape
    assert np.array_equal(emu, ref), f"emulator vs execute_onnx: {np.mean(emu == ref):.4f} equal"
    if csim_too:
        got = project.predict(x, backend="csim")
        assert np.array_equal(got, emu), f"csim vs emulator: {np.mean(got == emu):.4f} equal"
    return project, emu


# ---------------------------------------------------------------------------------------------- Brevitas
@pytest.fixture(scope="module")
def brevitas():
    return pytest.importorskip("brevitas")


@pytest.mark.parametrize("bits,bias", [(8, "int16"), pytest.param(4, "int8", marks=pytest.mark.slow)])
def test_brevitas_mlp_bit_exact(brevitas, tmp_path, bits, bias):
    path = export_brevitas(brevitas_mlp(seed=bits, w_bits=bits, a_bits=bits, bias_quant=bias), (64,),
                           tmp_path / "mlp.onnx")
    project, emu = _assert_exact(path, _inputs((64,), lo=-1, hi=2))
    kinds = [n.op for n in project.graph]
    assert kinds == ["input", "dense", "activation", "activation", "dense"]
    # the input type is the QuantIdentity's: signed, `bits` wide, rounding half to even, saturating
    t = project.graph.input_nodes()[0].types["result"]
    assert (t.width, t.signed, t.rounding, t.saturation) == (bits, True, "RND_CONV", "SAT")
    assert len(np.unique(emu)) > 50            # the outputs are not a constant


@pytest.mark.slow
def test_brevitas_dynamo_export_bit_exact(brevitas, tmp_path):
    """torch.onnx's default exporter (torch.export: IR 10, other node names) reads the same."""
    path = export_brevitas(brevitas_mlp(seed=2), (64,), tmp_path / "mlp.onnx", dynamo=True)
    proto = onnx.load(str(path))
    assert proto.ir_version == 10
    _assert_exact(path, _inputs((64,), lo=-1, hi=2), csim_too=False)


@pytest.mark.parametrize("per_channel", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_brevitas_cnn_bit_exact(brevitas, tmp_path, per_channel):
    path = export_brevitas(brevitas_cnn(seed=3, channels=2, size=6, per_channel=per_channel), (2, 6, 6),
                           tmp_path / "cnn.onnx")
    project, emu = _assert_exact(path, _inputs((2, 6, 6), n=100, lo=-1, hi=2))
    ops = [n.op for n in project.graph]
    assert ops.count("transpose") == 2          # NCHW in, and back to NCHW before the Flatten
    assert project.graph.input_nodes()[0].shape == (2, 6, 6)
    assert emu.shape == (100, 10)


def test_brevitas_trunc_avg_pool_bit_exact(brevitas, tmp_path):
    """TruncAvgPool2d exports AveragePool + Trunc (qonnx opset 2): the average of 2x2 windows of a quantized
    tensor is on the grid of the Trunc's scale, so the Trunc is a cast."""
    import torch
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias
    torch.manual_seed(0)
    w = dict(weight_quant=Int8WeightPerTensorFixedPoint, bias_quant=Int16Bias)
    m = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True),
        qnn.QuantConv2d(2, 4, 3, padding=1, return_quant_tensor=True, **w),
        qnn.QuantReLU(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True),
        qnn.TruncAvgPool2d(2, bit_width=6, return_quant_tensor=True), torch.nn.Flatten(),
        qnn.QuantLinear(16, 5, **w))
    project, _ = _assert_exact(export_brevitas(m, (2, 4, 4), tmp_path / "trunc.onnx"),
                               _inputs((2, 4, 4), n=100, lo=-1, hi=2), csim_too=False)
    trunc = [n for n in project.graph if n.meta.get("onnx_op") == "Trunc"]
    assert len(trunc) == 1 and trunc[0].types["result"].width == 6


# ---------------------------------------------------------------------------------------------- the fuzzer
def _fuzz_one(tmp_path, seed, kind, bias, csim_too):
    model, desc = random_qonnx(seed, kind, bias)
    path = _save(model, tmp_path, f"r{seed}.onnx")
    project = fpga_gen.convert(str(path))
    x = _inputs(project.graph.input_nodes()[0].shape, n=200, seed=seed)
    emu = project.predict(x)
    ref = project.model.predict(x)
    assert np.array_equal(emu, ref), f"seed {seed} ({desc}): {np.mean(emu == ref):.4f} equal"
    if csim_too:
        assert np.array_equal(project.predict(x, backend="csim"), emu), f"seed {seed} ({desc}): csim"


@pytest.mark.parametrize("seed,kind,bias", [(0, "linear", "none"), pytest.param(3, "conv", "none", marks=pytest.mark.slow),
                                            (11, "conv", "quant"), (14, "linear", "quant"),
                                            pytest.param(21, "conv", "quant", marks=pytest.mark.slow)])
def test_random_qonnx_bit_exact(tmp_path, seed, kind, bias):
    _fuzz_one(tmp_path, seed, kind, bias, csim_too=False)      # csim: the Brevitas tests and the long profile


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 160))
def test_random_qonnx_bit_exact_long(tmp_path, seed):
    _fuzz_one(tmp_path, seed, "conv" if seed % 2 else "linear", "quant" if seed % 3 else "none",
              csim_too=seed % 10 == 0)


def _float_bias_bound(project, x):
    """The stated bound for a float bias added before a float output: fpga-gen holds x @ w + b exactly, the
    reference rounds each of the n_in + 1 float32 additions, so |emu - ref| <= (n_in + 1) * 2**-24 *
    (|b| + sum |x_i w_i|) per output (the standard float32 summation bound)."""
    out = project.graph.output_nodes()[0]
    assert out.op == "dense"
    trace = project.emulator().predict(x, trace=True)
    xin = trace[out.inputs[0]].reshape(len(x), -1)
    w, b = out.weights["kernel"], out.weights["bias"]
    mag = np.abs(xin) @ np.abs(w) + np.abs(b)
    return (w.shape[0] + 1) * 2.0 ** -24 * mag


@pytest.mark.parametrize("seed,kind", [(12, "linear"), pytest.param(16, "linear", marks=pytest.mark.slow),
                                       pytest.param(1, "conv", marks=pytest.mark.slow),
                                       pytest.param(19, "conv", marks=pytest.mark.slow)])
def test_float_bias_within_bound(tmp_path, seed, kind):
    model, desc = random_qonnx(seed, kind, "float")
    project = fpga_gen.convert(str(_save(model, tmp_path)))
    x = _inputs(project.graph.input_nodes()[0].shape, n=300, seed=seed)
    emu, ref = project.predict(x), project.model.predict(x)
    if project.graph.output_nodes()[0].op == "dense":
        bound = _float_bias_bound(project, x)
        assert np.all(np.abs(emu - ref) <= bound), f"{desc}: worst {np.max(np.abs(emu - ref) - bound):.3g} past it"
    else:
        # a Quant after the float bias: equal except where float32 rounding moves a sum across a rounding
        # boundary of the quantizer, by one step of it
        lsb = project.graph.output_nodes()[0].types["result"].step
        assert np.all(np.abs(emu - ref) <= lsb) and np.mean(emu == ref) >= 0.99, desc
    assert np.mean(emu.argmax(1) == ref.argmax(1)) == 1.0
    if kind == "conv":                           # (slow) the C++ computes the same exact values
        assert np.array_equal(project.predict(x[:50], backend="csim"), emu[:50])


@pytest.mark.slow
def test_brevitas_float_scale_weights_within_bound(brevitas, tmp_path):
    """Brevitas' default weight quantizer (Int8WeightPerTensorFloat: a float32 scale) with fixed-point
    activations: the float32 weights are dyadic, held exactly (wide types); execute_onnx sums them in float32, so
    the logits differ within the float32 summation bound and the arg-max agrees."""
    import torch
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFloat, Uint8ActPerTensorFixedPoint
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True),
        qnn.QuantLinear(64, 16, bias=True, weight_quant=Int8WeightPerTensorFloat, return_quant_tensor=True),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True),
        qnn.QuantLinear(16, 10, bias=True, weight_quant=Int8WeightPerTensorFloat))
    project = fpga_gen.convert(str(export_brevitas(m, (64,), tmp_path / "fw.onnx")))
    x = _inputs((64,), n=300, lo=-1, hi=2)
    emu, ref = project.predict(x), project.model.predict(x)
    assert np.all(np.abs(emu - ref) <= _float_bias_bound(project, x))
    assert not np.array_equal(emu, ref)          # float32 sums: not bit-exact, which is why the bound is stated
    assert np.mean(emu.argmax(1) == ref.argmax(1)) == 1.0


# ---------------------------------------------------------------------------------------------- float scales
def _grid_inputs(shape, n, seed):
    """Inputs on a 2**-6 grid in [-3, 3): exact in the input type ap_fixed<10,4> the float-scale tests use (the
    first Quant's thresholds are float32 values compared with the exact input)."""
    x = np.random.default_rng(seed).random((n,) + tuple(shape)) * 6 - 3
    return (np.floor(x * 64) / 64).astype(np.float32)


def _logit_bound(project, x):
    """The stated bound where a float-scale accumulator is the output (an apply_scale: acc * S + B held exactly):
    the reference rounds x_q = float32(k_x * s_x), w_q, each product and each of the n_in + 1 additions in
    float32, so |emu - ref| <= (n_in + 4) * 2**-24 * (|B| + sum |x_i w_i|) per output (first order)."""
    out = project.graph.output_nodes()[0]
    if out.op != "apply_scale":
        return None
    dense = project.graph[out.inputs[0]]
    trace = project.emulator().predict(x, trace=True)
    codes = trace[dense.inputs[0]].reshape(len(x), -1)
    k = dense.weights["kernel"].reshape(-1, dense.weights["kernel"].shape[-1])
    mag = (np.abs(codes) @ np.abs(k)) * out.weights["scale"] + np.abs(out.weights["bias"])
    return (k.shape[0] + 4) * 2.0 ** -24 * mag


def _assert_logits(emu, ref, bound, what):
    """Within the bound everywhere; the same arg-max wherever the reference's best logit leads the second by
    more than twice the bound (low-bit models tie often: a tie may fall either way within float32 rounding)."""
    assert np.all(np.abs(emu - ref) <= bound), what
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * bound.max(axis=1)
    assert clear.mean() > 0.5, what
    assert np.array_equal(emu.argmax(1)[clear], ref.argmax(1)[clear]), what


def _float_scale_one(tmp_path, seed, kind, csim_too=False, exact=False):
    model, desc = random_qonnx(seed, kind, float_scales=True)
    project = fpga_gen.convert(str(_save(model, tmp_path, f"f{seed}.onnx")), input_precision="ap_fixed<10,4>")
    assert any(n.attrs.get("function") == "multithreshold" for n in project.graph), desc
    x = _grid_inputs(project.graph.input_nodes()[0].shape, 200, seed)
    emu, ref = project.predict(x), project.model.predict(x)
    bound = _logit_bound(project, x)
    if bound is None:       # the model ends in a Quant: its float32 values; exact unless a sum sits on a boundary
        assert np.mean(emu == ref) >= (1.0 if exact else 0.99), f"seed {seed} ({desc}): {np.mean(emu == ref):.4f} equal"
    else:
        _assert_logits(emu, ref, bound, f"seed {seed} ({desc})")
    if csim_too:
        assert np.array_equal(project.predict(x[:50], backend="csim"), emu[:50]), f"seed {seed} ({desc}): csim"
    return project, x


@pytest.mark.parametrize("seed,kind", [(1, "conv"), (24, "linear"), pytest.param(19, "conv", marks=pytest.mark.slow),
                                       pytest.param(8, "linear", marks=pytest.mark.slow)])
def test_random_float_scales(tmp_path, seed, kind):
    """Non-power-of-two scales everywhere: equal to execute_onnx bit for bit where the model ends in a Quant
    (multithreshold levels from qonnx's own float32 quantizer; these models: every value), within the stated
    bound on float logits.  The long profile allows 1 % of the values to differ: a threshold follows one float32
    product acc * S where execute_onnx sums float32 products, so a sum on a rounding boundary can go the other
    way (1 value in 1,000 of one model in 60 so far)."""
    project, x = _float_scale_one(tmp_path, seed, kind, csim_too=seed == 1, exact=True)
    if seed == 24:                                  # the PyTorch kernels (gpu back end) give the same bits
        from helpers_graphs import assert_torch_equals_emulator
        assert_torch_equals_emulator(project, x)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 260))
def test_random_float_scales_long(tmp_path, seed):
    _float_scale_one(tmp_path, seed, "conv" if seed % 2 else "linear", csim_too=seed % 10 == 0)


@pytest.mark.slow
@pytest.mark.parametrize("seed,kind", [(19, "conv"), (24, "linear")])
def test_float_scales_io_stream(tmp_path, seed, kind):
    """The multithreshold through io_stream (per-word wrappers): csim == emulator."""
    model, desc = random_qonnx(seed, kind, float_scales=True)
    project = fpga_gen.convert(str(_save(model, tmp_path)), input_precision="ap_fixed<10,4>", io="stream")
    x = _grid_inputs(project.graph.input_nodes()[0].shape, 30, seed)
    assert np.array_equal(project.predict(x, backend="csim"), project.predict(x)), desc


def _brevitas_default(final_quant: bool, conv: bool = False):
    """Brevitas' default quantizers: Int8ActPerTensorFloat in, Int8WeightPerTensorFloat (per-channel float for
    the conv) weights, float biases, Uint8ActPerTensorFloat ReLUs; a QuantIdentity at the end or float logits."""
    import torch
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerChannelFloat
    torch.manual_seed(5)
    if conv:
        layers = [qnn.QuantIdentity(return_quant_tensor=True),
                  qnn.QuantConv2d(2, 4, 3, padding=1, weight_quant=Int8WeightPerChannelFloat,
                                  return_quant_tensor=True),
                  qnn.QuantReLU(return_quant_tensor=True), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                  qnn.QuantLinear(36, 10, bias=True, return_quant_tensor=final_quant)]
    else:
        layers = [qnn.QuantIdentity(return_quant_tensor=True), qnn.QuantLinear(64, 16, bias=True,
                                                                              return_quant_tensor=True),
                  qnn.QuantReLU(return_quant_tensor=True),
                  qnn.QuantLinear(16, 10, bias=True, return_quant_tensor=final_quant)]
    if final_quant:
        layers.append(qnn.QuantIdentity(return_quant_tensor=False))
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("final_quant,conv", [(True, False), (False, False),
                                              pytest.param(True, True, marks=pytest.mark.slow)])
def test_brevitas_default_float_quantizers(brevitas, tmp_path, final_quant, conv):
    shape = (2, 6, 6) if conv else (64,)
    path = export_brevitas(_brevitas_default(final_quant, conv), shape, tmp_path / "d.onnx",
                           calib=_grid_inputs(shape, 64, 9))
    project = fpga_gen.convert(str(path), input_precision="ap_fixed<10,4>")
    x = _grid_inputs(shape, 200, 3)
    emu, ref = project.predict(x), project.model.predict(x)
    if final_quant:
        assert np.array_equal(emu, ref), f"{np.mean(emu == ref):.4f} equal"
    else:
        _assert_logits(emu, ref, _logit_bound(project, x), "Brevitas defaults")
    assert len(np.unique(emu)) > 20
    if conv:                # (slow) csim of the multithreshold after a conv; the linear form: test_random_float_scales
        assert np.array_equal(project.predict(x[:40], backend="csim"), emu[:40])


# ---------------------------------------------------------------------------------------------- float ONNX
def test_float_torch_onnx_with_calibration(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(16, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4)).eval()
    path = tmp_path / "float_mlp.onnx"
    # a dynamic batch dimension (set to 1 on load: the reference runs one sample at a time)
    torch.onnx.export(m, torch.zeros(1, 16), str(path), dynamo=False, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    x = _inputs((16,), n=300, lo=0, hi=4)
    np.save(tmp_path / "x.npy", x)
    project = fpga_gen.convert(str(path), calibrate=str(tmp_path / "x.npy"))
    assert project.calibration is not None
    emu = project.predict(x)
    with torch.no_grad():
        want = m(torch.as_tensor(x)).numpy()
    assert np.abs(emu - want).max() < 0.02 * max(1.0, np.abs(want).max())
    assert np.mean(emu.argmax(1) == want.argmax(1)) >= 0.99
    assert np.allclose(project.model.predict(x[:20]), want[:20], atol=1e-5)       # execute_onnx == PyTorch


# ---------------------------------------------------------------------------------------------- command line
def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_build_csim_verify(capsys, tmp_path):
    path = _save(random_qonnx(14, "linear", "quant")[0], tmp_path, "mlp.onnx")
    x = _inputs((onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[1].dim_value,), n=64)
    np.save(tmp_path / "x.npy", x)
    rc, out, err = run(capsys, "build", path, "-o", tmp_path / "prj", "--tb-data", tmp_path / "x.npy")
    assert rc == 0, err
    assert (tmp_path / "prj" / "firmware").is_dir()
    rc, out, err = run(capsys, "csim", tmp_path / "prj")
    assert rc == 0, err
    rc, out, err = run(capsys, "verify", path, "--data", tmp_path / "x.npy", "--backend", "csim")
    assert rc == 0, out + err
    assert "csim vs qonnx, tolerance exact" in out and "exact match 100.00 %" in out
    rc, out, err = run(capsys, "inspect", path)
    assert rc == 0 and "dense" in out
    rc, out, err = run(capsys, "estimate", path)
    assert rc == 0 and "DSP" in out


def test_generated_project_is_deterministic(tmp_path):
    path = _save(random_qonnx(11, "conv", "quant")[0], tmp_path)
    a = fpga_gen.convert(str(path)).write(tmp_path / "a")
    b = fpga_gen.convert(str(path)).write(tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        if f.name not in ("report.html",):
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


# ---------------------------------------------------------------------------------------------- errors
def _one_quant_model(op="Relu", scale=0.25, mode="ROUND", opset=13, ir=8, **attrs):
    from onnx import helper
    b = _Builder(np.random.default_rng(0))
    x = b.quant("x", 0, 8, True, mode=mode, scale=scale)
    b.nodes.append(helper.make_node(op, [x], ["y"], name="the_node", **attrs))
    return _make(b.nodes, b.inits, (4,), (4,), "tiny", opset=opset, ir=ir)


def _error(capsys, tmp_path, model_or_bytes):
    p = tmp_path / "bad.onnx"
    if isinstance(model_or_bytes, bytes):
        p.write_bytes(model_or_bytes)
    else:
        onnx.save(model_or_bytes, str(p))
    rc, out, err = run(capsys, "build", p, "-o", tmp_path / "out")
    assert rc == 2
    assert not (tmp_path / "out").exists()
    assert err.count("\n") == 1 and err.startswith("fpga-gen: error: ")
    return err[len("fpga-gen: error: "):].rstrip("\n")


def test_error_unsupported_op(capsys, tmp_path):
    from fpga_gen.frontend.qonnx import supported_ops
    msg = _error(capsys, tmp_path, _one_quant_model("Erf"))
    assert msg == f"node 'the_node' (Erf) is not supported; supported ops: {', '.join(supported_ops())}"


def test_error_malformed_file(capsys, tmp_path):
    msg = _error(capsys, tmp_path, b"\x08\x07garbage that is not a protobuf \xff\xfe")
    assert msg.startswith(f"{tmp_path / 'bad.onnx'}: not a valid ONNX file (")
    assert msg.endswith("); the file is truncated or corrupt: export it again")


def test_error_empty_file(capsys, tmp_path):
    msg = _error(capsys, tmp_path, b"")
    assert msg == (f"{tmp_path / 'bad.onnx'}: the file is empty; export the model with "
                   f"brevitas.export.export_qonnx or torch.onnx.export")


def test_error_opset_and_ir_out_of_range(capsys, tmp_path):
    msg = _error(capsys, tmp_path, _one_quant_model(opset=7))
    assert msg == (f"{tmp_path / 'bad.onnx'}: ONNX opset 7 is outside the tested range 11-21; export with "
                   f"opset_version between them")
    msg = _error(capsys, tmp_path, _one_quant_model(ir=3))
    assert msg == (f"{tmp_path / 'bad.onnx'}: ONNX IR version 3 is outside the tested range 7-11; export with a "
                   f"supported exporter (e.g. torch.onnx.export opset_version=18)")


def test_error_rounding_mode_without_fixed_point_equivalent(capsys, tmp_path):
    b = _Builder(np.random.default_rng(0))
    x = b.quant("x", 0, 8, True)
    y = b.node("Relu", [x])
    b.quant(y, 2, 4, False, mode="CEIL")
    b.nodes[-1].output[0] = "y"
    b.nodes[-1].name = "q_ceil"
    msg = _error(capsys, tmp_path, _make(b.nodes, b.inits, (4,), (4,), "tiny"))
    assert msg == ("node 'q_ceil' (Quant): rounding_mode 'CEIL' has no fixed-point equivalent; supported: ROUND, "
                   "HALF_EVEN, FLOOR, DOWN, HALF_UP, HALF_DOWN")


def test_error_per_channel_activation_scale(tmp_path):
    b = _Builder(np.random.default_rng(0))
    x = b.quant("x", 0, 8, True)
    y = b.node("Relu", [x])
    b.quant(y, 0, 4, False, scale=np.array([0.3, 0.4, 0.3, 0.5]))
    b.nodes[-1].output[0] = "y"
    b.nodes[-1].name = "q_chan"
    with pytest.raises(FrontendError) as e:
        fpga_gen.convert(str(_save(_make(b.nodes, b.inits, (4,), (4,), "tiny"), tmp_path)))
    assert str(e.value) == ("node 'q_chan' (Quant): a per-channel scale on activations is not supported yet; use a "
                            "per-tensor quantizer (e.g. brevitas' Int8ActPerTensorFixedPoint)")


def test_onnx_import_is_lazy():
    code = "import fpga_gen, fpga_gen.api, fpga_gen.frontend, sys; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_error_nonzero_zero_point(tmp_path):
    from onnx import helper
    b = _Builder(np.random.default_rng(0))
    x = b.quant("x", 0, 8, True)
    y = b.node("Relu", [x])
    b.nodes.append(helper.make_node("Quant", [y, b.const("s", 0.25), b.const("z", 3.0), b.const("b", 4.0)], ["y"],
                                    name="q_zp", domain="qonnx.custom_op.general", signed=0, narrow=0,
                                    rounding_mode="ROUND"))
    with pytest.raises(FrontendError) as e:
        fpga_gen.convert(str(_save(_make(b.nodes, b.inits, (4,), (4,), "tiny"), tmp_path)))
    assert str(e.value) == ("node 'q_zp' (Quant): zero point 3.0 is not supported; use a zero point of 0 (a "
                            "symmetric or unsigned quantizer)")


# ---------------------------------------------------------------------------------------------- the other ops
def _ops_model(kind: str):
    """A small QONNX CNN around one op family (power-of-two scales): exact ones compared bit for bit."""
    b = _Builder(np.random.default_rng(7))
    x = b.quant("x", 4, 8, True)                                       # (2, 4, 4) input
    w1 = b.weights((3, 2, 3, 3), False, 6)
    c1 = b.node("Conv", [x, w1], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    r1 = b.quant(b.node("Relu", [c1]), 4, 6, False)                     # (3, 4, 4), codes on 2**-4
    if kind == "merge":
        w2 = b.weights((3, 2, 1, 1), True, 5)
        c2 = b.quant(b.node("Conv", [x, w2], kernel_shape=[1, 1]), 3, 6, True)
        added = b.node("Add", [r1, c2])
        y = b.node("Concat", [added, c2], axis=1)                       # (6, 4, 4)
        y = b.node("GlobalAveragePool", [y])                            # 16 cells: exact
        y = b.node("Flatten", [y], axis=1)
        out_shape = (6,)
    elif kind == "layout":
        y = b.node("Mul", [r1, b.const("m", np.array([0.5, 2.0, 0.25]).reshape(1, 3, 1, 1))])
        y = b.node("Clip", [y, b.const("lo", np.float32(0.0)), b.const("hi", np.float32(1.0))])
        y = b.node("Transpose", [y], perm=[0, 2, 3, 1])                  # (4, 4, 3)
        y = b.node("Reshape", [y, b.const("shape", np.array([1, 48]))])     # made int64 below
        w3 = b.weights((5, 48), False, 6)
        y = b.node("Gemm", [y, w3], transB=1)
        out_shape = (5,)
    else:                                                               # float ops: approximations
        w3 = b.weights((5, 48), False, 6)
        y = b.node("Gemm", [b.node("Flatten", [r1], axis=1), w3], transB=1)
        y = b.node("BatchNormalization", [y, b.const("g", np.linspace(0.5, 1.5, 5)), b.const("be", np.zeros(5)),
                                          b.const("mu", np.full(5, 0.1)), b.const("va", np.full(5, 2.0))],
                   epsilon=1e-5)
        y = b.node("Softmax", [y], axis=1)
        out_shape = (5,)
    b.nodes[-1].output[0] = "y"
    model = _make(b.nodes, b.inits, (2, 4, 4), out_shape, f"ops_{kind}")
    if kind == "layout":        # the Reshape's shape is an int64 constant
        from onnx import numpy_helper
        for i, init in enumerate(model.graph.initializer):
            if init.name.startswith("shape"):
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.array([1, 48], dtype=np.int64),
                                                                            init.name))
    return model


@pytest.mark.parametrize("kind", ["merge", "layout"])
def test_other_ops_bit_exact(tmp_path, kind):
    """Add and Concat of two branches, GlobalAveragePool, Flatten; Mul by a per-channel constant, Clip,
    Transpose, Reshape: emulator == execute_onnx (the emulator's kernels are held to csim elsewhere)."""
    project = fpga_gen.convert(str(_save(_ops_model(kind), tmp_path)))
    x = _inputs((2, 4, 4), n=100, seed=3)
    emu, ref = project.predict(x), project.model.predict(x)
    assert np.array_equal(emu, ref), f"{np.mean(emu == ref):.4f} equal"
    assert len(np.unique(emu)) > 10


def test_float_ops_close(tmp_path):
    """BatchNormalization (default precision) and Softmax (tables) are approximations: close, same arg-max."""
    project = fpga_gen.convert(str(_save(_ops_model("float"), tmp_path)))
    assert [n.op for n in project.graph][-2:] == ["batchnorm", "softmax"]
    x = _inputs((2, 4, 4), n=100, seed=4)
    emu, ref = project.predict(x), project.model.predict(x)
    assert np.abs(emu - ref).max() < 0.02
    assert np.mean(emu.argmax(1) == ref.argmax(1)) >= 0.95
