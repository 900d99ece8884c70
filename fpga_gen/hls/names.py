"""C++ identifiers for a generated project: derived from node names, unique, deterministic."""

from __future__ import annotations

from ..templating import cpp_ident

__all__ = ["Namer", "RESERVED"]

# Names every project defines or uses itself; a derived identifier never takes one of them.
RESERVED = ("input_t", "result_t", "input_pack_t", "result_pack_t", "N_IN", "N_OUT", "main", "nnet", "std",
            "fpga_gen_predict", "fpga_gen_n_in", "fpga_gen_n_out", "fpga_gen_thread_safe", "fpga_gen_input_shape",
            "fpga_gen_output_shape", "fpga_gen_load", "DIV_ROUNDUP", "MIN", "MAX", "EOF", "NULL", "assert", "stdin",
            "stdout", "stderr", "errno")


class Namer:
    """Hands out C++ identifiers, each unique in the project.

    Uniqueness is case-insensitive, because identifiers also become file names (weights
    headers) and files must not collide on case-insensitive file systems.  A clash gets
    ``_2``, ``_3``, ... appended; the graph is walked in order, so the result depends only
    on the graph.
    """

    def __init__(self, reserved=RESERVED):
        self._used: set[str] = {r.lower() for r in reserved}

    def unique(self, base: str) -> str:
        base = cpp_ident(base)
        name, k = base, 1
        while name.lower() in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name.lower())
        return name
