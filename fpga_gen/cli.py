"""The `fpga-gen` command line.  Errors are one line on stderr and a non-zero exit (2)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

EXIT_ERROR = 2
EXIT_MISMATCH = 1


class CliError(Exception):
    pass


def _known_errors() -> tuple:
    from .api import ProjectError
    from .config import ConfigError
    from .emulate import EmulationError
    from .emulate.fixed import EmulationRangeError
    from .frontend.loader import FrontendError
    from .ir.graph import GraphError
    from .ir.types import TypeParseError
    from .passes import PassError
    from .templating import TemplateError
    errs = [CliError, ProjectError, ConfigError, EmulationError, EmulationRangeError, FrontendError, GraphError,
            TypeParseError, PassError, TemplateError]
    for mod, name in (("fpga_gen.csim", "CsimError"), ("fpga_gen.boards", "BoardError"),
                      ("fpga_gen.estimate.model", "EstimateError"), ("fpga_gen.hls.layers", "HlsWriteError"),
                      ("fpga_gen.verify", "VerifyError")):
        try:
            errs.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def _load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{p}: {what} file not found")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:
        raise CliError(f"{p}: cannot read {what} as a .npy array ({type(e).__name__}); save it with numpy.save") from None


def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="project config YAML (see docs in fpga_gen/config.py)")
    p.add_argument("--board", help="target board (fpga-gen boards lists them)")
    p.add_argument("--part", help="FPGA part, e.g. xc7z020clg400-1")
    p.add_argument("--io", choices=["parallel", "stream"], help="io type")
    p.add_argument("--strategy", choices=["latency", "resource"])
    p.add_argument("--reuse", type=int, help="global reuse factor")
    p.add_argument("--precision", help="default precision for float tensors, e.g. 'ap_fixed<16,6>'")
    p.add_argument("--input-precision", help="precision of the model input")
    p.add_argument("--clock-period", type=float, help="clock period in ns")
    p.add_argument("--name", help="project / top function name (default: the model file's name)")
    p.add_argument("--hls4ml-config", help="an hls4ml_config.yml whose settings (precisions, reuse, strategy, "
                                           "part, clock) to apply instead of -c")


def _convert(args, tb_inputs=None):
    from .api import convert
    config = args.config
    if getattr(args, "hls4ml_config", None):
        if args.config:
            raise CliError("give either -c/--config or --hls4ml-config, not both")
        from .hls4ml_config import config_from_hls4ml
        config = config_from_hls4ml(args.hls4ml_config)
    return convert(args.model, config=config, tb_inputs=tb_inputs, board=args.board, part=args.part,
                   io=args.io, strategy=args.strategy, reuse=args.reuse, precision=args.precision,
                   input_precision=args.input_precision, clock_period=args.clock_period, name=args.name)


def cmd_inspect(args) -> int:
    project = _convert(args)
    print(project.graph.summary())
    return 0


def cmd_build(args) -> int:
    tb = _load_npy(args.tb_data, "test data") if args.tb_data else None
    project = _convert(args, tb_inputs=tb)
    out = Path(args.output) if args.output else Path("hls_projects") / project.name
    project.write(out, force=args.force)
    print(f"wrote {out} ({project.name}: {len(project.graph)} layers, io_{project.config.io_type}, "
          f"{project.config.strategy}, part {project.config.part})")
    return 0


def _compare(got: np.ndarray, ref: np.ndarray) -> dict:
    got = np.asarray(got, dtype=np.float64).reshape(len(got), -1)
    ref = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    exact = float(np.mean(np.all(got == ref, axis=1)))
    return {"samples": int(len(got)), "exact_match": exact, "max_abs_diff": float(np.max(np.abs(got - ref))),
            "argmax_agreement": float(np.mean(got.argmax(1) == ref.argmax(1)))}


def cmd_csim(args) -> int:
    from . import csim
    from .api import load_project
    project = load_project(args.project)
    if args.input:
        x = _load_npy(args.input, "input")
        y = csim.predict(project.directory, x)
        ref = project.predict(x, backend="emu")
        if args.output:
            np.save(args.output, y)
    else:
        res = csim.run_testbench(project.directory)
        expected = project.directory / "tb_data" / "tb_output_predictions.dat"
        y, ref = res.outputs, np.atleast_2d(np.loadtxt(expected, dtype=np.float64))
        if y.shape != ref.shape:
            raise CliError(f"{res.log}: the testbench wrote {y.shape[0]} results, {expected} holds {ref.shape[0]}: "
                           f"{res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'see the log'}")
    cmp = _compare(y, ref)
    print(f"csim vs emulator: {cmp['samples']} samples, exact match {cmp['exact_match'] * 100:.2f} %, "
          f"max |diff| {cmp['max_abs_diff']:.3g}, argmax agreement {cmp['argmax_agreement'] * 100:.2f} %")
    return 0 if cmp["exact_match"] == 1.0 else EXIT_MISMATCH


def cmd_predict(args) -> int:
    from .api import load_project
    project = load_project(args.project)
    x = _load_npy(args.input, "input")
    y = project.predict(x, backend=args.backend)
    np.save(args.output, np.asarray(y))
    print(f"wrote {args.output}: {np.asarray(y).shape} ({args.backend})")
    return 0


def cmd_estimate(args) -> int:
    from .estimate import estimate
    from .api import load_project
    if Path(args.model).is_dir() and (Path(args.model) / "fpga_gen_project.json").is_file():
        project = load_project(args.model)
        if args.board or args.part or args.clock_period:
            project.config = project.config.copy(board=args.board, part=args.part, clock_period=args.clock_period)
    else:
        project = _convert(args)
    est = estimate(project.graph, project.config, board=project.config.board)
    if args.json:
        print(json.dumps(est.to_json(), indent=1, sort_keys=True))
    else:
        available = None
        if project.config.board:
            from .boards import load_board
            available = load_board(project.config.board).resources
        print(est.to_markdown(available=available))
    return 0


def cmd_verify(args) -> int:
    from .api import PROJECT_FILE
    from .verify import verify_target
    x = _load_npy(args.data, "data")
    labels = _load_npy(args.labels, "labels") if args.labels else None
    given = [o for o in ("config", "board", "part", "io", "strategy", "reuse", "precision", "input_precision",
                         "clock_period", "name", "hls4ml_config") if getattr(args, o, None) is not None]
    if given and (Path(args.model) / PROJECT_FILE).is_file():
        raise CliError(f"{args.model} is a built project; --{given[0].replace('_', '-')} applies to a model file")
    result = verify_target(args.model, x, labels=labels, backend=args.backend, tolerance=args.tolerance,
                           reference_model=args.reference, convert=lambda: _convert(args), junit=args.junit)
    print(result.to_text())
    return 0 if result.passed else EXIT_MISMATCH


def cmd_boards(args) -> int:
    from .boards import list_boards, load_board
    for name in list_boards():
        b = load_board(name)
        r = b.resources
        print(f"{name:12s} {b.part:22s} LUT {r.get('LUT', 0):>7,}  FF {r.get('FF', 0):>7,}  "
              f"BRAM_18K {r.get('BRAM_18K', 0):>5,}  DSP {r.get('DSP', 0):>5,}  URAM {r.get('URAM', 0):>3}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="fpga-gen", description="Quantized Keras models to bit-exact HLS projects.")
    p.add_argument("--version", action="version", version=f"fpga-gen {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="print the layer graph with its fixed-point types")
    s.add_argument("model")
    _convert_args(s)
    s.set_defaults(fn=cmd_inspect)

    s = sub.add_parser("build", help="generate an HLS project")
    s.add_argument("model")
    s.add_argument("-o", "--output", help="output directory (default hls_projects/<name>)")
    s.add_argument("--force", action="store_true", help="overwrite an existing output directory")
    s.add_argument("--tb-data", help=".npy of inputs for the testbench vectors (default: random)")
    _convert_args(s)
    s.set_defaults(fn=cmd_build)

    s = sub.add_parser("csim", help="compile with g++ and compare C-simulation with the emulator")
    s.add_argument("project")
    s.add_argument("--input", help=".npy inputs (default: the testbench vectors written at build time)")
    s.add_argument("--output", help="save the csim outputs (.npy)")
    s.set_defaults(fn=cmd_csim)

    s = sub.add_parser("predict", help="run a generated project on inputs")
    s.add_argument("project")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--backend", default="emu", choices=["emu", "cpu", "csim"])
    s.set_defaults(fn=cmd_predict)

    s = sub.add_parser("estimate", help="resource and latency estimate, before any synthesis")
    s.add_argument("model", help="model file or generated project directory")
    s.add_argument("--json", action="store_true")
    _convert_args(s)
    s.set_defaults(fn=cmd_estimate)

    s = sub.add_parser("verify", help="run a model's project on a back end and compare it with Keras, per output")
    s.add_argument("model", metavar="MODEL|PROJECT_DIR", help="model file, or a project built with fpga-gen build")
    s.add_argument("--data", required=True, help=".npy inputs")
    s.add_argument("--labels", help=".npy labels (class indices or one-hot) for accuracy")
    s.add_argument("--backend", default="csim", choices=["csim", "native", "emu"])
    s.add_argument("--tolerance", default="exact", help="exact | lsb:N | argmax:F (default exact)")
    s.add_argument("--reference", help="Keras model file to compare a PROJECT_DIR with (default: the emulator)")
    s.add_argument("--junit", help="write the results as JUnit XML to this path")
    _convert_args(s)
    s.set_defaults(fn=cmd_verify)

    s = sub.add_parser("boards", help="list the known boards and their resources")
    s.set_defaults(fn=cmd_boards)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    errors = _known_errors()
    try:
        return args.fn(args)
    except errors as e:
        msg = " ".join(str(e).split("\n")).strip()
        print(f"fpga-gen: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fpga-gen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
