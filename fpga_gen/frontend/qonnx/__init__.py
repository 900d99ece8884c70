"""QONNX / ONNX models (Brevitas export_qonnx, torch.onnx.export, qonnx converters) -> layer graph.

    graph, reference = load_qonnx_graph("model.onnx")
    reference.predict(x)        # qonnx's execute_onnx, sample by sample: what the project is compared with
"""
from .convert import HANDLERS, qonnx_to_graph, supported_ops
from .loader import load_qonnx_model
from .reference import QonnxReference
import os
from pathlib import Path

__all__ = ["load_qonnx_graph", "is_onnx_path", "HANDLERS", "supported_ops", "QonnxReference", "load_qonnx_model"]


def is_onnx_path(source) -> bool:
    return isinstance(source, (str, os.PathLike)) and str(source).lower().endswith(".onnx")


def load_qonnx_graph(path, name: str | None = None):
    """An .onnx file -> (Graph, QonnxReference); a one-line FrontendError for anything it cannot read."""
    model, _ = load_qonnx_model(path)
    graph = qonnx_to_graph(model, name or Path(str(path)).stem)
    return graph, QonnxReference(model, str(path))
