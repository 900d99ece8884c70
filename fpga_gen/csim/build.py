"""Compile a written HLS project with g++: the testbench executable and the shared library.

Two translation units per project: the design (``firmware/<top>.cpp``, with the batch entry
point ``<top>_bridge.cpp`` pulled in by ``-include``) and the testbench ``<top>_test.cpp``.
The shared library links the design object alone; the executable links both.  Everything
is cached under ``$FPGA_GEN_CACHE_DIR`` (default ``~/.cache/fpga-gen``) by a hash of the
sources, the compiler's identity and the flags, so an identical project is compiled once.

Speed (measured on a 16-64-32-32-5 MLP, 2 cores): the weights headers give g++ double
literals outside synthesis (see templates/hls/firmware/weights.h.j2): thousands of ap_fixed
initialisers cost GCC ~15 s of exception clean-up code and inlined constructors, the double
arrays almost nothing; ``-O1`` compiles ~1-2 s faster than ``-O2``/``-O3``, whose code runs only
5-7 % faster (per CPU, 10,000 samples, 2026-11-25: digits MLP 19.1k/s at -O1, 20.2k/s -O2, 20.4k/s -O3;
16-64-32-32-5 MLP 12.5k, 13.1k, 13.3k; -march=native no better: 84 % of the time is the ap_fixed
arithmetic inside nnet::dense_latency, 0.2 % the batch loop of the bridge); a precompiled
header of ap_fixed.h and the nnet_utils kernels (built once per cache from the same files every
project copies) saves ~0.6 s per unit; the two units compile in parallel.

Measured on this 2-core machine, paired with hls4ml 1.3's build_lib.sh of the same MLP:
library 2.9-3.2 s CPU (3.5-5.6 s wall under load) against 6.4-6.7 s CPU (8.3-12 s wall);
library + testbench 3.6-4.7 s CPU; the first build in a fresh cache adds ~6 s for the
precompiled header; a cached build is ~10 ms (hashing the sources).

The native library (``native=True``) of the benchmark models (digits MLP, 16-64-32-32-5 MLP, digits
CNN) is one unit of ~1.1 s g++ CPU (2026-11-26): every layer runs fpga_gen_native.h's integer code, so
parameters.h leaves out the nnet headers and configs, and what is left is ap_fixed.h (~0.65 s to parse),
the types and the kernels.  It does not build the precompiled header (~2.5 s CPU to save ~0.55 s on its
one unit; on a shared 2-core machine that was the cold build's wall time) but uses one a csim build left.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_root, maybe_prune, touch
from ..templating import render

__all__ = ["CsimBuild", "CsimError", "CsimCompileError", "build", "cache_dir", "find_top", "CXXFLAGS"]

# -fno-gnu-unique: static locals of template functions (the softmax tables) would otherwise be
# STB_GNU_UNIQUE symbols, which the loader merges across every library of the process: two
# projects with the same layer names would share one table.
CXXFLAGS = ("-std=c++14", "-O1", "-fPIC", "-fvisibility-inlines-hidden", "-fno-gnu-unique", "-g0", "-pipe")
BUILDER_VERSION = "1"

# What the precompiled header holds: the copied hls4ml headers every project uses, and
# the system headers of the testbench.
PCH_HEADERS = ("ap_fixed.h", "ap_int.h", "nnet_utils/nnet_dense.h", "nnet_utils/nnet_activation.h")
PCH_SYSTEM_HEADERS = ("cstdio", "cstdlib", "fstream", "iostream", "sstream", "string", "vector")
PCH_DIRS = ("ap_types", "nnet_utils")


class CsimError(RuntimeError):
    pass


class CsimCompileError(CsimError):
    def __init__(self, message: str, log: Path):
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class CsimBuild:
    project_dir: Path
    top: str
    library: Path | None          # shared library with fpga_gen_predict (None if not requested)
    testbench: Path | None        # testbench executable (None if not requested)
    compiled: tuple               # the units compiled by this call ('design', 'testbench'); () = all cached
    seconds: float                # wall time of this call


cache_dir = cache_root            # the compile cache (fpga_gen.cache), under the name fpga_gen.csim always had


@functools.lru_cache(maxsize=None)
def _compiler() -> tuple[str, str]:
    """(path of g++, identity string for cache keys)."""
    cxx = shutil.which("g++")
    if cxx is None:
        raise CsimError("g++ was not found on PATH; C simulation needs it: install it (apt-get install g++)")
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
        machine = subprocess.run([cxx, "-dumpmachine"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise CsimError(f"{cxx} does not run ({e}); reinstall g++ (apt-get install g++)") from None
    return cxx, version.splitlines()[0].strip() + " " + machine.strip()


def find_top(project_dir: Path) -> str:
    """The top-function name: the project holds exactly one ``<top>_bridge.cpp``."""
    bridges = sorted(project_dir.glob("*_bridge.cpp"))
    if len(bridges) != 1:
        raise CsimError(f"{project_dir} is not an fpga-gen HLS project: expected one *_bridge.cpp, "
                        f"found {len(bridges)}")
    top = bridges[0].name[: -len("_bridge.cpp")]
    if not (project_dir / "firmware" / f"{top}.cpp").is_file():
        raise CsimError(f"{project_dir}: firmware/{top}.cpp is missing")
    return top


def _hash_tree(h, root: Path, rel_to: Path) -> None:
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(p.relative_to(rel_to).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")


def _key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\1")
    return h.hexdigest()[:32]


def _atomic_place(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


class _Jobs:
    """Compiler processes run side by side; stderr of each goes to the build log."""

    def __init__(self, log: Path):
        self.log = log
        self.procs = []

    def start(self, name: str, cmd: list[str], cwd: Path):
        f = tempfile.TemporaryFile()
        self.procs.append((name, cmd, subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT), f))

    def wait(self, project_dir: Path) -> None:
        failed = []
        text = []
        for name, cmd, proc, f in self.procs:
            rc = proc.wait()
            f.seek(0)
            out = f.read().decode(errors="replace")
            f.close()
            text.append(f"$ (cd {project_dir} && {' '.join(cmd)})\n{out}[exit {rc}]\n")
            if rc != 0:
                failed.append(name)
        self.procs = []
        if failed:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self.log.write_text("\n".join(text))
            raise CsimCompileError(f"g++ failed on {', '.join(failed)} of {project_dir}; log: {self.log}", self.log)


class _PchJob:
    """The precompiled header for these copies of ap_types/ and nnet_utils/: ``path`` when it is cached;
    otherwise ``start()`` builds it in the background (a cold build compiles its units without it
    meanwhile, so its wall time is not the header's plus the units') and ``finish()`` places it."""

    def __init__(self, cxx: str, ident: str, firmware: Path):
        self.cxx, self.firmware, self.proc, self.tmp, self.path = cxx, firmware, None, None, None
        h = hashlib.sha256()
        for d in PCH_DIRS:
            if not (firmware / d).is_dir():
                self.final = None
                return
            _hash_tree(h, firmware / d, firmware)
        self.header = render("hls/csim_pch.h.j2", headers=PCH_HEADERS, system_headers=PCH_SYSTEM_HEADERS)
        self.key = _key(BUILDER_VERSION, ident, CXXFLAGS, self.header, h.hexdigest())
        self.final = cache_dir() / "csim" / "pch" / self.key
        if (self.final / "fpga_gen_pch.h.gch").is_file():
            self.path = self.final / "fpga_gen_pch.h"
            touch(self.final)

    def start(self) -> None:
        if self.final is None or self.path is not None:
            return
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.key}.", dir=self.final.parent))
        self.tmp.chmod(0o755)
        for d in PCH_DIRS:
            shutil.copytree(self.firmware / d, self.tmp / d)
        (self.tmp / "fpga_gen_pch.h").write_text(self.header)
        cmd = [self.cxx, *CXXFLAGS, "-Iap_types", "-I.", "-x", "c++-header", "fpga_gen_pch.h", "-o", "fpga_gen_pch.h.gch"]
        self.proc = subprocess.Popen(cmd, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> None:
        """Wait for the background build and place it (a failed one is not fatal: builds go on without)."""
        if self.proc is None:
            return
        try:
            if self.proc.wait() == 0:
                try:
                    os.rename(self.tmp, self.final)
                except OSError:      # another process placed it first
                    pass
        finally:
            self.proc = None
            shutil.rmtree(self.tmp, ignore_errors=True)


_PCH_TROUBLE = re.compile(r"internal compiler error|precompiled header|\.gch")


def _compile(cxx, pch_flags, units, todo, tmp_objs, project, log, defines=()) -> None:
    jobs = _Jobs(log)
    for n in todo:
        src = units[n][0]
        # the precompiled header must come first; the sources' own -include after it
        jobs.start(n, [cxx, *CXXFLAGS, *defines, *pch_flags, "-Ifirmware/ap_types", "-Ifirmware", "-c", src[0],
                       *src[1:], "-o", str(tmp_objs[n])], project)
    jobs.wait(project)


def build(project_dir, library: bool = True, testbench: bool = True, native: bool = False) -> CsimBuild:
    """Compile what is asked for (both by default), reusing the cache; return the artifact paths.

    Two units: the design (``firmware/<top>.cpp`` with ``<top>_bridge.cpp`` pulled in by
    ``-include``, so the heavy headers and kernels are compiled once) and the testbench
    ``<top>_test.cpp``.  The library links the design alone; the executable links both.
    ``native``: the native back end's library instead (library only): the design compiled with
    ``-DFPGA_GEN_NATIVE``, so dense, conv2d, relu, linear, stable softmax and pooling layers run the integer
    kernels of fpga_gen_native.h; it uses a cached precompiled header but does not build one.
    """
    if native and testbench:
        raise CsimError("the native build is a library only; call build(..., testbench=False, native=True)")
    defines = ("-DFPGA_GEN_NATIVE",) if native else ()
    t0 = time.perf_counter()
    project = Path(project_dir).resolve()
    if not project.is_dir():
        raise CsimError(f"{project}: no such project folder")
    top = find_top(project)
    cxx, ident = _compiler()

    h = hashlib.sha256()
    _hash_tree(h, project / "firmware", project)
    fw_hash = h.hexdigest()
    bridge = f"{top}_bridge.cpp"
    design_key = _key(BUILDER_VERSION, ident, CXXFLAGS, *defines, top, fw_hash, (project / bridge).read_bytes())
    units = {"design": ([f"firmware/{top}.cpp", "-include", bridge], design_key)}
    if testbench:
        test_src = project / f"{top}_test.cpp"
        if not test_src.is_file():
            raise CsimError(f"{project}: {top}_test.cpp is missing")
        units["testbench"] = ([test_src.name], _key(BUILDER_VERSION, ident, CXXFLAGS, top, fw_hash,
                                                    test_src.read_bytes()))

    root = cache_dir() / "csim"
    objs = {name: root / "obj" / f"{key}.o" for name, (_, key) in units.items()}
    lib_path = root / "lib" / design_key / f"lib{top}.so" if library else None
    exe_path = root / "bin" / _key(design_key, units["testbench"][1]) / f"{top}_test" if testbench else None
    wanted = {"design": (library and not lib_path.is_file()) or (testbench and not exe_path.is_file()),
              "testbench": testbench and not exe_path.is_file()}
    todo = [n for n in units if wanted[n] and not objs[n].is_file()]

    if todo:
        pch_job = _PchJob(cxx, ident, project / "firmware")
        pch_flags = ["-include", str(pch_job.path)] if pch_job.path else []
        if not native:
            # not cached: built beside the units, for the next build.  Not by a native build: its one unit
            # saves ~0.55 s CPU with the header but building the header costs ~2.5 s, which on two cores
            # shared with anything else is the cold build's wall time (a csim build leaves one for it)
            pch_job.start()
        (root / "obj").mkdir(parents=True, exist_ok=True)
        tmp_objs = {n: Path(tempfile.mkstemp(suffix=".o", prefix=".", dir=root / "obj")[1]) for n in todo}
        log = root / "logs" / f"{design_key}.log"
        try:
            try:
                _compile(cxx, pch_flags, units, todo, tmp_objs, project, log, defines)
            except CsimCompileError as e:
                # a precompiled header GCC chokes on (it may crash rather than ignore it): retry once without
                if not pch_flags or not _PCH_TROUBLE.search(e.log.read_text(errors="replace")):
                    raise
                _compile(cxx, [], units, todo, tmp_objs, project, log, defines)
            for n in todo:
                _atomic_place(tmp_objs[n], objs[n])
        finally:
            pch_job.finish()
            for p in tmp_objs.values():
                p.unlink(missing_ok=True)

    links = []
    if library and not lib_path.is_file():
        links.append((lib_path, [cxx, "-shared", str(objs["design"])]))
    if testbench and not exe_path.is_file():
        links.append((exe_path, [cxx, str(objs["design"]), str(objs["testbench"])]))
    if links:
        jobs = _Jobs(root / "logs" / f"{design_key}.link.log")
        tmps = []
        for final, cmd in links:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
            tmps.append((tmp, final))
            jobs.start("link", cmd + ["-o", str(tmp)], project)
        try:
            jobs.wait(project)
            for tmp, final in tmps:
                _atomic_place(tmp, final)
        finally:
            for tmp, _ in tmps:
                tmp.unlink(missing_ok=True)
    # what this build used is the most recently used; then the cache is kept under its cap
    touch(*objs.values(),
          *[p.parent for p in (lib_path, exe_path) if p is not None])
    maybe_prune()
    return CsimBuild(project, top, lib_path, exe_path, tuple(todo), time.perf_counter() - t0)
