"""Part strings -> family (which DSP slice, which timing) and device resources."""

from __future__ import annotations

import re
from functools import lru_cache

from .constants import DEVICE_RESOURCES, DSP_PORTS, FAMILY

__all__ = ["part_family", "dsp_ports", "device_resources", "normalize_part"]


def normalize_part(part: str) -> str:
    """'XCU250-FIGD2104-2L-E' -> 'xcu250-figd2104-2l-e'; 'xc7z020clg400-1' stays as it is (lower case)."""
    return str(part).strip().lower()


@lru_cache(maxsize=256)
def part_family(part: str) -> str:
    """'7series', 'ultrascale', 'ultrascale+' or 'versal' for a Xilinx/AMD part string.

    >>> part_family('xc7z020clg400-1'), part_family('xczu5ev-sfvc784-2LV-e'), part_family('xcku15p-ffve1517-1-i')
    ('7series', 'ultrascale+', 'ultrascale+')
    """
    p = normalize_part(part)
    for prefix, fam in FAMILY:
        if p.startswith(prefix):
            if fam == "ultrascale" and re.match(r"^xc(ku|vu)\d+p", p):
                return "ultrascale+"
            return fam
    raise ValueError(f"unknown part {part!r}: expected a Xilinx/AMD part such as xc7z020clg400-1, "
                     f"xczu3eg-sbva484-1-e or xcu250-figd2104-2L-e")


def dsp_ports(family: str) -> tuple[int, int]:
    return DSP_PORTS[family]


def device_resources(part: str) -> dict | None:
    """Whole-device resources for known devices (None when the device is not in the table)."""
    r = _device_resources(part)
    return dict(r) if r else None


@lru_cache(maxsize=256)
def _device_resources(part: str) -> dict | None:
    p = normalize_part(part)
    best = None
    for dev, res in DEVICE_RESOURCES.items():
        if p.startswith(dev) and (best is None or len(dev) > len(best)):
            best = dev
    return dict(DEVICE_RESOURCES[best]) if best else None
