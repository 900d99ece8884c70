"""Keras merge layers -> graph: Add, Subtract, Multiply, Average, Maximum, Minimum (op ``merge``) and
Concatenate (op ``concatenate``), io_parallel.  Registered into :data:`fpga_gen.frontend.keras.HANDLERS`.

The nnet_merge.h kernels take two inputs, so a Keras merge of n > 2 inputs becomes n - 1 binary nodes:
a left-to-right chain ``((x0 op x1) op x2) op ...`` named ``<layer>_1``, ``<layer>_2``, ... with the last
one named after the layer (the precision pass gives every partial result its exact type, so the chain
computes exactly what Keras computes on exact values).  Average of n inputs is a balanced tree of pairwise
averages, exact only when n is a power of two; other n are refused.
"""

from __future__ import annotations

import math

from ...ir.graph import Node
from ..registry import FrontendError
from .convert import Context, _shape, handler

__all__ = []

_MODES = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average",
          "Maximum": "maximum", "Minimum": "minimum"}


def _merge_inputs(layer, ctx: Context) -> tuple[list[str], list[tuple[int, ...]]]:
    """Graph sources and Keras shapes of the layer's inputs, after checking their sizes agree."""
    cls = type(layer).__name__
    srcs, shapes = ctx.inputs_of(layer), ctx.inbound_shapes(layer)
    if len(srcs) < 2 or len(srcs) != len(shapes):
        raise FrontendError(f"layer {layer.name!r} ({cls}): needs at least two inputs, got {len(srcs)}")
    for src, shape in zip(srcs, shapes):
        if ctx.graph[src].size != math.prod(shape):
            raise FrontendError(f"layer {layer.name!r} ({cls}): input {src!r} holds {ctx.graph[src].size} values "
                                f"but Keras gives it shape {shape}")
    return srcs, shapes


def _fmt(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


@handler(*_MODES)
def _merge(layer, ctx: Context):
    cls = type(layer).__name__
    mode = _MODES[cls]
    srcs, shapes = _merge_inputs(layer, ctx)
    for s in shapes[1:]:
        if s != shapes[0]:
            raise FrontendError(f"layer {layer.name!r} ({cls}): inputs of shapes {_fmt(shapes[0])} and {_fmt(s)} "
                                f"differ; broadcasting is not supported, give every input the same shape")
    shape = _shape(layer)
    if shape != shapes[0]:
        raise FrontendError(f"layer {layer.name!r} ({cls}): output shape {shape} differs from its inputs' "
                            f"{shapes[0]}")
    n = len(srcs)
    if mode == "average":
        if n & (n - 1):
            raise FrontendError(f"layer {layer.name!r} ({cls}): an average of {n} inputs is not supported; the "
                                f"pairwise nnet::average is exact for 2, 4, 8, ... inputs only")

        def tree(lo: int, hi: int, name: str) -> str:
            if hi - lo == 1:
                return srcs[lo]
            mid = (lo + hi) // 2
            a = tree(lo, mid, ctx.unique(f"{layer.name}_{lo}_{mid - 1}"))
            b = tree(mid, hi, ctx.unique(f"{layer.name}_{mid}_{hi - 1}"))
            return ctx.add(Node(name, "merge", [a, b], shape, attrs={"mode": mode})).name
        tree(0, n, layer.name)
        return
    acc = srcs[0]
    for k in range(1, n):
        name = layer.name if k == n - 1 else ctx.unique(f"{layer.name}_{k}")
        acc = ctx.add(Node(name, "merge", [acc, srcs[k]], shape, attrs={"mode": mode})).name


@handler("Concatenate")
def _concatenate(layer, ctx: Context):
    srcs, shapes = _merge_inputs(layer, ctx)
    rank = len(shapes[0])
    keras_axis = int(layer.get_config().get("axis", -1))
    if not 1 <= rank <= 3:
        raise FrontendError(f"layer {layer.name!r} (Concatenate): inputs of rank {rank} are not supported; "
                            f"concatenate 1-, 2- or 3-dimensional tensors")
    axis = keras_axis + rank if keras_axis < 0 else keras_axis - 1      # Keras counts the batch axis
    if not 0 <= axis < rank:
        axes = ", ".join(map(str, [*range(1, rank + 1), *range(-rank, 0)]))
        raise FrontendError(f"layer {layer.name!r} (Concatenate): axis={keras_axis} is not supported; concatenate "
                            f"along a data axis, one of {axes}")
    for s in shapes[1:]:
        if len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
            raise FrontendError(f"layer {layer.name!r} (Concatenate): inputs of shapes {_fmt(shapes[0])} and {_fmt(s)} "
                                f"cannot be joined along axis {keras_axis}")
    acc, acc_shape = srcs[0], shapes[0]
    for k in range(1, len(srcs)):
        shape = acc_shape[:axis] + (acc_shape[axis] + shapes[k][axis],) + acc_shape[axis + 1:]
        name = layer.name if k == len(srcs) - 1 else ctx.unique(f"{layer.name}_{k}")
        acc = ctx.add(Node(name, "concatenate", [acc, srcs[k]], shape,
                           attrs={"axis": axis, "shape1": acc_shape, "shape2": shapes[k]})).name
        acc_shape = shape
    if acc_shape != _shape(layer):
        raise FrontendError(f"layer {layer.name!r} (Concatenate): computed output shape {acc_shape} differs from "
                            f"Keras' {_shape(layer)}")
