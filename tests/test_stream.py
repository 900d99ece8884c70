"""io_stream (hls::stream FIFOs between layers, a DATAFLOW top): csim equals the emulator bit for bit on
MLPs (dense, relu, quantized activations, softmax; latency and resource) and CNNs (conv2d valid/same, strides
> 1, non-square kernels, 1 and many channels, latency and resource; max/average pooling); options the stream
kernels compute differently are refused in one line; the AXI4-Stream wrapper works under g++; the CLI builds
and C-simulates `--io stream` projects; generated files are byte-identical across runs.

Each project is compiled once (a csim compile is seconds): one model covers several options."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from fpga_gen import convert, csim
from fpga_gen.hls import write_project
from fpga_gen.hls.layers import HlsWriteError
from fpga_gen.hls.stream import STREAM_HANDLERS, fifo_depth

from qmodels import qmlp
from test_conv import IN_PREC, _tf, random_inputs

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def qchain(in_shape, layers, seed=0, name="qchain"):
    """A QKeras model from specs: ('conv', filters, kernel, strides, padding[, act]), ('max'|'avg', pool,
    strides, padding), ('act', 'quantized_relu'|'quantized_bits'|'relu'), ('flat',), ('dense', n),
    ('softmax',)."""
    tf = _tf()
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    wq = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
              kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
              bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))
    quant = {"quantized_relu": lambda: quantized_relu(6, 2), "quantized_bits": lambda: quantized_bits(6, 2, alpha=1)}
    out = [tf.keras.layers.InputLayer(input_shape=in_shape, name="x")]
    for k, spec in enumerate(layers):
        kind = spec[0]
        if kind == "conv":
            out.append(QConv2D(spec[1], spec[2], strides=spec[3], padding=spec[4], name=f"conv{k}", **wq))
        elif kind in ("max", "avg"):
            cls = tf.keras.layers.MaxPooling2D if kind == "max" else tf.keras.layers.AveragePooling2D
            out.append(cls(spec[1], strides=spec[2], padding=spec[3], name=f"pool{k}"))
        elif kind == "act":
            out.append(QActivation(quant[spec[1]](), name=f"act{k}") if spec[1] in quant
                       else tf.keras.layers.Activation(spec[1], name=f"act{k}"))
        elif kind == "flat":
            out.append(tf.keras.layers.Flatten(name=f"flat{k}"))
        elif kind == "dense":
            out.append(QDense(spec[1], name=f"fc{k}", **wq))
        elif kind == "softmax":
            out.append(tf.keras.layers.Activation("softmax", name=f"softmax{k}"))
    return tf.keras.Sequential(out, name=name)


CNNS = {  # case -> (input shape, layers, reuse factor of the resource-strategy run)
    # many channels, 'same' (zero-padding stage), non-square kernel with strides > 1, max pooling
    "same_nonsquare_stride_max": ((7, 6, 3), [("conv", 4, (3, 3), 1, "same"), ("act", "quantized_relu"),
                                              ("conv", 3, (3, 2), (2, 2), "same"), ("act", "quantized_bits"),
                                              ("max", 2, None, "valid"), ("flat",), ("dense", 5)], 3),
    # one channel, 'valid', non-square kernel with strides (2, 1), average pooling 3x3, softmax at the end
    "valid_1chan_avg_softmax": ((9, 8, 1), [("conv", 2, (2, 3), (2, 1), "valid"), ("act", "quantized_relu"),
                                            ("avg", 2, None, "valid"), ("act", "quantized_bits"), ("flat",),
                                            ("dense", 4), ("softmax",)], 3),
    # a conv net ending in a conv (3-D output), kernel with stride > kernel, 'same' pooling without pads
    "conv_output_1x1_stride2": ((6, 8, 2), [("conv", 3, (1, 1), (1, 2), "valid"), ("act", "relu"),
                                            ("avg", (3, 2), None, "same"), ("conv", 2, (2, 2), 1, "same")], 2),
}


def _project(model, io="stream", **kw):
    return convert(model, input_precision=IN_PREC, io=io, **kw)


def _check_csim(project, root, n=300, seed=3):
    project.write(root)
    x = random_inputs(project, n, seed=seed)
    emu = project.predict(x)
    got = project.predict(x, backend="csim")
    assert np.array_equal(got, emu), f"{np.mean(got == emu):.4f} match"
    return x, emu


@needs_gxx
@pytest.mark.parametrize("strategy", ["latency", "resource"])
@pytest.mark.parametrize("case", sorted(CNNS))
def test_cnn_csim_equals_emulator(case, strategy, tmp_path):
    shape, layers, rf = CNNS[case]
    model = qchain(shape, layers, seed=1)
    cfg = {} if strategy == "latency" else {"strategy": "resource", "reuse_factor": rf}
    project = _project(model, **cfg)
    x, emu = _check_csim(project, tmp_path / "prj")
    # the same numbers as io_parallel (the emulator is io-independent) and the testbench agrees
    assert np.array_equal(_project(model, io="parallel", **cfg).predict(x), emu)
    assert csim.run_testbench(tmp_path / "prj").passed
    top = (tmp_path / "prj" / "firmware" / f"{project.name}.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "hls::stream<" in top


@needs_gxx
def test_stride_larger_than_kernel_and_one_wide_windows(tmp_path):
    """Line-buffer corners: a 2x2 kernel with stride 3 (rows and columns skipped), a 3x1 kernel (a window one
    column wide) with stride (2, 1), a 1x3 max pooling (one row high)."""
    model = qchain((16, 10, 2), [("conv", 3, (2, 2), (3, 3), "valid"), ("act", "quantized_bits"),
                                 ("conv", 2, (3, 1), (2, 1), "valid"), ("act", "quantized_bits"),
                                 ("max", (1, 3), None, "valid"), ("flat",), ("dense", 3)], seed=7)
    project = _project(model)
    assert [n.shape for n in project.graph if n.op in ("conv2d", "pooling")] == [(5, 3, 3), (2, 3, 2), (2, 1, 2)]
    _check_csim(project, tmp_path / "prj")


@needs_gxx
@pytest.mark.parametrize("act,softmax,cfg", [
    ("quantized_relu", True, {}),
    ("relu", True, {"strategy": "resource", "reuse_factor": 4}),
    ("quantized_bits", False, {"config": {"layers": {"dense_1": {"strategy": "resource", "reuse_factor": 16}}}}),
])
def test_mlp_csim_equals_emulator(act, softmax, cfg, tmp_path):
    model = qmlp([16, 32, 16, 5], act=act, softmax=softmax, seed=4)
    project = _project(model, **cfg)
    _, emu = _check_csim(project, tmp_path / "prj", n=1000)
    assert not np.all(emu == 0)


@needs_gxx
def test_conv_saturating_accumulator_in_stream(tmp_path):
    """A narrow saturating accum makes the order of additions visible: the stream window goes through the same
    dense kernel (resource order) as the emulator's."""
    model = qchain((5, 6, 2), [("conv", 3, (3, 3), 1, "same"), ("flat",), ("dense", 3)], seed=5)
    cfg = {"layers": {"conv0": {"strategy": "resource", "reuse_factor": 3,
                                "precision": {"accum": "ap_fixed<9,2,AP_RND,AP_SAT>"}}}}
    project = _project(model, config=cfg)
    x, _ = _check_csim(project, tmp_path / "prj")
    assert np.mean(np.abs(project.emulator().predict(x, trace=True)["conv0"]) >= 1.99) > 0.05


@needs_gxx
def test_batch_predict_is_serialised_and_repeatable(tmp_path):
    """Line buffers live in static variables: a stream library runs one inference at a time, so a big batch
    (which threads would split) and the same samples one by one give the same bits."""
    shape, layers, _ = CNNS["same_nonsquare_stride_max"]
    project = _project(qchain(shape, layers, seed=1))
    project.write(tmp_path / "prj")
    x = random_inputs(project, 1200, seed=9)
    y = csim.predict(tmp_path / "prj", x, threads=2)
    assert np.array_equal(y, project.predict(x))
    assert np.array_equal(csim.predict(tmp_path / "prj", x[5:6]), y[5:6])


@pytest.mark.parametrize("layers,message", [
    ([("conv", 2, 3, 1, "valid"), ("max", 3, 2, "valid"), ("flat",), ("dense", 2)],
     "layer 'pool1' (pooling): io_stream pooling needs strides equal to pool_size, got pool_size (3, 3) and "
     "strides (2, 2); use io_type 'parallel' for this layer's model"),
    ([("conv", 2, 3, 1, "valid"), ("act", "quantized_bits"), ("max", 2, None, "same"), ("flat",), ("dense", 2)],
     "layer 'pool2' (pooling): io_stream pooling does not pad (nnet::pooling2d_cl would take padded zeros into "
     "the window); use padding='valid', an input size divisible by pool_size, or io_type 'parallel'"),
    ([("conv", 2, (1, 2), (2, 1), "valid"), ("flat",), ("dense", 2)],
     "layer 'conv0' (conv2d): io_stream conv2d with a kernel of height 1 and stride height 2 is not supported "
     "(hls4ml's line buffer then runs its 1-D kernel, which ignores the row stride); use stride height 1 or "
     "io_type 'parallel'"),
])
def test_stream_differences_are_refused_in_one_line(layers, message, tmp_path):
    project = _project(qchain((7, 7, 1), layers))
    with pytest.raises(HlsWriteError) as e:
        project.write(tmp_path / "prj")
    assert str(e.value) == message
    assert not (tmp_path / "prj").exists()
    _project(qchain((7, 7, 1), layers), io="parallel").write(tmp_path / "par")      # io_parallel has them


def test_pooling_accum_narrower_than_its_input_is_refused(tmp_path):
    model = qchain((4, 4, 1), [("conv", 1, 1, 1, "valid"), ("max", 2, None, "valid"), ("flat",), ("dense", 2)])
    project = _project(model, config={"layers": {"pool1": {"precision": {"accum": "ap_fixed<6,2>"}}}})
    with pytest.raises(HlsWriteError, match=r"^layer 'pool1' \(pooling\): io_stream pooling casts each input to "
                                            r"the accum type first; accum ap_fixed<6,2> does not hold the input "
                                            r"type ap_fixed<\d+,\d+>: widen"):
        project.write(tmp_path / "prj")


def test_fifo_depths_hold_whole_tensors_and_files_are_deterministic(tmp_path):
    shape, layers, _ = CNNS["same_nonsquare_stride_max"]
    project = _project(qchain(shape, layers, seed=1))
    x = random_inputs(project, 4)
    write_project(project.graph, project.config, _mk(tmp_path / "a"), tb_x=x, tb_y=project.predict(x))
    write_project(project.graph, project.config, _mk(tmp_path / "b"), tb_x=x, tb_y=project.predict(x))
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    top = (tmp_path / "a" / "firmware" / f"{project.name}.cpp").read_text()
    g = project.graph
    # in pixels: zero padding 7x6 -> 9x8, conv0 7x6, act1; zero padding 7x6 -> 9x6 (3x2 stride 2 'same' pads
    # rows only), conv2 4x3, act3, pool4 2x1; the dense output is the top's port
    depths = [int(line.split("depth=")[1]) for line in top.splitlines() if "#pragma HLS STREAM" in line]
    assert depths == [9 * 8, 7 * 6, 7 * 6, 9 * 6, 4 * 3, 4 * 3, 2 * 1]
    assert [depths[k] for k in (1, 2, 4, 5, 6)] == [fifo_depth(g[n].size, g[n].shape[-1])
                                                    for n in ("conv0", "act1", "conv2", "act3", "pool4")]
    assert "nnet::zeropad2d_cl<input_pack_t, input_pack_t, config_zp2d_conv0>(x_in, zp2d_conv0_out);" in top
    assert "typedef nnet::array<input_t, 3> input_pack_t;" in (tmp_path / "a" / "firmware" / "defines.h").read_text()


def _mk(p):
    p.mkdir(parents=True)
    return p


def test_registry_lists_the_stream_ops():
    assert sorted(STREAM_HANDLERS) == ["activation", "apply_scale", "batchnorm", "concatenate", "conv2d", "cropping",
                                       "dense", "depthwise_conv2d", "fixed_quant", "lut", "merge", "pooling", "quant_act", "softmax",
                                       "transpose", "upsampling", "zeropad"]


# ---------------------------------------------------------------------------- AXI4-Stream wrapper, CLI
@needs_gxx
@pytest.mark.parametrize("graph_kw,packing", [
    (dict(input_shape=(2, 5)), (5, 2, 1)),
    (dict(input_shape=(2, 2, 3), out_type=None), (3, 4, 1)),       # 3-channel pixels across 4-lane words, relu out
])
def test_axi_wrapper_of_a_stream_project_under_gxx(tmp_path, graph_kw, packing):
    """The dataflow board wrapper around a stream top matches the emulator word for word (the generated vectors:
    two DMA packets), as the io_parallel wrapper test does."""
    from board_graphs import config_for, small_graph
    from fpga_gen.boards import load_board
    from test_board_project import _compile_axi_tb, make_project

    board = load_board("pynq-z2")
    g = small_graph(**graph_kw)
    cfg = config_for(board)
    cfg.io_type = "stream"
    root, ctx = make_project(tmp_path / "p", board, graph=g, config=cfg)
    assert ctx["io_type"] == "stream" and (ctx["in_pack"], ctx["in_words"], ctx["out_words"]) == packing
    assert "#pragma HLS DATAFLOW" in (root / "firmware" / "net_axi.cpp").read_text()
    exe = _compile_axi_tb(root, ctx)
    r = subprocess.run([str(exe)], cwd=root, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "PASS: net_axi matches the emulator on 8 samples" in r.stdout, r.stdout + r.stderr


@needs_gxx
def test_cli_build_csim_and_predict_with_io_stream(tmp_path, capsys):
    from fpga_gen.cli import main

    shape, layers, _ = CNNS["valid_1chan_avg_softmax"]
    model = qchain(shape, layers, seed=2)
    model.save(tmp_path / "cnn.h5")
    project = _project(model)
    x = random_inputs(project, 40, seed=4)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "prj"
    assert main(["build", str(tmp_path / "cnn.h5"), "-o", str(out), "--io", "stream", "--input-precision", IN_PREC,
                 "--tb-data", str(tmp_path / "x.npy")]) == 0
    assert "io_stream" in capsys.readouterr().out
    assert "#pragma HLS DATAFLOW" in (out / "firmware" / "cnn.cpp").read_text()
    assert main(["csim", str(out)]) == 0
    assert main(["predict", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                 "--backend", "csim"]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), project.predict(x))
    assert main(["build", str(tmp_path / "cnn.h5"), "-o", str(tmp_path / "bad"), "--io", "stream",
                 "--input-precision", IN_PREC, "-c", str(_yaml(tmp_path, "layers: {pool2: {precision: "
                                                                        "{accum: 'ap_fixed<4,2>'}}}"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layer 'pool2' (pooling): io_stream pooling casts each input" in err[0], err
    assert not (tmp_path / "bad").exists()


def _yaml(tmp_path, text):
    p = tmp_path / "cfg.yml"
    p.write_text(text + "\n")
    return p


def test_estimator_costs_stream_padding_and_fifos():
    """io_stream estimate: a 'same' conv reads the zero-padded image (its latency counts padded pixels, its row
    notes the padding stage) and the FIFOs between layers are a row of their own."""
    from fpga_gen.estimate import estimate

    model = qchain((8, 8, 2), [("conv", 2, 3, 1, "same"), ("flat",), ("dense", 3)], seed=3)
    valid = qchain((8, 8, 2), [("conv", 2, 3, 1, "valid"), ("flat",), ("dense", 3)], seed=3)
    same = estimate(_project(model).graph, _project(model).config)
    rows = {L["name"]: L for L in same.layers}
    assert any("zero padding to 10x10" in n for n in rows["conv0"]["notes"])
    rows_valid = {L["name"]: L for L in estimate(_project(valid).graph, _project(valid).config).layers}
    assert rows["conv0"]["latency_cycles"] - rows_valid["conv0"]["latency_cycles"] >= 100 - 64
    assert rows["(dataflow channels)"]["op"] == "dataflow"
    par = estimate(_project(model, io="parallel").graph, _project(model, io="parallel").config)
    assert "(dataflow channels)" not in {L["name"] for L in par.layers}


@needs_gxx
def test_native_and_split_csim_backends_in_stream(tmp_path):
    """A model with a selu tail (CPU-only) in io_stream: the FPGA head is the stream project, 'split-csim' chains its
    C simulation with the fallback; 'native' is the same library as 'csim' on an unsplit project."""
    from test_split import selu_model, x_batch

    p = convert(selu_model(), io="stream")
    assert p.split_at == "dense_1"
    p.write(tmp_path / "split")
    x = x_batch(200, seed=4)
    assert np.array_equal(p.predict(x, backend="split-csim"), p.predict(x, backend="emu"))
    mlp = _project(qmlp([6, 8, 3], softmax=True, seed=6))
    mlp.write(tmp_path / "mlp")
    xm = random_inputs(mlp, 200)
    assert np.array_equal(mlp.predict(xm, backend="native"), mlp.predict(xm, backend="emu"))


def test_hls_limits_in_stream(tmp_path):
    """A 66x66 conv output is too big for io_parallel's partitioned arrays but fine in FIFOs; a dense kernel
    unrolls the same products in io_stream, so its limit stays (without suggesting io_stream)."""
    from fpga_gen.passes import PassError

    big = qchain((66, 66, 1), [("conv", 1, 1, 1, "valid"), ("act", "quantized_relu"), ("max", 4, None, "valid"),
                               ("flat",), ("dense", 2)])
    with pytest.raises(PassError, match="too large for io_parallel"):
        _project(big, io="parallel").write(tmp_path / "par")
    _project(big).write(tmp_path / "stream")
    wide = qmlp([80, 64, 2], seed=1)
    with pytest.raises(PassError) as e:
        _project(wide).write(tmp_path / "wide")
    assert str(e.value).startswith("layer 'dense_0': a 80x64 dense layer is too large for io_stream: the Latency "
                                   "strategy unrolls all its 5120 multiplications")
    assert str(e.value).endswith("reuse_factor: 2})") and "io_type stream" not in str(e.value)


def test_stream_projects_are_identical_across_processes(tmp_path):
    """Fresh interpreters with other hash seeds write the same bytes for a stream CNN with a board."""
    import sys

    shape, layers, _ = CNNS["same_nonsquare_stride_max"]
    qchain(shape, layers, seed=1).save(tmp_path / "cnn.h5")
    trees = []
    for seed in ("1", "2"):
        d = tmp_path / f"p{seed}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-m", "fpga_gen.cli", "build", str(tmp_path / "cnn.h5"), "-o", str(d),
                            "--io", "stream", "--board", "pynq-z2", "--input-precision", IN_PREC],
                           env=env, capture_output=True, text=True, cwd=os.getcwd())
        assert r.returncode == 0, r.stderr
        trees.append({p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()})
    assert trees[0].keys() == trees[1].keys()
    assert [k for k in trees[0] if trees[0][k] != trees[1][k]] == []


def test_hls4ml_config_with_io_stream_gives_a_stream_project(tmp_path):
    from fpga_gen.hls4ml_config import config_from_hls4ml

    p = tmp_path / "hls4ml_config.yml"
    p.write_text("IOType: io_stream\nModel:\n  Precision: fixed<16,6>\n  ReuseFactor: 1\n  Strategy: Latency\n")
    cfg = config_from_hls4ml(p)
    assert cfg.io_type == "stream"
    project = convert(qmlp([8, 6, 4], softmax=True, seed=1), config=cfg)
    project.write(tmp_path / "prj")
    assert "#pragma HLS DATAFLOW" in (tmp_path / "prj" / "firmware" / f"{project.name}.cpp").read_text()
