"""Read a QONNX/ONNX file safely: check it is an ONNX protobuf, its IR and opset versions are inside the
tested range, then run qonnx's cleanup (shape inference, constant folding of everything but the
quantizers, readable names).  An ONNX file holds no code; nothing in it is executed but qonnx's own ops."""

from __future__ import annotations

from pathlib import Path

from ..registry import FrontendError

__all__ = ["load_qonnx_model", "IR_VERSIONS", "OPSET_VERSIONS", "QONNX_DOMAINS", "import_onnx"]

# the ONNX IR versions and default-domain opsets the frontend accepts (tested: Brevitas 0.13 export_qonnx writes
# IR 9 (TorchScript exporter) or 10 (torch.export) with opset 20; torch.onnx.export(opset_version=13) and the
# tests' own QONNX graphs IR 8, opset 13; the ops read here have kept their semantics across 11-21)
IR_VERSIONS = (7, 11)
OPSET_VERSIONS = (11, 21)
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")


def import_onnx():
    # onnx and qonnx are imported on use only: Keras users need neither (pip install 'fpga-gen[onnx]')
    try:
        import onnx  # noqa: F401
        import qonnx  # noqa: F401
    except ImportError as e:
        raise FrontendError(f"reading .onnx models needs the onnx and qonnx packages ({e.name} is missing); "
                            f"pip install 'fpga-gen[onnx]'") from None
    import onnx
    return onnx


def load_qonnx_model(path):
    """(qonnx ModelWrapper after cleanup, the raw ModelProto) or a one-line FrontendError."""
    onnx = import_onnx()
    p = Path(path)
    if not p.is_file():
        raise FrontendError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise FrontendError(f"{p}: the file is empty; export the model with brevitas.export.export_qonnx "
                            f"or torch.onnx.export")
    try:
        proto = onnx.load(str(p))
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FrontendError(f"{p}: not a valid ONNX file ({msg[:120]}); the file is truncated or corrupt: "
                            f"export it again") from None
    if not proto.graph.node:
        raise FrontendError(f"{p}: the ONNX file holds no graph nodes: the file is truncated or not an ONNX model")
    ir = int(proto.ir_version)
    if not IR_VERSIONS[0] <= ir <= IR_VERSIONS[1]:
        raise FrontendError(f"{p}: ONNX IR version {ir} is outside the tested range {IR_VERSIONS[0]}-"
                            f"{IR_VERSIONS[1]}; export with a supported exporter (e.g. torch.onnx.export "
                            f"opset_version=18)")
    for op in proto.opset_import:
        if op.domain in ("", "ai.onnx") and not OPSET_VERSIONS[0] <= op.version <= OPSET_VERSIONS[1]:
            raise FrontendError(f"{p}: ONNX opset {op.version} is outside the tested range {OPSET_VERSIONS[0]}-"
                                f"{OPSET_VERSIONS[1]}; export with opset_version between them")
    if len(proto.graph.input) - len({i.name for i in proto.graph.initializer} & {i.name for i in proto.graph.input}) != 1 \
            or len(proto.graph.output) != 1:
        raise FrontendError(f"{p}: the model has {len(proto.graph.input)} inputs and {len(proto.graph.output)} "
                            f"outputs; only single-input, single-output models are supported yet")
    from qonnx.core.modelwrapper import ModelWrapper
    try:
        model = _cleanup(ModelWrapper(proto))
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FrontendError(f"{p}: qonnx cannot clean up the graph ({type(e).__name__}: {msg[:160]}); check the "
                            f"model with onnx.checker.check_model") from None
    return model, proto


def _cleanup(model):
    """qonnx.util.cleanup.cleanup_model's transformations, except that nodes keep the names the exporter gave
    them (error messages name the user's nodes); only nameless or duplicate ones get op_type_N."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (GiveReadableTensorNames, GiveUniqueParameterTensors,
                                              RemoveStaticGraphInputs, RemoveUnusedTensors)
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit
    for n in model.graph.node:
        if n.op_type in ("Quant", "Trunc", "BipolarQuant"):
            n.domain = "qonnx.custom_op.general"     # as cleanup_model does: the op's home in qonnx 1.0
    inits = {i.name for i in model.graph.initializer}
    dims = [i.type.tensor_type.shape.dim for i in model.graph.input if i.name not in inits][0]
    if dims and (dims[0].HasField("dim_param") or dims[0].dim_value != 1):
        # a dynamic (or other) batch size: 1, as the reference runs one sample at a time
        from qonnx.transformation.change_batchsize import ChangeBatchSize
        model = model.transform(ChangeBatchSize(1))
    for t in (InferShapes(), GiveUniqueParameterTensors(),
              FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear"]),
              FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs()):
        model = model.transform(t)
    seen, counts = set(), {}
    for n in model.graph.node:
        if not n.name or n.name in seen:
            k = counts.get(n.op_type, 0)
            while f"{n.op_type}_{k}" in seen or any(m.name == f"{n.op_type}_{k}" for m in model.graph.node):
                k += 1
            counts[n.op_type] = k + 1
            n.name = f"{n.op_type}_{k}"
        seen.add(n.name)
    return model.transform(GiveReadableTensorNames())
