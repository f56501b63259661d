"""The heat map's colour legend: a small bar, probability 0 … threshold … 1, shown under the Prediction panel's
view controls while the heat overlay is on (``PredictionPanel`` shows and hides it)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from . import overlays

BAR_HEIGHT = 12


class HeatLegend(QWidget):
    """Paints :func:`overlays.legend_rgba` with ticks at 0, the threshold and 1, and what the colours mean."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.threshold = 0.5
        self.setMinimumSize(160, BAR_HEIGHT + 2 * self.fontMetrics().height() + 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._tip()

    def set_threshold(self, t: float) -> None:
        if t != self.threshold:
            self.threshold = float(t)
            self._tip()
            self.update()

    def _tip(self) -> None:
        self.setToolTip(
            f"Heat map colours: the probability the model gives each pixel, 0 (blue) to 1 (red). "
            f"Below the threshold ({self.threshold:.2f}) the colours fade out; above it the pixels "
            f"count as damage."
        )

    def bar_rect(self) -> QRectF:
        fm = self.fontMetrics()
        return QRectF(6, fm.height() + 2, max(10, self.width() - 12), BAR_HEIGHT)

    def paintEvent(self, _event) -> None:  # Qt API
        bar = self.bar_rect()
        img = overlays.rgba_to_qimage(overlays.legend_rgba(int(bar.width()), BAR_HEIGHT, self.threshold))
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        fm = self.fontMetrics()
        text = self.palette().color(self.foregroundRole())
        p.setPen(text)
        p.drawText(
            QRectF(0, 0, self.width(), fm.height()),
            Qt.AlignmentFlag.AlignLeft,
            "  probability (faded below the threshold)",
        )
        p.drawImage(bar.topLeft(), img)
        p.setPen(QPen(QColor(90, 90, 90), 1))
        p.drawRect(bar)
        y_text = bar.bottom() + 2
        t_label = f"{self.threshold:.2f}"
        t_x = bar.left() + self.threshold * bar.width()
        half = fm.horizontalAdvance(t_label) / 2 + fm.horizontalAdvance("0") + 4
        ticks = [(self.threshold, t_label)]
        ticks += [
            (v, s) for v, s in ((0.0, "0"), (1.0, "1")) if abs(bar.left() + v * bar.width() - t_x) > half
        ]
        for value, label in ticks:
            x = bar.left() + value * bar.width()
            is_t = label == t_label and value == self.threshold
            p.setPen(QPen(QColor(0, 0, 0), 2 if is_t else 1))
            p.drawLine(int(x), int(bar.top()) - (3 if is_t else 0), int(x), int(bar.bottom()) + 3)
            w = fm.horizontalAdvance(label)
            left = min(max(x - w / 2, 0), self.width() - w)
            p.setPen(text)
            p.drawText(QRectF(left, y_text + 2, w + 2, fm.height()), Qt.AlignmentFlag.AlignLeft, label)
        p.end()
