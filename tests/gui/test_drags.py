"""Drag states and the edit each pointer move makes, without a canvas."""

from __future__ import annotations

from viaseg.core.annotation import edits
from viaseg.core.annotation.project import ImageEntry, Region
from viaseg.gui.drags import CLICK_SLOP_PX, MoveDrag, ResizeDrag, VertexDrag, drag_command


def _polygon() -> tuple[ImageEntry, Region]:
    r = Region({"name": "polygon", "all_points_x": [0, 10, 10], "all_points_y": [0, 0, 10]}, {})
    return ImageEntry(key="a", filename="a.png", regions=[r]), r


def test_a_vertex_drag_moves_that_vertex_to_the_clamped_point_and_merges_into_one_step():
    entry, r = _polygon()
    h = edits.History()
    d = VertexDrag(1, ("vertex", 1))
    for x in (11, 12, 13):
        h.push(drag_command(d, r, (x, 5.0), (min(x, 12), 5.0), entry, scale=1.0))
    assert r.shape["all_points_x"][1] == 12 and r.shape["all_points_y"][1] == 5  # clamped: 12, not 13
    h.end_drag()
    h.undo()
    assert r.shape["all_points_x"] == [0, 10, 10] and r.shape["all_points_y"] == [0, 0, 10]  # one undo step


def test_a_move_within_the_click_slop_is_a_click_then_becomes_a_move():
    entry, r = _polygon()
    d = MoveDrag((5.0, 5.0), dict(r.shape), ("move", 2))
    small = (CLICK_SLOP_PX - 1) / 2.0  # image pixels at zoom 2: under the slop on screen
    assert (
        drag_command(d, r, (5.0 + small, 5.0), (5.0 + small, 5.0), entry, scale=2.0) is None and not d.moved
    )
    cmd = drag_command(d, r, (9.0, 7.0), (9.0, 7.0), entry, scale=2.0)
    cmd.do()
    assert d.moved and r.shape["all_points_x"] == [4, 14, 14] and r.shape["all_points_y"] == [2, 2, 12]
    back = drag_command(d, r, (5.5, 5.0), (5.5, 5.0), entry, scale=2.0)  # once moving, small moves count
    assert back is not None


def test_a_resize_drag_moves_the_rect_handle():
    r = Region({"name": "rect", "x": 0, "y": 0, "width": 10, "height": 10}, {})
    entry = ImageEntry(key="b", filename="b.png", regions=[r])
    index, (handle, *_rest) = next((i, h) for i, h in enumerate(edits.handles(r.shape)) if h[0] == "br")
    drag_command(ResizeDrag(index, handle, ("resize", 3)), r, (20.0, 15.0), (20.0, 15.0), entry, 1.0).do()
    assert (r.shape["width"], r.shape["height"]) == (20, 15)
