"""The image canvas: a QWidget painting the photo and regions with QPainter (no scene graph, so a
2,000-vertex polygon drag only rebuilds one path).

View transform: ``widget = image * scale + offset`` where image coordinates are the *true* image pixels; the
displayed QImage may be a reduced decode (see image_cache) and is stretched onto the true size.

Every edit is an ``edits.Command`` handed to ``self.pusher`` (the session's ``push``); a drag pushes commands
with one merge key and calls ``self.end_drag()`` on release, so the drag is one undo step.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QPolygonF, QTransform
from PySide6.QtWidgets import QWidget
from viaseg.core import edits
from viaseg.core.edits import EditError
from viaseg.core.project import ImageEntry, Region
from viaseg.core.raster import rasterize

from .hits import nearest_edge, outline_hit
from .shapes_qt import color_for, mask_image, point_of, polygon_path, region_polygon

HANDLE = 7  # handle size in widget pixels
HIT = 8  # pick radius in widget pixels


class Canvas(QWidget):
    selection_changed = Signal(int)  # region index or -1
    cursor_moved = Signal(float, float)  # image coordinates (NaN outside the image)
    view_changed = Signal()  # zoom/offset changed
    message = Signal(str)
    drawing_changed = Signal(bool)

    _drag_ids = itertools.count(1)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 150)
        self.pusher = None  # callable(cmd); default: apply directly
        self.end_drag = lambda: None
        self.default_attributes = dict  # callable -> attributes of a newly drawn region
        self.class_of = lambda region: ""  # callable(region) -> class value (for colour)
        self.entry: ImageEntry | None = None
        self.img_size: tuple[int, int] = (0, 0)
        self.qimage: QImage | None = None
        self.placeholder = ""
        self.scale = 1.0
        self.offset = QPointF(0, 0)
        self.selected = -1
        self.sel_vertex = -1
        self.overlay_visible = True
        self.opacity = 0.35
        self.mask_view = False
        self.prediction: QImage | None = None
        self._polys: list[QPolygonF] = []
        self._paths: list[QPainterPath] = []
        self._disp_cache: tuple[float, QImage] | None = None
        self._mask_cache: QImage | None = None
        self._drag: dict | None = None
        self._pan: tuple[QPointF, QPointF] | None = None
        self._space = False
        self.drawing: list[tuple[float, float]] | None = None
        self._cursor = QPointF(-1, -1)
        self._auto_fit = True  # the view follows the widget size until the user zooms or pans
        self.tool = None  # an interaction tool (gui.assist_tool): sees mouse/keys first, paints on top
        self.highlight: list[tuple[QPolygonF, QColor]] = []  # outlines drawn on top (a label check's areas)

    # ------------------------------------------------------------------------------------------- content
    def set_entry(self, entry: ImageEntry | None, qimage: QImage | None, size: tuple[int, int] | None,
                  fit: bool = True, placeholder: str = "") -> None:
        """Show ``entry`` (None for an external image) with its decoded picture (None when unreadable)."""
        same = entry is self.entry and entry is not None
        self.entry = entry
        self.qimage = qimage
        self.placeholder = placeholder
        if size is None or size[0] <= 0 or size[1] <= 0:
            size = (qimage.width(), qimage.height()) if qimage is not None else (0, 0)
        self.img_size = (int(size[0]), int(size[1]))
        self._disp_cache = None
        self.prediction = None
        if not same:
            self.selected = -1
            self.sel_vertex = -1
            self.highlight = []
            self.cancel_drawing()
        self.refresh()
        if fit:
            self.fit()
        if self.tool is not None:
            self.tool.image_changed()
        self.selection_changed.emit(self.selected)

    def replace_image(self, qimage: QImage) -> None:
        """Same image, better resolution (full decode arrived): keep the view."""
        self.qimage = qimage
        self._disp_cache = None
        if self.tool is not None:
            self.tool.image_changed(same=True)
        self.update()

    def refresh(self) -> None:
        """Region geometry or attributes changed: rebuild paths (cheap) and repaint."""
        regions = self.entry.regions if self.entry is not None else []
        self._polys = [region_polygon(r) for r in regions]
        self._paths = [polygon_path(q, r.kind != "polyline") for q, r in zip(self._polys, regions, strict=True)]
        self._mask_cache = None
        if self.selected >= len(regions):
            self.selected = -1
            self.sel_vertex = -1
        self.update()

    def _refresh_one(self, index: int, vertex: int | None = None) -> None:
        """One region changed; with ``vertex``, only that vertex moved (no per-vertex Python work)."""
        if self.entry is not None and 0 <= index < len(self._paths):
            r = self.entry.regions[index]
            poly = self._polys[index]
            xs, ys = r.shape.get("all_points_x") or [], r.shape.get("all_points_y") or []
            if vertex is not None and 0 <= vertex < poly.size() and poly.size() in (len(xs), len(xs) - 1):
                poly[vertex] = QPointF(float(xs[vertex]), float(ys[vertex]))
            else:
                poly = self._polys[index] = region_polygon(r)
            self._paths[index] = polygon_path(poly, r.kind != "polyline")
            self._mask_cache = None
        self.update()

    def dragging(self) -> bool:
        return self._drag is not None

    def set_prediction_overlay(self, image: QImage | None) -> None:
        """An RGBA image (any resolution, stretched to the image) drawn over the photo, below regions."""
        self.prediction = image
        self.update()

    def set_highlight(self, outlines) -> None:
        """Dashed outlines over everything else: ``[(points [(x, y), ...] in image pixels, QColor)]``; they
        stay until another image is shown or this is called again (``[]`` clears them)."""
        self.highlight = [(QPolygonF([QPointF(float(x), float(y)) for x, y in pts]), QColor(c))
                          for pts, c in outlines or [] if len(pts) >= 2]
        self.update()

    def set_overlay_visible(self, on: bool) -> None:
        self.overlay_visible = on
        self.update()

    def set_opacity(self, value: float) -> None:
        self.opacity = min(max(value, 0.0), 1.0)
        self._mask_cache = None
        self.update()

    def set_mask_view(self, on: bool) -> None:
        self.mask_view = on
        self.update()

    def select(self, index: int) -> None:
        n = len(self.entry.regions) if self.entry is not None else 0
        index = index if 0 <= index < n else -1
        if index != self.selected:
            self.selected = index
            self.sel_vertex = -1
            self.selection_changed.emit(index)
        self.update()

    def selected_region(self) -> Region | None:
        if self.entry is not None and 0 <= self.selected < len(self.entry.regions):
            return self.entry.regions[self.selected]
        return None

    # ---------------------------------------------------------------------------------------------- view
    def fit(self) -> None:
        w, h = self.img_size
        if w <= 0 or h <= 0 or self.width() <= 0:
            self.scale, self.offset = 1.0, QPointF(0, 0)
        else:
            self.scale = min(self.width() / w, self.height() / h) * 0.98
            self.offset = QPointF((self.width() - w * self.scale) / 2, (self.height() - h * self.scale) / 2)
        self._auto_fit = True
        self._disp_cache = None
        self.view_changed.emit()
        self.update()

    def zoom_to(self, scale: float, anchor: QPointF | None = None) -> None:
        """Zoom so one image pixel is ``scale`` widget pixels, keeping ``anchor`` (widget point) fixed."""
        scale = min(max(scale, 1e-3), 64.0)
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        img_pt = self.to_image(anchor)
        self.scale = scale
        self.offset = QPointF(anchor.x() - img_pt.x() * scale, anchor.y() - img_pt.y() * scale)
        self._auto_fit = False
        self._disp_cache = None
        self.view_changed.emit()
        self.update()

    def show_region(self, index: int) -> None:
        """Zoom and pan so region ``index`` fills about 40 % of the view (never below the fitted view, at most
        8x it), centred: where a problem points, the user sees it."""
        if 0 <= index < len(self._polys):
            self.show_rect(self._polys[index].boundingRect())

    def show_rect(self, r: QRectF) -> None:
        """Zoom and pan so the image rectangle ``r`` fills about 40 % of the view (see :meth:`show_region`)."""
        w, h = self.img_size
        if w <= 0 or self.width() <= 0:
            return
        fit = min(self.width() / w, self.height() / h) * 0.98
        want = min(self.width() / (r.width() * 2.5 + 1), self.height() / (r.height() * 2.5 + 1))
        self.scale = max(fit, min(want, fit * 8))
        c = r.center()
        self.offset = QPointF(self.width() / 2 - c.x() * self.scale, self.height() / 2 - c.y() * self.scale)
        self._auto_fit = False
        self._disp_cache = None
        self.view_changed.emit()
        self.update()

    def to_image(self, p: QPointF) -> QPointF:
        return QPointF((p.x() - self.offset.x()) / self.scale, (p.y() - self.offset.y()) / self.scale)

    def to_widget(self, x: float, y: float) -> QPointF:
        return QPointF(x * self.scale + self.offset.x(), y * self.scale + self.offset.y())

    def needs_full_resolution(self) -> bool:
        if self.qimage is None or self.img_size[0] <= 0:
            return False
        return self.scale * self.img_size[0] > self.qimage.width() * 1.05

    def resizeEvent(self, event) -> None:  # noqa: N802
        if self._auto_fit:  # opened before the window had its size, or fitted and then resized
            self.fit()
        super().resizeEvent(event)

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
            img = q.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
            self._disp_cache = (f, img)
        return self._disp_cache[1], f

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(48, 48, 48))
        if self.qimage is None:
            p.setPen(QColor(220, 220, 220))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder or "no image")
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
                    src = QRectF((vis.x() - self.offset.x()) * k, (vis.y() - self.offset.y()) * k,
                                 vis.width() * k, vis.height() * k)
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
            for c, style, width in ((QColor(0, 0, 0, 200), Qt.PenStyle.SolidLine, 4),
                                    (color, Qt.PenStyle.DashLine, 2)):
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

    # ----------------------------------------------------------------------------------------- hit tests
    def _widget_points(self, region: Region) -> np.ndarray:
        pts = self._handle_points(region)
        if not pts:
            return np.zeros((0, 2))
        return np.asarray(pts, dtype=float) * self.scale + (self.offset.x(), self.offset.y())

    def vertex_at(self, pos: QPointF) -> int:
        region = self.selected_region()
        if region is None:
            return -1
        arr = self._widget_points(region)
        if len(arr) == 0:
            return -1
        d2 = ((arr - (pos.x(), pos.y())) ** 2).sum(axis=1)
        i = int(np.argmin(d2))
        return i if d2[i] <= HIT * HIT else -1

    def edge_at(self, pos: QPointF) -> tuple[int, QPointF] | None:
        """(index of the segment start, nearest image point) on the selected polygon's outline within ``HIT``
        widget pixels of ``pos`` (inside or outside the fill), or None."""
        region = self.selected_region()
        if region is None or region.kind not in ("polygon", "polyline"):
            return None
        hit = nearest_edge(self._widget_points(region), region.kind == "polygon", (pos.x(), pos.y()))
        if hit is None or hit[2] > HIT:
            return None
        return hit[0], self.to_image(QPointF(float(hit[1][0]), float(hit[1][1])))

    def outline_at(self, pos: QPointF) -> int:
        """The polygon / polyline whose outline passes within ``HIT`` widget pixels of ``pos`` (the selected
        one first), or -1: a click on or just outside an edge picks that region."""
        if self.entry is None:
            return -1
        outlines = [(self._widget_points(r), r.kind == "polygon") if r.kind in ("polygon", "polyline")
                    else (np.zeros((0, 2)), False) for r in self.entry.regions]
        return outline_hit(outlines, (pos.x(), pos.y()), HIT, self.selected)

    def region_at(self, pos: QPointF) -> int:
        if self.entry is None:
            return -1
        ip = self.to_image(pos)
        if 0 <= self.selected < len(self._paths) and self._paths[self.selected].contains(ip):
            return self.selected
        for i in range(len(self._paths) - 1, -1, -1):
            if self._paths[i].contains(ip):
                return i
        for i, r in enumerate(self.entry.regions):
            pt = point_of(r) if r.kind == "point" else None
            if pt is not None and (self.to_widget(pt.x(), pt.y()) - pos).manhattanLength() <= HIT * 1.5:
                return i
        return -1

    # ------------------------------------------------------------------------------------------- editing
    def _push(self, cmd) -> bool:
        """Apply a command (or a zero-argument factory of one, which may refuse with EditError)."""
        try:
            if not isinstance(cmd, edits.Command):
                cmd = cmd()
            if self.pusher is not None:
                self.pusher(cmd)
            else:
                cmd.do()
        except EditError as exc:
            self.message.emit(str(exc))
            return False
        return True

    def delete_selected_vertex(self) -> bool:
        region = self.selected_region()
        if region is None or self.sel_vertex < 0 or region.kind not in ("polygon", "polyline"):
            return False
        if self._push(lambda: edits.delete_vertex(region, self.sel_vertex, self.entry)):
            self.sel_vertex = -1
            self._refresh_one(self.selected)
        return True

    def delete_selected_region(self) -> bool:
        region = self.selected_region()
        if region is None:
            return False
        self._push(edits.DeleteRegions(self.entry, [region]))
        self.selected, self.sel_vertex = -1, -1
        self.refresh()
        self.selection_changed.emit(-1)
        return True

    def cycle_selection(self, step: int = 1) -> None:
        n = len(self.entry.regions) if self.entry is not None else 0
        if n:
            self.select((self.selected + step) % n if self.selected >= 0 else (0 if step > 0 else n - 1))

    # drawing
    def start_drawing(self) -> None:
        if self.entry is None:
            self.message.emit("drawing needs an image of the project")
            return
        self.drawing = []
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.drawing_changed.emit(True)
        self.message.emit("Draw: click points; Enter, double-click or the first point closes; Esc cancels")
        self.update()

    def cancel_drawing(self) -> None:
        if self.drawing is not None:
            self.drawing = None
            self.unsetCursor()
            self.drawing_changed.emit(False)
            self.update()

    def finish_drawing(self) -> bool:
        pts = self.drawing or []
        if len(pts) < 3:
            self.message.emit("a polygon needs at least 3 points")
            return False
        shape = {"name": "polygon", "all_points_x": [int(round(x)) for x, _ in pts],
                 "all_points_y": [int(round(y)) for _, y in pts]}
        region = Region(shape=shape, attributes=dict(self.default_attributes()))
        self.drawing = None
        self.unsetCursor()
        self.drawing_changed.emit(False)
        if self._push(edits.AddRegions(self.entry, [region])):
            self.refresh()
            self.select(len(self.entry.regions) - 1)
        return True

    # ------------------------------------------------------------------------------------------- events
    def _clamp(self, ip: QPointF) -> tuple[float, float]:
        w, h = self.img_size
        return min(max(ip.x(), 0.0), float(w)), min(max(ip.y(), 0.0), float(h))

    def mousePressEvent(self, ev) -> None:  # noqa: N802
        pos = ev.position()
        self.setFocus()
        if ev.button() == Qt.MouseButton.MiddleButton or (ev.button() == Qt.MouseButton.LeftButton and self._space):
            self._pan = (pos, QPointF(self.offset))
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if self.tool is not None and self.tool.press(ev, pos):
            return
        if ev.button() != Qt.MouseButton.LeftButton or self.entry is None:
            return
        mods = ev.modifiers()
        if self.drawing is not None:
            if len(self.drawing) >= 3:
                first = self.to_widget(*self.drawing[0])
                if (first - pos).manhattanLength() <= HIT * 1.5:
                    self.finish_drawing()
                    return
            self.drawing.append(self._clamp(self.to_image(pos)))
            self.update()
            return
        alt = bool(mods & Qt.KeyboardModifier.AltModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        region = self.selected_region()
        v = self.vertex_at(pos)
        if region is not None and alt and shift and v >= 0 and region.kind in ("polygon", "polyline"):
            self.sel_vertex = v
            self.delete_selected_vertex()
            return
        if region is not None and alt and not shift and self._insert_at(pos):
            return
        if region is not None and v >= 0:
            self.sel_vertex = v
            kind = "vertex" if region.kind in ("polygon", "polyline") else "resize"
            handle = None if kind == "vertex" else edits.handles(region.shape)[v][0]
            self._drag = {"kind": kind, "index": v, "handle": handle, "key": (kind, next(self._drag_ids))}
            self.update()
            return
        hit = self.region_at(pos)
        if hit < 0:
            hit = self.outline_at(pos)  # on the line or just outside it: the first click of a double-click
        self.select(hit)
        if hit >= 0:
            r = self.entry.regions[hit]
            self._drag = {"kind": "move", "start": self.to_image(pos), "orig": dict(r.shape),
                          "key": ("move", next(self._drag_ids)), "moved": False}

    def _insert_at(self, pos: QPointF) -> bool:
        e = self.edge_at(pos)
        if e is None:
            return False
        i, ip = e
        if self._push(lambda: edits.insert_vertex(self.selected_region(), i + 1, ip.x(), ip.y(), self.entry)):
            self.sel_vertex = i + 1
            self._refresh_one(self.selected)
        return True

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802
        pos = ev.position()
        self._cursor = pos
        ip = self.to_image(pos)
        w, h = self.img_size
        inside = 0 <= ip.x() < w and 0 <= ip.y() < h
        self.cursor_moved.emit(ip.x() if inside else math.nan, ip.y() if inside else math.nan)
        if self._pan is not None:
            start, off = self._pan
            self.offset = off + (pos - start)
            self._auto_fit = False
            self.view_changed.emit()
            self.update()
            return
        if self.tool is not None and self.tool.move(ev, pos):
            return
        if self.drawing is not None:
            self.update()
            return
        d = self._drag
        if d is None:
            return
        region = self.selected_region()
        if region is None:
            return
        x, y = self._clamp(ip)
        if d["kind"] == "vertex":
            cmd = edits.move_vertex(region, d["index"], x, y, self.entry, merge_key=d["key"])
        elif d["kind"] == "resize":
            cmd = edits.resize_shape(region, d["handle"], x, y, self.entry, merge_key=d["key"])
        else:
            dx, dy = ip.x() - d["start"].x(), ip.y() - d["start"].y()
            if not d["moved"] and math.hypot(dx, dy) * self.scale < 3:
                return  # a click, not a drag
            d["moved"] = True
            cmd = edits.SetShape(region, edits.translated(d["orig"], dx, dy), self.entry, d["key"], "move region")
        if self._push(cmd):
            self._refresh_one(self.selected, d["index"] if d["kind"] == "vertex" else None)

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802
        if self._pan is not None:
            self._pan = None
            self.unsetCursor() if self.drawing is None else self.setCursor(Qt.CursorShape.CrossCursor)
            return
        if self.tool is not None and self.tool.release(ev, ev.position()):
            return
        if self._drag is not None:
            self._drag = None
            self.end_drag()

    def mouseDoubleClickEvent(self, ev) -> None:  # noqa: N802
        if self.tool is not None and self.tool.press(ev, ev.position()):
            return  # a quick second click of the tool is a click, not a double-click
        if self.drawing is not None:
            if len(self.drawing) >= 3:
                self.finish_drawing()
            return
        pos = ev.position()
        if self.selected_region() is not None and self.vertex_at(pos) >= 0:
            return
        if self.edge_at(pos) is None:  # not the selected outline: another region's, selected first
            hit = self.outline_at(pos)
            if hit < 0:
                return
            self.select(hit)
        self._insert_at(pos)

    def wheelEvent(self, ev) -> None:  # noqa: N802
        delta = ev.angleDelta()
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = delta.y() / 120.0
            self.zoom_to(self.scale * (1.25 ** steps), ev.position())
        else:
            dx, dy = delta.x() / 2.0, delta.y() / 2.0
            if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                dx, dy = dy, dx
            self.offset = self.offset + QPointF(dx, dy)
            self._auto_fit = False
            self.view_changed.emit()
            self.update()

    def event(self, ev) -> bool:
        # Tab cycles regions instead of moving the keyboard focus
        if ev.type() == ev.Type.KeyPress and ev.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            self.cycle_selection(-1 if ev.key() == Qt.Key.Key_Backtab else 1)
            return True
        return super().event(ev)

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        k = ev.key()
        if self.tool is not None and self.tool.key(ev):
            return
        if k == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif k == Qt.Key.Key_Escape:
            if self.drawing is not None:
                self.cancel_drawing()
            else:
                self.select(-1)
        elif k in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.drawing is not None:
            self.finish_drawing()
        elif k == Qt.Key.Key_Backspace and self.drawing is not None:
            if self.drawing:
                self.drawing.pop()
                self.update()
        elif k in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            if not self.delete_selected_vertex() and k == Qt.Key.Key_Delete:
                self.delete_selected_region()
        else:
            super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev) -> None:  # noqa: N802
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = False
            if self.drawing is None:
                self.unsetCursor()
        else:
            super().keyReleaseEvent(ev)
