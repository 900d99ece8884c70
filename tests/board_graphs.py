"""Small hand-built graphs for the board-packaging tests (input -> dense -> relu [-> dense])."""

from __future__ import annotations

import numpy as np

from fpga_gen.config import ProjectConfig
from fpga_gen.ir import FixedType, Graph, Node


def _exact(rng, shape, t: FixedType) -> np.ndarray:
    """Random values exactly representable in t."""
    return rng.integers(t.raw_min, t.raw_max, size=shape, endpoint=True).astype(np.float64) * t.step


def small_graph(n_in: int = 10, n_hidden: int = 7, n_out: int = 5, name: str = "net",
                input_type: FixedType = FixedType(16, 6), relu_type=FixedType(8, 3, False, "RND_CONV", "SAT"),
                out_type: FixedType | None = FixedType(16, 6, True, "RND", "SAT"), seed: int = 0,
                input_shape: tuple | None = None) -> Graph:
    """input (n_in, or input_shape) -> dense (n_hidden) -> relu [-> dense (n_out) when out_type]; exact accumulators."""
    rng = np.random.default_rng(seed)
    g = Graph(name)
    if input_shape is not None:
        n_in = int(np.prod(input_shape))
    x = g.add(Node("input_1", "input", [], tuple(input_shape or (n_in,)), types={"result": input_type}))
    g.inputs = [x.name]
    w, b = FixedType(8, 2), FixedType(8, 2)
    d1 = g.add(Node("dense_1", "dense", ["input_1"], (n_hidden,),
                    attrs={"n_in": n_in, "n_out": n_hidden, "strategy": "latency", "reuse_factor": 1},
                    weights={"kernel": _exact(rng, (n_in, n_hidden), w), "bias": _exact(rng, (n_hidden,), b)},
                    types={"weight": w, "bias": b, "accum": FixedType(32, 14), "result": FixedType(32, 14)}))
    r = g.add(Node("relu_1", "activation", [d1.name], (n_hidden,), attrs={"activation": "relu"},
                   types={"result": relu_type}))
    last = r
    if out_type is not None:
        last = g.add(Node("dense_2", "dense", [r.name], (n_out,),
                          attrs={"n_in": n_hidden, "n_out": n_out, "strategy": "latency", "reuse_factor": 1},
                          weights={"kernel": _exact(rng, (n_hidden, n_out), w), "bias": _exact(rng, (n_out,), b)},
                          types={"weight": w, "bias": b, "accum": FixedType(24, 10), "result": out_type}))
    g.outputs = [last.name]
    return g


def config_for(board, name: str = "net") -> ProjectConfig:
    return ProjectConfig(name=name, part=board.part, board=board.name, clock_period=board.clock_period)


def random_floats(graph: Graph, n: int, seed: int = 1, scale: float = 1.5) -> np.ndarray:
    """Floats over (a bit beyond) the input type's range, plus a few exact and special values."""
    rng = np.random.default_rng(seed)
    node = graph[graph.inputs[0]]
    t = node.types["result"]
    lo, hi = t.min * scale, t.max * scale
    return rng.uniform(lo, hi, size=(n,) + tuple(node.shape))
