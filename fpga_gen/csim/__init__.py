"""g++ C simulation of a written HLS project: the testbench and batch prediction."""
from .build import CsimBuild, CsimCompileError, CsimError, build, cache_dir
from .run import TestbenchResult, predict, run_testbench

__all__ = ["build", "predict", "run_testbench", "CsimBuild", "TestbenchResult", "CsimError", "CsimCompileError",
           "cache_dir"]
