"""The estimator's measured error, for the error band every estimate carries.

``accuracy.json`` (next to this file) is written by ``benchmarks/calibrate_estimator.py --loso --accuracy-json``:
per group of calibration records (all, per tool family, per part family, per io type) the median and the 90th
percentile of |estimate - csynth| / csynth, in-sample (constants fitted on every record) and leave-one-source-out
(each source repository predicted by constants fitted without it).  The band of an estimate is the
leave-one-source-out row of its tool family when that group holds at least ``MIN_RECORDS`` records, else of all
records: the error to expect on a model the estimator has not seen.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

__all__ = ["error_band", "BAND_METRICS"]

BAND_METRICS = ("DSP", "LUT", "FF", "BRAM_18K", "latency")
MIN_RECORDS = 5
_FILE = Path(__file__).with_name("accuracy.json")


@lru_cache(maxsize=1)
def _table() -> dict:
    if not _FILE.is_file():
        return {}
    return json.loads(_FILE.read_text()).get("groups", {})


def error_band(tool: str = "vitis", family: str | None = None, io_type: str | None = None) -> dict | None:
    """``{"group", "n", "sources", "DSP": {"median", "p90"}, ...}`` (percent), or None without a table."""
    t = _table()
    for name in (f"tool {tool}", "all"):
        g = t.get(name, {}).get("loso")
        if g and g.get("n", 0) >= MIN_RECORDS:
            out = {"group": name, "n": g["n"], "sources": g["sources"], "II_exact_pct": g.get("II_exact_pct")}
            for m in BAND_METRICS:
                if g.get(m):
                    out[m] = {"median": g[m]["median"], "p90": g[m]["p90"]}
            return out
    return None
