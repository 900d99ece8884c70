import json

import numpy as np
import pytest

from fpga_gen.ir import FixedType, Graph, Node, TypeParseError
from fpga_gen.ir.graph import deterministic_npz
from fpga_gen.ir.types import exact_type_for_range


@pytest.mark.parametrize("text,expect", [
    ("ap_fixed<16,6>", FixedType(16, 6)),
    ("ap_ufixed<8,0,AP_RND_CONV,AP_SAT>", FixedType(8, 0, False, "RND_CONV", "SAT")),
    ("fixed<4, 2, RND, SAT_SYM>", FixedType(4, 2, True, "RND", "SAT_SYM")),
    ("ap_int<8>", FixedType(8, 8)),
    ("ap_uint<3>", FixedType(3, 3, False)),
])
def test_parse_and_spell(text, expect):
    t = FixedType.parse(text)
    assert t == expect
    assert FixedType.parse(t.cpp()) == t
    assert FixedType.from_dict(t.to_dict()) == t


@pytest.mark.parametrize("text,msg", [
    ("float", "cannot parse precision 'float'; write it like 'ap_fixed<16,6>'"),
    ("ap_fixed<0,0>", "fixed-point width must be between 1 and 64, got 0"),
    ("ap_fixed<70,6>", "fixed-point width must be between 1 and 64, got 70"),
    ("ap_fixed<8,3,AP_FOO>", "unknown rounding mode 'FOO'"),
    ("ap_fixed<8>", "a fixed type needs width and integer bits"),
])
def test_parse_errors(text, msg):
    with pytest.raises(TypeParseError) as e:
        FixedType.parse(text)
    assert msg in str(e.value)


def test_ranges():
    t = FixedType(6, 1)
    assert (t.min, t.max, t.step) == (-1.0, 1.0 - 2 ** -5, 2 ** -5)
    u = FixedType(6, 0, False)
    assert (u.min, u.max) == (0.0, 1.0 - 2 ** -6)
    assert FixedType(8, 2).contains(FixedType(6, 1))
    assert not FixedType(8, 2).contains(FixedType(7, 0, False))
    assert exact_type_for_range(-5, 3, 2) == FixedType(4, 2, True)
    assert exact_type_for_range(0, 255, 8) == FixedType(8, 0, False)


def _graph():
    g = Graph("g")
    g.add(Node("in put", "input", [], (3,), types={"result": FixedType(8, 3)}))
    g.add(Node("d", "dense", ["in put"], (2,), attrs={"n_in": 3, "n_out": 2, "strategy": "latency", "reuse_factor": 1},
               weights={"kernel": np.arange(6.0).reshape(3, 2) / 8, "bias": np.array([0.5, -0.25])},
               types={"weight": FixedType(6, 3), "bias": FixedType(6, 3), "accum": FixedType(20, 9),
                      "result": FixedType(20, 9)}))
    g.inputs, g.outputs = ["in put"], ["d"]
    return g


def test_graph_round_trip(tmp_path):
    g = _graph()
    g.save(tmp_path / "a")
    g2 = Graph.load(tmp_path / "a")
    assert g2.to_json_dict() == g.to_json_dict()
    for n in g:
        for k, v in n.weights.items():
            assert np.array_equal(g2[n.name].weights[k], v)
    g2.save(tmp_path / "b")
    assert (tmp_path / "a" / "graph.json").read_bytes() == (tmp_path / "b" / "graph.json").read_bytes()
    assert (tmp_path / "a" / "weights.npz").read_bytes() == (tmp_path / "b" / "weights.npz").read_bytes()


def test_graph_errors():
    g = _graph()
    from fpga_gen.ir import GraphError
    with pytest.raises(GraphError, match="duplicate node name 'd'"):
        g.add(Node("d", "activation", ["d"], (2,)))
    with pytest.raises(GraphError, match="input 'nope' is not defined before it"):
        g.add(Node("e", "activation", ["nope"], (2,)))
    data = g.to_json_dict()
    data["format_version"] = 99
    with pytest.raises(GraphError, match="graph format version 99 is not supported"):
        Graph.from_json_dict(data, g.weight_arrays())


def test_npz_is_deterministic():
    a = {"x/kernel": np.ones((2, 2)), "a/bias": np.zeros(3)}
    assert deterministic_npz(a) == deterministic_npz(dict(reversed(list(a.items()))))
