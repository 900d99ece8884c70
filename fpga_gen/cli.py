"""The `fpga-gen` command line.  Errors are one line on stderr and a non-zero exit (2)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import __version__, cache, csim
from .api import PROJECT_FILE, Project, ProjectError, auto_split_point, convert, load_project
from .boards import BoardError, list_boards, load_board
from .calibrate import CalibrationError
from .config import ConfigError
from .csim import CsimError
from .da.solve import DaError
from .da.synth import SynthError
from .emulate import EmulationError
from .estimate import estimate
from .estimate.model import EstimateError
from .frontend import FrontendError, load_graph
from .hls4ml_project import Hls4mlProjectError, is_hls4ml_project, read_hls4ml_project
from .hls.layers import HlsWriteError
from .hls4ml_config import config_from_hls4ml
from .ir.fixed import EmulationRangeError
from .ir.graph import GraphError
from .ir.types import TypeParseError
from .measure import measure_project, to_markdown
from .passes import PassError
from .rtl import check_rtl, write_rtl_project
from .sweep import (SweepError, fit, make_executor, parse_budget, parse_precisions, prepare, run_sweep, split_list,
                    split_to_fit, verify, write_outputs)
from .sweep.space import DEFAULT_MARGIN
from .templating import TemplateError
from .verify import VerifyError, verify_target
import shutil

EXIT_ERROR = 2
EXIT_MISMATCH = 1


class CliError(Exception):
    pass


def _known_errors() -> tuple:
    return (CliError, ProjectError, ConfigError, EmulationError, EmulationRangeError, FrontendError, GraphError,
            TypeParseError, PassError, TemplateError, CsimError, BoardError, EstimateError, HlsWriteError,
            VerifyError, SweepError, CalibrationError,
            Hls4mlProjectError, DaError, SynthError)


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
    p.add_argument("--strategy", choices=["latency", "resource", "distributed_arithmetic", "da"])
    p.add_argument("--reuse", type=int, help="global reuse factor")
    p.add_argument("--mult-impl", choices=["auto", "dsp", "lut"],
                   help="where the dense/conv products run: auto (the tool decides; default), dsp or lut (a BIND_OP "
                        "pragma on every product); with --fit, auto lets the fit bind layers to DSPs")
    p.add_argument("--precision", help="default precision for float tensors, e.g. 'ap_fixed<16,6>'")
    p.add_argument("--input-precision", help="precision of the model input")
    p.add_argument("--clock-period", type=float, help="clock period in ns")
    p.add_argument("--name", help="project / top function name (default: the model file's name)")
    p.add_argument("--hls4ml-config", help="an hls4ml_config.yml whose settings (precisions, reuse, strategy, "
                                           "part, clock) to apply instead of -c")


def _split_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split-at", metavar="LAYER", help="the FPGA project computes the model up to and including "
                                                      "LAYER; the rest runs on the CPU/GPU fallback (default: "
                                                      "before the first layer without an HLS template)")


def _calibrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibrate", metavar="DATA.npy", help="inputs (N, *input shape) to profile the float model on: "
                                                          "types take integer bits from the observed ranges")
    p.add_argument("--headroom-bits", type=int, help="with --calibrate: integer bits above the observed range "
                                                     "(default 1)")


def _convert(args, tb_inputs=None):
    config, hls4ml = args.config, None
    if getattr(args, "hls4ml_config", None):
        if args.config:
            raise CliError("give either -c/--config or --hls4ml-config, not both")
        # the graph hls4ml builds for that config: its types, reuse factors and weight rounding
        hls4ml = args.hls4ml_config
    if getattr(args, "headroom_bits", None) is not None and not getattr(args, "calibrate", None):
        raise CliError("--headroom-bits applies to calibration; give --calibrate DATA.npy too")
    project = convert(args.model, config=config, tb_inputs=tb_inputs, split_at=getattr(args, "split_at", None),
                   calibrate=getattr(args, "calibrate", None), headroom_bits=getattr(args, "headroom_bits", None),
                   board=args.board, part=args.part,
                   io=args.io, strategy=args.strategy, reuse=args.reuse, precision=args.precision,
                   input_precision=args.input_precision, clock_period=args.clock_period, name=args.name,
                   mult_impl=getattr(args, "mult_impl", None), **({"hls4ml": hls4ml} if hls4ml else {}))
    for line in getattr(project, "hls4ml_notes", ()):
        print(f"fpga-gen: {line}", file=sys.stderr)      # what fpga-gen builds where the config says otherwise
    return project


def cmd_inspect(args) -> int:
    project = _convert(args)
    print(project.graph.summary())
    if project.split_at:
        print(project.split_summary())
    if project.calibration is not None:
        print(project.calibration.summary())
    return 0


def _fit(args, tb_inputs=None):
    """--fit BOARD: sweep the model's designs on the board and keep the fastest that fits the budget."""
    if args.board and args.board != args.fit:
        raise CliError(f"--board {args.board} and --fit {args.fit} name different boards; give only --fit")
    if args.reuse or args.strategy:
        raise CliError("--fit chooses the reuse factors and strategy itself; drop --reuse/--strategy")
    config, calibration = args.config, None
    if args.calibrate:
        # calibrate once, then sweep with the calibrated types written into the config
        calibrated = convert(args.model, config=args.config, calibrate=args.calibrate,
                             headroom_bits=args.headroom_bits, precision=args.precision,
                             input_precision=args.input_precision, name=args.name)
        calibration = calibrated.calibration
        config = calibration.as_config(calibrated.config)
        if tb_inputs is None:
            tb_inputs = calibrated.tb_inputs
    if args.split_to_fit and args.split_at:
        raise CliError("--split-to-fit chooses the split point itself; drop --split-at")
    ev, model = prepare(args.model, args.fit, config=config, part=args.part, io=args.io,
                        precision=args.precision, input_precision=args.input_precision,
                        clock_period=args.clock_period, name=args.name, mult_impl=args.mult_impl)
    split_at = args.split_at
    try:
        budget = parse_budget(args.budget, args.margin or DEFAULT_MARGIN)
        print(f"budget: {budget.text()}")
        res, point = fit(ev, budget=budget)
    except SweepError as e:
        if not args.split_to_fit:
            raise SweepError(f"{e} (or --split-to-fit: the FPGA holds the longest head that fits, the rest runs "
                             f"on the CPU/GPU fallback)") from None
        split_at, res, point = split_to_fit(ev, budget=budget)
        print(f"the whole model does not fit: {e}")
    graph, config = ev.materialize(point)
    best = res.best()
    head = f" (the model up to {split_at!r})" if split_at and args.split_to_fit else ""
    print(f"fit {args.fit}: {len(res.rows)} designs estimated in {res.seconds:.2f} s; fastest that fits{head}: "
          f"II {best['ii_cycles']}, latency {best['latency_cycles']} cycles ({best['layers']}), "
          f"{best['budget_use'] * 100:.0f} % of the tightest budget")
    project = Project(graph, config, model=model, tb_inputs=tb_inputs,
                      split_at=split_at or auto_split_point(graph), calibration=calibration)
    project.split_parts()                     # a bad split point: one line naming it
    return project


def cmd_build(args) -> int:
    tb = _load_npy(args.tb_data, "test data") if args.tb_data else None
    if args.split_to_fit and not args.fit:
        raise CliError("--split-to-fit applies to --fit BOARD; give --fit too")
    if args.rtl:
        return _build_rtl(args)
    project = _fit(args, tb_inputs=tb) if args.fit else _convert(args, tb_inputs=tb)
    out = Path(args.output) if args.output else Path("hls_projects") / project.name
    project.write(out, force=args.force)
    print(f"wrote {out} ({project.name}: {len(project.graph)} layers, io_{project.config.io_type}, "
          f"{project.config.strategy}, part {project.config.part})")
    if project.calibration is not None:
        print(project.calibration.summary())
        print(f"calibration table: {out / 'report.md'}, {out / 'calibration.json'}")
    if project.split_at:
        print(project.split_summary())
    return 0


def _build_rtl(args) -> int:
    """--rtl: the whole model as one da4ml adder graph, a Verilog project (fpga_gen/rtl.py)."""
    if args.fit or args.split_at or args.calibrate:
        raise CliError("--rtl writes the whole model as Verilog; drop --fit/--split-at/--calibrate")
    project = _convert(args)
    out = Path(args.output) if args.output else Path("rtl_projects") / project.name
    if out.exists() and not args.force:
        raise CliError(f"{out}: output directory exists; pass --force to overwrite it")
    check_rtl(project.graph)                   # one line naming the first layer that cannot go to RTL
    if out.exists():
        shutil.rmtree(out)
    cutoff = -1 if args.latency_cutoff is None else args.latency_cutoff
    s = write_rtl_project(project.graph, project.name, out, project.config.part, project.config.clock_period,
                          cutoff, opts=project.config.da)
    stages = f"{s['pipeline_stages']} pipeline stages" if s["pipeline_stages"] else "combinational"
    print(f"wrote {out} ({project.name}: Verilog, {s['n_in']} -> {s['n_out']}, {stages}, {s['adder_levels']:g} adder "
          f"levels, da4ml cost {s['da4ml_cost']:g} LUT; Vivado: cd {out} && {s['vivado']})")
    return 0


def _compare(got: np.ndarray, ref: np.ndarray) -> dict:
    got = np.asarray(got, dtype=np.float64).reshape(len(got), -1)
    ref = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    exact = float(np.mean(np.all(got == ref, axis=1)))
    return {"samples": int(len(got)), "exact_match": exact, "max_abs_diff": float(np.max(np.abs(got - ref))),
            "argmax_agreement": float(np.mean(got.argmax(1) == ref.argmax(1)))}


def cmd_csim(args) -> int:
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
    project = load_project(args.project)
    x = _load_npy(args.input, "input")
    y = project.predict(x, backend=args.backend)
    np.save(args.output, np.asarray(y))
    print(f"wrote {args.output}: {np.asarray(y).shape} ({args.backend})")
    return 0


def cmd_estimate(args) -> int:
    if is_hls4ml_project(args.model) and not (Path(args.model) / "fpga_gen_project.json").is_file():
        project = _hls4ml_project(args)
    elif Path(args.model).is_dir() and (Path(args.model) / "fpga_gen_project.json").is_file():
        project = load_project(args.model)
        if args.calibrate:
            raise CliError(f"{args.model} is a built project; --calibrate applies to a model file")
        if args.board or args.part or args.clock_period:
            project.config = project.config.copy(board=args.board, part=args.part, clock_period=args.clock_period)
    else:
        project = _convert(args)
    est = estimate(project.head, project.config, board=project.config.board,     # the FPGA part only
                   tool=getattr(args, "tool", None))
    cal = getattr(project, "calibration", None)
    if args.json:
        out = est.to_json()
        if cal is not None:
            out["calibration"] = cal.to_json()
        print(json.dumps(out, indent=1, sort_keys=True))
    else:
        available = None
        if project.config.board:
            available = load_board(project.config.board).resources
        print(est.to_markdown(available=available))
        if cal is not None:
            print(cal.to_markdown())
    return 0


def cmd_synth(args) -> int:
    out = measure_project(args.project, args.latency_cutoff)
    print(json.dumps(out, indent=1, sort_keys=True) if args.json else to_markdown(out), end="")
    return 0


def _hls4ml_project(args):
    """``fpga-gen estimate hls4ml_prj``: the graph of an hls4ml project folder, read from its firmware."""
    given = [o for o in ("config", "hls4ml_config", "calibrate", "io", "strategy", "reuse", "precision",
                         "input_precision", "split_at") if getattr(args, o, None)]
    if given:
        raise CliError(f"{args.model} is an hls4ml project (its firmware fixes the design); "
                       f"--{given[0].replace('_', '-')} applies to a model file")
    graph, config, notes = read_hls4ml_project(args.model)
    for line in notes:
        print(f"fpga-gen: {line}", file=sys.stderr)
    config = config.copy(board=args.board, part=args.part, clock_period=args.clock_period)
    if args.board and not args.part:
        config.part = load_board(args.board).part
    return SimpleNamespace(head=graph, config=config, calibration=None)


def cmd_verify(args) -> int:
    x = _load_npy(args.data, "data")
    labels = _load_npy(args.labels, "labels") if args.labels else None
    given = [o for o in ("config", "board", "part", "io", "strategy", "reuse", "mult_impl", "precision",
                         "input_precision", "clock_period", "name", "hls4ml_config")
             if getattr(args, o, None) is not None]
    if given and (Path(args.model) / PROJECT_FILE).is_file():
        raise CliError(f"{args.model} is a built project; --{given[0].replace('_', '-')} applies to a model file")
    result = verify_target(args.model, x, labels=labels, backend=args.backend, tolerance=args.tolerance,
                           reference_model=args.reference, convert=lambda: _convert(args), junit=args.junit)
    print(result.to_text())
    return 0 if result.passed else EXIT_MISMATCH


def cmd_sweep(args) -> int:
    if args.verify and not args.data:
        raise CliError("--verify needs --data x.npy (inputs to C-simulate the designs on)")
    x = _load_npy(args.data, "input") if args.verify else None
    labels = _load_npy(args.labels, "labels") if args.verify and args.labels else None
    ios = split_list(args.io) or ["parallel"]
    ev, _ = prepare(args.model, args.board, config=args.config, io=ios[0] if len(ios) == 1 else None,
                    input_precision=args.input_precision, clock_period=args.clock_period)
    try:
        reuses = [int(r) for r in split_list(args.reuse)]
    except ValueError:
        raise CliError(f"--reuse {args.reuse!r}: give integers, e.g. 1,2,4,8") from None
    out = Path(args.output)
    executor = make_executor(args.dask_scheduler, args.workers)
    try:
        res = run_sweep(ev, precisions=parse_precisions(split_list(args.precision)) or None,
                        strategies=split_list(args.strategy) or ["latency", "resource"], reuses=reuses or None,
                        io_types=ios, budget=parse_budget(args.budget, args.margin or DEFAULT_MARGIN), out_dir=out,
                        executor=executor, progress=True)
        ver = verify(ev, res, args.verify, x, labels, out_dir=out, executor=executor) if args.verify else None
    finally:
        executor.close()
    files = write_outputs(res, out, ver)
    best = res.best()
    print(f"{len(res.rows)} designs ({res.evaluated} estimated now) in {res.seconds:.2f} s: "
          f"{len(res.fitting())} fit {res.board} within {res.budget.text()}, {len(res.pareto())} on the Pareto front")
    if best:
        print(f"fastest that fits: II {best['ii_cycles']}, latency {best['latency_cycles']} cycles, DSP {best['DSP']}, "
              f"LUT {best['LUT']}, FF {best['FF']}, BRAM_18K {best['BRAM_18K']} "
              f"({best['precision']}, {best['layers']}); "
              f"II lower bound from the budget's multipliers {res.bound.get('ii')}")
    else:
        print(res.infeasible_message())
    for v in ver or []:
        acc = f", accuracy {v['accuracy'] * 100:.2f} %" if "accuracy" in v else ""
        print(f"csim II {v['ii_cycles']} ({v['layers']}): exact match {v['exact_match'] * 100:.2f} %, "
              f"argmax agreement {v['argmax_agreement'] * 100:.2f} %{acc}")
    print(f"wrote {files['html']}, {files['csv'].name}, {files['json'].name}, {files['png'].name}")
    return 0


def cmd_boards(args) -> int:
    for name in list_boards():
        b = load_board(name)
        r = b.resources
        print(f"{name:12s} {b.part:22s} LUT {r.get('LUT', 0):>7,}  FF {r.get('FF', 0):>7,}  "
              f"BRAM_18K {r.get('BRAM_18K', 0):>5,}  DSP {r.get('DSP', 0):>5,}  URAM {r.get('URAM', 0):>3}")
    return 0


def cmd_cache(args) -> int:
    root = cache.cache_root()
    try:
        cap = cache.max_bytes()
    except ValueError as e:
        raise CliError(str(e)) from None
    if args.clear:
        n, freed = cache.clear(root)
        print(f"{root}: removed {n} entries, {freed / 2 ** 20:.1f} MB")
        return 0
    es = cache.entries(root)
    cap_text = f"{cap / 2 ** 20:.0f} MB (FPGA_GEN_CACHE_MAX_MB)" if cap else "none (FPGA_GEN_CACHE_MAX_MB=0)"
    print(f"{root}: {len(es)} entries, {sum(s for _, s, _ in es) / 2 ** 20:.1f} MB; cap {cap_text}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fpga-gen", description="Quantized Keras models to bit-exact HLS projects.")
    p.add_argument("--version", action="version", version=f"fpga-gen {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="print the layer graph with its fixed-point types")
    s.add_argument("model")
    _convert_args(s)
    _split_arg(s)
    _calibrate_args(s)
    s.set_defaults(fn=cmd_inspect)

    s = sub.add_parser("build", help="generate an HLS project")
    s.add_argument("model")
    s.add_argument("-o", "--output", help="output directory (default hls_projects/<name>)")
    s.add_argument("--force", action="store_true", help="overwrite an existing output directory")
    s.add_argument("--tb-data", help=".npy of inputs for the testbench vectors (default: random)")
    s.add_argument("--fit", metavar="BOARD", help="choose the fastest design (reuse factors, strategy) that fits "
                                                  "BOARD within --budget")
    s.add_argument("--budget", help="with --fit: fractions of the board, e.g. dsp=0.8,lut=0.7,ff=0.7,bram=0.8")
    s.add_argument("--margin", help="with --fit: the estimator's error margin taken off the budget: median "
                                    "(default: its median leave-one-source-out error per resource), p90, none, or "
                                    "a fraction such as 0.2")
    s.add_argument("--split-to-fit", action="store_true",
                   help="with --fit: when the whole model does not fit, the FPGA project holds the longest head that "
                        "fits and the rest runs on the CPU/GPU fallback")
    s.add_argument("--rtl", action="store_true", help="write the whole model as a Verilog project (da4ml adder "
                                                     "graphs: dense + relu/linear) instead of an HLS project")
    s.add_argument("--latency-cutoff", type=float, help="with --rtl: a pipeline register every this many adder "
                                                        "levels (default -1: combinational)")
    _convert_args(s)
    _split_arg(s)
    _calibrate_args(s)
    s.set_defaults(fn=cmd_build)

    s = sub.add_parser("sweep", help="estimate many designs on a board: budget filter, Pareto front, report")
    s.add_argument("model")
    s.add_argument("--board", required=True, help="target board (fpga-gen boards lists them)")
    s.add_argument("--reuse", help="global reuse factors, e.g. 1,2,4,8 (default: powers of two)")
    s.add_argument("--precision", help="default precisions, e.g. 'ap_fixed<16,6>,ap_fixed<12,4>'; "
                                       "'DEFAULT/WEIGHT' also sets the weight precision")
    s.add_argument("--strategy", help="latency,resource (default both)")
    s.add_argument("--io", help="io types: parallel, stream or parallel,stream (default parallel)")
    s.add_argument("--budget", help="fractions of the board (default dsp=0.8,lut=0.7,ff=0.7,bram=0.8)")
    s.add_argument("--margin", help="the estimator's error margin taken off the budget: median (default: its "
                                    "median leave-one-source-out error per resource), p90, none, or a fraction")
    s.add_argument("-o", "--output", default="sweep", help="output folder; its sweep.sqlite makes a rerun resume")
    s.add_argument("--verify", type=int, default=0, metavar="N", help="build and C-simulate the best N designs")
    s.add_argument("--data", help="with --verify: inputs (.npy)")
    s.add_argument("--labels", help="with --verify: labels (.npy) for accuracy")
    s.add_argument("--workers", type=int, help="local worker processes (default: the CPU count)")
    s.add_argument("--dask-scheduler", metavar="tcp://HOST:PORT", help="run on a Dask distributed cluster")
    s.add_argument("-c", "--config", help="project config YAML")
    s.add_argument("--input-precision", help="precision of the model input")
    s.add_argument("--clock-period", type=float, help="clock period in ns")
    s.set_defaults(fn=cmd_sweep)

    s = sub.add_parser("csim", help="compile with g++ and compare C-simulation with the emulator")
    s.add_argument("project")
    s.add_argument("--input", help=".npy inputs (default: the testbench vectors written at build time)")
    s.add_argument("--output", help="save the csim outputs (.npy)")
    s.set_defaults(fn=cmd_csim)

    s = sub.add_parser("predict", help="run a generated project on inputs")
    s.add_argument("project")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--backend", default="emu", choices=["emu", "cpu", "gpu", "csim", "native", "split", "split-csim",
                                                      "split-gpu"])
    s.set_defaults(fn=cmd_predict)

    s = sub.add_parser("estimate", help="resource and latency estimate, before any synthesis")
    s.add_argument("model", help="model file, generated project directory or hls4ml project directory")
    s.add_argument("--json", action="store_true")
    s.add_argument("--tool", help="the HLS tool whose C synthesis to predict: vitis[-VERSION] (default, the flow "
                                  "fpga-gen writes) or vivado[-VERSION] (Vivado HLS 2019-2020, hls4ml's older flow)")
    _convert_args(s)
    _split_arg(s)
    _calibrate_args(s)
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

    s = sub.add_parser("synth", help="yosys synth_xilinx of a project's distributed-arithmetic layers (their "
                                     "da4ml Verilog): LUT/FF/CARRY/DSP beside the estimate in report.md/report.json")
    s.add_argument("project")
    s.add_argument("--latency-cutoff", type=float, help="pipeline register every this many adder levels "
                                                        "(default: the layer's da.latency_cutoff, -1 combinational)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_synth)

    s = sub.add_parser("boards", help="list the known boards and their resources")
    s.set_defaults(fn=cmd_boards)

    s = sub.add_parser("cache", help="the compile cache: its size and cap, or --clear to empty it")
    s.add_argument("--clear", action="store_true", help="remove every compiled library, object and cached project")
    s.set_defaults(fn=cmd_cache)
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
