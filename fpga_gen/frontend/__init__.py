"""Model files -> layer graph.  One subpackage per source format (today :mod:`fpga_gen.frontend.keras`), each
with its handler registry (:mod:`fpga_gen.frontend.registry`); frontends import only :mod:`fpga_gen.ir`."""

from __future__ import annotations

from pathlib import Path

from . import keras
from .keras.loader import load_keras_model
from .registry import FrontendError, Registry

__all__ = ["FrontendError", "Registry", "load_keras_model", "load_graph", "detect_format", "FORMATS"]

# format -> (model file -> source model, source model -> Graph).  Add 'hgq2' and 'qonnx' here.
FORMATS = {
    "keras": (load_keras_model, keras.keras_to_graph),
}


def detect_format(source) -> str:
    """Which frontend reads ``source`` (a model file path or an in-memory model): a key of :data:`FORMATS`.

    Today every source is Keras (.h5, .keras, a SavedModel folder, a tf.keras model); the HGQ2 and QONNX
    frontends add their tests here (e.g. ``.onnx`` files -> 'qonnx') before the Keras fallback."""
    if isinstance(source, (str, Path)):
        return "keras"
    return "keras"


def load_graph(source, name: str | None = None):
    """A model file path or in-memory model -> (Graph, the source model: the reference the graph is checked on)."""
    load, to_graph = FORMATS[detect_format(source)]
    model = load(source)
    return to_graph(model, name=name), model
