"""Every op of the layer graph, documented in one place.

Each :class:`OpDef` names the op's attributes (with their Python type and default), the
weights it carries and the fixed-point type slots it uses.  The frontend creates nodes
with these ops, passes fill the types, and the emulator, HLS writer and estimators each
walk the graph with one handler per op.

Ops
---
input        A model input.  types: result.  shape: the input shape.
dense        y = x @ kernel + bias.  attrs: n_in, n_out, strategy ('latency'|'resource'),
             reuse_factor.  weights: kernel (n_in, n_out), bias (n_out,).
             types: weight, bias, accum, result.  Each product is cast to accum, summed
             with the bias (cast to accum), then the sum is cast to result.
activation   Element-wise, one nnet_activation.h kernel per kind (attrs: activation, table_size,
             param, max_int, slope, shift; weights: alpha for prelu; types: result, table, param,
             slope, shift).  Every result is the exact value cast to result (its rounding/overflow).
             'linear': x.  'relu': x > 0 ? x : 0.  'relu_max' (relu6/relu1 and ReLU(max_value)):
             x < 0 ? 0 : x > max_int ? max_int : x.  'leaky_relu': x > 0 ? x : param * x.
             'thresholded_relu': x > param ? x : 0.  'prelu': x > 0 ? x : alpha[i] * x (param type).
             param is the float attr cast to the param type (exact literal).
             'hard_sigmoid' / 'hard_tanh': s = slope * x + shift (exact), clipped to [0, 1];
             hard_tanh gives 2 * s - 1 (slope, shift: the attrs in their types).
             Table functions (table_size entries of type table): 'sigmoid', 'softplus',
             'softsign' over [-8, 8), 'tanh' over [-4, 4): index = int(x * N / 16) + N/2 (N / 8 for
             tanh; int() truncates towards zero, 32-bit wrap), clamped to [0, N-1]; table[i] =
             f(float(16.0 * (i - N / 2.0) / N)) in C float maths (expf, tanhf, ...) cast to table.
             'elu': x >= 0 ? x : param * table[min(int(x * N / -8), N-1)], table[i] = expf(float(-8.0
             * i / N)) - 1.  See fpga_gen/emulate/kernels_activation.py for the exact float steps.
softmax      Table-based softmax over the last axis (nnet::softmax).  attrs: implementation
             ('stable'|'latency'|'legacy'|'argmax'), exp_table_size, inv_table_size.
             types: result, inp_norm, exp_table, inv_table, accum, inv_inp (stable/latency);
             table (legacy).  stable: exp(-(max - x)) from the top bits of inp_norm; latency:
             exp(x) from the top bits of x itself; legacy: exp(x_j - x_i) summed per output in
             table, then 1/sum from a table over [0, 64); argmax: 1 at the first maximum, else 0.
conv2d       2-D convolution, channels_last (nnet::conv_2d_cl).  The input is the flat
             (in_height, in_width, n_chan) array; the output the flat (out_height, out_width,
             n_filt) array.  attrs: in_height, in_width, n_chan, n_filt, kernel_size (kh, kw),
             strides (sh, sw), padding ('valid'|'same'), pads (top, bottom, left, right),
             strategy, reuse_factor.  weights: kernel (kh, kw, n_chan, n_filt), bias (n_filt,).
             types: weight, bias, accum, result.  Per output pixel it is a dense layer over the
             zero-padded (kh, kw, n_chan) patch: products cast to accum, added to the bias (cast
             to accum) in patch order, the sum cast to result.
pooling      2-D max/average pooling, channels_last (nnet::pooling2d_cl).  attrs: mode
             ('max'|'average'), in_height, in_width, n_chan, pool_size (ph, pw), strides,
             padding, pads.  types: accum, result.  max: the largest input of the window
             (padded cells never win), cast to accum then to result.  average: the window's
             inputs summed in accum (padded cells are 0), the sum divided by the number of
             cells inside the image, truncating towards zero in accum, cast to result.
float_activation
             Element-wise float function, CPU/GPU fallback only (hls=False: no HLS template; a
             model holding one is split before it, see :meth:`Graph.split`).  attrs: function
             ('selu'|'swish'|'gelu'|'exponential'|...: FLOAT_FUNCTIONS).  types: result (default: default_precision with RND_CONV, SAT).
             The function is computed in float64 on the exact input value and the float cast
             to result (round to nearest, ties to even; saturate).

OpDef.hls is False for ops the HLS writer cannot generate: they run on the fallback only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OpDef", "OPS", "op_def", "FLOAT_FUNCTIONS", "TABLE_ACTIVATIONS", "SOFTMAX_IMPLEMENTATIONS"]


@dataclass(frozen=True)
class OpDef:
    name: str
    attrs: dict = field(default_factory=dict)          # attr -> (python type, default or REQUIRED)
    weights: tuple[str, ...] = ()
    type_slots: tuple[str, ...] = ("result",)
    parallel_only: bool = False
    hls: bool = True                                   # False: emulator/fallback only, no HLS template


REQUIRED = object()

OPS: dict[str, OpDef] = {}


def _register(op: OpDef) -> OpDef:
    OPS[op.name] = op
    return op


_register(OpDef("input"))
_register(OpDef(
    "dense",
    attrs={"n_in": (int, REQUIRED), "n_out": (int, REQUIRED), "strategy": (str, "latency"),
           "reuse_factor": (int, 1)},
    weights=("kernel", "bias"),
    type_slots=("result", "weight", "bias", "accum"),
))
_register(OpDef("activation", attrs={"activation": (str, REQUIRED), "table_size": (int, 1024)},
                weights=("alpha",), type_slots=("result", "table", "param", "slope", "shift")))
_register(OpDef(
    "softmax",
    attrs={"implementation": (str, "stable"), "exp_table_size": (int, 1024), "inv_table_size": (int, 1024)},
    type_slots=("result", "inp_norm", "exp_table", "inv_table", "accum", "inv_inp", "table"),
))

_SPATIAL = {"in_height": (int, REQUIRED), "in_width": (int, REQUIRED), "n_chan": (int, REQUIRED),
            "strides": (tuple, (1, 1)), "padding": (str, "valid"), "pads": (tuple, (0, 0, 0, 0))}
_register(OpDef(
    "conv2d",
    attrs={**_SPATIAL, "n_filt": (int, REQUIRED), "kernel_size": (tuple, REQUIRED), "strategy": (str, "latency"),
           "reuse_factor": (int, 1)},
    weights=("kernel", "bias"),
    type_slots=("result", "weight", "bias", "accum"),
))
_register(OpDef(
    "pooling",
    attrs={**_SPATIAL, "mode": (str, REQUIRED), "pool_size": (tuple, REQUIRED)},
    type_slots=("result", "accum"),
))
_register(OpDef("float_activation", attrs={"function": (str, REQUIRED)}, hls=False))

# functions with no nnet_activation kernel: computed in float on the CPU/GPU fallback
FLOAT_FUNCTIONS = ("selu", "swish", "gelu", "exponential", "mish")
# activation kinds computed from a lookup table (table_size entries of the 'table' type)
TABLE_ACTIVATIONS = ("sigmoid", "tanh", "softplus", "softsign", "elu")
SOFTMAX_IMPLEMENTATIONS = ("stable", "latency", "legacy", "argmax")


def op_def(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None
