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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.loop import rank_uncertain

from . import overlays
from .heat_legend import HeatLegend
from .workers import InferenceService

log = logging.getLogger(__name__)
ACCEPT_MODES = ("replace", "merge", "add")  # what accepting does to the regions an image already has
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Target:
    """An image to predict: a project entry (``entry`` set) or an external photo (``entry`` None)."""

    path: Path
    entry: Any = None  # viaseg.core.project.ImageEntry
    split: str | None = None

    @property
    def key(self) -> str:
        return f"entry:{id(self.entry)}" if self.entry is not None else f"file:{Path(self.path).resolve()}"


def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Image files from dropped files and folders (folders: their images, not recursive) and a message per
    thing that is not an image."""
    images: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
            if not found:
                problems.append(f"{p}: folder holds no images")
            images.extend(found)
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            images.append(p)
        elif not p.exists():
            problems.append(f"{p}: no such file")
        else:
            problems.append(f"{p.name}: not an image (use {', '.join(IMAGE_EXTS)})")
    return images, problems


def truth_mask(entry: Any, size_wh: tuple[int, int], out_wh: tuple[int, int] | None = None) -> np.ndarray | None:
    """The annotation of ``entry`` as a 0/1 mask (``out_wh`` or full size); None when it has no area regions."""
    from viaseg.core.raster import rasterize

    regions = list(getattr(entry, "regions", []) or [])
    if not regions:
        return None
    return rasterize(regions, size_wh, out_wh)


class PhotoDropFilter(QObject):
    """Event filter that lets a widget (the main window) take dropped files/folders for prediction."""

    def __init__(self, panel: PredictionPanel, parent: QObject | None = None):
        super().__init__(parent)
        self.panel = panel

    @classmethod
    def install(cls, widget: QWidget, panel: PredictionPanel) -> PhotoDropFilter:
        """Make ``widget`` accept drops (Qt delivers drop events only then) and route them to ``panel``."""
        f = cls(panel, widget)
        widget.setAcceptDrops(True)
        widget.installEventFilter(f)
        return f

    def eventFilter(self, obj, event):  # noqa: N802 - Qt API
        t = event.type()
        if t in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if event.mimeData() is not None and event.mimeData().hasUrls():
                event.acceptProposedAction()
                return True
        elif t == QEvent.Type.Drop:
            md = event.mimeData()
            if md is not None and md.hasUrls():
                paths = [u.toLocalFile() for u in md.urls() if u.isLocalFile()]
                others = [u.toString() for u in md.urls() if not u.isLocalFile()]
                event.acceptProposedAction()
                if others:
                    self.panel._say("Only local files can be predicted: " + ", ".join(others[:3]), error=True)
                if paths:
                    self.panel.open_photos(paths)
                return True
        return False


class PredictionPanel(QWidget):
    """Controls for predictions; emits ``overlay_changed(QImage or None)`` and ``status(str)``."""

    overlay_changed = Signal(object)
    status = Signal(str)
    prediction_ready = Signal(object, object)  # Target, full-resolution probabilities (the AI region tool's map)

    def __init__(self, service: InferenceService, host: Any = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.host = host
        self.target: Target | None = None
        self.probs: np.ndarray | None = None  # full-resolution probabilities of ``target``
        self._probs_disp: np.ndarray | None = None  # reduced for drawing
        self._truth_disp: np.ndarray | None = None
        self._truth_full: np.ndarray | None = None
        self.dice: float | None = None
        self.overlay: QImage | None = None
        self.renders = 0
        self._job_one: int | None = None
        self._all_jobs: dict[int, Any] = {}
        self._all_scores: dict[str, float] = {}
        self._all_doubt: dict[str, float] = {}
        self._all_labelled = True
        self._next_after_all = False
        self._all_total = 0
        self._all_failed: list[tuple[str, str]] = []  # (file name, message) of images Predict all could not do
        self._all_stopped = False
        self.external: list[Path] = []
        self._build()
        service.model_changed.connect(self._on_model)
        service.model_failed.connect(lambda p, m: self._say(f"Cannot load model: {m}", error=True))
        service.predicted.connect(self._on_predicted)
        service.failed.connect(self._on_failed)

    # ------------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
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

        view = QGroupBox("View")
        form = QFormLayout(view)
        self.mode = QComboBox()
        self.mode.addItem("Outline (thresholded)", "outline")
        self.mode.addItem("Heat map (probabilities)", "heat")
        self.mode.addItem("Agreement with annotation", "agreement")
        self.mode.setToolTip("Agreement: green = predicted and annotated (TP), red = predicted only (FP), "
                             "blue = annotated but missed (FN).")
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
        lay.addWidget(view)

        acc = QGroupBox("Accept as polygons")
        af = QFormLayout(acc)
        self.tolerance = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=40, value=4)
        self.tolerance.setToolTip("Simplification (Douglas-Peucker, in half pixels): higher = fewer vertices.")
        self.tolerance.valueChanged.connect(self._update_vertex_hint)
        self.min_area = QDoubleSpinBox(decimals=0, minimum=0, maximum=1e7, value=50, singleStep=10)
        self.min_area.setSuffix(" px²")
        self.min_area.valueChanged.connect(self._update_vertex_hint)
        self.vertex_hint = QLabel("")
        self.split_combo = QComboBox()
        self.split_combo.setToolTip("Split a dropped photo is added to, with its polygons.")
        self.accept_btn = QPushButton("Accept as polygons")
        self.accept_btn.clicked.connect(lambda: self.accept_polygons())
        af.addRow("Simplify", self.tolerance)
        af.addRow("Minimum area", self.min_area)
        af.addRow(self.vertex_hint)
        af.addRow("Add photo to", self.split_combo)
        af.addRow(self.accept_btn)
        lay.addWidget(acc)

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
        lay.addWidget(batch)

        exp = QHBoxLayout()
        self.export_mask_btn = QPushButton("Export mask…")
        self.export_mask_btn.clicked.connect(lambda: self.export_mask())
        self.export_overlay_btn = QPushButton("Export overlay…")
        self.export_overlay_btn.clicked.connect(lambda: self.export_overlay())
        exp.addWidget(self.export_mask_btn)
        exp.addWidget(self.export_overlay_btn)
        lay.addLayout(exp)

        lay.addWidget(QLabel("Dropped photos"))
        self.photos = QListWidget()
        self.photos.setToolTip("Photos dropped on the window or opened with File ▸ Predict images…")
        self.photos.currentItemChanged.connect(self._on_photo_selected)
        lay.addWidget(self.photos, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self._update_buttons()

    # ----------------------------------------------------------------------------------------- helpers
    def _say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020;" if error else "")
        self.message.setText(text)
        self.status.emit(text)

    def _call(self, name: str, *args, default=None):
        fn = getattr(self.host, name, None) if self.host is not None else None
        return fn(*args) if callable(fn) else default

    def _update_buttons(self) -> None:
        has = self.probs is not None
        self.accept_btn.setEnabled(has)
        self.export_mask_btn.setEnabled(has)
        self.export_overlay_btn.setEnabled(has)

    def refresh_splits(self) -> None:
        names = list(self._call("split_names", default=[]) or [])
        for combo in (self.split_combo, self.all_split):
            cur = combo.currentText()
            combo.clear()
            combo.addItems(names)
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
        if self.probs is not None and self.target is not None:  # the shown prediction is the old model's
            self._job_one = self.service.submit(("one", self.target.key), str(self.target.path))
            self._say(f"Predicting {Path(self.target.path).name} again with the new active model…")

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
        self._job_one = None
        self._set_overlay(None)
        self._update_buttons()

    @Slot()
    def predict_current(self) -> bool:
        target = self._call("current_target") or self.target
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

    def open_photos(self, paths: list[str | Path]) -> list[Path]:
        """Dropped or chosen files/folders: list the images, show and predict the first; report the rest."""
        images, problems = expand_paths(paths)
        for p in images:
            if p not in self.external:
                self.external.append(p)
                it = QListWidgetItem(p.name)
                it.setData(Qt.ItemDataRole.UserRole, str(p))
                it.setToolTip(str(p))
                self.photos.addItem(it)
        if problems:
            self._say("Not opened: " + "; ".join(problems), error=True)
        if images:
            self.show_photo(images[0])
        elif not problems:
            self._say("Nothing to open.", error=True)
        return images

    def show_photo(self, path: Path) -> None:
        for i in range(self.photos.count()):
            if self.photos.item(i).data(Qt.ItemDataRole.UserRole) == str(path):
                self.photos.blockSignals(True)
                self.photos.setCurrentRow(i)
                self.photos.blockSignals(False)
        if self._call("show_external", Path(path), default=True) is False:
            # unreadable (0 bytes, not an image, truncated): the canvas says why; it leaves the list
            self._forget_photo(Path(path))
            self.set_target(None)
            self._say(f"Cannot open {Path(path).name}: not a readable image (removed from the list).", error=True)
            return
        self.set_target(Target(Path(path)))
        if self.service.has_model():
            self._job_one = self.service.submit(("one", self.target.key), str(path))
            self._say(self._predicting_text(path))
        else:
            self._say("No active model: train one or choose a run in Training ▸ Runs.", error=True)

    def _forget_photo(self, path: Path) -> None:
        self.external = [p for p in self.external if p != path]
        for i in reversed(range(self.photos.count())):
            if self.photos.item(i).data(Qt.ItemDataRole.UserRole) == str(path):
                self.photos.blockSignals(True)
                self.photos.takeItem(i)
                self.photos.blockSignals(False)

    def _on_photo_selected(self, cur, _prev) -> None:
        if cur is not None:
            self.show_photo(Path(cur.data(Qt.ItemDataRole.UserRole)))

    @Slot()
    def choose_photos(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Predict images", "",
                                                "Images (" + " ".join("*" + e for e in IMAGE_EXTS) + ")")
        if files:
            self.open_photos(files)

    @Slot(int, object, object)
    def _on_predicted(self, job: int, tag: Any, probs: np.ndarray) -> None:
        if isinstance(tag, tuple) and tag and tag[0] == "all":
            self._on_all_result(job, tag, probs)
            return
        if job != self._job_one or self.target is None or tag != ("one", self.target.key):
            return  # an answer for an image no longer shown
        self.probs = np.asarray(probs, dtype=np.float32)
        scale = overlays.display_scale(self.probs.shape)
        self._probs_disp = overlays.reduce(self.probs, scale)
        entry = self.target.entry
        self._truth_full = self._truth_disp = None
        if entry is not None:
            h, w = self.probs.shape
            self._truth_full = truth_mask(entry, (w, h))
            if self._truth_full is not None:
                self._truth_disp = overlays.reduce(self._truth_full, scale, nearest=True)
                if self.mode_value == "outline":
                    self.mode.setCurrentIndex(self.mode.findData("agreement"))
        self._say(f"Predicted {Path(self.target.path).name}.")
        self.prediction_ready.emit(self.target, self.probs)
        self._update_buttons()
        self._update_vertex_hint()
        self.rerender()

    @Slot(int, object, str)
    def _on_failed(self, job: int, tag: Any, message: str) -> None:
        if isinstance(tag, tuple) and tag and tag[0] == "all":
            entry = self._all_jobs.pop(job, None)
            if entry is not None:
                self._all_failed.append((Path(entry.filename).name, message))
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
        if self.host is None or not callable(getattr(self.host, "current_target", None)):
            return True
        cur = self.host.current_target()
        return cur is not None and self.target is not None and cur.key == self.target.key

    def entry_changed(self, entry: Any) -> None:
        """The annotation of ``entry`` changed (edit, undo): the agreement view follows."""
        if self.target is None or entry is None or self.target.entry is not entry or self.probs is None:
            return
        h, w = self.probs.shape
        self._truth_full = truth_mask(entry, (w, h))
        self._truth_disp = None if self._truth_full is None else overlays.reduce(
            self._truth_full, overlays.display_scale(self.probs.shape), nearest=True)
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
                f"<span style='color:#ff4136'>■ FP</span> <span style='color:#0074d9'>■ FN</span>")
        else:
            self.dice = None
            self.dice_label.setText("No annotation to compare with." if self.target and self.target.entry
                                    is not None else "")

    def _set_overlay(self, img: QImage | None) -> None:
        self.overlay = img
        self.heat_legend.set_threshold(self.threshold_value)
        self.heat_legend.setVisible(img is not None and self.mode_value == "heat")
        # the agreement colours already show the annotation; the host may fade its region fills meanwhile
        self._call("agreement_shown", img is not None and self.mode_value == "agreement"
                   and self._truth_disp is not None)
        self._call("set_overlay", img)
        self.overlay_changed.emit(img)

    # -------------------------------------------------------------------------------------- accepting
    def predicted_regions(self) -> list:
        from viaseg.core.raster import mask_to_regions

        if self.probs is None:
            return []
        mask = (self.probs > self.threshold_value).astype(np.uint8)
        return mask_to_regions(mask, tolerance=self.tolerance.value() / 2.0, min_area=self.min_area.value())

    def _update_vertex_hint(self, *_args) -> None:
        if self.probs is None:
            self.vertex_hint.setText("")
            return
        regions = self.predicted_regions()
        n = sum(len(r.points()) for r in regions)
        self.vertex_hint.setText(f"{len(regions)} polygon(s), {n} vertices")

    def accept_polygons(self, mode: str | None = None) -> list:
        """Accept the thresholded prediction as polygons: one undoable step on a project image; a dropped
        photo is added to the chosen split with them. On a project image that already has regions, ``mode``
        says what happens to them (:data:`ACCEPT_MODES`); None asks (:meth:`ask_accept_mode`)."""
        if self.target is None or self.probs is None:
            self._say("Predict an image first.", error=True)
            return []
        regions = self.predicted_regions()
        if not regions:
            self._say("Nothing above the threshold (or every piece is below the minimum area).", error=True)
            return []
        target = self._call("current_target") or self.target
        entry = getattr(target, "entry", None)
        if entry is not None and entry.regions and mode is None:
            mode = self.ask_accept_mode(len(entry.regions), len(regions))
            if mode is None:
                self._say("Nothing accepted.")
                return []
        return regions if self.add_to_target(regions, target, mode or "add") else []

    def accept_mode_box(self, n_old: int, n_new: int) -> QMessageBox:
        """The question asked before accepting onto an image that has regions; each choice's button holds its
        mode in the property ``accept_mode``."""
        box = QMessageBox(QMessageBox.Icon.Question, "Accept prediction",
                          f"This image already has {n_old} region(s). What should the {n_new} predicted "
                          f"polygon(s) do?", parent=self)
        box.setInformativeText(
            "<b>Replace</b>: the predicted polygons take the place of every region of the image.<br>"
            "<b>Merge</b>: a polygon that overlaps a region is joined to it (one outline, the region's "
            "attributes); the others are added.<br>"
            "<b>Add</b>: the polygons are added beside the regions (overlaps stay).<br>"
            "Each is one undo step.")
        for mode, label, role in (("replace", "Replace", QMessageBox.ButtonRole.DestructiveRole),
                                  ("merge", "Merge", QMessageBox.ButtonRole.AcceptRole),
                                  ("add", "Add", QMessageBox.ButtonRole.AcceptRole)):
            b = box.addButton(label, role)
            b.setProperty("accept_mode", mode)
            if mode == "merge":
                box.setDefaultButton(b)
        box.addButton(QMessageBox.StandardButton.Cancel)
        return box

    def ask_accept_mode(self, n_old: int, n_new: int) -> str | None:
        """Ask Replace / Merge / Add (None: cancelled)."""
        box = self.accept_mode_box(n_old, n_new)
        box.exec()
        clicked = box.clickedButton()
        mode = clicked.property("accept_mode") if clicked is not None else None
        box.deleteLater()
        return mode if mode in ACCEPT_MODES else None

    def add_to_target(self, regions: list, target: Target | None = None, mode: str = "add") -> bool:
        """Add ``regions`` to the image shown: one undoable step on a project image (``mode``: ``add`` beside
        its regions, ``replace`` them, ``merge`` into the ones they overlap); a dropped photo is added to the
        split chosen under *Add photo to* with them."""
        target = target or self._call("current_target") or self.target
        if target is None:
            self._say("Open an image first.", error=True)
            return False
        entry = target.entry
        if entry is not None:
            if mode not in ACCEPT_MODES:
                raise ValueError(f"accept mode must be one of {ACCEPT_MODES}, not {mode!r}")
            if mode == "add" or not entry.regions:
                self._call("add_regions", entry, regions)
                self._say(f"Added {len(regions)} polygon(s); Undo removes them.")
                return True
            if not callable(getattr(self.host, "set_regions", None)):
                self._say("This window cannot replace or merge regions.", error=True)
                return False
            n_old = len(entry.regions)
            if mode == "replace":
                self.host.set_regions(entry, regions, regions, f"replace {n_old} region(s) by the prediction")
                self._say(f"Replaced {n_old} region(s) by {len(regions)} polygon(s); Undo brings them back.")
                return True
            from viaseg.core.raster import merge_regions

            merged_list, merged, appended = merge_regions(entry.regions, regions, self.tolerance.value() / 2.0,
                                                          self.min_area.value())
            fresh = merged_list[len(merged_list) - appended:]
            self.host.set_regions(entry, merged_list, fresh, "merge the prediction into the regions")
            self._say(f"Merged into {merged} region(s), added {appended} polygon(s); Undo restores the regions.")
            return True
        split = self.split_combo.currentText()
        if not split:
            self._say("Open a project to add this photo to one of its splits.", error=True)
            return False
        ok = self._call("add_external", Path(target.path), split, regions, default=False)
        if not ok:
            self._say(f"Could not add {Path(target.path).name} to split {split!r}.", error=True)
            return False
        self._say(f"Added {Path(target.path).name} to {split} with {len(regions)} polygon(s).")
        return True

    # ------------------------------------------------------------------------------------ predict all
    @Slot()
    def predict_all(self) -> int:
        split = self.all_split.currentText()
        entries = list(self._call("split_entries", split, default=[]) or [])
        if not entries:
            self._say(f"Split {split!r} has no images." if split else "Open a project first.", error=True)
            return 0
        if not self.service.has_model():
            self._say("No active model: train one or choose a run in Training ▸ Runs.", error=True)
            return 0
        self._all_jobs.clear()
        self._all_scores = {}
        self._all_doubt = {}  # unannotated images: how unsure the model is (Label next)
        self._all_labelled = any(e.regions for e in entries)
        self._all_failed = []
        self._all_stopped = False
        self._all_total = len(entries)
        for e in entries:  # in the background: a P pressed meanwhile is answered next, not after the split
            job = self.service.submit(("all", id(e)), str(e.path), background=True)
            self._all_jobs[job] = e
        self.all_btn.setEnabled(False)
        self.all_stop_btn.setEnabled(True)
        self._say(f"Predicting {len(entries)} images of {split}…")
        return len(entries)

    @Slot()
    def stop_all(self) -> int:
        """Stop Predict all: the images not started are dropped (the one running finishes); returns how many."""
        if not self._all_total:
            return 0
        dropped = self.service.cancel_background()
        for job in dropped:
            self._all_jobs.pop(job, None)
        self._all_stopped = True
        self.all_stop_btn.setEnabled(False)
        self._maybe_finish_all()
        return len(dropped)

    def _on_all_result(self, job: int, tag: Any, probs: np.ndarray) -> None:
        entry = self._all_jobs.pop(job, None)
        if entry is None:
            return
        from viaseg.core.evaluate import score_entry
        from viaseg.core.loop import uncertainty

        if self._all_labelled:  # a photo without regions in a labelled split is a negative: it has a Dice too
            # full resolution, as `viaseg evaluate` scores (the column and the CLI agree to the last digit)
            self._all_scores[entry.key] = score_entry(entry, np.asarray(probs, dtype=np.float32),
                                                      self.threshold_value)[0]
        if not entry.regions:  # how unsure the model is decides what to label next
            self._all_doubt[entry.key] = uncertainty(np.asarray(probs)[::4, ::4])
        done = self._all_total - len(self._all_jobs)
        if done % 8 == 0:
            self._show_all_column()
            self._say(f"Predicted {done}/{self._all_total}…")
        self._maybe_finish_all()

    def _maybe_finish_all(self) -> None:
        if self._all_jobs or not self._all_total:
            return
        self._show_all_column()
        scores = list(self._all_scores.values())
        mean = f"; mean Dice {np.mean(scores):.3f}" if scores else ""
        done = len(scores) if self._all_labelled else len(self._all_doubt)
        text = f"Predicted {done} of {self._all_total} images{mean}"
        if self._all_stopped:
            text = f"Stopped. {text}"
        if self._all_failed:
            named = "; ".join(f"{n}: {m}" for n, m in self._all_failed[:3])
            more = f" and {len(self._all_failed) - 3} more (see the log)" if len(self._all_failed) > 3 else ""
            text += f". {len(self._all_failed)} failed: {named}{more}"
        hint = ". Sort the Dice column to see the worst first." if self._all_labelled else \
            ". The doubt column ranks them: L opens the one to label next."
        self._say(text + hint, error=bool(self._all_failed))
        self._all_total = 0
        self.all_btn.setEnabled(True)
        self.all_stop_btn.setEnabled(False)
        if self._next_after_all:
            self._next_after_all = False
            self.next_to_label()

    def _show_all_column(self) -> None:
        if self._all_labelled:
            self._call("set_dice_column", dict(self._all_scores))
        else:
            self._call("set_rank_column", "doubt", dict(self._all_doubt))

    @property
    def doubt(self) -> dict[str, float]:
        """Uncertainty of each unannotated image of the last *Predict all* (entry key -> score)."""
        return dict(self._all_doubt)

    def next_to_label(self) -> Any:
        """*Label next*: open the unannotated image the model is least sure about (of the last *Predict all*,
        skipping those labelled since). Without scores, predicts the chosen split first, then opens it."""
        entries = {e.key: e for e in self._call("split_entries", self.all_split.currentText(), default=[]) or []}
        todo = [k for k in rank_uncertain(self._all_doubt) if k in entries and not entries[k].regions]
        if todo:
            entry = entries[todo[0]]
            self._call("open_entry", entry)
            left = len(todo) - 1
            self._say(f"Next to label: {entry.filename} (doubt {self._all_doubt[todo[0]]:.3f}); {left} more ranked.")
            return entry
        if self._all_total:
            self._next_after_all = True
            self._say("Ranking the photos… the most uncertain opens when Predict all is done.")
            return None
        if self._all_doubt or not any(not e.regions for e in entries.values()):
            self._say(f"Every image of {self.all_split.currentText()!r} has regions: nothing left to label there. "
                      "Choose an unlabelled split (Predict all on ▸ split).", error=True)
            return None
        if self.predict_all():
            self._next_after_all = True
        return None

    @property
    def all_scores(self) -> dict[str, float]:
        return dict(self._all_scores)

    # ---------------------------------------------------------------------------------------- export
    def export_mask(self, path: str | Path | None = None) -> Path | None:
        if self.probs is None or self.target is None:
            return None
        if path is None:
            default = str(Path(self.target.path).with_name(Path(self.target.path).stem + "_mask.png"))
            path, _ = QFileDialog.getSaveFileName(self, "Export predicted mask", default, "PNG (*.png)")
            if not path:
                return None
        mask = (self.probs > self.threshold_value).astype(np.uint8) * 255
        return self._write_png(Path(path), mask)

    def export_overlay(self, path: str | Path | None = None) -> Path | None:
        if self.probs is None or self.target is None:
            return None
        if path is None:
            default = str(Path(self.target.path).with_name(Path(self.target.path).stem + "_overlay.png"))
            path, _ = QFileDialog.getSaveFileName(self, "Export overlay", default, "PNG (*.png)")
            if not path:
                return None
        from viaseg.core.imageio import read_image

        try:
            img = read_image(self.target.path)
        except Exception as exc:  # noqa: BLE001
            self._say(f"Cannot export overlay: {exc}", error=True)
            return None
        rgba = overlays.render(self.mode_value, self.probs, self.threshold_value, self.opacity.value() / 100.0,
                               self._truth_full)
        return self._write_png(Path(path), overlays.composite(img, rgba)[..., ::-1])

    def _write_png(self, path: Path, arr: np.ndarray) -> Path | None:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
        try:
            if not ok:
                raise OSError("PNG encoding failed")
            path.write_bytes(buf.tobytes())
        except OSError as exc:
            self._say(f"{path}: cannot write ({exc})", error=True)
            return None
        self._say(f"Saved {path}")
        return path
