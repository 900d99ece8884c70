"""Check your model's generated hardware in your own pytest suite.

    pip install fpga-gen            # the pytest plugin comes with it: nothing to add to conftest.py
    pytest examples/test_my_model.py

``fpga_gen_project(model, config=None, **overrides)`` converts, writes and C-simulation-builds a project
once per model/config for the whole session; ``assert_matches_model`` runs it (csim by default) and
fails naming the output, the sample, expected vs got and the difference in LSBs.  Tests marked
``fpga_gen_csim`` are skipped where g++ is missing.

Here the model is a small QKeras MLP made on the spot; use your own file: ``MODEL = "my_model.h5"``.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")   # QKeras needs tf-keras (Keras 2)

import numpy as np
import pytest

from fpga_gen.testing import assert_matches_model


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    tf.keras.utils.set_random_seed(1)
    q = quantized_bits(6, 0, alpha=1)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(16,)),
        QDense(12, kernel_quantizer=q, bias_quantizer=q, name="fc1"),
        QActivation(quantized_relu(6, 0), name="relu1"),
        QDense(5, kernel_quantizer=q, bias_quantizer=q, name="logits"),
    ])
    path = tmp_path_factory.mktemp("model") / "my_model.h5"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def x_test():
    # inputs on the input type's grid (ap_fixed<16,6> by default), as your sensor data would be
    rng = np.random.default_rng(0)
    return np.round(rng.uniform(-2, 2, size=(500, 16)) * 16) / 16


@pytest.mark.fpga_gen_csim
def test_hardware_matches_keras(fpga_gen_project, model_file, x_test):
    project = fpga_gen_project(model_file)
    assert_matches_model(project, x_test)                              # bit for bit, csim vs Keras


@pytest.mark.fpga_gen_csim
def test_resource_strategy_still_matches(fpga_gen_project, model_file, x_test):
    project = fpga_gen_project(model_file, strategy="resource", reuse_factor=4)
    assert_matches_model(project, x_test)


@pytest.mark.fpga_gen_csim
def test_lower_precision_keeps_the_decisions(fpga_gen_project, model_file, x_test):
    # 4-bit weights in the first layer: not bit-exact any more, but the predicted class must hold
    low = {"layers": {"fc1": {"precision": {"weight": "ap_fixed<4,1>"}}}}
    project = fpga_gen_project(model_file, config=low)
    assert_matches_model(project, x_test, tolerance="argmax:0.8")
    with pytest.raises(AssertionError, match=r"output 'logits' .* sample \d+"):
        assert_matches_model(project, x_test, tolerance="exact")
