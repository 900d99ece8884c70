"""Design-space sweeps and automatic fit to a board.

    ev, model = prepare("model.h5", board="pynq-z2")          # the frontend runs once
    res = run_sweep(ev, budget="dsp=0.8,lut=0.7", out_dir="sweep_out", progress=True)
    write_outputs(res, "sweep_out")                          # sweep.csv/json, pareto.png, report.html
    res, point = fit(ev, budget="dsp=0.8,lut=0.7")           # the fastest design that fits
    graph, config = ev.materialize(point)                    # -> fpga_gen.api.Project(graph, config).write(...)

The search (global grid plus an II-targeted per-layer search) is described in :mod:`fpga_gen.sweep.space`, the
II lower bound in :mod:`fpga_gen.sweep.bound`, the resumable store in :mod:`fpga_gen.sweep.store` and the
executors (inline, local processes, Dask) in :mod:`fpga_gen.sweep.executors`.
"""

from .bound import ii_lower_bound
from .evaluate import Evaluator
from .executors import DaskExecutor, InlineExecutor, LocalExecutor, make_executor
from .pareto import pareto_front
from .report import write_outputs
from .run import SweepResult, fit, parse_precisions, prepare, run_sweep, split_list, split_points, split_to_fit, verify
from .space import Budget, Point, SweepError, parse_budget

__all__ = ["prepare", "run_sweep", "fit", "split_to_fit", "split_points", "verify", "write_outputs", "SweepResult", "SweepError", "Budget",
           "Point", "parse_budget", "parse_precisions", "split_list", "pareto_front", "ii_lower_bound",
           "Evaluator", "InlineExecutor", "LocalExecutor", "DaskExecutor", "make_executor"]
