"""The canvas's mouse and keyboard interaction: hit tests (vertex, edge, outline, region under the pointer),
selecting, dragging vertices / handles / regions, inserting vertices, drawing, panning with Space;
:class:`InteractionMixin` is a base class of ``Canvas``."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, Qt
from viaseg.core.annotation import edits
from viaseg.core.annotation.project import Region

from .drags import MoveDrag, ResizeDrag, VertexDrag, drag_command
from .hits import HIT, nearest_edge, outline_hit
from .shapes_qt import point_of


class InteractionMixin:
    """``Canvas``'s hit tests and mouse / key events (an active ``tool`` sees them first)."""

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
        outlines = [
            (self._widget_points(r), r.kind == "polygon")
            if r.kind in ("polygon", "polyline")
            else (np.zeros((0, 2)), False)
            for r in self.entry.regions
        ]
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

    # ------------------------------------------------------------------------------------------- events
    def _clamp(self, ip: QPointF) -> tuple[float, float]:
        w, h = self.img_size
        return min(max(ip.x(), 0.0), float(w)), min(max(ip.y(), 0.0), float(h))

    def mousePressEvent(self, ev) -> None:
        pos = ev.position()
        self.setFocus()
        if ev.button() == Qt.MouseButton.MiddleButton or (
            ev.button() == Qt.MouseButton.LeftButton and self._space
        ):
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
            if region.kind in ("polygon", "polyline"):
                self._drag = VertexDrag(v, ("vertex", next(self._drag_ids)))
            else:
                self._drag = ResizeDrag(
                    v, edits.handles(region.shape)[v][0], ("resize", next(self._drag_ids))
                )
            self.update()
            return
        hit = self.region_at(pos)
        if hit < 0:
            hit = self.outline_at(pos)  # on the line or just outside it: the first click of a double-click
        self.select(hit)
        if hit >= 0:
            r = self.entry.regions[hit]
            start = self.to_image(pos)
            self._drag = MoveDrag((start.x(), start.y()), dict(r.shape), ("move", next(self._drag_ids)))

    def _insert_at(self, pos: QPointF) -> bool:
        e = self.edge_at(pos)
        if e is None:
            return False
        i, ip = e
        if self._push(lambda: edits.insert_vertex(self.selected_region(), i + 1, ip.x(), ip.y(), self.entry)):
            self.sel_vertex = i + 1
            self._refresh_one(self.selected)
        return True

    def mouseMoveEvent(self, ev) -> None:
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
        cmd = drag_command(d, region, (ip.x(), ip.y()), self._clamp(ip), self.entry, self.scale)
        if cmd is not None and self._push(cmd):
            self._refresh_one(self.selected, d.index if isinstance(d, VertexDrag) else None)

    def mouseReleaseEvent(self, ev) -> None:
        if self._pan is not None:
            self._pan = None
            self.unsetCursor() if self.drawing is None else self.setCursor(Qt.CursorShape.CrossCursor)
            return
        if self.tool is not None and self.tool.release(ev, ev.position()):
            return
        if self._drag is not None:
            self._drag = None
            self.end_drag()

    def mouseDoubleClickEvent(self, ev) -> None:
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

    def event(self, ev) -> bool:
        # Tab cycles regions instead of moving the keyboard focus
        if ev.type() == ev.Type.KeyPress and ev.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            self.cycle_selection(-1 if ev.key() == Qt.Key.Key_Backtab else 1)
            return True
        return super().event(ev)

    def keyPressEvent(self, ev) -> None:
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

    def keyReleaseEvent(self, ev) -> None:
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = False
            if self.drawing is None:
                self.unsetCursor()
        else:
            super().keyReleaseEvent(ev)
