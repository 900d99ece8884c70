"""Fuzzing: random valid QKeras models (tests/fuzz_models.py) through the whole flow.

Properties, per model:
- the emulator equals an independent float64 forward pass of the fixed-point semantics, bit for bit;
- the emulator equals QKeras bit for bit wherever QKeras' float32 arithmetic is exact (fully quantized
  weights, inputs on the input type's grid, every sum below 2**24 grid units -- decided per model and batch);
- csim (g++) equals the emulator bit for bit, including the softmax output, for a few small models
  (compiles are the cost; builds are cached by content, so a rerun compiles nothing).

Fast profile (default suite): a fixed (derandomized) set of models.  Long profile:
``pytest -m slow tests/test_fuzz.py`` (or ``make fuzz``): 220 models with fresh random draws
(``FPGA_GEN_FUZZ_EXAMPLES=1000`` for more), csim on one in eight.

The layers that came later (merges, 1-D and depthwise/separable convolutions, batchnorm, data movement, the
quantizer zoo, activation kinds, io_stream, calibrated float models) are fuzzed together in
tests/test_fuzz_mixed.py (random functional models, tests/fuzz_mixed.py).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from fpga_gen import convert
from fpga_gen.passes.base import PassError
from fuzz_models import float32_exact, model_specs, reference_forward, specs_with_overrides

HAVE_GXX = shutil.which("g++") is not None


def hls_supports(graph) -> bool:
    """Whether the HLS writer has a template for every op (conv2d/pooling arrive after their emulator)."""
    from fpga_gen.hls.layers import HANDLERS
    return all(n.op == "input" or n.op in HANDLERS for n in graph)
N = 64


def check_model(spec, csim: bool = False) -> dict:
    model = spec.build()
    try:
        project = convert(model, config=spec.config())
    except PassError as e:
        # plain relu/linear between QDense layers grow exact types; past 53 bits the documented one-line
        # refusal (as in test_fuzz_mixed.EXPECTED_REFUSALS) rejects the draw, any other error fails
        assert "\n" not in str(e) and "its exact accumulator needs more than 53 bits" in str(e), str(e)
        reject()
    x = spec.inputs(N, seed=spec.seed % 1000)
    trace = project.emulator().predict(x, trace=True)
    out_name = project.graph.outputs[0]
    pre = project.graph[out_name].inputs[0] if spec.softmax else out_name
    emu_pre = trace[pre].reshape(N, -1)
    if spec.overrides:      # rounded, wrapped types from the config: only csim == emulator is defined
        assert csim, "precision overrides are checked against csim only"
    record: list = []
    ref = reference_forward(spec, model, x, record) if not spec.overrides else emu_pre
    assert emu_pre.shape == ref.shape
    assert np.array_equal(emu_pre, ref), (
        f"emulator != float64 reference at {np.argwhere(emu_pre != ref)[:5].tolist()}: "
        f"{emu_pre[emu_pre != ref][:5]} vs {ref[emu_pre != ref][:5]}")
    # TensorFlow's oneDNN convolution (its default on x86) is wrong for some unequal strides
    # (test_fuzz_mixed.py::test_tensorflow_onednn_convolution_bug): QKeras is no reference there; the
    # independent float64 reference above still is
    equal_strides = all(len(set(l["strides"])) == 1 for l in spec.layers if l["kind"] == "conv")
    exact = not spec.overrides and equal_strides and float32_exact(spec, record)
    if exact:
        import tensorflow as tf
        sub = model if not spec.softmax else tf.keras.Model(model.inputs, model.layers[-2].output)
        q = sub.predict(x.astype(np.float32), verbose=0, batch_size=N).astype(np.float64).reshape(N, -1)
        assert np.array_equal(emu_pre, q), (
            f"emulator != QKeras at {np.argwhere(emu_pre != q)[:5].tolist()}: "
            f"{emu_pre[emu_pre != q][:5]} vs {q[emu_pre != q][:5]}")
    if csim and hls_supports(project.graph):
        y_emu = trace[out_name].reshape(N, -1)
        y_csim = project.predict(x, backend="csim").reshape(N, -1)
        assert np.array_equal(y_csim, y_emu), f"csim != emulator: {np.mean(y_csim != y_emu):.2%} differ"
        y_nat = project.predict(x, backend="native").reshape(N, -1)
        assert np.array_equal(y_nat, y_emu), f"native != emulator: {np.mean(y_nat != y_emu):.2%} differ"
    return {"qkeras_exact": exact}


FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=int(os.environ.get("FPGA_GEN_FUZZ_EXAMPLES", "220")), deadline=None, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)


@FAST
@given(spec=model_specs())
def test_fuzz_emulator_vs_references(spec):
    check_model(spec)


@pytest.mark.skipif(not HAVE_GXX, reason="g++ is not installed")
@settings(max_examples=5, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(spec=model_specs(allow_conv=False, max_dense=2))
def test_fuzz_csim_equals_emulator(spec):
    check_model(spec, csim=True)


@pytest.mark.slow
@LONG
@given(spec=model_specs(), csim=st.integers(0, 7).map(lambda k: k == 0 and HAVE_GXX))
def test_fuzz_long(spec, csim):
    check_model(spec, csim=csim)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_GXX, reason="g++ is not installed")
@settings(max_examples=int(os.environ.get("FPGA_GEN_FUZZ_CSIM_EXAMPLES", "30")), deadline=None, database=None,
          suppress_health_check=list(HealthCheck), print_blob=True)
@given(spec=specs_with_overrides(allow_conv=False))
def test_fuzz_long_csim_with_random_types(spec):
    """Random result/accumulator types (every rounding and overflow mode) from the config: csim == emulator."""
    check_model(spec, csim=True)
