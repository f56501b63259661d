"""The canvas's view transform: ``widget = image * scale + offset`` (true image pixels), fit, zoom, pan with
the wheel, showing a region or rectangle; :class:`ViewMixin` is a base class of ``Canvas``."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt


class ViewMixin:
    """``Canvas``'s zoom / pan / fit and the image <-> widget coordinate mapping."""

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

    def resizeEvent(self, event) -> None:
        if self._auto_fit:  # opened before the window had its size, or fitted and then resized
            self.fit()
        super().resizeEvent(event)

    def wheelEvent(self, ev) -> None:
        delta = ev.angleDelta()
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = delta.y() / 120.0
            self.zoom_to(self.scale * (1.25**steps), ev.position())
        else:
            dx, dy = delta.x() / 2.0, delta.y() / 2.0
            if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                dx, dy = dy, dx
            self.offset = self.offset + QPointF(dx, dy)
            self._auto_fit = False
            self.view_changed.emit()
            self.update()
