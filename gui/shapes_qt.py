"""Region geometry and colours as Qt objects (QPolygonF/QPainterPath/QImage) for the canvas."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage, QPainterPath, QPolygonF
from viaseg.core.annotation import edits
from viaseg.core.annotation.project import Region
from viaseg.core.annotation.raster import shape_polygon

PALETTE = [
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#46f0f0",
    "#f032e6",
    "#bcf60c",
    "#fabebe",
    "#008080",
    "#e6beff",
    "#9a6324",
    "#fffac8",
    "#800000",
    "#aaffc3",
    "#808000",
    "#ffd8b1",
    "#000075",
]


def color_for(value: str) -> QColor:
    """A stable colour per class value."""
    if not value:
        return QColor("#ffd400")
    h = sum((i + 1) * ord(c) for i, c in enumerate(value))
    return QColor(PALETTE[h % len(PALETTE)])


def region_polygon(region: Region) -> QPolygonF:
    """Outline in image coordinates: a polygon/polyline's own (logical) vertices, else the sampled shape."""
    if region.kind in ("polygon", "polyline"):
        try:
            pts = [QPointF(float(x), float(y)) for x, y in edits.logical_points(region.shape)]
        except (TypeError, ValueError):
            return QPolygonF()
        return QPolygonF(pts)
    pts = shape_polygon(region.shape)
    if pts is None or len(pts) == 0:
        return QPolygonF()
    return QPolygonF([QPointF(float(x), float(y)) for x, y in pts])


def polygon_path(poly: QPolygonF, closed: bool) -> QPainterPath:
    path = QPainterPath()
    if poly.size():
        path.addPolygon(poly)
        if closed:
            path.closeSubpath()
    return path


def point_of(region: Region) -> QPointF | None:
    try:
        return QPointF(float(region.shape["cx"]), float(region.shape["cy"]))
    except (KeyError, TypeError, ValueError):
        return None


def region_path(region: Region) -> QPainterPath:
    return polygon_path(region_polygon(region), region.kind != "polyline")


def mask_image(mask: np.ndarray, alpha: int) -> QImage:
    """A uint8 mask as an RGBA image: white where set, black elsewhere, with ``alpha``."""
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[..., 3] = alpha
    rgba[mask > 0, :3] = 255
    img = QImage(rgba.data, rgba.shape[1], rgba.shape[0], 4 * rgba.shape[1], QImage.Format.Format_RGBA8888)
    return img.copy()
