"""The open document: a project/dataset, its undo history, dirty tracking, saving and the recovery journal.
No Qt: changes are reported through plain callbacks (``on_opened``, ``on_changed``, ``on_dirty_changed``,
``on_rows_changed``), which the app's ``gui.session.Session`` turns into signals.

A workspace is opened on a *source*: a VIA file or a dataset folder (``core.dataset.load_dataset``). Every image
of every split is a row ``(split_name, entry)``. Edits go through :meth:`Session.push` (``core.edits``
commands), so undo works across images and splits. Saving writes every labeled split's VIA file whose images
changed, each atomically, in its own format.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..base.errors import ViasegError
from . import edits, journal
from .dataset import PREFERRED_VIA_NAME, Dataset, Split, load_dataset
from .formats.via_common import gc_paused
from .formats.via_io import save_via
from .project import ImageEntry, Project, Region

log = logging.getLogger(__name__)


@dataclass
class Row:
    split: str
    entry: ImageEntry


def _nothing(*_args: Any) -> None:
    pass


class Workspace:
    """State of the open source. Callbacks (plain attributes, no-ops until set): ``on_opened()``,
    ``on_changed(entry)`` (the ImageEntry whose content changed, after push/undo/redo),
    ``on_dirty_changed(bool)``, ``on_rows_changed()`` (an image was added or removed: ``rows`` were re-indexed,
    before ``on_changed``)."""

    def __init__(self) -> None:
        self.on_opened: Callable[[], None] = _nothing
        self.on_changed: Callable[[ImageEntry | None], None] = _nothing
        self.on_dirty_changed: Callable[[bool], None] = _nothing
        self.on_rows_changed: Callable[[], None] = _nothing
        self.source: Path | None = None
        self.dataset: Dataset | None = None
        self.rows: list[Row] = []
        self.history = edits.History()
        self._split_of: dict[int, Split] = {}
        self._home: dict[int, Split] = {}  # every entry's split since opening, removed images included
        self._row_of: dict[int, int] = {}
        self._stamps: dict[str, tuple[int, int] | None] = {}  # each VIA file as last read or written

    # opening -------------------------------------------------------------------------------------------
    def open(self, path: str | Path, dataset: Dataset | None = None) -> None:
        """Load a VIA file or dataset folder (or take ``dataset``, already loaded from ``path``). Raises
        ViasegError (message names the file); on error the previous state is kept."""
        path = Path(path).expanduser()
        ds = dataset if dataset is not None else load_dataset(path)
        self._set_dataset(path, ds)

    def _set_dataset(self, path: Path, ds: Dataset) -> None:
        self.source = path
        self.dataset = ds
        self.history.clear()
        self._home = {}
        self._stamps = {str(p.path): _file_stamp(p.path) for p in self.projects() if p.path is not None}
        self._reindex()
        self.on_opened()
        self.on_dirty_changed(False)

    def _reindex(self) -> None:
        self.rows = []
        self._split_of = {}
        self._row_of = {}
        for sp in self.dataset.splits.values() if self.dataset else []:
            for e in sp.entries:
                self._row_of[id(e)] = len(self.rows)
                self.rows.append(Row(sp.name, e))
                self._split_of[id(e)] = sp
        self._home.update(self._split_of)

    def restore(self, rec: journal.Recovery) -> list[str]:
        """Put the journaled projects in place of the open dataset's, as one undoable step ("restore unsaved
        edits"; undo gives back what is on disk); returns messages for files that could not be restored. The
        restored images that differ from the files show as edited; the state counts as unsaved."""
        assert self.dataset is not None
        problems = []
        by_path = {}
        for f in rec.files:
            try:
                by_path[str(Path(f.path).resolve())] = f.load()
            except ViasegError as exc:
                problems.append(str(exc))
        swaps = []
        for sp in self.dataset.splits.values():
            if sp.project is None:
                own = sp.image_dir / PREFERRED_VIA_NAME
            elif sp.project.path is None:
                continue
            else:
                own = sp.project.path
            new = by_path.get(str(Path(own).resolve()))
            if new is None:
                continue
            for e in new.images:
                if e.base_dir is None:
                    e.base_dir = sp.image_dir
            swaps.append((sp, new))
        self.history.clear()
        if swaps:
            self.history.push(edits.RestoreProjects(swaps))  # unsaved until saved, like any edit
        self._reindex()
        self.on_opened()
        self._emit_dirty()
        return problems

    # queries -------------------------------------------------------------------------------------------
    def row_of(self, entry: ImageEntry) -> int:
        return self._row_of.get(id(entry), -1)

    def row_of_id(self, entry_id: int) -> int:
        return self._row_of.get(entry_id, -1)

    def split_of(self, entry: ImageEntry) -> Split | None:
        return self._split_of.get(id(entry))

    def project_of(self, entry: ImageEntry) -> Project | None:
        """The project ``entry`` belongs to, or belonged to before it was removed (its removal is saved there)."""
        sp = self.split_of(entry) or self._home.get(id(entry))
        return sp.project if sp is not None else None

    def image_lists(self, sp: Split) -> list[list]:
        """The lists holding ``sp``'s image entries (for ``edits.AddImage`` / ``edits.RemoveImage``)."""
        return [sp.entries] + ([sp.project.images] if sp.project is not None else [])

    def projects(self) -> list[Project]:
        if self.dataset is None:
            return []
        return [sp.project for sp in self.dataset.splits.values() if sp.project is not None]

    def attributes(self, entry: ImageEntry | None = None) -> dict:
        """``_via_attributes``-style definitions for the project of ``entry`` (or the first project)."""
        proj = self.project_of(entry) if entry is not None else None
        if proj is None:
            projs = self.projects()
            proj = projs[0] if projs else None
        if proj is None or not isinstance(proj.attributes, dict):
            return {"region": {}, "file": {}}
        return proj.attributes

    def is_dirty(self) -> bool:
        return not self.history.is_clean()

    def dirty_entry_ids(self) -> set[int]:
        return {id(e) for e in self.history.dirty_entries()}

    def dirty_projects(self) -> list[Project]:
        seen: dict[int, Project] = {}
        for e in self.history.dirty_entries():
            p = self.project_of(e)
            if p is not None:
                seen.setdefault(id(p), p)
        return list(seen.values())

    def snapshot(self) -> Dataset | None:
        """:func:`snapshot` of the open dataset (None when nothing is open)."""
        return snapshot(self.dataset) if self.dataset is not None else None

    def display_title(self) -> str:
        if self.source is None:
            return "viaseg"
        return f"{'*' if self.is_dirty() else ''}{self.source.name} — viaseg"

    # editing -------------------------------------------------------------------------------------------
    def ensure_project(self, entry: ImageEntry) -> Project | None:
        """The project of ``entry``; an image of an unlabeled split (a folder of images) gets a new VIA 2 file
        ``via_region_data.json`` in its folder, written on the next save, so its first edit is not lost."""
        sp = self.split_of(entry)
        if sp is None:
            return None
        if sp.project is None:
            sp.project = _new_project(sp)
        return sp.project

    def push_to_split(self, cmd: edits.Command, sp: Split) -> None:
        """Apply and record ``cmd``, which adds an image to ``sp``: an unlabeled split (a folder of photos) gets
        its VIA file in the same undo step, as its first edit does (adding a dropped photo to it was refused)."""
        if sp.project is None:
            cmd = _InNewProject(cmd, sp, _new_project(sp))
        self.history.push(cmd)
        self._after(cmd)

    def push(self, cmd: edits.Command) -> None:
        """Apply and record an edit. ``EditError`` propagates (nothing changed). The first edit of an image of
        an unlabeled split also gives the split its VIA file, in the same undo step."""
        if cmd.entry is not None:
            sp = self.split_of(cmd.entry)
            had = sp is not None and sp.project is not None
            project = self.ensure_project(cmd.entry)
            if sp is not None and not had and project is not None:
                sp.project = None  # the step below puts it in place, and its undo takes it out again
                cmd = _InNewProject(cmd, sp, project)
        self.history.push(cmd)
        self._after(cmd)

    def end_drag(self) -> None:
        self.history.end_drag()

    def undo(self) -> edits.Command | None:
        cmd = self.history.undo()
        if cmd is not None:
            self._after(cmd)
        return cmd

    def redo(self) -> edits.Command | None:
        cmd = self.history.redo()
        if cmd is not None:
            self._after(cmd)
        return cmd

    def _after(self, cmd: edits.Command) -> None:
        if cmd.changes_images:
            self._reindex()
            self.on_rows_changed()
        self.on_changed(cmd.entry)
        self._emit_dirty()

    def _emit_dirty(self) -> None:
        self.on_dirty_changed(self.is_dirty())

    # saving --------------------------------------------------------------------------------------------
    def changed_on_disk(self) -> list[Path]:
        """The VIA files a save would write that changed on disk since they were read or last written here
        (another program or person): a save replaced their changes without a word."""
        out = []
        for p in self.dirty_projects():
            if p.path is not None and str(p.path) in self._stamps:
                if _file_stamp(p.path) != self._stamps[str(p.path)]:
                    out.append(Path(p.path))
        return out

    def save(self, keep_aside: list[Path] | None = None) -> list[str]:
        """Write every changed VIA file. Returns error messages (empty = all saved). Files that failed keep
        their edits in memory and the session stays dirty. Each file of ``keep_aside`` (changed on disk, the
        user chose to save over it) is first copied to ``NAME.bak``, replacing an older copy."""
        errors = []
        targets = self.dirty_projects()
        aside = {str(p) for p in keep_aside or []}
        for proj in targets:
            try:
                if proj.path is not None and str(proj.path) in aside:
                    _copy_to_bak(Path(proj.path))
                save_via(proj)
                if proj.path is not None:
                    self._stamps[str(proj.path)] = _file_stamp(proj.path)
            except ViasegError as exc:
                errors.append(str(exc))
        if not errors:
            self.history.set_clean()
            if self.source is not None:
                try:
                    journal.discard_recovery(self.source)
                except OSError as exc:
                    log.warning("cannot remove recovery file: %s", exc)
        self._emit_dirty()
        return errors

    def save_as(self, path: str | Path, fmt: str | None = None) -> list[str]:
        """Write the (single) project to ``path`` in ``fmt`` (a VIA format; None: :func:`save_as_format`) and make
        that the project file, in that format from now on. Datasets with several labeled splits cannot be saved
        as one file."""
        projs = self.projects()
        if len(projs) != 1:
            return ["save as needs a single VIA file; this dataset has several splits (use Save)"]
        proj = projs[0]
        path = Path(path)
        fmt = save_as_format(path, fmt or proj.fmt)
        try:
            save_via(proj, path, fmt)
        except ViasegError as exc:
            return [str(exc)]
        old_source = self.source
        self._stamps[str(path)] = _file_stamp(path)
        if fmt != proj.fmt:
            proj.fmt = fmt
            proj._via_style = None  # the layout read belongs to the old format
        proj.path = path
        self.source = path
        self.history.set_clean()
        if old_source is not None:
            journal.discard_recovery(old_source)
        self._emit_dirty()
        return []

    def write_journal(self) -> Path | None:
        """Journal the unsaved projects (called by a debounced timer). Removes the journal when clean."""
        if self.source is None:
            return None
        kept = [p for p in self.dirty_projects() if p.path is not None]
        if not self.is_dirty() or not kept:  # imported files have no VIA file to journal (see unjournaled)
            journal.discard_recovery(self.source)
            return None
        return journal.write_recovery(self.source, kept)

    def unjournaled(self) -> bool:
        """Whether edits are open that the crash journal cannot hold: those of an imported labelme or COCO
        project, which has no VIA file until it is saved as one."""
        return any(p.path is None for p in self.dirty_projects())

    def discard_journal(self) -> None:
        if self.source is not None:
            journal.discard_recovery(self.source)


def _file_stamp(path: str | Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of a file; None when it cannot be read (missing)."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _copy_to_bak(path: Path) -> None:
    """Copy ``path`` to ``NAME.bak`` (replacing an older copy); ViaSaveError naming it when that fails."""
    import shutil

    from ..base.errors import ViaSaveError
    from ..base.fsutil import backup_path

    try:
        shutil.copy2(path, backup_path(path))
    except FileNotFoundError:
        return  # gone from disk: nothing to keep
    except OSError as exc:
        raise ViaSaveError(
            f"{path}: cannot keep the version on disk as .bak ({exc.strerror or exc})"
        ) from exc


def save_as_format(path: str | Path, fmt: str) -> str:
    """The VIA format a Save as to ``path`` writes, ``fmt`` asked: the file name's kind decides between CSV and
    JSON (a JSON project saved as ``export.csv`` wrote JSON into the .csv, a CSV one saved as ``.json`` wrote
    CSV), ``fmt`` the JSON kind (VIA 2 annotations when it was CSV)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json" and fmt == "csv":
        return "via2"
    return fmt


def snapshot(dataset: Dataset) -> Dataset:
    """A copy of ``dataset`` that later edits do not touch (entries, regions and attributes copied; raw JSON
    shared, which edits replace rather than change): what a background check reads while the user goes on
    editing."""
    with gc_paused(big=True):  # copies hold no cycles; a collection would walk the whole project again
        splits = {}
        for name, sp in dataset.splits.items():
            entries = [_copy_entry(e) for e in sp.entries]
            project = None
            if sp.project is not None:
                same = {id(e): c for e, c in zip(sp.entries, entries, strict=True)}
                images = [same.get(id(e)) or _copy_entry(e) for e in sp.project.images]
                project = replace(sp.project, images=images, attributes=copy.deepcopy(sp.project.attributes))
            splits[name] = replace(sp, entries=entries, project=project)
        return replace(dataset, splits=splits)


def _copy_entry(e: ImageEntry) -> ImageEntry:
    return replace(
        e, regions=[_copy_region(r) for r in e.regions], file_attributes=_copy_values(e.file_attributes)
    )


def _copy_region(r: Region) -> Region:
    return Region(_copy_values(r.shape), _copy_values(r.attributes), r.raw)


def _copy_values(d: dict) -> dict:
    """``d`` with its list and dict values copied one level down: what edits change in place (vertex lists,
    checkbox options). A deep copy took 1.8 s for 50,000 regions, on the GUI thread before every check."""
    return {k: v.copy() if isinstance(v, (list, dict)) else v for k, v in d.items()}


def _new_project(sp: Split) -> Project:
    """The VIA 2 file an unlabeled split gets (``via_region_data.json`` in its folder, written on save)."""
    for e in sp.entries:
        if e.size is None:
            try:
                e.size = e.path.stat().st_size
            except OSError:
                e.size = -1
    return Project(images=sp.entries, fmt="via2", path=sp.image_dir / PREFERRED_VIA_NAME)


class _InNewProject(edits.Command):
    """An edit that gives an unlabeled split its (not yet written) VIA file; undo takes the file away again, so
    undoing the first edit of a folder of photos leaves no trace (no "unannotated image" problems)."""

    changes_images = True  # the split changes from unlabeled to labeled: rows and checks are refreshed

    def __init__(self, cmd: edits.Command, split, project: Project):
        super().__init__(cmd.entry, cmd.merge_key)
        self.cmd, self.split, self.project = cmd, split, project
        self.text = cmd.text

    def do(self) -> None:
        self.split.project = self.project
        self.cmd.do()

    def undo(self) -> None:
        self.cmd.undo()
        self.split.project = None

    def merge(self, later: edits.Command) -> bool:
        return self.cmd.merge(later)

    def entries(self) -> list[ImageEntry]:
        return self.cmd.entries()

    def discard(self) -> None:
        self.cmd.discard()
