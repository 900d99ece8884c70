"""Model files -> layer graph.  One subpackage per source format (today :mod:`fpga_gen.frontend.keras`), each
with its handler registry (:mod:`fpga_gen.frontend.registry`); frontends import only :mod:`fpga_gen.ir`."""

from __future__ import annotations

import os

from . import hgq2, keras, qonnx
from .keras.loader import load_keras_model
from .registry import FrontendError, Registry

__all__ = ["FrontendError", "Registry", "load_keras_model", "load_graph", "detect_format", "FORMATS"]

def _read_keras(source, name=None):
    model = load_keras_model(source)
    return keras.keras_to_graph(model, name=name), model


def _read_hgq2(source, name=None):
    return hgq2.load_hgq2_graph(source, name=name), None          # read as data: no Keras model to check on


# format -> reader: (model file or in-memory model, name) -> (Graph, the source model the graph is checked on)
FORMATS = {
    "keras": _read_keras,
    "hgq2": _read_hgq2,
    "qonnx": qonnx.load_qonnx_graph,                               # the reference: qonnx's model wrapper
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
    return FORMATS[detect_format(source)](source, name=name)
