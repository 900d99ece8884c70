"""The layer graph: a small, explicit IR every later stage walks.

A :class:`Node` is an ``op`` (see :mod:`fpga_gen.ir.ops`), a ``name``, the names of its
``inputs``, its output ``shape`` (without the batch dimension), op attributes ``attrs``,
``weights`` (float64 numpy arrays whose values are exactly representable in their types),
fixed-point ``types`` (``result`` always, plus e.g. ``weight``, ``bias``, ``accum``) and a
free ``meta`` dict passes may fill (never saved).

A :class:`Graph` holds nodes in topological order plus the names of its inputs and
outputs.  It saves to ``graph.json`` + ``weights.npz`` and loads back identically.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .ops import OPS
from .types import FixedType

__all__ = ["Node", "Graph", "GraphError", "GRAPH_FORMAT_VERSION"]

GRAPH_FORMAT_VERSION = 1


class GraphError(ValueError):
    pass


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    shape: tuple[int, ...] = ()
    attrs: dict = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    types: dict[str, FixedType] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def result_type(self) -> FixedType:
        return self.types["result"]

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n

    def __repr__(self) -> str:
        t = self.types.get("result")
        return f"Node({self.name!r}, op={self.op!r}, inputs={self.inputs}, shape={self.shape}, result={t})"


def check_node(node: Node) -> None:
    """A node's op is one of :data:`fpga_gen.ir.ops.OPS` and its attributes are ones that op declares."""
    d = OPS.get(node.op)
    if d is None:
        raise GraphError(f"node {node.name!r}: unknown op {node.op!r}; known ops: {', '.join(sorted(OPS))}")
    unknown = sorted(set(node.attrs) - set(d.attrs))
    if unknown:
        raise GraphError(f"node {node.name!r} ({node.op}): unknown attribute(s) {', '.join(map(repr, unknown))}; "
                         f"{node.op} attributes: {', '.join(d.attrs) or 'none'} (fpga_gen/ir/ops.py)")


class Graph:
    def __init__(self, name: str, nodes: list[Node] | None = None, inputs: list[str] | None = None,
                 outputs: list[str] | None = None):
        self.name = name
        # graph-level settings (io_type, strategy, reuse_factor, mult_impl, clock_period, part), recorded from the
        # config by the ApplyReuse pass; in memory only (a written project keeps them in its config)
        self.settings: dict = {}
        self._nodes: dict[str, Node] = {}
        for n in nodes or []:
            self.add(n)
        self.inputs: list[str] = list(inputs or [])
        self.outputs: list[str] = list(outputs or [])

    # ------------------------------------------------------------------ access
    def add(self, node: Node) -> Node:
        check_node(node)
        if node.name in self._nodes:
            raise GraphError(f"duplicate node name {node.name!r}")
        for i in node.inputs:
            if i not in self._nodes:
                raise GraphError(f"node {node.name!r}: input {i!r} is not defined before it")
        self._nodes[node.name] = node
        return node

    def __getitem__(self, name: str) -> Node:
        return self._nodes[name]

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self._nodes.values() if name in n.inputs]

    def input_nodes(self) -> list[Node]:
        return [self._nodes[n] for n in self.inputs]

    def output_nodes(self) -> list[Node]:
        return [self._nodes[n] for n in self.outputs]

    def producer_types(self, node: Node) -> list[FixedType]:
        return [self._nodes[i].types["result"] for i in node.inputs]

    # ------------------------------------------------------------------ editing
    def remove(self, name: str) -> None:
        """Remove a single-input node, rewiring its consumers (and graph outputs) to its input."""
        node = self._nodes[name]
        if len(node.inputs) != 1:
            raise GraphError(f"cannot bypass node {name!r}: it has {len(node.inputs)} inputs")
        src = node.inputs[0]
        for c in self._nodes.values():
            c.inputs = [src if i == name else i for i in c.inputs]
        self.outputs = [src if o == name else o for o in self.outputs]
        del self._nodes[name]

    def replace(self, name: str, new_nodes: list[Node]) -> None:
        """Replace node ``name`` by a chain of nodes (the last one takes its place for consumers)."""
        order = list(self._nodes.values())
        idx = [n.name for n in order].index(name)
        last = new_nodes[-1].name
        rest = order[idx + 1:]
        self._nodes = {n.name: n for n in order[:idx]}
        for n in new_nodes:
            self.add(n)
        for n in rest:
            n.inputs = [last if i == name else i for i in n.inputs]
            self.add(n)
        self.outputs = [last if o == name else o for o in self.outputs]

    def split(self, at: str) -> tuple["Graph", "Graph"]:
        """Cut a single-path graph after node ``at``: (head, tail), both copies.

        The head is every node up to and including ``at`` (its output is ``at``); the tail starts with
        an ``input`` node named ``at`` carrying ``at``'s shape and result type (the boundary tensor), then
        every later node, unchanged.  Only one tensor may cross the cut: a split point inside a branch (a
        later node reads an earlier one other than ``at``), a graph input or a graph output is refused.
        """
        head = self.head(at)
        names = [n.name for n in self._nodes.values()]
        boundary = self._nodes[at]
        tail_input = Node(at, "input", [], tuple(boundary.shape), types={"result": boundary.types["result"]})
        tail = Graph(f"{self.name}_tail", [tail_input] + [_copy_node(self._nodes[n])
                                                          for n in names[names.index(at) + 1:]], [at], self.outputs)
        tail.settings = dict(self.settings)
        return head, tail

    def head(self, at: str) -> "Graph":
        """The head of :meth:`split` alone (a copy): every node up to and including ``at``; needs no types."""
        names = self.check_split(at)
        head = Graph(self.name, [_copy_node(self._nodes[n]) for n in names[:names.index(at) + 1]], self.inputs, [at])
        head.settings = dict(self.settings)
        return head

    def check_split(self, at: str) -> list[str]:
        """GraphError unless :meth:`split` may cut after ``at``; the node names in order."""
        names = [n.name for n in self._nodes.values()]
        if at not in self._nodes:
            raise GraphError(f"split point {at!r} is not a layer of {self.name!r}; layers: {', '.join(names)}")
        if at in self.inputs:
            raise GraphError(f"split point {at!r} is the model input: the FPGA part would compute nothing")
        if at in self.outputs:
            raise GraphError(f"split point {at!r} is the model output: nothing is left for the fallback")
        k = names.index(at)
        before, after = set(names[:k]), names[k + 1:]
        for name in after:
            crossing = [i for i in self._nodes[name].inputs if i in before]
            if crossing:
                raise GraphError(f"split point {at!r} is inside a branch: layer {name!r} after it reads "
                                 f"{crossing[0]!r} before it; split at a layer every path goes through")
        early = [o for o in self.outputs if o in before]
        if early:
            raise GraphError(f"split point {at!r} is inside a branch: model output {early[0]!r} comes before it")
        return names

    # ------------------------------------------------------------------ printing
    def summary(self) -> str:
        rows = [("name", "op", "inputs", "shape", "result type", "details")]
        for n in self._nodes.values():
            details = []
            for k in ("activation", "units", "strategy", "reuse_factor"):
                if k in n.attrs:
                    details.append(f"{k}={n.attrs[k]}")
            for k, t in n.types.items():
                if k != "result":
                    details.append(f"{k}={t}")
            rows.append((n.name, n.op, ",".join(n.inputs) or "-", "x".join(map(str, n.shape)),
                         str(n.types.get("result", "?")), " ".join(details)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"graph {self.name}: inputs {self.inputs} -> outputs {self.outputs}"]
        for r in rows:
            lines.append("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])
        return "\n".join(lines)

    # ------------------------------------------------------------------ serialisation
    def to_json_dict(self) -> dict:
        nodes = []
        for n in self._nodes.values():
            nodes.append({
                "name": n.name, "op": n.op, "inputs": list(n.inputs), "shape": list(n.shape),
                "attrs": _jsonable(n.attrs),
                "types": {k: t.to_dict() for k, t in sorted(n.types.items())},
                "weights": {k: {"shape": list(v.shape)} for k, v in sorted(n.weights.items())},
            })
        return {"format_version": GRAPH_FORMAT_VERSION, "name": self.name, "inputs": self.inputs,
                "outputs": self.outputs, "nodes": nodes}

    def weight_arrays(self) -> dict[str, np.ndarray]:
        return {f"{n.name}/{k}": np.asarray(v, dtype=np.float64)
                for n in self._nodes.values() for k, v in sorted(n.weights.items())}

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "graph.json").write_text(json.dumps(self.to_json_dict(), indent=1, sort_keys=False) + "\n")
        (d / "weights.npz").write_bytes(deterministic_npz(self.weight_arrays()))

    @classmethod
    def from_json_dict(cls, data: dict, arrays: dict[str, np.ndarray]) -> "Graph":
        if data.get("format_version") != GRAPH_FORMAT_VERSION:
            raise GraphError(f"graph format version {data.get('format_version')!r} is not supported "
                             f"(expected {GRAPH_FORMAT_VERSION}); regenerate the project")
        g = cls(data["name"])
        for nd in data["nodes"]:
            weights = {k: np.asarray(arrays[f"{nd['name']}/{k}"], dtype=np.float64) for k in nd["weights"]}
            g.add(Node(name=nd["name"], op=nd["op"], inputs=list(nd["inputs"]), shape=tuple(nd["shape"]),
                       attrs=_from_json(nd["attrs"]), weights=weights,
                       types={k: FixedType.from_dict(t) for k, t in nd["types"].items()}))
        g.inputs = list(data["inputs"])
        g.outputs = list(data["outputs"])
        return g

    @classmethod
    def load(cls, directory: str | Path) -> "Graph":
        d = Path(directory)
        data = json.loads((d / "graph.json").read_text())
        with np.load(d / "weights.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return cls.from_json_dict(data, arrays)


def _copy_node(n: Node) -> Node:
    """A node whose lists and dicts are its own (weights arrays shared; meta caches, "_"-keys, dropped)."""
    return Node(n.name, n.op, list(n.inputs), tuple(n.shape), dict(n.attrs), dict(n.weights), dict(n.types),
                {k: v for k, v in n.meta.items() if not k.startswith("_")})


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, FixedType):
        return {"__fixed__": v.to_dict()}
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _from_json(v):
    if isinstance(v, dict):
        if set(v) == {"__fixed__"}:
            return FixedType.from_dict(v["__fixed__"])
        return {k: _from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


def deterministic_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz whose bytes depend only on the arrays (fixed zip timestamps, sorted names)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()
