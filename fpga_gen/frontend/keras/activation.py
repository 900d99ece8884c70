"""Keras activation layers with parameters -> 'activation' nodes (nnet_activation.h kinds).

ReLU(max_value=M) is nnet::relu_max (relu6 / relu1 for 6 / 1; M must be an integer: the kernel takes it
as a template int), ReLU(negative_slope=a) and LeakyReLU(alpha) nnet::leaky_relu, ReLU(threshold=t) and
ThresholdedReLU(theta) nnet::thresholded_relu, ELU(alpha) nnet::elu, PReLU nnet::prelu with one alpha per
element.  Keras computes in float32: the parameters are taken as float32 values.
"""

from __future__ import annotations

import numpy as np

from ..registry import FrontendError
from .convert import Context, add_activation_node, handler


def _f32(v) -> float:
    return float(np.float32(v))


@handler("ReLU")
def _relu(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    cfg = layer.get_config()
    max_value = cfg.get("max_value")
    slope = _f32(cfg.get("negative_slope", 0) or 0)
    threshold = _f32(cfg.get("threshold", 0) or 0)
    set_opts = [k for k, on in (("max_value", max_value is not None), ("negative_slope", slope != 0),
                                ("threshold", threshold != 0)) if on]
    where = f"layer {layer.name!r} (ReLU)"
    if len(set_opts) > 1:
        raise FrontendError(f"{where}: {' and '.join(set_opts)} together are not supported; nnet has one kernel for "
                            f"each, so use one of them per ReLU layer")
    if max_value is not None:
        m = _f32(max_value)
        if m != int(m) or m < 0:
            raise FrontendError(f"{where}: max_value={max_value} is not supported; nnet::relu_max takes a "
                                f"non-negative integer, use e.g. max_value={max(int(round(m)), 0)}")
        attrs = {"activation": "relu_max", "max_int": int(m)}
    elif slope != 0:
        attrs = {"activation": "leaky_relu", "param": slope}
    elif threshold != 0:
        attrs = {"activation": "thresholded_relu", "param": threshold}
    else:
        attrs = {"activation": "relu"}
    add_activation_node(ctx, src, layer.name, layer.name, attrs)


@handler("LeakyReLU")
def _leaky_relu(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    cfg = layer.get_config()
    alpha = cfg.get("alpha", cfg.get("negative_slope", 0.3))
    add_activation_node(ctx, src, layer.name, layer.name, {"activation": "leaky_relu", "param": _f32(alpha)})


@handler("ThresholdedReLU")
def _thresholded_relu(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    theta = layer.get_config().get("theta", 1.0)
    add_activation_node(ctx, src, layer.name, layer.name, {"activation": "thresholded_relu", "param": _f32(theta)})


@handler("ELU")
def _elu(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    alpha = layer.get_config().get("alpha", 1.0)
    add_activation_node(ctx, src, layer.name, layer.name, {"activation": "elu", "param": _f32(alpha)})


@handler("PReLU")
def _prelu(layer, ctx: Context):
    (src,) = ctx.inputs_of(layer)
    shared = layer.get_config().get("shared_axes")
    if shared:
        raise FrontendError(f"layer {layer.name!r} (PReLU): shared_axes={list(shared)} is not supported; "
                            f"nnet::prelu takes one alpha per element, use shared_axes=None")
    alpha = np.asarray(layer.get_weights()[0], dtype=np.float32).astype(np.float64)
    if not np.all(np.isfinite(alpha)):
        raise FrontendError(f"layer {layer.name!r}: weights contain NaN or Inf; retrain or clean the model")
    add_activation_node(ctx, src, layer.name, layer.name, {"activation": "prelu"}, weights={"alpha": alpha.reshape(-1)})
