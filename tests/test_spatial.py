"""1-D and data-movement layers, io_parallel: Conv1D/QConv1D, Max/AveragePooling1D, GlobalMax/AveragePooling1D/2D,
ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D, Reshape and Permute.

For every case: the emulator equals QKeras exactly (fully quantized models: an average that is not a power-of-two
division is followed by a quantizer), and every backend (numpy emulator, PyTorch kernels on the CPU, the C++ of
the written project) gives the same bits on random inputs over the whole input type.
"""

import shutil

import numpy as np
import pytest

from fpga_gen import convert, csim, load_project
from fpga_gen.frontend import FrontendError, load_graph
from fpga_gen.passes import PassError

IN_PREC = "ap_fixed<12,4>"

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _tf():
    from fpga_gen.frontend.keras.loader import import_tf
    return import_tf()


def _wq(tf):
    from qkeras import quantized_bits
    return dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                kernel_initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0),
                bias_initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5))


def _q(kind):
    from qkeras import QActivation, quantized_bits, quantized_relu
    q = {"relu": quantized_relu(6, 2), "bits": quantized_bits(6, 2, alpha=1), "bits8": quantized_bits(8, 3, alpha=1)}
    return QActivation(q[kind])


def _layers(tf, name):
    """The layer stack of case ``name`` after the input (a QDense head is added by :func:`case_model`)."""
    from qkeras import QConv1D
    L, wq = tf.keras.layers, _wq(tf)
    return {
        # Conv1D / QConv1D: same/valid, strides, 1 and many channels, no bias, activation argument
        "conv1d_same_stride2": [QConv1D(4, 3, strides=2, padding="same", **wq), _q("relu")],
        "conv1d_valid_1ch_nobias": [QConv1D(3, 4, padding="valid", use_bias=False, **wq), _q("bits"),
                                    L.MaxPooling1D(3, strides=2, padding="valid")],
        "conv1d_many_chan_avg_same": [QConv1D(8, 2, padding="same", activation="quantized_bits(6, 2, alpha=1)",
                                              **wq), L.AveragePooling1D(2, padding="same"), _q("bits8")],
        "conv1d_kernel1": [QConv1D(5, 1, strides=3, padding="valid", **wq), _q("relu"),
                           L.AveragePooling1D(3, strides=1, padding="valid"), _q("bits")],
        "pool1d_max_same_stride2": [_q("bits"), L.MaxPooling1D(3, strides=2, padding="same")],
        "pool1d_avg_pow2": [_q("relu"), L.AveragePooling1D(4, strides=2, padding="valid")],
        # global pooling: non-power-of-two windows followed by a quantizer, power-of-two ones exact
        "gap2d_7x6": [_q("bits"), L.GlobalAveragePooling2D(), _q("bits8")],
        "gmp2d_keepdims": [_q("relu"), L.GlobalMaxPooling2D(keepdims=True)],
        "gap1d_pow2": [_q("bits"), L.GlobalAveragePooling1D()],
        "gmp1d": [QConv1D(6, 3, padding="same", **wq), _q("bits"), L.GlobalMaxPooling1D()],
        # data movement: non-square padding / cropping / sizes, 1 and many channels, reshape and permute between
        "pad_crop_up_2d": [_q("bits"), L.ZeroPadding2D(((1, 2), (0, 3))), L.Cropping2D(((2, 0), (1, 1))),
                           L.UpSampling2D((2, 3)), L.AveragePooling2D((2, 2), padding="same"), _q("bits")],
        "pad_crop_up_1d": [_q("relu"), L.ZeroPadding1D((2, 1)), L.UpSampling1D(3), L.Cropping1D((4, 1)),
                           QConv1D(2, 3, strides=2, padding="valid", **wq), _q("bits")],
        "reshape_permute": [_q("bits"), L.Reshape((3, 4, 14)), L.Permute((3, 1, 2)), L.ZeroPadding2D(1),
                            L.MaxPooling2D((3, 2)), L.Reshape((-1, 2)), L.Permute((2, 1)),
                            L.GlobalAveragePooling1D(), _q("bits8")],
        "reshape_flat_input": [L.Reshape((8, 3)), QConv1D(2, 3, padding="same", **wq), _q("bits"), L.Flatten(),
                               L.Reshape((4, 4, 1)), L.AveragePooling2D((2, 3), strides=(1, 2), padding="same"),
                               _q("bits8")],
    }[name]


# case -> input shape
CASES = {
    "conv1d_same_stride2": (9, 3), "conv1d_valid_1ch_nobias": (12, 1), "conv1d_many_chan_avg_same": (7, 16),
    "conv1d_kernel1": (11, 2), "pool1d_max_same_stride2": (8, 3), "pool1d_avg_pow2": (10, 2),
    "gap2d_7x6": (7, 6, 3), "gmp2d_keepdims": (5, 4, 2), "gap1d_pow2": (8, 5), "gmp1d": (6, 1),
    "pad_crop_up_2d": (5, 4, 2), "pad_crop_up_1d": (6, 3), "reshape_permute": (12, 14),
    "reshape_flat_input": (24,),
}


def case_model(case, seed=0, n_out=3):
    tf = _tf()
    from qkeras import QDense
    tf.keras.utils.set_random_seed(seed)
    L = tf.keras.layers
    layers = [L.InputLayer(input_shape=CASES[case], name="x"), *_layers(tf, case), L.Flatten(name="flat"),
              QDense(n_out, name="fc", **_wq(tf))]
    return tf.keras.Sequential(layers, name=case)


def grid_inputs(n, shape, seed=1):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(-4.0, 4.0, size=(n,) + tuple(shape)) * 16) / 16


def random_inputs(project, n, seed=3):
    """Random values of the input type over its whole range, its extremes included."""
    node = project.graph.input_nodes()[0]
    t = node.types["result"]
    rng = np.random.default_rng(seed)
    raw = rng.integers(t.raw_min, t.raw_max + 1, size=(n,) + tuple(node.shape))
    raw[0], raw[1] = t.raw_min, t.raw_max
    return raw * 2.0 ** -t.frac


@pytest.mark.parametrize("case", sorted(CASES))
def test_emulator_equals_qkeras_exactly(case):
    model = case_model(case)
    project = convert(model, input_precision=IN_PREC)
    x = grid_inputs(300, CASES[case])
    emu = project.predict(x)
    ref = model.predict(x.astype(np.float32), verbose=0, batch_size=1024).astype(np.float64)
    assert np.array_equal(emu, ref), f"{np.mean(emu == ref):.4f} match"


@needs_gxx
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_backend_equals_the_emulator(case):
    """emu == gpu (TorchOps on the CPU) == csim (the written project's C++), bit for bit."""
    project = convert(case_model(case, seed=1), input_precision=IN_PREC)
    x = random_inputs(project, 300)
    emu = project.predict(x)
    assert np.array_equal(project.predict(x, backend="csim"), emu)
    pytest.importorskip("torch")
    assert np.array_equal(project.predict(x, backend="gpu"), emu)


@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_kernels_equal_numpy_on_edge_inputs(case):
    """Every node's output on TorchOps (CPU) equals numpy's, signs of zeros included, on random and edge inputs
    (the extremes of the input type, ties, NaN, infinities; see tests/test_backends.py)."""
    pytest.importorskip("torch")
    from fpga_gen.emulate.torch_ops import TorchOps
    from test_backends import assert_same_as_numpy, edge_inputs
    project = convert(case_model(case), input_precision=IN_PREC)
    shape = CASES[case]
    n_in = int(np.prod(shape))
    xt = project.graph[project.graph.inputs[0]].types["result"]
    x = np.concatenate([grid_inputs(100, shape).reshape(100, n_in), edge_inputs(xt, n_in, 100, seed=8)])
    assert_same_as_numpy(project.graph, x.reshape((-1,) + tuple(shape)), TorchOps("cpu"))


def test_graph_of_one_dimensional_layers():
    """Conv1D / pooling 1-D are conv2d / pooling with height 1 and Keras' (width, channels) shapes; global
    pooling is one window over the whole input; reshape adds no node."""
    graph, _ = load_graph(case_model("conv1d_same_stride2"))
    conv = next(n for n in graph if n.op == "conv2d")
    assert conv.shape == (5, 4)
    assert (conv.attrs["in_height"], conv.attrs["kernel_size"], conv.attrs["strides"], conv.attrs["pads"]) == \
        (1, (1, 3), (1, 2), (0, 0, 1, 1))
    assert conv.weights["kernel"].shape == (1, 3, 3, 4)
    graph, _ = load_graph(case_model("gap2d_7x6"))
    gap = next(n for n in graph if n.op == "pooling")
    assert gap.shape == (3,) and gap.attrs["pool_size"] == (7, 6) and gap.attrs["strides"] == (7, 6)
    graph, _ = load_graph(case_model("reshape_permute"))
    assert [n.op for n in graph] == ["input", "activation", "transpose", "zeropad", "pooling", "transpose",
                                     "pooling", "activation", "dense"]
    nodes = list(graph)
    assert (nodes[2].attrs["in_shape"], nodes[2].shape) == ((3, 4, 14), (14, 3, 4))
    assert (nodes[5].attrs["in_shape"], nodes[5].shape) == ((20, 2), (2, 20))


def test_global_average_accumulator_is_exact_and_guarded():
    """7 x 6 = 42 cells: the sum of 42 inputs held exactly, 8 guard bits below the input's fraction (42 is not a
    power of two); 8 cells: exact division, 3 more fraction bits."""
    project = convert(case_model("gap2d_7x6"), input_precision=IN_PREC)
    gap = next(n for n in project.graph if n.op == "pooling")
    x = project.graph[gap.inputs[0]].types["result"]
    acc = gap.types["accum"]
    assert acc.frac == x.frac + 6 + 8 and acc.integer == x.integer + 6
    project = convert(case_model("gap1d_pow2"), input_precision=IN_PREC)
    gap = next(n for n in project.graph if n.op == "pooling")
    x = project.graph[gap.inputs[0]].types["result"]
    assert gap.types["accum"].frac == x.frac + 3 and gap.types["result"] == gap.types["accum"]


def test_upsampling_index_map_is_nnet_resize_nearest():
    from fpga_gen.ir.spatial import resize_nearest_rows
    for n, f in [(1, 1), (3, 2), (5, 3), (7, 7), (64, 5)]:
        ratio = ((n << 16) // (n * f)) + 1
        assert resize_nearest_rows(n, n * f).tolist() == [(i * ratio) >> 16 for i in range(n * f)]
        assert resize_nearest_rows(n, n * f).tolist() == [i // f for i in range(n * f)]


@pytest.mark.parametrize("shape,perm", [((3, 4, 5), (2, 0, 1)), ((3, 4, 5), (1, 2, 0)), ((6, 2), (1, 0)),
                                        ((2, 3, 4), (0, 2, 1))])
def test_transpose_config_is_hls4ml_and_index_map_is_nnet_transpose(shape, perm):
    """to_shape and perm_strides as hls4ml's transpose_config_gen writes them, and nnet::transfer_idx over them
    gives the emulator's index map."""
    from hls4ml.utils.transpose_utils import transpose_config_gen

    from fpga_gen.ir.spatial import transpose_indices, transpose_strides
    to_shape, strides = transpose_strides(shape, perm)
    conf = transpose_config_gen("c", shape, perm)
    assert ", ".join(map(str, to_shape)) == conf["to_shape"] and ", ".join(map(str, strides)) == conf["perm_strides"]

    def transfer_idx(index):                      # nnet_transpose.h, line for line
        idx = 0
        for i in range(len(shape) - 1, -1, -1):
            idx += (index % to_shape[i]) * strides[i]
            index //= to_shape[i]
        return idx
    assert transpose_indices(shape, perm).tolist() == [transfer_idx(i) for i in range(int(np.prod(shape)))]


def _one_layer(layer, in_shape):
    tf = _tf()
    return tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=in_shape, name="inp"), layer])


class _with_attrs:
    """A layer whose attributes are changed once built (channels_first does not run on TF's CPU)."""

    def __init__(self, layer, **attrs):
        self.layer, self.attrs = layer, attrs


@pytest.mark.parametrize("make,in_shape,message", [
    (lambda L: _with_attrs(L.Conv1D(2, 3, name="c"), data_format="channels_first"), (8, 2),
     "layer 'c' (Conv1D): data_format='channels_first' is not supported; use data_format='channels_last'"),
    (lambda L: L.Conv1D(2, 3, dilation_rate=2, name="c"), (8, 2),
     "layer 'c' (Conv1D): dilation_rate=(2,) is not supported yet; use dilation_rate=1"),
    (lambda L: L.Conv1D(2, 3, padding="causal", name="c"), (8, 2),
     "layer 'c' (Conv1D): padding='causal' is not supported; use 'valid' or 'same'"),
    (lambda L: _with_attrs(L.MaxPooling1D(2, name="p"), data_format="channels_first"), (8, 2),
     "layer 'p' (MaxPooling1D): data_format='channels_first' is not supported; use data_format='channels_last'"),
    (lambda L: L.GlobalAveragePooling2D(data_format="channels_first", name="g"), (4, 5, 2),
     "layer 'g' (GlobalAveragePooling2D): data_format='channels_first' is not supported; "
     "use data_format='channels_last'"),
    (lambda L: L.GlobalMaxPooling1D(data_format="channels_first", name="g"), (4, 5),
     "layer 'g' (GlobalMaxPooling1D): data_format='channels_first' is not supported; "
     "use data_format='channels_last'"),
    (lambda L: L.ZeroPadding2D(1, data_format="channels_first", name="z"), (4, 5, 2),
     "layer 'z' (ZeroPadding2D): data_format='channels_first' is not supported; use data_format='channels_last'"),
    (lambda L: L.Cropping2D(1, data_format="channels_first", name="k"), (4, 5, 6),
     "layer 'k' (Cropping2D): data_format='channels_first' is not supported; use data_format='channels_last'"),
    (lambda L: L.UpSampling2D(2, data_format="channels_first", name="u"), (4, 5, 2),
     "layer 'u' (UpSampling2D): data_format='channels_first' is not supported; use data_format='channels_last'"),
    (lambda L: L.UpSampling2D(2, interpolation="bilinear", name="u"), (4, 5, 2),
     "layer 'u' (UpSampling2D): interpolation='bilinear' is not supported; use interpolation='nearest'"),
])
def test_unsupported_options_name_layer_and_option(make, in_shape, message):
    tf = _tf()
    spec = make(tf.keras.layers)
    layer = spec.layer if isinstance(spec, _with_attrs) else spec
    model = _one_layer(layer, in_shape)
    if isinstance(spec, _with_attrs):
        for k, v in spec.attrs.items():
            setattr(layer, k, v)
    with pytest.raises(FrontendError) as e:
        load_graph(model)
    assert str(e.value) == message


def test_upsampling_result_type_override_is_rejected():
    model = case_model("pad_crop_up_1d")
    up = next(layer.name for layer in model.layers if type(layer).__name__ == "UpSampling1D")
    with pytest.raises(PassError, match=f"layer '{up}': upsampling copies its input"):
        convert(model, config={"layers": {up: {"precision": {"result": "ap_fixed<10,4>"}}}}, input_precision=IN_PREC)


@needs_gxx
def test_cast_in_padding_cropping_and_transpose(tmp_path):
    """A narrower saturating result type on zeropad / cropping / transpose: the C++ casts each moved value
    ((res_T) data), the emulator the same; the padded zeros stay 0."""
    model = case_model("reshape_permute", seed=2)
    graph, _ = load_graph(model)
    names = {n.op: n.name for n in graph}
    cfg = {"layers": {names["zeropad"]: {"precision": {"result": "ap_fixed<5,1,AP_RND,AP_SAT>"}},
                      names["transpose"]: {"precision": {"result": "ap_ufixed<4,2,AP_TRN,AP_WRAP>"}}}}
    project = convert(model, config=cfg, input_precision=IN_PREC)
    x = random_inputs(project, 300)
    emu = project.predict(x)
    trace = project.emulator().predict(x, trace=True)
    padded = trace[names["zeropad"]]
    assert padded.min() == -1.0 and padded.max() == 1.0 - 2.0 ** -4        # saturated both ways
    assert np.all(padded[:, 0] == 0) and np.all(padded[:, :, 0] == 0)       # the padded zeros
    project.write(tmp_path / "prj")
    assert np.array_equal(csim.predict(tmp_path / "prj", x), emu)
    assert csim.run_testbench(tmp_path / "prj").passed
    assert np.array_equal(load_project(tmp_path / "prj").predict(x), emu)     # attributes survive graph.json


def test_estimates_cover_every_case():
    """Every op of every case has a cost model; the data-movement ops are wiring unless their cast rounds."""
    from fpga_gen.estimate.model import estimate
    for case in ("pad_crop_up_2d", "reshape_permute", "conv1d_same_stride2", "gap2d_7x6"):
        project = convert(case_model(case), input_precision=IN_PREC)
        rep = estimate(project.graph, project.config).to_dict()
        moved = [r for r in rep["layers"] if r.get("op") in ("zeropad", "cropping", "upsampling", "transpose")]
        assert all(r["LUT"] == 0 and r["DSP"] == 0 for r in moved), moved
        assert moved or case in ("conv1d_same_stride2", "gap2d_7x6")
        assert rep["total"]["LUT"] > 0


@needs_gxx
def test_model_ending_in_a_reshape_keeps_keras_output_shape(tmp_path):
    """The last layer relabels its input: a copy node carries Keras' output shape (emulator, C++ and Keras agree)."""
    tf = _tf()
    from qkeras import QConv1D
    tf.keras.utils.set_random_seed(3)
    L = tf.keras.layers
    model = tf.keras.Sequential([L.InputLayer(input_shape=(6, 2), name="x"), QConv1D(3, 2, name="c", **_wq(tf)),
                                 _q("bits"), L.Reshape((3, 5), name="out")])
    project = convert(model, input_precision=IN_PREC)
    assert project.graph.outputs == ["out"] and project.graph["out"].shape == (3, 5)
    x = grid_inputs(100, (6, 2))
    emu = project.predict(x)
    assert emu.shape == (100, 3, 5)
    assert np.array_equal(emu, model.predict(x.astype(np.float32), verbose=0).astype(np.float64))
    assert np.array_equal(project.predict(x, backend="csim"), emu)


@needs_gxx
@pytest.mark.parametrize("case,accum", [("gap2d_7x6", "ap_fixed<9,3,AP_RND,AP_SAT>"),
                                        ("gap1d_pow2", "ap_fixed<7,2,AP_RND_CONV,AP_SAT>")])
def test_global_average_narrow_accumulator(case, accum):
    """A narrow rounding, saturating accum: nnet's y += x[i] rounds and saturates at every step, then y /= n
    truncates; the emulator follows the same order (csim equal), and the result differs from the exact accum's."""
    model = case_model(case, seed=4)
    graph, _ = load_graph(model)
    gap = next(n.name for n in graph if n.op == "pooling")
    project = convert(model, config={"layers": {gap: {"precision": {"accum": accum}}}}, input_precision=IN_PREC)
    x = random_inputs(project, 300)
    emu = project.predict(x)
    assert np.array_equal(project.predict(x, backend="csim"), emu)
    exact = convert(model, input_precision=IN_PREC).emulator().predict(x, trace=True)[gap]
    assert not np.array_equal(project.emulator().predict(x, trace=True)[gap], exact)
