"""Hand-built layer graphs for the HLS writer and C-simulation tests.

The graphs mimic what the QKeras frontend produces for a quantized MLP: an ``input``
node, ``dense`` nodes with weights quantized to ``ap_fixed<bits, 1>`` (QKeras
``quantized_bits(bits, 0)``), activations and an optional softmax.  Accumulator types
are exact (wide enough that no sum can overflow), so every strategy and reuse factor
computes the same values.

At the end, helpers for tests of converted projects (any graph): inputs over the input type's whole range, and
the checks that the C-simulation and the torch back end equal the emulator bit for bit.
"""

from __future__ import annotations

import numpy as np

from fpga_gen.ir.fixed import product_type
from fpga_gen.ir import FixedType, Graph, Node, exact_type_for_range

INPUT_TYPE = FixedType(16, 6)


def quantized_weights(rng: np.random.Generator, shape, t: FixedType) -> np.ndarray:
    """Random weights that are exactly representable in ``t`` (all codes used)."""
    raw = rng.integers(t.raw_min, t.raw_max + 1, size=shape)
    return raw.astype(np.float64) * t.step


def dense_node(name: str, src: Node, n_out: int, rng: np.random.Generator, bits: int,
               strategy: str = "latency", reuse_factor: int = 1, result: FixedType | None = None) -> Node:
    xt = src.types["result"]
    n_in = src.size
    wt = FixedType(bits, 1)
    bt = FixedType(bits, 1)
    kernel = quantized_weights(rng, (n_in, n_out), wt)
    bias = quantized_weights(rng, (n_out,), bt)
    pt = product_type(xt, wt)
    frac = max(pt.frac, bt.frac)
    x_abs = max(abs(xt.raw_min), abs(xt.raw_max)) * 2.0 ** -xt.frac
    bound = x_abs * float(np.abs(kernel).sum(axis=0).max()) + float(np.abs(bias).max())
    raw_bound = int(np.ceil(bound * 2.0 ** frac)) + 1
    accum = exact_type_for_range(-raw_bound, raw_bound, frac)
    return Node(name, "dense", [src.name], (n_out,),
                attrs={"n_in": n_in, "n_out": n_out, "strategy": strategy, "reuse_factor": reuse_factor},
                weights={"kernel": kernel, "bias": bias},
                types={"weight": wt, "bias": bt, "accum": accum, "result": result or accum})


def activation_node(name: str, src: Node, activation: str, result: FixedType) -> Node:
    return Node(name, "activation", [src.name], src.shape, attrs={"activation": activation},
                types={"result": result})


def softmax_node(name: str, src: Node, exp_table_size: int = 1024, inv_table_size: int = 1024) -> Node:
    xt = src.types["result"]
    n = src.size
    scale = int(np.ceil(np.log2(n))) if n > 1 else 0
    exp_t = FixedType(18, 8, True, "RND", "SAT")
    types = {
        "result": FixedType(16, 6, True, "RND", "SAT"),
        "inp_norm": FixedType(xt.width - xt.signed, xt.integer - xt.signed, False),
        "exp_table": exp_t,
        "inv_table": FixedType(18, 8, True, "RND", "SAT"),
        "accum": FixedType(18 + scale, 8 + scale, True),
        "inv_inp": exp_t,
    }
    return Node(name, "softmax", [src.name], src.shape,
                attrs={"implementation": "stable", "exp_table_size": exp_table_size,
                       "inv_table_size": inv_table_size},
                types=types)


def mlp_graph(sizes=(16, 64, 32, 32, 5), bits: int = 8, activation: str = "quant_relu",
              softmax: bool = False, strategy: str = "latency", reuse_factor=1, seed: int = 0,
              name: str = "mlp", input_type: FixedType = INPUT_TYPE, node_names=None) -> Graph:
    """An MLP ``sizes[0] -> ... -> sizes[-1]``.

    ``activation``: 'relu' (relu into a plain type), 'quant_relu' (relu into
    ap_ufixed<bits, 3, RND_CONV, SAT>, as a QKeras quantized_relu), 'linear' (a cast to
    ap_fixed<bits, 4, RND, SAT>) or 'none'.  Hidden layers get the activation; the last
    dense is followed by a softmax when ``softmax`` is true.  ``reuse_factor``: one value or
    one per dense layer.  ``node_names``: optional function index, default name -> name.
    """
    rng = np.random.default_rng(seed)
    rename = node_names or (lambda i, n: n)
    g = Graph(name)
    x = g.add(Node(rename(0, "input_1"), "input", [], (sizes[0],), types={"result": input_type}))
    g.inputs = [x.name]
    n_dense = len(sizes) - 1
    reuse = list(reuse_factor) if isinstance(reuse_factor, (list, tuple)) else [reuse_factor] * n_dense
    k = 1
    for i in range(n_dense):
        last = i == n_dense - 1
        d = g.add(dense_node(rename(k, f"dense_{i + 1}"), x, sizes[i + 1], rng, bits, strategy, reuse[i]))
        k += 1
        x = d
        if last:
            break
        if activation == "relu":
            x = g.add(activation_node(rename(k, f"relu_{i + 1}"), x, "relu", FixedType(16, 6, False)))
        elif activation == "quant_relu":
            x = g.add(activation_node(rename(k, f"relu_{i + 1}"), x, "relu",
                                      FixedType(bits, 3, False, "RND_CONV", "SAT")))
        elif activation == "linear":
            x = g.add(activation_node(rename(k, f"linear_{i + 1}"), x, "linear",
                                      FixedType(bits, 4, True, "RND", "SAT")))
        elif activation != "none":
            raise ValueError(activation)
        k += 1
    if softmax:
        x = g.add(softmax_node(rename(k, "softmax"), x))
    g.outputs = [x.name]
    return g


def random_inputs(graph: Graph, n: int, seed: int = 1, scale: float = 4.0) -> np.ndarray:
    """Float inputs spanning the input type's range (some saturate/wrap, most don't)."""
    rng = np.random.default_rng(seed)
    node = graph[graph.inputs[0]]
    return rng.normal(0.0, scale, size=(n,) + tuple(node.shape))


def random_type(rng: np.random.Generator, width_range=(4, 20), int_range=(-2, 8), signed=None) -> FixedType:
    from fpga_gen.ir.types import ROUNDING_MODES, SATURATION_MODES
    w = int(rng.integers(*width_range))
    return FixedType(w, int(rng.integers(*int_range)), bool(rng.integers(2)) if signed is None else signed,
                     str(rng.choice(ROUNDING_MODES)), str(rng.choice(SATURATION_MODES)))


def random_mlp(seed: int, softmax: bool = True) -> Graph:
    """A small MLP whose every type, rounding and overflow mode is drawn at random.

    Accumulators wrap (AP_WRAP) so the sum is order independent, as in every hls4ml
    kernel; their width and rounding are random (products may round, sums may wrap).
    """
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2, 12)) for _ in range(3)]
    g = Graph(f"rand{seed}")
    x = g.add(Node("input_1", "input", [], (sizes[0],), types={"result": random_type(rng, (6, 18), (1, 8))}))
    g.inputs = [x.name]
    for i, n_out in enumerate(sizes[1:]):
        bits = int(rng.integers(3, 12))
        d = dense_node(f"dense_{i}", x, n_out, rng, bits, str(rng.choice(["latency", "resource"])), 1)
        valid = [rf for rf in range(1, d.attrs["n_in"] * n_out + 1)
                 if (d.attrs["n_in"] * n_out) % rf == 0 and (rf % d.attrs["n_in"] == 0 if rf > d.attrs["n_in"]
                                                             else (d.attrs["n_in"] * n_out // rf) % n_out == 0)]
        d.attrs["reuse_factor"] = int(rng.choice(valid))
        exact = d.types["accum"]
        acc = FixedType(exact.width - int(rng.integers(0, 4)), exact.integer - int(rng.integers(0, 3)), True,
                        str(rng.choice(["TRN", "RND", "RND_CONV", "TRN_ZERO"])), "WRAP")
        d.types["accum"] = acc
        d.types["bias"] = FixedType(bits + 2, 2)               # may carry more fraction bits than accum
        d.weights["bias"] = quantized_weights(rng, (n_out,), d.types["bias"])
        d.types["result"] = random_type(rng, (6, 20), (2, 9))
        x = g.add(d)
        act = str(rng.choice(["relu", "linear"]))
        x = g.add(activation_node(f"act_{i}", x, act, random_type(rng, (4, 14), (1, 6))))
    if softmax:
        s = softmax_node("softmax", x, int(2 ** rng.integers(6, 11)), int(2 ** rng.integers(6, 11)))
        xt = x.types["result"]
        s.types["inp_norm"] = FixedType(max(xt.width, 11), xt.integer + 1, False, "TRN", str(rng.choice(["WRAP", "SAT"])))
        s.types["result"] = random_type(rng, (6, 18), (1, 4))
        x = g.add(s)
    g.outputs = [x.name]
    return g


# ---------------------------------------------------------------------------- converted projects
def edge_inputs(project, n: int, seed: int = 3) -> np.ndarray:
    """Random values over the input type's whole range, then rows of its extremes, 0 and -1 LSB."""
    node = project.graph.input_nodes()[0]
    t = node.types["result"]
    rng = np.random.default_rng(seed)
    raw = rng.integers(t.raw_min, t.raw_max + 1, size=(n,) + tuple(node.shape)).astype(np.float64)
    raw[0], raw[1], raw[2], raw[3] = t.raw_min, t.raw_max, 0, -1
    raw[4] = np.where(rng.random(node.shape) < 0.5, t.raw_min, t.raw_max)
    return raw * 2.0 ** -t.frac


def assert_csim_equals_emulator(project, path, x: np.ndarray) -> np.ndarray:
    """The project written at ``path``: its csim output, its native library's (dense and conv2d as integer
    sums), its testbench and the project loaded back from graph.json all equal the emulator on ``x`` bit for
    bit.  Returns the emulator's output."""
    from fpga_gen import csim, load_project
    emu = project.predict(x)
    y = csim.predict(path, x)
    assert np.array_equal(y, emu), f"{np.mean(y == emu):.4f} match"
    y = csim.predict(path, x, native=True)
    assert np.array_equal(y, emu), f"native: {np.mean(y == emu):.4f} match"
    assert csim.run_testbench(path).passed
    assert np.array_equal(load_project(path).predict(x), emu)     # attributes survive graph.json
    return emu


def assert_torch_equals_emulator(project, x: np.ndarray) -> None:
    """Every node's output through TorchOps on the CPU equals the numpy emulator's, and so does the gpu
    back end's result (skipped without torch)."""
    import pytest
    pytest.importorskip("torch")
    from fpga_gen.emulate import Emulator
    from fpga_gen.emulate.torch_ops import TorchOps
    ref = project.emulator().predict(x, trace=True)
    got = Emulator(project.graph, xp=TorchOps("cpu")).predict(x, trace=True)
    for node in ref:
        assert np.array_equal(ref[node], got[node]), node
    assert np.array_equal(project.predict(x, backend="gpu"), project.predict(x))


def assert_window_indices_equal_hls4ml(h: int, w: int, c: int, kernel, strides, padding: str) -> None:
    """The window indices the emulator gathers with and the HLS templates write (fpga_gen.ir.spatial) are
    hls4ml's own im2col code: the fill_buffer function its Vitis backend generates for this geometry, parsed."""
    import re

    from hls4ml.backends import get_backend

    from fpga_gen.ir.spatial import out_size_and_pads, window_indices
    k, s = kernel, strides
    (oh, pt, pb), (ow, pl, pr) = (out_size_and_pads(h, k[0], s[0], padding), out_size_and_pads(w, k[1], s[1], padding))
    code = get_backend("Vitis").generate_conv2d_line_buffer_fn(0, oh * ow, h, w, c, kernel=k, stride=s,
                                                               pad=(pt, pb, pl, pr))
    theirs = []
    for part in re.split(r"if \(partition ==\s*\d+\)", code)[1:]:
        row = [(int(j), v.strip()) for j, v in re.findall(r"buffer\[0\]\[(\d+)\] =\s*([^;]+);", part)]
        theirs.append([-1 if v == "0" else int(v[5:-1]) for j, v in sorted(row)])
    assert np.array_equal(np.array(theirs), window_indices(h, w, c, k, s, (pt, pb, pl, pr)))
