"""Keras/QKeras models -> layer graph.  The only package that imports TensorFlow."""
import os

from .loader import FrontendError, load_keras_model

__all__ = ["FrontendError", "load_keras_model", "load_graph"]


def load_graph(source, name: str | None = None):
    """A model file path or in-memory tf.keras model -> (Graph, keras model); an HGQ2 .keras archive is read as
    data by :mod:`fpga_gen.frontend.hgq2` (no Keras model: None); an .onnx file -> (Graph, qonnx reference, see
    :mod:`fpga_gen.frontend.qonnx`)."""
    from .hgq2 import is_hgq2_archive, load_hgq2_graph
    if isinstance(source, (str, os.PathLike)) and is_hgq2_archive(source):
        return load_hgq2_graph(source, name=name), None
    from .qonnx import is_onnx_path
    if is_onnx_path(source):
        from .qonnx import load_qonnx_graph
        return load_qonnx_graph(source, name=name)
    from .keras import keras_to_graph
    model = load_keras_model(source)
    return keras_to_graph(model, name=name), model
