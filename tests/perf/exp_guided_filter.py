"""Experiment (issue 16): the probability map's outlines snapped to the photo's edges by a guided filter.

The network sees the photo at 256 px and its map is enlarged to the photo's size (bilinear), so every outline is
as coarse as a 256-px pixel. Out of fold on the 149 training photos (the five 600-s fold models of the
seventeenth and eighteenth sessions, their maps in ``oof_maps``), most whole-car error pixels are outline
disagreements on damage the model did find (43 % extra pixels touching a labelled region, 43 % missed pixels
of found regions; 12 % separate false areas, 3 % regions missed whole). A guided filter (He, Sun and Tang
2010: a local linear model of the map in the photo's colours, box windows of radius ``r``, regularized by
``eps``) redraws the map along the photo's edges at up to ``SIDE`` px; the result is enlarged to the photo and
thresholded at each fold model's calibrated threshold, scored as ``viaseg evaluate`` scores (hard Dice per
photo, full resolution), paired per photo against the map as it is. No network runs.

    python tests/perf/exp_guided_filter.py CV_DIR [CV_DIR ...] --json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exp_bn_recal import oof_photos

SIDE = 1024
VARIANTS = {  # name -> (radius in SIDE-px pixels, eps on 0..1 colours)
    "r 4, eps 1e-3": (4, 1e-3),
    "r 8, eps 1e-3": (8, 1e-3),
    "r 8, eps 1e-2": (8, 1e-2),
    "r 16, eps 1e-2": (16, 1e-2),
    "r 16, eps 1e-3": (16, 1e-3),
}


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a colour guide (HxWx3 float32 0..1) of ``p`` (HxW float32)."""
    mean_i = [_box(guide[..., c], r) for c in range(3)]
    mean_p = _box(p, r)
    cov_ip = [_box(guide[..., c] * p, r) - mean_i[c] * mean_p for c in range(3)]
    var = np.empty(p.shape + (3, 3), np.float32)
    for a in range(3):
        for b in range(a, 3):
            v = _box(guide[..., a] * guide[..., b], r) - mean_i[a] * mean_i[b]
            var[..., a, b] = var[..., b, a] = v
    var += eps * np.eye(3, dtype=np.float32)
    coef = np.linalg.solve(var, np.stack(cov_ip, -1)[..., None])[..., 0]  # HxWx3
    b = mean_p - sum(coef[..., c] * mean_i[c] for c in range(3))
    mean_a = [_box(coef[..., c], r) for c in range(3)]
    return np.clip(sum(mean_a[c] * guide[..., c] for c in range(3)) + _box(b, r), 0.0, 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cv_dirs", nargs="+")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.imaging.imageio import read_image
    from viaseg.core.ml.evaluate import pixel_counts, scores_of_counts

    rows = []
    for x, e, thr, prob, whole in oof_photos(args.cv_dirs):
        h, w = prob.shape
        truth = rasterize(e.regions, (w, h))
        img = read_image(e.path)[..., :3]
        s = min(1.0, SIDE / max(h, w))
        ws, hs = max(1, round(w * s)), max(1, round(h * s))
        guide = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        small = cv2.resize(prob, (ws, hs), interpolation=cv2.INTER_AREA)

        def dice(p, truth=truth, thr=thr):
            inter, nt, np_ = pixel_counts(truth, p >= thr)
            return float(scores_of_counts(inter, nt, np_)[0])

        row = {"image": x["image"], "whole": whole, "fold": x["fold"], "as is": dice(prob)}
        for name, (r, eps) in VARIANTS.items():
            q = guided_filter(guide, small, r, eps)
            row[name] = dice(cv2.resize(q, (w, h), interpolation=cv2.INTER_LINEAR))
        rows.append(row)
    res = {"photos": len(rows), "as is": round(statistics.mean(r["as is"] for r in rows), 4)}
    for name in VARIANTS:
        diffs = [r[name] - r["as is"] for r in rows]
        res[name] = {
            "mean": round(statistics.mean(r[name] for r in rows), 4),
            "paired": round(statistics.mean(diffs), 4),
            "se": round(statistics.stdev(diffs) / math.sqrt(len(diffs)), 4),
            "whole_cars": round(statistics.mean(r[name] - r["as is"] for r in rows if r["whole"]), 4),
            "close_ups": round(statistics.mean(r[name] - r["as is"] for r in rows if not r["whole"]), 4),
            "folds": [
                round(statistics.mean(r[name] - r["as is"] for r in rows if r["fold"] == f), 4)
                for f in sorted({r["fold"] for r in rows})
            ],
        }
    print(json.dumps(res, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
