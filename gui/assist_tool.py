"""The AI region tool of the canvas (key I): click a damage, get its polygon.

Left click = positive point, Shift+click or right click = negative point, drag = box; the region a click at
the cursor would give is previewed (dashed outline) as the cursor moves. Enter accepts the current region as
one polygon with the project's default attributes (one undo step), Esc cancels, Backspace takes back the last
click. The work is ``core.assist``; this module only turns mouse and keys into its calls and paints.

First click: the click network (``core.ml.clicknet``, shipped with viaseg, no model of the user's needed) finds
the region a positive first click points at, on its own worker thread (``gui.clicknet_service.ClickNetService``); until
its answer comes (a tenth of a second or so), and where it finds nothing, the region comes from the map or the
photo as below, and later clicks correct whichever region the first click has. While the cursor rests, the
network is asked about that point too, so the preview shows what a click there gives. The toolbar's *Click
network* toggle turns it off (then: the map, else colours and edges).

Map: the active model's probability map of the photo, the one the prediction view shows. It is computed off the
GUI thread by the inference service (asked for when the tool meets a photo without one) and kept, reduced, per
photo. Without a model, or until the map arrives, regions come from the photo's colours and edges.

Fit: a region found from the map or the colours is fitted to the photo's edges (GrabCut, tenths of a second) on a
thread of its own (``gui.assist_fit``); the unfitted region shows until the fitted one replaces it, and Enter
pressed meanwhile adds the fitted one when it comes.

Detail: an accepted region keeps its mask for the session; + / - (with it selected) or the toolbar's Detail
slider make its polygon again from that mask with more / fewer vertices, one undo step each.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QTransform
from viaseg.core.annotation import edits
from viaseg.core.annotation.project import Region
from viaseg.core.assist import segment as assist

from .assist_detail import RegionDetail
from .assist_fit import AsyncFitting, _outline_path
from .assist_net import ClickNetAsking

DRAG_PX = 5  # a press that moves further than this (widget px) is a box drag
MAPS_KEPT = 16
PREVIEW_DELAY_MS = 10


def qimage_rgb(q: QImage) -> np.ndarray:
    """An RGB uint8 copy of a QImage (the canvas's RGB32 in one OpenCV pass: a large photo's copy took 0.7 s)."""
    if q.format() == QImage.Format.Format_RGB32 and q.width() > 0 and q.height() > 0:
        w, h, bpl = q.width(), q.height(), q.bytesPerLine()
        bgra = np.frombuffer(q.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, : w * 4]
        return cv2.cvtColor(bgra.reshape(h, w, 4), cv2.COLOR_BGRA2RGB)  # 0xffRRGGBB: B, G, R, A in memory
    q = q.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = q.width(), q.height(), q.bytesPerLine()
    buf = np.frombuffer(q.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


class AssistTool(RegionDetail, ClickNetAsking, AsyncFitting, QObject):
    """``AssistTool(canvas, panel=None, target_key=None)``; ``panel`` is the PredictionPanel (map source and
    the add-a-dropped-photo flow), ``target_key()`` the key of the photo shown (``Target.key``)."""

    active_changed = Signal(bool)
    detail_available = Signal(int, int)  # level, number of levels; (-1, n) when the selection has no mask

    net_disabled = Signal(str)  # the click network failed and is off for the session (the message)

    def __init__(self, canvas, panel=None, target_key=None, parent=None, net=None, fitter=None):
        super().__init__(parent or canvas)
        self.canvas = canvas
        self.panel = panel
        self.target_key = target_key or (lambda: None)
        canvas.tool = self
        self.active = False
        self.clicks: list[assist.Click] = []
        self.box: tuple[float, float, float, float] | None = None
        self.result: assist.Result | None = None
        self._result_path: QPainterPath | None = None
        self._preview_path: QPainterPath | None = None
        self._press: tuple[QPointF, bool] | None = None  # widget pos, negative?
        self._box_drag: tuple[QPointF, QPointF] | None = None
        self._maps: OrderedDict[str, np.ndarray] = OrderedDict()
        self._seg: tuple[tuple, assist.Segmenter] | None = None
        self._waiting_key: str | None = None
        self._pending = None  # (target, full-resolution map) that arrived while the tool was off
        self._hover: QPointF | None = None
        self._timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self._update_preview)
        # regions accepted this session -> (mask, vertex count per level, photo size): gui.assist_detail
        self._sources: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._init_net(net)
        self._init_fit(fitter)  # GrabCut's fit to the photo's edges, on its own thread: gui.assist_fit
        if panel is not None:
            panel.prediction_ready.connect(self.map_ready)
            changed = getattr(getattr(panel, "service", None), "model_changed", None)
            if changed is not None:  # after the panel's own handler (it predicts the shown image again)
                changed.connect(self.model_changed)
        canvas.selection_changed.connect(lambda _i: self._emit_detail())

    # ------------------------------------------------------------------------------------------ state
    def set_active(self, on: bool) -> None:
        on = bool(on)
        if on == self.active:
            return
        self.active = on
        c = self.canvas
        self.cancel()
        if on:
            c.cancel_drawing()
            c.setCursor(Qt.CursorShape.CrossCursor)
            c.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
            self._ensure_map()
            self._say_ready()
            if self.use_net and self.net is not None:
                QTimer.singleShot(0, self._warm_net)  # after this paint: loading may take seconds, once
        else:
            c.unsetCursor()
            c.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.active_changed.emit(on)
        c.update()

    def cancel(self) -> None:
        self._accept_pending = False
        self._fit_tag = None
        self.clicks, self.box, self.result = [], None, None
        self._result_path = self._preview_path = None
        self._box_drag = self._press = None
        self.canvas.update()

    def image_changed(self, same: bool = False) -> None:
        """The canvas shows another photo (or a better decode of the same one)."""
        self._seg = None
        if not same:
            self.cancel()
            if self.active:
                self._ensure_map()
                self._say_ready()

    def _say(self, text: str) -> None:
        self.canvas.message.emit(text)

    def _say_ready(self) -> None:
        if not self.active:
            return
        key = self.target_key()
        how = (
            "the model's map (the photo's colours and edges where it finds nothing)"
            if key in self._maps
            else "the photo's colours and edges (the model's map is being computed)"
            if self._waiting_key == key
            else "the photo's colours and edges (no model map)"
        )
        if self.use_net:
            how = "the click network for the first click, then " + how
        self._say(
            f"AI region: click a damage (Shift/right click: not this, drag: box), Enter accepts, Esc "
            f"cancels. Using {how}."
        )

    # ------------------------------------------------------------------------------------------ the map
    def map_ready(self, target, probs) -> None:
        """The prediction panel has a map of ``target``. With the tool off, only a reference to the latest is
        kept (reducing a 12 MP map costs tens of ms the P key should not pay); else it is kept reduced (the size
        the tool works at)."""
        if not self.active:
            self._pending = (target, probs)
            return
        self._keep_map(target, probs)

    def model_changed(self, _path: str = "") -> None:
        """Another model is active: the maps kept were the old model's (up to ``MAPS_KEPT`` photos went on using
        them). The shown photo's map comes again from the panel's new prediction of it."""
        self._maps.clear()
        self._pending = None
        self._seg = None
        key, panel = self.target_key(), self.panel
        again = panel is not None and panel.target is not None and panel.target.key == key
        self._waiting_key = key if again and getattr(panel, "_job_one", None) is not None else None
        if self.active and self._waiting_key is None:
            self._ensure_map()

    def _take_pending(self) -> None:
        if self._pending is not None:
            target, probs = self._pending
            self._pending = None
            self._keep_map(target, probs)

    def _keep_map(self, target, probs) -> None:
        p = np.asarray(probs, dtype=np.float32)
        s = min(1.0, assist.MAP_SIDE / max(p.shape))
        if s < 1.0:
            p = cv2.resize(
                p,
                (max(1, round(p.shape[1] * s)), max(1, round(p.shape[0] * s))),
                interpolation=cv2.INTER_AREA,
            )
        self._maps[target.key] = p
        self._maps.move_to_end(target.key)
        while len(self._maps) > MAPS_KEPT:
            self._maps.popitem(last=False)
        if target.key == self.target_key():
            self._seg = None
            if self._waiting_key == target.key:
                self._waiting_key = None
            if self.active:
                self._recompute()
                self._say_ready()

    def _ensure_map(self) -> None:
        self._take_pending()
        key = self.target_key()
        if key is None or key in self._maps or self.panel is None or self._waiting_key == key:
            return
        panel = self.panel
        if panel.target is not None and panel.target.key == key and panel.probs is not None:
            self.map_ready(panel.target, panel.probs)
            return
        if panel.service.has_model() and panel.predict_current():
            self._waiting_key = key

    def segmenter(self) -> assist.Segmenter | None:
        c = self.canvas
        if c.img_size[0] <= 0 or c.qimage is None:
            return None
        key = self.target_key()
        ident = (key, id(c.qimage), id(self._maps.get(key)))
        if self._seg is None or self._seg[0] != ident:
            thr = getattr(self.panel, "threshold_value", 0.5) if self.panel is not None else 0.5
            seg = assist.Segmenter(
                c.img_size, self._maps.get(key), qimage_rgb(c.qimage), threshold=float(thr)
            )
            if self.use_net:
                for (k, click), region in self._net_regions.items():
                    if k == key:
                        seg.give_first_region(click, region)
            self._seg = (ident, seg)
        return self._seg[1]

    # ------------------------------------------------------------------------------------------ clicks
    def _no_photo(self) -> bool:
        """True, with a message, when no photo is shown to segment (it could not be read)."""
        if self.segmenter() is not None:
            return False
        self.clicks, self.box = [], None
        why = getattr(self.canvas, "placeholder", "") or "no photo is shown"
        self._say(f"AI region: nothing to segment here ({why}).")
        return True

    def add_click(self, x: float, y: float, positive: bool = True) -> assist.Result | None:
        if self._no_photo():
            return None
        self._accept_pending = False  # more clicks: the user goes on refining
        self.clicks.append(assist.Click(float(x), float(y), bool(positive)))
        self._preview_path = None  # stale until the cursor moves again
        first = self._first_click()
        if first is not None:
            self._ask_net(first)
        return self._recompute()

    def set_box(self, box) -> assist.Result | None:
        if self._no_photo():
            return None
        self._accept_pending = False
        self.box = tuple(float(v) for v in box)
        return self._recompute()

    def undo_click(self) -> None:
        self._accept_pending = False
        if self.clicks:
            self.clicks.pop()
        elif self.box is not None:
            self.box = None
        self._recompute()

    def _recompute(self) -> assist.Result | None:
        seg = self.segmenter()
        if seg is None or (not self.clicks and self.box is None):
            self._fit_tag = None
            self.result, self._result_path = None, None
            self.canvas.update()
            return None
        first = self._first_click()
        waiting = self.use_net and first is not None and (self.target_key(), first) in self._net_asked
        # while the click network finds the first click's region, the one shown until then is not fitted to the
        # photo's edges: the network's replaces it (if it finds nothing, the region is found again, fitted); the
        # fit (GrabCut, tenths of a second) runs on its own thread, the unfitted region shown until it comes
        self.result = self._segment(seg, waiting)
        self._show_result(waiting)
        return self.result

    def _update_preview(self) -> None:
        if not self.active or self._hover is None or self._box_drag is not None:
            return
        seg = self.segmenter()
        if seg is None:
            return
        ip = self.canvas.to_image(self._hover)
        w, h = self.canvas.img_size
        if not (0 <= ip.x() < w and 0 <= ip.y() < h):
            self._preview_path = None
        else:
            res = seg.segment(self.clicks + [assist.Click(ip.x(), ip.y(), True)], self.box, refine=False)
            self._preview_path = _outline_path(res.region)
            if not self.clicks and self.box is None and self.use_net:
                self._rest.start()  # resting here asks the click network (the preview then shows its region)
        self.canvas.update()

    # ------------------------------------------------------------------------------------------ accept
    def accept(self) -> Region | None:
        """The current region becomes a polygon region (one undo step); returns it. A region in several
        pieces (a positive click far from it added a part) becomes one polygon region per piece, in the same
        undo step; the largest is returned."""
        if (
            self._wait_to_accept()
        ):  # the region on screen is about to be replaced: accept that one when it comes
            return None
        res = self.result
        if res is None or res.region is None:
            self._say("No AI region to accept: click a damage first.")
            return None
        c = self.canvas
        made: list[tuple[Region, assist.RegionMask]] = []
        for part in assist.parts(res.region):
            shape = assist.polygon_shape(assist.polygon(part, assist.default_level(part)), c.img_size)
            if assist.usable(shape):  # inside the photo, enclosing some area
                made.append((Region(shape=shape, attributes=dict(c.default_attributes())), part))
        if not made:
            self._say("The region is too small for a polygon (inside the photo it encloses no area).")
            return None
        regions = [r for r, _ in made]
        if c.entry is not None:
            if not c._push(edits.AddRegions(c.entry, regions)):
                return None
            c.refresh()
            c.select(c.entry.regions.index(regions[0]))
        elif self.panel is not None:
            if not self.panel.add_to_target(regions):
                return None
        else:
            self._say("Open a project to add regions to.")
            return None
        for region, part in made:
            self._keep_source(region, part, c.img_size)
        self.cancel()
        n = len(regions[0].shape["all_points_x"])
        if len(regions) == 1:
            self._say(f"Added an AI region with {n} vertices (+/- change the detail, Ctrl+Z removes it).")
        else:
            self._say(
                f"Added {len(regions)} AI regions, one per separate part (the largest, selected, has {n} "
                "vertices; +/- change the detail, Ctrl+Z removes them all)."
            )
        self._emit_detail()
        return regions[0]

    # ------------------------------------------------------------------------------------------ events
    def press(self, ev, pos: QPointF) -> bool:
        if not self.active:
            return False
        btn = ev.button()
        if btn not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        if self.canvas.img_size[0] <= 0:
            return True
        negative = btn == Qt.MouseButton.RightButton or bool(
            ev.modifiers() & Qt.KeyboardModifier.ShiftModifier
        )
        self._press = (QPointF(pos), negative)
        self.canvas.setFocus()
        return True

    def move(self, ev, pos: QPointF) -> bool:
        if not self.active:
            return False
        self._hover = QPointF(pos)
        if self._press is not None and not self._press[1]:
            if self._box_drag is not None or (pos - self._press[0]).manhattanLength() > DRAG_PX:
                self._box_drag = (self._press[0], QPointF(pos))
                self._preview_path = None
                self.canvas.update()
                return True
        self._timer.start()
        return True

    def release(self, ev, pos: QPointF) -> bool:
        if not self.active or self._press is None:
            return False
        start, negative = self._press
        self._press = None
        c = self.canvas
        if self._box_drag is not None:
            a, b = c.to_image(self._box_drag[0]), c.to_image(QPointF(pos))
            self._box_drag = None
            self.set_box((min(a.x(), b.x()), min(a.y(), b.y()), max(a.x(), b.x()), max(a.y(), b.y())))
            return True
        ip = c.to_image(start)
        w, h = c.img_size
        if 0 <= ip.x() < w and 0 <= ip.y() < h:
            self.add_click(ip.x(), ip.y(), not negative)
        return True

    def key(self, ev) -> bool:
        k = ev.key()
        if k in (Qt.Key.Key_Plus, Qt.Key.Key_Equal, Qt.Key.Key_Minus, Qt.Key.Key_Underscore) and not (
            ev.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            return self.step_detail(k in (Qt.Key.Key_Plus, Qt.Key.Key_Equal))
        if not self.active:
            return False
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept()
            return True
        if k == Qt.Key.Key_Escape:
            if self.clicks or self.box is not None:
                self.cancel()
                self._say("AI region cancelled.")
                return True
            return False  # Esc with nothing pending: the canvas deselects
        if k == Qt.Key.Key_Backspace and (self.clicks or self.box is not None):
            self.undo_click()
            return True
        return False

    # ------------------------------------------------------------------------------------------ paint
    def paint(self, p: QPainter) -> None:
        if not self.active:
            return
        c = self.canvas
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setTransform(QTransform(c.scale, 0, 0, c.scale, c.offset.x(), c.offset.y()))
        if self._preview_path is not None:  # dark under white dashes: visible on any photo and overlay
            p.setBrush(Qt.BrushStyle.NoBrush)
            for color, style, width in (
                (QColor(0, 0, 0), Qt.PenStyle.SolidLine, 3.5),
                (QColor(255, 255, 255), Qt.PenStyle.DashLine, 2.0),
            ):
                pen = QPen(color, width, style)
                pen.setCosmetic(True)
                p.setPen(pen)
                p.drawPath(self._preview_path)
        if self._result_path is not None:
            pen = QPen(QColor(0, 230, 255), 2.5)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(QColor(0, 230, 255, 70))
            p.drawPath(self._result_path)
        if self.box is not None:
            pen = QPen(QColor(255, 200, 0), 1.5, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            x0, y0, x1, y1 = self.box
            p.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        p.restore()
        for click in self.clicks:
            wp = c.to_widget(click.x, click.y)
            p.setPen(QPen(QColor(0, 0, 0), 1.5))
            p.setBrush(QColor(40, 220, 60) if click.positive else QColor(235, 50, 50))
            p.drawEllipse(wp, 5, 5)
        if self._box_drag is not None:
            a, b = self._box_drag
            p.setPen(QPen(QColor(255, 200, 0), 1.5, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(a, b).normalized())


def target_key_of(window):
    """``Target.key`` of what ``window`` shows (a project image or a dropped photo), or None."""

    def key():
        if 0 <= window.current < len(window.session.rows):
            return f"entry:{id(window.session.rows[window.current].entry)}"
        ext = getattr(window, "external_path", None)
        return f"file:{Path(ext).resolve()}" if ext else None

    return key
