"""The click protocol of the interactive-segmentation literature (NoC, as reported for RITM and SAM), run on
:class:`viaseg.core.assist.segment.Segmenter`: measurement code for ``tests/perf/bench_assist.py`` and the tests, kept
apart from the tool itself. Pure numpy/OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

from .segment import Click


def first_click(gt: np.ndarray) -> tuple[float, float]:
    """The standard first click of the NoC protocol: the point inside ``gt`` farthest from its boundary."""
    d = cv2.distanceTransform(np.pad(gt, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(d)), d.shape)
    return c + 0.5, r + 0.5


def next_click(gt: np.ndarray, pred: np.ndarray) -> tuple[float, float, bool] | None:
    """The protocol's next click: the centre of the largest error (the error pixel farthest from the error
    area's edge), positive in a missed area, negative in a false one; None when there is no error."""
    best = None
    for err, positive in ((gt & ~pred, True), (pred & ~gt, False)):
        if not err.any():
            continue
        d = cv2.distanceTransform(np.pad(err, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        k = int(np.argmax(d))
        if best is None or d.flat[k] > best[0]:
            r, c = divmod(k, d.shape[1])
            best = (float(d.flat[k]), c + 0.5, r + 0.5, positive)
    return None if best is None else best[1:]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum()) / float(u) if u else 1.0


def click_protocol(
    seg, gt: np.ndarray, max_clicks: int = 20, stop_at: float = 1.01, refine: bool | None = None
) -> list[float]:
    """IoU with ``gt`` (bool, the photo's full size) after each click of the NoC protocol, ``seg`` being a
    :class:`Segmenter` of that photo. The list ends early once ``stop_at`` is reached after at least 3 clicks,
    or when there is no error left (later clicks would keep the last value)."""
    h, w = gt.shape
    clicks = [Click(*first_click(gt), True)]
    ious: list[float] = []
    for k in range(max_clicks):
        res = seg.segment(clicks, refine=refine)
        pred = res.region.full((w, h)) if res.region is not None else np.zeros_like(gt)
        ious.append(mask_iou(gt, pred))
        if ious[-1] >= stop_at and k >= 2:
            break
        nxt = next_click(gt, pred)
        if nxt is None:
            break
        clicks.append(Click(*nxt))
    return ious


def clicks_to(ious: list[float], target: float, max_clicks: int = 20) -> int:
    """NoC: clicks needed to reach ``target`` IoU (``max_clicks`` when never)."""
    return next((i + 1 for i, v in enumerate(ious) if v >= target), max_clicks)
