"""Progress for long work (csim builds, verification over large data), on stderr.

    from fpga_gen.progress import progress
    with progress(len(x), "verify csim") as p:
        for chunk in chunks:
            ...
            p.update(len(chunk))

On a terminal: one line redrawn in place (a bar when ``total`` is known, a counter otherwise),
at most ~10 redraws a second.  When stderr is not a terminal (CI logs, pipes, pytest capture):
plain lines only, so logs stay short: for a known total a start line, at most one line per 10 % and
an end line; for an unknown total only the end line, and only when the work took 0.5 s or more.
``FPGA_GEN_PROGRESS=0`` silences it; ``FPGA_GEN_PROGRESS=1`` forces the plain-line form.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["progress", "Progress"]

_BAR = 24
QUIET_S = 0.5       # plain-line mode: work of unknown size that ends sooner than this prints nothing


class Progress:
    """Use through :func:`progress`.  ``update(n)`` adds ``n`` done units; ``total`` may be None."""

    def __init__(self, total: int | None, label: str, stream=None, enabled: bool | None = None,
                 tty: bool | None = None):
        self.total = int(total) if total else None
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        env = os.environ.get("FPGA_GEN_PROGRESS")
        self.enabled = enabled if enabled is not None else env != "0"
        self.tty = tty if tty is not None else (env != "1" and _isatty(self.stream))
        self.done = 0
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1

    # ------------------------------------------------------------------ api
    def update(self, n: int = 1) -> None:
        self.done += int(n)
        if not self.enabled:
            return
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or (self.total and self.done >= self.total):
                self._last_draw = now
                self._write("\r" + self._line() + "\033[K")
        elif self.total:
            decile = min(10, self.done * 10 // self.total)
            if decile > self._last_decile and 0 < decile < 10:
                self._last_decile = decile
                self._write(self._line() + "\n")

    def __enter__(self) -> "Progress":
        if self.enabled:
            if self.tty:
                self._write("\r" + self._line() + "\033[K")
            elif self.total:
                self._write(f"{self.label}: started ({self.total} items)\n")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        el = time.monotonic() - self._start
        if not self.enabled:
            return
        if not self.total and exc_type is None and el < QUIET_S:     # quick: leave no trace
            if self.tty:
                self._write("\r\033[K")
            return
        status = "done" if exc_type is None else "failed"
        end = f"{self.label}: {status} in {el:.1f} s"
        if self.total and exc_type is None:
            end += f" ({self.done}/{self.total})"
        self._write(("\r" + end + "\033[K\n") if self.tty else end + "\n")

    # ------------------------------------------------------------------ drawing
    def _line(self) -> str:
        el = time.monotonic() - self._start
        if not self.total:
            return f"{self.label}: {self.done} ({el:.1f} s)" if self.done else f"{self.label}: ... ({el:.1f} s)"
        frac = min(1.0, self.done / self.total)
        if self.tty:
            fill = int(round(frac * _BAR))
            return f"{self.label} [{'#' * fill}{'.' * (_BAR - fill)}] {self.done}/{self.total} ({el:.1f} s)"
        return f"{self.label}: {frac * 100:.0f} % ({self.done}/{self.total}, {el:.1f} s)"

    def _write(self, s: str) -> None:
        try:
            self.stream.write(s)
            self.stream.flush()
        except (OSError, ValueError):   # closed stream: progress is never worth an exception
            self.enabled = False


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress(total: int | None, label: str, stream=None, enabled: bool | None = None) -> Progress:
    """A context manager showing progress of ``total`` units (None: unknown) on stderr."""
    return Progress(total, label, stream=stream, enabled=enabled)
