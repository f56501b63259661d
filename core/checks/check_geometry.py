"""Vectorised geometry checks for many regions at once (used by :mod:`viaseg.core.checks.checks`).

:func:`analyze_shapes` takes VIA2 ``shape_attributes`` dicts and returns, for each one, its bounding box and
the geometry problems found: ``degenerate_region`` (fewer than 3 distinct points, zero area, missing or
non-finite numbers, zero-size rect/circle/ellipse), ``self_intersection`` (polygon edges that cross or touch,
or an edge folding back on its neighbour) and ``unsupported_shape`` (polylines, points and unknown shapes:
they are not areas and add nothing to a mask).

Self-intersection is tested for all polygons together, without a Python loop per polygon:

1. *star test*, O(n): if the vertex angles around the polygon's vertex mean strictly increase (or decrease)
   and wind exactly once, every edge lives in its own angular sector, so no two edges can meet: the polygon
   is simple. Most hand-drawn outlines pass this.
2. the others go through the exact test of :mod:`.check_crossings`, a *sweep on x* that pairs only edges
   whose x-ranges overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain

import numpy as np

from .check_crossings import sweep_crossings

AREA_EPS = 1e-9
_BATCH_POINTS = 32_768  # polygon vertices analysed per numpy batch


@dataclass
class ShapeIssue:
    kind: str  # degenerate_region | self_intersection | unsupported_shape
    severity: str
    message: str


def _num(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


_SIMPLE_KEYS: dict[str | None, tuple[str, ...]] = {
    "rect": ("x", "y", "width", "height"),
    "circle": ("cx", "cy", "r"),
    "ellipse": ("cx", "cy", "rx", "ry"),
    "point": ("cx", "cy"),
}
_Box = tuple[float, float, float, float]


def _simple_shape(shape: dict) -> tuple[_Box | None, list[ShapeIssue]]:
    """bbox and issues of a rect / circle / ellipse / point / unknown shape."""
    kind = shape.get("name")
    if not isinstance(
        kind, str
    ):  # VIA files may hold any JSON value here ([1, 2], 3, null): not a shape name
        kind = repr(kind) if kind is not None else None
    keys = _SIMPLE_KEYS.get(kind)
    if keys is None:
        what = f"unknown shape {kind!r}" if kind else "a region without a shape name"
        return None, [
            ShapeIssue(
                "unsupported_shape",
                "warning",
                f"{what} is not drawn into masks; redraw it as a polygon or delete it",
            )
        ]
    vals = [_num(shape.get(k)) for k in keys]
    bad = [k for k, v in zip(keys, vals, strict=True) if v is None]
    if kind == "ellipse" and "theta" in shape and _num(shape.get("theta")) is None:
        bad.append("theta")
    if bad:
        return None, [
            ShapeIssue(
                "degenerate_region",
                "error",
                f"{kind} has missing or non-finite {', '.join(bad)}; fix the numbers or delete it",
            )
        ]
    nums = [v for v in vals if v is not None]  # all of vals: a None was reported above
    if kind == "point":
        x, y = nums
        return (x, y, x, y), [
            ShapeIssue(
                "unsupported_shape",
                "warning",
                "a point is not an area and adds nothing to masks; delete it or draw a polygon",
            )
        ]
    if kind == "rect":
        return _rect(nums)
    if kind == "circle":
        return _circle(nums)
    return _ellipse(nums, shape)


def _rect(nums: list[float]) -> tuple[_Box, list[ShapeIssue]]:
    x, y, w, h = nums
    x0, x1 = sorted((x, x + w))
    y0, y1 = sorted((y, y + h))
    issues = []
    if w == 0 or h == 0:
        issues.append(
            ShapeIssue(
                "degenerate_region",
                "warning",
                f"rect of size {w:g}x{h:g} has zero area; delete it or redraw it",
            )
        )
    return (x0, y0, x1, y1), issues


def _circle(nums: list[float]) -> tuple[_Box, list[ShapeIssue]]:
    cx, cy, r = nums
    r = abs(r)
    issues = []
    if r == 0:
        issues.append(
            ShapeIssue("degenerate_region", "warning", "circle of radius 0; delete it or redraw it")
        )
    return (cx - r, cy - r, cx + r, cy + r), issues


def _ellipse(nums: list[float], shape: dict) -> tuple[_Box, list[ShapeIssue]]:
    cx, cy, rx, ry = nums
    rx, ry = abs(rx), abs(ry)
    theta = _num(shape.get("theta", 0.0)) or 0.0
    c, s = math.cos(theta), math.sin(theta)
    hx = math.hypot(rx * c, ry * s)
    hy = math.hypot(rx * s, ry * c)
    issues = []
    if rx == 0 or ry == 0:
        issues.append(
            ShapeIssue(
                "degenerate_region",
                "warning",
                f"ellipse with radii {rx:g}x{ry:g} has zero area; delete it or redraw it",
            )
        )
    return (cx - hx, cy - hy, cx + hx, cy + hy), issues


def _poly_lists(shape: dict):
    xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
    if not isinstance(xs, (list, tuple)) or not isinstance(ys, (list, tuple)):
        return None, "has no all_points_x/all_points_y lists"
    if len(xs) != len(ys):
        return None, f"has {len(xs)} x values but {len(ys)} y values"
    return (xs, ys), None


def _to_float(xs) -> np.ndarray | None:
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in xs):
        return None
    return np.asarray(xs, dtype=np.float64)


def analyze_shapes(shapes: list[dict]) -> tuple[np.ndarray, dict[int, list[ShapeIssue]]]:
    """``(bbox, issues)``: ``bbox`` is an ``Nx4`` float array (xmin, ymin, xmax, ymax; NaN when unknown),
    ``issues`` maps a shape's index to its problems (shapes without problems are absent)."""
    n = len(shapes)
    bbox = np.full((n, 4), np.nan)
    issues: dict[int, list[ShapeIssue]] = {}

    def add(i: int, issue: ShapeIssue) -> None:
        issues.setdefault(i, []).append(issue)

    poly_idx: list[int] = []
    poly_xs: list = []
    poly_ys: list = []
    for i, shape in enumerate(shapes):
        if type(shape) is dict and shape.get("name") == "polygon":  # fast path for the common case
            xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
            if type(xs) is list and type(ys) is list and len(xs) == len(ys):
                poly_idx.append(i)
                poly_xs.append(xs)
                poly_ys.append(ys)
                continue
        kind = shape.get("name") if isinstance(shape, dict) else None
        if not isinstance(shape, dict):
            add(i, ShapeIssue("degenerate_region", "error", "region has no shape; delete it"))
            continue
        if kind in ("polygon", "polyline"):
            lists, why = _poly_lists(shape)
            if lists is None:
                add(i, ShapeIssue("degenerate_region", "error", f"{kind} {why}; fix or delete it"))
                continue
            if kind == "polyline":
                add(
                    i,
                    ShapeIssue(
                        "unsupported_shape",
                        "warning",
                        "a polyline is an open line, not an area, and adds nothing to masks; "
                        "close it into a polygon or delete it",
                    ),
                )
            poly_idx.append(i)
            poly_xs.append(lists[0])
            poly_ys.append(lists[1])
            continue
        box, found = _simple_shape(shape)
        if box is not None:
            bbox[i] = box
        for f in found:
            add(i, f)
    # batches of about _BATCH_POINTS vertices: the temporaries stay in cache and their memory is reused,
    # which is several times faster than one pass over millions of points
    lo, acc = 0, 0
    for hi in range(len(poly_idx)):
        acc += len(poly_xs[hi])
        if acc >= _BATCH_POINTS or hi == len(poly_idx) - 1:
            _analyze_polylists(
                shapes, poly_idx[lo : hi + 1], poly_xs[lo : hi + 1], poly_ys[lo : hi + 1], bbox, add
            )
            lo, acc = hi + 1, 0
    return bbox, issues


def _flatten(poly_xs, poly_ys, lengths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat float arrays of all coordinates, plus a per-polygon ``ok`` flag (False: non-numeric values)."""
    total = int(lengths.sum())
    ok = np.ones(len(lengths), dtype=bool)
    try:
        x = np.fromiter(chain.from_iterable(poly_xs), dtype=np.float64, count=total)
        y = np.fromiter(chain.from_iterable(poly_ys), dtype=np.float64, count=total)
        # (fromiter also takes numeric strings and bools; via_io rejects those when reading, and None
        # becomes NaN, which is reported as non-finite below)
        return x, y, ok
    except (TypeError, ValueError, OverflowError):
        pass
    xs_out, ys_out = [], []
    for k, (xs, ys) in enumerate(zip(poly_xs, poly_ys, strict=True)):
        fx, fy = _to_float(xs), _to_float(ys)
        if fx is None or fy is None:
            ok[k] = False
            fx = np.full(len(xs), np.nan)
            fy = np.full(len(ys), np.nan)
        xs_out.append(fx)
        ys_out.append(fy)
    return np.concatenate(xs_out), np.concatenate(ys_out), ok


def _starts(lengths: np.ndarray) -> np.ndarray:
    s = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], out=s[1:])
    return s


def _drop_invalid(shapes, x, y, idx, lengths, numeric, add):
    """Report the polygons/polylines without points or with non-numeric or non-finite coordinates, and drop
    them: returns ``x, y, idx, lengths`` of the others."""
    finite = np.isfinite(x) & np.isfinite(y)
    valid = numeric & (lengths > 0)
    if not finite.all():
        bad = np.bincount(np.repeat(np.arange(len(lengths)), lengths)[~finite], minlength=len(lengths))
        valid &= bad == 0
    for k in np.flatnonzero(~valid):
        i = int(idx[k])
        what = (
            "has no points;"
            if lengths[k] == 0
            else "has non-numeric or non-finite coordinates; fix them in the VIA file or"
        )
        add(i, ShapeIssue("degenerate_region", "error", f"{shapes[i].get('name')} {what} delete it"))
    if not valid.all():
        keep = np.repeat(valid, lengths)
        x, y, idx, lengths = x[keep], y[keep], idx[valid], lengths[valid]
    return x, y, idx, lengths


def _drop_repeats(x, y, start, lengths):
    """Drop repeated vertices: consecutive duplicates and a closing vertex equal to the first (VIA 1).
    Returns ``x, y, start, counts`` of the distinct vertices."""
    last = start + lengths - 1
    dup = np.zeros(len(x), dtype=bool)
    dup[1:] = (x[1:] == x[:-1]) & (y[1:] == y[:-1])
    dup[start] = False
    closing = (lengths > 1) & (x[last] == x[start]) & (y[last] == y[start])
    dup[last[closing]] = True
    if not dup.any():
        return x, y, start, lengths
    m = lengths - np.add.reduceat(dup.astype(np.int64), start)
    keep = ~dup
    return x[keep], y[keep], _starts(m), m


def _flag_zero_area(x, y, start, m, nxt, ok, span, idx, add) -> None:
    """Report the polygons flagged ``ok`` whose points all lie on one line, and clear their ``ok`` flag."""
    # a collinear polygon has zero signed area, so only those need the exact test
    cross = x * y[nxt] - x[nxt] * y
    area2 = np.abs(np.add.reduceat(cross, start))
    for k in np.flatnonzero(ok & (area2 <= 1e-6 * np.maximum(span, 1.0) ** 2)):
        s, n = int(start[k]), int(m[k])
        px, py = x[s : s + n] - x[s], y[s : s + n] - y[s]
        far = int(np.argmax(px * px + py * py))
        dev = np.abs(px[far] * py - py[far] * px).max()
        if dev <= AREA_EPS * max(float(span[k]), 1.0) ** 2:
            add(
                int(idx[k]),
                ShapeIssue(
                    "degenerate_region",
                    "warning",
                    "polygon has zero area (all its points are on one line); redraw it or delete it",
                ),
            )
            ok[k] = False


def _analyze_polylists(shapes, poly_idx, poly_xs, poly_ys, bbox, add) -> None:
    idx = np.asarray(poly_idx)
    lengths = np.fromiter((len(v) for v in poly_xs), dtype=np.int64, count=len(poly_xs))
    x, y, numeric = _flatten(poly_xs, poly_ys, lengths)
    x, y, idx, lengths = _drop_invalid(shapes, x, y, idx, lengths, numeric, add)
    if len(idx) == 0:
        return
    start = _starts(lengths)
    bbox[idx] = np.stack(
        [
            np.minimum.reduceat(x, start),
            np.minimum.reduceat(y, start),
            np.maximum.reduceat(x, start),
            np.maximum.reduceat(y, start),
        ],
        axis=1,
    )
    # polygons only from here (polylines got their bbox)
    is_polygon = np.fromiter((shapes[i].get("name") == "polygon" for i in idx), dtype=bool, count=len(idx))
    if not is_polygon.all():
        keep = np.repeat(is_polygon, lengths)
        x, y, idx, lengths = x[keep], y[keep], idx[is_polygon], lengths[is_polygon]
        if len(idx) == 0:
            return
        start = _starts(lengths)
    x, y, start, m = _drop_repeats(x, y, start, lengths)
    owner = np.repeat(np.arange(len(m)), m)
    nxt = np.arange(1, len(x) + 1)
    nxt[start + m - 1] = start
    ok = m >= 3
    for k in np.flatnonzero(~ok):
        add(
            int(idx[k]),
            ShapeIssue(
                "degenerate_region",
                "warning",
                f"polygon has {int(m[k])} distinct point(s); at least 3 are needed: add vertices or delete it",
            ),
        )
    span = np.maximum(bbox[idx, 2] - bbox[idx, 0], bbox[idx, 3] - bbox[idx, 1])
    _flag_zero_area(x, y, start, m, nxt, ok, span, idx, add)
    _self_intersections(x, y, owner, m, start, nxt, ok & (m >= 4), lambda k: int(idx[k]), add)


def _self_intersections(x, y, owner, m, start, nxt, cand, shape_index, add) -> None:
    """Find crossing/touching edges of the polygons flagged ``cand`` (triangles are always simple)."""
    if not cand.any():
        return
    prv = np.arange(-1, len(x) - 1)
    prv[start] = start + m - 1
    # --- fold-backs: an edge that turns back exactly along its predecessor (a spike of zero width)
    ux, uy = x - x[prv], y - y[prv]
    vx, vy = x[nxt] - x, y[nxt] - y
    fold = (ux * vy == uy * vx) & (ux * vx + uy * vy < 0) & cand[owner]
    found: dict[int, tuple[int, float, float]] = {}  # polygon -> (crossings, x, y of the first)
    for p in np.flatnonzero(fold):
        k = int(owner[p])
        c, fx, fy = found.get(k, (0, float(x[p]), float(y[p])))
        found[k] = (c + 1, fx, fy)
    # --- star test around the vertex mean c: every step turns the same way around c by less than pi
    #     (cross products of consecutive vertices around c all of one sign) and the outline goes around c
    #     once (one upward crossing of the horizontal half-line from c) => each edge owns its angular sector.
    cx = np.add.reduceat(x, start) / m
    cy = np.add.reduceat(y, start) / m
    dx, dy = x - cx[owner], y - cy[owner]
    a, b = dx * dy[nxt], dy * dx[nxt]
    cr = a - b
    tol = 1e-9 * (np.abs(a) + np.abs(b))
    ccw = np.logical_and.reduceat(cr > tol, start)
    cw = np.logical_and.reduceat(cr < -tol, start)
    up = np.add.reduceat(((dy < 0) & (dy[nxt] >= 0)).astype(np.int64), start)
    down = np.add.reduceat(((dy >= 0) & (dy[nxt] < 0)).astype(np.int64), start)
    star = (ccw & (up == 1)) | (cw & (down == 1))
    need = cand & ~star
    if need.any():
        sweep_crossings(x, y, owner, m, start, nxt, need, found)
    for k in sorted(found):
        if not cand[k]:
            continue
        cnt, px, py = found[k]
        add(
            shape_index(k),
            ShapeIssue(
                "self_intersection",
                "warning",
                f"polygon outline crosses itself ({cnt} crossing{'s' if cnt != 1 else ''}, first near "
                f"({px:.0f}, {py:.0f})); drag the vertices so the outline does not cross, or split it in two",
            ),
        )
