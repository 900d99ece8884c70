"""report.html: self-contained, escaped, written into every project, and looked at in a real browser
(headless Chromium, skipped where it is not installed)."""

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import fpga_gen
from fpga_gen.boards import load_board
from fpga_gen.estimate import estimate
from fpga_gen.api import rerender_report
from fpga_gen.report import pareto_plot, render_report, write_report
from fpga_gen.verify import save_verification, verify
from qmodels import grid_inputs, qmlp

CHROMIUM = next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                                              "(apt-get install -y chromium)")
SWEEP = [{"label": f"rf{r}", "LUT": 5000 // r + 300 * r, "DSP": 12 // r, "latency_cycles": 3 + 2 * r}
         for r in (1, 2, 4, 8)] + [{"label": "dominated", "LUT": 9000, "DSP": 12, "latency_cycles": 30}]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    model = qmlp([8, 6, 4], bits=6, seed=4, name="rmlp")
    p = fpga_gen.convert(model, board="pynq-z2")
    p.write(tmp_path_factory.mktemp("rep") / "proj")
    return p


def html_of(project, **kw):
    est = estimate(project.graph, project.config, board=project.config.board)
    avail = load_board(project.config.board).resources if project.config.board else None
    return render_report(project.graph, project.config, est, available=avail, **kw)


def test_written_into_every_project_and_self_contained(project):
    html = (project.directory / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert 'id="graph-svg"' in html and 'id="estimate-table"' in html and 'class="util-bar' in html
    # types are escaped, never raw markup
    assert "ap_fixed&lt;24,9&gt;" in html and "ap_fixed<24,9>" not in html
    # nothing is fetched: no scripts, stylesheets, images or URLs other than the SVG namespace
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\((?!#)", html)
    assert set(re.findall(r"https?://[^\s\"')]+", html)) <= {"http://www.w3.org/2000/svg"}
    for layer in ("x", "dense_0", "act_0", "dense_1"):
        assert f'data-name="{layer}"' in html
    assert html.count('class="edge"') == 3
    assert 'data-resource="DSP"' in html and 'data-resource="LUT"' in html


def test_optional_sections(project):
    """No board: the bars are against the part's resources; unknown resources: no bars; no verify/sweep: no sections."""
    cfg = dataclasses.replace(project.config, board=None)
    est = estimate(project.graph, cfg)
    html = render_report(project.graph, cfg, est)
    assert "Utilisation of part xc7z020clg400-1" in html and 'id="verification"' not in html
    assert 'id="pareto"' not in html and 'id="estimate-table"' in html and 'id="latency"' in html
    est.available = None
    html = render_report(project.graph, cfg, est)
    assert 'id="utilization"' not in html and 'id="estimate-table"' in html
    assert "Utilisation of board pynq-z2" in html_of(project)


def test_pareto_front():
    plot = pareto_plot(SWEEP)
    assert plot["x_key"] == "LUT" and plot["y_key"] == "latency_cycles"     # SWEEP has no ii_cycles
    assert plot["n"] == 5 and plot["n_front"] == 3     # rf8 (more LUTs, slower than rf4) and "dominated" are off it
    assert [r["label"] for r in plot["front_rows"]] == ["rf4", "rf2", "rf1"]
    assert [d["front"] for d in plot["dots"]] == [True, True, True, False, False]
    assert pareto_plot([{"label": "no numbers"}]) is None
    # fpga_gen.sweep rows: their own front flags (over every objective), failed designs left out
    rows = [{"key": "a", "LUT": 10, "ii_cycles": 4, "pareto": True},
            {"key": "b", "LUT": 5, "ii_cycles": 8, "pareto": True},
            {"key": "c", "LUT": 20, "ii_cycles": 9, "pareto": False}, {"key": "d", "error": "too big", "pareto": False}]
    plot = pareto_plot(rows)
    assert (plot["x_key"], plot["y_key"], plot["n"], plot["n_front"]) == ("LUT", "ii_cycles", 3, 2)
    assert [r["label"] for r in plot["front_rows"]] == ["b", "a"]
    # points nested as estimates (a sweep's rows may carry a "total" dict)
    assert pareto_plot([{"name": "a", "total": {"LUT": 1, "latency_cycles": 2}},
                        {"name": "b", "total": {"LUT": 2, "latency_cycles": 1}}])["n_front"] == 2


def test_verification_is_rendered_after_verify(project):
    x = grid_inputs(50, 8)
    result = verify(project, x, backend="emu", show_progress=False)
    save_verification(project.directory, result)
    html = (project.directory / "report.html").read_text()
    assert 'id="verification"' in html and "emu vs keras" in html and "PASS" in html
    low = fpga_gen.convert(project.model, config={"layers": {"dense_0": {"precision": {"weight": "ap_fixed<4,1>"}}}})
    bad = verify(low, x, backend="emu", show_progress=False)
    assert not bad.passed
    html = html_of(project, verification=bad.to_json())
    assert "FAIL" in html and "output &#39;dense_1&#39;" in html


def render_in_chromium(html_path: Path, png: Path) -> str:
    """Screenshot + the DOM after layout, from headless Chromium; no network, no profile reuse."""
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--window-size=1280,2000"]
    env = dict(os.environ, HOME=tempfile.mkdtemp())
    with tempfile.TemporaryDirectory() as prof:
        subprocess.run(base + [f"--user-data-dir={prof}", f"--screenshot={png}", html_path.as_uri()],
                       check=True, capture_output=True, timeout=120, env=env)
    with tempfile.TemporaryDirectory() as prof:
        r = subprocess.run(base + [f"--user-data-dir={prof}", "--dump-dom", html_path.as_uri()],
                           check=True, capture_output=True, text=True, timeout=120, env=env)
    return r.stdout


def read_png(path: Path) -> np.ndarray:
    """(h, w, channels) uint8 from an 8-bit RGB/RGBA PNG (what Chromium writes); no imaging library needed."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    bpp = 3 if ctype == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * bpp)
    out = np.zeros((h, w * bpp), dtype=np.uint8)
    prev = np.zeros(w * bpp, dtype=np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 1:
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif f == 2:
            cur = (line + prev) % 256
        else:
            cur = line.tolist()
            up = prev.tolist()
            for i in range(len(cur)):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if f == 3:
                    cur[i] = (cur[i] + (a + b) // 2) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.array(cur, dtype=np.int32)
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3]


def has_colour(img: np.ndarray, hex_rgb: str, min_pixels: int) -> bool:
    rgb = np.array([int(hex_rgb[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    close = np.all(np.abs(img.astype(np.int16) - rgb) <= 3, axis=2)
    return int(close.sum()) >= min_pixels


@needs_chromium
def test_renders_in_headless_chromium(project, tmp_path):
    """The project's report in a real browser: the graph, the estimate table and the bars are laid out and visible."""
    d = tmp_path / "proj"
    shutil.copytree(project.directory, d)
    (d / "sweep.json").write_text(json.dumps({"points": SWEEP}))
    rerender_report(d)
    png = tmp_path / "report.png"
    dom = render_in_chromium(d / "report.html", png)

    assert '<svg id="graph-svg"' in dom and dom.count('class="layer"') == 4
    assert 'id="estimate-table"' in dom and re.search(r"<td>dense_0</td><td>dense</td>", dom)
    assert dom.count('class="util-bar') == 4 and 'id="pareto-svg"' in dom
    assert 'id="verification"' in dom                  # from the earlier test's verification.json

    img = read_png(png)
    assert img.shape[:2] == (2000, 1280)
    flat = img.reshape(-1, 3)
    assert len(np.unique(flat[:: 7], axis=0)) > 50      # not blank: text, boxes, bars
    assert has_colour(img, "#1f2a44", 1280 * 40)        # header
    assert has_colour(img, "#fff4e0", 2000)             # weighted-layer boxes of the graph diagram
    assert has_colour(img, "#2e8b57", 300)              # utilisation bar fill
    assert has_colour(img, "#eef1f5", 3000)             # estimate table header
