"""Fixed-point types: the one description of a number format shared by every stage.

A :class:`FixedType` is exactly the C++ ``ap_fixed<W, I, Q, O>`` / ``ap_ufixed<W, I, Q, O>``:
``width`` bits in all, ``integer`` of them left of the binary point (sign included when
signed), quantization mode ``rounding`` and overflow mode ``saturation``.  A value is
stored as an integer ``raw`` and means ``raw * 2**-frac`` with ``frac = width - integer``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["FixedType", "ROUNDING_MODES", "SATURATION_MODES", "TypeParseError", "exact_type_for_range", "split_top_level"]

ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
SATURATION_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")

MAX_WIDTH = 64


class TypeParseError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class FixedType:
    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    saturation: str = "WRAP"

    def __post_init__(self):
        if not isinstance(self.width, int) or not isinstance(self.integer, int):
            raise TypeParseError(f"fixed-point width and integer bits must be integers, got {self.width!r}, {self.integer!r}")
        if not 1 <= self.width <= MAX_WIDTH:
            raise TypeParseError(f"fixed-point width must be between 1 and {MAX_WIDTH}, got {self.width}")
        if self.rounding not in ROUNDING_MODES:
            raise TypeParseError(f"unknown rounding mode {self.rounding!r}; use one of {', '.join(ROUNDING_MODES)}")
        if self.saturation not in SATURATION_MODES:
            raise TypeParseError(f"unknown saturation mode {self.saturation!r}; use one of {', '.join(SATURATION_MODES)}")

    # ------------------------------------------------------------------ properties
    @property
    def frac(self) -> int:
        """Fractional bits (may be negative: a coarse type with integer > width)."""
        return self.width - self.integer

    @property
    def raw_min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def raw_max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def sat_min(self) -> int:
        """The smallest code an overflow of this type gives: raw_min, except a signed SAT_SYM type of two or more
        bits, whose range is symmetric (-raw_max; the AMD header keeps a one-bit type's negative code)."""
        return -self.raw_max if (self.saturation == "SAT_SYM" and self.signed and self.width > 1) else self.raw_min

    @property
    def min(self) -> float:
        return math.ldexp(self.raw_min, -self.frac)

    @property
    def max(self) -> float:
        return math.ldexp(self.raw_max, -self.frac)

    @property
    def step(self) -> float:
        return math.ldexp(1.0, -self.frac)

    # ------------------------------------------------------------------ spelling
    def cpp(self) -> str:
        """The C++ spelling: ap_fixed<16,6> or ap_ufixed<8,0,AP_RND_CONV,AP_SAT>."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        if self.rounding == "TRN" and self.saturation == "WRAP":
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},AP_{self.rounding},AP_{self.saturation}>"

    def __str__(self) -> str:
        return self.cpp()

    def to_dict(self) -> dict:
        return {"width": self.width, "integer": self.integer, "signed": self.signed,
                "rounding": self.rounding, "saturation": self.saturation}

    @classmethod
    def from_dict(cls, d: dict) -> "FixedType":
        return cls(int(d["width"]), int(d["integer"]), bool(d["signed"]), d["rounding"], d["saturation"])

    _PATTERN = re.compile(
        r"^\s*(ap_fixed|ap_ufixed|fixed|ufixed|ap_int|ap_uint|int|uint)\s*<\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?"
        r"(?:,\s*(?:AP_)?([A-Z_]+)\s*)?(?:,\s*(?:AP_)?([A-Z_]+)\s*)?(?:,\s*\d+\s*)?>\s*$"
    )

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        """Parse 'ap_fixed<16,6>', 'ap_ufixed<8,0,AP_RND_CONV,AP_SAT>', 'ap_int<8>' (also without 'ap_')."""
        if isinstance(text, FixedType):
            return text
        m = cls._PATTERN.match(str(text))
        if not m:
            raise TypeParseError(
                f"cannot parse precision {text!r}; write it like 'ap_fixed<16,6>' or 'ap_ufixed<8,0,AP_RND_CONV,AP_SAT>'"
            )
        kind, w, i, rnd, sat = m.groups()
        width = int(w)
        signed = not kind.lstrip("ap_").startswith("u")
        if kind.endswith("int"):
            if i is not None:
                raise TypeParseError(f"cannot parse precision {text!r}; an integer type takes one parameter, e.g. 'ap_int<8>'")
            integer = width
        else:
            if i is None:
                raise TypeParseError(f"cannot parse precision {text!r}; a fixed type needs width and integer bits, e.g. 'ap_fixed<16,6>'")
            integer = int(i)
        return cls(width, integer, signed, rnd or "TRN", sat or "WRAP")

    # ------------------------------------------------------------------ helpers
    def with_modes(self, rounding: str | None = None, saturation: str | None = None) -> "FixedType":
        return FixedType(self.width, self.integer, self.signed, rounding or self.rounding, saturation or self.saturation)

    def plain(self) -> "FixedType":
        """Same format, default (TRN, WRAP) modes."""
        return self.with_modes("TRN", "WRAP")

    def contains(self, other: "FixedType") -> bool:
        """True when every value of ``other`` is exactly representable in ``self``."""
        if other.frac > self.frac:
            return False
        shift = self.frac - other.frac
        return self.raw_min <= (other.raw_min << shift) and (other.raw_max << shift) <= self.raw_max


def exact_type_for_range(raw_lo: int, raw_hi: int, frac: int, force_signed: bool | None = None) -> FixedType:
    """Smallest type with ``frac`` fractional bits that holds every raw integer in [raw_lo, raw_hi]."""
    raw_lo, raw_hi = int(raw_lo), int(raw_hi)
    signed = raw_lo < 0 if force_signed is None else force_signed
    if signed:
        width = 1
        while not (-(1 << (width - 1)) <= raw_lo and raw_hi <= (1 << (width - 1)) - 1):
            width += 1
    else:
        width = max(1, raw_hi.bit_length())
    return FixedType(width, width - frac, signed)


def split_top_level(text: str, brackets: str = "<>") -> list[str]:
    """Split ``text`` at the commas outside brackets (``brackets``: opening and closing characters, e.g. "<>()"):
    'ap_fixed<16,6>,ap_fixed<8,3>' -> ['ap_fixed<16,6>', 'ap_fixed<8,3>']; each piece stripped, no empty last piece."""
    opening, closing = brackets[0::2], brackets[1::2]
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in opening:
            depth += 1
        elif ch in closing:
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out
