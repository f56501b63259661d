"""Apply a label check's suggestion (a ``label_errors`` disagreement area) to an image as one undoable edit.
No Qt, no TensorFlow.

* ``extra`` (the model found damage the annotation lacks): the area's outline becomes a new polygon region with
  the given attributes.
* ``missed`` (annotated, the model sees no damage there): the annotated part goes. A region the area covers for
  the most part (:data:`COVERED`) is deleted; a region it only overlaps is clipped: its mask minus the area,
  traced again (``raster.mask_to_polygons``), keeping the region's attributes (a region split in two becomes
  two regions).

Suggestions are computed on the annotations as they were when the check ran; :func:`fix_command` reads the
image's regions as they are now and refuses (``EditError``) a suggestion that no longer fits them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from ..annotation.edit_history import Command, EditError
from ..annotation.project import ImageEntry, Region
from ..annotation.raster import mask_to_polygons, rasterize

COVERED = 0.8  # a region this much inside a "missed" area is deleted rather than clipped
MIN_PIECE = 10.0  # pixels: smaller leftovers of a clipped region are dropped
AREA_KINDS = ("polygon", "rect", "circle", "ellipse")


class ReplaceRegions(Command):
    """An image's region list replaced by another made of the same and new ``Region`` objects; undo puts the
    old list back (the very objects, in their order). ``done`` says whether it is applied now."""

    entry: ImageEntry  # always given (Command allows None)

    def __init__(self, entry: ImageEntry, after: list[Region], text: str):
        super().__init__(entry)
        self.before = list(entry.regions)
        self.after = list(after)
        self.text = text
        self.done = False

    @property
    def added(self) -> list[Region]:
        old = {id(r) for r in self.before}
        return [r for r in self.after if id(r) not in old]

    @property
    def removed(self) -> list[Region]:
        new = {id(r) for r in self.after}
        return [r for r in self.before if id(r) not in new]

    def do(self) -> None:
        self.entry.regions[:] = self.after
        self.done = True

    def undo(self) -> None:
        self.entry.regions[:] = self.before
        self.done = False


def _outline(d: Mapping) -> np.ndarray:
    pts = np.asarray(d.get("polygon") or [], dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        raise EditError("this suggestion has no outline to apply")
    return pts


def _polygon_region(pts: np.ndarray, attributes: Mapping) -> Region:
    xy = np.round(pts).astype(int)
    shape = {"name": "polygon", "all_points_x": xy[:, 0].tolist(), "all_points_y": xy[:, 1].tolist()}
    return Region(shape=shape, attributes=copy.deepcopy(dict(attributes)))


def _area_mask(d: Mapping, size: tuple[int, int]) -> np.ndarray:
    pts = _outline(d)
    shape = {"name": "polygon", "all_points_x": pts[:, 0].tolist(), "all_points_y": pts[:, 1].tolist()}
    return rasterize([shape], size) > 0


def fix_command(
    entry: ImageEntry, d: Mapping, size: tuple[int, int], attributes: Mapping | None = None
) -> ReplaceRegions:
    """The edit that applies disagreement ``d`` (``kind``, ``polygon`` in image pixels) to ``entry``, whose
    image is ``size = (w, h)``; ``attributes``: a new region's (the project's defaults). Not applied yet: push
    it to the history. Raises ``EditError`` when the suggestion does not fit the regions as they are now."""
    kind = d.get("kind")
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise EditError("the image size is unknown")
    if kind == "extra":
        area = _area_mask(d, (w, h))
        have = rasterize([r for r in entry.regions if r.kind in AREA_KINDS], (w, h)) > 0
        if area.any() and (area & have).sum() >= COVERED * area.sum():
            raise EditError("that area is annotated already (the annotation changed since the check)")
        new = _polygon_region(_outline(d), attributes or {})
        return ReplaceRegions(entry, [*entry.regions, new], "add the model's region")
    if kind != "missed":
        raise EditError(f"unknown suggestion kind {kind!r}")
    area = _area_mask(d, (w, h))
    after: list[Region] = []
    deleted = clipped = 0
    for r in entry.regions:
        if r.kind not in AREA_KINDS:
            after.append(r)
            continue
        mask = rasterize([r], (w, h)) > 0
        n = int(mask.sum())
        if n == 0 or not (mask & area).any():
            after.append(r)
            continue
        left = mask & ~area
        if left.sum() <= (1 - COVERED) * n:
            deleted += 1  # (most of) the region is the missed area: it goes
            continue
        clipped += 1
        pieces = mask_to_polygons(left.astype(np.uint8), 1.0, MIN_PIECE)
        after.extend(_polygon_region(p, r.attributes) for p in pieces if len(p) >= 3)
    if not deleted and not clipped:
        raise EditError("no region there any more (the annotation changed since the check)")
    what = []
    if deleted:
        what.append("delete a region" if deleted == 1 else f"delete {deleted} regions")
    if clipped:
        what.append("clip a region" if clipped == 1 else f"clip {clipped} regions")
    return ReplaceRegions(entry, after, " and ".join(what) + " the model does not see")
