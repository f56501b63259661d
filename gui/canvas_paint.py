"""The canvas's painting with QPainter: the photo (scaled per zoom, cached), the prediction overlay, regions,
the selected region's handles, the polygon being drawn, highlighted outlines, the mask view;
:class:`PaintMixin` is a base class of ``Canvas``."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPolygonF, QTransform
from viaseg.core.annotation import edits
from viaseg.core.annotation.project import Region
from viaseg.core.annotation.raster import rasterize

from .hits import HIT
from .shapes_qt import color_for, mask_image, point_of

HANDLE = 7  # handle size in widget pixels
# the text shown where there is no photo (why it cannot be read): centred, wrapped within the margin
PLACEHOLDER_MARGIN = 16
PLACEHOLDER_FLAGS = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap


class PaintMixin:
    """``Canvas``'s ``paintEvent`` and what it draws."""

    # --------------------------------------------------------------------------------------------- paint
    def _display_image(self) -> tuple[QImage, float] | None:
        """The picture smoothly scaled to the current zoom, cached per zoom; None when that image would be too
        big (zoomed far in: the visible part is then drawn from the source)."""
        q = self.qimage
        f = self.scale * self.img_size[0] / q.width()  # widget px per QImage px
        w = max(1, round(q.width() * f))
        h = max(1, round(q.height() * f))
        if f >= 1.0 and w * h > 12_000_000:
            return None
        if self._disp_cache is None or abs(self._disp_cache[0] - f) > 1e-9:
            img = q.scaled(
                w, h, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self._disp_cache = (f, img)
        return self._disp_cache[1], f

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(48, 48, 48))
        if self.qimage is None:
            p.setPen(QColor(220, 220, 220))
            # wrapped, with a margin: a reason naming a long path ran off both sides of a narrow canvas
            box = self.rect().adjusted(PLACEHOLDER_MARGIN, 0, -PLACEHOLDER_MARGIN, 0)
            p.drawText(box, PLACEHOLDER_FLAGS, self.placeholder or "no image")
            if self.img_size[0] <= 0:
                p.end()
                return
        iw, ih = self.img_size
        target = QRectF(self.offset.x(), self.offset.y(), iw * self.scale, ih * self.scale)
        if self.qimage is not None:
            disp = self._display_image()
            if disp is not None:
                p.drawImage(QPointF(round(self.offset.x()), round(self.offset.y())), disp[0])
            else:  # zoomed in: draw only the visible part of the source
                vis = target.intersected(QRectF(self.rect()))
                if not vis.isEmpty():
                    k = self.qimage.width() / (iw * self.scale)
                    src = QRectF(
                        (vis.x() - self.offset.x()) * k,
                        (vis.y() - self.offset.y()) * k,
                        vis.width() * k,
                        vis.height() * k,
                    )
                    p.drawImage(vis, self.qimage, src)
        else:
            p.setPen(QColor(150, 150, 150))
            p.drawRect(target)
        if self.prediction is not None:
            p.drawImage(target, self.prediction)
        if self.overlay_visible and self.entry is not None:
            if self.mask_view:
                self._paint_mask(p, target)
            else:
                self._paint_regions(p)
        if self.drawing is not None:
            self._paint_drawing(p)
        if self.highlight:
            self._paint_highlight(p)
        if self.tool is not None:
            self.tool.paint(p)
        p.end()

    def _paint_highlight(self, p: QPainter) -> None:
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setTransform(QTransform(self.scale, 0, 0, self.scale, self.offset.x(), self.offset.y()))
        p.setBrush(Qt.BrushStyle.NoBrush)
        for poly, color in self.highlight:
            for c, style, width in (
                (QColor(0, 0, 0, 200), Qt.PenStyle.SolidLine, 4),
                (color, Qt.PenStyle.DashLine, 2),
            ):
                pen = QPen(c, width, style)
                pen.setCosmetic(True)
                p.setPen(pen)
                p.drawPolygon(poly)
        p.restore()

    def _paint_mask(self, p: QPainter, target: QRectF) -> None:
        if self._mask_cache is None:
            w, h = self.img_size
            f = min(1.0, 2048 / max(w, h))
            out = (max(1, round(w * f)), max(1, round(h * f)))
            mask = rasterize(self.entry.regions, (w, h), out)
            self._mask_cache = mask_image(mask, int(round(255 * (0.5 + self.opacity / 2))))
        p.drawImage(target, self._mask_cache)

    def _paint_regions(self, p: QPainter) -> None:
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setTransform(QTransform(self.scale, 0, 0, self.scale, self.offset.x(), self.offset.y()))
        alpha = int(round(255 * self.opacity))
        for i, path in enumerate(self._paths):
            region = self.entry.regions[i]
            c = color_for(str(self.class_of(region) or ""))
            pen = QPen(c, 3 if i == self.selected else 2)
            pen.setCosmetic(True)
            fill = QColor(c)
            fill.setAlpha(min(255, alpha + 40) if i == self.selected else alpha)
            p.setPen(pen)
            p.setBrush(fill if region.kind != "polyline" else Qt.BrushStyle.NoBrush)
            if region.kind == "point":
                pt = point_of(region)
                if pt is not None:  # a fixed-size marker whatever the zoom
                    p.drawEllipse(pt, 5 / self.scale, 5 / self.scale)
                continue
            p.drawPath(path)
        p.restore()
        region = self.selected_region()
        if region is not None:
            self._paint_handles(p, region)

    def _handle_points(self, region: Region) -> list[tuple[float, float]]:
        if region.kind in ("polygon", "polyline"):
            return edits.logical_points(region.shape)
        return [(x, y) for _, x, y in edits.handles(region.shape)]

    def _paint_handles(self, p: QPainter, region: Region) -> None:
        if region.kind in ("polygon", "polyline"):
            poly = self._polys[self.selected]
        else:
            poly = QPolygonF([QPointF(x, y) for _, x, y in edits.handles(region.shape)])
        if not poly.size():
            return
        # square points with a cosmetic pen: the per-vertex work stays in C++ (2,000-vertex polygons)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setTransform(QTransform(self.scale, 0, 0, self.scale, self.offset.x(), self.offset.y()))
        for width, color in ((HANDLE + 2, QColor(0, 0, 0)), (HANDLE, QColor(255, 255, 255))):
            pen = QPen(color, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.SquareCap)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.drawPoints(poly)
        if 0 <= self.sel_vertex < poly.size():
            pen = QPen(QColor(255, 40, 40), HANDLE, Qt.PenStyle.SolidLine, Qt.PenCapStyle.SquareCap)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.drawPoint(poly.at(self.sel_vertex))
        p.restore()

    def _paint_drawing(self, p: QPainter) -> None:
        pts = [self.to_widget(x, y) for x, y in self.drawing]
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(QColor(255, 212, 0), 2, Qt.PenStyle.SolidLine))
        if pts:
            p.drawPolyline(QPolygonF(pts + [self._cursor]))
            p.setBrush(QColor(255, 212, 0))
            for q in pts:
                p.drawEllipse(q, 3.5, 3.5)
            if len(pts) >= 3:  # the closing target
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawEllipse(pts[0], HIT, HIT)
