"""PyTorch array namespace for the emulator: the same kernels, run on a GPU (or on the CPU).

``Emulator(graph, xp=TorchOps())`` runs every kernel of :mod:`fpga_gen.emulate.kernels`
unchanged: this class offers exactly the names :class:`~fpga_gen.ir.fixed.NumpyOps`
offers, each with numpy's semantics.  Raw fixed-point integers are carried in float64
tensors, exact while every value and partial sum stays below 2**53 (the dense kernel checks
that bound from the types), so the results are bit-identical to the numpy emulator on any
device.  The two points where the libraries differ by default are pinned here:

* ``rint`` rounds half to even (``torch.round``, as ``np.rint``);
* ``mod`` takes the sign of the divisor (``torch.remainder``, as ``np.mod`` on floats), and a
  zero result is a zero of the divisor's sign, as in numpy (so even the signs of zeros agree).

PyTorch is an optional extra: ``pip install 'fpga-gen[gpu]'``.
"""

from __future__ import annotations

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - exercised only where torch is absent
    torch = None

__all__ = ["TorchOps", "torch_available", "default_device", "MISSING_TORCH"]

MISSING_TORCH = "backend 'gpu' needs PyTorch: pip install 'fpga-gen[gpu]'"


def torch_available() -> bool:
    return torch is not None


def default_device() -> str:
    """CUDA when a GPU is visible, else the CPU."""
    if torch is None:
        raise ImportError(MISSING_TORCH)
    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchOps:
    """The handful of array operations the fixed-point kernels need, on PyTorch float64 tensors."""

    name = "torch"

    def __init__(self, device=None):
        if torch is None:
            raise ImportError(MISSING_TORCH)
        self.device = torch.device(device if device is not None else default_device())
        self._tables: dict = {}          # id(numpy table) -> (table, tensor): lookup tables moved once

    def __repr__(self) -> str:
        return f"TorchOps(device={str(self.device)!r})"

    # float32 products are left to float64 here: a CUDA (or oneDNN) float32 matmul may run in TF32/bf16
    # when the user allows it (torch.set_float32_matmul_precision), which would not be exact
    exact_float32 = False

    # ------------------------------------------------------------------ conversion
    def float32(self, x):
        """x as a float32 tensor (exact only for values with at most 24 significant bits: the caller checks)."""
        return self._t(x).to(torch.float32)

    def asarray(self, x):
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=torch.float64)
        return torch.as_tensor(np.asarray(x, dtype=np.float64), device=self.device)

    @staticmethod
    def to_numpy(x):
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def _t(self, x):
        """A scalar or array operand as a tensor (tensors pass through untouched)."""
        return x if isinstance(x, torch.Tensor) else self.asarray(x)

    # ------------------------------------------------------------------ element-wise
    floor = staticmethod(torch.floor)
    ceil = staticmethod(torch.ceil)
    trunc = staticmethod(torch.trunc)
    rint = staticmethod(torch.round)    # half to even, as np.rint
    abs = staticmethod(torch.abs)

    def where(self, cond, x, y):
        return torch.where(self._t(cond).bool(), x if isinstance(x, (float, int)) else self._t(x),
                           y if isinstance(y, (float, int)) else self._t(y))

    def maximum(self, a, b):
        return torch.maximum(self._t(a), self._t(b))

    def minimum(self, a, b):
        return torch.minimum(self._t(a), self._t(b))

    isfinite = staticmethod(torch.isfinite)
    isnan = staticmethod(torch.isnan)
    signbit = staticmethod(torch.signbit)

    @staticmethod
    def clip(x, lo, hi, out=None):
        return torch.clamp(x, lo, hi) if out is None else torch.clamp(x, lo, hi, out=out)

    @staticmethod
    def mod(x, m):
        """np.mod on floats: the sign of the divisor, and a zero result is a zero of the divisor's sign."""
        r = torch.remainder(x, m)
        if isinstance(m, (int, float)) and m > 0:
            return r + 0.0               # -0.0 + 0.0 == +0.0; every other value is unchanged
        m = m if isinstance(m, torch.Tensor) else torch.as_tensor(m, dtype=r.dtype, device=r.device)
        return torch.where(r == 0, torch.copysign(torch.zeros_like(r), m), r)

    @staticmethod
    def zeros_like(x):
        return torch.zeros_like(x)

    # ------------------------------------------------------------------ reductions and shapes
    @staticmethod
    def matmul(a, b):
        return torch.matmul(a, b)

    @staticmethod
    def max(x, axis):
        return torch.amax(x, dim=axis, keepdim=True)

    @staticmethod
    def sum(x, axis):
        return torch.sum(x, dim=axis)

    def take(self, table, idx):
        """``table[idx]``: ``table`` is usually a cached numpy lookup table, moved to the device once."""
        if isinstance(table, torch.Tensor):
            t = table.to(self.device, torch.float64)
        else:
            hit = self._tables.get(id(table))
            if hit is None or hit[0] is not table:
                if len(self._tables) >= 256:       # softmax tables are few; never grow without bound
                    self._tables.clear()
                hit = (table, self.asarray(table))
                self._tables[id(table)] = hit      # keeps ``table`` alive, so its id stays unique
            t = hit[1]
        return t[idx.long()]

    def take_columns(self, x, idx):
        """``x[:, idx]`` of 2-D x for a 1-D integer index (contiguous)."""
        key = ("cols", id(idx))
        hit = self._tables.get(key)
        if hit is None or hit[0] is not idx:
            if len(self._tables) >= 256:
                self._tables.clear()
            hit = (idx, torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device))
            self._tables[key] = hit              # keeps ``idx`` alive, so its id stays unique
        return torch.index_select(x, 1, hit[1])

    @staticmethod
    def reshape(x, shape):
        return torch.reshape(x, shape)

    @staticmethod
    def concat(arrays, axis=0):
        return torch.cat(list(arrays), dim=axis)
