"""The main window's file flows: opening a VIA file or dataset folder (with crash recovery), showing a photo
from outside the project, saving and *Save as*, the recovery journal, closing, dropping a file on the window;
:class:`FileFlowsMixin` is a base class of ``MainWindow``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox
from viaseg.core.annotation import journal
from viaseg.core.annotation.dataset import VIA_EXTS as VIA_SUFFIXES
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.base.errors import ImageReadError, ViasegError
from viaseg.core.imaging.imageio import IMAGE_EXTS

from . import actions
from .attributes_panel import attribute_definitions

DECODE_CHECK_LIMIT = 2000  # images; above this the automatic check on open does not decode pixels
# Save as's file types: the VIA format each writes (a .csv name always writes CSV, a .json one never does)
SAVE_AS_TYPES = {
    "VIA 2 annotations (*.json)": "via2",
    "VIA 2 project, keeps attribute types (*.json)": "via2-project",
    "VIA 3 project (*.json)": "via3",
    "VIA 1 annotations (*.json)": "via1",
    "VIA CSV (*.csv)": "csv",
}
CANNOT_SHOW = "cannot show image: "  # how the status bar starts the message of a photo that cannot be read


class FileFlowsMixin:
    """``MainWindow``'s open / save / close / drop flows."""

    _told_unjournaled: Path | None = None  # the project told that its imported edits are not journaled
    save_question_answered = False  # the close's save question was asked already (the training question's)

    # ----------------------------------------------------------------------------------------- opening
    def open_path(self, path: str | Path, restore: bool | None = None) -> bool:
        """Open a VIA file or a dataset folder. ``restore``: what to do with a crash journal (None = ask)."""
        path = Path(path)
        if path.is_file() and path.suffix.lower() not in VIA_SUFFIXES:
            if path.suffix.lower() in IMAGE_EXTS:
                return self.show_external_image(path)
            self.open_failed(
                f"Cannot open {path}: not a VIA file or dataset folder (expected .json, .csv or a folder)"
            )
            return False
        defs = attribute_definitions(path) if path.is_file() else None
        if defs is not None:  # a VIA `_via_attributes` export: widgets for the open project, not a project
            return self.attributes.import_definitions(defs, self.session.projects(), self.notify, path.name)
        try:  # read it before asking to save or discard the open project: a file that cannot open changes nothing
            loaded = load_dataset(path)
        except ViasegError as exc:
            self.open_failed(f"Cannot open {path}: {exc}")
            return False
        except OSError as exc:
            self.open_failed(f"Cannot open {path}: {exc.strerror or exc}")
            return False
        if not self.maybe_save():
            return False
        self.session.open(path, loaded)
        self.banner.hide()
        self.cache.clear()
        self.current = -1
        self.image_list.reload()
        recovery_note = self._check_recovery(path, restore)
        actions.remember_recent(self, path)
        self.attributes.set_definitions(self.session.attributes())
        if self.session.rows:
            # start on the first image whose file exists (a missing one would greet the user with an error)
            first = next((i for i, r in enumerate(self.session.rows[:500]) if r.entry.path.is_file()), 0)
            self.show_row(first)
        else:
            self.canvas.set_entry(None, None, None, placeholder="this project has no images")
        self.run_full_check()
        self._update_title()
        n = len(self.session.rows)
        text = f"opened {path} ({n} images, {self.session.dataset.region_count} regions)"
        # what happened to a crash journal is said in the same message (a message of its own was replaced by
        # this one at once)
        self.notify(
            f"{text}; {recovery_note[0]}" if recovery_note else text, bool(recovery_note and recovery_note[1])
        )
        return True

    def _check_recovery(self, path: Path, restore: bool | None) -> tuple[str, bool] | None:
        """Offer (or apply ``restore``) a crash journal of ``path``; returns what to tell the user, as
        ``(text, is_error)``, or None when there was nothing to restore or it was declined."""
        try:
            rec = journal.find_recovery(path)
        except ViasegError as exc:  # e.g. cut short by the crash: the project opens as it is on disk
            return f"unsaved edits could not be restored: {exc}", True
        if rec is None:
            return None
        if not rec.files:  # an older viaseg journaled an imported project as nothing: nothing to restore
            journal.discard_recovery(path)
            return None
        if restore is None:
            btn = self.ask(
                "Restore unsaved edits?",
                f"Found {rec.describe()}.{_newer_note(rec)}\nRestore them?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            )
            restore = btn == QMessageBox.StandardButton.Yes
        if restore:
            problems = self.session.restore(rec)
            self.image_list.reload()
            self._on_dirty()  # mark what came back as edited
            text = "restored unsaved edits from the recovery file (not saved yet; Ctrl+Z undoes the restore)"
            return (f"{text}; not restored: {'; '.join(problems)}", True) if problems else (text, False)
        journal.discard_recovery(path)
        return None

    def clear_cannot_show(self) -> None:
        """Before another photo is shown: the status bar's "cannot show image" message named the photo shown
        before, so it goes (it stayed 15 s and read as this photo's); the new photo says its own if it fails."""
        if self.statusBar().currentMessage().startswith(CANNOT_SHOW):
            self.statusBar().clearMessage()

    def show_external_image(self, path: str | Path) -> bool:
        """Show an image that is not part of the project (read-only, e.g. a prediction input)."""
        path = Path(path)
        self.clear_cannot_show()
        try:
            d = self.cache.get(str(path))
        except ImageReadError as exc:
            self.notify(f"{CANNOT_SHOW}{exc}", True)
            # the canvas says so instead of keeping the previous image, which would look like this photo's
            self.current = -1
            self.external_path = None
            self.image_list.set_current(-1)
            self.canvas.set_entry(None, None, None, placeholder=f"cannot show {path.name}: {exc.problem}")
            self.attributes.show_for(None, None)
            self.lbl_size.setText("")
            self.lbl_regions.setText(f"{path.name} (unreadable)")
            self.image_shown.emit()
            return False
        self.current = -1
        self.external_path = path
        self.image_list.set_current(-1)
        self.canvas.set_entry(None, d.qimage, d.size)
        self.attributes.show_for(None, None)
        self.lbl_size.setText(f"{d.size[0]}×{d.size[1]}")
        self.lbl_regions.setText(f"{path.name} (not in the project)")
        self.image_shown.emit()
        return True

    # ------------------------------------------------------------------------------------------ saving
    def save(self) -> bool:
        if self.session.dataset is None:
            return True
        projs = self.session.projects()
        if len(projs) == 1 and projs[0].path is None:
            # an imported labelme / COCO file: Save asks for the VIA file to write, as the README says (it said
            # "the project has no file name yet (use save as)"); the imported file is never written
            return self.save_as()
        changed = self.session.changed_on_disk()
        if changed:
            names = ", ".join(str(p) for p in changed)
            btn = self.ask(
                "File changed on disk",
                f"{names} changed on disk since viaseg read it (another program or person?). Saving replaces "
                "those changes with what viaseg shows; the version on disk is kept as .bak.\n\nSave anyway?",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
            )
            if btn != QMessageBox.StandardButton.Save:
                self.notify("not saved: the file changed on disk (your edits are kept in the app)", True)
                return False
        errors = self.session.save(keep_aside=changed)
        for msg in errors:
            self.notify(f"NOT saved: {msg} — your edits are kept in memory", True)
        if not errors:
            self.notify("saved")
        self._update_title()
        return not errors

    def save_as(self, path: str | Path | None = None, fmt: str | None = None) -> bool:
        """Save the project to ``path`` in the VIA format ``fmt`` (None: the project's own, or CSV for a .csv
        name) and make that the project file; with no ``path`` a file dialog asks both (its file types)."""
        if path is None:
            projs = self.session.projects()
            current = projs[0].fmt if len(projs) == 1 else "via2"
            chosen = next((f for f, k in SAVE_AS_TYPES.items() if k == current), next(iter(SAVE_AS_TYPES)))
            path, kind = QFileDialog.getSaveFileName(
                self, "Save as", str(self._save_as_default()), ";;".join(SAVE_AS_TYPES), chosen
            )
            fmt = SAVE_AS_TYPES.get(kind, fmt)
            if path and not Path(path).suffix:
                path = f"{path}{'.csv' if fmt == 'csv' else '.json'}"
        if not path:
            return False
        if not self._images_follow(Path(path)):
            return False
        errors = self.session.save_as(path, fmt)
        for msg in errors:
            self.notify(f"NOT saved: {msg}", True)
        self._update_title()
        if not errors:
            actions.remember_recent(self, Path(path))
            self.notify(f"saved as {path} ({self.session.projects()[0].fmt})")
        return not errors

    def _save_as_default(self) -> Path | str:
        """Where Save as starts: the open file, except for an imported COCO / labelme file (its project has no
        VIA path), which is never offered as the place to write VIA content: a new VIA file beside it."""
        src = self.session.source
        if src is None:
            return ""
        src = Path(src)
        if src.is_file() and self.session.projects() and all(p.path is None for p in self.session.projects()):
            return src.parent / "via_region_data.json"
        return src

    def _images_follow(self, target: Path) -> bool:
        """Saving into another folder: VIA and viaseg look for a file's images (relative names) next to it, so
        ask before writing a file that will open with every image missing. True: go on."""
        projs = self.session.projects()
        if len(projs) != 1:
            return True  # save_as refuses these with its own message
        entries = [e for e in projs[0].images if not Path(e.filename).is_absolute()]
        here = [e for e in entries[:200] if e.path.is_file()]
        if not here or all((target.parent / e.filename).is_file() for e in here):
            return True
        src = here[0].path.parent.resolve()
        b = QMessageBox.StandardButton
        ans = self.ask(
            "Images stay behind",
            f"The images of this project are in {src}.\nviaseg and VIA look for them next to the VIA "
            f"file, so {target.name} in {target.parent} will open with its images missing unless they "
            "are copied there.\n\nSave there anyway?",
            b.Save | b.Cancel,
        )
        return ans == b.Save

    def maybe_save(self) -> bool:
        """Before closing/replacing the project: True when it is fine to continue."""
        if not self.session.is_dirty():
            return True
        b = QMessageBox.StandardButton
        ans = self.ask("Unsaved changes", "Save the changes before closing?", b.Save | b.Discard | b.Cancel)
        if ans == b.Save:
            return self.save()
        if ans == b.Discard:
            self.session.discard_journal()
            return True
        return False

    def write_journal(self) -> None:
        try:
            self.session.write_journal()
        except (OSError, ViasegError) as exc:
            self.notify(f"cannot write the recovery file: {exc}", True)
        source = self.session.source
        if self.session.unjournaled() and source is not None and source != self._told_unjournaled:
            self._told_unjournaled = source  # once per opened project: said, not pretended
            self.notify(
                "These edits of imported labelme/COCO annotations are not in the crash-recovery file: save them "
                "as a VIA file (File ▸ Save as) to keep them safe",
                True,
            )

    def closeEvent(self, ev) -> None:
        answered, self.save_question_answered = self.save_question_answered, False
        if answered or self.maybe_save():
            self.journal_timer.stop()
            if not self.session.is_dirty():
                self.session.discard_journal()
            self.session.history.clear()  # nothing can be redone after closing: undone imports' copies go
            if self.settings is not None:
                self.settings.setValue("geometry", self.saveGeometry())
                self.settings.setValue("state", self.saveState())
            ev.accept()
        else:
            ev.ignore()

    # --------------------------------------------------------------------------------------- drag/drop
    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        urls = [u for u in ev.mimeData().urls() if u.isLocalFile()]
        if not urls:
            self.notify("only local files or folders can be dropped", True)
            return
        self.open_path(urls[0].toLocalFile())


def _newer_note(rec: journal.Recovery) -> str:
    """What the restore question adds when a journaled file was saved again after the journal was written."""
    newer = rec.newer_on_disk()
    if not newer:
        return ""
    return (
        f"\n\nNote: {', '.join(newer)} changed on disk after these edits were journaled; restoring shows the "
        "journaled version instead (nothing is written until you save)."
    )
