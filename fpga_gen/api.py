"""The Python API, and (with cli.py) the only place that wires the stages together.

    project = fpga_gen.convert("model.h5", config="config.yml", reuse_factor=4)
    project.write("hls_projects/mymodel")
    y = project.predict(x, backend="emu")          # or "gpu", "csim" (= "native"), "split", "split-csim", "split-gpu"
    project = fpga_gen.load_project("hls_projects/mymodel")
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml

from . import csim
from .boards import load_board
from .cache import cache_root, touch
from .calibrate import Calibration, load_calibration_data, profile
from .config import ConfigError, ProjectConfig, config_from_dict, load_config
from .emulate import Emulator, reference_predictor
from .estimate import estimate
from .frontend import load_graph
from .hls import write_project
from .hls.board_project import write_board_files
from .ir.graph import Graph, deterministic_npz
from .ir.ops import op_def
from .ir.types import FixedType
from .passes import DEFAULT_PASSES, FuseBatchNorm, run_passes
from .passes.calibrate import DEFAULT_HEADROOM_BITS, Calibrate
from .passes.limits import check_hls_limits
from .report import write_report
from .templating import cpp_ident
from .hls4ml_config import Hls4mlConfig, apply_plan, plan, read_hls4ml_config, snapshot_float_weights
from .data_paths import templates_dir

__all__ = ["Project", "convert", "load_project", "rerender_report", "ProjectError", "BACKENDS", "N_TB_VECTORS"]

BACKENDS = ("emu", "cpu", "gpu", "csim", "native", "split", "split-csim", "split-gpu")
N_TB_VECTORS = 200
PROJECT_FILE = "fpga_gen_project.json"


_WRITER_DIGEST: list[str] = []


def writer_digest() -> str:
    """A digest of what writes a project (fpga_gen's sources and templates/): a cached project written by another
    version of the writer is never taken for this one's (the project cache is keyed by design and writer)."""
    if not _WRITER_DIGEST:
        h = hashlib.sha256()
        for root in (Path(__file__).resolve().parent, templates_dir()):
            for p in sorted(q for q in root.rglob("*") if q.is_file() and q.suffix in (".py", ".j2", ".h", ".yaml")):
                h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        _WRITER_DIGEST.append(h.hexdigest()[:12])
    return _WRITER_DIGEST[0]


class ProjectError(ValueError):
    pass


def _resolve_config(config, overrides: dict) -> ProjectConfig:
    if config is None:
        cfg = ProjectConfig()
    elif isinstance(config, ProjectConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = config_from_dict(config)
    else:
        cfg = load_config(config)
    over = {k: v for k, v in overrides.items() if v is not None}
    if "precision" in over:
        p = over.pop("precision")
        over["default_precision"] = p if isinstance(p, FixedType) else FixedType.parse(p)
    if "io" in over:
        over["io_type"] = over.pop("io")
    if "reuse" in over:
        over["reuse_factor"] = over.pop("reuse")
    unknown = set(over) - set(ProjectConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}")
    return cfg.copy(**over)


class Project:
    """A converted model: the typed graph plus the settings it is generated with."""

    def __init__(self, graph: Graph, config: ProjectConfig, model=None, directory: Path | None = None,
                 tb_inputs: np.ndarray | None = None, split_at: str | None = None, calibration=None):
        self.graph = graph
        # fpga_gen.calibrate.Calibration when the types were calibrated on data (report.md, calibration.json)
        self.calibration = calibration
        # heterogeneous split: the graph up to and including split_at is the FPGA project (the head), the
        # rest (the tail) runs on the CPU/GPU fallback; the whole graph stays in self.graph
        self.split_at = split_at
        self._parts = None
        self.config = config
        self.model = model
        self.directory = Path(directory) if directory else None
        self.tb_inputs = tb_inputs
        self._emulator = None
        self._torch_emulator = None
        self._tail_emulator = None

    # ------------------------------------------------------------------ predict
    @property
    def name(self) -> str:
        return cpp_ident(self.config.name)

    def split_parts(self) -> tuple[Graph, Graph | None]:
        """(head, tail): the graph the FPGA project holds and the rest for the fallback (None: no split)."""
        if self._parts is None or self._parts[0] != self.split_at:
            parts = self.graph.split(self.split_at) if self.split_at else (self.graph, None)
            self._parts = (self.split_at, parts)
        return self._parts[1]

    @property
    def head(self) -> Graph:
        return self.split_parts()[0]

    @property
    def tail(self) -> Graph | None:
        return self.split_parts()[1]

    def boundary(self) -> dict | None:
        """The tensor between the FPGA part and the fallback: name, shape and fixed-point type."""
        if not self.split_at:
            return None
        node = self.graph[self.split_at]
        return {"name": node.name, "shape": list(node.shape), "type": node.types["result"].cpp()}

    def split_summary(self) -> str:
        """One line: where the model is split and the boundary type ('' without a split)."""
        b = self.boundary()
        if b is None:
            return ""
        head, tail = self.split_parts()
        cpu = [n.name for n in tail if n.op != "input"]
        return (f"split after {b['name']!r}: FPGA {len(head)} layers, CPU/GPU fallback {', '.join(cpu)}; "
                f"boundary {b['name']} {'x'.join(map(str, b['shape']))} {b['type']}")

    def emulator(self):
        if self._emulator is None:
            self._emulator = Emulator(self.graph)
        return self._emulator

    def torch_emulator(self):
        """The emulator's kernels on PyTorch (CUDA when available, else the CPU); bit-identical to emu."""
        if self._torch_emulator is None:
            try:
                from .emulate.torch_ops import TorchOps  # imports torch (optional, seconds): only for backend gpu
                ops = TorchOps()
            except ImportError as e:
                raise ProjectError(str(e)) from None
            self._torch_emulator = Emulator(self.graph, xp=ops)
        return self._torch_emulator

    def predict(self, x, backend: str = "emu"):
        """Run the model on a batch ``x``; every back end gives the same values, bit for bit.

        ``emu`` (or ``cpu``): the numpy emulator, the spec.  ``gpu``: the emulator's kernels on PyTorch
        (CUDA when available, else the CPU; ``pip install 'fpga-gen[gpu]'``).  ``csim``: the generated
        HLS C++ compiled by g++ into a cached shared library and run over the batch on every core.
        ``native``: the same C++ compiled with ``-DFPGA_GEN_NATIVE``, where dense and conv2d layers sum
        raw integer codes and relu/linear cast them in integer arithmetic (fpga_gen_native.h) instead of
        one ap_fixed operation at a time -- the same bits, several times faster; every other layer runs
        its nnet_utils code as in ``csim``.
        """
        if backend in ("emu", "cpu"):
            return self.emulator().predict(x)
        if backend == "gpu":
            return self.torch_emulator().predict(x)
        if backend in ("split", "split-csim", "split-gpu"):
            return self._predict_split(x, backend)
        if backend in ("csim", "native"):
            if self.split_at:
                raise ProjectError(f"the FPGA project holds the model up to {self.split_at!r} only; "
                                   f"use backend='split-csim' (C-simulated head, then the fallback)")
            return csim.predict(self._built_directory(), x, native=backend == "native")
        raise ProjectError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")

    def _predict_split(self, x, backend: str):
        """``split``: the head emulated, then the tail on the numpy emulator; ``split-csim``: the head
        C-simulated from the written project, then the tail; ``split-gpu``: the head emulated, the tail on
        PyTorch (as ``gpu``).  Without a split, the whole model (emu / csim)."""
        head, tail = self.split_parts()
        if backend == "split-csim":
            mid = csim.predict(self._built_directory(), x)
        else:
            mid = Emulator(head).predict(x)
        if tail is None:
            return mid
        if backend == "split-gpu":
            try:
                from .emulate.torch_ops import TorchOps  # imports torch (optional, seconds): only for backend gpu
                return Emulator(tail, xp=TorchOps()).predict(mid)
            except ImportError as e:
                raise ProjectError(str(e)) from None
        if self._tail_emulator is None or self._tail_emulator.graph is not tail:
            self._tail_emulator = Emulator(tail)
        return self._tail_emulator.predict(mid)

    def _built_directory(self) -> Path:
        if self.directory is not None:
            return self.directory
        # an unwritten project is written to a content-addressed cache folder
        cache = cache_root() / "projects" / f"{self.fingerprint()}-{writer_digest()}"
        if not (cache / PROJECT_FILE).is_file():
            self.write(cache, force=True, _record=False)
        touch(cache)
        return cache

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(self.graph.to_json_dict(), sort_keys=True).encode())
        h.update(deterministic_npz(self.graph.weight_arrays()))
        h.update(json.dumps(self.config.to_dict(), sort_keys=True, default=str).encode())
        if self.split_at:
            h.update(f"split_at={self.split_at}".encode())
        return h.hexdigest()[:20]

    # ------------------------------------------------------------------ write
    def test_vectors(self) -> np.ndarray:
        """Inputs for the testbench: the user's (tb_inputs) or seeded random values in the input type."""
        if self.tb_inputs is not None:
            return np.asarray(self.tb_inputs, dtype=np.float64)
        node = self.graph.input_nodes()[0]
        t = node.types["result"]
        rng = np.random.default_rng(20240601)
        lo, hi = max(t.min, -4.0), min(t.max, 4.0)
        x = rng.uniform(lo, hi, size=(N_TB_VECTORS,) + tuple(node.shape))
        return np.floor(x * 2.0 ** t.frac) * 2.0 ** -t.frac

    def write(self, directory, force: bool = False, _record: bool = True) -> Path:
        """Write the whole project atomically: into a temporary folder, renamed into place at the end."""

        head = self.head                  # the FPGA part (the whole graph without a split)
        _check_hls_ops(head)
        check_hls_limits(head)            # a design Vitis HLS cannot build is refused before any file exists
        out = Path(directory)
        if out.exists() and not force:
            raise ProjectError(f"{out}: output directory exists; pass --force (force=True) to overwrite it")
        if out.exists() and not out.is_dir():
            raise ProjectError(f"{out}: exists and is not a directory; choose another output path")
        parent = out.parent if str(out.parent) else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProjectError(f"{parent}: cannot create the output folder ({e.strerror})") from None
        if not os.access(parent, os.W_OK):
            raise ProjectError(f"{parent}: not writable; choose another output path")
        _remove_stale_temporaries(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent))
        try:
            x = self.test_vectors()
            y = self.emulator().predict(x) if head is self.graph else Emulator(head).predict(x)
            write_project(head, self.config, tmp, tb_x=x, tb_y=y)
            self._write_fallback(tmp)
            self._write_reports(tmp, head)
            if self.config.board:
                write_board_files(head, self.config, load_board(self.config.board), tmp, reference_predictor(head))
            if self.split_at:
                with open(tmp / "README.md", "a") as f:
                    f.write(_split_readme(self))
            meta = {"format_version": 1, "name": self.name, "config": self.config.to_dict(),
                    "fingerprint": self.fingerprint()}
            if self.split_at:
                meta["split_at"] = self.split_at
            (tmp / PROJECT_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n")
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if _record:
            self.directory = out
        return out

    def _write_fallback(self, d: Path) -> None:
        fb = d / "fallback"
        self.graph.save(fb)
        manifest = {
            "format_version": 1,
            "name": self.name,
            "graph": "graph.json",
            "weights": "weights.npz",
            "inputs": [{"name": n.name, "shape": list(n.shape), "type": n.types["result"].cpp()}
                       for n in self.graph.input_nodes()],
            "outputs": [{"name": n.name, "shape": list(n.shape), "type": n.types["result"].cpp()}
                        for n in self.graph.output_nodes()],
            "backends": list(BACKENDS),
            "usage": "fpga_gen.load_project(DIR).predict(x, backend='emu')",
        }
        if self.split_at:
            # the FPGA project computes the graph up to split_at; the fallback runs the rest from the boundary
            manifest["split"] = {"at": self.split_at, "boundary": self.boundary(),
                                 "fpga_layers": [n.name for n in self.head],
                                 "fallback_layers": [n.name for n in self.tail if n.op != "input"],
                                 "usage": "fpga_gen.load_project(DIR).predict(x, backend='split')"}
        (fb / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        cfg = self.config.to_dict()
        (d / "config.yml").write_text(yaml.safe_dump(cfg, sort_keys=True))

    def _write_reports(self, d: Path, graph: Graph) -> None:
        est = estimate(graph, self.config, board=self.config.board)
        (d / "report.json").write_text(json.dumps(est.to_json(), indent=1, sort_keys=True) + "\n")
        available = None
        if self.config.board:
            available = load_board(self.config.board).resources
        md = est.to_markdown(available=available)
        if self.calibration is not None:
            md = md.rstrip("\n") + "\n\n" + self.calibration.to_markdown()
            self.calibration.write_json(d / "calibration.json")
        (d / "report.md").write_text(md)
        write_report(d, graph, self.config, est, available=available)


def _split_readme(project: Project) -> str:
    b = project.boundary()
    tail = [f"{n.name} ({n.op})" for n in project.tail if n.op != "input"]
    return (f"\n## Heterogeneous split\n\n"
            f"This FPGA project computes the model up to and including `{b['name']}`. Its output, the boundary "
            f"tensor `{b['name']}` (shape {tuple(b['shape'])}, type `{b['type']}`), is the input of the rest of the "
            f"model, which runs on the CPU/GPU fallback: {', '.join(tail)}. `fallback/` holds the whole graph; "
            f"`fallback/manifest.json` records the split point.\n\n"
            f"    fpga_gen.load_project(DIR).predict(x, backend='split')       # head emulated, then the fallback\n"
            f"    fpga_gen.load_project(DIR).predict(x, backend='split-csim')  # head C-simulated, then the fallback\n")


def hls_unsupported(graph: Graph) -> list:
    """The nodes whose op the HLS writer cannot generate (OpDef.hls is False)."""
    return [n for n in graph if not op_def(n.op).hls]


def _check_hls_ops(graph: Graph) -> None:
    bad = hls_unsupported(graph)
    if bad:
        n = bad[0]
        raise ProjectError(f"layer {n.name!r} ({n.op}) has no HLS template and runs only on the CPU/GPU fallback; "
                           f"split the model before it (split_at / --split-at)")


def auto_split_point(graph: Graph) -> str | None:
    """The last node before the first HLS-unsupported node (None when every op has an HLS template)."""
    bad = hls_unsupported(graph)
    if not bad:
        return None
    names = [n.name for n in graph]
    k = names.index(bad[0].name)
    prev = graph[names[k - 1]] if k > 0 else None
    if prev is None or prev.op == "input":
        raise ProjectError(f"layer {bad[0].name!r} ({bad[0].op}) runs only on the CPU/GPU fallback and comes "
                           f"right after the input: nothing is left for the FPGA")
    return prev.name


def _remove_stale_temporaries(out: Path) -> None:
    """Remove the hidden .<name>.tmp-<pid>-* / .<name>.old-<pid> folders a killed write left next to ``out``
    (only those whose process is gone: a concurrent write keeps its own)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:tmp|old)-(\d+)(?:-|$)")
    try:
        siblings = list(out.parent.iterdir()) if out.parent.is_dir() else []
    except OSError:
        return
    for d in siblings:
        m = pattern.match(d.name)
        if not m or not d.is_dir():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError, OverflowError):
            pass


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_dir(tmp: Path, out: Path) -> None:
    # the old project stays in place until the new one takes its name: a kill at any moment leaves one of them
    if out.is_dir() and _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)        # tmp now holds the old project
        return
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def load(model_or_path, config=None, **overrides):
    """The frontend and the settings, no passes: (untyped graph, ProjectConfig, keras model).

    The config's name defaults to the model file's name; a board fills in its part and clock
    where the user gave none.  ``convert`` types the graph; a sweep types many copies of it."""

    cfg = _resolve_config(config, overrides)
    name = overrides.get("name") or (cfg.name if cfg.name != "myproject" else None)
    graph, model = load_graph(model_or_path, name=name)
    if cfg.name == "myproject" and not overrides.get("name"):
        base = Path(str(model_or_path)).stem if isinstance(model_or_path, (str, os.PathLike)) else graph.name
        cfg.name = cpp_ident(base)
    if cfg.board:
        board = load_board(cfg.board)
        cfg.board = board.name
        if cfg.part == ProjectConfig().part and not overrides.get("part"):
            cfg.part = board.part
        if cfg.clock_period == ProjectConfig().clock_period and not overrides.get("clock_period"):
            cfg.clock_period = float(board.clock_period)
    return graph, cfg, model


def convert(model_or_path, config=None, tb_inputs=None, split_at: str | None = None, calibrate=None,
            headroom_bits: int | None = None, hls4ml=None, **overrides) -> Project:
    """Keras/QKeras model (path or object) -> typed Project.  ``overrides``: name, io_type/io, strategy,
    reuse_factor/reuse, precision (default precision), input_precision, clock_period, part, board.

    ``calibrate``: inputs (an array (N, *input shape) or a .npy path) to profile the float model on; the
    input, float weight/bias/result and accumulator types then take integer bits from the observed ranges
    at the configured width, ``headroom_bits`` (default 1) above them (see :mod:`fpga_gen.calibrate`);
    explicit config settings win.  ``project.calibration`` holds the report.  Without ``tb_inputs`` the
    testbench vectors are the first calibration samples.

    ``split_at``: a layer name; the graph up to and including it becomes the FPGA project and the rest
    runs on the CPU/GPU fallback.  Without it, a model holding layers the HLS writer cannot generate
    (selu, swish, gelu, exponential, mish: no nnet kernel) is split automatically before the first of them."""
    if hls4ml is not None:
        return _convert_hls4ml(model_or_path, hls4ml, config, tb_inputs, split_at, calibrate, overrides)
    cfg = _resolve_config(config, overrides)
    graph, cfg, model = load(model_or_path, cfg, **{k: v for k, v in overrides.items()
                                                   if k in ("name", "part", "clock_period")})
    passes, calibration = DEFAULT_PASSES, None
    if calibrate is not None:
        headroom = DEFAULT_HEADROOM_BITS if headroom_bits is None else int(headroom_bits)
        if headroom < 0:
            raise ConfigError(f"headroom_bits must be 0 or more, got {headroom}")
        x = load_calibration_data(calibrate, graph)
        if tb_inputs is None:
            tb_inputs = x[:N_TB_VECTORS]          # the testbench runs on real inputs rather than random ones
        # profile the graph as the passes up to batchnorm fusion leave it (config overrides applied, identities
        # removed, batchnorms folded into their float dense/conv in float64): calibration overrides set before
        # FuseBatchNorm would stop it folding, and the folded layer's range is the batchnorm's output
        k = [type(p) for p in passes].index(FuseBatchNorm) + 1
        run_passes(graph, cfg, passes[:k])
        calibration = Calibration(len(x), headroom, profile(graph, x),
                                  source=str(calibrate) if isinstance(calibrate, (str, os.PathLike)) else "an array")
        passes = (Calibrate(calibration.ranges, headroom),) + passes[k:]
    elif headroom_bits is not None:
        raise ConfigError("headroom_bits applies to calibration; give calibrate= (--calibrate data.npy) too")
    run_passes(graph, cfg, passes)
    Emulator(graph)  # validates that every type can be emulated exactly
    if calibration is not None:
        calibration.describe(graph, cfg)
    project = Project(graph, cfg, model=model, tb_inputs=tb_inputs, split_at=split_at or auto_split_point(graph),
                      calibration=calibration)
    if project.split_at:
        head, _ = project.split_parts()        # a bad split point: a one-line GraphError naming it
        _check_hls_ops(head)
    return project


def _convert_hls4ml(model_or_path, hls4ml, config, tb_inputs, split_at, calibrate, overrides) -> Project:
    """``convert(model, hls4ml=path | Hls4mlConfig)``: the graph hls4ml would build for that config (its types,
    reuse factors, weight rounding; :mod:`fpga_gen.hls4ml_config`).  ``project.hls4ml_notes`` says, one line each,
    where fpga-gen builds something other than what the config names.  The one path the CLI, the sweep, the
    project reader and benchmarks/calibrate_estimator.py use."""
    if config is not None:
        raise ConfigError("give either a config or an hls4ml config, not both")
    if calibrate is not None:
        raise ConfigError("calibration chooses types; an hls4ml config fixes them: give one of the two")
    h = hls4ml if isinstance(hls4ml, Hls4mlConfig) else read_hls4ml_config(hls4ml)
    if isinstance(model_or_path, Graph):
        graph, model = model_or_path, None
    else:
        graph, model = load_graph(model_or_path, name=overrides.get("name"))
    cfg, p = plan(h, graph)
    cfg.name = cpp_ident(overrides.get("name") or h.project_name or cfg.name)
    cfg = _resolve_config(cfg, {k: v for k, v in overrides.items() if k != "name"})
    if overrides.get("board") and not overrides.get("part"):
        board = load_board(cfg.board)
        cfg.board, cfg.part = board.name, board.part
    k = [type(q) for q in DEFAULT_PASSES].index(FuseBatchNorm) + 1
    run_passes(graph, cfg, DEFAULT_PASSES[:k])
    snapshot_float_weights(graph, p)
    run_passes(graph, cfg, DEFAULT_PASSES[k:])
    apply_plan(graph, cfg, h, p)
    Emulator(graph)
    project = Project(graph, cfg, model=model, tb_inputs=tb_inputs, split_at=split_at or auto_split_point(graph))
    project.hls4ml_notes = list(p.notes)
    if project.split_at:
        head, _ = project.split_parts()
        _check_hls_ops(head)
    return project


def load_project(directory) -> Project:
    d = Path(directory)
    meta_path = d / PROJECT_FILE
    if not meta_path.is_file():
        raise ProjectError(f"{d}: not an fpga-gen project (no {PROJECT_FILE}); build one with `fpga-gen build`")
    meta = json.loads(meta_path.read_text())
    cfg = config_from_dict({k: v for k, v in meta["config"].items()}, source=str(d / "config.yml"))
    graph = Graph.load(d / "fallback")
    split_at = None
    manifest = d / "fallback" / "manifest.json"
    if manifest.is_file():
        split_at = (json.loads(manifest.read_text()).get("split") or {}).get("at")
    return Project(graph, cfg, directory=d, split_at=split_at or meta.get("split_at"))


def rerender_report(directory, sweep: list | None = None) -> Path:
    """Re-render a written project's report.html (after verify wrote verification.json, or with sweep points)."""
    project = load_project(directory)
    est = estimate(project.graph, project.config, board=project.config.board)
    available = None
    if project.config.board:
        available = load_board(project.config.board).resources
    return write_report(directory, project.graph, project.config, est, available=available, sweep=sweep)
