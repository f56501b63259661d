"""Analysis (issue 16): what kind of error the out-of-fold maps make, per photo style.

Each photo of a finished ``viaseg crossval`` (its ``oof_maps``, each fold model's calibrated threshold) is
thresholded at full resolution and its wrong pixels split four ways: predicted damage in a connected part that
touches a labelled region (``fp_touch``: an outline drawn wider), predicted damage in a part touching none
(``fp_apart``: a separate false area), labelled pixels missed in a region the prediction reaches
(``fn_partial``), and labelled regions missed whole (``fn_missed_regions``). ``--montage`` draws the 12 worst
whole-car photos (label green, prediction red, the map as a heat overlay).

    python tests/perf/exp_error_kinds.py CV_DIR [CV_DIR ...] [--montage worst.png] --json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exp_bn_recal import oof_photos

KINDS = ("fp_touch", "fp_apart", "fn_partial", "fn_missed_regions")


def error_kinds(truth: np.ndarray, pred: np.ndarray, regions: list[np.ndarray]) -> dict[str, int]:
    """The wrong pixels of ``pred`` against ``truth`` (bool, same shape) by kind; ``regions``: each labelled
    region's own mask."""
    out = dict.fromkeys(KINDS, 0)
    n, lab = cv2.connectedComponents(pred.astype(np.uint8))
    for k in range(1, n):
        comp = lab == k
        if (comp & truth).any():
            out["fp_touch"] += int((comp & ~truth).sum())
        else:
            out["fp_apart"] += int(comp.sum())
    for g in regions:
        if not g.any():
            continue
        if (g & pred).any():
            out["fn_partial"] += int((g & ~pred).sum())
        else:
            out["fn_missed_regions"] += int(g.sum())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cv_dirs", nargs="+")
    ap.add_argument("--montage", help="write the 12 worst whole-car photos here (PNG)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.imaging.imageio import read_image

    totals: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    worst = []
    for x, e, thr, prob, whole in oof_photos(args.cv_dirs):
        h, w = prob.shape
        truth = rasterize(e.regions, (w, h)).astype(bool)
        pred = prob >= thr
        kinds = error_kinds(truth, pred, [rasterize([r], (w, h)).astype(bool) for r in e.regions])
        style = "whole cars" if whole else "close-ups"
        totals[style].update(kinds)
        totals[style]["photos"] += 1
        if whole:
            worst.append((x["dice"], e, prob, truth, pred))
    res = {}
    for style, t in totals.items():
        wrong = sum(t[k] for k in KINDS)
        res[style] = {"photos": t["photos"], **{k: round(t[k] / max(1, wrong), 3) for k in KINDS}}
    if args.montage:
        tiles = []
        for dice, e, prob, truth, pred in sorted(worst, key=lambda t: t[0])[:12]:
            img = cv2.cvtColor(read_image(e.path)[..., :3], cv2.COLOR_RGB2BGR)
            heat = cv2.applyColorMap((np.clip(prob, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
            vis = cv2.addWeighted(img, 0.7, heat, 0.3, 0)
            for m, colour in ((truth, (0, 255, 0)), (pred, (0, 0, 255))):
                cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                cv2.drawContours(vis, cs, -1, colour, max(2, img.shape[1] // 300))
            vis = cv2.resize(vis, (400, round(400 * img.shape[0] / img.shape[1])))[:320]
            cv2.putText(
                vis,
                f"{e.filename} Dice {dice:.2f}",
                (5, 20),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (255, 255, 255),
                2,
            )
            tile = np.zeros((320, 400, 3), np.uint8)
            tile[: vis.shape[0]] = vis
            tiles.append(tile)
        while len(tiles) % 4:
            tiles.append(np.zeros((320, 400, 3), np.uint8))
        cv2.imwrite(args.montage, np.vstack([np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]))
    print(json.dumps(res, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
