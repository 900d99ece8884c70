"""Graph passes.

Writing a pass
--------------
A pass is one small class in one file with ``apply(graph, config) -> bool`` that edits the
graph in place and returns whether it changed anything.  :func:`run_passes` runs the
explicit list in :data:`fpga_gen.passes.DEFAULT_PASSES` in order, each to a fixpoint.
A pass raises :class:`PassError` with a one-line message naming the layer and the fix.
Its tests build a graph, run the emulator, apply the pass and check the graph changed as
intended while the outputs stay bit-identical (``np.array_equal``).
"""

from __future__ import annotations

from ..config import ProjectConfig
from ..ir.graph import Graph

__all__ = ["Pass", "PassError", "run_passes"]


class PassError(ValueError):
    pass


class Pass:
    name = "pass"
    max_iterations = 100

    def apply(self, graph: Graph, config: ProjectConfig) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


def run_passes(graph: Graph, config: ProjectConfig, passes) -> Graph:
    for p in passes:
        for _ in range(p.max_iterations):
            if not p.apply(graph, config):
                break
        else:
            raise PassError(f"pass {p.name} did not reach a fixpoint")
    return graph
