"""Click to segment: clicks and a box on a photo -> one region's mask -> a polygon at a chosen detail.

Pure numpy/OpenCV (no Qt, no TensorFlow), so the canvas tool, the benchmark and the tests share it.

How a region is found (``Segmenter.segment``):

0. **A region given for the first click** (:meth:`Segmenter.give_first_region`: the app and ``bench_assist.py``
   give the click network's, ``core.ml.clicknet``) is the first click's region; steps 1-3 find one otherwise.
1. **The first click finds the region.** With the model's probability map: the connected part of the map
   around the click, down to ``SEED_SHARE`` of the map's value there (a level of the click's own, so a click on
   a faint damage still finds it and a click on a sure one does not spill into its neighbours; chosen on
   out-of-fold maps, below). A click where the map is near zero in its neighbourhood finds nothing there, and
   step 2 takes over.
2. **The photo's colours and edges**, where the map gives nothing (no model, an empty map, a click outside
   every predicted area): a box is cut out with OpenCV GrabCut; a click tries GrabCut windows of several sizes
   around it and keeps the one whose outline follows the strongest edges and stays inside its window.
3. **Refinement** of the first click's region (previews skip it, they must take milliseconds): GrabCut on a
   crop around it, seeded with it (probable foreground, its core certain) and the click (certain foreground), at
   the photo's resolution up to ``REFINE_SIDE`` pixels a side. A region the map found keeps the map's outline
   when the fit moved it far (IoU under ``REFINE_AGREE``).
4. **Every later click corrects the region where it was clicked** (:mod:`.edit`): a click outside it pushes
   the outline out through the click, one inside pulls it in, by about the click's distance to the outline and
   fading along it; each click's neighbourhood stays on its side for good, so later clicks never undo earlier
   ones. A positive click on damage the map sees apart from the region adds that damage's part of the map.
A box (with or without clicks) is taken together with its clicks: the map inside it, else its inscribed
ellipse fitted to the photo's edges; clicks with a box add the map's parts around them and cut with
the negative ones (pixels nearer a negative click than any positive one go).

Chosen on training photos, never on the validation sets (``bench_assist.py --oof``: the out-of-fold maps of
a 5-fold cross-validation of 120-s models on car-damage/train + car-damage-extra-split/train, 30 photos, 52
regions): clicks to IoU 0.80 **8.6** with the map (9.3 with these corrections at the level 0.5 x the map's
value, 11.4 for the previous way, where every click re-ran the map's threshold, the negative clicks' Voronoi
cut and GrabCut), 8.8 without the map (photo colours and edges, then corrections).

A region comes back as a :class:`RegionMask` (a crop of the photo at some scale) that keeps its mask, so the
polygon can be made again at any detail: :func:`polygon` with a level from :data:`LEVELS`, and
:func:`default_level` = the fewest vertices whose polygon keeps IoU >= 0.95 with the mask.

This module is the :class:`Segmenter` and its map path (step 1); the colour and refinement steps are in
:mod:`.assist_colour`, the masks and their operations in :mod:`.assist_mask`, the polygons in
:mod:`.assist_polygon`; their public names are re-exported here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import edit
from .colour import COLOUR_WINDOWS as COLOUR_WINDOWS  # re-exported
from .colour import REFINE_SIDE as REFINE_SIDE  # re-exported
from .colour import _ColourPath
from .mask import CLICK_RADIUS as CLICK_RADIUS  # re-exported
from .mask import Click, RegionMask, Result, _crop, _cut, _union
from .polygon import LEVELS as LEVELS  # re-exported
from .polygon import TARGET_IOU as TARGET_IOU  # re-exported
from .polygon import _outline as _outline  # re-exported (tests use it)
from .polygon import default_level as default_level  # re-exported
from .polygon import level_shapes as level_shapes  # re-exported
from .polygon import parts as parts  # re-exported
from .polygon import polygon as polygon  # re-exported
from .polygon import polygon_shape as polygon_shape  # re-exported
from .polygon import shape_area as shape_area  # re-exported
from .polygon import usable as usable  # re-exported

MAP_SIDE = 768  # the map is used at most this long side (previews must take milliseconds on 12 MP)
MIN_SEED = 0.12  # a click where the map stays below this nearby finds no damage there in the map
SEED_RADIUS = 0.012  # ... nearby = within this fraction of the map's long side
SEED_SHARE = 0.65  # a click takes the map around it down to this share of the map's value there
EDIT_CACHE = 64  # corrected states kept per photo (the taken clicks' prefixes)
# GrabCut may snap a region the map found around clicks to the photo's edges, not replace it: a fitted region
# whose IoU with the map's is under this keeps the map's (twentieth session, out of fold on 264 regions: clicks
# to IoU 0.80 8.10 always fitted, 7.90 never, 7.98 / 7.89 with 0.6 / 0.75; annotators' outlines of damage
# follow the damage, not the strongest colour edges near it, so a far-moved fit is usually wrong)
REFINE_AGREE = 0.75
IOU_PIXELS = 1 << 20  # that IoU is computed on at most about this many pixels (every pixel up to 1 MP)


@dataclass
class Segmenter(_ColourPath):
    """One photo, prepared once (the map reduced to ``MAP_SIDE``), then :meth:`segment` per set of clicks.

    ``size_wh``: the photo's true size. ``prob``: the model's probability map of the whole photo at any
    resolution, or None. ``image``: the photo (RGB uint8) at any resolution (a reduced decode is fine), or None
    (then no colour regions and no refinement)."""

    size_wh: tuple[int, int]
    prob: np.ndarray | None = None
    image: np.ndarray | None = None
    threshold: float = 0.5
    _pm: np.ndarray | None = field(default=None, init=False, repr=False)
    _pscale: float = field(default=1.0, init=False, repr=False)
    _iscale: float = field(default=1.0, init=False, repr=False)
    _colour_cache: dict = field(default_factory=dict, init=False, repr=False)
    _first_cache: dict = field(default_factory=dict, init=False, repr=False)
    _edit_cache: dict = field(default_factory=dict, init=False, repr=False)
    _given: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        w, h = (int(v) for v in self.size_wh)
        if w <= 0 or h <= 0:
            raise ValueError(f"image size must be positive, got {self.size_wh}")
        self.size_wh = (w, h)
        if self.prob is not None:
            p: np.ndarray = np.asarray(self.prob, dtype=np.float32)
            if p.ndim == 3:
                p = p[..., 0]
            s = min(1.0, MAP_SIDE / max(p.shape))
            if s < 1.0:
                p = cv2.resize(
                    p,
                    (max(1, round(p.shape[1] * s)), max(1, round(p.shape[0] * s))),
                    interpolation=cv2.INTER_AREA,
                )
            self._pm = p
            self._pscale = w / p.shape[1]
        if self.image is not None:
            img = np.asarray(self.image)
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
            self.image = np.ascontiguousarray(img[..., :3], dtype=np.uint8)
            self._iscale = w / self.image.shape[1]

    @property
    def has_map(self) -> bool:
        return self._pm is not None and float(self._pm.max()) >= MIN_SEED

    # ------------------------------------------------------------------------------------------- public
    def segment(
        self,
        clicks: list[Click],
        box: tuple[float, float, float, float] | None = None,
        refine: bool | None = None,
    ) -> Result:
        """The region of ``clicks`` and ``box`` (photo pixels). ``refine``: fit the outline to the photo's
        edges with GrabCut (None, the default, and True: always; False: never, for previews).

        Without a box, the first positive click that finds a region gives it and every later click corrects
        it where it was clicked (:mod:`.edit`); with a box, the clicks and the box are taken together."""
        if box is None and clicks:
            return self._corrected(clicks, refine)
        return self._together(clicks, box, refine)

    def give_first_region(self, click: Click, region: RegionMask | None) -> None:
        """Take ``region`` (found elsewhere: the click network of ``core.ml.clicknet``) as what the positive
        ``click`` finds when it is the first click; later clicks correct it as any other. ``None``, or an empty
        mask, forgets a given region (the click finds its own again)."""
        if region is None or not region.mask.any():
            self._given.pop(click, None)
        else:
            self._given[click] = Result(region, f"region from the {region.source}")

    def has_first_region(self, click: Click) -> bool:
        """Whether a region was given for ``click`` (:meth:`give_first_region`)."""
        return click in self._given

    # ------------------------------------------------------------------------------------------- threads
    def needs_fit(self, clicks: list[Click], box: tuple[float, float, float, float] | None = None) -> bool:
        """Whether ``segment(clicks, box, refine=True)`` would fit a region to the photo's edges now (GrabCut:
        tenths of a second, seconds on some photos) rather than take what this Segmenter found before: a first
        click's region not fitted yet (nor given), or a box. A GUI runs such a call on a :meth:`fork` on another
        thread, then gives this Segmenter what the fork found (:meth:`learn`)."""
        if self.image is None:
            return False
        if box is not None:
            return True
        for c in clicks:  # the first positive click that finds a region gives it (as :meth:`_corrected`)
            if not c.positive:
                continue
            found = self._given.get(c) or self._first_cache.get((c, True))
            if found is None:
                return True
            if found.region is not None:
                return False
        return False

    def fork(self) -> Segmenter:
        """A Segmenter of the same photo for another thread: the prepared map and photo shared (read only, never
        copied), the regions given and everything found so far known, in caches of its own (a Segmenter's caches
        are not safe to use from two threads at once)."""
        other = copy.copy(self)
        other._colour_cache = dict(self._colour_cache)
        other._first_cache = dict(self._first_cache)
        other._edit_cache = dict(self._edit_cache)
        other._given = dict(self._given)
        return other

    def learn(self, other: Segmenter) -> None:
        """Take what ``other`` (a :meth:`fork` of this Segmenter, done with on its thread) found that this one has
        not: the regions first clicks found, fitted or not, and the photo's colour regions; ``segment`` then gives
        what ``other`` would, without fitting them again."""
        for mine, theirs in (
            (self._first_cache, other._first_cache),
            (self._colour_cache, other._colour_cache),
        ):
            for key, value in theirs.items():
                mine.setdefault(key, value)

    def _first(self, click: Click, refine: bool | None, committed: bool = False) -> Result:
        """The region one positive click finds (cached; a region given for it first). ``committed``: later
        clicks follow, so a preview corrects the refined region when that click was refined before (what Enter
        would accept)."""
        if click in self._given:
            return self._given[click]
        refined = refine is not False
        for key in ((click, True), (click, refined)) if committed else ((click, refined),):
            if key in self._first_cache:
                return self._first_cache[key]
        res = self._together([click], None, refine)
        self._first_cache[(click, refined)] = res
        return res

    def _corrected(self, clicks: list[Click], refine: bool | None) -> Result:
        state: edit.EditState | None = None
        first: Result | None = None
        pos: list[Click] = []
        for i, c in enumerate(clicks):
            if c.positive:
                pos.append(c)
            if state is None:
                if c.positive:  # (a negative click before any region has nothing to cut)
                    first = self._first(c, refine, committed=i + 1 < len(clicks))
                    if first.region is not None:
                        skey = ("start", id(first))
                        if skey not in self._edit_cache:
                            self._edit_cache[skey] = (first, edit.start(first.region, self.size_wh, c))
                        state = start = self._edit_cache[skey][1]
                continue
            key = (id(start), tuple(clicks[: i + 1]))  # the states that follow from this first region
            nxt = self._edit_cache.get(key)
            if nxt is None:
                part = self._separate_part(state, c)
                nxt = edit.add_part(state, part, c, pos) if part is not None else edit.apply(state, c, pos)
                # keep the states of taken clicks (a preview's last click is the cursor: not kept; each state
                # holds three photo-sized grids)
                if refine is not False or i + 1 < len(clicks):
                    if len(self._edit_cache) >= EDIT_CACHE:
                        self._edit_cache.clear()
                    self._edit_cache[key] = nxt
            state = nxt
        if state is None or first is None or first.region is None:
            if first is not None:
                return first
            return Result(None, "Click inside a damage (or drag a box around it) first.")
        if state is start:  # no later click changed the region: the first click's own, at its resolution
            return first
        region = state.region(first.region.source)
        if region is None:
            return Result(None, "The corrections left no region: click inside the damage again.")
        return Result(region, f"region from the {region.source}, corrected by the later clicks")

    def _together(
        self,
        clicks: list[Click],
        box: tuple[float, float, float, float] | None,
        refine: bool | None,
    ) -> Result:
        """The region of every click and the box considered together (the first click, and any box)."""
        pos = [c for c in clicks if c.positive]
        neg = [c for c in clicks if not c.positive]
        box = self._clip_box(box)
        if not pos and box is None:
            return Result(None, "Click inside a damage (or drag a box around it) first.")
        region, seeds, unexplained = self._from_map(pos, box)
        how = "map" if region is not None else ""
        if self.image is not None and (unexplained or (box is not None and not pos and region is None)):
            colour = self._from_colour(unexplained, box, quick=refine is False)
            if colour is not None:
                region = colour if region is None else _union(region, colour)
                what = "box" if box is not None and not pos else "colour"
                how = what if how == "" else how + "+" + what
            seeds += [(c.x, c.y) for c in unexplained]
        if region is not None and neg:
            region = _cut(region, seeds, neg)
        if region is None or not region.mask.any():
            if self._pm is None and self.image is None:
                return Result(None, "No model map and no photo to work from.")
            where = "in the box" if box is not None and not pos else "at this click"
            why = "the model finds no damage " + where
            return Result(
                None,
                why[0].upper()
                + why[1:]
                + (" and the photo's colours give no region." if self.image is not None else "."),
            )
        if refine is None:
            refine = True
        refine = bool(refine and self.image is not None)
        if refine:
            fitted = self._refine(region, pos, neg, box)
            if fitted is None:
                return Result(
                    None, "The region vanished when fitted to the photo's edges; add a positive click."
                )
            if how == "map" and box is None and _iou(fitted, region, self.size_wh) < REFINE_AGREE:
                refine = False  # GrabCut latched onto other edges: the map's own outline stands
            else:
                region = fitted
        region.source = how + ("+edges" if refine else "")
        return Result(region, f"region from the {region.source}")

    # ------------------------------------------------------------------------------------------- steps
    def _clip_box(self, box):
        if box is None:
            return None
        w, h = self.size_wh
        x0, y0, x1, y1 = box
        x0, x1 = sorted((min(max(x0, 0), w), min(max(x1, 0), w)))
        y0, y1 = sorted((min(max(y0, 0), h), min(max(y1, 0), h)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        return x0, y0, x1, y1

    def _map_xy(self, x: float, y: float) -> tuple[int, int]:
        assert self._pm is not None  # called by _from_map, which has a map
        h, w = self._pm.shape
        return (min(h - 1, max(0, int(y / self._pscale))), min(w - 1, max(0, int(x / self._pscale))))

    def _from_map(self, pos, box) -> tuple[RegionMask | None, list[tuple[float, float]], list[Click]]:
        """(the map's region, the positive clicks it explains as photo points, the clicks it does not)."""
        if self._pm is None:
            return None, [], list(pos)
        pm = self._pm
        h, w = pm.shape
        acc = np.zeros((h, w), bool)
        seeds: list[tuple[float, float]] = []
        unexplained: list[Click] = []
        rad = max(1, int(round(SEED_RADIUS * max(h, w))))
        above_at: dict[float, np.ndarray] = {}
        for c in pos:
            r, col = self._map_xy(c.x, c.y)
            v = float(pm[r, col])
            if v < MIN_SEED:  # the strongest map value nearby, if any
                r0, r1, c0, c1 = (
                    max(0, r - rad),
                    min(h, r + rad + 1),
                    max(0, col - rad),
                    min(w, col + rad + 1),
                )
                win = pm[r0:r1, c0:c1]
                k = int(np.argmax(win))
                v, r, col = float(win.flat[k]), r0 + k // win.shape[1], c0 + k % win.shape[1]
            if v < MIN_SEED:
                unexplained.append(c)
                continue
            seeds.append(((col + 0.5) * self._pscale, (r + 0.5) * self._pscale))
            if acc[r, col]:
                continue
            acc |= self._blob_at(pm, r, col, v, above_at)
        if box is not None:
            bm = np.zeros((h, w), bool)
            x0, y0, x1, y1 = (v / self._pscale for v in box)
            bm[int(y0) : max(int(y0) + 1, int(np.ceil(y1))), int(x0) : max(int(x0) + 1, int(np.ceil(x1)))] = (
                True
            )
            acc = (acc & bm) if pos else (pm >= self.threshold) & bm
        if not acc.any():
            return None, seeds, unexplained
        return _crop(acc, 0.0, 0.0, self._pscale, "map"), seeds, unexplained

    def _separate_part(self, state: edit.EditState, c: Click) -> np.ndarray | None:
        """For a positive click outside the region on damage the map sees apart from it: that damage's part of
        the map (the first click's rule: down to ``SEED_SHARE`` of the map's value at the click) on the
        correction grid, when it does not touch the region; else None (the click pushes the outline)."""
        if not c.positive or self._pm is None:
            return None
        g = state.scale
        gh, gw = state.mask.shape
        if state.mask[edit.cell(c, g, (gh, gw))[2:]]:  # inside: as edit.apply decides it
            return None
        pm = self._pm
        r, col = self._map_xy(c.x, c.y)
        v = float(pm[r, col])
        if v < MIN_SEED:
            return None
        blob = self._blob_at(pm, r, col, v, {})
        rows = np.minimum(((np.arange(gh) + 0.5) * g / self._pscale).astype(int), pm.shape[0] - 1)
        cols = np.minimum(((np.arange(gw) + 0.5) * g / self._pscale).astype(int), pm.shape[1] - 1)
        part = blob[np.ix_(rows, cols)]
        near = cv2.dilate(state.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        if not part.any() or (part & near).any():
            return None
        return part

    def _blob_at(self, pm: np.ndarray, r: int, col: int, v: float, above_at: dict) -> np.ndarray:
        """The connected part of the map around (r, col), whose value there is ``v``, down to ``SEED_SHARE`` x
        ``v``: a level of the click's own, not the model's threshold."""
        t = round(max(MIN_SEED, SEED_SHARE * v), 3)
        if t not in above_at:
            above_at[t] = (pm >= t).astype(np.uint8)
        above = above_at[t].copy()
        cv2.floodFill(above, None, (col, r), 2, flags=8)
        return above == 2


def _iou(a: RegionMask, b: RegionMask, size_wh: tuple[int, int]) -> float:
    """IoU of two regions as :meth:`RegionMask.full` gives them, computed on the union of their boxes only (the
    rest of the photo is empty in both), and on every k-th pixel of it where it holds more than ``IOU_PIXELS``
    pixels (the IoU only chooses between the two regions; two 40-MP masks took over a second)."""
    w, h = size_wh
    boxes = (a.bbox(), b.bbox())
    c0, r0 = max(0, int(np.floor(min(q[0] for q in boxes)))), max(0, int(np.floor(min(q[1] for q in boxes))))
    c1, r1 = min(w, int(np.ceil(max(q[2] for q in boxes)))), min(h, int(np.ceil(max(q[3] for q in boxes))))
    if c1 <= c0 or r1 <= r0:
        return 1.0
    k = max(1, int(np.ceil(np.sqrt((c1 - c0) * (r1 - r0) / IOU_PIXELS))))
    cols, rows = np.arange(c0, c1, k), np.arange(r0, r1, k)
    fa, fb = _sampled(a, cols, rows, size_wh), _sampled(b, cols, rows, size_wh)
    union = int(np.count_nonzero(fa | fb))
    return int(np.count_nonzero(fa & fb)) / union if union else 1.0


def _sampled(r: RegionMask, cols: np.ndarray, rows: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """``r.full(size_wh)[np.ix_(rows, cols)]`` without the photo-sized mask (``cols``, ``rows`` increasing)."""
    w, h = size_wh
    out = np.zeros((len(rows), len(cols)), bool)
    x0, y0, x1, y1 = r.bbox()
    ci = (cols >= max(0, int(np.floor(x0)))) & (cols < min(w, int(np.ceil(x1))))
    ri = (rows >= max(0, int(np.floor(y0)))) & (rows < min(h, int(np.ceil(y1))))
    if not ci.any() or not ri.any():
        return out
    # the crop sampled at the centres of those full-resolution pixels (the arithmetic of RegionMask.full)
    xs = ((cols[ci] + 0.5 - x0) / r.scale - 0.5).astype(np.float32)
    ys = ((rows[ri] + 0.5 - y0) / r.scale - 0.5).astype(np.float32)
    mx, my = np.meshgrid(xs, ys)
    m = cv2.remap(r.mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    out[np.ix_(ri, ci)] = m >= 0.5
    return out


def segment(
    size_wh, clicks: list[Click], box=None, prob=None, image=None, threshold: float = 0.5, refine: bool = True
) -> Result:
    """One call of :meth:`Segmenter.segment` (prepare a Segmenter once per photo to call it repeatedly)."""
    return Segmenter(size_wh, prob, image, threshold).segment(clicks, box, refine)
