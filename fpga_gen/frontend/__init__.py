"""Model files -> layer graph.  One subpackage per source format (today :mod:`fpga_gen.frontend.keras`), each
with its handler registry (:mod:`fpga_gen.frontend.registry`); frontends import only :mod:`fpga_gen.ir`."""

from __future__ import annotations

import os

from . import hgq2, keras, qonnx
from .keras.loader import load_keras_model
from .registry import FrontendError, Registry

__all__ = ["FrontendError", "Registry", "load_keras_model", "load_graph", "detect_format", "FORMATS"]

# format -> (model file -> source model, source model -> Graph) for the Keras frontend; 'hgq2' (a .keras archive
# holding HGQ2 layers, read as data) and 'qonnx' (.onnx files) have their own loaders (load_graph)
FORMATS = {
    "keras": (load_keras_model, keras.keras_to_graph),
    "hgq2": None,
    "qonnx": None,
}


def detect_format(source) -> str:
    """Which frontend reads ``source`` (a model file path or an in-memory model): a key of :data:`FORMATS`.

    ``.onnx`` files are 'qonnx'; a ``.keras`` archive whose config holds HGQ2 classes is 'hgq2'; everything else
    (.h5, .keras, a SavedModel folder, a tf.keras model) is 'keras'."""
    if qonnx.is_onnx_path(source):
        return "qonnx"
    if isinstance(source, (str, os.PathLike)) and hgq2.is_hgq2_archive(source):
        return "hgq2"
    return "keras"


def load_graph(source, name: str | None = None):
    """A model file path or in-memory model -> (Graph, the source model: the reference the graph is checked on;
    None for an HGQ2 archive, which is read as data; qonnx's model wrapper for an .onnx file)."""
    fmt = detect_format(source)
    if fmt == "hgq2":
        return hgq2.load_hgq2_graph(source, name=name), None
    if fmt == "qonnx":
        return qonnx.load_qonnx_graph(source, name=name)
    load, to_graph = FORMATS[fmt]
    model = load(source)
    return to_graph(model, name=name), model
