"""The graph in plain float64: what the model computes before any fixed-point type is chosen.

Used to profile a model on calibration data (per node: observed min and max, see
:mod:`fpga_gen.calibrate`).  It walks the graph built by the frontend with its float weights,
one function per op, like the bit-exact interpreter: dense ``x @ kernel + bias``; conv2d the same
on every im2col window (padded cells are 0); depthwise_conv2d per channel over its window cells;
max pooling over the cells inside the image; average
pooling the mean over those cells (what Keras and nnet divide by); relu; softmax; sigmoid/tanh.
Arrays are flat channels_last (batch, size), as in the emulator.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.spatial import window_indices

__all__ = ["float_forward", "error_bound", "FLOAT_OPS"]

FLOAT_OPS: dict = {}


def _op(name: str):
    def deco(fn):
        FLOAT_OPS[name] = fn
        return fn
    return deco


def _windows(node: Node, x: np.ndarray, n_chan: int, window, pad: float) -> tuple[np.ndarray, np.ndarray]:
    a = node.attrs
    idx = window_indices(int(a["in_height"]), int(a["in_width"]), n_chan, tuple(window), tuple(a["strides"]),
                         tuple(a["pads"]))
    padded = np.concatenate([x, np.full((x.shape[0], 1), pad)], axis=1)
    return padded[:, np.where(idx < 0, x.shape[1], idx)], idx >= 0


@_op("input")
def _input(node: Node, x: np.ndarray) -> np.ndarray:
    return x


@_op("dense")
def _dense(node: Node, x: np.ndarray) -> np.ndarray:
    return x @ node.weights["kernel"] + node.weights["bias"]


@_op("conv2d")
def _conv2d(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    k = node.weights["kernel"].reshape(-1, int(a["n_filt"]))
    out = []
    for i in range(0, x.shape[0], 256):                      # bounded memory for the gathered windows
        win, _ = _windows(node, x[i:i + 256], int(a["n_chan"]), a["kernel_size"], 0.0)
        out.append((win @ k + node.weights["bias"]).reshape(win.shape[0], -1))
    return np.concatenate(out, axis=0)


@_op("depthwise_conv2d")
def _depthwise_conv2d(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    c = int(a["n_chan"])
    k = node.weights["kernel"].reshape(-1, c)                # (kh * kw, C)
    out = []
    for i in range(0, x.shape[0], 256):
        win, _ = _windows(node, x[i:i + 256], c, a["kernel_size"], 0.0)
        win = win.reshape(win.shape[0], win.shape[1], -1, c)
        out.append(((win * k).sum(axis=2) + node.weights["bias"]).reshape(win.shape[0], -1))
    return np.concatenate(out, axis=0)


@_op("pooling")
def _pooling(node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    c = int(a["n_chan"])
    b = x.shape[0]
    # one channel at a time: the window indices of a 1-channel image, applied to each channel's plane
    planes = x.reshape(b, -1, c)
    out = np.empty((b, node.size // c, c))
    for k in range(c):
        win, inside = _windows(node, planes[:, :, k], 1, a["pool_size"], 0.0)
        if a["mode"] == "max":
            out[:, :, k] = np.where(inside[None], win, -np.inf).max(axis=2)
        else:
            out[:, :, k] = (win * inside[None]).sum(axis=2) / inside.sum(axis=1)[None]
    return out.reshape(b, -1)


@_op("activation")
def _activation(node: Node, x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0) if node.attrs["activation"] == "relu" else x


@_op("softmax")
def _softmax(node: Node, x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@_op("float_activation")
def _float_activation(node: Node, x: np.ndarray) -> np.ndarray:
    return np.tanh(x) if node.attrs["function"] == "tanh" else 1.0 / (1.0 + np.exp(-x))


def float_forward(graph: Graph, x: np.ndarray, keep: bool = True) -> dict[str, np.ndarray]:
    """float64 values of every node (flat, batch first) for the batch ``x`` of the single graph input."""
    (name,) = graph.inputs
    values = {name: np.asarray(x, dtype=np.float64).reshape(len(x), -1)}
    for node in graph:
        if node.op not in FLOAT_OPS:
            raise ValueError(f"layer {node.name!r}: op {node.op!r} has no float reference")
        args = values[node.name] if node.op == "input" else values[node.inputs[0]]
        values[node.name] = FLOAT_OPS[node.op](node, args)
    return values


def _with_weights(node: Node, kernel: np.ndarray, bias: np.ndarray) -> Node:
    return Node(node.name, node.op, list(node.inputs), tuple(node.shape), attrs=dict(node.attrs),
                weights={"kernel": kernel, "bias": bias})


def error_bound(typed: Graph, reference: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per node and element, a bound on |fixed-point value - float value| for the batch ``x``, valid when
    no value leaves its type's range (what calibration aims for; check it with the emulator's trace).

    ``typed``: the converted graph (its weights rounded to their types); ``reference``: the frontend's
    graph of the same model with the float weights (:func:`fpga_gen.frontend.load_graph`).  Rules, with
    e the input's bound and v the float input, for one step ``s`` of a type (2**-frac):

    - input: ``|q(x) - x|`` exactly (the cast of the data into the input type);
    - dense / conv2d / depthwise_conv2d: ``|Wq|^T e + |W - Wq|^T |v| + |b - bq| + s(result)`` (the
      accumulator is exact or holds the sum; the result cast rounds or truncates by less than one step);
    - relu, linear: e (1-Lipschitz), plus one result step when the result has fewer fraction bits than
      its input (the derived relu type has as many: exact);
    - max pooling: the window's max of e; average pooling: the window's mean of e, plus one step of
      the accumulator and of the result;
    - softmax, sigmoid, tanh: not bounded here (inf); compare their inputs or the argmax instead.
    """
    from .fixed import from_float, to_float
    values = float_forward(reference, x)
    (name,) = typed.inputs
    bound = {}
    for node in typed:
        t = node.types.get("result")
        step = t.step if t is not None else 0.0
        if node.op == "input":
            q = to_float(from_float(values[name], t), t)
            bound[node.name] = np.abs(q - values[name])
            continue
        e = bound[node.inputs[0]]
        v = np.abs(values[node.inputs[0]])
        if node.op in ("dense", "conv2d", "depthwise_conv2d"):
            ref = reference[node.name].weights
            kq, bq = node.weights["kernel"], node.weights["bias"]
            fn = FLOAT_OPS[node.op]
            bound[node.name] = (fn(_with_weights(node, np.abs(kq), np.zeros_like(bq)), e)
                                + fn(_with_weights(node, np.abs(ref["kernel"] - kq), np.abs(ref["bias"] - bq)), v)
                                + step)
        elif node.op == "activation":
            in_t = typed[node.inputs[0]].types["result"]
            bound[node.name] = e + (0.0 if t.frac >= in_t.frac else step)
        elif node.op == "pooling":
            b = FLOAT_OPS["pooling"](node, e)
            bound[node.name] = b if node.attrs["mode"] == "max" else b + node.types["accum"].step + step
        else:
            bound[node.name] = np.full_like(values[node.name], np.inf)
    return bound
