"""Verification: run a project on a back end and compare it with a reference, output by output.

    from fpga_gen.verify import verify
    result = verify(project, x, labels=y, backend="csim", tolerance="lsb:1")
    print(result.to_text()); result.passed; result.write_junit("verify.xml")

The reference is the project's Keras model when it has one (``convert`` keeps it), a Keras model or
arrays given as ``reference``, or else the bit-exact emulator (the result says which).  Differences
are counted in LSBs of the output's fixed-point type: 1 LSB = 2**-frac of that type.

Tolerances: ``exact`` (every value identical), ``lsb:N`` (no value further than N LSBs from the
reference), ``argmax:F`` (the arg-max class agrees on at least a fraction F of the samples).
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import csim
from .api import PROJECT_FILE, load_project
from .api import convert
from .api import rerender_report
from .frontend import load_keras_model
from .progress import progress
from .report import read_json

__all__ = ["verify", "verify_target", "Tolerance", "VerifyError", "VerifyResult", "OutputResult",
           "compare_output", "save_verification", "VERIFICATION_FILE", "BACKENDS"]

VERIFICATION_FILE = "verification.json"
BACKENDS = ("csim", "native", "emu", "gpu")
CHUNK_MIN = 2048            # samples per back-end call when showing progress


class VerifyError(ValueError):
    """Verification could not run (bad tolerance, shapes that do not match, ...): not a mismatch."""


# ---------------------------------------------------------------------------------------------- tolerance
@dataclass(frozen=True)
class Tolerance:
    kind: str               # exact | lsb | argmax
    value: float = 0.0

    @classmethod
    def parse(cls, text) -> "Tolerance":
        if isinstance(text, Tolerance):
            return text
        s = str(text).strip().lower()
        if s == "exact":
            return cls("exact", 0.0)
        kind, _, val = s.partition(":")
        try:
            v = float(val)
        except ValueError:
            v = math.nan
        if kind == "lsb" and v >= 0 and math.isfinite(v):
            return cls("lsb", v)
        if kind == "argmax" and 0 <= v <= 1:
            return cls("argmax", v)
        raise VerifyError(f"tolerance {text!r}: use exact, lsb:N (N >= 0 LSBs) or argmax:F (0 <= F <= 1, "
                          f"the fraction of samples whose arg-max must agree)")

    def __str__(self) -> str:
        return "exact" if self.kind == "exact" else f"{self.kind}:{self.value:g}"


# ---------------------------------------------------------------------------------------------- results
@dataclass
class OutputResult:
    name: str
    type: str                       # C++ spelling of the output type
    lsb: float                      # value of one LSB
    samples: int
    exact_match: float              # fraction of samples whose every value is identical
    max_lsb: float                  # worst |got - expected| in LSBs (inf for NaN/inf)
    argmax_agreement: float
    passed: bool
    accuracy: float | None = None           # backend vs labels
    reference_accuracy: float | None = None  # reference vs labels
    worst: dict | None = None               # {sample, index, expected, got, lsb}
    first_argmax_mismatch: dict | None = None
    message: str = ""                        # why it failed ('' when it passed)


@dataclass
class VerifyResult:
    target: str
    backend: str
    reference: str                  # keras | emu | given
    tolerance: str
    outputs: list[OutputResult]
    seconds: float
    note: str = ""
    timestamp: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def failures(self) -> list[OutputResult]:
        return [o for o in self.outputs if not o.passed]

    def to_json(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return _finite(d)

    @classmethod
    def from_json(cls, d: dict) -> "VerifyResult":
        outs = [OutputResult(**{k: v for k, v in o.items() if k in OutputResult.__dataclass_fields__})
                for o in d["outputs"]]
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "outputs"}
        return cls(outputs=outs, **kw)

    def to_text(self) -> str:
        lines = [f"verify {self.target}: {self.backend} vs {self.reference}, tolerance {self.tolerance}"
                 + (f" ({self.note})" if self.note else "")]
        for o in self.outputs:
            acc = ""
            if o.accuracy is not None:
                acc = f", accuracy {o.accuracy * 100:.2f} %"
                if o.reference_accuracy is not None:
                    acc += f" ({self.reference} {o.reference_accuracy * 100:.2f} %)"
            lines.append(f"  {o.name} {o.type}: {o.samples} samples, exact match {o.exact_match * 100:.2f} %, "
                         f"worst diff {_fmt_lsb(o.max_lsb)} LSB, argmax agreement {o.argmax_agreement * 100:.2f} %"
                         f"{acc}: {'PASS' if o.passed else 'FAIL'}")
            if o.message:
                lines.append(f"    {o.message}")
        lines.append(("PASS" if self.passed else "FAIL") + f" ({self.seconds:.1f} s)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ JUnit
    def to_junit(self) -> str:
        """JUnit XML as Jenkins, GitLab and GitHub test reporters read it: one testcase per output."""
        suite_name = f"fpga-gen verify {self.target}"
        n, nf = len(self.outputs), len(self.failures)
        root = ET.Element("testsuites", name="fpga-gen verify", tests=str(n), failures=str(nf), errors="0",
                          time=f"{self.seconds:.3f}")
        suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(n), failures=str(nf), errors="0",
                              skipped="0", time=f"{self.seconds:.3f}", timestamp=self.timestamp,
                              hostname=_hostname(), id="0", package="fpga_gen.verify")
        props = ET.SubElement(suite, "properties")
        for k, v in (("backend", self.backend), ("reference", self.reference), ("tolerance", self.tolerance),
                     ("note", self.note)):
            ET.SubElement(props, "property", name=k, value=str(v))
        per = self.seconds / max(1, n)
        for o in self.outputs:
            case = ET.SubElement(suite, "testcase", name=f"{o.name}: {self.backend} vs {self.reference}",
                                 classname=f"fpga_gen.verify.{_classname(self.target)}", time=f"{per:.3f}")
            if not o.passed:
                f = ET.SubElement(case, "failure", message=o.message, type="ToleranceExceeded")
                f.text = _case_text(o)
        ET.SubElement(suite, "system-out").text = self.to_text()
        ET.SubElement(suite, "system-err").text = ""
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    def write_junit(self, path) -> Path:
        p = Path(path)
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_junit(), encoding="utf-8")
        return p


def junit_error(target: str, message: str) -> str:
    """JUnit XML for a verification that could not run (one testcase with an <error>)."""
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name="fpga-gen verify", tests="1", failures="0", errors="1", time="0")
    suite = ET.SubElement(root, "testsuite", name=f"fpga-gen verify {target}", tests="1", failures="0",
                          errors="1", skipped="0", time="0", timestamp=ts, hostname=_hostname(), id="0",
                          package="fpga_gen.verify")
    ET.SubElement(suite, "properties")
    case = ET.SubElement(suite, "testcase", name="verify", classname=f"fpga_gen.verify.{_classname(target)}",
                         time="0")
    ET.SubElement(case, "error", message=message, type="VerifyError").text = message
    ET.SubElement(suite, "system-out").text = ""
    ET.SubElement(suite, "system-err").text = message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------- compare
def compare_output(name: str, out_type, got, expected, tolerance, labels=None, reference_name: str = "reference",
                   backend: str = "backend") -> OutputResult:
    """Compare one output (batch, ...) of a back end with its reference; ``out_type`` a FixedType."""
    tol = Tolerance.parse(tolerance)
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    n = len(got)
    if exp.shape != got.shape:
        if exp.size == got.size and len(exp) == n:
            exp = exp.reshape(got.shape)
        else:
            raise VerifyError(f"output {name!r}: {backend} gave shape {got.shape}, the {reference_name} "
                              f"{exp.shape}")
    g = got.reshape(n, -1)
    e = exp.reshape(n, -1)
    lsb = float(out_type.step)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(g - e) / lsb
    same = (g == e) | (np.isnan(g) & np.isnan(e))
    d = np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))
    exact = float(np.mean(np.all(same, axis=1))) if n else 1.0
    max_lsb = float(d.max()) if d.size else 0.0
    if g.shape[1] > 1 and n:
        ga, ea = np.argmax(np.nan_to_num(g, nan=-np.inf), 1), np.argmax(np.nan_to_num(e, nan=-np.inf), 1)
    else:  # one value per sample: the "class" is its sign
        ga, ea = (g[:, 0] > 0).astype(int) if n else g, (e[:, 0] > 0).astype(int) if n else e
    agree = ga == ea
    argmax = float(np.mean(agree)) if n else 1.0

    worst = None
    if max_lsb > 0:
        s, i = np.unravel_index(int(np.argmax(d)), d.shape)
        worst = {"sample": int(s), "index": _index(int(i), got.shape[1:]), "expected": float(e[s, i]),
                 "got": float(g[s, i]), "lsb": float(d[s, i])}
    first_am = None
    if not agree.all():
        s = int(np.argmin(agree))
        first_am = {"sample": s, "expected": int(ea[s]), "got": int(ga[s])}

    if tol.kind == "exact":
        passed = exact == 1.0
    elif tol.kind == "lsb":
        passed = max_lsb <= tol.value
    else:
        passed = argmax >= tol.value
    acc = ref_acc = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim > 1 and lab.shape[1:] == got.shape[1:] and lab.size > len(lab):
            lab = lab.reshape(len(lab), -1).argmax(1)
        lab = lab.reshape(-1)
        if len(lab) != n:
            raise VerifyError(f"labels: {len(lab)} labels for {n} samples")
        acc = float(np.mean(ga == lab)) if n else None
        ref_acc = float(np.mean(ea == lab)) if n else None
    res = OutputResult(name=name, type=out_type.cpp(), lsb=lsb, samples=n, exact_match=exact, max_lsb=max_lsb,
                       argmax_agreement=argmax, passed=passed, accuracy=acc, reference_accuracy=ref_acc,
                       worst=worst, first_argmax_mismatch=first_am)
    if not passed:
        res.message = failure_message(res, tol, backend=backend, reference=reference_name)
    return res


def failure_message(o: OutputResult, tolerance, backend: str = "backend", reference: str = "reference") -> str:
    """One readable line: which output, which sample, expected vs got, in LSBs."""
    tol = Tolerance.parse(tolerance)
    frac = -int(round(math.log2(o.lsb))) if o.lsb > 0 else 0
    differ = o.samples - int(round(o.exact_match * o.samples))
    if tol.kind == "argmax" and o.first_argmax_mismatch:
        m = o.first_argmax_mismatch
        return (f"output {o.name!r}: argmax agreement {o.argmax_agreement * 100:.2f} % < "
                f"{tol.value * 100:g} %; first at sample {m['sample']}: expected class {m['expected']} "
                f"({reference}), got class {m['got']} ({backend})")
    w = o.worst or {}
    where = f"sample {w.get('sample')}" + (f", element {w['index']}" if w.get("index") not in (None, ()) else "")
    limit = "exact" if tol.kind == "exact" else f"<= {tol.value:g} LSB"
    return (f"output {o.name!r} ({o.type}): {where}: expected {w.get('expected'):.10g} ({reference}), "
            f"got {w.get('got'):.10g} ({backend}), {_fmt_lsb(w.get('lsb', 0.0))} LSB off "
            f"(1 LSB = 2^-{frac}); {differ} of {o.samples} samples differ; tolerance {limit}")


# ---------------------------------------------------------------------------------------------- run
def verify(project, x, labels=None, backend: str = "csim", tolerance="exact", reference=None,
           target: str | None = None, show_progress: bool | None = None) -> VerifyResult:
    """Run ``project`` on ``x`` with ``backend`` and compare every output with the reference.

    ``reference``: None (the project's Keras model if it has one, else the emulator), ``"emu"``,
    a Keras model, or the expected outputs (an array, or a list of arrays for several outputs).
    """

    tol = Tolerance.parse(tolerance)
    if backend not in BACKENDS:
        raise VerifyError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    x = np.asarray(x, dtype=np.float64) if not isinstance(x, (list, tuple)) else x
    n = len(x[0]) if isinstance(x, (list, tuple)) else len(x)
    if n == 0:
        raise VerifyError("no samples to verify (the data array is empty)")
    for node, a in zip(project.graph.input_nodes(), x if isinstance(x, (list, tuple)) else [x]):
        if tuple(np.shape(a)[1:]) != tuple(node.shape):
            raise VerifyError(f"input {node.name!r} expects shape (batch, {', '.join(map(str, node.shape))}), "
                              f"the data has {np.shape(a)}")
    t0 = time.perf_counter()
    enabled = show_progress
    note = ""
    if reference is None:
        reference = getattr(project, "model", None)
        if reference is None:
            reference = "emu"
            note = "no Keras model recorded for this project: compared with the bit-exact emulator"
    if isinstance(reference, str) and reference in ("emu", "cpu"):
        ref_name = "emu"
        expected = _outputs(_chunked(lambda c: project.predict(c, backend="emu"), x, n, "emulator", enabled))
    elif hasattr(reference, "predict") and not isinstance(reference, np.ndarray):
        ref_name = getattr(reference, "reference_name", "keras")      # "qonnx": execute_onnx on an .onnx model
        expected = _outputs(_chunked(lambda c: reference.predict(c, verbose=0), x, n, ref_name, enabled))
    else:
        ref_name = "given"
        expected = _outputs(reference)

    if backend in ("csim", "native"):
        with progress(None, "csim build", enabled=enabled):
            csim.build(project._built_directory(), library=True, testbench=False, native=backend == "native")
    got = _outputs(_chunked(lambda c: project.predict(c, backend=backend), x, n, f"verify {backend}", enabled))

    out_nodes = project.graph.output_nodes()
    if len(got) != len(out_nodes) or len(expected) != len(out_nodes):
        raise VerifyError(f"the project has {len(out_nodes)} outputs; {backend} gave {len(got)}, the "
                          f"{ref_name} reference {len(expected)}")
    results = [compare_output(node.name, node.types["result"], g, e, tol, labels=labels, reference_name=ref_name,
                              backend=backend)
               for node, g, e in zip(out_nodes, got, expected)]
    name = target or (str(project.directory) if getattr(project, "directory", None) else project.name)
    return VerifyResult(target=name, backend=backend, reference=ref_name, tolerance=str(tol), outputs=results,
                        seconds=time.perf_counter() - t0, note=note)


def verify_target(target, x, labels=None, backend: str = "csim", tolerance="exact", reference_model=None,
                  convert=None, junit=None, record: bool = True) -> VerifyResult:
    """What ``fpga-gen verify`` does: ``target`` a model file (converted with ``convert()``) or a project
    folder (loaded; its results saved into verification.json and report.html).  ``junit``: XML path."""
    t = Path(target)
    try:
        if t.is_dir() and (t / PROJECT_FILE).is_file():
            project = load_project(t)
            ref = None
            if reference_model is not None:
                ref = load_keras_model(reference_model)
            result = verify(project, x, labels=labels, backend=backend, tolerance=tolerance, reference=ref,
                            target=str(t))
            if record:
                save_verification(t, result)
        else:
            if reference_model is not None:
                raise VerifyError("--reference is for a project folder; a model file is its own reference")
            project = convert() if convert is not None else _default_convert(target)
            result = verify(project, x, labels=labels, backend=backend, tolerance=tolerance, target=str(t))
    except Exception as e:
        if junit is not None and not isinstance(e, KeyboardInterrupt):
            Path(junit).write_text(junit_error(str(t), " ".join(str(e).split())), encoding="utf-8")
        raise
    if junit is not None:
        result.write_junit(junit)
    return result


def save_verification(project_dir, result: VerifyResult) -> Path:
    """Write verification.json into a project folder and re-render its report.html with it."""
    d = Path(project_dir)
    p = d / VERIFICATION_FILE
    p.write_text(json.dumps(result.to_json(), indent=1, sort_keys=True) + "\n")
    rerender_report(d)
    return p


def load_verification(project_dir) -> dict | None:
    """The project's verification.json, or None when it is missing or unreadable."""
    return read_json(Path(project_dir) / VERIFICATION_FILE)


# ---------------------------------------------------------------------------------------------- helpers
def _default_convert(path):
    return convert(path)


def _chunked(fn, x, n, label, enabled):
    """fn over x in chunks with a progress display; returns a list (per output) of arrays."""
    chunk = max(CHUNK_MIN, -(-n // 20))
    if n <= chunk:
        with progress(None, label, enabled=enabled):
            return _outputs(fn(x))
    parts = []
    with progress(n, label, enabled=enabled) as p:
        for lo in range(0, n, chunk):
            sl = [a[lo:lo + chunk] for a in x] if isinstance(x, (list, tuple)) else x[lo:lo + chunk]
            parts.append(_outputs(fn(sl)))
            p.update(min(chunk, n - lo))
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def _outputs(y) -> list[np.ndarray]:
    if isinstance(y, dict):
        y = list(y.values())
    if isinstance(y, (list, tuple)):
        return [np.asarray(a, dtype=np.float64) for a in y]
    return [np.asarray(y, dtype=np.float64)]


def _index(i: int, shape) -> int | tuple:
    if len(shape) <= 1:
        return i
    return tuple(int(v) for v in np.unravel_index(i, shape))


def _fmt_lsb(v) -> str:
    if v is None:
        return "?"
    if not math.isfinite(v):
        return "inf"
    return f"{v:.3g}" if v != int(v) else str(int(v))


def _finite(v):
    """JSON-safe: inf/nan as strings, tuples as lists."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _case_text(o: OutputResult) -> str:
    return (f"{o.message}\nexact match {o.exact_match * 100:.2f} %, worst diff {_fmt_lsb(o.max_lsb)} LSB, "
            f"argmax agreement {o.argmax_agreement * 100:.2f} %")


def _classname(target: str) -> str:
    base = Path(str(target).rstrip("/")).name or "project"
    return re.sub(r"[^A-Za-z0-9_]", "_", base)


def _hostname() -> str:
    try:
        return socket.gethostname() or "localhost"
    except OSError:
        return "localhost"
