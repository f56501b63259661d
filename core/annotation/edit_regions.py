"""Geometry and region-list edit commands: shape helpers (integer coordinates, VIA 1 closing vertices, resize
handles), :class:`SetShape` and the vertex/move/resize commands built on it, and :class:`AddRegions` /
:class:`DeleteRegions` / :class:`SetRegions` on an image's list of regions.

Coordinates: VIA writes integer coordinates (``Math.round``). A shape whose coordinates are all ints stays
all-int after an edit (new positions are rounded); a shape that already holds floats keeps full precision.

VIA 1 polygons repeat their first vertex at the end. Vertex indices used here are *logical* indices that skip
that duplicate; the duplicate is kept in sync (it follows vertex 0).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

from .edit_history import Command, EditError
from .project import ImageEntry, Region

MIN_POLYGON_VERTICES = 3
_COORD_KEYS = ("x", "y", "width", "height", "cx", "cy", "r", "rx", "ry")


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
        along = (
            dx * math.cos(t) + dy * math.sin(t) if handle == "rx" else -dx * math.sin(t) + dy * math.cos(t)
        )
        return {handle: _coord(max(abs(along), 1.0), as_int)}
    raise EditError(f"shape {name!r} has no resize handle {handle!r}")


class SetShape(Command):
    """Replace some coordinate values of a region's shape (the base of every geometry edit)."""

    text = "edit shape"

    def __init__(
        self, region: Region, values: dict, entry: ImageEntry | None = None, merge_key=None, text=None
    ):
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

    entry: ImageEntry  # always given (Command allows None)
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

    entry: ImageEntry  # always given (Command allows None)
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

    entry: ImageEntry  # always given (Command allows None)
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
