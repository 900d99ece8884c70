"""Input-shape and layout checks shared by the 1-D/2-D conv, pooling and reshaping handlers."""

from __future__ import annotations

from ..registry import FrontendError
from .convert import Context, output_shape

__all__ = []


def _ints(v, n: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (int(v),) * n
    return tuple(int(x) for x in v)


def _fail(layer, msg: str):
    raise FrontendError(f"layer {layer.name!r} ({type(layer).__name__}): {msg}")


def _channels_last(layer, cfg: dict) -> None:
    if cfg.get("data_format", "channels_last") not in (None, "channels_last"):
        _fail(layer, f"data_format={cfg['data_format']!r} is not supported; use data_format='channels_last'")


def _input(layer, ctx: Context, rank: int) -> tuple[str, tuple[int, int, int]]:
    """(source node, (height, width, channels)); a 1-D input (width, channels) has height 1."""
    (src,) = ctx.inputs_of(layer)
    shape = ctx.input_shape(layer)
    if len(shape) != rank + 1:
        what = "(width, channels)" if rank == 1 else "(height, width, channels)"
        _fail(layer, f"needs a {what} input, got shape {shape}")
    return src, ((1,) + shape if rank == 1 else shape)


def _channels_last_input(layer, ctx: Context) -> tuple[dict, int, str, tuple[int, int, int]]:
    """A 1-D or 2-D data-movement layer's config (channels_last checked), rank (1 for a ...1D class), source
    node and (height, width, channels) input (height 1 for 1-D)."""
    cfg = layer.get_config()
    _channels_last(layer, cfg)
    rank = 1 if type(layer).__name__.endswith("1D") else 2
    src, in_shape = _input(layer, ctx, rank)
    return cfg, rank, src, in_shape


def _check_shape(layer, shape: tuple) -> tuple:
    keras = tuple(int(d) for d in output_shape(layer)[1:])     # Keras 3 layers have no .output_shape
    if tuple(shape) != keras:
        _fail(layer, f"computed output shape {tuple(shape)} differs from Keras' {keras}")
    return keras
