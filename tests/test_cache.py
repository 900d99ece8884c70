"""The compile cache: least-recently-used pruning under the cap, the grace period, the CLI."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from fpga_gen import cache, csim
from fpga_gen.cli import main

from helpers_graphs import mlp_graph, random_inputs


def _entry(root, rel, size, age):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x" * size)
    t = time.time() - age
    os.utime(p, (t, t))
    return p


def test_prune_removes_least_recently_used_first_and_spares_recent_entries(tmp_path):
    old = _entry(tmp_path, "csim/obj/a.o", 4000, age=4000)
    mid = _entry(tmp_path, "csim/obj/b.o", 4000, age=3000)
    new = _entry(tmp_path, "projects/p1/x", 4000, age=2000)
    os.utime(new.parent, (time.time() - 2000, time.time() - 2000))
    fresh = _entry(tmp_path, "csim/obj/c.o", 4000, age=10)          # inside the grace period
    _entry(tmp_path, "csim/obj/.tmp123.o", 4000, age=9999)          # a running build's temporary: not an entry
    assert [p for p, _, _ in cache.entries(tmp_path)] == [old, mid, new.parent, fresh]
    # cap 12,000 bytes: 16,000 in entries, down to <= 9,600: the two oldest go, not the fresh one
    assert cache.prune(limit=12000, root=tmp_path) == (2, 8000)
    assert not old.exists() and not mid.exists() and new.exists() and fresh.exists()
    assert cache.prune(limit=12000, root=tmp_path) == (0, 0)         # under the cap: nothing to do
    # the grace period holds even when the cap is not met
    assert cache.prune(limit=1000, root=tmp_path, grace=600) == (1, 4000)
    assert fresh.exists() and not new.exists()


def test_max_bytes_reads_the_environment(monkeypatch):
    monkeypatch.setenv("FPGA_GEN_CACHE_MAX_MB", "1.5")
    assert cache.max_bytes() == int(1.5 * 2 ** 20)
    monkeypatch.setenv("FPGA_GEN_CACHE_MAX_MB", "lots")
    with pytest.raises(ValueError, match=r"^FPGA_GEN_CACHE_MAX_MB must be a number of megabytes \(0: no cap\), "
                                         r"got 'lots'$"):
        cache.max_bytes()


def test_builds_mark_what_they_use_and_keep_the_cache_under_its_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("FPGA_GEN_CACHE_DIR", str(tmp_path / "cache"))
    from fpga_gen.config import ProjectConfig
    from fpga_gen.hls import write_project
    g1, g2 = mlp_graph((8, 6, 3), seed=41), mlp_graph((8, 5, 3), seed=42)
    d1, d2 = tmp_path / "p1", tmp_path / "p2"
    for g, d in ((g1, d1), (g2, d2)):
        d.mkdir()
        write_project(g, ProjectConfig(name=d.name), d)
    b1 = csim.build(d1, testbench=False)
    lib1 = b1.library.parent
    old = time.time() - 5000
    os.utime(lib1, (old, old))
    for o in (tmp_path / "cache" / "csim" / "obj").iterdir():
        os.utime(o, (old, old))
    # a cap below the cache's size: the next build's prune (the stamp is not fresh) removes the old library
    total = sum(s for _, s, _ in cache.entries(tmp_path / "cache"))
    monkeypatch.setenv("FPGA_GEN_CACHE_MAX_MB", str((total - 1) / 2 ** 20))
    (tmp_path / "cache" / cache.STAMP).unlink(missing_ok=True)
    b2 = csim.build(d2, testbench=False)
    assert not lib1.exists() and b2.library.is_file()
    x = random_inputs(g1, 20)
    assert np.array_equal(csim.predict(d1, x), csim.predict(d1, x))     # an evicted library is rebuilt


def test_cli_cache_shows_and_clears(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FPGA_GEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("FPGA_GEN_CACHE_MAX_MB", "100")
    _entry(tmp_path, "csim/obj/a.o", 2 ** 20, age=10)
    assert main(["cache"]) == 0
    assert capsys.readouterr().out == f"{tmp_path}: 1 entries, 1.0 MB; cap 100 MB (FPGA_GEN_CACHE_MAX_MB)\n"
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out == f"{tmp_path}: removed 1 entries, 1.0 MB\n"
    assert cache.entries(tmp_path) == []


def test_a_project_cached_by_another_writer_is_not_reused(tmp_path, monkeypatch):
    # the project cache is keyed by the design and by the writer (fpga_gen's sources and templates): a project
    # written by an older writer for the same graph must not be taken for this one's
    from fpga_gen import api
    from fpga_gen.config import ProjectConfig
    monkeypatch.setenv("FPGA_GEN_CACHE_DIR", str(tmp_path / "cache"))
    graph = mlp_graph(sizes=(4, 3), seed=1)
    first = api.Project(graph, ProjectConfig())._built_directory()
    monkeypatch.setattr(api, "_WRITER_DIGEST", ["0123456789ab"])
    second = api.Project(graph, ProjectConfig())._built_directory()
    assert first != second and first.parent == second.parent
    assert second.name.endswith("-0123456789ab") and (second / api.PROJECT_FILE).is_file()
    assert api.Project(graph, ProjectConfig())._built_directory() == second
