"""HGQ2 (Keras 3, hgq2 0.2) ``.keras`` archives -> layer graph, read as data (zipfile, JSON, h5py): no hgq, keras
or tensorflow import, no code from the file executed.

Every HGQ2 layer computes ``output quantizer(op(input quantizer(x)))`` with the op in float on quantized
values (hgq/layers/core/base.py): the input/output quantizers become ``fixed_quant`` nodes (per-element grids;
a plain ``activation`` cast when every element shares one grid), weights and biases are quantized here exactly
as HGQ2 does in float32 (:mod:`.quantizer`), and the op itself is the existing exact graph op (dense, conv2d,
pooling, merge, ...), so the graph computes HGQ2's bits wherever HGQ2's float32 arithmetic is exact.
"""

from __future__ import annotations

from pathlib import Path

from .archive import is_hgq2_config, read_config
from .layers import build_graph
from .layers import HANDLERS

__all__ = ["is_hgq2_archive", "load_hgq2_graph", "supported_layers"]


def is_hgq2_archive(path) -> bool:
    """A ``.keras`` archive whose config.json holds an HGQ2 class (False for anything unreadable: the other
    loaders report those)."""
    p = Path(path)
    if p.suffix.lower() != ".keras" or not p.is_file():
        return False
    try:
        return is_hgq2_config(read_config(p))
    except Exception:
        return False


def load_hgq2_graph(path, name: str | None = None):
    return build_graph(Path(path), name=name)


def supported_layers() -> list[str]:
    return sorted(HANDLERS)
