"""Click-to-segment's corrections (numpy/OpenCV, no Qt, no TensorFlow): every click after the one that found the
region edits the region where it was clicked, as a smooth local push of its outline.

A click outside the region (a positive one: "this belongs to it") or inside it (a negative one: "this does
not") lies at some distance ``d`` from the region's outline; the protocol of the interactive-segmentation
literature, and a labeller, click near the middle of what is wrong, so ``d`` says how large the error is there.
The region's signed distance (positive outside) gets a Gaussian bump of height ``EDIT_GAIN * d`` and width
``k * d`` centred on the click, subtracted for a positive click and added for a negative one, and the new region
is where it is below zero: the outline moves through the click by about ``d`` and the move fades along it
within a few ``d``, so a missed lobe is filled and a ring-shaped error (an outline off all round) is fixed over a
stretch, not by a dot. Each click also keeps a disc of ``KEEP * d`` around it on its side for good; a wider push
(``EDIT_WIDTHS``, widest first) that would undo more than ``TOLERANCE`` of those discs is narrowed, so a later
click never undoes an earlier one (the cause of the back-and-forth a fixed width shows). Only the connected
parts holding a positive click stay.

Chosen on training photos, never on the validation sets (``tests/perf/bench_assist.py --oof``, the 5-fold
out-of-fold maps of 120-s models on car-damage/train + car-damage-extra-split/train, 30 photos, 52 regions):
clicks to IoU 0.80 9.2 with these edits against 11.4 for the earlier way (every click re-running the map
threshold, the negative clicks' Voronoi cut and GrabCut; 10.9 for a disc of radius ``d`` per click; 9.5 for
widths 2 then 1; 18.7 for a push the whole width of the outline band, 16.1 for a fixed width 3).

A positive click on damage the map sees apart from the region (its connected part of the map, at the click's
own level as for a first click, does not touch the region) adds that part whole (:func:`add_part`, called by the
Segmenter, which has the map): a labeller clicking a second damage means that damage, not a bulge towards it
(out of fold the same 7.89 clicks as the push; the push had grown a bulge over the car body between the two).

Twentieth session, on every photo of the 600-s 5-fold cross-validation's out-of-fold maps (149 training photos,
264 regions; ``bench_assist.py --oof CV_F0 CV_F1234``, docs/RESULTS.md): the first click keeps its disc too (a negative click in
a region that spilt far beyond the damage had left nothing, IoU 0, for 30 of the 264 regions) and a positive
click's push is at most ``WIDTH_CAP`` x the region's radius wide (a click far from the region had added a push
as wide as its distance): clicks to IoU 0.80 **8.10** against 8.95 (first-click disc alone 8.39; cap 0.5 x /
2 x the radius 8.66 / 8.32), regions never reaching 0.80 in 20 clicks 7.6 % against 14 %; without a map 9.21
against 9.71 (7.89 with the map once the Segmenter keeps the map's outline where GrabCut moved it far).

Thirty-third session: a kept disc is kept until a later click of the other side lands inside it
(:func:`_shrink_contradicted`). A first region far larger than the damage (a thin scratch found as a whole
panel) kept a disc as large around the first click, and the protocol's negative clicks, landing inside it, could
only chip at it; now such a click shrinks the disc to end where its own (at most half their distance) begins.
Chosen on the training photos without a model (the click network's first regions, in sample there, and without
it): clicks to IoU 0.80 on car-damage/train 6.05 -> 6.03 and 10.72 -> 10.39, on car-damage-extra-split/train
4.81 -> 4.80 and 8.61 -> 8.40 (regions never reaching 0.80 19 -> 14); then on car-damage-extra-split/val as the
app runs (``bench_assist.py``): 8.67 -> **8.32** (never 7 -> 2), car-damage/val unchanged (4.79).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .mask import Click, RegionMask, _crop

EDIT_GAIN = 2.0  # the bump's height, x the click's distance to the outline
EDIT_WIDTHS = (1.5, 1.0)  # the bump's width (Gaussian sigma), x that distance: widest first
KEEP = 0.5  # each click keeps a disc of this x its distance on its side for good
TOLERANCE = 0.02  # a push may undo at most this share of the kept discs, else the next narrower width
# a positive click's push is no wider than this x the region's own radius (sqrt(area / pi)): a click far
# outside the region (a separate missed part, the far end of a long one) lies at a distance that says nothing
# about the size of what was missed there, and a push that wide swallowed half the photo (twentieth session)
WIDTH_CAP = 1.0
GRID_SIDE = 1024  # corrections work on the photo at most this long side


@dataclass
class EditState:
    """A region under correction on the photo's grid: ``mask`` (bool), ``keep_in`` / ``keep_out`` (the kept
    discs), ``scale`` (photo pixels per grid pixel)."""

    mask: np.ndarray
    keep_in: np.ndarray
    keep_out: np.ndarray
    scale: float
    # the kept discs in the order they were made: (x, y, radius in grid pixels, positive); ``keep_in`` /
    # ``keep_out`` are drawn from them (a later disc takes its area from the other side's earlier ones)
    discs: tuple[tuple[float, float, float, bool], ...] = ()

    def copy(self) -> EditState:
        return EditState(
            self.mask.copy(), self.keep_in.copy(), self.keep_out.copy(), self.scale, tuple(self.discs)
        )

    def region(self, source: str) -> RegionMask | None:
        if not self.mask.any():
            return None
        return _crop(self.mask, 0.0, 0.0, self.scale, source)


def grid_for(size_wh: tuple[int, int]) -> tuple[float, tuple[int, int]]:
    """(photo pixels per grid pixel, (rows, cols)) of the correction grid of a photo of ``size_wh``."""
    w, h = size_wh
    g = max(1.0, max(w, h) / GRID_SIDE)
    return g, (max(1, int(np.ceil(h / g))), max(1, int(np.ceil(w / g))))


def cell(click: Click, g: float, shape: tuple[int, int]) -> tuple[float, float, int, int]:
    """(x, y, row, col) of ``click`` on a correction grid of ``g`` photo pixels a cell and ``shape`` (rows, cols)."""
    cx, cy = click.x / g - 0.5, click.y / g - 0.5
    return cx, cy, min(shape[0] - 1, max(0, int(round(cy)))), min(shape[1] - 1, max(0, int(round(cx))))


def _kept_radius(d: float) -> float:
    """The radius (grid pixels) of the disc a click at distance ``d`` from the outline keeps on its side."""
    return KEEP * d + 1.0


def _disc_window(
    shape: tuple[int, int], cx: float, cy: float, radius: float
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The disc of ``radius`` around (``cx``, ``cy``) on a grid of ``shape``, within its bounding box: (the box's
    slices, the disc there); None where the box misses the grid."""
    r0, r1 = max(0, int(np.floor(cy - radius))), min(shape[0], int(np.ceil(cy + radius)) + 1)
    c0, c1 = max(0, int(np.floor(cx - radius))), min(shape[1], int(np.ceil(cx + radius)) + 1)
    if r0 >= r1 or c0 >= c1:
        return None
    yy, xx = np.ogrid[r0:r1, c0:c1]
    return (slice(r0, r1), slice(c0, c1)), (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def _disc_mask(shape: tuple[int, int], cx: float, cy: float, radius: float) -> np.ndarray:
    """The disc of ``radius`` around (``cx``, ``cy``) on a whole grid of ``shape``."""
    out = np.zeros(shape, bool)
    window = _disc_window(shape, cx, cy, radius)
    if window is not None:
        out[window[0]] = window[1]
    return out


def _redraw_kept(state: EditState) -> None:
    """``state.keep_in`` / ``keep_out`` drawn again from ``state.discs`` (in place), each disc only within its
    bounding box (this runs in hover previews)."""
    gh, gw = state.mask.shape
    kin = np.zeros((gh, gw), bool)
    kout = np.zeros((gh, gw), bool)
    for x, y, radius, positive in state.discs:
        window = _disc_window((gh, gw), x, y, radius)
        if window is None:
            continue
        box, m = window
        grow, shrink = (kin, kout) if positive else (kout, kin)
        grow[box] |= m
        shrink[box] &= ~m
    state.keep_in, state.keep_out = kin, kout


def _shrink_contradicted(state: EditState, cx: float, cy: float, own: float, positive: bool) -> float:
    """A click at (``cx``, ``cy``) that lies inside kept discs of the other side says those discs were too
    large (a first region far larger than the damage keeps a disc as large around the first click). The
    click's own disc (radius ``own``) is held to half its distance to the nearest such disc's centre and each
    such disc shrinks to end where the click's disc begins, so both clicks keep their own neighbourhood (in
    place). Returns the click's disc radius."""
    dist = [float(np.hypot(cx - x, cy - y)) for x, y, _, _ in state.discs]
    hit = [pos != positive and s <= radius for s, (_, _, radius, pos) in zip(dist, state.discs, strict=True)]
    if not any(hit):
        return own
    own = min(own, max(1.0, min(s for s, h in zip(dist, hit, strict=True) if h) / 2.0))
    discs = [
        (x, y, max(1.0, s - own) if h else radius, pos)
        for s, h, (x, y, radius, pos) in zip(dist, hit, state.discs, strict=True)
    ]
    state.discs = tuple(discs)
    _redraw_kept(state)
    return own


def start(region: RegionMask, size_wh: tuple[int, int], click: Click | None = None) -> EditState:
    """The state of a region found by a first click (resampled onto the photo's correction grid). ``click``: that
    first click; inside the region it keeps a disc of ``KEEP`` x its distance to the outline, as every later
    click does (without it, one negative click in a region that spilt far beyond the damage could pull the
    whole region in, the damage the user clicked first included)."""
    g, (gh, gw) = grid_for(size_wh)
    xs = (((np.arange(gw) + 0.5) * g - region.x0) / region.scale - 0.5).astype(np.float32)
    ys = (((np.arange(gh) + 0.5) * g - region.y0) / region.scale - 0.5).astype(np.float32)
    mx, my = np.meshgrid(xs, ys)
    m = (
        cv2.remap(region.mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        >= 0.5
    )
    empty = np.zeros((gh, gw), bool)
    keep_in = empty.copy()
    discs: tuple[tuple[float, float, float, bool], ...] = ()
    if click is not None and click.positive:
        cx, cy, r, c = cell(click, g, (gh, gw))
        if m[r, c]:
            radius = _kept_radius(abs(float(signed_distance(m)[r, c])) + 0.5)
            keep_in = _disc_mask((gh, gw), cx, cy, radius)
            discs = ((cx, cy, radius, True),)
    return EditState(m, keep_in, empty, g, discs)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the outline in grid pixels: positive outside ``mask``, negative inside."""
    m = mask.astype(np.uint8)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    inside = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    return outside - inside


def apply(
    state: EditState, click: Click, positives: list[Click], push_scale: np.ndarray | None = None
) -> EditState:
    """``state`` corrected by one click (a new state; ``state`` is left as it was). A positive click inside the
    region or a negative one outside it changes nothing. ``positives``: every positive click so far (the
    parts of the region holding one stay). ``push_scale`` (the grid's shape, optional): a factor of the push
    per grid pixel (experiments: ``tests/perf/exp_clicknet_guided.py``; None: 1 everywhere)."""
    g = state.scale
    gh, gw = state.mask.shape
    cx, cy, r, c = cell(click, g, (gh, gw))
    if bool(state.mask[r, c]) == click.positive:
        return state
    out = state.copy()
    if state.mask.any():
        phi = signed_distance(state.mask)
    else:  # nothing yet: the click's own neighbourhood, 5 % of the photo's side
        phi = np.full((gh, gw), 0.05 * max(gh, gw), np.float32)
    d = abs(float(phi[r, c])) + 0.5
    wd = d  # the push's width and the kept disc follow the distance, up to the region's own size
    if click.positive and state.mask.any():
        wd = min(d, WIDTH_CAP * float(np.sqrt(state.mask.sum() / np.pi)) + 0.5)
    own = _kept_radius(wd)
    if (out.keep_out if click.positive else out.keep_in)[r, c]:
        own = _shrink_contradicted(out, cx, cy, own, click.positive)
    out.discs = out.discs + ((cx, cy, own, click.positive),)
    # the bump and the discs only matter within a few widths of the click: work on that window
    reach = int(np.ceil(4.0 * max(EDIT_WIDTHS) * wd + KEEP * wd + 2))
    r0, r1, c0, c1 = max(0, r - reach), min(gh, r + reach + 1), max(0, c - reach), min(gw, c + reach + 1)
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    disc = d2 <= own**2
    kin, kout = out.keep_in[r0:r1, c0:c1], out.keep_out[r0:r1, c0:c1]
    if click.positive:
        kin |= disc
        kout &= ~disc
    else:
        kout |= disc
        kin &= ~disc
    kept = max(1.0, float(kin.sum() + kout.sum()))
    win = phi[r0:r1, c0:c1]
    factor = 1.0 if push_scale is None else push_scale[r0:r1, c0:c1]
    best = None
    for k in EDIT_WIDTHS:
        bump = (EDIT_GAIN * d) * np.exp(-d2 / (2.0 * (k * wd) ** 2)) * factor
        m = (win - bump if click.positive else win + bump) < 0
        undone = float((~m & kin).sum() + (m & kout).sum()) / kept
        best = (m | kin) & ~kout
        if undone <= TOLERANCE:
            break
    assert best is not None
    out.mask[r0:r1, c0:c1] = best
    out.mask |= out.keep_in  # discs of earlier clicks outside the window stay as they were
    out.mask &= ~out.keep_out
    return _keep_clicked(out, positives)


def add_part(state: EditState, part: np.ndarray, click: Click, positives: list[Click]) -> EditState:
    """``state`` with ``part`` (bool, on the state's grid, holding the positive ``click``) added as a part of
    its own, the click keeping a disc of ``KEEP`` x its distance to the part's outline (a new state)."""
    cx, cy, r, c = cell(click, state.scale, state.mask.shape)
    out = state.copy()
    d = abs(float(signed_distance(part)[r, c])) + 0.5 if part[r, c] else 1.0
    radius = _kept_radius(d)
    disc = _disc_mask(state.mask.shape, cx, cy, radius)
    out.discs = out.discs + ((cx, cy, radius, True),)
    out.keep_in |= disc
    out.keep_out &= ~disc
    out.mask = ((out.mask | part) & ~out.keep_out) | out.keep_in
    return _keep_clicked(out, positives)


def _keep_clicked(state: EditState, positives: list[Click]) -> EditState:
    n, lab = cv2.connectedComponents(state.mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return state
    gh, gw = state.mask.shape
    g = state.scale
    ids = {int(lab[min(gh - 1, max(0, int(p.y / g))), min(gw - 1, max(0, int(p.x / g)))]) for p in positives}
    ids.discard(0)
    if ids:
        state.mask = np.isin(lab, list(ids))
    return state
