"""Keras/QKeras models -> layer graph.  The only package that imports TensorFlow."""
from .keras import keras_to_graph
from .loader import FrontendError, load_keras_model

__all__ = ["FrontendError", "load_keras_model", "load_graph"]


def load_graph(source, name: str | None = None):
    """A model file path or in-memory tf.keras model -> (Graph, keras model)."""
    model = load_keras_model(source)
    return keras_to_graph(model, name=name), model
