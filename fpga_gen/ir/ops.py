"""Every op of the layer graph, documented in one place.

Each :class:`OpDef` names the op's attributes (with their Python type and default), the
weights it carries and the fixed-point type slots it uses.  The frontend creates nodes
with these ops, passes fill the types, and the emulator, HLS writer and estimators each
walk the graph with one handler per op.

Ops
---
input        A model input.  types: result.  shape: the input shape.
dense        y = x @ kernel + bias.  attrs: n_in, n_out, strategy ('latency'|'resource'),
             reuse_factor, mult_impl ('dsp'|'lut': the products bound to DSP slices or LUTs by
             a BIND_OP pragma; absent: the tool decides; the arithmetic is the same).
             weights: kernel (n_in, n_out), bias (n_out,).
             types: weight, bias, accum, result.  Each product is cast to accum, summed
             with the bias (cast to accum), then the sum is cast to result.
             strategy 'distributed_arithmetic' (fpga_gen/da): reuse factor 1 (io_parallel or stream); the exact
             x @ kernel + bias (accum is the exact type, fixed by passes/distributed_arithmetic.py) computed
             by da4ml's shift-and-add graph, then cast to result.  attrs: da (the da4ml solver options,
             fpga_gen.da.solve.DEFAULT_OPTIONS merged with the config's).
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
             strategy, reuse_factor, mult_impl (as dense).  weights: kernel (kh, kw, n_chan, n_filt),
             bias (n_filt,).
             types: weight, bias, accum, result.  Per output pixel it is a dense layer over the
             zero-padded (kh, kw, n_chan) patch: products cast to accum, added to the bias (cast
             to accum) in patch order, the sum cast to result.  strategy 'distributed_arithmetic': as
             dense's, the adder graph of the (kh * kw * n_chan, n_filt) kernel on every patch; attrs: da.
pooling      2-D max/average pooling, channels_last (nnet::pooling2d_cl).  attrs: mode
             ('max'|'average'), in_height, in_width, n_chan, pool_size (ph, pw), strides,
             padding, pads.  types: accum, result.  max: the largest input of the window
             (padded cells never win), cast to accum then to result.  average: the window's
             inputs summed in accum (padded cells are 0), the sum divided by the number of
             cells inside the image, truncating towards zero in accum, cast to result.
             1-D layers are these 2-D ops with in_height 1 (Conv1D: kernel (1, kw), strides
             (1, sw), pads (0, 0, left, right); MaxPooling1D/AveragePooling1D likewise) and keep
             Keras' (width, channels) node shape: nnet's conv_1d_latency_cl / conv_1d_resource_cl
             and pooling1d_cl are the same loops as the 2-D kernels with one row (same products,
             same addition order, same casts), so the 2-D kernels compute the same bits and the
             same hardware, and every conv2d pass (reuse factors, safe casts, HLS limits, sweeps,
             estimates) applies unchanged (hls4ml's one other 1-D path, BatchedDenseForConv1D for
             a 1-wide latency kernel computed in one partition, is not used: the 2-D kernel runs
             it pixel by pixel).  Global pooling (GlobalMax/AveragePooling1D/2D) is
             pooling with one window over the whole input (pool_size = strides = (in_height,
             in_width), 'valid'), node shape (n_chan,) or Keras' keepdims shape; the HLS writes
             nnet::global_pooling2d_cl for it, whose pool_op over the in_height * in_width
             cells is pooling2d_cl's over that one window (average: divided by
             in_height * in_width).
zeropad      Zero padding, channels_last (nnet::zeropad2d_cl; zeropad1d_cl for a 1-D layer).
             attrs: in_height (1 for 1-D), in_width, n_chan, pads (top, bottom, left, right).
             types: result.  Every input cast to result (``(res_T) data``), padded cells 0.
cropping     Cropping, channels_last (nnet::cropping2d_cl; cropping1d_cl for 1-D).  attrs:
             in_height (1 for 1-D), in_width, n_chan, crops (top, bottom, left, right).
             types: result.  The kept inputs cast to result.
upsampling   Nearest-neighbour upsampling (nnet::resize_nearest; UpSampling1D/2D).  attrs:
             in_height (1 for 1-D), in_width, n_chan, size (height factor, width factor).
             types: result, which is the input type (resize_nearest writes into an array of
             its input type: a copy, no cast).  Output pixel (i, j) copies input pixel
             ((i * ry) >> 16, (j * rx) >> 16) with ry = (in_height << 16) / out_height + 1 in
             int arithmetic (rx likewise), which is Keras' (i // size) at the sizes the
             frontend accepts (it checks).
transpose    Permute (nnet::transpose).  attrs: in_shape (the Keras input shape, without the
             batch), perm (0-based over those axes).  types: result.  out = transpose(in,
             perm) in C order, each value cast to result.
depthwise_conv2d
             Depthwise 2-D convolution, depth multiplier 1, channels_last
             (nnet::depthwise_conv_2d_cl, latency).  attrs: as conv2d, with n_filt == n_chan,
             strategy always 'latency' and the model's reuse_factor (the II only); mult_impl as dense.
             weights: kernel (kh, kw, n_chan), bias (n_chan,).  types: weight, bias, accum, result.
             Per output pixel and channel c: the bias cast to accum, then for every window cell
             in (row, column) order ``acc += (accum) (x * w)`` (each product cast to accum, each
             partial sum cast back to accum), the sum cast to result.  Padded cells are 0.
             DepthwiseConv1D / the depthwise half of SeparableConv1D: in_height 1, kernel
             (1, kw, n_chan), strides (1, sw), pads (0, 0, left, right), node shape
             (width, n_chan), as Conv1D is conv2d (the HLS writes depthwise_conv_2d_cl with
             one row; the loops are nnet's 1-D kernel's).
batchnorm    y = x * scale + bias, per channel (the last axis; a 1-D input has one scale per
             element), nnet::normalize.  attrs: n_filt (channels), reuse_factor (the model's: the
             II, no effect on the arithmetic).  weights: scale (n_filt,),
             bias (n_filt,).  types: scale, bias, result.  The product x * scale is full
             precision (ap_fixed's operator*), the bias is added in full precision, and only
             that exact sum is cast to result (one rounding, one overflow).
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
             'multithreshold' (QONNX Quant with a float scale, FINN's MultiThreshold): attrs lo (int), n_chan;
               weights thresholds (n_chan, n_thr), each row ascending (type: the smallest holding them all,
               ir.quant.multithreshold_type; compared with x exactly); the result is the integer lo + the
               number of thresholds of the value's channel (flat index % n_chan) <= x.  Built
               by the QONNX frontend (fpga_gen/frontend/qonnx/requant.py), result type set there.
apply_scale  y = x * scale[c] + bias[c], c the channel (last axis), as nnet::normalize: the product and
             sum held exactly, cast to result.  weights: scale, bias (n_chan,).  types: scale, bias, result.
             QKeras' per-channel alpha ('auto_po2': powers of two; 'auto': float32 values, held
             exactly), split off the dense/conv weights, whose bias moves here.
fixed_quant  Element-wise fixed-point quantizer with its own grid per element (HGQ2's heterogeneous
             quantizers; fpga_gen::fixed_quant in fpga_gen_quant.h).  attrs: rounding (one of
             ROUNDING_MODES), overflow ('WRAP'|'SAT'|'SAT_SYM').  weights: k, i, f (one integer per element
             of the flat tensor: keep_negative, integer bits without the sign, fraction bits).  types:
             result (a type holding every element's grid exactly; the frontend sets it).  Element j is the
             exact input cast to ap_fixed<k+i+f, k+i, rounding, overflow> (ap_ufixed<i+f, i, ...> when
             k = 0; SAT_SYM clips to [-k (2**i - 2**-f), 2**i - 2**-f]), then held in result; 0 where
             k + i + f <= 0.
hgq_softmax  HGQ2's QSoftmax (stable), over the last axis of a 1-D tensor (fpga_gen::hgq_softmax in
             fpga_gen_quant.h).  weights: exp_table (one level per code of exp_in, in exp_out), inv_table (one
             per code of inv_in, in inv_out).  types: exp_in, exp_out, sum, inv_in, inv_out, result.
             d = max(x) - x (exact); e = exp_table[(exp_in) d - exp_in.min code]; s = sum of e (exact in sum);
             v = inv_table[(inv_in) s - inv_in.min code]; result = e * v (exact).  The casts are ap_fixed
             casts with the types' own rounding/overflow modes; the frontend fills the tables.
lut          Element-wise lookup table over every code of the input type (HGQ2's QUnaryFunctionLUT;
             fpga_gen::lut in fpga_gen_quant.h).  attrs: in_type (the FixedType the table is built over: the
             input's type).  weights: table (2**w entries for a w-bit in_type, the most negative code first;
             exact in result).  types: result.  y = table[code of x - min code].
float_activation
             Element-wise float function, CPU/GPU fallback only (hls=False: no HLS template; a
             model holding one is split before it, see :meth:`Graph.split`).  attrs: function
             ('selu'|'swish'|'gelu'|'exponential'|...: FLOAT_FUNCTIONS).  types: result (default: default_precision with RND_CONV, SAT).
             The function is computed in float64 on the exact input value and the float cast
             to result (round to nearest, ties to even; saturate).

merge        Element-wise merge of two tensors of one shape (nnet_merge.h, io_parallel).  inputs: 2.
             attrs: mode ('add'|'subtract'|'multiply'|'average'|'maximum'|'minimum').  types: result.
             add/subtract/multiply: the exact ap_fixed sum, difference or product of the two inputs,
             cast to result.  average: the exact sum times ap_ufixed<1,0>(0.5) (one more fraction
             bit, still exact), cast to result.  maximum/minimum: each input cast to result on its
             own (static_cast<res_T>), the first one taken when it is strictly greater (smaller),
             else the second.  A Keras merge of n > 2 inputs is a chain of n - 1 binary nodes, left
             to right ((x0 + x1) + x2) + ...; average of n = 2**k inputs a balanced tree of pairwise
             averages (exact types make both exactly Keras' sum / n).
concatenate  Two tensors joined along one axis (nnet::concatenate{1,2,3}d).  inputs: 2.  attrs: axis
             (0-based over the dimensions without the batch), shape1, shape2 (the inputs' shapes: a
             Flatten before a merge changes a shape but not its flat array).  types: result.  Each
             value is cast to result.  n > 2 inputs: a left-to-right chain along the same axis.
Flatten and Reshape have no op: the io_parallel array is flat in C order, so they relabel it (the
layers after them take their input shape from Keras); a model that ends in one ends in a linear
activation carrying Keras' output shape.

OpDef.hls is False for ops the HLS writer cannot generate: they run on the fallback only.
OpDef.n_inputs is the number of graph inputs a node of the op reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OpDef", "OPS", "op_def", "REQUIRED", "OPTIONAL", "FLOAT_FUNCTIONS", "MERGE_MODES", "TABLE_ACTIVATIONS", "SOFTMAX_IMPLEMENTATIONS",
           "ACTIVATION_KINDS"]


@dataclass(frozen=True)
class OpDef:
    name: str
    attrs: dict = field(default_factory=dict)          # attr -> (python type, default, REQUIRED or OPTIONAL)
    weights: tuple[str, ...] = ()
    type_slots: tuple[str, ...] = ("result",)
    parallel_only: bool = False
    hls: bool = True                                   # False: emulator/fallback only, no HLS template
    n_inputs: int = 1                                  # graph inputs a node reads (input: 0, merges: 2)


REQUIRED = object()
OPTIONAL = None                                         # set by some frontends or passes only; no default

OPS: dict[str, OpDef] = {}


def _register(op: OpDef) -> OpDef:
    OPS[op.name] = op
    return op


_register(OpDef("input", n_inputs=0))
_register(OpDef(
    "dense",
    attrs={"n_in": (int, REQUIRED), "n_out": (int, REQUIRED), "strategy": (str, "latency"),
           "reuse_factor": (int, 1), "mult_impl": (str, "auto"), "da": (dict, {})},
    weights=("kernel", "bias"),
    type_slots=("result", "weight", "bias", "accum"),
))
_register(OpDef("activation", attrs={"activation": (str, REQUIRED), "table_size": (int, 1024),
                                     "param": (float, OPTIONAL), "max_int": (int, OPTIONAL),
                                     "slope": (float, OPTIONAL), "shift": (float, OPTIONAL)},
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
           "reuse_factor": (int, 1), "mult_impl": (str, "auto"), "da": (dict, {})},
    weights=("kernel", "bias"),
    type_slots=("result", "weight", "bias", "accum"),
))
_register(OpDef(
    "pooling",
    attrs={**_SPATIAL, "mode": (str, REQUIRED), "pool_size": (tuple, REQUIRED)},
    type_slots=("result", "accum"),
))
_MOVE = {"in_height": (int, REQUIRED), "in_width": (int, REQUIRED), "n_chan": (int, REQUIRED)}
_register(OpDef("zeropad", attrs={**_MOVE, "pads": (tuple, REQUIRED)}))
_register(OpDef("cropping", attrs={**_MOVE, "crops": (tuple, REQUIRED)}))
_register(OpDef("upsampling", attrs={**_MOVE, "size": (tuple, REQUIRED)}))
_register(OpDef("transpose", attrs={"in_shape": (tuple, REQUIRED), "perm": (tuple, REQUIRED)}))
_register(OpDef(
    "depthwise_conv2d",
    attrs={**_SPATIAL, "n_filt": (int, REQUIRED), "kernel_size": (tuple, REQUIRED), "strategy": (str, "latency"),
           "reuse_factor": (int, 1), "mult_impl": (str, "auto")},
    weights=("kernel", "bias"),
    type_slots=("result", "weight", "bias", "accum"),
))
_register(OpDef(
    "batchnorm",
    attrs={"n_filt": (int, REQUIRED), "reuse_factor": (int, 1)},
    weights=("scale", "bias"),
    type_slots=("result", "scale", "bias"),
))
_register(OpDef("quant_act", attrs={
    "function": (str, REQUIRED),                        # 'round' | 'leaky' | 'step' | 'table', and their parameters:
    "shift": (int, OPTIONAL), "offset": (float, OPTIONAL), "lo": (float, OPTIONAL), "hi": (float, OPTIONAL),
    "bits": (int, OPTIONAL), "integer": (int, OPTIONAL), "neg_min": (float, OPTIONAL),
    "mid": (float, OPTIONAL), "threshold": (float, OPTIONAL), "inclusive": (bool, OPTIONAL),
    "fn": (str, OPTIONAL), "symmetric": (bool, OPTIONAL), "min_exp": (int, OPTIONAL), "max_exp": (int, OPTIONAL),
    "max_value": (float, OPTIONAL), "quadratic": (bool, OPTIONAL), "log2_rounding": (str, OPTIONAL),
    "negative_slope": (float, OPTIONAL)}, weights=("thresholds", "levels")))
_register(OpDef("fixed_quant", attrs={"rounding": (str, "TRN"), "overflow": (str, "WRAP")}, weights=("k", "i", "f")))
_register(OpDef("hgq_softmax", weights=("exp_table", "inv_table"), parallel_only=True,
                type_slots=("result", "exp_in", "exp_out", "sum", "inv_in", "inv_out")))
_register(OpDef("lut", attrs={"in_type": (object, REQUIRED)}, weights=("table",)))
_register(OpDef("apply_scale", weights=("scale", "bias"), type_slots=("result", "scale", "bias")))
_register(OpDef("float_activation", attrs={"function": (str, REQUIRED)}, hls=False))

# functions with no nnet_activation kernel: computed in float on the CPU/GPU fallback
FLOAT_FUNCTIONS = ("selu", "swish", "gelu", "exponential", "mish")
# activation kinds computed from a lookup table (table_size entries of the 'table' type)
TABLE_ACTIVATIONS = ("sigmoid", "tanh", "softplus", "softsign", "elu")
SOFTMAX_IMPLEMENTATIONS = ("stable", "latency", "legacy", "argmax")
# every kind an 'activation' node computes (attrs['activation']): one nnet_activation.h kernel each
ACTIVATION_KINDS = ("linear", "relu", "relu_max", "leaky_relu", "thresholded_relu", "elu", "prelu", "sigmoid", "tanh",
                    "softplus", "softsign", "hard_sigmoid", "hard_tanh")

MERGE_MODES = ("add", "subtract", "multiply", "average", "maximum", "minimum")
_register(OpDef("merge", attrs={"mode": (str, REQUIRED)}, n_inputs=2))
_register(OpDef("concatenate", attrs={"axis": (int, REQUIRED), "shape1": (tuple, REQUIRED),
                                      "shape2": (tuple, REQUIRED)}, n_inputs=2))


def op_def(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None
