"""The import rules of docs/architecture.md, checked on the source: data flows one way through the stages.

Every module of fpga_gen/ is parsed with ``ast`` (nothing is imported).  Each belongs to one group
(:func:`group_of`); a module may import its own group and the groups :data:`ALLOWED` lists for it, nothing
else.  Imports sit at module level, except the optional or heavy third-party packages of :data:`LAZY`
(TensorFlow & co. load in seconds and are needed only by the Keras frontend; torch only by the GPU back end).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "fpga_gen"

# the foundation every stage may read: the numeric core and the small support modules
IR = {"ir"}
SUPPORT = {"config", "data_paths", "templating", "boards", "cache", "progress", "package"}
BACK_ENDS = {"emulate", "hls", "estimate", "csim"}

# group -> the other groups it may import (its own group is always allowed).  Stage order:
#   ir < config & support < frontend, passes < emulate | hls | estimate | csim (siblings: never each other)
#      < calibrate, report < api < sweep, verify, testing, pytest_plugin < cli
ALLOWED: dict[str, set[str]] = {
    "package": set(),                              # fpga_gen/__init__.py: __version__ (and the lazy api re-export)
    "ir": set(),
    "config": IR | {"da"},                          # the da: solver options are checked where the config is read
    "da": IR,                                      # da4ml's adder graphs (solve, estimate, yosys): the numeric core's level
    "data_paths": set(),
    "templating": {"data_paths"},
    "boards": {"data_paths"},
    "cache": set(),
    "progress": set(),
    "frontend": IR,                                # a frontend reads a model and builds the graph: ir only
    "passes": IR | {"config", "da"},
    "hls4ml_config": IR | {"config"},              # hls4ml's config format -> ProjectConfig
    "hls4ml_project": IR | {"config", "hls4ml_config"},   # an hls4ml project folder -> (Graph, ProjectConfig)
    "emulate": IR,
    "hls": IR | {"config", "templating", "data_paths", "boards", "package", "da"},
    "rtl": IR | {"da", "templating", "data_paths"},  # Verilog of a whole DA model (a back end beside hls)
    "estimate": IR | {"config", "boards", "da"},
    "csim": IR | {"cache", "templating", "data_paths"},
    "calibrate": IR | {"emulate"},                 # profiles the float graph on the float reference
    "report": IR | {"config", "templating", "package", "estimate", "boards"},
    "api": IR | SUPPORT | {"frontend", "passes", "hls4ml_config", "calibrate", "report", "da"} | BACK_ENDS,
}
_BELOW_API = ALLOWED["api"] | {"api"}
ALLOWED.update({
    "sweep": _BELOW_API,
    "verify": _BELOW_API,
    "testing": _BELOW_API | {"verify"},
    "pytest_plugin": _BELOW_API | {"testing"},
    "measure": _BELOW_API,                          # fpga-gen synth: yosys counts of a built project
    "cli": _BELOW_API | {"sweep", "verify", "rtl", "measure", "hls4ml_project"},
})

# third-party packages that stay lazy (imported inside the function that needs them), each for a reason
LAZY = {
    "tensorflow", "tf_keras", "keras", "qkeras", "absl",      # seconds to import; the Keras frontend only
    "h5py",                                                   # only to read a .h5 model's metadata
    "torch",                                                  # optional (fpga-gen[gpu]); the GPU back end only
    "hls4ml", "onnx",                                         # heavy; only where their files or models are read
    "qonnx",                                                  # loads onnxruntime; only the QONNX frontend and its reference
    "da4ml",                                                  # only where a distributed-arithmetic layer is solved
    "matplotlib",                                             # seconds to import; only the sweep's pareto.png
    "dask",                                                   # optional (fpga-gen[dask]); the Dask executor only
    "threadpoolctl",                                          # optional; the emulator's thread pools only
}
# function-level imports of fpga_gen itself that are allowed, with why
LAZY_INTERNAL = {
    ("package", "fpga_gen.api"),      # `import fpga_gen` re-exports convert/load_project without loading every stage
    ("api", "fpga_gen.emulate.torch_ops"),     # imports torch (optional, seconds to load): the gpu back ends only
}


def group_of(module: str) -> str:
    parts = module.split(".")
    if parts == ["fpga_gen"]:
        return "package"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path):
    """(imported module, line, at module level) for every import of ``path``; relative imports resolved."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = {id(n) for n in tree.body}
    # module level: directly in the body, or in a module-level if/try (not inside a def or class)
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    top.add(id(sub))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if node.module is None or (node.level and target.split(".") == package.split(".")[:len(target.split("."))]
                                       and not node.module):
                # from . import x / from .. import x: the names may be modules
                for a in node.names:
                    yield f"{target}.{a.name}", node.lineno, id(node) in top
            else:
                yield target, node.lineno, id(node) in top


def _internal(target: str) -> str | None:
    """The fpga_gen module a target names (a `from pkg import name` may name a function: keep the package)."""
    if target != "fpga_gen" and not target.startswith("fpga_gen."):
        return None
    parts = target.split(".")
    while len(parts) > 1:
        p = PKG.parent.joinpath(*parts)
        if p.with_suffix(".py").is_file() or (p / "__init__.py").is_file():
            return ".".join(parts)
        parts = parts[:-1]
    return "fpga_gen"


def violations(paths=None) -> list[str]:
    bad = []
    for path in sorted(paths or PKG.rglob("*.py")):
        mod = module_name(path)
        src = group_of(mod)
        if src not in ALLOWED:
            bad.append(f"{path.relative_to(PKG.parent)}: module group {src!r} has no row in ALLOWED")
            continue
        for target, line, at_top in imports(path):
            where = f"{path.relative_to(PKG.parent)}:{line}"
            internal = _internal(target)
            if internal is None:
                if not at_top and target.split(".")[0] not in LAZY:
                    bad.append(f"{where}: import of {target} inside a function (only {sorted(LAZY)} stay lazy)")
                continue
            dst = group_of(internal)
            if (src, internal) in LAZY_INTERNAL and not at_top:
                continue
            if not at_top:
                bad.append(f"{where}: import of {internal} inside a function: move it to the top of the module")
            if dst != src and dst not in ALLOWED[src]:
                bad.append(f"{where}: {src} imports {dst} ({internal}): against the stage order "
                           f"({src} may import {sorted(ALLOWED[src]) or 'nothing else'})")
    return bad


def test_every_module_has_a_group():
    groups = {group_of(module_name(p)) for p in PKG.rglob("*.py")}
    assert groups <= set(ALLOWED), sorted(groups - set(ALLOWED))


def test_no_import_runs_against_the_stage_order():
    bad = violations()
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("source, expected", [
    ("from ..emulate.kernels import KERNELS\n", "hls imports emulate"),             # a sibling back end
    ("from ..passes.base import PassError\n", "hls imports passes"),               # a pass
    ("def f():\n    from ..ir.types import FixedType\n", "inside a function"),      # hidden in a function
    ("def f():\n    import numpy\n", "inside a function"),
])
def test_a_planted_violation_is_caught(tmp_path, monkeypatch, source, expected):
    fake = PKG / "hls" / "_planted_violation_check.py"
    assert not fake.exists()
    try:
        fake.write_text(source, encoding="utf-8")
        bad = violations([fake])
    finally:
        fake.unlink()
    assert len(bad) == 1 and expected in bad[0], bad


def test_the_frontend_imports_only_ir():
    # the rule the HGQ2 and QONNX frontends must keep too
    assert ALLOWED["frontend"] == {"ir"}
    for sibling in BACK_ENDS:
        assert not (ALLOWED[sibling] & (BACK_ENDS - {sibling})), sibling
        assert "passes" not in ALLOWED[sibling], sibling
