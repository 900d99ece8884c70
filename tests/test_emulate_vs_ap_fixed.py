"""The emulator's casts against the AMD ap_fixed headers themselves (compiled with g++)."""

import itertools
import shutil
import subprocess

import numpy as np
import pytest

from fpga_gen.ir.fixed import cast, from_float
from fpga_gen.ir.types import ROUNDING_MODES, SATURATION_MODES, FixedType
from fpga_gen.data_paths import hls4ml_vivado_dir

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

SRC = FixedType(12, 5)
FLOATS = [float("nan"), float("inf"), float("-inf"), 3.99, -4.01, 2.53125, -2.53125, 1e9, -1e9, 0.015625, -0.046875]


def _program(dsts):
    lines = ['#include "ap_fixed.h"', "#include <cstdio>", "#include <cmath>", "int main() {",
             f"  for (int r = {SRC.raw_min}; r <= {SRC.raw_max}; r++) {{",
             f"    {SRC.cpp()} x; x.range() = r;"]
    for t in dsts:
        lines.append(f"    {{ {t.cpp()} y = x; printf(\"%lld \", (long long)y.range().to_int64()); }}")
    lines += ['    printf("\\n");', "  }"]
    fl = ", ".join(("NAN" if np.isnan(v) else ("INFINITY" if v > 0 else "-INFINITY") if np.isinf(v) else repr(v))
                   for v in FLOATS)
    lines.append(f"  double fs[] = {{{fl}}};")
    lines.append(f"  for (int i = 0; i < {len(FLOATS)}; i++) {{")
    for t in dsts:
        lines.append(f"    {{ {t.cpp()} y = fs[i]; printf(\"%lld \", (long long)y.range().to_int64()); }}")
    lines += ['    printf("\\n");', "  }", "}"]
    return "\n".join(lines) + "\n"


def test_casts_equal_ap_fixed(tmp_path):
    dsts = [FixedType(6, 2, s, r, o) for s, r, o in itertools.product([True, False], ROUNDING_MODES, SATURATION_MODES)]
    # one- to three-bit signed types: ap_fixed<1,...,AP_SAT_SYM> keeps its negative code (no symmetric range)
    dsts += [FixedType(w, i, True, r, o) for w, i in ((1, 1), (1, 3), (2, 0), (3, 2))
             for r, o in itertools.product(("TRN", "RND", "RND_CONV"), SATURATION_MODES)]
    (tmp_path / "t.cpp").write_text(_program(dsts))
    inc = hls4ml_vivado_dir() / "ap_types"
    subprocess.run(["g++", "-O0", "-w", f"-I{inc}", "t.cpp", "-o", "t"], cwd=tmp_path, check=True)
    out = subprocess.run(["./t"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.split("\n")
    rows = [list(map(int, line.split())) for line in out if line.strip()]
    n_raw = SRC.raw_max - SRC.raw_min + 1
    raws = np.arange(SRC.raw_min, SRC.raw_max + 1, dtype=np.float64)
    def signed(v, t):  # range() gives the bit pattern; read it as two's complement for signed types
        return v - (1 << t.width) if t.signed and v >= 1 << (t.width - 1) else v

    for j, t in enumerate(dsts):
        cpp = np.array([signed(rows[i][j], t) for i in range(n_raw)], dtype=np.float64)
        assert np.array_equal(cast(raws, SRC, t), cpp), t.cpp()
        cpp_f = np.array([signed(rows[n_raw + i][j], t) for i in range(len(FLOATS))], dtype=np.float64)
        assert np.array_equal(from_float(np.array(FLOATS), t), cpp_f), ("from double", t.cpp())
