"""Keras pooling layers -> graph: MaxPooling1D/2D, AveragePooling1D/2D (the pooling op; 1-D: in_height 1) and
GlobalMax/AveragePooling1D/2D (one pooling window over the whole input, nnet::global_pooling2d_cl)."""

from __future__ import annotations

from ...ir.graph import Node
from ...ir.spatial import out_size_and_pads
from ..registry import FrontendError
from .conv import _check_common, _geometry, _pair, _spatial_input
from .convert import Context, handler, output_shape
from .inputs import _channels_last_input, _check_shape, _input, _ints

__all__ = []


@handler("MaxPooling2D", "AveragePooling2D")
def _pooling2d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    _check_common(layer, cfg)
    src, in_shape = _spatial_input(layer, ctx)
    pool = _pair(cfg["pool_size"])
    strides = _pair(cfg.get("strides") or pool)
    out_hw, pads = _geometry(layer, in_shape, pool, strides, cfg["padding"])
    shape = (*out_hw, in_shape[2])
    if shape != tuple(output_shape(layer)[1:]):
        raise FrontendError(f"layer {layer.name!r} ({cls}): computed output shape {shape} differs from Keras' "
                            f"{tuple(output_shape(layer)[1:])}")
    ctx.add(Node(layer.name, "pooling", [src], shape,
                 attrs={"mode": "max" if cls.startswith("Max") else "average", "in_height": in_shape[0],
                        "in_width": in_shape[1], "n_chan": in_shape[2], "pool_size": pool, "strides": strides,
                        "padding": cfg["padding"], "pads": pads}))


@handler("MaxPooling1D", "AveragePooling1D")
def _pooling1d(layer, ctx: Context):
    cls = type(layer).__name__
    cfg = layer.get_config()
    _check_common(layer, cfg)
    src, (_, in_w, n_chan) = _input(layer, ctx, 1)
    (pw,) = _ints(cfg["pool_size"], 1)
    (sw,) = _ints(cfg.get("strides") or pw, 1)
    ow, pl, pr = out_size_and_pads(in_w, pw, sw, cfg["padding"])
    shape = _check_shape(layer, (ow, n_chan))
    ctx.add(Node(layer.name, "pooling", [src], shape,
                 attrs={"mode": "max" if cls.startswith("Max") else "average", "in_height": 1, "in_width": in_w,
                        "n_chan": n_chan, "pool_size": (1, pw), "strides": (1, sw), "padding": cfg["padding"],
                        "pads": (0, 0, pl, pr)}))


@handler("GlobalMaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling2D")
def _global_pooling(layer, ctx: Context):
    cls = type(layer).__name__
    cfg, rank, src, (in_h, in_w, n_chan) = _channels_last_input(layer, ctx)
    keepdims = bool(cfg.get("keepdims", False))
    shape = _check_shape(layer, ((1,) * rank if keepdims else ()) + (n_chan,))
    ctx.add(Node(layer.name, "pooling", [src], shape,
                 attrs={"mode": "max" if cls.startswith("GlobalMax") else "average", "in_height": in_h,
                        "in_width": in_w, "n_chan": n_chan, "pool_size": (in_h, in_w), "strides": (in_h, in_w),
                        "padding": "valid", "pads": (0, 0, 0, 0)}))
