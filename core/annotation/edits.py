"""Pure, undoable edit commands on :class:`Region` / :class:`ImageEntry`, and an unbounded :class:`History`.

No Qt here: the GUI builds a command, hands it to :meth:`History.push` (which applies it) and asks the history
for undo/redo. Every command knows the :class:`ImageEntry` it changes (``cmd.entry``) so a GUI can switch to
that image when it is undone from another one.

This module is the one import path for all of them (``from viaseg.core import edits``): the protocol and
:class:`History` live in :mod:`.edit_history`, geometry and region-list commands in :mod:`.edit_regions`,
attribute commands in :mod:`.edit_attributes`, all re-exported here. This module itself holds the commands that
add or take out whole images (:class:`AddImage`, :class:`ImportImage`, :class:`RemoveImage`,
:class:`RestoreProjects`) and the folder where an undone import keeps its copy (``aside_root``,
:func:`sweep_undone_imports`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .edit_attributes import (
    DefineAttribute,
    RenameAttribute,
    SetFileAttribute,
    SetRegionAttribute,
)
from .edit_history import Command, EditError, History
from .edit_regions import (
    MIN_POLYGON_VERTICES,
    AddRegions,
    DeleteRegions,
    SetRegions,
    SetShape,
    delete_vertex,
    handles,
    has_closing_duplicate,
    insert_vertex,
    logical_points,
    move_region,
    move_vertex,
    resize_shape,
    resized,
    translated,
    uses_int_coords,
)
from .project import ImageEntry

__all__ = [
    "MIN_POLYGON_VERTICES",
    "UNDONE_IMPORT_PREFIX",
    "AddImage",
    "AddRegions",
    "Command",
    "DefineAttribute",
    "DeleteRegions",
    "EditError",
    "History",
    "ImportImage",
    "RemoveImage",
    "RenameAttribute",
    "RestoreProjects",
    "SetFileAttribute",
    "SetRegionAttribute",
    "SetRegions",
    "SetShape",
    "aside_root",
    "delete_vertex",
    "handles",
    "has_closing_duplicate",
    "insert_vertex",
    "logical_points",
    "move_region",
    "move_vertex",
    "resize_shape",
    "resized",
    "sweep_undone_imports",
    "translated",
    "uses_int_coords",
]


UNDONE_IMPORT_PREFIX = "viaseg-undone-import-"
aside_root: Path | None = None  # where an undone import keeps its copy (None: the system's temp folder)


def _new_aside_dir() -> Path:
    """A private folder for one undone import's copy; its name carries this process's id (see
    :func:`sweep_undone_imports`)."""
    return Path(tempfile.mkdtemp(prefix=f"{UNDONE_IMPORT_PREFIX}{os.getpid()}-", dir=aside_root))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def sweep_undone_imports(root: str | Path | None = None) -> list[Path]:
    """Delete the copies kept aside by undone imports of processes that are gone (an app killed while an
    import was undone): nothing can redo those imports any more. Folders of running processes are left
    alone. Returns the folders deleted."""
    root = Path(root or aside_root or tempfile.gettempdir())
    pattern = re.compile(re.escape(UNDONE_IMPORT_PREFIX) + r"(\d+)-")
    gone: list[Path] = []
    try:
        candidates = list(root.glob(UNDONE_IMPORT_PREFIX + "*"))
    except OSError:
        return gone
    for folder in candidates:
        m = pattern.match(folder.name)
        if m and folder.is_dir() and not _process_alive(int(m.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                gone.append(folder)
    return gone


class _ImageListEdit(Command):
    """Base of the commands that add or take out a whole image. ``lists`` are the lists that hold the image
    entries of its split (a split's ``entries`` and its project's ``images``, the same list or two);
    ``changes_images`` tells the owner of the rows (the GUI session) to re-index them."""

    changes_images = True

    def __init__(self, entry: ImageEntry, lists: Iterable[list]):
        super().__init__(entry)
        self.lists: list[list] = []
        for lst in lists:
            if not any(lst is seen for seen in self.lists):
                self.lists.append(lst)

    def _take_out(self) -> None:
        for lst in self.lists:
            lst[:] = [e for e in lst if e is not self.entry]


def _content(entry: ImageEntry) -> tuple:
    return ([(r.shape, r.attributes) for r in entry.regions], entry.file_attributes, entry.filename)


class RestoreProjects(Command):
    """Put journaled (crash-recovered) projects in place of the splits' projects, as one undoable step: undo
    gives back what is on disk. ``swaps`` are ``(split, new_project)``; a split is anything with ``project`` and
    ``entries`` (core.dataset.Split). :meth:`entries` are the restored images that differ from the ones on disk
    (or are new), so only those show as edited."""

    text = "restore unsaved edits"
    changes_images = True

    def __init__(self, swaps: Iterable[tuple[Any, Any]]):
        super().__init__(None)
        self.swaps = [(sp, sp.project, sp.entries, new, new.images) for sp, new in swaps]
        changed: list[ImageEntry] = []
        for _sp, _old_p, old_entries, _new_p, new_entries in self.swaps:
            before = {e.key: _content(e) for e in old_entries}
            changed.extend(e for e in new_entries if before.get(e.key) != _content(e))
        self.changed = changed

    def do(self) -> None:
        for sp, _old_p, _old_e, new_p, new_e in self.swaps:
            sp.project, sp.entries = new_p, new_e

    def undo(self) -> None:
        for sp, old_p, old_e, _new_p, _new_e in self.swaps:
            sp.project, sp.entries = old_p, old_e

    def entries(self) -> list[ImageEntry]:
        return list(self.changed)


class AddImage(_ImageListEdit):
    """Add an image (with its regions) at the end of its split; undo takes it out again."""

    text = "add image"

    def do(self) -> None:
        for lst in self.lists:
            lst.append(self.entry)

    def undo(self) -> None:
        self._take_out()


class ImportImage(AddImage):
    """Add a photo from outside the split: ``do`` copies ``source`` to the entry's file in the split's image
    folder, undo moves that copy aside (to a private temporary folder) and takes the image out, so undoing an
    import leaves the folder as it was; redo moves the copy back (or copies ``source`` again). A copy that
    was changed or replaced on disk after the import is never moved: undo then only takes the image out."""

    text = "import image"

    def __init__(self, entry: ImageEntry, lists: Iterable[list], source: str | Path):
        super().__init__(entry, lists)
        self.source = Path(source)
        self.dest = Path(entry.base_dir or ".") / entry.filename
        self._stamp: tuple[int, int] | None = None  # (size, mtime_ns) of the copy this import made
        self._aside: Path | None = None
        self._listed = False  # a saved VIA file lists the copy: it stays in the folder for good

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.dest.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def saved(self) -> None:
        """Saved with the photo imported: the saved VIA file lists the copy, so an undo after this takes the
        image out of the split but leaves the photo in the folder (it moved it aside, and a Discard then left
        the saved file naming a photo that was gone)."""
        self._listed = True

    def do(self) -> None:
        if self._listed and self.dest.exists():  # redo after a save and an undo: the copy never left
            super().do()
            return
        try:
            if self._aside is not None and self._aside.exists() and not self.dest.exists():
                shutil.move(str(self._aside), str(self.dest))
                shutil.rmtree(self._aside.parent, ignore_errors=True)  # the emptied private folder
            elif self.dest.exists():
                if self._stamp is None or self._stat() != self._stamp:
                    raise EditError(f"cannot import {self.source.name}: {self.dest} already exists")
            else:
                shutil.copy2(self.source, self.dest)
        except OSError as exc:
            raise EditError(
                f"cannot copy {self.source} into {self.dest.parent}: {exc.strerror or exc}"
            ) from exc
        self._aside = None
        self._stamp = self._stat()
        super().do()

    def undo(self) -> None:
        super().undo()
        if self._listed or self._stamp is None or self._stat() != self._stamp:
            return  # listed by a saved file, or not the file this import wrote: leave it alone
        try:
            aside = _new_aside_dir() / self.dest.name
        except OSError:
            return  # no private folder: the photo stays in the split's folder, the image is out all the same
        try:
            shutil.move(str(self.dest), str(aside))
        except OSError:
            shutil.rmtree(aside.parent, ignore_errors=True)
            return
        self._aside = aside

    def discard(self) -> None:
        if self._aside is not None:  # undone and never to be redone: the copy kept aside goes
            shutil.rmtree(self._aside.parent, ignore_errors=True)
            self._aside = None


class RemoveImage(_ImageListEdit):
    """Take an image out of its split's VIA file (the photo itself stays on disk, as in VIA); undo puts it
    back where it was."""

    text = "remove image"

    def __init__(self, entry: ImageEntry, lists: Iterable[list]):
        super().__init__(entry, lists)
        self.positions = [next((i for i, e in enumerate(lst) if e is entry), -1) for lst in self.lists]
        if -1 in self.positions:
            raise EditError(f"{entry.filename} is not an image of this split")

    def do(self) -> None:
        self._take_out()

    def undo(self) -> None:
        for lst, i in zip(self.lists, self.positions, strict=True):
            lst.insert(i, self.entry)
