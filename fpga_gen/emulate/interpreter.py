"""The reference interpreter: runs a graph with exactly the arithmetic of the generated C++."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..ir.fixed import NP, EmulationRangeError, is_narrow, to_float
from ..ir.graph import Graph
from .kernels import KERNELS, NARROW_INPUTS

__all__ = ["Emulator", "EmulationError", "emulate", "reference_predictor"]

MAX_EMULATED_WIDTH = 53


class EmulationError(RuntimeError):
    pass


class Emulator:
    """Walks the graph once per batch; one kernel per op (see :mod:`fpga_gen.emulate.kernels`)."""

    def __init__(self, graph: Graph, xp=NP):
        self.graph = graph
        self.xp = xp
        for node in graph:
            if node.op not in KERNELS:
                raise EmulationError(f"layer {node.name!r}: op {node.op!r} has no emulator kernel")
            for slot, t in node.types.items():
                if t.width > MAX_EMULATED_WIDTH:
                    raise EmulationError(
                        f"layer {node.name!r}: {slot} type {t} is wider than {MAX_EMULATED_WIDTH} bits, "
                        f"which the emulator cannot represent exactly; narrow it in the config")
        # after node k runs, the values no later node reads (and no graph output) can be dropped
        last_use = {}
        for k, node in enumerate(graph):
            for i in node.inputs:
                last_use[i] = k
        self._free_after = [[i for i in dict.fromkeys(node.inputs)
                             if last_use[i] == k and i not in graph.outputs] for k, node in enumerate(graph)]

    def run_raw(self, inputs: list, trace: bool = False) -> dict:
        """Inputs: float arrays (batch, *shape) per graph input.  Returns raw outputs by node name (float64).

        Between the kernels that take them (kernels.NARROW_INPUTS), values may be narrow (float32 raw codes);
        every other kernel, and the caller, gets them as float64 (exact), converted once per value."""
        xp = self.xp
        env = {}
        for name, x in zip(self.graph.inputs, inputs):
            env[name] = xp.asarray(x)
        values = {}
        wide = {}                               # float64 copies of narrow values, for the other kernels
        for k, node in enumerate(self.graph):
            if node.op == "input":
                args = [xp.reshape(env[node.name], (env[node.name].shape[0], -1))]
                arg_types = []
            else:
                args = [values[i] for i in node.inputs]
                if node.op not in NARROW_INPUTS and any(is_narrow(v) for v in args):
                    for i in node.inputs:
                        if is_narrow(values[i]) and i not in wide:
                            wide[i] = xp.asarray(values[i])
                    args = [wide.get(i, values[i]) for i in node.inputs]
                arg_types = [self.graph[i].types["result"] for i in node.inputs]
            try:
                values[node.name] = KERNELS[node.op](node, args, arg_types, xp)
            except EmulationError:
                raise
            except Exception as e:  # re-raise naming the node
                raise EmulationError(f"layer {node.name!r} ({node.op}): {e}") from e
            if not trace:
                for i in self._free_after[k]:
                    values.pop(i, None)
                    wide.pop(i, None)
        return {name: wide[name] if name in wide else xp.asarray(v) if is_narrow(v) else v
                for name, v in values.items()}

    def predict(self, x, trace: bool = False):
        """Float in, float out (float64, exact values of the output types)."""
        xs = x if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self.graph.inputs):
            raise EmulationError(f"the model has {len(self.graph.inputs)} inputs, got {len(xs)} arrays")
        batch = []
        for name, a in zip(self.graph.inputs, xs):
            a = np.asarray(a, dtype=np.float64)
            shape = tuple(self.graph[name].shape)
            if a.shape[1:] != shape:
                if a.shape == shape:
                    a = a[None]
                else:
                    raise EmulationError(
                        f"input {name!r} expects shape (batch, {', '.join(map(str, shape))}), got {a.shape}")
            batch.append(a)
        raw = self._run_chunked(batch, trace)
        names = [n.name for n in self.graph] if trace else self.graph.outputs
        out = {}
        for name in names:
            node = self.graph[name]
            val = np.asarray(self.xp.to_numpy(to_float(raw[name], node.types["result"])))
            out[name] = val.reshape((val.shape[0],) + tuple(node.shape))
        if trace:
            return out
        outs = [out[n] for n in self.graph.outputs]
        return outs[0] if len(outs) == 1 else outs


    def _run_chunked(self, batch: list, trace: bool) -> dict:
        """Numpy batches run in pieces (see _piece_bounds); large ones on every core, the threads taking the next
        piece as they finish one (a core slowed by other work takes fewer): numpy releases the GIL in its
        array loops, and rows are independent, so the result is the same array, bit for bit."""
        n = batch[0].shape[0]
        workers = min(os.cpu_count() or 1, 8)
        if self.xp is not NP:
            return self.run_raw(batch, trace=trace)
        if workers < 2 or n < PARALLEL_MIN_BATCH:
            return self._run_pieces(batch, trace)
        bounds = self._piece_bounds(n, workers)
        parts = [[a[lo:hi] for a in batch] for lo, hi in zip(bounds[:-1], bounds[1:])]
        with _single_threaded_blas():
            results = list(_pool(workers).map(lambda p: self.run_raw(p, trace=trace), parts))
        return _concat_results(results)

    def _piece_bounds(self, n: int, multiple: int = 1) -> np.ndarray:
        """Row bounds of pieces whose widest layer holds about PIECE_VALUES values (at least PIECE_MIN_ROWS
        rows), a multiple of ``multiple`` pieces of equal size: the arrays of a piece stay in the allocator's
        heap and near the core's cache, where one batch-sized array per layer is mapped and zeroed anew by
        the OS on every call (the digits CNN, 512 values per image at its widest: ~2x faster per 10,000
        images in pieces of 512)."""
        widest = max((node.size for node in self.graph), default=1)
        pieces = -(-n // max(PIECE_VALUES // max(widest, 1), PIECE_MIN_ROWS))
        pieces = max(1, min(n, -(-pieces // multiple) * multiple))
        return np.linspace(0, n, pieces + 1).astype(int)

    def _run_pieces(self, batch: list, trace: bool) -> dict:
        """run_raw on the pieces of _piece_bounds, one after the other."""
        bounds = self._piece_bounds(batch[0].shape[0])
        if len(bounds) <= 2:
            return self.run_raw(batch, trace=trace)
        return _concat_results([self.run_raw([a[lo:hi] for a in batch], trace=trace)
                                for lo, hi in zip(bounds[:-1], bounds[1:])])


def _concat_results(results: list) -> dict:
    return {k: np.concatenate([r[k] for r in results]) for k in results[0]}


PARALLEL_MIN_BATCH = 4096
# the numpy emulator runs a batch in pieces of about this many values in its widest layer (at least
# PIECE_MIN_ROWS rows: below that, the per-kernel call overhead dominates)
PIECE_VALUES = 1 << 18
PIECE_MIN_ROWS = 256

_BLAS_LOCK = threading.Lock()
_BLAS_STATE = {"depth": 0, "saved": None}


@functools.lru_cache(maxsize=None)
def _blas_controllers() -> tuple:
    """numpy's BLAS libraries (threadpoolctl, when installed; else none)."""
    try:
        from threadpoolctl import ThreadpoolController  # lazy: optional; pins BLAS threads in threaded runs
    except ImportError:
        return ()
    try:
        return tuple(c for c in ThreadpoolController().lib_controllers if c.user_api == "blas")
    except Exception:  # noqa: BLE001 - an odd BLAS build: leave its threads alone
        return ()


@contextlib.contextmanager
def _single_threaded_blas():
    """One BLAS thread per chunk while the chunks run side by side: the chunks already use every core, and
    a multi-threaded OpenBLAS under that (or any other) load spins its threads and runs 10-20x slower
    (measured on 2 shared cores: 5 ms -> 80-190 ms per 10,000 rows).  Matrix products of integers below
    2**53 are exact in any summation order, so the bits do not depend on the thread count."""
    ctls = _blas_controllers()
    if not ctls:
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_STATE["depth"] == 0:
            _BLAS_STATE["saved"] = [c.get_num_threads() for c in ctls]
            for c in ctls:
                c.set_num_threads(1)
        _BLAS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["depth"] -= 1
            if _BLAS_STATE["depth"] == 0:
                for c, k in zip(ctls, _BLAS_STATE["saved"]):
                    c.set_num_threads(k)


@functools.lru_cache(maxsize=None)
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="fpga-gen-emu")


def emulate(graph: Graph, x, trace: bool = False):
    return Emulator(graph).predict(x, trace=trace)


def reference_predictor(graph: Graph):
    """``x -> outputs`` of ``graph`` for a testbench's expected values, or a string saying why the emulator cannot
    run it (the board packaging's stream testbench then only checks that every sample comes back)."""
    def predict(x):
        try:
            return Emulator(graph).predict(x)
        except (EmulationError, EmulationRangeError, NotImplementedError) as e:
            return str(e)
    return predict
