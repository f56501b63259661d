"""Canvas hit-testing as plain functions on widget-pixel coordinates (no widgets: tested on their own)."""

from __future__ import annotations

import numpy as np

HIT = 8  # pick radius in widget pixels


def nearest_edge(
    points: np.ndarray, closed: bool, q: tuple[float, float]
) -> tuple[int, np.ndarray, float] | None:
    """The outline segment of ``points`` (Nx2, in widget pixels) nearest to ``q``: ``(index of the segment's
    first vertex, the nearest point on it, its distance)``; None for fewer than two points. ``closed``: the
    last vertex joins the first (a polygon), else a polyline."""
    a = np.asarray(points, dtype=float)
    if len(a) < 2:
        return None
    b = np.roll(a, -1, axis=0) if closed else a[1:]
    a = a if closed else a[:-1]
    d = b - a
    p = np.asarray(q, dtype=float)
    ll = (d**2).sum(axis=1)
    t = np.clip(((p - a) * d).sum(axis=1) / np.where(ll == 0, 1, ll), 0, 1)
    near = a + d * t[:, None]
    dist = np.sqrt(((near - p) ** 2).sum(axis=1))
    i = int(np.argmin(dist))
    return i, near[i], float(dist[i])


def outline_hit(
    outlines: list[tuple[np.ndarray, bool]], q: tuple[float, float], tolerance: float, first: int = -1
) -> int:
    """Index of the outline within ``tolerance`` pixels of ``q`` on either side of the line (``first``, e.g. the
    selected region, is tried before the others; then the topmost, i.e. the last), or -1."""
    order = ([first] if 0 <= first < len(outlines) else []) + [
        i for i in range(len(outlines) - 1, -1, -1) if i != first
    ]
    for i in order:
        pts, closed = outlines[i]
        hit = nearest_edge(pts, closed, q)
        if hit is not None and hit[2] <= tolerance:
            return i
    return -1
