"""The Prediction panel: run the active model on project images or dropped photos, show the result, accept it.

Standalone ``QWidget``. The model runs on :class:`~viaseg.gui.workers.InferenceService`'s thread (loaded once,
reused); this panel only renders. Threshold, opacity and view mode re-render the kept probabilities — the
model never runs again for them.

The panel talks to its host (the main window adapter in ``ml_wiring``, or a test double) through duck-typed
methods, each optional:

* ``current_target() -> Target | None``: the project image shown now;
* ``set_overlay(qimage_or_None)``; ``show_external(path)``: show a photo that is not in the project;
* ``add_regions(entry, regions)``: one undoable step; ``add_external(path, split, regions) -> bool``;
* ``set_regions(entry, regions, fresh, text)``: the image's regions become ``regions`` in one undoable step
  (``fresh``: those that are new predictions, to get the default attributes);
* ``split_names() -> list[str]``; ``split_entries(name) -> list[ImageEntry]``; ``set_dice_column(mapping)``.

The panel's parts live beside it, as base classes: ``prediction_photos`` (dropped photos, :class:`Target`,
:class:`PhotoDropFilter`), ``prediction_accept`` (accept as polygons, export), ``prediction_batch`` (*Predict
all*, *Label next*). Their public names are importable from here too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.ml.prediction import detail_defaults, meta_input_hw

from . import overlays
from .heat_legend import HeatLegend
from .prediction_accept import ACCEPT_MODES, AcceptMixin
from .prediction_batch import DROPPED, PredictAllMixin
from .prediction_host import PanelHost
from .prediction_photos import IMAGE_EXTS, PhotoDropFilter, PhotosMixin, Target, expand_paths
from .workers import InferenceService

log = logging.getLogger(__name__)


def truth_mask(
    entry: Any, size_wh: tuple[int, int], out_wh: tuple[int, int] | None = None
) -> np.ndarray | None:
    """The annotation of ``entry`` as a 0/1 mask (``out_wh`` or full size); None when it has no area regions."""
    from viaseg.core.annotation.raster import rasterize

    regions = list(getattr(entry, "regions", []) or [])
    if not regions:
        return None
    return rasterize(regions, size_wh, out_wh)


class PredictionPanel(PhotosMixin, AcceptMixin, PredictAllMixin, QWidget):
    """Controls for predictions; emits ``overlay_changed(QImage or None)`` and ``status(str)``."""

    overlay_changed = Signal(object)
    status = Signal(str)
    prediction_ready = Signal(
        object, object
    )  # Target, full-resolution probabilities (the AI region tool's map)

    def __init__(
        self, service: InferenceService, host: PanelHost | None = None, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.service = service
        self.host = host if host is not None else PanelHost()
        self.target: Target | None = None
        self.probs: np.ndarray | None = None  # full-resolution probabilities of ``target``
        self._probs_disp: np.ndarray | None = None  # reduced for drawing
        self._truth_disp: np.ndarray | None = None
        self._truth_full: np.ndarray | None = None
        self.dice: float | None = None
        self.overlay: QImage | None = None
        self.renders = 0
        self._setting_detail = False  # apply_detail_defaults is moving the detail controls, not the user
        self._job_one: int | None = None
        self._all_jobs: dict[int, Any] = {}
        self._all_scores: dict[str, float] = {}
        self._all_doubt: dict[str, float] = {}
        self._all_order: list[str] | None = None  # Label next's order (prediction_batch)
        self._rank_job: int | None = None
        self._rank_inputs: tuple[list, list, list] = ([], [], [])
        self._next_note: tuple[Path, str] | None = None  # (photo, Label next's message) until it is predicted
        self._dropped_entries: dict[str, Any] = {}  # dropped photo path -> its entry for ranking
        self._all_labelled = True
        self._next_after_all = False
        self._all_total = 0
        self._all_failed: list[
            tuple[str, str]
        ] = []  # (file name, message) of images Predict all could not do
        self._all_stopped = False
        self.external: list[Path] = []
        self._build()
        service.model_changed.connect(self._on_model)
        service.model_failed.connect(lambda p, m: self._say(f"Cannot load model: {m}", error=True))
        service.predicted.connect(self._on_predicted)
        service.failed.connect(self._on_failed)
        service.embedded.connect(self._on_embedded)

    # ------------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self._build_predict_row(lay)
        lay.addWidget(self._build_view_box())
        lay.addWidget(self._build_accept_box())
        lay.addWidget(self._build_batch_box())
        self._build_export_row(lay)
        self._build_photos(lay)
        self._update_buttons()

    def _build_predict_row(self, lay: QVBoxLayout) -> None:
        self.model_label = QLabel("No active model — train one or pick a run in Training ▸ Runs.")
        self.model_label.setWordWrap(True)
        lay.addWidget(self.model_label)
        row = QHBoxLayout()
        self.predict_btn = QPushButton("Predict (P)")
        self.predict_btn.setToolTip("Run the active model on the image shown.")
        self.predict_btn.clicked.connect(self.predict_current)
        self.open_btn = QPushButton("Predict images…")
        self.open_btn.clicked.connect(self.choose_photos)
        row.addWidget(self.predict_btn)
        row.addWidget(self.open_btn)
        lay.addLayout(row)

    def _build_view_box(self) -> QGroupBox:
        """How the kept probabilities are drawn: mode, threshold, opacity, the heat legend and the Dice."""
        view = QGroupBox("View")
        form = QFormLayout(view)
        self.mode = QComboBox()
        self.mode.addItem("Outline (thresholded)", "outline")
        self.mode.addItem("Heat map (probabilities)", "heat")
        self.mode.addItem("Agreement with annotation", "agreement")
        self.mode.setToolTip(
            "Agreement: green = predicted and annotated (TP), red = predicted only (FP), "
            "blue = annotated but missed (FN)."
        )
        self.mode.currentIndexChanged.connect(self.rerender)
        self.threshold = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=99, value=50)
        self.threshold_label = QLabel("0.50")
        self.threshold.valueChanged.connect(self._on_threshold)
        trow = QHBoxLayout()
        trow.addWidget(self.threshold, 1)
        trow.addWidget(self.threshold_label)
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=60)
        self.opacity.valueChanged.connect(self.rerender)
        form.addRow("Show", self.mode)
        form.addRow("Threshold", trow)
        form.addRow("Opacity", self.opacity)
        self.heat_legend = HeatLegend()  # shown while the heat overlay is
        self.heat_legend.setVisible(False)
        form.addRow(self.heat_legend)
        self.dice_label = QLabel("")
        self.dice_label.setTextFormat(Qt.TextFormat.RichText)
        form.addRow(self.dice_label)
        return view

    def _build_accept_box(self) -> QGroupBox:
        acc = QGroupBox("Accept as polygons")
        af = QFormLayout(acc)
        self.tolerance = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=40, value=4)
        self.tolerance.setToolTip(
            "Simplification (Douglas-Peucker, in half pixels): higher = fewer vertices."
        )
        self.tolerance.valueChanged.connect(self._update_vertex_hint)
        self.min_area = QDoubleSpinBox(decimals=0, minimum=0, maximum=1e7, value=50, singleStep=10)
        self.min_area.setSuffix(" px²")
        self.min_area.valueChanged.connect(self._update_vertex_hint)
        # until the user moves them, both follow each photo's detail_defaults (what `viaseg predict` uses)
        self.detail_user_set = False
        for w in (self.tolerance, self.min_area):
            w.valueChanged.connect(self._detail_changed)
        self.vertex_hint = QLabel("")
        # the hint traces the whole map (about 30 ms for 12 megapixels): computed once the overlay is painted,
        # and once for a burst of slider moves, never in the way of the picture
        self._hint_timer = QTimer(self, singleShot=True, interval=0)
        self._hint_timer.timeout.connect(self._show_vertex_hint)
        self.split_combo = QComboBox()
        self.split_combo.setToolTip("Split a dropped photo is added to, with its polygons.")
        self.accept_btn = QPushButton("Accept as polygons")
        self.accept_btn.clicked.connect(lambda: self.accept_polygons())
        af.addRow("Simplify", self.tolerance)
        af.addRow("Minimum area", self.min_area)
        af.addRow(self.vertex_hint)
        af.addRow("Add photo to", self.split_combo)
        af.addRow(self.accept_btn)
        return acc

    def _build_batch_box(self) -> QGroupBox:
        batch = QGroupBox("Whole split")
        bl = QHBoxLayout(batch)
        self.all_split = QComboBox()
        self.all_btn = QPushButton("Predict all")
        self.all_btn.setToolTip("Predict every image of the split; the image list gets a Dice column.")
        self.all_btn.clicked.connect(self.predict_all)
        self.all_stop_btn = QPushButton("Stop")
        self.all_stop_btn.setToolTip("Stop Predict all; the images done so far keep their Dice.")
        self.all_stop_btn.setEnabled(False)
        self.all_stop_btn.clicked.connect(self.stop_all)
        bl.addWidget(self.all_split, 1)
        bl.addWidget(self.all_btn)
        bl.addWidget(self.all_stop_btn)
        return batch

    def _build_export_row(self, lay: QVBoxLayout) -> None:
        exp = QHBoxLayout()
        self.export_mask_btn = QPushButton("Export mask…")
        self.export_mask_btn.clicked.connect(lambda: self.export_mask())
        self.export_overlay_btn = QPushButton("Export overlay…")
        self.export_overlay_btn.clicked.connect(lambda: self.export_overlay())
        exp.addWidget(self.export_mask_btn)
        exp.addWidget(self.export_overlay_btn)
        lay.addLayout(exp)

    def _build_photos(self, lay: QVBoxLayout) -> None:
        """The dropped photos list, which takes the spare height, and the message line under it."""
        lay.addWidget(QLabel("Dropped photos"))
        self.photos = QListWidget()
        self.photos.setToolTip("Photos dropped on the window or opened with File ▸ Predict images…")
        self.photos.currentItemChanged.connect(self._on_photo_selected)
        lay.addWidget(self.photos, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)

    # ----------------------------------------------------------------------------------------- helpers
    def _say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020;" if error else "")
        self.message.setText(text)
        self.status.emit(text)

    def _update_buttons(self) -> None:
        has = self.probs is not None
        self.accept_btn.setEnabled(has)
        self.export_mask_btn.setEnabled(has)
        self.export_overlay_btn.setEnabled(has)

    def refresh_splits(self) -> None:
        names = list(self.host.split_names() or [])
        for combo in (self.split_combo, self.all_split):
            cur = combo.currentText()
            combo.clear()
            combo.addItems(names)
            if combo is self.all_split and self.external:  # Predict all / Label next also rank dropped photos
                combo.addItem(DROPPED)
                names_here = [*names, DROPPED]
                if cur in names_here:
                    combo.setCurrentText(cur)
                    continue
            if cur in names:
                combo.setCurrentText(cur)
            elif "val" in names:
                combo.setCurrentText("val")

    @property
    def threshold_value(self) -> float:
        return self.threshold.value() / 100.0

    @property
    def mode_value(self) -> str:
        return self.mode.currentData()

    @Slot(str)
    def _on_model(self, path: str) -> None:
        self.model_label.setText(f"Active model: <b>{Path(path).parent.name}/{Path(path).name}</b>")
        self.model_label.setToolTip(path)
        t = self.service.meta.get("threshold")
        if isinstance(t, (int, float)) and 0 < t < 1:
            self.threshold.setValue(int(round(t * 100)))
        # the shown prediction is the old model's, or one still running is (its answer was shown as the new
        # model's): the image is predicted again, and only that answer is taken
        if self.target is not None and (self.probs is not None or self._job_one is not None):
            self._job_one = self.service.submit(("one", self.target.key), str(self.target.path))
            self._say(f"Predicting {Path(self.target.path).name} again with the new active model…")
        if self.forget_order():
            log.info("Label next: the active model changed; the next L orders the photos again")

    # --------------------------------------------------------------------------------------- predicting
    def set_target(self, target: Target | None) -> None:
        """The host shows another image: forget the old prediction (its overlay goes away)."""
        if target is not None and self.target is not None and target.key == self.target.key:
            return
        self.target = target
        # "Add photo to" is for dropped photos: a project image already has its split
        self.split_combo.setEnabled(target is None or target.entry is None)
        self.probs = self._probs_disp = self._truth_disp = self._truth_full = None
        self.dice = None
        self.dice_label.setText("")
        self.vertex_hint.setText("")  # it counted the old prediction's polygons
        self._job_one = None
        self._set_overlay(None)
        self._update_buttons()

    @Slot()
    def host_image_changed(self) -> None:
        """The window shows another image: the prediction of the one before is forgotten at once (Accept
        added it to the new image, and a prediction still running said "Predicted" the old one)."""
        if self.target is None or self._still_shown():
            return
        old = Path(self.target.path).name
        self.set_target(None)
        if self.message.text().startswith(("Predicted ", "Predicting ", "Loading the model and predicting ")):
            self._say(f"The prediction of {old} is put aside (another image is shown): press P for this one.")

    @Slot()
    def predict_current(self) -> bool:
        target = self.host.current_target() or self.target
        if target is None:
            self._say("Open an image first.", error=True)
            return False
        self.set_target(target)
        if not self.service.has_model():
            self._say("No active model: train one or choose a run in Training ▸ Runs.", error=True)
            return False
        self._job_one = self.service.submit(("one", target.key), str(target.path))
        self._say(self._predicting_text(target.path))
        return True

    def _predicting_text(self, path) -> str:
        first = self.service.loaded_path != self.service.model_path
        return f"{'Loading the model and predicting' if first else 'Predicting'} {Path(path).name}…"

    @Slot(int, object, object)
    def _on_predicted(self, job: int, tag: Any, probs: np.ndarray) -> None:
        if isinstance(tag, tuple) and tag and tag[0] == "all":
            self._on_all_result(job, tag, probs)
            return
        if job != self._job_one or self.target is None or tag != ("one", self.target.key):
            return  # an answer for an image no longer shown
        self.probs = np.asarray(probs, dtype=np.float32)
        scale = overlays.display_scale(self.probs.shape)
        self._probs_disp = overlays.reduce(self.probs, scale, smooth=True)
        entry = self.target.entry
        self._truth_full = self._truth_disp = None
        if entry is not None:
            h, w = self.probs.shape
            self._truth_full = truth_mask(entry, (w, h))
            if self._truth_full is not None:
                self._truth_disp = overlays.reduce(self._truth_full, scale, nearest=True)
                if self.mode_value == "outline":
                    self.mode.setCurrentIndex(self.mode.findData("agreement"))
        note, self._next_note = self._next_note, None
        said = f"Predicted {Path(self.target.path).name}."
        if note is not None and note[0] == Path(self.target.path).resolve():
            said = f"{note[1]} {said}"  # Label next opened it: what it said stays in view
        self._say(said)
        self.prediction_ready.emit(self.target, self.probs)
        self.apply_detail_defaults(self.probs.shape)
        self._update_buttons()
        self._update_vertex_hint()
        self.rerender()

    def _detail_changed(self) -> None:
        if not self._setting_detail:
            self.detail_user_set = True

    def apply_detail_defaults(self, shape: tuple[int, ...]) -> None:
        """Set Simplify and Minimum area to ``prediction.detail_defaults`` for a photo of ``shape`` (H, W) at the
        active model's input size, unless the user has set them (then they stay as the user left them)."""
        hw = meta_input_hw(self.service.meta)
        if self.detail_user_set or hw is None:
            return
        tol, area = detail_defaults((int(shape[1]), int(shape[0])), hw)
        self._setting_detail = True
        try:
            self.tolerance.setValue(
                min(self.tolerance.maximum(), round(tol * 2))
            )  # the slider counts half pixels
            self.min_area.setValue(round(area))
        finally:
            self._setting_detail = False

    @Slot(int, object, object)
    def _on_embedded(self, job: int, tag: Any, vectors: Any) -> None:
        if isinstance(tag, tuple) and tag and tag[0] == "rank":
            self._on_ranked(job, dict(vectors or {}))

    @Slot(int, object, str)
    def _on_failed(self, job: int, tag: Any, message: str) -> None:
        if isinstance(tag, tuple) and tag and tag[0] == "rank":
            self._on_rank_failed(job, message)
            return
        if isinstance(tag, tuple) and tag and tag[0] == "all":
            entry = self._all_jobs.pop(job, None)
            if entry is not None:
                # the message names the file by its path; the list names it once, by its name
                self._all_failed.append((Path(entry.filename).name, message.removeprefix(f"{entry.path}: ")))
                log.warning("Predict all: %s: %s", entry.path, message)
            self._maybe_finish_all()
            return
        if job == self._job_one:
            self._say(f"Prediction failed: {message}", error=True)

    def _on_threshold(self, v: int) -> None:
        self.threshold_label.setText(f"{v / 100:.2f}")
        self._update_vertex_hint()
        self.rerender()

    def _still_shown(self) -> bool:
        """False when the host now shows another image than the one predicted (the user moved on)."""
        if not self.host.shows_targets:
            return True
        cur = self.host.current_target()
        return cur is not None and self.target is not None and cur.key == self.target.key

    def entry_changed(self, entry: Any) -> None:
        """The annotation of ``entry`` changed (edit, undo): the agreement view follows."""
        if self.target is None or entry is None or self.target.entry is not entry or self.probs is None:
            return
        h, w = self.probs.shape
        self._truth_full = truth_mask(entry, (w, h))
        self._truth_disp = (
            None
            if self._truth_full is None
            else overlays.reduce(self._truth_full, overlays.display_scale(self.probs.shape), nearest=True)
        )
        self.rerender()

    @Slot()
    def rerender(self, *_args) -> None:
        """Redraw the overlay from the kept probabilities (no forward pass)."""
        if self._probs_disp is None:
            return
        if not self._still_shown():
            self.set_target(None)
            return
        t, op = self.threshold_value, self.opacity.value() / 100.0
        rgba = overlays.render(self.mode_value, self._probs_disp, t, op, self._truth_disp)
        self.renders += 1
        self._set_overlay(overlays.rgba_to_qimage(rgba))
        if self._truth_full is not None:
            d, iou = overlays.dice_iou(self._truth_disp, self._probs_disp > t)
            self.dice = d
            self.dice_label.setText(
                f"Dice <b>{d:.3f}</b> · IoU {iou:.3f} &nbsp; <span style='color:#2ecc40'>■ TP</span> "
                f"<span style='color:#ff4136'>■ FP</span> <span style='color:#0074d9'>■ FN</span>"
            )
        else:
            self.dice = None
            self.dice_label.setText(
                "No annotation to compare with." if self.target and self.target.entry is not None else ""
            )

    def _set_overlay(self, img: QImage | None) -> None:
        self.overlay = img
        self.heat_legend.set_threshold(self.threshold_value)
        self.heat_legend.setVisible(img is not None and self.mode_value == "heat")
        # the agreement colours already show the annotation; the host may fade its region fills meanwhile
        self.host.agreement_shown(
            img is not None and self.mode_value == "agreement" and self._truth_disp is not None
        )
        self.host.set_overlay(img)
        self.overlay_changed.emit(img)


__all__ = [
    "ACCEPT_MODES",
    "IMAGE_EXTS",
    "PhotoDropFilter",
    "PredictionPanel",
    "Target",
    "expand_paths",
    "truth_mask",
]
