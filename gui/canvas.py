"""The image canvas: a QWidget painting the photo and regions with QPainter (no scene graph, so a
2,000-vertex polygon drag only rebuilds one path).

View transform: ``widget = image * scale + offset`` where image coordinates are the *true* image pixels; the
displayed QImage may be a reduced decode (see image_cache) and is stretched onto the true size.

Every edit is an ``edits.Command`` handed to ``self.pusher`` (the session's ``push``); a drag pushes commands
with one merge key and calls ``self.end_drag()`` on release, so the drag is one undo step.

Its parts live beside it, as base classes: ``canvas_view`` (zoom, pan, fit, coordinate mapping),
``canvas_paint`` (``paintEvent``) and ``canvas_interact`` (hit tests, mouse and keys); ``hits`` and
``shapes_qt`` hold the Qt-free hit geometry and the region -> Qt shape helpers.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainterPath, QPolygonF
from PySide6.QtWidgets import QWidget
from viaseg.core.annotation import edits
from viaseg.core.annotation.edits import EditError
from viaseg.core.annotation.project import ImageEntry, Region

from .canvas_interact import InteractionMixin
from .canvas_paint import HANDLE, PaintMixin
from .canvas_view import ViewMixin
from .drags import Drag
from .hits import HIT
from .shapes_qt import polygon_path, region_polygon

__all__ = ["HANDLE", "HIT", "Canvas"]


class Canvas(ViewMixin, PaintMixin, InteractionMixin, QWidget):
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
        self._drag: Drag | None = None  # the drag under way (drags.py), None when no button is down
        self._pan: tuple[QPointF, QPointF] | None = None
        self._space = False
        self.drawing: list[tuple[float, float]] | None = None
        self._cursor = QPointF(-1, -1)
        self._auto_fit = True  # the view follows the widget size until the user zooms or pans
        self.tool = None  # an interaction tool (gui.assist_tool): sees mouse/keys first, paints on top
        self.highlight: list[tuple[QPolygonF, QColor]] = []  # outlines drawn on top (a label check's areas)

    # ------------------------------------------------------------------------------------------- content
    def set_entry(
        self,
        entry: ImageEntry | None,
        qimage: QImage | None,
        size: tuple[int, int] | None,
        fit: bool = True,
        placeholder: str = "",
    ) -> None:
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
        self._paths = [
            polygon_path(q, r.kind != "polyline") for q, r in zip(self._polys, regions, strict=True)
        ]
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
        self.highlight = [
            (QPolygonF([QPointF(float(x), float(y)) for x, y in pts]), QColor(c))
            for pts, c in outlines or []
            if len(pts) >= 2
        ]
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
        shape = {
            "name": "polygon",
            "all_points_x": [int(round(x)) for x, _ in pts],
            "all_points_y": [int(round(y)) for _, y in pts],
        }
        region = Region(shape=shape, attributes=dict(self.default_attributes()))
        self.drawing = None
        self.unsetCursor()
        self.drawing_changed.emit(False)
        if self._push(edits.AddRegions(self.entry, [region])):
            self.refresh()
            self.select(len(self.entry.regions) - 1)
        return True
