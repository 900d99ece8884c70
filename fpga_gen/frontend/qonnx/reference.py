"""qonnx's ``execute_onnx`` as the reference a project is verified against (``fpga-gen verify m.onnx``)."""

from __future__ import annotations

import numpy as np

__all__ = ["QonnxReference"]


class QonnxReference:
    """``predict(x)`` runs the cleaned-up QONNX model with qonnx's executor (onnxruntime for the standard
    ops, qonnx's numpy code for Quant/BipolarQuant/Trunc), one sample at a time (the exported batch size is
    fixed), in float32 as the model declares; returns float64."""

    reference_name = "qonnx"

    def __init__(self, model, source: str = ""):
        self.model = model
        self.source = source
        self.input_name = [i.name for i in model.graph.input
                           if i.name not in {t.name for t in model.graph.initializer}][0]
        self.output_name = model.graph.output[0].name
        self.input_shape = tuple(model.get_tensor_shape(self.input_name))

    def predict(self, x, verbose=0):
        from qonnx.core.onnx_exec import execute_onnx
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.input_shape[1:]:
            raise ValueError(f"the model input is {self.input_shape[1:]} per sample, got {x.shape[1:]}")
        outs = []
        for k in range(x.shape[0]):
            res = execute_onnx(self.model, {self.input_name: x[k:k + 1]})
            outs.append(np.asarray(res[self.output_name], dtype=np.float64).reshape(-1))
        out_shape = tuple(self.model.get_tensor_shape(self.output_name) or [1])[1:]
        return np.stack(outs).reshape((x.shape[0],) + tuple(out_shape))
