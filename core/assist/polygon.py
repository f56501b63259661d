"""Click-to-segment's polygons (numpy/OpenCV, no Qt, no TensorFlow): a :class:`~viaseg.core.assist.mask.RegionMask`
keeps its mask, so its outline can be made again at any detail: :func:`polygon` at a level of :data:`LEVELS`
(Douglas-Peucker tolerances), :func:`default_level` (the fewest vertices whose polygon keeps IoU >=
:data:`TARGET_IOU` with the mask), :func:`polygon_shape` (a VIA 2 polygon shape with integer vertices) and
:func:`parts` (a region in several pieces: one polygon each).
"""

from __future__ import annotations

import cv2
import numpy as np

from .mask import RegionMask, _crop

LEVELS = (0.0,) + tuple(round(0.3 * 1.4**k, 3) for k in range(20))  # Douglas-Peucker epsilon, mask pixels
TARGET_IOU = 0.95


def _outline(mask: np.ndarray) -> np.ndarray | None:
    """The largest outer contour of ``mask`` (N x 1 x 2 int, every boundary pixel)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    return max(contours, key=lambda c: (cv2.contourArea(c), len(c)))


def _poly_at(contour: np.ndarray, eps: float) -> np.ndarray:
    pts = cv2.approxPolyDP(contour, float(eps), True) if eps > 0 else contour
    pts = pts.reshape(-1, 2)
    if len(pts) < 3:
        pts = contour.reshape(-1, 2)
        idx = np.linspace(0, len(pts) - 1, num=min(len(pts), 3)).astype(int)
        pts = pts[idx]
    return pts


def _iou_of(poly: np.ndarray, mask: np.ndarray) -> float:
    canvas = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(canvas, [poly.reshape(-1, 1, 2).astype(np.int32)], 1)
    inter = np.logical_and(canvas, mask).sum()
    union = np.logical_or(canvas, mask).sum()
    return float(inter) / float(union) if union else 0.0


MIN_PART = 0.02  # a part of a region smaller than this share of its largest part is not made a polygon


def parts(region: RegionMask, min_share: float = MIN_PART) -> list[RegionMask]:
    """The region's separate parts (8-connected), largest first, each as its own RegionMask on the same grid;
    parts under ``min_share`` of the largest are dropped (outline specks). A region in one piece comes back
    as itself. Clicks can give a region in several pieces (a positive click far from it adds a part there);
    a VIA polygon holds one outline, so each part becomes its own polygon."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(region.mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return [region] if n == 2 else []
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = [k + 1 for k in np.argsort(-areas, kind="stable") if areas[k] >= min_share * areas.max()]
    return [_crop(lab == k, region.x0, region.y0, region.scale, region.source) for k in keep]


def polygon(region: RegionMask, level: int) -> np.ndarray:
    """The region's outline at detail ``level`` (index into :data:`LEVELS`; 0 = every boundary pixel), as
    N x 2 photo coordinates (float). Empty (0 x 2) if the mask is empty."""
    return _polygon_of(region, _outline(region.mask), level)


def _polygon_of(region: RegionMask, contour: np.ndarray | None, level: int) -> np.ndarray:
    if contour is None:
        return np.zeros((0, 2))
    level = min(max(int(level), 0), len(LEVELS) - 1)
    pts = _poly_at(contour, LEVELS[level]).astype(np.float64)
    return np.column_stack(
        [region.x0 + (pts[:, 0] + 0.5) * region.scale, region.y0 + (pts[:, 1] + 0.5) * region.scale]
    )


def default_level(region: RegionMask, target_iou: float = TARGET_IOU) -> int:
    """The level with the fewest vertices whose polygon keeps IoU >= ``target_iou`` with the mask (0 if none)."""
    contour = _outline(region.mask)
    if contour is None:
        return 0
    best, best_n = 0, len(contour)
    for i, eps in enumerate(LEVELS):
        pts = _poly_at(contour, eps)
        if len(pts) >= 3 and _iou_of(pts, region.mask) >= target_iou and len(pts) <= best_n:
            best, best_n = i, len(pts)
    return best


def polygon_shape(points: np.ndarray, size_wh: tuple[int, int] | None = None) -> dict:
    """A VIA 2 polygon shape (integer vertices, as VIA writes them) from N x 2 photo coordinates; with the photo's
    ``size_wh``, each vertex is moved inside the photo (0..W, 0..H: a mask's cell can be larger than a thin photo,
    and its outline then reaches outside it)."""
    pts = np.round(np.asarray(points, dtype=np.float64)).astype(int).reshape(-1, 2)
    if size_wh is not None:
        pts = np.column_stack(
            [np.clip(pts[:, 0], 0, int(size_wh[0])), np.clip(pts[:, 1], 0, int(size_wh[1]))]
        )
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(np.diff(pts, axis=0) != 0, axis=1)  # rounding (or clipping) can repeat a vertex
    pts = pts[keep]
    return {"name": "polygon", "all_points_x": pts[:, 0].tolist(), "all_points_y": pts[:, 1].tolist()}


def shape_area(shape: dict) -> float:
    """The area (photo pixels) a VIA polygon shape encloses (shoelace); 0 for fewer than 3 vertices or a flat one."""
    xs = np.asarray(shape.get("all_points_x") or [], dtype=np.float64)
    ys = np.asarray(shape.get("all_points_y") or [], dtype=np.float64)
    if len(xs) < 3 or len(xs) != len(ys):
        return 0.0
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))


def usable(shape: dict) -> bool:
    """Whether a polygon shape can be a region: at least 3 vertices enclosing some area."""
    return len(shape.get("all_points_x") or []) >= 3 and shape_area(shape) > 0


def level_shapes(region: RegionMask, size_wh: tuple[int, int] | None = None) -> list[dict]:
    """The region's VIA polygon shape at each of :data:`LEVELS` (``polygon_shape`` of :func:`polygon`, clipped to
    the photo when ``size_wh`` is given): what the detail control makes, so its vertex counts are the regions'."""
    contour = _outline(region.mask)
    return [polygon_shape(_polygon_of(region, contour, i), size_wh) for i in range(len(LEVELS))]
