"""Every op the graph can hold is declared once (fpga_gen/ir/ops.py), and every back end's registry agrees with
that table in both directions: no op without its emulator kernel, float reference, HLS handler (parallel and
stream, or a declared refusal) and estimator entry; no registry entry for an op that does not exist."""

from __future__ import annotations

import numpy as np
import pytest

from fpga_gen import hls4ml_config
from fpga_gen.emulate.float_ref import FLOAT_OPS
from fpga_gen.emulate.kernels import ACTIVATIONS, KERNELS, SOFTMAX
from fpga_gen.emulate.torch_ops import TorchOps
from fpga_gen.estimate.layers import ESTIMATORS
from fpga_gen.hls.layers import HANDLERS
from fpga_gen.hls.layers_activation import ACTIVATION_FORMS
from fpga_gen.hls.stream import STREAM_ACTIVATIONS, STREAM_HANDLERS
from fpga_gen.ir.fixed import NumpyOps
from fpga_gen.ir.graph import Graph, GraphError, Node
from fpga_gen.ir.ops import ACTIVATION_KINDS, OPS, SOFTMAX_IMPLEMENTATIONS
from fpga_gen.passes.infer_precision import RESULT_RULES

ALL = set(OPS)
# ops with a layer in the generated C++ (not the graph input, the top function's argument; not the
# fallback-only ops, OpDef.hls False: the project is split before them)
HLS_LAYERS = {op for op, d in OPS.items() if d.hls and d.n_inputs > 0}
STREAM_LAYERS = {op for op in HLS_LAYERS if not OPS[op].parallel_only}


@pytest.mark.parametrize("name, registry, expected", [
    ("emulator kernels (numpy and torch run the same kernels on their array namespace)", KERNELS, ALL),
    ("float reference", FLOAT_OPS, ALL),
    ("HLS io_parallel handlers", HANDLERS, HLS_LAYERS),
    ("HLS io_stream handlers", STREAM_HANDLERS, STREAM_LAYERS),
    ("estimator", ESTIMATORS, ALL),
    ("hls4ml layer classes", hls4ml_config._OP_CLASS, ALL),
])
def test_every_registry_matches_the_op_table(name, registry, expected):
    assert set(registry) == expected, (f"{name}: missing {sorted(expected - set(registry))}, "
                                       f"not an op (or a declared refusal) {sorted(set(registry) - expected)}")


def test_partial_registries_name_only_ops():
    assert set(hls4ml_config._OP_SLOTS) <= ALL


@pytest.mark.parametrize("registry", [ACTIVATIONS, ACTIVATION_FORMS, STREAM_ACTIVATIONS, RESULT_RULES],
                         ids=["emulator", "hls", "hls-stream", "precision"])
def test_activation_kinds_everywhere(registry):
    assert set(registry) == set(ACTIVATION_KINDS)


def test_softmax_implementations_everywhere():
    assert set(SOFTMAX) == set(SOFTMAX_IMPLEMENTATIONS)


def test_torch_offers_every_array_operation_numpy_does():
    # the torch back end is the same kernels on TorchOps: it must offer each name NumpyOps does
    names = {n for n in dir(NumpyOps) if not n.startswith("_")}
    missing = {n for n in names if not hasattr(TorchOps, n)}
    assert not missing, sorted(missing)


def test_graph_rejects_an_unknown_op_naming_the_node():
    g = Graph("g")
    with pytest.raises(GraphError, match=r"node 'x': unknown op 'conv1d'; known ops: .*conv2d.*dense"):
        g.add(Node("x", "conv1d", [], (4,)))


def test_graph_rejects_an_unknown_attribute_naming_node_op_and_known_attrs():
    g = Graph("g")
    g.add(Node("x", "input", [], (4,)))
    with pytest.raises(GraphError, match=r"node 'fc' \(dense\): unknown attribute\(s\) 'units'; dense attributes: "
                                         r"n_in, n_out, strategy, reuse_factor, mult_impl"):
        g.add(Node("fc", "dense", ["x"], (2,), attrs={"n_in": 4, "n_out": 2, "units": 2},
                   weights={"kernel": np.zeros((4, 2)), "bias": np.zeros(2)}))
    assert "fc" not in g
