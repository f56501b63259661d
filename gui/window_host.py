"""The main window as the prediction panel sees it (``WindowHost``: the photo shown, adding and replacing
regions as undoable edits, adding a dropped photo to a split, the image list's columns) and the drop filter that
sends photos and image folders to prediction and VIA files / dataset folders to the window (``DropRouter``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt
from viaseg.core.annotation import edits
from viaseg.core.annotation.dataset import VIA_EXTS
from viaseg.core.annotation.project import ImageEntry

from .prediction_host import PanelHost
from .prediction_panel import IMAGE_EXTS, PhotoDropFilter, Target

if TYPE_CHECKING:
    from .main_window import MainWindow


class WindowHost(PanelHost):
    """The PredictionPanel's view of the main window."""

    shows_targets = can_set_regions = True

    def __init__(self, window: MainWindow):
        self.w = window
        self._saved_fill: int | None = None

    def agreement_shown(self, on: bool) -> None:
        """While the TP/FP/FN view is shown, region fills would tint its colours: keep only outlines."""
        slider = self.w.opacity_slider
        if on and self._saved_fill is None:
            self._saved_fill = slider.value()
            slider.setValue(0)
        elif not on and self._saved_fill is not None:
            slider.setValue(self._saved_fill)
            self._saved_fill = None

    def current_target(self) -> Target | None:
        w = self.w
        if 0 <= w.current < len(w.session.rows):
            row = w.session.rows[w.current]
            return Target(row.entry.path, row.entry, row.split)
        return Target(Path(w.external_path)) if w.external_path else None

    def set_overlay(self, img) -> None:
        self.w.canvas.set_prediction_overlay(img)

    def show_external(self, path: Path) -> bool:
        return self.w.show_external_image(path)

    def add_regions(self, entry, regions) -> None:
        attrs = self.w.canvas.default_attributes() or {}
        for r in regions:
            r.attributes = {**copy.deepcopy(attrs), **r.attributes}
        self.w.session.push(edits.AddRegions(entry, regions))

    def set_regions(self, entry, regions, fresh, text) -> None:
        """Replace or merge accepted predictions: ``entry``'s regions become ``regions`` (one undo step);
        the ``fresh`` ones get the default attributes as added regions do."""
        attrs = self.w.canvas.default_attributes() or {}
        for r in fresh:
            r.attributes = {**copy.deepcopy(attrs), **r.attributes}
        self.w.session.push(edits.SetRegions(entry, regions, text))

    def split_names(self) -> list[str]:
        ds = self.w.session.dataset
        return list(ds.splits) if ds is not None else []

    def split_entries(self, name: str) -> list:
        ds = self.w.session.dataset
        return list(ds.splits[name].entries) if ds is not None and name in ds.splits else []

    def set_dice_column(self, mapping: dict) -> None:
        il = self.w.image_list
        il.set_extra_column("Dice", mapping, missing_last_ascending=True)  # images of other splits after
        col = il.model.columnCount() - 1
        il.view.sortByColumn(col, Qt.SortOrder.AscendingOrder)  # worst first

    def set_rank_column(self, title: str, mapping: dict, ascending: bool = False) -> None:
        """A ranking column (Label next's "next", 1 first, ``ascending``; or "doubt", highest first); images
        without a value sort last either way."""
        il = self.w.image_list
        il.set_extra_column(title, mapping, missing_last_ascending=ascending)
        order = Qt.SortOrder.AscendingOrder if ascending else Qt.SortOrder.DescendingOrder
        il.view.sortByColumn(il.model.columnCount() - 1, order)

    def open_entry(self, entry) -> None:
        row = self.w.session.row_of(entry)
        if row >= 0:
            self.w.show_row(row)

    def add_external(self, path: Path, split_name: str, regions) -> bool:
        """Copy ``path`` into the split's image folder (unless it is there already) and add it with
        ``regions`` as one undoable step."""
        w = self.w
        self.problem = self.added_as = ""
        self.added_path: Path | None = None
        ds = w.session.dataset
        sp = ds.splits.get(split_name) if ds is not None else None
        if sp is None:
            return self._cannot(f"there is no split {split_name!r} to add images to")
        path = Path(path)
        dest = sp.image_dir / path.name
        held = self._held(sp, path)
        if held is not None:  # accepted twice: the second made a copy 111-2.jpg and a second entry
            return self._cannot(f"{path.name} is already in split {split_name!r} (as {held})")
        try:
            copy_needed = path.resolve() != dest.resolve()
            if copy_needed:
                n = 2
                while dest.exists():
                    dest = sp.image_dir / f"{path.stem}-{n}{path.suffix}"
                    n += 1
            size = path.stat().st_size
        except OSError as exc:
            return self._cannot(f"cannot add {path} to {sp.image_dir}: {exc.strerror or exc}")
        if any(Path(e.filename).name == dest.name for e in sp.entries):
            return self._cannot(f"{dest.name} is already in split {split_name!r}")
        attrs = w.canvas.default_attributes() or {}
        for r in regions:
            r.attributes = {**copy.deepcopy(attrs), **r.attributes}
        entry = ImageEntry(
            key=f"{dest.name}{size}",
            filename=dest.name,
            size=size,
            regions=list(regions),
            base_dir=sp.image_dir,
        )
        lists = w.session.image_lists(sp)
        # an import copies the photo in and its undo moves the copy out again
        cmd = edits.ImportImage(entry, lists, path) if copy_needed else edits.AddImage(entry, lists)
        try:
            w.session.push_to_split(cmd, sp)  # a folder of photos gets its VIA file in the same step
        except edits.EditError as exc:
            return self._cannot(str(exc))
        self.added_as, self.added_path = dest.name, dest
        row = w.session.row_of(entry)
        if row >= 0:
            w.show_row(row)
        return True

    def _cannot(self, why: str) -> bool:
        self.problem = why
        self.w.notify(why, True)
        return False

    @staticmethod
    def _held(sp, path: Path) -> str | None:
        """The file name under which split ``sp`` already holds the photo ``path`` (the same file, or a copy
        with the same bytes listed in the split), or None."""
        import filecmp

        try:
            src = path.resolve()
            for e in sp.entries:
                p = Path(e.path)
                if p.resolve() == src:
                    return e.filename
                if p.name.startswith(path.stem) and p.suffix.lower() == path.suffix.lower() and p.is_file():
                    if p.stat().st_size == path.stat().st_size and filecmp.cmp(p, path, shallow=False):
                        return e.filename
        except OSError:
            return None
        return None


# ------------------------------------------------------------------------------------------ filters


class DropRouter(PhotoDropFilter):
    """Photos and image-only folders go to prediction; VIA files and dataset folders to the window."""

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Drop:
            md = event.mimeData()
            paths = (
                [Path(u.toLocalFile()) for u in md.urls() if u.isLocalFile()] if md and md.hasUrls() else []
            )
            if not paths or any(is_project_path(p) for p in paths):
                return False  # the window opens it as a project
        return super().eventFilter(obj, event)


def is_project_path(p: Path) -> bool:
    if p.is_file():
        return p.suffix.lower() in VIA_EXTS
    if p.is_dir():
        try:
            names = [q for q in p.iterdir()]
        except OSError:
            return False
        if any(q.suffix.lower() in VIA_EXTS for q in names if q.is_file()):
            return True
        return any(q.is_dir() for q in names) and not any(q.suffix.lower() in IMAGE_EXTS for q in names)
    return False
