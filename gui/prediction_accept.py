"""Accepting a prediction as polygons (Replace / Merge / Add) and exporting its mask or overlay:
:class:`AcceptMixin`, a base class of ``PredictionPanel``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtWidgets import QFileDialog, QMessageBox
from viaseg.core.base.fsutil import atomic_write

from . import overlays
from .prediction_photos import Target

HINT_DEBOUNCE_PIXELS = 8_000_000  # maps larger than this count their polygons after a pause, not at each step
HINT_DEBOUNCE_MS = 250
ACCEPT_MODES = ("replace", "merge", "add")  # what accepting does to the regions an image already has


class AcceptMixin:
    """``PredictionPanel``'s *Accept as polygons* group and the *Export mask…* / *Export overlay…* buttons."""

    def predicted_regions(self) -> list:
        from viaseg.core.annotation.raster import mask_to_regions

        if self.probs is None:
            return []
        mask = self.probs > self.threshold_value  # bool: traced without a copy
        return mask_to_regions(mask, tolerance=self.tolerance.value() / 2.0, min_area=self.min_area.value())

    def _update_vertex_hint(self, *_args) -> None:
        """Update the polygon/vertex count under the Accept controls when the event loop is next free; on a
        large photo once the threshold (or detail) stays put for a moment, since each count traces the whole
        map (0.2 s at 48 MP, 0.5 s at 108 MP here: dragging the slider stalled on every step)."""
        big = self.probs is not None and self.probs.size > HINT_DEBOUNCE_PIXELS
        self._hint_timer.setInterval(HINT_DEBOUNCE_MS if big else 0)
        self._hint_timer.start()

    def _show_vertex_hint(self) -> None:
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
        if self.target is not None and not self._still_shown():  # the prediction is of another image
            self.set_target(None)
        if self.target is None or self.probs is None:
            self._say("Predict an image first.", error=True)
            return []
        regions = self.predicted_regions()
        if not regions:
            self._say("Nothing above the threshold (or every piece is below the minimum area).", error=True)
            return []
        target = self.host.current_target() or self.target
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
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Accept prediction",
            f"This image already has {n_old} region(s). What should the {n_new} predicted polygon(s) do?",
            parent=self,
        )
        box.setInformativeText(
            "<b>Replace</b>: the predicted polygons take the place of every region of the image.<br>"
            "<b>Merge</b>: a polygon that overlaps a region is joined to it (one outline, the region's "
            "attributes); the others are added.<br>"
            "<b>Add</b>: the polygons are added beside the regions (overlaps stay).<br>"
            "Each is one undo step."
        )
        for mode, label, role in (
            ("replace", "Replace", QMessageBox.ButtonRole.DestructiveRole),
            ("merge", "Merge", QMessageBox.ButtonRole.AcceptRole),
            ("add", "Add", QMessageBox.ButtonRole.AcceptRole),
        ):
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
        target = target or self.host.current_target() or self.target
        if target is None:
            self._say("Open an image first.", error=True)
            return False
        entry = target.entry
        if entry is not None:
            if mode not in ACCEPT_MODES:
                raise ValueError(f"accept mode must be one of {ACCEPT_MODES}, not {mode!r}")
            if mode == "add" or not entry.regions:
                self.host.add_regions(entry, regions)
                self._say(f"Added {len(regions)} polygon(s); Undo removes them.")
                return True
            if not self.host.can_set_regions:
                self._say("This window cannot replace or merge regions.", error=True)
                return False
            n_old = len(entry.regions)
            if mode == "replace":
                self.host.set_regions(entry, regions, regions, f"replace {n_old} region(s) by the prediction")
                self._say(f"Replaced {n_old} region(s) by {len(regions)} polygon(s); Undo brings them back.")
                return True
            from viaseg.core.annotation.raster import merge_regions

            merged_list, merged, appended = merge_regions(
                entry.regions, regions, self.tolerance.value() / 2.0, self.min_area.value()
            )
            fresh = merged_list[len(merged_list) - appended :]
            self.host.set_regions(entry, merged_list, fresh, "merge the prediction into the regions")
            self._say(
                f"Merged into {merged} region(s), added {appended} polygon(s); Undo restores the regions."
            )
            return True
        split = self.split_combo.currentText()
        if not split:
            self._say("Open a project to add this photo to one of its splits.", error=True)
            return False
        name = Path(target.path).name
        ok = self.host.add_external(Path(target.path), split, regions)
        if not ok:  # with the host's reason (the status bar's was replaced by this message at once)
            why = f": {self.host.problem}" if self.host.problem else "."
            self._say(f"Could not add {name} to split {split!r}{why}", error=True)
            return False
        as_ = f" as {self.host.added_as}" if self.host.added_as and self.host.added_as != name else ""
        said = f"Added {name} to {split}{as_} with {len(regions)} polygon(s)."
        self._say(said)
        added = getattr(self.host, "added_path", None)
        if added is not None:  # predicted again as a project photo next: which split it went to stays in view
            self._next_note = (Path(added).resolve(), said)
        ranked = self._dropped_entries.get(str(target.path))
        if ranked is not None:  # labelled now: Label next moves on to the next dropped photo
            ranked.regions = list(regions)
        return True

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
        from viaseg.core.imaging.imageio import read_image

        try:
            img = read_image(self.target.path)
        except Exception as exc:
            self._say(f"Cannot export overlay: {exc}", error=True)
            return None
        rgba = overlays.render(
            self.mode_value, self.probs, self.threshold_value, self.opacity.value() / 100.0, self._truth_full
        )
        return self._write_png(Path(path), overlays.composite(img, rgba)[..., ::-1])

    def _write_png(self, path: Path, arr: np.ndarray) -> Path | None:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
        try:
            if not ok:
                raise OSError("PNG encoding failed")
            atomic_write(path, buf.tobytes(), backup=False)
        except OSError as exc:  # its own words: OSError's text names the temporary file, not the one chosen
            why = "its folder does not exist" if not path.parent.is_dir() else (exc.strerror or str(exc))
            self._say(f"{path}: cannot write ({why})", error=True)
            return None
        self._say(f"Saved {path}")
        return path
