"""The compile cache (``$FPGA_GEN_CACHE_DIR``, default ``~/.cache/fpga-gen``): size cap and clean-up.

What it holds, one entry each: compiled objects (``csim/obj/*.o``), libraries and testbench executables
(``csim/lib/<key>/``, ``csim/bin/<key>/``), build logs, precompiled headers (``csim/pch/<key>/``) and the
projects written for unwritten ``Project``s (``projects/<fingerprint>/``).  Every entry can be rebuilt from
its sources, so the cache is capped: past ``$FPGA_GEN_CACHE_MAX_MB`` (default 2048 MB) the least recently
used entries go until it is under 80 % of the cap.  Builds mark what they use (mtime), and entries used in
the last ``GRACE_SECONDS`` are never removed (another process may be about to load them).  A prune walks
the cache at most once per ``PRUNE_INTERVAL`` seconds (a stamp file), so a build pays for it rarely.
``fpga-gen cache`` shows the size; ``fpga-gen cache --clear`` empties it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

__all__ = ["cache_root", "touch", "entries", "prune", "maybe_prune", "clear", "max_bytes"]

DEFAULT_MAX_MB = 2048
GRACE_SECONDS = 600
PRUNE_INTERVAL = 600
STAMP = ".last_prune"
# the folders whose children are entries (relative to the cache root)
ENTRY_DIRS = ("csim/obj", "csim/lib", "csim/bin", "csim/logs", "csim/pch", "projects")


def cache_root() -> Path:
    env = os.environ.get("FPGA_GEN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fpga-gen"


def max_bytes() -> int:
    """The cap from ``$FPGA_GEN_CACHE_MAX_MB`` (a positive number of megabytes; 0 = no cap)."""
    text = os.environ.get("FPGA_GEN_CACHE_MAX_MB", "").strip()
    if not text:
        return DEFAULT_MAX_MB * 2 ** 20
    try:
        mb = float(text)
    except ValueError:
        raise ValueError(f"FPGA_GEN_CACHE_MAX_MB must be a number of megabytes (0: no cap), got {text!r}") from None
    if mb < 0:
        raise ValueError(f"FPGA_GEN_CACHE_MAX_MB must be a number of megabytes (0: no cap), got {text!r}")
    return int(mb * 2 ** 20)


def touch(*paths) -> None:
    """Mark cache entries as just used (their mtime); missing paths are ignored."""
    now = time.time()
    for p in paths:
        try:
            os.utime(p, (now, now))
        except OSError:
            pass


def _size(p) -> int:
    """Bytes of a file, or of the files under a folder (links not followed)."""
    try:
        if not os.path.isdir(p) or os.path.islink(p):
            return os.lstat(p).st_size
        total = 0
        with os.scandir(p) as it:
            for e in it:
                total += _size(e.path) if e.is_dir(follow_symlinks=False) else e.stat(follow_symlinks=False).st_size
        return total
    except OSError:
        return 0


def entries(root: Path | None = None) -> list[tuple[Path, int, float]]:
    """(path, bytes, last use) of every entry, least recently used first (temporaries of running builds,
    hidden names, are not entries)."""
    root = root or cache_root()
    out = []
    for d in ENTRY_DIRS:
        folder = root / d
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith("."):
                continue
            try:
                used = p.lstat().st_mtime
            except OSError:
                continue
            out.append((p, _size(p), used))
    out.sort(key=lambda e: (e[2], str(e[0])))
    return out


def _remove(p: Path) -> None:
    # renamed first, so nobody finds a half-removed entry under its name
    tmp = p.with_name(f".{p.name}.del-{os.getpid()}")
    try:
        os.rename(p, tmp)
    except OSError:
        return
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def prune(limit: int | None = None, root: Path | None = None, grace: float = GRACE_SECONDS) -> tuple[int, int]:
    """Remove least recently used entries until the cache is under 80 % of ``limit`` (default: the cap);
    never an entry used in the last ``grace`` seconds.  Returns (entries removed, bytes freed)."""
    root = root or cache_root()
    limit = max_bytes() if limit is None else limit
    if limit <= 0:
        return 0, 0
    es = entries(root)
    total = sum(s for _, s, _ in es)
    if total <= limit:
        return 0, 0
    target, now = 0.8 * limit, time.time()
    removed = freed = 0
    for p, size, used in es:
        if total <= target:
            break
        if now - used < grace:
            continue
        _remove(p)
        removed, freed, total = removed + 1, freed + size, total - size
    return removed, freed


def maybe_prune(root: Path | None = None) -> None:
    """:func:`prune`, at most once per ``PRUNE_INTERVAL`` seconds per cache (never raises: a cache that cannot be
    pruned must not fail a build)."""
    root = root or cache_root()
    stamp = root / STAMP
    try:
        if stamp.is_file() and time.time() - stamp.stat().st_mtime < PRUNE_INTERVAL:
            return
        root.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        prune(root=root)
    except (OSError, ValueError):
        pass


def clear(root: Path | None = None) -> tuple[int, int]:
    """Remove every entry (``fpga-gen cache --clear``); (entries removed, bytes freed)."""
    es = entries(root or cache_root())
    for p, _, _ in es:
        _remove(p)
    return len(es), sum(s for _, s, _ in es)
