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
activation   Element-wise.  attrs: activation ('linear'|'relu').  types: result.
             'linear' is a cast to the result type; 'relu' is max(x, 0) cast to result.
softmax      Table-based softmax over the last axis (nnet::softmax_stable).
             attrs: implementation ('stable'), exp_table_size, inv_table_size.
             types: result, inp_norm, exp_table, inv_table, accum, inv_inp.
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
quant_act    Element-wise QKeras activation quantizer (fpga_gen::quant_act_* in fpga_gen_quant.h).
             types: result.  attrs: function and its parameters:
             'round': v = x * 2**-shift + offset, exact (ir.quant.affine_type), cast to result
               (AP_RND_CONV, AP_SAT), then clamped to [lo, hi] where given (quantized_sigmoid).
             'leaky' (quantized_relu with negative_slope 2**-shift, bits, integer): x > 0 -> x cast to
               ap_ufixed<bits-1, integer, RND_CONV, SAT>; else s*x (exact) rounded half to even to the
               step 2**(integer-bits+1), and neg_min (= -s * 2**integer) where that is smaller.
             'step' (binary, ternary, binary_tanh): x >= threshold (x > threshold when not inclusive)
               -> hi; with mid given, x <= -threshold (<) -> lo, else mid; without it, else lo.
             'table' (fn 'tanh'|'sigmoid' with the real function, 'po2', 'relu_po2'): weights thresholds
               (ascending, on the input's grid) and levels (one more, in result):
               levels[number of thresholds <= x]; built by passes/quant_table.py from the function
               evaluated in float64 on every value of the input type.
apply_scale  y = x * scale[c] + bias[c], c the channel (last axis), as nnet::normalize: the product and
             sum held exactly, cast to result.  weights: scale, bias (n_chan,).  types: scale, bias, result.
             QKeras' per-channel alpha ('auto_po2': powers of two; 'auto': float32 values, held
             exactly), split off the dense/conv weights, whose bias moves here.
float_activation
             Element-wise float function, CPU/GPU fallback only (hls=False: no HLS template; a
             model holding one is split before it, see :meth:`Graph.split`).  attrs: function
             ('sigmoid'|'tanh').  types: result (default: default_precision with RND_CONV, SAT).
             The function is computed in float64 on the exact input value and the float cast
             to result (round to nearest, ties to even; saturate).

OpDef.hls is False for ops the HLS writer cannot generate: they run on the fallback only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OpDef", "OPS", "op_def", "FLOAT_FUNCTIONS"]


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
_register(OpDef("activation", attrs={"activation": (str, REQUIRED)}))
_register(OpDef(
    "softmax",
    attrs={"implementation": (str, "stable"), "exp_table_size": (int, 1024), "inv_table_size": (int, 1024)},
    type_slots=("result", "inp_norm", "exp_table", "inv_table", "accum", "inv_inp"),
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
_register(OpDef("quant_act", attrs={"function": (str, REQUIRED)}))
_register(OpDef("apply_scale", weights=("scale", "bias"), type_slots=("result", "scale", "bias")))
_register(OpDef("float_activation", attrs={"function": (str, REQUIRED)}, hls=False))

FLOAT_FUNCTIONS = ("sigmoid", "tanh")


def op_def(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None
