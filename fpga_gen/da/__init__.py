"""Distributed arithmetic (DA): a dense layer's constant matrix-vector product as a shared adder graph.

da4ml (pip install da4ml==0.6.0) solves ``x @ W + b`` for a constant integer-scaled ``W`` and the input's
fixed-point range into a :class:`da4ml.types.CombLogic`: shift-and-add operations, each held exactly, with common
subexpressions shared between the outputs (CSD + CSE), no multipliers.  This package is the only place that
imports it:

* :mod:`.solve`    the solver options (config ``da:``), the traced adder graph of a dense node (cached), da4ml's
                   own interpreter of it (``predict``)
* :mod:`.estimate` the estimator entry of a DA layer from the adder graph's cost
* :mod:`.synth`    Verilog of the adder graph (da4ml's RTL writer) and yosys ``synth_xilinx``, its stat parsed

The HLS handler lives with the others (:mod:`fpga_gen.hls.layers_da`), the template in
``templates/hls/layers/dense_da.j2``.  Semantics (ir/ops.py): a DA layer computes the exact ``x @ W + b``, then one
cast to its result type; its accum type is the exact type, so the emulator's dense kernel computes the same bits.
"""

from .solve import (DA_STRATEGY, DEFAULT_OPTIONS, DaError, check_options, da_predict, normalize_strategy,
                    solve_dense)

__all__ = ["DA_STRATEGY", "DEFAULT_OPTIONS", "DaError", "check_options", "da_predict", "normalize_strategy",
           "solve_dense"]
