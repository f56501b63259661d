"""The AI region tool's detail control: an accepted region keeps its source mask for the session (``_sources``:
region -> (mask, vertex count at each of ``core.assist.segment.LEVELS``)); the toolbar's Detail slider and + / -
(with the region selected) make its polygon again from that mask, one undoable step each. Mixed into
``gui.assist_tool.AssistTool``, whose canvas, ``_say`` and ``detail_available`` signal it uses."""

from __future__ import annotations

import numpy as np
from viaseg.core.annotation import edits
from viaseg.core.annotation.project import Region
from viaseg.core.assist import segment as assist


class RegionDetail:
    @staticmethod
    def _level_counts(mask: assist.RegionMask) -> list[int]:
        return [len(assist.polygon(mask, i)) for i in range(len(assist.LEVELS))]

    def detail_of(self, region: Region | None) -> int:
        """The detail level the region's polygon has now (-1 if it has no kept mask, or was changed by hand
        since: moved, reshaped)."""
        src = self._sources.get(region) if region is not None else None
        if src is None:
            return -1
        n = len(region.shape.get("all_points_x") or [])
        counts = src[1]
        level = int(np.argmin([abs(c - n) + 0.001 * i for i, c in enumerate(counts)]))
        # levels may share a vertex count with other polygons: the one that made this polygon, if any
        same = [i for i, c in enumerate(counts) if c == counts[level]]
        return next((i for i in same if self._made_at(region, src, i)), -1)

    @staticmethod
    def _made_at(region: Region, src, level: int) -> bool:
        """Whether ``region``'s polygon is still the one its mask gives at ``level`` (not edited since)."""
        shape = assist.polygon_shape(assist.polygon(src[0], level))
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
        shape = assist.polygon_shape(assist.polygon(src[0], level))
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
        nxt = next((i for i in rng if counts[i] != n), None)
        if nxt is None:
            self._say("Already at the " + ("full outline." if more else "fewest vertices."))
            return True
        self.set_detail(nxt)
        return True

    def _emit_detail(self) -> None:
        self.detail_available.emit(self.detail_of(self.canvas.selected_region()), len(assist.LEVELS))
