"""Bit-exact kernel of batchnorm (nnet::normalize), registered into :data:`KERNELS`.  Arrays are flat
channels_last (see :mod:`fpga_gen.ir.spatial`)."""

from __future__ import annotations

import numpy as np

from ..ir.fixed import EXACT_LIMIT, EmulationRangeError, cast
from ..ir.graph import Node
from ..ir.types import FixedType
from .kernels import kernel, weight_raw

__all__ = []


@kernel("batchnorm")
def batchnorm_kernel(node: Node, inputs, in_types, xp):
    """res = (res_T) (x * scale[c] + bias[c]): the product and the sum in full precision, one cast."""
    (x,) = inputs
    (xt,) = in_types
    st, bt, rt = (node.types[k] for k in ("scale", "bias", "result"))
    plan = node.meta.get("_emu_bn")
    if plan is None or plan[0] is not xp:
        n = x.shape[1]
        reps = n // int(node.attrs["n_filt"])
        s = np.tile(weight_raw(node.weights["scale"], st), reps)
        b = np.tile(weight_raw(node.weights["bias"], bt), reps)
        frac = max(xt.frac + st.frac, bt.frac)
        s = s * 2.0 ** (frac - xt.frac - st.frac)
        b = b * 2.0 ** (frac - bt.frac)
        x_abs = max(abs(xt.raw_min), abs(xt.raw_max))
        bound = x_abs * float(np.abs(s).max(initial=0.0)) + float(np.abs(b).max(initial=0.0))
        if bound >= EXACT_LIMIT:
            raise EmulationRangeError(f"x * scale + bias of {xt}, {st} and {bt} can reach 2**{int(np.log2(bound))}; "
                                      f"the emulator is exact below 2**53: narrow the input or scale precision")
        width = max(int(np.ceil(np.log2(bound + 1))) + 1, 2)
        sum_t = FixedType(width, width - frac, True)          # the exact ap_fixed sum type, wide enough
        plan = (xp, xp.asarray(s), xp.asarray(b), sum_t)
        node.meta["_emu_bn"] = plan
    _, s, b, sum_t = plan
    return cast(x * s + b, sum_t, rt, xp)
