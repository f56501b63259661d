"""Live training curves (matplotlib in Qt) and the strip of sample predictions.

:class:`CurvesWidget` plots loss and Dice per epoch (train and val) and the per-batch training loss/Dice.
Data calls (``add_batch``, ``add_epoch``) only append to lists; a 250 ms timer applies what arrived since the
last tick, so the figure is redrawn at most ~4x per second however fast events come. A tick that only extends
the per-batch curve inside its current axis limits is *blitted* (the batch axes alone, a few ms); anything that
moves limits or touches the epoch axes asks for a full ``draw_idle``. That keeps the GUI thread free while a
run streams batches.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

SERIES = ("train_loss", "val_loss", "train_dice", "val_dice", "batch_loss", "batch_dice")
REDRAW_MS = 250

# keys core/Keras may use for the per-epoch metrics
_EPOCH_KEYS = {
    "train_loss": ("loss", "train_loss"),
    "val_loss": ("val_loss",),
    "train_dice": ("dice", "dice_coef", "train_dice", "dice_coefficient"),
    "val_dice": ("val_dice", "val_dice_coef", "val_dice_coefficient"),
}


def metric(metrics: dict, series: str) -> float | None:
    """The value for ``series`` (e.g. ``val_dice``) in a per-epoch metrics dict, or None."""
    for key in _EPOCH_KEYS[series]:
        if key in metrics and metrics[key] is not None:
            try:
                return float(metrics[key])
            except (TypeError, ValueError):
                return None
    return None


class CurvesWidget(QWidget):
    """Epoch curves (loss, Dice; train and val) over a per-batch training curve."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.figure = Figure(figsize=(6, 4.2), dpi=80)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(220)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.canvas)

        gs = self.figure.add_gridspec(2, 2, height_ratios=[1, 1])
        self.ax_loss = self.figure.add_subplot(gs[0, 0])
        self.ax_dice = self.figure.add_subplot(gs[0, 1])
        self.ax_batch = self.figure.add_subplot(gs[1, :])
        self.figure.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.1, wspace=0.28, hspace=0.45)
        self._lines = {}
        style = {"train": dict(color="tab:blue", marker="o", ms=3), "val": dict(color="tab:orange", marker="o", ms=3)}
        for name, ax in (("loss", self.ax_loss), ("dice", self.ax_dice)):
            for split in ("train", "val"):
                (self._lines[f"{split}_{name}"],) = ax.plot([], [], label=split, lw=1.5, **style[split])
            ax.set_title(f"{name.capitalize()} per epoch", fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
        (self._lines["batch_loss"],) = self.ax_batch.plot([], [], color="tab:blue", lw=1, label="loss")
        (self._lines["batch_dice"],) = self.ax_batch.plot([], [], color="tab:green", lw=1, label="Dice")
        self.ax_batch.set_title("Training, per batch", fontsize=9)
        self.ax_batch.set_xlabel("step", fontsize=8)
        self.ax_batch.tick_params(labelsize=7)
        self.ax_batch.grid(alpha=0.3)
        self.ax_batch.legend(fontsize=7, loc="upper right")
        self.ax_dice.set_ylim(0, 1)

        self._data: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in SERIES}
        self._dirty_epoch = False
        self._dirty_batch = False
        self._batch_limits = (0.0, 10.0, 0.0, 1.0)
        self._background = None
        self.full_draws = 0  # counters, for tests and the benchmark
        self.blits = 0
        self.canvas.mpl_connect("draw_event", self._on_draw)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.flush)
        self._timer.start()
        self._apply_batch_limits()

    # ------------------------------------------------------------------------------------------- data API
    def clear(self) -> None:
        for xs, ys in self._data.values():
            xs.clear()
            ys.clear()
        self._batch_limits = (0.0, 10.0, 0.0, 1.0)
        self._apply_batch_limits()
        self._dirty_epoch = True

    def add_batch(self, step: int, loss: float | None, dice: float | None) -> None:
        for name, v in (("batch_loss", loss), ("batch_dice", dice)):
            if v is not None and math.isfinite(float(v)):
                xs, ys = self._data[name]
                xs.append(float(step))
                ys.append(float(v))
        self._dirty_batch = True

    def add_epoch(self, epoch: int, metrics: dict) -> None:
        """``epoch`` as core counts it; plotted 1-based when core counts from 0 (see ``epoch_base``)."""
        x = float(epoch)
        for name in ("train_loss", "val_loss", "train_dice", "val_dice"):
            v = metric(metrics, name)
            if v is not None and math.isfinite(v):
                xs, ys = self._data[name]
                xs.append(x)
                ys.append(v)
        self._dirty_epoch = True

    def set_history(self, rows: list[dict]) -> None:
        """Show a finished run: ``rows`` are per-epoch dicts (history.csv) with an ``epoch`` key."""
        self.clear()
        for i, row in enumerate(rows):
            ep = row.get("epoch", i + 1)
            try:
                ep = int(float(ep))
            except (TypeError, ValueError):
                ep = i + 1
            self.add_epoch(ep, row)
        self.flush()

    def points(self, name: str) -> list[tuple[float, float]]:
        xs, ys = self._data[name]
        return list(zip(xs, ys, strict=True))

    # ------------------------------------------------------------------------------------------ drawing
    def flush(self) -> None:
        """Apply buffered data to the figure (called by the timer; callable directly)."""
        if not (self._dirty_epoch or self._dirty_batch):
            return
        for name, line in self._lines.items():
            xs, ys = self._data[name]
            line.set_data(xs, ys)
        need_full = self._dirty_epoch
        if self._dirty_batch and self._grow_batch_limits():
            need_full = True
        self._dirty_epoch = self._dirty_batch = False
        if need_full or self._background is None or not self.isVisible():
            self._rescale_epoch_axes()
            self._background = None
            self.full_draws += 1
            self.canvas.draw_idle()
        else:
            self._blit_batch()

    def _rescale_epoch_axes(self) -> None:
        for ax, names in ((self.ax_loss, ("train_loss", "val_loss")), (self.ax_dice, ("train_dice", "val_dice"))):
            xs = [x for n in names for x in self._data[n][0]]
            ys = [y for n in names for y in self._data[n][1]]
            if xs:
                ax.set_xlim(min(xs) - 0.5, max(max(xs) + 0.5, min(xs) + 1.5))
                if ax is self.ax_loss:
                    lo, hi = min(ys), max(ys)
                    pad = max((hi - lo) * 0.1, 1e-3)
                    ax.set_ylim(lo - pad, hi + pad)
            else:
                ax.set_xlim(0.5, 2.5)

    def _grow_batch_limits(self) -> bool:
        """Widen the batch axes (doubling x, padding y) when data leaves them; True when they changed."""
        x0, x1, y0, y1 = self._batch_limits
        xs = self._data["batch_loss"][0] + self._data["batch_dice"][0]
        ys = self._data["batch_loss"][1] + self._data["batch_dice"][1]
        if not xs:
            return False
        nx1, ny0, ny1 = x1, y0, y1
        if max(xs) > x1:
            nx1 = max(x1 * 2, max(xs) * 1.25)
        lo, hi = min(ys), max(ys)
        if lo < y0:
            ny0 = lo - 0.1 * max(abs(lo), 0.1)
        if hi > y1:
            ny1 = hi + 0.25 * max(abs(hi), 0.1)
        if (nx1, ny0, ny1) == (x1, y0, y1):
            return False
        self._batch_limits = (x0, nx1, ny0, ny1)
        self._apply_batch_limits()
        return True

    def _apply_batch_limits(self) -> None:
        x0, x1, y0, y1 = self._batch_limits
        self.ax_batch.set_xlim(x0, x1)
        self.ax_batch.set_ylim(y0, y1)

    def _on_draw(self, _event) -> None:
        try:
            self._background = self.canvas.copy_from_bbox(self.ax_batch.bbox)
        except Exception:  # noqa: BLE001 - no renderer yet
            self._background = None

    def _blit_batch(self) -> None:
        self.canvas.restore_region(self._background)
        self.ax_batch.draw_artist(self._lines["batch_loss"])
        self.ax_batch.draw_artist(self._lines["batch_dice"])
        self.canvas.blit(self.ax_batch.bbox)
        # the new background includes the lines just drawn: the batch curve only grows
        self._background = self.canvas.copy_from_bbox(self.ax_batch.bbox)
        self.blits += 1


# ------------------------------------------------------------------------------------------ sample strip


def array_to_qimage(arr: np.ndarray) -> QImage:
    """HxW (gray, any range: floats taken as 0..1) or HxWx3 uint8 RGB -> an owned QImage copy."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        if a.size and a.max() <= 1.0 + 1e-6 and a.min() >= -1e-6:
            a = a * 255.0
        elif a.size and a.min() < 0:  # e.g. images normalized to -1..1
            a = (a + 1.0) * 127.5
        a = np.clip(a, 0, 255).astype(np.uint8)
    elif a.ndim == 2 and a.size and a.max() <= 1:
        a = a * 255
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    if a.ndim == 2:
        return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class SampleStrip(QScrollArea):
    """Rows of (image, true mask, predicted mask) thumbnails from core's ``SamplePredictions``."""

    THUMB = 96

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._grid = QGridLayout(self._inner)
        self._grid.setContentsMargins(2, 2, 2, 2)
        self._grid.setSpacing(3)
        self.setWidget(self._inner)
        self.title = QLabel("Sample predictions appear here every few epochs.")
        self._grid.addWidget(self.title, 0, 0, 1, 4)
        self.epoch: int | None = None
        self.count = 0
        self.setMinimumHeight(self.THUMB + 40)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

    def clear(self) -> None:
        while self._grid.count() > 1:
            item = self._grid.takeAt(1)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.title.setText("Sample predictions appear here every few epochs.")
        self.epoch, self.count = None, 0

    def set_samples(self, epoch: int, images, true_masks, pred_masks, epoch_label: int | None = None) -> None:
        self.clear()
        self.epoch = epoch
        shown = epoch if epoch_label is None else epoch_label
        self.title.setText(f"Sample predictions after epoch {shown}: image · true mask · predicted mask")
        n = min(len(images), len(true_masks), len(pred_masks), 4)
        for i in range(n):
            for j, arr in enumerate((images[i], true_masks[i], pred_masks[i])):
                lab = QLabel()
                lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
                pm = QPixmap.fromImage(array_to_qimage(arr)).scaled(
                    self.THUMB, self.THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation)
                lab.setPixmap(pm)
                self._grid.addWidget(lab, 1 + j, i)  # rows: image, true mask, prediction; one column a sample
        self.count = n
