"""Regions -> masks and masks -> polygons.

Coordinate convention: a vertex ``(x, y)`` is the *centre* of pixel ``(x, y)`` (OpenCV's and VIA's convention for
integer coordinates). At full size, integer polygons are filled exactly like
``cv2.fillPoly(mask, [pts.astype(np.int32)], 1)``, one polygon per call (so overlapping regions stay filled).

Scaling to another ``out_size`` scales the *geometry*, never a full-size mask: ``x_out = (x + 0.5) * sx - 0.5``
(pixel centres map to pixel centres), and the scaled vertices are filled with :data:`SHIFT` fractional bits, so
a 4000x3000 photo rasterizes straight to a 256x256 training mask without allocating 12 MP. When shrinking, the
geometry is filled at k times the output size (k ~ source/output, at most 8) and averaged down (a pixel is set
when at least half covered): for a whole-number ratio this equals area-resizing the full-size mask. When
enlarging, the mask keeps fillPoly's margin of half an *output* pixel (edges sit up to half a pixel inside where
a nearest-neighbour enlargement of the full-size mask would put them).

Only area shapes are rasterized: polygon, rect (filled as its 4 corner points), circle and ellipse (rotated by
``theta`` radians, clockwise on screen as VIA's canvas draws it; sampled as a polygon). Polyline and point
regions, regions with fewer than 3 polygon points, mismatched or non-numeric coordinate lists and non-finite
coordinates are *skipped and reported* by :func:`rasterize_report` (``rasterize`` returns only the mask).

Masks -> polygons (:func:`mask_to_polygons`): VIA polygons have no holes, so each hole is cut into its outer
polygon with a zero-width "bridge" (out from the nearest vertex, around the hole, back along the same
segment); filling that single polygon with ``cv2.fillPoly`` reproduces the hole (up to the one-pixel-wide
bridge line).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from .project import AREA_SHAPES, Region

SHIFT = 8  # fractional bits for sub-pixel vertex positions when the geometry is scaled
_SUPERSAMPLE_PIXELS = 16_000_000
_MAX_COORD = float(1 << 20)  # |coordinate| (output pixels) beyond which a region is reported, not drawn


@dataclass
class Skipped:
    """A region that was not drawn: its position in the input, its shape name and why."""

    index: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"region {self.index} ({self.kind or 'no shape'}): {self.reason}"


# --------------------------------------------------------------------------------------------- geometry


def _as_region(r) -> Region:
    if isinstance(r, Region):
        return r
    if isinstance(r, Mapping):
        if "shape_attributes" in r:  # a VIA 2 region dict
            return Region(
                shape=dict(r.get("shape_attributes") or {}), attributes=dict(r.get("region_attributes") or {})
            )
        return Region(shape=dict(r))  # a bare shape dict
    raise TypeError(f"not a region: {type(r).__name__}")


def _num(shape: Mapping, key: str, default=None) -> float:
    v = shape.get(key, default)
    if v is None:
        raise ValueError(f"missing '{key}'")
    if isinstance(v, bool):
        raise ValueError(f"'{key}' is not a number")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"'{key}' is not a number ({v!r})") from None
    if not math.isfinite(f):
        raise ValueError(f"'{key}' is not finite ({v!r})")
    return f


def _points(shape: Mapping) -> np.ndarray:
    xs = shape.get("all_points_x")
    ys = shape.get("all_points_y")
    if not isinstance(xs, (list, tuple)) or not isinstance(ys, (list, tuple)):
        raise ValueError("all_points_x/all_points_y missing or not lists")
    if len(xs) != len(ys):
        raise ValueError(f"all_points_x has {len(xs)} values but all_points_y has {len(ys)}")
    if any(isinstance(v, bool) for v in xs) or any(isinstance(v, bool) for v in ys):
        raise ValueError("non-numeric coordinates")
    try:
        pts = np.array([xs, ys], dtype=np.float64).T.reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError("non-numeric coordinates") from None
    if not np.all(np.isfinite(pts)):
        raise ValueError("non-finite coordinates (NaN or infinity)")
    return pts


def _ellipse_points(cx, cy, rx, ry, theta, n) -> np.ndarray:
    t = np.arange(n, dtype=np.float64) * (2.0 * math.pi / n)
    c, s = math.cos(theta), math.sin(theta)
    ex, ey = rx * np.cos(t), ry * np.sin(t)
    return np.stack([cx + ex * c - ey * s, cy + ex * s + ey * c], axis=1)


def _shape_polygon(shape: Mapping, n: int | None, scale: float = 1.0) -> np.ndarray:
    """Polygon of an area shape; raises ValueError (reason) for anything that is not a drawable area."""
    kind = str(shape.get("name", ""))
    if kind == "polygon":
        pts = _points(shape)
        if len(pts) < 3:
            raise ValueError(f"polygon with {len(pts)} point(s); at least 3 are needed")
        return pts
    if kind == "rect":
        x, y, w, h = (_num(shape, k) for k in ("x", "y", "width", "height"))
        if w < 0:
            x, w = x + w, -w
        if h < 0:
            y, h = y + h, -h
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)
    if kind in ("circle", "ellipse"):
        cx, cy = _num(shape, "cx"), _num(shape, "cy")
        if kind == "circle":
            rx = ry = abs(_num(shape, "r"))
            theta = 0.0
        else:
            rx, ry = abs(_num(shape, "rx")), abs(_num(shape, "ry"))
            theta = _num(shape, "theta", 0.0)
        if n is None:  # adaptive: about one vertex per 2 output pixels of perimeter
            perimeter = math.pi * (rx + ry) * scale  # inf for absurd radii (e.g. 1e307): the most vertices
            n = int(min(720, max(24, math.ceil(perimeter)))) if math.isfinite(perimeter) else 720
        return _ellipse_points(cx, cy, rx, ry, theta, n)
    if kind in ("polyline", "point"):
        raise ValueError(f"a {kind} is not an area")
    raise ValueError(f"unknown shape {kind!r}" if kind else "no shape name")


def shape_polygon(shape: Mapping | Region, n: int = 72) -> np.ndarray | None:
    """``Nx2`` float64 polygon of an area shape (polygon points as given, rect corners, circle/ellipse sampled
    with ``n`` vertices starting at angle 0), or ``None`` for polylines, points and invalid shapes."""
    if isinstance(shape, Region):
        shape = shape.shape
    try:
        return _shape_polygon(shape, n)
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------------------------- rasterize


def _size(size, what: str) -> tuple[int, int]:
    try:
        w, h = size
        w, h = int(w), int(h)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (width, height), got {size!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"{what} must be positive, got {size!r}")
    return w, h


def _supersampling(sw: int, sh: int, ow: int, oh: int) -> int:
    """Factor k to rasterize at k x ``out_size`` and then average down, when shrinking.

    ``fillPoly`` includes every pixel whose centre is within about half an *output* pixel of the polygon; the
    full-size mask only extends half a *source* pixel past it. Filling at k = source/output (when that is a
    whole number: exactly the full-size convention) and keeping output pixels at least half covered gives the
    same mask as area-resizing the full-size one, without the full-size allocation (k <= 8, <= 16 MP)."""
    s = max(ow / sw, oh / sh)
    if s >= 0.75:
        return 1
    k = min(8, max(2, round(1.0 / s)))
    while k > 2 and ow * oh * k * k > _SUPERSAMPLE_PIXELS:
        k -= 1
    return k


def _downsample(big: np.ndarray, k: int, multiclass: bool) -> np.ndarray:
    h, w = big.shape[0] // k, big.shape[1] // k
    if not multiclass:  # ``big`` is 0/255
        cover = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
        return (cover >= 128).view(np.uint8)
    # multi-class: per class coverage, the most covered class wins where background covers < half
    out = np.zeros((h, w), np.uint8)
    best = np.full((h, w), 127, np.uint8)  # a class must cover at least half the pixel
    for v in np.unique(big):
        if v == 0:
            continue
        cover = cv2.resize((big == v).astype(np.uint8) * np.uint8(255), (w, h), interpolation=cv2.INTER_AREA)
        win = cover > best
        out[win] = v
        best[win] = cover[win]
    return out


def rasterize_report(
    regions: Iterable,
    src_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
    class_of: Callable[[Region], int | None] | None = None,
) -> tuple[np.ndarray, list[Skipped]]:
    """Like :func:`rasterize`, also returning the regions that were not drawn (``list[Skipped]``)."""
    sw, sh = _size(src_size, "src_size")
    ow, oh = (sw, sh) if out_size is None else _size(out_size, "out_size")
    k = _supersampling(sw, sh, ow, oh)
    if k == 1:
        return _fill(regions, (sw, sh), (ow, oh), class_of, 1)
    big, skipped = _fill(regions, (sw, sh), (ow * k, oh * k), class_of, 255)
    return _downsample(big, k, class_of is not None), skipped


def _fill(regions, src_size, out_size, class_of, binary_value: int) -> tuple[np.ndarray, list[Skipped]]:
    (sw, sh), (ow, oh) = src_size, out_size
    mask = np.zeros((oh, ow), dtype=np.uint8)
    sx, sy = ow / sw, oh / sh
    same = sw == ow and sh == oh
    skipped: list[Skipped] = []
    for i, r in enumerate(regions):
        try:
            region = _as_region(r)
        except TypeError as exc:
            skipped.append(Skipped(i, "", str(exc)))
            continue
        kind = region.kind
        try:
            pts = _shape_polygon(region.shape, None, max(sx, sy))
        except (ValueError, TypeError) as exc:
            skipped.append(Skipped(i, kind, str(exc)))
            continue
        value = binary_value
        if class_of is not None:
            value = class_of(region)
            if value is None or int(value) <= 0:
                skipped.append(Skipped(i, kind, "no class for its attributes"))
                continue
            value = int(value)
            if value > 255:
                skipped.append(Skipped(i, kind, f"class {value} does not fit an 8-bit mask"))
                continue
        if not same:
            pts = np.column_stack(((pts[:, 0] + 0.5) * sx - 0.5, (pts[:, 1] + 0.5) * sy - 0.5))
        if np.abs(pts).max() > _MAX_COORD:
            skipped.append(Skipped(i, kind, "coordinates out of range (more than a million pixels)"))
            continue
        if same and kind in ("polygon", "rect") and np.array_equal(pts, np.round(pts)):
            cv2.fillPoly(mask, [pts.astype(np.int32)], value)
        else:
            cv2.fillPoly(mask, [np.round(pts * (1 << SHIFT)).astype(np.int32)], value, cv2.LINE_8, SHIFT)
    return mask, skipped


def rasterize(
    regions: Iterable,
    src_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
    class_of: Callable[[Region], int | None] | None = None,
) -> np.ndarray:
    """Rasterize ``regions`` (``Region`` objects, VIA 2 region dicts or bare shape dicts) annotated on an image
    of ``src_size = (w, h)`` into a ``uint8`` mask of ``out_size = (w, h)`` (default: ``src_size``), i.e. an
    array of shape ``(h, w)``.

    Binary by default (every area region = 1). With ``class_of(region) -> int``, each region is drawn with its
    class value (1..255) in input order, later regions on top; ``None``/0 means "not drawn" (reported).
    Regions that cannot be drawn are skipped; use :func:`rasterize_report` to get them."""
    return rasterize_report(regions, src_size, out_size, class_of)[0]


def class_mapper(attribute: str, values: Mapping[str, int] | list[str], default: int | None = None):
    """A ``class_of`` for :func:`rasterize` from a region attribute: ``values`` maps attribute values to class
    numbers (a list ``["scratch", "dent"]`` means 1, 2). Regions whose value is not listed get ``default``
    (``None`` = not drawn, reported as skipped). Checkbox-style dict values (``{"dent": true}``) match their
    first true key."""
    table = (
        {str(v): i + 1 for i, v in enumerate(values)} if isinstance(values, (list, tuple)) else dict(values)
    )

    def class_of(region: Region) -> int | None:
        v = region.attributes.get(attribute)
        if isinstance(v, Mapping):
            v = next((k for k, on in v.items() if on), None)
        if v is None:
            return default
        return table.get(str(v), default)

    return class_of


# ---------------------------------------------------------------------------------------- mask -> polygons


def _bridge(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Splice ``hole`` into ``outer`` through the closest pair of vertices (zero-width bridge)."""
    d = ((outer[:, None, :].astype(np.int64) - hole[None, :, :].astype(np.int64)) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    hole_loop = np.concatenate([hole[j:], hole[: j + 1]])  # starts and ends at hole[j]
    return np.concatenate([outer[: i + 1], hole_loop, outer[i:]])


def _simplify(contour: np.ndarray, tolerance: float) -> np.ndarray:
    if tolerance > 0:
        contour = cv2.approxPolyDP(contour, float(tolerance), True)
    return contour.reshape(-1, 2)


def mask_to_polygons(mask: np.ndarray, tolerance: float = 1.0, min_area: float = 10.0) -> list[np.ndarray]:
    """Polygons (``Nx2`` float64, pixel-centre coordinates) of the non-zero pixels of ``mask``.

    One polygon per connected component (8-connected); holes are cut in with a zero-width bridge so the single
    polygon, filled with ``cv2.fillPoly``, keeps the hole. ``tolerance`` is the Douglas-Peucker epsilon in pixels
    (0 = every contour pixel is a vertex). Components and holes whose polygon area (pixel centres, so a 3x3
    square has area 4) is below ``min_area`` are dropped (a dropped hole is filled). Polygons have >= 3
    vertices."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=2)
    if m.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {np.shape(mask)}")
    # a bool mask is taken as it is (0/1 bytes, no copy): a 48-MP map's extra passes cost 0.1 s each
    m = np.ascontiguousarray(m).view(np.uint8) if m.dtype == bool else (m > 0).astype(np.uint8)
    if not m.any():
        return []
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    hier = hierarchy[0]
    out: list[np.ndarray] = []
    for idx, c in enumerate(contours):
        if hier[idx][3] != -1:
            continue  # a hole: handled with its parent
        outer = _simplify(c, tolerance)
        if len(outer) < 3 or abs(cv2.contourArea(outer.astype(np.float32))) < min_area:
            continue
        poly = outer
        child = hier[idx][2]
        holes = []
        while child != -1:
            h = _simplify(contours[child], tolerance)
            if len(h) >= 3 and abs(cv2.contourArea(h.astype(np.float32))) >= min_area:
                holes.append(h)
            child = hier[child][0]
        for h in sorted(holes, key=lambda a: -abs(cv2.contourArea(a.astype(np.float32)))):
            poly = _bridge(poly, h)
        out.append(poly.astype(np.float64))
    return out


def mask_to_regions(
    mask: np.ndarray,
    tolerance: float = 1.0,
    min_area: float = 10.0,
    attributes: Mapping | None = None,
    classes: Mapping[int, Mapping] | None = None,
) -> list[Region]:
    """VIA 2 polygon regions (integer vertices, as VIA itself writes them) from a mask.

    Binary (default): every non-zero pixel is foreground and each region gets a copy of ``attributes``.
    Multi-class: ``classes = {value: attributes}`` makes polygons of each listed mask value separately, with
    that class's attributes (values not listed are ignored)."""
    m = np.asarray(mask)
    binary = m if m.dtype == bool else m > 0
    layers = [(binary, attributes or {})] if classes is None else [(m == v, a) for v, a in classes.items()]
    regions: list[Region] = []
    for layer, attrs in layers:
        for poly in mask_to_polygons(layer, tolerance, min_area):
            pts = np.round(poly).astype(int)
            shape = {
                "name": "polygon",
                "all_points_x": pts[:, 0].tolist(),
                "all_points_y": pts[:, 1].tolist(),
            }
            regions.append(Region(shape=shape, attributes=dict(attrs)))
    return regions


# ------------------------------------------------------------------------------- merging new regions in


def _bbox(pts: np.ndarray) -> tuple[int, int, int, int]:
    """Pixel bounds ``(x0, y0, x1, y1)`` (x1, y1 exclusive) that hold every pixel a fill of ``pts`` sets."""
    lo = np.floor(pts.min(axis=0)).astype(int) - 1
    hi = np.ceil(pts.max(axis=0)).astype(int) + 2
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def _local_fill(mask: np.ndarray, kind: str, pts: np.ndarray, x0: int, y0: int) -> None:
    """Fill ``pts`` (image coordinates) into ``mask``, whose pixel (0, 0) is image pixel (x0, y0), exactly as
    :func:`rasterize` fills it at full size."""
    p = pts - (x0, y0)
    if kind in ("polygon", "rect") and np.array_equal(p, np.round(p)):
        cv2.fillPoly(mask, [p.astype(np.int32)], 1)
    else:
        cv2.fillPoly(mask, [np.round(p * (1 << SHIFT)).astype(np.int32)], 1, cv2.LINE_8, SHIFT)


def _overlap(a: tuple, b: tuple) -> int:
    """Pixels two area regions (``(kind, pts, bbox)``) both cover (0 when their boxes do not meet)."""
    x0, y0 = max(a[2][0], b[2][0]), max(a[2][1], b[2][1])
    x1, y1 = min(a[2][2], b[2][2]), min(a[2][3], b[2][3])
    if x1 <= x0 or y1 <= y0:
        return 0
    ma = np.zeros((y1 - y0, x1 - x0), np.uint8)
    mb = np.zeros_like(ma)
    _local_fill(ma, a[0], a[1], x0, y0)
    _local_fill(mb, b[0], b[1], x0, y0)
    return int(np.count_nonzero(ma & mb))


def merge_regions(
    existing: list[Region], added: list[Region], tolerance: float = 1.0, min_area: float = 10.0
) -> tuple[list[Region], int, int]:
    """The regions of an image after merging ``added`` (e.g. a prediction's polygons) into ``existing``.

    Each added area region goes to the existing area region it overlaps most (pixels both fill, at full size);
    each existing region that received some is replaced, at its place in the list, by the outline(s) of the union
    of its mask and theirs (:func:`mask_to_polygons` with ``tolerance``/``min_area``, integer vertices) keeping
    a copy of its attributes. Existing regions are never merged with each other (their attributes may differ);
    the others stay the very same objects. Added regions that overlap nothing are appended.
    Returns ``(regions, merged, appended)``: the new list, how many existing regions grew, how many were added."""

    def geometry(r: Region):
        pts = shape_polygon(r.shape, 72) if r.kind in AREA_SHAPES else None
        if pts is None or not np.all(np.isfinite(pts)) or np.abs(pts).max() > _MAX_COORD:
            return None
        return r.kind, pts, _bbox(pts)

    old = [geometry(r) for r in existing]
    takes: dict[int, list[tuple]] = {}
    appended: list[Region] = []
    for r in added:
        g = geometry(r)
        best, best_n = -1, 0
        if g is not None:
            for i, e in enumerate(old):
                n = _overlap(g, e) if e is not None else 0
                if n > best_n:
                    best, best_n = i, n
        if best < 0:
            appended.append(r)
        else:
            takes.setdefault(best, []).append(g)
    out: list[Region] = []
    for i, r in enumerate(existing):
        if i not in takes:
            out.append(r)
            continue
        parts = [old[i], *takes[i]]
        x0, y0 = min(p[2][0] for p in parts), min(p[2][1] for p in parts)
        x1, y1 = max(p[2][2] for p in parts), max(p[2][3] for p in parts)
        union = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for kind, pts, _ in parts:
            _local_fill(union, kind, pts, x0, y0)
        polys = mask_to_polygons(union, tolerance, min_area) or mask_to_polygons(union, tolerance, 0.0)
        for poly in polys:
            p = np.round(poly).astype(int) + (x0, y0)
            shape = {"name": "polygon", "all_points_x": p[:, 0].tolist(), "all_points_y": p[:, 1].tolist()}
            out.append(Region(shape=shape, attributes=copy.deepcopy(r.attributes)))
    return out + appended, len(takes), len(appended)
