"""Live training curves (matplotlib in Qt) and the strip of sample predictions.

:class:`CurvesWidget` plots loss and Dice per epoch (train and val) and the per-batch training loss/Dice
(x in epochs: 1.5 = half way through epoch 2). Data calls (``add_batch``, ``add_epoch``) only append to lists;
a 250 ms timer applies what arrived since the last tick, so the figure changes at most ~4x per second however
fast events come.

Keeping the GUI thread free: a full matplotlib draw of this figure costs 100-250 ms on a loaded CPU, so it is
done only when the axes change. ``begin_run(epochs, loss)`` starts the x range small (it doubles as data comes) and
y ranges that fit the loss (Dice is 0..1), in one full draw before training starts. The lines are *animated*
artists: each update restores the cached background and blits the lines (a few ms). Only a value outside the
ranges (a loss spike) widens them with one ``draw_idle``; ``fit()`` tightens them after the run.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

SERIES = ("train_loss", "val_loss", "train_dice", "val_dice", "val_hard_dice", "batch_loss", "batch_dice")
REDRAW_MS = 250

# keys core/Keras may use for the per-epoch metrics
_EPOCH_KEYS = {
    "train_loss": ("loss", "train_loss"),
    "val_loss": ("val_loss",),
    "train_dice": ("dice", "dice_coef", "train_dice", "dice_coefficient"),
    "val_dice": ("val_dice", "val_dice_coef", "val_dice_coefficient"),
    "val_hard_dice": ("val_hard_dice",),  # per-image Dice of the thresholded prediction (unet.HardDice)
}


EPOCH_SERIES = tuple(_EPOCH_KEYS)  # the per-epoch series, in display order


FIRST_EPOCHS_SHOWN = 8  # the x range a run starts with (it doubles as epochs come)


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
        self.figure.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.12, wspace=0.25, hspace=0.6)
        self._lines = {}
        self._plot_epoch_lines()
        self._plot_batch_lines()
        self._data: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in SERIES}
        self._dirty = False
        self._limits_changed = True
        self._background = None
        self.full_draws = 0  # counters, for tests and the benchmark
        self.blits = 0
        self.canvas.mpl_connect("draw_event", self._on_draw)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.flush)
        self._timer.start()
        self._set_limits(epochs=2, loss_top=1.0)

    def _plot_epoch_lines(self) -> None:
        """The loss and Dice axes: a train and a val line each, and the hard val Dice beside the Dice."""
        style = {
            "train": dict(color="tab:blue", marker="o", ms=3),
            "val": dict(color="tab:orange", marker="o", ms=3),
        }
        for name, ax in (("loss", self.ax_loss), ("dice", self.ax_dice)):
            for split in ("train", "val"):
                (self._lines[f"{split}_{name}"],) = ax.plot(
                    [], [], label=split, lw=1.5, animated=True, **style[split]
                )
            if name == "dice":  # the score the run is judged by (and, with monitor hard_dice, selected on)
                (self._lines["val_hard_dice"],) = ax.plot(
                    [],
                    [],
                    label="val (hard)",
                    lw=1.2,
                    ls=":",
                    marker=".",
                    ms=3,
                    color="tab:green",
                    animated=True,
                )
            ax.set_title(f"{'Loss' if name == 'loss' else 'Dice'} per epoch", fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper right" if name == "loss" else "upper left")

    def _plot_batch_lines(self) -> None:
        (self._lines["batch_loss"],) = self.ax_batch.plot(
            [], [], color="tab:blue", lw=1, label="loss", animated=True
        )
        (self._lines["batch_dice"],) = self.ax_batch.plot(
            [], [], color="tab:green", lw=1, label="Dice", animated=True
        )
        self.ax_batch.set_title("Training, per batch", fontsize=9)
        self.ax_batch.set_xlabel("epoch", fontsize=8)
        self.ax_batch.tick_params(labelsize=7)
        self.ax_batch.grid(alpha=0.3)
        self.ax_batch.legend(fontsize=7, loc="upper right")

    # ------------------------------------------------------------------------------------------- data API
    def clear(self) -> None:
        for xs, ys in self._data.values():
            xs.clear()
            ys.clear()
        self._dirty = True

    def begin_run(self, epochs: int, loss: str = "") -> None:
        """A run of up to ``epochs`` epochs starts: empty curves; the x range starts at the first few epochs
        and doubles as the data reaches its end (a run cut by a time limit after 40 of 400 epochs fills the
        chart instead of its left tenth)."""
        self.clear()
        top = {"dice": 1.05, "focal_tversky": 1.05, "bce_lovasz": 3.0}.get(loss, 2.0)
        self._set_limits(epochs=max(1, min(int(epochs), FIRST_EPOCHS_SHOWN)), loss_top=top)
        self.flush()

    def add_batch(self, x: float, loss: float | None, dice: float | None) -> None:
        """``x`` in epochs (``epoch + (batch + 1) / batches``)."""
        for name, v in (("batch_loss", loss), ("batch_dice", dice)):
            if v is not None and math.isfinite(float(v)):
                xs, ys = self._data[name]
                xs.append(float(x))
                ys.append(float(v))
        self._dirty = True

    def add_epoch(self, epoch: int, metrics: dict) -> None:
        """``epoch`` counted from 1."""
        x = float(epoch)
        for name in EPOCH_SERIES:
            v = metric(metrics, name)
            if v is not None and math.isfinite(v):
                xs, ys = self._data[name]
                xs.append(x)
                ys.append(v)
        self._dirty = True

    def set_history(self, rows: list[dict]) -> None:
        """Show a finished run: ``rows`` are per-epoch dicts (history.csv, epoch from 0) -> fitted axes."""
        self.clear()
        for i, row in enumerate(rows):
            try:
                ep = int(float(row.get("epoch", i))) + 1
            except (TypeError, ValueError):
                ep = i + 1
            self.add_epoch(ep, row)
        self.fit()

    def points(self, name: str) -> list[tuple[float, float]]:
        xs, ys = self._data[name]
        return list(zip(xs, ys, strict=True))

    # ------------------------------------------------------------------------------------------ drawing
    def _set_limits(self, epochs: float, loss_top: float, batch_top: float | None = None) -> None:
        self._epochs = epochs
        self._loss_top = loss_top
        self._batch_top = batch_top if batch_top is not None else max(loss_top, 1.05)
        for ax in (self.ax_loss, self.ax_dice):
            ax.set_xlim(0.5, epochs + 0.5)
        self.ax_loss.set_ylim(0, loss_top)
        self.ax_dice.set_ylim(0, 1.0)
        self.ax_batch.set_xlim(0, epochs)
        self.ax_batch.set_ylim(0, self._batch_top)
        self._limits_changed = True

    def _grow_limits(self) -> bool:
        """Widen ranges that data left (doubling); True when they changed."""
        xs = [x for n in SERIES for x in self._data[n][0]]
        loss = self._data["train_loss"][1] + self._data["val_loss"][1]
        batch = self._data["batch_loss"][1] + self._data["batch_dice"][1]
        epochs, top, btop = self._epochs, self._loss_top, self._batch_top
        while xs and max(xs) > epochs + 0.5:
            epochs *= 2
        while loss and max(loss) > top:
            top *= 2
        while batch and max(batch) > btop:
            btop *= 2
        if (epochs, top, btop) == (self._epochs, self._loss_top, self._batch_top):
            return False
        self._set_limits(epochs, top, btop)
        return True

    def fit(self) -> None:
        """Tighten the ranges to the data (one full draw; used after a run and for past runs)."""
        xs = [x for n in SERIES for x in self._data[n][0]]
        loss = self._data["train_loss"][1] + self._data["val_loss"][1]
        batch = self._data["batch_loss"][1] + self._data["batch_dice"][1]
        epochs = max(1.0, math.ceil(max(xs, default=1.0)))
        self._set_limits(epochs, max(loss, default=1.0) * 1.1 or 1.0, max(batch, default=1.0) * 1.1 or 1.0)
        self._dirty = True
        self.flush()

    def flush(self) -> None:
        """Apply buffered data to the figure (called by the timer; callable directly)."""
        if not (self._dirty or self._limits_changed):
            return
        for name, line in self._lines.items():
            xs, ys = self._data[name]
            line.set_data(xs, ys)
        self._dirty = False
        if self._grow_limits() or self._limits_changed or self._background is None or not self.isVisible():
            self._limits_changed = False
            self._background = None
            self.full_draws += 1
            self.canvas.draw_idle()  # the draw_event handler blits the lines on top
        else:
            self._blit()

    def _on_draw(self, _event) -> None:
        """After a full draw (animated lines excluded): keep the background, then draw the lines on it."""
        try:
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        except Exception:  # no renderer yet
            self._background = None
            return
        self._draw_lines()

    def _draw_lines(self) -> None:
        for name, line in self._lines.items():
            if self._data[name][0]:
                line.axes.draw_artist(line)

    def _blit(self) -> None:
        self.canvas.restore_region(self._background)
        self._draw_lines()
        self.canvas.blit(self.figure.bbox)
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

    THUMB = 84

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
        self.setMinimumHeight(3 * (self.THUMB + 4) + 34)  # three rows: image, true mask, prediction
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
                    self.THUMB,
                    self.THUMB,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
                lab.setPixmap(pm)
                self._grid.addWidget(lab, 1 + j, i)  # rows: image, true mask, prediction; one column a sample
        self.count = n
