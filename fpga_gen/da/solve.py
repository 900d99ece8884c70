"""The adder graph of a dense node: da4ml's CMVM solver over the node's constant kernel and input type.

Options (config ``da:`` globally, ``layers: NAME: da:`` per layer; the defaults are da4ml 0.6's own except
``search_all_decompose_dc``, off here: on the jet MLP's 64x32 layer it solves 5x faster (2 s against 10 s) to the
same cost):

============================  =========  ==============================================================================
option                        default    meaning
============================  =========  ==============================================================================
``method0``                   ``wmc``    first-stage CSE heuristic: ``wmc`` (weighted most common pair), ``mc`` (most
                                         common), their delay-aware forms ``wmc-dc`` / ``mc-dc`` / ``wmc-pdc`` /
                                         ``mc-pdc``, or ``dummy`` (no sharing: plain CSD adder trees)
``method1``                   ``auto``   second-stage heuristic (the same names, ``auto``: chosen from method0)
``hard_dc``                   ``-1``     delay constraint: adder levels allowed above the minimal depth of each output
                                         (``-1``: none; ``0``: minimal depth, more adders)
``decompose_dc``              ``-2``     delay constraint of the kernel decomposition into two stages (``-2``: da4ml
                                         chooses; ``-1``: none)
``search_all_decompose_dc``   ``false``  try every decomposition delay constraint and keep the cheapest
``adder_size``                ``1``      the elementary adder width of da4ml's cost and latency model (LUT6+CARRY
                                         fabric: 1 = cost in bits)
``carry_size``                ``-1``     carry-chain length of the latency model (``-1``: every adder one level)
``latency_cutoff``            ``-1``     RTL only (``--rtl``, ``fpga-gen synth``): a pipeline register every this
                                         many adder levels (``-1``: combinational)
============================  =========  ==============================================================================

The solution is deterministic (same kernel, input type and options give the same operations) and cached in-process
by content hash, so the writer, estimator and synthesis share one solve per layer.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..ir.types import FixedType

__all__ = ["DA_STRATEGY", "DA_ALIASES", "DEFAULT_OPTIONS", "DaError", "check_options", "normalize_strategy",
           "solve_dense", "solve_node", "da_predict", "solver_options", "input_kif"]

DA_STRATEGY = "distributed_arithmetic"
DA_ALIASES = ("da", "distributed_arithmetic")

METHODS = ("wmc", "mc", "wmc-dc", "mc-dc", "wmc-pdc", "mc-pdc", "dummy")
DEFAULT_OPTIONS = {"method0": "wmc", "method1": "auto", "hard_dc": -1, "decompose_dc": -2,
                   "search_all_decompose_dc": False, "adder_size": 1, "carry_size": -1, "latency_cutoff": -1}
_SOLVER_KEYS = ("method0", "method1", "hard_dc", "decompose_dc", "search_all_decompose_dc")

_CACHE: dict = {}


class DaError(ValueError):
    pass


def normalize_strategy(s):
    """'da' and any case of 'distributed_arithmetic' -> 'distributed_arithmetic'; anything else unchanged."""
    if isinstance(s, str) and s.strip().lower() in DA_ALIASES:
        return DA_STRATEGY
    return s


def check_options(opts, where: str) -> dict:
    """Validate a ``da:`` mapping; return it merged over :data:`DEFAULT_OPTIONS`.  Raises DaError naming ``where``."""
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise DaError(f"{where} must be a mapping with keys {', '.join(DEFAULT_OPTIONS)}")
    out = dict(DEFAULT_OPTIONS)
    for k, v in opts.items():
        if k not in DEFAULT_OPTIONS:
            raise DaError(f"{where}: unknown key {k!r}; allowed keys: {', '.join(DEFAULT_OPTIONS)}")
        d = DEFAULT_OPTIONS[k]
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, int):
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, str) and (v in METHODS or (k == "method1" and v == "auto"))
        if not ok:
            allowed = (f"one of {', '.join(METHODS + (('auto',) if k == 'method1' else ()))}"
                       if isinstance(d, str) else type(d).__name__)
            raise DaError(f"{where}.{k} must be {allowed}, got {v!r}")
        out[k] = v
    return out


def input_kif(t: FixedType) -> tuple[int, int, int]:
    """da4ml's (keep_negative, integer bits without the sign, fraction bits) of an ap_fixed type."""
    k = 1 if t.signed else 0
    return k, t.integer - k, t.frac


def solver_options(opts: dict) -> dict:
    return {k: opts[k] for k in _SOLVER_KEYS}


def solve_dense(kernel: np.ndarray, bias: np.ndarray, x: FixedType, opts: dict | None = None, where: str = "layer"):
    """The :class:`da4ml.types.CombLogic` of ``x @ kernel + bias`` for every x of type ``x`` (exact, no casts)."""
    opts = check_options(opts, f"{where}: da")
    kernel = np.ascontiguousarray(kernel, dtype=np.float64)
    bias = np.ascontiguousarray(bias, dtype=np.float64)
    if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
        raise DaError(f"{where}: distributed arithmetic needs a 2-D kernel and one bias per output, got "
                      f"{kernel.shape} and {bias.shape}")
    if not np.array_equal(kernel.astype(np.float32).astype(np.float64), kernel):
        raise DaError(f"{where}: distributed arithmetic needs weights float32 holds exactly (da4ml solves in "
                      f"float32); quantize the kernel to at most 24 significant bits")
    key = hashlib.sha256(b"".join([kernel.tobytes(), str(kernel.shape).encode(), bias.tobytes(),
                                   x.cpp().encode(), json.dumps(opts, sort_keys=True).encode()])).hexdigest()
    if key in _CACHE:
        return _CACHE[key]
    try:
        from da4ml.trace import FixedVariableArray, HWConfig, comb_trace
    except ImportError:
        raise DaError("strategy distributed_arithmetic needs da4ml: pip install da4ml==0.6.0") from None
    n_in = kernel.shape[0]
    k, i, f = input_kif(x)
    hw = HWConfig(opts["adder_size"], opts["carry_size"], -1)
    try:
        xv = FixedVariableArray.from_kif(np.full(n_in, k), np.full(n_in, i), np.full(n_in, f), hwconf=hw,
                                         solver_options=solver_options(opts))
        y = xv @ kernel + bias
        comb = comb_trace(xv, y, keep_dead_inputs=True)
    except Exception as e:   # the solver's own errors, one line naming the layer
        raise DaError(f"{where}: da4ml could not solve its {n_in}x{kernel.shape[1]} kernel: {e}") from None
    _CACHE[key] = comb
    return comb


def solve_node(node, x: FixedType):
    """The adder graph of a dense node (its kernel, bias and ``attrs['da']`` options) for input type ``x``; of a
    conv2d node, the dense kernel of one output pixel ((kh * kw * n_chan, n_filt), patch order (row, column,
    channel))."""
    kernel = np.asarray(node.weights["kernel"])
    return solve_dense(kernel.reshape(-1, kernel.shape[-1]), node.weights["bias"], x, node.attrs.get("da") or {},
                       f"layer {node.name!r}")


def da_predict(comb, x: np.ndarray) -> np.ndarray:
    """da4ml's own C++ interpreter of the adder graph on real-valued inputs (batch, n_in) -> (batch, n_out)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
    return np.asarray(comb.predict(x, n_threads=1), dtype=np.float64).reshape(len(x), -1)
