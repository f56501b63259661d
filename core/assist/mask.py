"""Click-to-segment's data and mask operations (numpy/OpenCV, no Qt, no TensorFlow): :class:`Click`,
:class:`RegionMask` (a region's mask on a crop of the photo at some scale, back to full resolution with
:meth:`RegionMask.full`), :class:`Result`, and what both the map and the colour paths of :mod:`.assist` do to a
mask: keep the connected parts holding a click, cut it with negative clicks (:func:`_cut`), crop it to its
bounding box, join two regions on the finer grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CLICK_RADIUS = (
    0.006  # seed discs of clicks, fraction of the image's long side (at least 2 px of the work image)
)


@dataclass(frozen=True)
class Click:
    """A click in image pixels; ``positive`` False for a negative click ("not this")."""

    x: float
    y: float
    positive: bool = True


@dataclass
class RegionMask:
    """A region's mask: ``mask`` (bool, h x w) covers the photo's pixels ``x0 + (col + 0.5) * scale`` across and
    ``y0 + (row + 0.5) * scale`` down. ``source`` says what found it (map, colour, box; '+edges' if refined)."""

    mask: np.ndarray
    x0: float
    y0: float
    scale: float
    source: str = "map"

    def bbox(self) -> tuple[float, float, float, float]:
        h, w = self.mask.shape
        return self.x0, self.y0, self.x0 + w * self.scale, self.y0 + h * self.scale

    def area(self) -> float:
        """Area in photo pixels."""
        return float(self.mask.sum()) * self.scale * self.scale

    def full(self, size_wh: tuple[int, int]) -> np.ndarray:
        """The mask at the photo's full resolution (bool, H x W)."""
        w, h = size_wh
        out = np.zeros((h, w), bool)
        x0, y0, x1, y1 = self.bbox()
        c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        c1, r1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
        if c1 <= c0 or r1 <= r0:
            return out
        # sample the crop at the centres of the full-resolution pixels
        xs = ((np.arange(c0, c1) + 0.5 - x0) / self.scale - 0.5).astype(np.float32)
        ys = ((np.arange(r0, r1) + 0.5 - y0) / self.scale - 0.5).astype(np.float32)
        mx, my = np.meshgrid(xs, ys)
        m = cv2.remap(self.mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out[r0:r1, c0:c1] = m >= 0.5
        return out


@dataclass
class Result:
    """``region`` None means nothing was found; ``message`` then says why (else what found it)."""

    region: RegionMask | None
    message: str = ""


def _disc_radius(shape_hw: tuple[int, int], scale: float, size_wh: tuple[int, int]) -> int:
    return max(2, int(round(CLICK_RADIUS * max(size_wh) / scale)))


def _largest_cc_with(mask: np.ndarray, seeds: list[tuple[int, int]], keep_all: bool = False) -> np.ndarray:
    """The connected parts of ``mask`` that contain one of ``seeds`` (row, col); all parts if ``keep_all``."""
    if keep_all or not mask.any():
        return mask
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    ids = {int(lab[r, c]) for r, c in seeds if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1]} - {0}
    if not ids:
        return np.zeros_like(mask)
    return np.isin(lab, list(ids))


def _cut(region: RegionMask, seeds: list[tuple[float, float]], neg: list[Click]) -> RegionMask | None:
    """Negative clicks cut the region: the pixels nearer a negative click than any positive one (``seeds``,
    photo points) go, then only the parts holding a positive click stay. With no positive click, the parts
    holding a negative click go."""
    m = region.mask
    n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)

    def labels_near(points) -> set[int]:
        out = set()
        for x, y in points:
            col, row = int((x - region.x0) / region.scale), int((y - region.y0) / region.scale)
            win = lab[max(0, row - 2) : row + 3, max(0, col - 2) : col + 3]
            out |= set(np.unique(win).tolist())
        return out - {0}

    if not seeds:
        drop = labels_near([(c.x, c.y) for c in neg])
        out = m & ~np.isin(lab, list(drop))
    else:
        rows, cols = np.nonzero(m)
        xs = region.x0 + (cols + 0.5) * region.scale
        ys = region.y0 + (rows + 0.5) * region.scale
        dp = np.min([(xs - x) ** 2 + (ys - y) ** 2 for x, y in seeds], axis=0)
        dn = np.min([(xs - c.x) ** 2 + (ys - c.y) ** 2 for c in neg], axis=0)
        out = m.copy()
        out[rows[dn < dp], cols[dn < dp]] = False
        n, lab = cv2.connectedComponents(out.astype(np.uint8), connectivity=8)
        out = np.isin(lab, list(labels_near(seeds)))
    if not out.any():
        return None
    return _crop(out, region.x0, region.y0, region.scale, region.source)


def _crop(mask: np.ndarray, x0: float, y0: float, scale: float, source: str) -> RegionMask:
    """The bounding box of ``mask`` (with one empty pixel around it) as a RegionMask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = max(0, rows[0] - 1), min(mask.shape[0], rows[-1] + 2)
    c0, c1 = max(0, cols[0] - 1), min(mask.shape[1], cols[-1] + 2)
    return RegionMask(
        np.ascontiguousarray(mask[r0:r1, c0:c1]), x0 + c0 * scale, y0 + r0 * scale, scale, source
    )


def _union(a: RegionMask, b: RegionMask) -> RegionMask:
    """Both regions on the finer of their two grids."""
    scale = min(a.scale, b.scale)
    ax0, ay0, ax1, ay1 = a.bbox()
    bx0, by0, bx1, by1 = b.bbox()
    x0, y0 = min(ax0, bx0), min(ay0, by0)
    w = int(np.ceil((max(ax1, bx1) - x0) / scale))
    h = int(np.ceil((max(ay1, by1) - y0) / scale))
    out = np.zeros((h, w), bool)
    for r in (a, b):
        xs = ((x0 + (np.arange(w) + 0.5) * scale - r.x0) / r.scale - 0.5).astype(np.float32)
        ys = ((y0 + (np.arange(h) + 0.5) * scale - r.y0) / r.scale - 0.5).astype(np.float32)
        mx, my = np.meshgrid(xs, ys)
        out |= (
            cv2.remap(r.mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            >= 0.5
        )
    return _crop(out, x0, y0, scale, a.source)
