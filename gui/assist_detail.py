"""The AI region tool's detail control: an accepted region keeps its source mask for the session (``_sources``:
region -> (mask, vertex count at each of ``core.assist.segment.LEVELS``, the photo's size)); the toolbar's Detail
slider and + / - (with the region selected) make its polygon again from that mask, one undoable step each. The
counts are those of the polygons as regions hold them (integer vertices, repeats dropped, inside the photo), so a
region's count finds its level at every detail. Mixed into ``gui.assist_tool.AssistTool``, whose canvas, ``_say``
and ``detail_available`` signal it uses."""

from __future__ import annotations

from viaseg.core.annotation import edits
from viaseg.core.annotation.project import Region
from viaseg.core.assist import segment as assist


class RegionDetail:
    def _keep_source(self, region: Region, mask: assist.RegionMask, size_wh: tuple[int, int]) -> None:
        """Keep ``region``'s mask (and its polygons' vertex counts per level) for the detail control."""
        counts = [
            len(s["all_points_x"]) if assist.usable(s) else 0 for s in assist.level_shapes(mask, size_wh)
        ]
        self._sources[region] = (mask, counts, (int(size_wh[0]), int(size_wh[1])))

    @staticmethod
    def _shape_at(src, level: int) -> dict:
        return assist.polygon_shape(assist.polygon(src[0], level), src[2])

    def detail_of(self, region: Region | None) -> int:
        """The detail level the region's polygon has now (-1 if it has no kept mask, or was changed by hand
        since: moved, reshaped)."""
        src = self._sources.get(region) if region is not None else None
        if src is None:
            return -1
        n = len(region.shape.get("all_points_x") or [])
        # levels may share a vertex count with other polygons: the one that made this polygon, if any
        same = [i for i, c in enumerate(src[1]) if c == n]
        return next((i for i in same if self._made_at(region, src, i)), -1)

    @classmethod
    def _made_at(cls, region: Region, src, level: int) -> bool:
        """Whether ``region``'s polygon is still the one its mask gives at ``level`` (not edited since)."""
        shape = cls._shape_at(src, level)
        return shape["all_points_x"] == region.shape.get("all_points_x") and shape[
            "all_points_y"
        ] == region.shape.get("all_points_y")

    def _edited_by_hand(self, region: Region | None) -> bool:
        if region is None or region not in self._sources or self.detail_of(region) >= 0:
            return False
        self._say(
            "This region was changed by hand after it was accepted, so its detail no longer follows its mask "
            "(a new polygon from the mask would undo the change; Ctrl+Z the change to use detail again)."
        )
        return True

    def set_detail(self, level: int, region: Region | None = None, merge_key=None) -> bool:
        """Make the selected (or given) AI region's polygon again at ``level`` (0 = every boundary pixel)."""
        c = self.canvas
        region = region if region is not None else c.selected_region()
        src = self._sources.get(region) if region is not None else None
        if src is None or self._edited_by_hand(region):
            return False
        level = min(max(int(level), 0), len(assist.LEVELS) - 1)
        shape = self._shape_at(src, level)
        if not assist.usable(shape):
            self._say("At this detail the region is too small for a polygon (it would enclose no area).")
            return False
        if shape["all_points_x"] == region.shape.get("all_points_x") and shape[
            "all_points_y"
        ] == region.shape.get("all_points_y"):
            return False
        values = {"all_points_x": shape["all_points_x"], "all_points_y": shape["all_points_y"]}
        if c._push(edits.SetShape(region, values, c.entry, merge_key, "change detail")):
            c.sel_vertex = -1
            c.refresh()
            self._emit_detail()
            self._say(f"Detail: {len(shape['all_points_x'])} vertices.")
            return True
        return False

    def step_detail(self, more: bool) -> bool:
        region = self.canvas.selected_region()
        level = self.detail_of(region)
        if level < 0:
            return self._edited_by_hand(region)  # the key is taken (and said why) for an edited AI region
        counts = self._sources[region][1]
        n = counts[level]
        # the next level whose vertex count differs
        rng = range(level - 1, -1, -1) if more else range(level + 1, len(counts))
        nxt = next((i for i in rng if counts[i] not in (n, 0)), None)  # (0: no polygon at that level)
        if nxt is None:
            self._say("Already at the " + ("full outline." if more else "fewest vertices."))
            return True
        self.set_detail(nxt)
        return True

    def _emit_detail(self) -> None:
        self.detail_available.emit(self.detail_of(self.canvas.selected_region()), len(assist.LEVELS))
