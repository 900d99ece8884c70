"""A tiny PNG writer (numpy + zlib) for the Pareto scatter, so the sweep needs no plotting library."""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["write_png", "scatter_png"]


def write_png(path, rgb: np.ndarray) -> None:
    """rgb: (h, w, 3) uint8."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def scatter_png(path, series, size=(480, 640), margin=40, xlim=None, ylim=None, vline=None) -> None:
    """series: [(xs, ys, (r, g, b), radius)] in data units; y on a log2 axis; white background, grey axes,
    a dashed red vertical line at ``vline`` (the budget)."""
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    allx = np.concatenate([np.asarray(s[0], float) for s in series] + [np.zeros(1)])
    ally = np.concatenate([np.log2(np.maximum(np.asarray(s[1], float), 1)) for s in series] + [np.zeros(1)])
    x0, x1 = xlim or (0.0, max(float(allx.max()), (vline or 0) * 1.05, 1e-9))
    y0, y1 = ylim or (0.0, max(float(ally.max()), 1.0))

    def px(x, y):
        return (margin + (x - x0) / (x1 - x0) * (w - 2 * margin),
                h - margin - (y - y0) / (y1 - y0) * (h - 2 * margin))
    img[h - margin, margin:w - margin] = 120
    img[margin:h - margin, margin] = 120
    for k in range(int(y1) + 1):                      # ticks at powers of two of the II
        _, yy = px(x0, k)
        img[int(yy), margin - 5:margin] = 120
    if vline is not None:
        xx, _ = px(vline, 0)
        for yy in range(margin, h - margin, 6):
            img[yy:yy + 3, int(min(xx, w - 1))] = (220, 30, 30)
    for xs, ys, col, rad in series:
        for x, y in zip(xs, ys):
            cx, cy = px(float(x), float(np.log2(max(y, 1))))
            cx, cy = int(round(cx)), int(round(cy))
            img[max(cy - rad, 0):cy + rad + 1, max(cx - rad, 0):cx + rad + 1] = col
    write_png(path, img)
