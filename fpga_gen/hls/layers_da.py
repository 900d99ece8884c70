"""The HLS form of a distributed-arithmetic dense layer: da4ml's adder graph as straight-line ap_fixed code.

da4ml's Vitis HLS writer (``hls_logic_and_bridge_gen``) turns the layer's :class:`da4ml.types.CombLogic` into one
function template of SSA statements, each ``ap_fixed`` wide enough to hold its sum exactly.  The layer template
(``templates/hls/layers/dense_da.j2``) puts that function in ``namespace fpga_gen_da`` (with the ``bit_shift`` of
``firmware/fpga_gen_da.h``), calls it into an array of the exact accum type, then casts each sum to the result
type, as nnet's dense kernels do.  The adder graph is also saved in the project (``da/<layer>.json``) for
``fpga-gen synth`` to write its Verilog.
"""

from __future__ import annotations

import io
import json

from ..da.solve import DaError, solve_node
from ..ir.graph import Graph, Node
from .layers import HlsWriteError, LayerCode, TypeDef
from .names import Namer

__all__ = ["dense_da", "DA_HEADER", "comb_json"]

DA_HEADER = "fpga_gen_da.h"


def comb_json(comb) -> str:
    """The adder graph as da4ml's own JSON (``CombLogic.load`` reads it back), deterministic."""
    from da4ml.types import JSONEncoder
    buf = io.StringIO()
    json.dump(comb, buf, cls=JSONEncoder, separators=(",", ":"))
    return buf.getvalue() + "\n"


def dense_da(node: Node, graph: Graph, namer: Namer, code: LayerCode, geometry: dict | None = None) -> LayerCode:
    """A dense layer, or (``geometry``: the conv handler's) a conv2d layer: the same adder graph on every output
    pixel's zero-padded (kh, kw, n_chan) patch (``templates/hls/layers/conv2d_da.j2``)."""
    x = graph[node.inputs[0]].types["result"]
    acc = node.types.get("accum")
    if acc is None:
        raise HlsWriteError(f"layer {node.name!r} (dense): has no 'accum' type; run precision inference first")
    try:
        comb = solve_node(node, x)
    except DaError as e:
        raise HlsWriteError(str(e)) from None
    from da4ml.codegen.hls import hls_logic_and_bridge_gen
    fn = namer.unique(f"da_{code.stem}")
    text, _ = hls_logic_and_bridge_gen(comb, fn, "vitis", pragmas=["#pragma HLS INLINE"])
    accum_t = namer.unique(f"{code.stem}_accum_t")
    code.typedefs += [TypeDef(accum_t, acc.cpp())]
    code.includes = (DA_HEADER,)
    n_adders = sum(1 for op in comb.ops if op.opcode in (0, 1, 4))
    depth = int(max(comb.latency)) if comb.shape[1] else 0
    code.summary = (f"distributed arithmetic (da4ml), {n_adders} adders, cost {comb.cost:g}, {depth} adder levels, "
                    f"exact accum {acc.cpp()}")
    if geometry is not None:
        code.params.update(geometry, n_patch=geometry["filt_height"] * geometry["filt_width"] * geometry["n_chan"],
                           n_filt=comb.shape[1])
        code.summary = f"conv2d per output pixel, {code.summary}"
    code.params.update(template="dense_da" if geometry is None else "conv2d_da", strategy="distributed_arithmetic", reuse_factor=1, accum_t=accum_t,
                       accum_cpp=acc.cpp(), da_fn=fn, da_code="\n".join(line.rstrip() for line in text.splitlines()),
                       da_cost=f"{comb.cost:g}", da_depth=depth, n_adders=n_adders,
                       da_files={f"da/{code.stem}.json": comb_json(comb)})
    return code
