"""Run a compiled project: batch prediction through the shared library, or the testbench."""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .build import CsimError, build

__all__ = ["predict", "run_testbench", "TestbenchResult"]

# Below this many samples per thread, splitting a batch costs more than it saves.
MIN_SAMPLES_PER_THREAD = 512

_LIBS: dict[Path, tuple] = {}
_LIBS_LOCK = threading.Lock()


def _library(path: Path):
    """Load (once per process) a compiled library: (handle, input shape, output shape, thread safe)."""
    with _LIBS_LOCK:
        if path not in _LIBS:
            lib = ctypes.CDLL(str(path))
            lib.fpga_gen_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
            lib.fpga_gen_predict.restype = ctypes.c_int
            shapes = []
            for fn in (lib.fpga_gen_input_shape, lib.fpga_gen_output_shape):
                fn.argtypes = [ctypes.c_void_p]
                fn.restype = ctypes.c_long
                dims = (ctypes.c_long * 64)()
                rank = fn(ctypes.addressof(dims))
                shapes.append(tuple(int(dims[i]) for i in range(rank)))
            # one call initialises the kernels' static tables (softmax) before threads share them
            x = np.zeros(int(np.prod(shapes[0], dtype=np.int64)))
            y = np.zeros(int(np.prod(shapes[1], dtype=np.int64)))
            lib.fpga_gen_predict(x.ctypes.data, y.ctypes.data, 1)
            # io_stream kernels keep state in statics: such a library serialises its calls, so one thread
            safe = getattr(lib, "fpga_gen_thread_safe", None)
            if safe is not None:
                safe.restype = ctypes.c_long
            _LIBS[path] = (lib, shapes[0], shapes[1], True if safe is None else bool(safe()))
        return _LIBS[path]


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def predict(project_dir, x, threads: int | None = None, native: bool = False) -> np.ndarray:
    """Run the C++ of the project on every sample of ``x`` (batch, *input shape).

    Returns float64 (batch, *output shape): the exact values of the output type.  The
    batch is split over ``threads`` threads (default: the usable CPUs).  ``native``: the
    native back end's library (integer dense/conv2d/relu/linear kernels, the same bits) instead of the
    HLS code as it stands.
    """
    b = build(project_dir, library=True, testbench=False, native=native)
    lib, in_shape, out_shape, thread_safe = _library(b.library)
    a = np.asarray(x, dtype=np.float64)
    if a.shape == in_shape:
        a = a[None]
    if a.shape[1:] != in_shape:
        raise CsimError(f"{b.project_dir.name}: input shape must be (batch, {', '.join(map(str, in_shape))}), "
                        f"got {a.shape}")
    n = len(a)
    a = np.ascontiguousarray(a.reshape(n, int(np.prod(in_shape, dtype=np.int64))))
    y = np.empty((n, int(np.prod(out_shape, dtype=np.int64))), dtype=np.float64)
    if n == 0:
        return y.reshape((0,) + out_shape)
    k = max(1, min(threads or _threads(), n // MIN_SAMPLES_PER_THREAD)) if thread_safe else 1
    bounds = np.linspace(0, n, k + 1).astype(np.int64)

    def run(i):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        rc = lib.fpga_gen_predict(a[lo:hi].ctypes.data, y[lo:hi].ctypes.data, hi - lo)
        if rc != 0:
            raise CsimError(f"fpga_gen_predict returned {rc}")

    if k == 1:
        run(0)
    else:  # ctypes releases the GIL during the call
        with ThreadPoolExecutor(k) as pool:
            list(pool.map(run, range(k)))
    return y.reshape((n,) + out_shape)


@dataclass(frozen=True)
class TestbenchResult:
    returncode: int           # 0 ok, 1 outputs differ from tb_output_predictions.dat, 2 bad input
    log: Path                 # tb_data/csim_results.log
    outputs: np.ndarray       # parsed log, (samples, N_OUT) float64
    stdout: str
    stderr: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def run_testbench(project_dir, timeout: float | None = None) -> TestbenchResult:
    """Build (cached) and run the project's testbench in the project folder."""
    b = build(project_dir, library=False, testbench=True)
    (b.project_dir / "tb_data").mkdir(exist_ok=True)
    r = subprocess.run([str(b.testbench)], cwd=b.project_dir, capture_output=True, text=True, timeout=timeout)
    log = b.project_dir / "tb_data" / "csim_results.log"
    outputs = np.zeros((0, 0))
    if log.is_file():
        rows = [line.split() for line in log.read_text().splitlines() if line.strip()]
        if rows:
            outputs = np.array([[float(v) for v in row] for row in rows], dtype=np.float64)
    return TestbenchResult(r.returncode, log, outputs, r.stdout, r.stderr)
