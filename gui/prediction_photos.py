"""Photos from outside the project for the Prediction panel: what an image to predict is (:class:`Target`),
dropped files and folders turned into images (:func:`expand_paths`, :class:`PhotoDropFilter`) and the panel's
list of dropped photos (:class:`PhotosMixin`, a base class of ``PredictionPanel``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, Slot
from PySide6.QtWidgets import QFileDialog, QListWidgetItem, QWidget
from viaseg.core.annotation.dataset import folder_leftovers, list_images
from viaseg.core.base.errors import ViasegError
from viaseg.core.imaging.imageio import IMAGE_EXTS

if TYPE_CHECKING:
    from .prediction_panel import PredictionPanel


@dataclass
class Target:
    """An image to predict: a project entry (``entry`` set) or an external photo (``entry`` None)."""

    path: Path
    entry: Any = None  # viaseg.core.annotation.project.ImageEntry
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
            try:
                found = list_images(p)
            except ViasegError as exc:
                problems.append(str(exc))
                continue
            if not found:
                problems.append(f"{p}: folder holds no images")
            left = folder_leftovers(p)
            if left:  # subfolders, HEIC photos, broken links: named, not left out unseen
                problems.append(f"{p.name}: {left}")
            images.extend(found)
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            images.append(p)
        elif not p.exists():
            problems.append(f"{p}: no such file")
        else:
            problems.append(f"{p.name}: not an image (use {', '.join(IMAGE_EXTS)})")
    return images, problems


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

    def eventFilter(self, obj, event):  # Qt API
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


class PhotosMixin:
    """``PredictionPanel``'s dropped photos: the list under *Dropped photos*, showing and predicting one."""

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
        if images and self.all_split.findText("Dropped photos") < 0:
            self.refresh_splits()  # Predict all / Label next can now rank the dropped photos
        said = "Not opened: " + "; ".join(problems) + "." if problems else ""
        if images:
            self.show_photo(images[0])
            if said:  # after the first photo's own message, and kept when its prediction arrives
                self._say(f"{self.message.text()} {said}", error=True)
                if self.target is not None and Path(self.target.path) == Path(images[0]):
                    self._next_note = (Path(images[0]).resolve(), said)
        elif said:
            self._say(said, error=True)
        else:
            self._say("Nothing to open.", error=True)
        return images

    def show_photo(self, path: Path) -> None:
        for i in range(self.photos.count()):
            if self.photos.item(i).data(Qt.ItemDataRole.UserRole) == str(path):
                self.photos.blockSignals(True)
                self.photos.setCurrentRow(i)
                self.photos.blockSignals(False)
        if self.host.show_external(Path(path)) is False:
            # unreadable (0 bytes, not an image, truncated): the canvas says why; it leaves the list
            self._forget_photo(Path(path))
            self.set_target(None)
            self._say(
                f"Cannot open {Path(path).name}: not a readable image (removed from the list).", error=True
            )
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
        files, _ = QFileDialog.getOpenFileNames(
            self, "Predict images", "", "Images (" + " ".join("*" + e for e in IMAGE_EXTS) + ")"
        )
        if files:
            self.open_photos(files)
