"""Pure, undoable edit commands on :class:`Region` / :class:`ImageEntry`, and an unbounded :class:`History`.

No Qt here: the GUI builds a command, hands it to :meth:`History.push` (which applies it) and asks the history
for undo/redo. Every command knows the :class:`ImageEntry` it changes (``cmd.entry``) so a GUI can switch to
that image when it is undone from another one.

Coordinates: VIA writes integer coordinates (``Math.round``). A shape whose coordinates are all ints stays
all-int after an edit (new positions are rounded); a shape that already holds floats keeps full precision.

VIA 1 polygons repeat their first vertex at the end. Vertex indices used here are *logical* indices that skip
that duplicate; the duplicate is kept in sync (it follows vertex 0).

Merging: a command with a ``merge_key`` merges into the previous one when the keys are equal and no
:meth:`History.end_drag` came between them, so a whole mouse drag is one undo step.
"""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
import tempfile
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from .project import ImageEntry, Region

MIN_POLYGON_VERTICES = 3
_COORD_KEYS = ("x", "y", "width", "height", "cx", "cy", "r", "rx", "ry")


class EditError(ValueError):
    """An edit that is not allowed (e.g. deleting a vertex of a triangle)."""


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
    gone = []
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


# ---------------------------------------------------------------------------------------------- shape helpers


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def uses_int_coords(shape: dict) -> bool:
    """True when every coordinate of ``shape`` is an int (so edits round to int)."""
    for key in ("all_points_x", "all_points_y"):
        vals = shape.get(key) or []
        if not all(type(v) is int for v in vals):  # type() check: bools and floats are not ints
            return False
    return all(type(shape[k]) is int for k in _COORD_KEYS if k in shape)


def _coord(v: float, as_int: bool) -> float | int:
    if as_int:
        return int(math.floor(v + 0.5))
    return float(v)


def has_closing_duplicate(shape: dict) -> bool:
    """A VIA-1 style polygon that repeats its first vertex as its last one."""
    xs = shape.get("all_points_x") or []
    ys = shape.get("all_points_y") or []
    return (
        shape.get("name") == "polygon"
        and len(xs) >= MIN_POLYGON_VERTICES + 1
        and len(xs) == len(ys)
        and xs[0] == xs[-1]
        and ys[0] == ys[-1]
    )


def logical_points(shape: dict) -> list[tuple[float, float]]:
    """Vertices of a polygon/polyline without a VIA-1 closing duplicate."""
    pts = list(zip(shape.get("all_points_x") or [], shape.get("all_points_y") or [], strict=False))
    if has_closing_duplicate(shape):
        pts = pts[:-1]
    return pts


def _points_values(shape: dict, pts: list[tuple[float, float]], closed_dup: bool) -> dict:
    if closed_dup and pts:
        pts = pts + [pts[0]]
    return {"all_points_x": [p[0] for p in pts], "all_points_y": [p[1] for p in pts]}


def translated(shape: dict, dx: float, dy: float) -> dict:
    """The coordinate values of ``shape`` moved by (dx, dy) (only the changed keys)."""
    as_int = uses_int_coords(shape)
    out: dict = {}
    if "all_points_x" in shape:
        out["all_points_x"] = [_coord(x + dx, as_int) for x in shape.get("all_points_x") or []]
        out["all_points_y"] = [_coord(y + dy, as_int) for y in shape.get("all_points_y") or []]
    for kx, ky in (("x", "y"), ("cx", "cy")):
        if kx in shape and ky in shape:
            out[kx] = _coord(shape[kx] + dx, as_int)
            out[ky] = _coord(shape[ky] + dy, as_int)
    return out


def handles(shape: dict) -> list[tuple[str, float, float]]:
    """Resize handles of a rect/circle/ellipse as (name, x, y) in image pixels ([] for other shapes)."""
    name = shape.get("name")
    try:
        if name == "rect":
            x, y, w, h = (float(shape[k]) for k in ("x", "y", "width", "height"))
            return [("tl", x, y), ("tr", x + w, y), ("bl", x, y + h), ("br", x + w, y + h)]
        if name == "circle":
            cx, cy, r = float(shape["cx"]), float(shape["cy"]), float(shape["r"])
            return [("r", cx + r, cy)]
        if name == "ellipse":
            cx, cy = float(shape["cx"]), float(shape["cy"])
            rx, ry = float(shape["rx"]), float(shape["ry"])
            t = float(shape.get("theta") or 0.0)
            c, s = math.cos(t), math.sin(t)
            return [("rx", cx + rx * c, cy + rx * s), ("ry", cx - ry * s, cy + ry * c)]
    except (KeyError, TypeError, ValueError):
        return []
    return []


def resized(shape: dict, handle: str, x: float, y: float) -> dict:
    """New coordinate values when resize ``handle`` (from :func:`handles`) is dragged to (x, y)."""
    as_int = uses_int_coords(shape)
    name = shape.get("name")
    if name == "rect":
        x0, y0 = float(shape["x"]), float(shape["y"])
        x1, y1 = x0 + float(shape["width"]), y0 + float(shape["height"])
        if "l" in handle:
            x0 = x
        if "r" in handle:
            x1 = x
        if "t" in handle:
            y0 = y
        if "b" in handle:
            y1 = y
        left, right = sorted((x0, x1))
        top, bottom = sorted((y0, y1))
        return {
            "x": _coord(left, as_int),
            "y": _coord(top, as_int),
            "width": _coord(max(right - left, 1.0), as_int),
            "height": _coord(max(bottom - top, 1.0), as_int),
        }
    if name == "circle" and handle == "r":
        r = math.hypot(x - float(shape["cx"]), y - float(shape["cy"]))
        return {"r": _coord(max(r, 1.0), as_int)}
    if name == "ellipse" and handle in ("rx", "ry"):
        t = float(shape.get("theta") or 0.0)
        dx, dy = x - float(shape["cx"]), y - float(shape["cy"])
        # distance along the handle's own axis
        along = dx * math.cos(t) + dy * math.sin(t) if handle == "rx" else -dx * math.sin(t) + dy * math.cos(t)
        return {handle: _coord(max(abs(along), 1.0), as_int)}
    raise EditError(f"shape {name!r} has no resize handle {handle!r}")


# -------------------------------------------------------------------------------------------------- commands


class Command:
    """Base class. Subclasses implement :meth:`do` and :meth:`undo`; ``entry`` is the image they change."""

    text = "edit"
    changes_images = False  # True: it adds or removes whole images (the rows of a GUI must be re-indexed)

    def __init__(self, entry: ImageEntry | None = None, merge_key: Hashable | None = None):
        self.entry = entry
        self.merge_key = merge_key

    def do(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def undo(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def merge(self, later: Command) -> bool:
        """Absorb ``later`` (already applied) into this command; True if it could."""
        return False

    def entries(self) -> list[ImageEntry]:
        return [self.entry] if self.entry is not None else []

    def discard(self) -> None:
        """The command leaves the history for good (its redo branch was dropped, or the history cleared):
        release what it keeps outside the project."""


class SetShape(Command):
    """Replace some coordinate values of a region's shape (the base of every geometry edit)."""

    text = "edit shape"

    def __init__(self, region: Region, values: dict, entry: ImageEntry | None = None, merge_key=None, text=None):
        super().__init__(entry, merge_key)
        self.region = region
        self.new = {k: copy.copy(v) for k, v in values.items()}
        self.old = {k: copy.copy(region.shape[k]) for k in values if k in region.shape}
        self.missing = [k for k in values if k not in region.shape]
        if text:
            self.text = text

    def do(self) -> None:
        for k, v in self.new.items():
            self.region.shape[k] = copy.copy(v)

    def undo(self) -> None:
        for k in self.missing:
            self.region.shape.pop(k, None)
        for k, v in self.old.items():
            self.region.shape[k] = copy.copy(v)

    def merge(self, later: Command) -> bool:
        if not isinstance(later, SetShape) or later.region is not self.region:
            return False
        self.new.update(later.new)
        for k, v in later.old.items():  # keys this command did not touch yet keep their first old value
            if k not in self.old and k not in self.missing:
                self.old[k] = v
        for k in later.missing:
            if k not in self.old and k not in self.missing:
                self.missing.append(k)
        return True


def _require_points(region: Region) -> None:
    if region.kind not in ("polygon", "polyline"):
        raise EditError(f"a {region.kind or 'shapeless'} region has no vertices")


def move_vertex(region: Region, index: int, x: float, y: float, entry=None, merge_key=None) -> SetShape:
    """Vertex ``index`` (logical) of a polygon/polyline to (x, y)."""
    _require_points(region)
    pts = logical_points(region.shape)
    if not 0 <= index < len(pts):
        raise EditError(f"no vertex {index} (the region has {len(pts)})")
    as_int = uses_int_coords(region.shape)
    pts[index] = (_coord(x, as_int), _coord(y, as_int))
    vals = _points_values(region.shape, pts, has_closing_duplicate(region.shape))
    return SetShape(region, vals, entry, merge_key, text="move vertex")


def insert_vertex(region: Region, index: int, x: float, y: float, entry=None) -> SetShape:
    """Insert a vertex so that it becomes logical vertex ``index`` (0..n)."""
    _require_points(region)
    pts = logical_points(region.shape)
    if not 0 <= index <= len(pts):
        raise EditError(f"cannot insert at {index} (the region has {len(pts)} vertices)")
    as_int = uses_int_coords(region.shape)
    pts.insert(index, (_coord(x, as_int), _coord(y, as_int)))
    vals = _points_values(region.shape, pts, has_closing_duplicate(region.shape))
    return SetShape(region, vals, entry, text="insert vertex")


def delete_vertex(region: Region, index: int, entry=None) -> SetShape:
    """Remove logical vertex ``index``; a polygon keeps at least 3 vertices (a polyline 2)."""
    _require_points(region)
    pts = logical_points(region.shape)
    least = MIN_POLYGON_VERTICES if region.kind == "polygon" else 2
    if len(pts) <= least:
        raise EditError(f"a {region.kind} keeps at least {least} vertices")
    if not 0 <= index < len(pts):
        raise EditError(f"no vertex {index} (the region has {len(pts)})")
    del pts[index]
    vals = _points_values(region.shape, pts, has_closing_duplicate(region.shape))
    return SetShape(region, vals, entry, text="delete vertex")


def move_region(region: Region, dx: float, dy: float, entry=None, merge_key=None) -> SetShape:
    """Move a whole region by (dx, dy) relative to where it is now."""
    return SetShape(region, translated(region.shape, dx, dy), entry, merge_key, text="move region")


def resize_shape(region: Region, handle: str, x: float, y: float, entry=None, merge_key=None) -> SetShape:
    """Drag resize ``handle`` of a rect/circle/ellipse to (x, y)."""
    return SetShape(region, resized(region.shape, handle, x, y), entry, merge_key, text="resize")


class AddRegions(Command):
    """Append regions to an image (or insert them at ``index``)."""

    text = "add region"

    def __init__(self, entry: ImageEntry, regions: Iterable[Region], index: int | None = None):
        super().__init__(entry)
        self.regions = list(regions)
        self.index = index
        if len(self.regions) > 1:
            self.text = f"add {len(self.regions)} regions"

    def do(self) -> None:
        at = len(self.entry.regions) if self.index is None else min(self.index, len(self.entry.regions))
        self.entry.regions[at:at] = self.regions

    def undo(self) -> None:
        ids = {id(r) for r in self.regions}
        self.entry.regions[:] = [r for r in self.entry.regions if id(r) not in ids]


class DeleteRegions(Command):
    """Remove regions from an image; undo puts them back where they were."""

    text = "delete region"

    def __init__(self, entry: ImageEntry, regions: Iterable[Region]):
        super().__init__(entry)
        wanted = {id(r) for r in regions}
        self.removed = [(i, r) for i, r in enumerate(entry.regions) if id(r) in wanted]
        if len(self.removed) != len(wanted):
            raise EditError("some regions to delete are not in this image")
        if len(self.removed) > 1:
            self.text = f"delete {len(self.removed)} regions"

    def do(self) -> None:
        ids = {id(r) for _, r in self.removed}
        self.entry.regions[:] = [r for r in self.entry.regions if id(r) not in ids]

    def undo(self) -> None:
        for i, r in self.removed:  # ascending indices: each lands where it was
            self.entry.regions.insert(i, r)


class SetRegions(Command):
    """Give an image a new list of regions in one step (e.g. a prediction replacing or merged into its
    regions); regions in both lists stay the same objects. Undo puts the old list back, order included."""

    text = "set regions"

    def __init__(self, entry: ImageEntry, regions: Iterable[Region], text: str | None = None):
        super().__init__(entry)
        self.old = list(entry.regions)
        self.new = list(regions)
        if text:
            self.text = text

    def do(self) -> None:
        self.entry.regions[:] = self.new

    def undo(self) -> None:
        self.entry.regions[:] = self.old


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


class RenameAttribute(Command):
    """Rename a region or file attribute (``new``), or delete it (``new`` None), in every project given: its
    definition and its value on every region (or image), as one undo step. Refused (``EditError``) when a region
    or image already holds both names. ``changes_images``: the dataset-level checks (attribute names that differ
    between splits) must run again."""

    changes_images = True

    def __init__(self, projects: Iterable[Any], scope: str, old: str, new: str | None):
        if scope not in ("region", "file"):
            raise EditError(f"attribute scope must be 'region' or 'file', not {scope!r}")
        new = new.strip() if isinstance(new, str) else None
        if new == "" or new == old:
            raise EditError("give the attribute a new, non-empty name")
        super().__init__(None)
        self.projects = list(projects)
        self.scope, self.old, self.new = scope, old, new
        self.text = f"rename attribute {old!r} to {new!r}" if new else f"delete attribute {old!r}"
        targets, touched = [], []
        for proj in self.projects:
            defs = proj.attributes.setdefault(scope, {})
            n_touched = len(touched)
            for e in proj.images:
                dicts = [e.file_attributes] if scope == "file" else [r.attributes for r in e.regions]
                hit = [d for d in dicts if old in d]
                if hit:
                    touched.append(e)
                    targets.extend(hit)
            if old in defs:
                targets.append(defs)
                if len(touched) == n_touched and proj.images:
                    touched.append(proj.images[0])  # only the definition changes: the file must still be saved
        if new is not None:
            both = sum(1 for d in targets if new in d)
            if both:
                raise EditError(f"{both} region(s)/image(s) or definition(s) already have an attribute {new!r}: "
                                f"rename or delete one of the two first")
        self.targets = targets
        self.touched = touched
        self._before = [list(d.items()) for d in targets]

    def do(self) -> None:
        for d in self.targets:
            items = [(self.new, v) if k == self.old else (k, v) for k, v in d.items() if
                     k != self.old or self.new is not None]
            d.clear()
            d.update(items)  # a rename keeps the attribute's place

    def undo(self) -> None:
        for d, items in zip(self.targets, self._before, strict=True):
            d.clear()
            d.update(items)

    def entries(self) -> list[ImageEntry]:
        return list(self.touched)


class DefineAttribute(Command):
    """Define a new region or file attribute (VIA 2 ``_via_attributes`` style: ``kind`` text, dropdown, radio
    or checkbox, with ``options`` for the last three) in every project given, as one undo step; ``target``
    (the selected region's attributes or the image's file attributes) gets an empty value for it, so the name
    is kept even by formats that store only values. Refused (``EditError``) for an empty name, a name a project
    already defines or ``target`` already holds, an unknown type, or a choice type without options."""

    changes_images = True
    KINDS = ("text", "dropdown", "radio", "checkbox")

    def __init__(self, projects: Iterable[Any], scope: str, name: str, kind: str = "text",
                 options: Iterable[str] = (), target: dict | None = None, entry: ImageEntry | None = None):
        if scope not in ("region", "file"):
            raise EditError(f"attribute scope must be 'region' or 'file', not {scope!r}")
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            raise EditError("give the new attribute a name")
        if kind not in self.KINDS:
            raise EditError(f"attribute type must be one of {', '.join(self.KINDS)}, not {kind!r}")
        opts = list(dict.fromkeys(o.strip() for o in options if isinstance(o, str) and o.strip()))
        if kind != "text" and not opts:
            raise EditError(f"a {kind} attribute needs at least one option")
        super().__init__(entry)
        self.projects = list(projects)
        self.scope, self.name, self.kind = scope, name, kind
        clash = [p for p in self.projects if name in (p.attributes.get(scope) or {})]
        if clash or (target is not None and name in target):
            raise EditError(f"there is already a {scope} attribute {name!r}: pick another name (right-click an "
                            f"attribute's name to rename or delete it)")
        if kind == "text":
            self.definition: dict = {"type": "text", "description": "", "default_value": ""}
        else:
            self.definition = {"type": kind, "description": "", "options": {o: "" for o in opts},
                               "default_options": {}}
        self.target = target
        self.value: Any = {} if kind == "checkbox" else ""
        self.text = f"add {kind} attribute {name!r}"
        touched = [entry] if entry is not None else []
        for p in self.projects:  # the definition alone changes a file: it must be saved
            if p.images and not any(e in p.images for e in touched):
                touched.append(p.images[0])
        self.touched = touched

    def do(self) -> None:
        for p in self.projects:
            p.attributes.setdefault(self.scope, {})[self.name] = copy.deepcopy(self.definition)
        if self.target is not None:
            self.target[self.name] = copy.deepcopy(self.value)

    def undo(self) -> None:
        for p in self.projects:
            (p.attributes.get(self.scope) or {}).pop(self.name, None)
        if self.target is not None:
            self.target.pop(self.name, None)

    def entries(self) -> list[ImageEntry]:
        return list(self.touched)


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

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.dest.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def do(self) -> None:
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
            raise EditError(f"cannot copy {self.source} into {self.dest.parent}: {exc.strerror or exc}") from exc
        self._aside = None
        self._stamp = self._stat()
        super().do()

    def undo(self) -> None:
        super().undo()
        if self._stamp is None or self._stat() != self._stamp:
            return  # not the file this import wrote: leave it alone
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


_ABSENT = object()


class _SetKey(Command):
    def __init__(self, target: dict, name: str, value: Any, entry=None, merge_key=None):
        super().__init__(entry, merge_key)
        self.target = target
        self.name = name
        self.value = copy.deepcopy(value)
        self.old = copy.deepcopy(target[name]) if name in target else _ABSENT

    def do(self) -> None:
        if self.value is None:
            self.target.pop(self.name, None)
        else:
            self.target[self.name] = copy.deepcopy(self.value)

    def undo(self) -> None:
        if self.old is _ABSENT:
            self.target.pop(self.name, None)
        else:
            self.target[self.name] = copy.deepcopy(self.old)

    def merge(self, later: Command) -> bool:
        if type(later) is not type(self) or later.target is not self.target or later.name != self.name:
            return False
        self.value = later.value
        return True


class SetRegionAttribute(_SetKey):
    """Set (``value=None``: remove) a region attribute, e.g. the class."""

    text = "set attribute"

    def __init__(self, region: Region, name: str, value: Any, entry=None, merge_key=None):
        super().__init__(region.attributes, name, value, entry, merge_key)
        self.region = region


class SetFileAttribute(_SetKey):
    """Set (``value=None``: remove) a file attribute of an image."""

    text = "set file attribute"

    def __init__(self, entry: ImageEntry, name: str, value: Any, merge_key=None):
        super().__init__(entry.file_attributes, name, value, entry, merge_key)


# --------------------------------------------------------------------------------------------------- history


class History:
    """Unbounded undo/redo over commands that may belong to different images.

    ``index`` counts applied commands. The clean index is where the last save happened; when the commands
    leading back to it are discarded (new edit after an undo past the save) the saved state can no longer be
    reached and the history stays dirty until the next :meth:`set_clean`.
    """

    def __init__(self) -> None:
        self._stack: list[Command] = []
        self._index = 0
        self._clean = 0
        self._clean_reachable = True
        self._lost: list[ImageEntry] = []  # entries changed by discarded commands since the last save
        self._merge_open = False

    # state ------------------------------------------------------------------------------------------
    @property
    def index(self) -> int:
        return self._index

    def __len__(self) -> int:
        return len(self._stack)

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._stack)

    def undo_text(self) -> str:
        return self._stack[self._index - 1].text if self.can_undo() else ""

    def redo_text(self) -> str:
        return self._stack[self._index].text if self.can_redo() else ""

    def is_clean(self) -> bool:
        return self._clean_reachable and self._index == self._clean

    def set_clean(self) -> None:
        self._clean = self._index
        self._clean_reachable = True
        self._lost = []
        self._merge_open = False

    def mark_dirty(self, entries: Iterable[ImageEntry]) -> None:
        """Declare ``entries`` changed since the last save by something outside the history (e.g. a restored
        crash journal): the history is dirty until the next :meth:`set_clean`."""
        self._lost.extend(entries)
        self._clean_reachable = False

    def clear(self) -> None:
        for cmd in self._stack:
            cmd.discard()
        self.__init__()

    def dirty_entries(self) -> list[ImageEntry]:
        """Images whose content differs from the last save (may over-report after edits that cancel out)."""
        lo, hi = sorted((self._index, self._clean))
        seen: dict[int, ImageEntry] = {id(e): e for e in self._lost}
        for cmd in self._stack[lo:hi]:
            for e in cmd.entries():
                seen.setdefault(id(e), e)
        return list(seen.values())

    # operations -------------------------------------------------------------------------------------
    def push(self, cmd: Command) -> Command:
        """Apply ``cmd`` and record it (merged into the previous step when its merge key matches)."""
        cmd.do()
        top = self._stack[self._index - 1] if self._index > 0 else None
        if (
            self._merge_open
            and top is not None
            and cmd.merge_key is not None
            and top.merge_key == cmd.merge_key
            and self._index == len(self._stack)
            and not (self._clean_reachable and self._clean == self._index)
            and top.merge(cmd)
        ):
            return top
        self._truncate()
        self._stack.append(cmd)
        self._index += 1
        self._merge_open = cmd.merge_key is not None
        return cmd

    def end_drag(self) -> None:
        """The current drag is over: the next command starts a new undo step even with the same key."""
        self._merge_open = False

    def undo(self) -> Command | None:
        if not self.can_undo():
            return None
        self._merge_open = False
        self._index -= 1
        cmd = self._stack[self._index]
        cmd.undo()
        return cmd

    def redo(self) -> Command | None:
        if not self.can_redo():
            return None
        self._merge_open = False
        cmd = self._stack[self._index]
        cmd.do()
        self._index += 1
        return cmd

    def _truncate(self) -> None:
        if self._index == len(self._stack):
            return
        if self._clean > self._index:
            for cmd in self._stack[self._index : self._clean]:
                self._lost.extend(cmd.entries())
            self._clean = self._index
            self._clean_reachable = False
        for cmd in self._stack[self._index :]:
            cmd.discard()
        del self._stack[self._index :]
