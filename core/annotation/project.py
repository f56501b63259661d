"""In-memory VIA project: plain dataclasses, no I/O, no Qt.

The reader (``viaseg.core.annotation.formats.via_io``) builds these objects *sharing* the dicts of the parsed JSON, so an edit
of ``region.shape`` or ``region.attributes`` is an edit of the file's own value and a save with no edit writes
back exactly what was read (key order, unknown keys, ints vs floats).

Geometry is always held VIA-2 style in ``Region.shape`` (``shape_attributes``):

=========  ==================================================
polygon    ``{"name": "polygon", "all_points_x": [...], "all_points_y": [...]}``
polyline   ``{"name": "polyline", "all_points_x": [...], "all_points_y": [...]}``
rect       ``{"name": "rect", "x", "y", "width", "height"}``
circle     ``{"name": "circle", "cx", "cy", "r"}``
ellipse    ``{"name": "ellipse", "cx", "cy", "rx", "ry", "theta"?}`` (theta in radians, may be absent)
point      ``{"name": "point", "cx", "cy"}``
=========  ==================================================

VIA 1 polygons repeat their first vertex at the end; that is kept as read (rasterizing does not care), and the
writers add it to new polygons of such a file (``via_common.closed_shape``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AREA_SHAPES = ("polygon", "rect", "circle", "ellipse")
ALL_SHAPES = ("polygon", "polyline", "rect", "circle", "ellipse", "point")


@dataclass(eq=False)
class Region:
    """One annotated region. ``shape`` and ``attributes`` are the file's own dicts (edited in place)."""

    shape: dict
    attributes: dict = field(default_factory=dict)
    raw: dict | None = None  # the region's original container (VIA1/2 region dict, VIA3 metadata entry)

    @property
    def kind(self) -> str:
        return str(self.shape.get("name", ""))

    def points(self) -> list[tuple[float, float]]:
        """Vertices of a polygon/polyline as (x, y) pairs ([] for other shapes)."""
        xs = self.shape.get("all_points_x") or []
        ys = self.shape.get("all_points_y") or []
        return list(zip(xs, ys, strict=False))

    def clone(self) -> Region:
        """A deep copy that is a *new* region (no link to the file it came from)."""
        return Region(shape=copy.deepcopy(self.shape), attributes=copy.deepcopy(self.attributes), raw=None)


@dataclass(eq=False)
class ImageEntry:
    """One image of a project: VIA metadata key, file name as written, regions, file attributes."""

    key: str
    filename: str
    size: Any = None  # as in the file: int, str ("63930"), -1, or None when absent
    regions: list[Region] = field(default_factory=list)
    file_attributes: dict = field(default_factory=dict)
    raw: dict | None = None  # the entry's original dict (for a lossless save)
    base_dir: Path | None = None  # folder relative filenames resolve against

    @property
    def path(self) -> Path:
        p = Path(self.filename)
        if p.is_absolute() or self.base_dir is None:
            return p
        return self.base_dir / p


@dataclass(eq=False)
class Project:
    """A VIA file in memory. ``fmt`` is the format it came from and is saved back in:
    ``via1`` | ``via2`` | ``via2-project`` | ``via3`` | ``csv``."""

    images: list[ImageEntry] = field(default_factory=list)
    fmt: str = "via2"
    path: Path | None = None
    attributes: dict = field(default_factory=lambda: {"region": {}, "file": {}})  # VIA2 `_via_attributes`
    raw: Any = None  # the whole parsed file, for the writer (unknown top-level keys, settings, VIA3 store)
    # set by the reader, for a lossless save: the file's JSON layout (via_io) and VIA 3 ids (via3)
    _via_style: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _via3: dict[str, Any] | None = field(default=None, init=False, repr=False)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path(".")

    def image(self, key: str) -> ImageEntry:
        for im in self.images:
            if im.key == key:
                return im
        raise KeyError(key)

    def find(self, filename: str) -> ImageEntry | None:
        for im in self.images:
            if im.filename == filename or Path(im.filename).name == filename:
                return im
        return None

    @property
    def region_count(self) -> int:
        return sum(len(im.regions) for im in self.images)


_DIGITS = re.compile(r"(\d+)")


def natural_sort_key(name: str) -> str:
    """A text key that sorts file names as people do (image2 before image10): every run of digits is
    zero-padded to 20 places and the rest compared case-insensitively. A string, so Qt's sort can use it."""
    return _DIGITS.sub(lambda m: m.group(1).rjust(20, "0"), name.casefold())


# the region attribute that holds a region's class, by name when nothing else says (any case; first wins)
CLASS_NAMES = ("class", "class name", "name", "label", "category", "type", "damage")


def class_attribute(definitions: dict | None, regions: Iterable[Region] = ()) -> str | None:
    """The region attribute that names a region's class — the one rule the app, COCO and labelme export use: a
    dropdown/radio attribute that regions use, else a conventional name (:data:`CLASS_NAMES`) that regions use,
    else the first dropdown/radio attribute defined, else a conventional name defined, else the only region
    attribute there is; None when nothing says (then every region is one class). ``definitions`` is the
    project's ``_via_attributes`` (``{"region": {...}, "file": {...}}``)."""
    used: dict[str, int] = {}
    for r in regions:
        for k, v in r.attributes.items():
            if isinstance(v, (str, int, dict)) and v != "":
                used[k] = used.get(k, 0) + 1
    defs = definitions.get("region") if isinstance(definitions, dict) else None
    defs = defs if isinstance(defs, dict) else {}
    choices = [n for n, d in defs.items() if isinstance(d, dict) and d.get("type") in ("dropdown", "radio")]

    def conventional(names: Iterable[str]) -> str | None:
        lower = {n.lower(): n for n in reversed(list(names))}
        return next((lower[c] for c in CLASS_NAMES if c in lower), None)

    found = next((n for n in choices if n in used), None) or conventional(used)
    if found is None and choices:
        found = choices[0]
    names = list(defs) + [n for n in used if n not in defs]
    return found or conventional(defs) or (names[0] if len(names) == 1 else None)
