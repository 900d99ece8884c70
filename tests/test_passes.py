import numpy as np
import pytest

from fpga_gen import convert
from fpga_gen.config import ConfigError, load_config
from fpga_gen.ir.reuse import is_valid_reuse, valid_reuse_factors
from fpga_gen.passes import PassError
from qmodels import grid_inputs, qmlp


def test_valid_reuse_factors_follow_the_kernel_rules():
    assert valid_reuse_factors(4, 4) == [1, 2, 4, 8, 16]
    assert valid_reuse_factors(4, 4) == [rf for rf in range(1, 17) if is_valid_reuse(4, 4, rf)]
    assert 7 not in valid_reuse_factors(64, 32) and 8 in valid_reuse_factors(64, 32)


def test_invalid_reuse_factor_message():
    with pytest.raises(PassError) as e:
        convert(qmlp([16, 24, 5]), reuse=5)
    assert str(e.value) == ("layer 'dense_0': reuse factor 5 is not valid for a 16x24 dense layer; "
                            "nearest valid values: 4, 8")


def test_accumulator_is_exact_and_minimal():
    project = convert(qmlp([16, 24, 5], bits=6), input_precision="ap_fixed<12,4>")
    node = project.graph["dense_0"]
    acc = node.types["accum"]
    assert acc.frac == 8 + 5            # input fraction bits + weight fraction bits
    x = grid_inputs(20000, 16, frac_bits=8, lo=-8, hi=8 - 2 ** -8)
    # the extreme inputs reach the extremes of the accumulator's range but never leave it
    w = node.weights["kernel"]
    b = node.weights["bias"]
    hi = b + np.where(w > 0, w * (8 - 2 ** -8), w * -8).sum(0)
    assert hi.max() <= acc.max and hi.max() * 2 > acc.max
    emu = project.emulator().predict(x, trace=True)["dense_0"]
    assert np.array_equal(emu, x @ w + b)        # exact, no rounding anywhere


def test_layer_precision_override(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("layers:\n  dense_0:\n    precision:\n      result: ap_fixed<10,4,AP_RND,AP_SAT>\n"
                   "    reuse_factor: 4\n    strategy: resource\n")
    project = convert(qmlp([16, 24, 5]), config=str(cfg))
    n = project.graph["dense_0"]
    assert n.types["result"].cpp() == "ap_fixed<10,4,AP_RND,AP_SAT>"
    assert (n.attrs["reuse_factor"], n.attrs["strategy"]) == (4, "resource")
    assert project.graph["dense_1"].attrs["reuse_factor"] == 1


@pytest.mark.parametrize("text,msg", [
    ("reuse: 4\n", "c.yml: line 1: unknown key 'reuse'; allowed keys: activations, board, clock_period, da, default_precision"),
    ("layers:\n  nope:\n    reuse_factor: 2\n", "c.yml: layers.nope: no layer named 'nope' in the model; layers: x, "),
    ("layers:\n  dense_0:\n    reuse: 2\n", "c.yml: line 3: unknown key 'reuse' in layers.dense_0; allowed keys: reuse_factor"),
    ("layers:\n  dense_0:\n    precision:\n      table: ap_fixed<8,3>\n",
     "c.yml: layers.dense_0.precision.table: a dense layer has no 'table' type; its types: result, weight, bias, accum"),
    ("strategy: fast\n", "c.yml: line 1: strategy must be one of latency, resource, distributed_arithmetic, got 'fast'"),
    ("reuse_factor: two\n", "c.yml: line 1: reuse_factor must be a positive integer, got 'two'"),
    ("default_precision: float32\n", "c.yml: line 1: default_precision: cannot parse precision 'float32'"),
    ("io_type: parallel\nio_type: stream\n", "c.yml: line 2: duplicate key 'io_type'"),
    ("layers: [1, 2\n", "c.yml: line 2: invalid YAML"),
])
def test_config_errors(tmp_path, text, msg):
    cfg = tmp_path / "c.yml"
    cfg.write_text(text)
    with pytest.raises((ConfigError, PassError)) as e:
        convert(qmlp([16, 24, 5]), config=str(cfg))
    assert msg in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yml: config file not found"):
        load_config(tmp_path / "nope.yml")


def test_float_dense_layers_take_the_default_precision():
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(784,), name="x"),
                             tf.keras.layers.Dense(128, activation="relu", name="d1"),
                             tf.keras.layers.Dense(64, activation="relu", name="d2"),
                             tf.keras.layers.Dense(10, name="d3")])
    project = convert(m, precision="ap_fixed<16,6>")
    for name in ("d1", "d2", "d3"):
        n = project.graph[name]
        assert n.types["result"].cpp() == "ap_fixed<16,6>"
        assert n.types["weight"].cpp() == "ap_fixed<16,6>"
        assert n.types["accum"].width <= 53
    x = grid_inputs(100, 784, frac_bits=4, lo=0, hi=1)
    assert project.predict(x).shape == (100, 10)


def test_safe_casts_sign_extends_exact_types_only():
    from fpga_gen.ir.types import FixedType
    from fpga_gen.ir.exact import cast_reads_past_msb
    src = FixedType(12, 2)
    assert cast_reads_past_msb(src, FixedType(2, 5, False, "RND_CONV", "SAT")) == 1     # shift 13 > width 12
    assert cast_reads_past_msb(src, FixedType(2, 5, False, "TRN", "SAT")) == 0          # truncation reads no bit
    assert cast_reads_past_msb(src, FixedType(2, 4, False, "RND_CONV", "SAT")) == 0     # shift 12 == width
    from fpga_gen.frontend.keras.loader import import_tf
    tf = import_tf()
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    m = tf.keras.Sequential([tf.keras.layers.InputLayer(input_shape=(2,), name="x"),
                             QDense(2, kernel_quantizer=quantized_bits(2, 0, alpha=1), use_bias=False, name="d"),
                             QActivation(quantized_relu(2, 5), name="a")])
    project = convert(m, input_precision="ap_fixed<4,1>")
    d = project.graph["d"]
    assert d.types["result"] == d.types["accum"]
    assert cast_reads_past_msb(d.types["result"], project.graph["a"].types["result"]) == 0
    x = grid_inputs(64, 2, frac_bits=3, lo=-1, hi=1 - 2 ** -3)
    h = x @ d.weights["kernel"]
    assert np.array_equal(project.emulator().predict(x, trace=True)["d"], h)     # widening is exact
