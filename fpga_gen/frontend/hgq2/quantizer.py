"""HGQ2 fixed-point quantizers read as data: the config (q_type kif/kbi, round and overflow modes) and the
stored variables (k, i, f or k, b, i per element) -> per-element integers (k, i, f) and the modes.

What HGQ2 0.2 computes at inference (hgq/quantizer/internal/fixed_point_quantizer.py and
quantizers/fixed_point/_fixed_point_ops.py), for each element with keep_negative k, integer bits i and
fraction bits f (kif: i, f = round_half_even(stored i, f); kbi: b, i = round_half_even(stored b, i), f = b - i):

* i = max(i, -f);
* overflow other than WRAP: clip x to [min, max] (SAT: [-k 2**i, 2**i - 2**-f]; SAT_SYM: [-k (2**i - 2**-f),
  2**i - 2**-f]), then round to the step 2**-f (TRN floor, RND floor(v + 1/2), RND_CONV half to even,
  TRN_ZERO, RND_ZERO, RND_INF, RND_MIN_INF as ap_fixed);
* WRAP: round, then wrap modulo 2**(i + k) into [-k 2**(i + k - 1), ...);
* the result is 0 wherever k + i + f <= 0 (the original i).
* Exceptions for weights (is_weight and trainable quantizers in WRAP mode): kif rounds only; kbi with RND
  rounds only (no wrap, no zeroing).

Clip-then-round equals round-then-clip here (the bounds are on the grid and every mode is monotone), so an
activation quantizer is exactly an ap_fixed cast per element: ap_fixed<k + i + f, k + i, Q, O> (ap_ufixed when
k = 0), SAT_SYM with k = 0 being SAT.  :func:`quantize_f32` replays HGQ2's float32 operations on constants
(weights and biases) so their values are HGQ2's bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...ir.types import FixedType
from ..registry import FrontendError

__all__ = ["HQuantizer", "parse_quantizer", "quantize_f32", "ROUND_MODES", "OVERFLOW_MODES"]

ROUND_MODES = ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_INF", "RND_MIN_INF")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_SYM")


@dataclass
class HQuantizer:
    """One HGQ2 fixed-point quantizer: per-element k, i, f (int arrays of the bit-width shape) and modes."""
    name: str
    q_type: str          # 'kif' | 'kbi'
    round_mode: str
    overflow_mode: str
    k: np.ndarray
    i: np.ndarray
    f: np.ndarray
    is_weight: bool
    trainable: bool

    def broadcast(self, shape: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k, i, f broadcast to a tensor of ``shape`` (the batch dimension included when the bit widths have one)."""
        try:
            return tuple(np.broadcast_to(a, shape).astype(np.int64) for a in (self.k, self.i, self.f))
        except ValueError:
            raise FrontendError(f"quantizer {self.name!r}: bit widths of shape {self.k.shape} do not fit a tensor "
                                f"of shape {shape}") from None

    @property
    def rounds_only(self) -> bool:
        """HGQ2's weight shortcut: a trainable WRAP weight quantizer only rounds (kif; kbi with RND)."""
        return (self.is_weight and self.trainable and self.overflow_mode == "WRAP"
                and (self.q_type == "kif" or self.round_mode == "RND"))

    def text(self) -> str:
        b = self.k + np.maximum(self.i + self.f, 0)
        return (f"hgq {self.q_type}({self.round_mode}, {self.overflow_mode}, bits {int(b.min())}..{int(b.max())}, "
                f"f {int(self.f.min())}..{int(self.f.max())})")


def _round_half_even(a) -> np.ndarray:
    return np.round(np.asarray(a, dtype=np.float32)).astype(np.int64)


def parse_quantizer(conf: dict | None, variables: list[np.ndarray] | None, where: str) -> HQuantizer | None:
    """A QuantizerConfig dict (the config.json entry) and the quantizer's stored variables -> HQuantizer.
    Keras stores trainable variables first, then the others, each in creation order: kif creates k, i, f
    (i trainable unless WRAP) then i_decay_speed under WRAP; kbi creates k, b, i likewise."""
    if conf is None:
        return None
    c = conf.get("config", conf) if isinstance(conf, dict) else None
    if not isinstance(c, dict):
        raise FrontendError(f"{where}: quantizer config is not a dictionary")
    q_type = str(c.get("q_type", "default"))
    place = c.get("place", "datalane")
    if q_type == "default":
        q_type = "kbi" if place in ("weight", "bias", "table") else "kif"
    if q_type not in ("kif", "kbi"):
        raise FrontendError(f"{where}: quantizer type {q_type!r} is not supported; supported: kif, kbi "
                            f"(fixed point)")
    for key in ("scaler", "affine", "bw_mapper"):
        if c.get(key) is not None:
            raise FrontendError(f"{where}: quantizer option {key}={c[key]!r} is not supported; leave it None")
    rnd = str(c.get("round_mode", "RND")).upper()
    ovf = str(c.get("overflow_mode", "WRAP")).upper()
    if rnd.startswith("S_"):
        rnd = rnd[2:]                      # stochastic rounding is training only
    if rnd not in ROUND_MODES or ovf not in OVERFLOW_MODES:
        raise FrontendError(f"{where}: round_mode {rnd!r} / overflow_mode {ovf!r} is not supported; supported: "
                            f"{', '.join(ROUND_MODES)} / {', '.join(OVERFLOW_MODES)}")
    if variables is None:
        raise FrontendError(f"{where}: the quantizer's variables are missing from model.weights.h5")
    wrap = ovf == "WRAP"
    if q_type == "kif":
        created = [("k", False), ("i", not wrap), ("f", True)]
    else:
        created = [("k", False), ("b", True), ("i", not wrap)]
    if wrap:
        created.append(("decay", False))
    order = [n for n, t in created if t] + [n for n, t in created if not t]
    if len(variables) != len(order):
        raise FrontendError(f"{where}: the quantizer holds {len(variables)} variables, expected {len(order)} "
                            f"({', '.join(order)})")
    v = dict(zip(order, variables))
    if v["k"].dtype != np.uint8:
        raise FrontendError(f"{where}: the quantizer's keep_negative variable is {v['k'].dtype}, expected uint8")
    k = np.asarray(v["k"]).astype(np.int64)
    if q_type == "kif":
        i, f = _round_half_even(v["i"]), _round_half_even(v["f"])
    else:
        b, i = _round_half_even(v["b"]), _round_half_even(v["i"])
        f = b - i
    if not (k.shape == i.shape == f.shape):
        raise FrontendError(f"{where}: the quantizer's k, i, f have shapes {k.shape}, {i.shape}, {f.shape}")
    if np.any((k != 0) & (k != 1)):
        raise FrontendError(f"{where}: keep_negative values must be 0 or 1")
    return HQuantizer(where, q_type, rnd, ovf, k, i, f, bool(c.get("is_weight", False)),
                      bool(c.get("trainable", True)))


# ----------------------------------------------------------------------------- constants (float32 replay)
def _round_f32(x: np.ndarray, mode: str) -> np.ndarray:
    half = np.float32(0.5)
    if mode == "TRN":
        return np.floor(x)
    if mode == "RND":
        return np.floor(x + half)
    if mode == "RND_CONV":
        return np.round(x)
    if mode == "TRN_ZERO":
        return np.floor(np.abs(x)) * np.sign(x)
    if mode == "RND_ZERO":
        return -np.floor(-np.abs(x) + half) * np.sign(x)
    if mode == "RND_MIN_INF":
        return -np.floor(-x + half)
    if mode == "RND_INF":
        return np.floor(np.abs(x) + half) * np.sign(x)
    raise AssertionError(mode)


def quantize_f32(q: HQuantizer, x: np.ndarray) -> np.ndarray:
    """HGQ2's quantizer applied to a float32 constant exactly as TensorFlow computes it in float32 (weights and
    biases are constants: the values HGQ2 multiplies with).  Returns float64 (exact)."""
    x = np.asarray(x, dtype=np.float32)
    k, i0, f = (a.astype(np.float32) for a in q.broadcast(x.shape))
    two = np.float32(2.0)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = two ** f
        if q.rounds_only:
            return (_round_f32(x * scale, q.round_mode) / scale).astype(np.float64)
        i = np.maximum(i0, -f)
        if q.overflow_mode != "WRAP":
            eps = two ** (-f)
            hi = two ** i - eps
            lo = -(two ** i) * k if q.overflow_mode == "SAT" else -hi * k
            x = np.where(x > hi, hi, np.where(x < lo, lo, x)).astype(np.float32)
        r = _round_f32(x * scale, q.round_mode) / scale
        if q.overflow_mode == "WRAP":
            bk = i + k
            bias = k * two ** (bk - 1)
            r = np.mod(r + bias, two ** bk) - bias
        r = np.where(k + i0 + f > 0, r, np.float32(0.0))
    r = np.asarray(r, dtype=np.float32)
    if not np.all(np.isfinite(r)):
        raise FrontendError(f"{q.name}: quantized values are not finite")
    return r.astype(np.float64)


def element_types(q: HQuantizer, shape: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per element of a tensor of ``shape`` (no batch): k, integer bits i and fraction bits f of its grid, with
    zero-width elements (k + i + f <= 0) marked by f = i = k = 0 and a width of 0."""
    full = (1,) + tuple(shape) if q.k.ndim == len(shape) + 1 else tuple(shape)
    k, i, f = q.broadcast(full)
    k, i, f = (a.reshape(-1) for a in (k, i, f))
    zero = k + i + f <= 0
    i = np.maximum(i, -f)
    return np.where(zero, 0, k), np.where(zero, 0, i), np.where(zero, 0, f)


def union_type(k: np.ndarray, i: np.ndarray, f: np.ndarray, rounding: str = "TRN",
               saturation: str = "WRAP") -> FixedType:
    """The smallest FixedType holding every element's grid (k, i, f per element; width k + i + f <= 0: zero)."""
    live = (k + i + f) > 0
    if not np.any(live):
        return FixedType(1, 1, True, rounding, saturation)
    kk, ii, ff = k[live], i[live], f[live]
    frac = int(ff.max())
    signed = bool(kk.max() > 0)
    # largest magnitude bound: 2**i (values below 2**i, negatives down to -2**i)
    integer = int(ii.max()) + (1 if signed else 0)
    width = integer + frac
    if width < 1:
        # every grid is coarser than its range (e.g. k=1, i=-3, f=3): one bit with the sign
        integer, width = 1 - frac, 1
    return FixedType(width, integer, signed, rounding, saturation)
