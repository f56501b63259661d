"""Canvas drag states as plain dataclasses, and the edit a pointer move makes of each (no widgets: tested on
their own). The canvas keeps one while a button is down; every move of the same drag shares its merge ``key``,
so the whole drag is one undo step."""

from __future__ import annotations

import math
from dataclasses import dataclass

from viaseg.core.annotation import edits
from viaseg.core.annotation.project import ImageEntry, Region

CLICK_SLOP_PX = 3.0  # screen pixels a region may be pulled before a click becomes a move


@dataclass
class VertexDrag:
    """Dragging vertex ``index`` of a polygon or polyline."""

    index: int
    key: tuple


@dataclass
class ResizeDrag:
    """Dragging handle ``handle`` (``edits.handles``) of a rect, circle or ellipse; ``index`` is the handle's."""

    index: int
    handle: str
    key: tuple


@dataclass
class MoveDrag:
    """Moving a whole region from where the button went down (``start``, image pixels; ``orig`` its shape)."""

    start: tuple[float, float]
    orig: dict
    key: tuple
    moved: bool = False


Drag = VertexDrag | ResizeDrag | MoveDrag


def drag_command(
    drag: Drag,
    region: Region,
    at: tuple[float, float],
    clamped: tuple[float, float],
    entry: ImageEntry | None,
    scale: float,
) -> edits.Command | None:
    """The edit for the pointer at image point ``at`` (``clamped``: the same point kept inside the image, where
    vertices and handles go) at zoom ``scale``; None while a move is still within the click slop."""
    match drag:
        case VertexDrag():
            return edits.move_vertex(region, drag.index, *clamped, entry, merge_key=drag.key)
        case ResizeDrag():
            return edits.resize_shape(region, drag.handle, *clamped, entry, merge_key=drag.key)
        case MoveDrag():
            dx, dy = at[0] - drag.start[0], at[1] - drag.start[1]
            if not drag.moved and math.hypot(dx, dy) * scale < CLICK_SLOP_PX:
                return None  # a click, not a drag
            drag.moved = True
            return edits.SetShape(region, edits.translated(drag.orig, dx, dy), entry, drag.key, "move region")
    raise TypeError(f"not a drag: {drag!r}")
