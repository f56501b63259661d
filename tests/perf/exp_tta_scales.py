"""Experiment (issue 16): the prediction's second size from the photo's own pixels instead of an enlarged input.

The default model averages the network at 1 and 5/4 of its size (``tta_scales``); the Predictor makes the 5/4
input by enlarging the 256-px input (bilinear), so the second pass sees the damage larger but with no more
detail. On whole-car photos the damage is small (a quarter of the out-of-fold photos have under 6,000 damage
pixels of about a megapixel: 19 px across at 256) and those photos score worst (0.28 out of fold). Here each
size's input is also reduced from the full photo (area), as the 256-px one is, so a larger size carries real
detail.

For each fold of a finished ``viaseg crossval`` (models and division into folds as ``crossval`` builds them:
``exp_bn_recal.fold_split``), each held-out photo is predicted at each size of ``--scales`` both ways
(``up``: the 256-px input enlarged, as now; ``real``: reduced from the photo), mirror-averaged, each map resized
to 256 px as the Predictor does; combinations are averaged there, enlarged to the photo and scored (hard Dice
per photo at full resolution) at each fold model's stored threshold and over a sweep. The maps are kept in
``--cache`` so combinations can be scored again without the network.

    python tests/perf/exp_tta_scales.py CV_DIR [CV_DIR ...] --folds 0,1,2,3,4 --cache /tmp/tta.npz --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exp_bn_recal import DATASETS, fold_model, fold_split

SCALES = (1.0, 1.25, 1.5, 1.75, 2.0)
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
COMBOS = {
    "default (1, 1.25 up)": [("up", 1.0), ("up", 1.25)],
    "1 alone": [("up", 1.0)],
    "1, 1.25 real": [("up", 1.0), ("real", 1.25)],
    "1, 1.5 real": [("up", 1.0), ("real", 1.5)],
    "1, 1.5 up": [("up", 1.0), ("up", 1.5)],
    "1, 1.25, 1.5 real": [("up", 1.0), ("real", 1.25), ("real", 1.5)],
    "1, 1.5, 2 real": [("up", 1.0), ("real", 1.5), ("real", 2.0)],
    "1.25 real": [("real", 1.25)],
    "1.5 real": [("real", 1.5)],
    "1.25, 1.5 real": [("real", 1.25), ("real", 1.5)],
    "1, 1.25 up, 1.5 real": [("up", 1.0), ("up", 1.25), ("real", 1.5)],
    "1, 2 real": [("up", 1.0), ("real", 2.0)],
}


def maps_of(predictor, img: np.ndarray, scales=SCALES) -> dict[str, np.ndarray]:
    """``{"up@s" / "real@s": 256-px probability map}`` of one photo (RGB uint8, full resolution)."""
    h, w = predictor.input_hw
    base = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    x0 = predictor._normalise(base)
    out = {}
    for s in scales:
        hw = (max(32, math.floor(h * s / 32 + 0.5) * 32), max(32, math.floor(w * s / 32 + 0.5) * 32))
        ways = {"up": x0 if hw == (h, w) else cv2.resize(x0, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)}
        if hw != (h, w):
            shrink = hw[1] <= img.shape[1] and hw[0] <= img.shape[0]
            real = cv2.resize(
                img, (hw[1], hw[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
            ways["real"] = predictor._normalise(real)
        for way, x in ways.items():
            p = predictor._forward_at(x[None].astype(np.float32), hw)[0]
            if hw != (h, w):
                p = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
            out[f"{way}@{s}"] = p.astype(np.float32)
        if hw == (h, w):
            out[f"real@{s}"] = out[f"up@{s}"]
    return out


def score_combo(maps: dict, combo, truth: np.ndarray, thresholds) -> dict[float, float]:
    from viaseg.core.ml.evaluate import pixel_counts, scores_of_counts

    p = np.mean([maps[f"{way}@{s}"] for way, s in combo], axis=0)
    hh, ww = truth.shape
    full = cv2.resize(p, (ww, hh), interpolation=cv2.INTER_LINEAR)
    out = {}
    for t in thresholds:
        inter, nt, np_ = pixel_counts(truth, full >= t)
        out[t] = float(scores_of_counts(inter, nt, np_)[0])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cv_dirs", nargs="+")
    ap.add_argument("--folds", default="0")
    ap.add_argument("--cache", default=None, help="npz of the maps (read when present, else written)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.imaging.imageio import read_image
    from viaseg.core.ml import tfsetup
    from viaseg.core.ml.predict import Predictor

    entries, fold_of = fold_split(DATASETS)
    cache = dict(np.load(args.cache, allow_pickle=True)) if args.cache and Path(args.cache).is_file() else {}
    fresh = {}
    rows = []
    for f in [int(s) for s in args.folds.split(",")]:
        model_path = fold_model(args.cv_dirs, f)
        if model_path is None:
            print(f"fold {f}: no model", file=sys.stderr)
            continue
        predictor = None
        from viaseg.core.ml.modelio import read_meta

        thr = float(read_meta(model_path).get("threshold", 0.5))
        for e, fo in zip(entries, fold_of, strict=True):
            if fo != f:
                continue
            key = f"{f}_{hashlib.md5(str(e.path).encode()).hexdigest()[:12]}"
            img = read_image(e.path)[..., :3]
            if key + "|up@1.0" in cache:
                maps = {k.split("|", 1)[1]: v for k, v in cache.items() if k.startswith(key + "|")}
            else:
                if predictor is None:
                    tfsetup.load_tf()
                    predictor = Predictor.load(model_path, cache=False)
                maps = maps_of(predictor, img)
                for k, v in maps.items():
                    fresh[f"{key}|{k}"] = v
            truth = rasterize(e.regions, (img.shape[1], img.shape[0]))
            row = {"fold": f, "image": str(e.path), "threshold": thr, "true_px": int(truth.sum())}
            row["area_pred"] = float((maps["up@1.0"] >= thr).mean())
            for name, combo in COMBOS.items():
                row[name] = score_combo(maps, combo, truth, (thr, *THRESHOLDS))
            rows.append(row)
        print(f"fold {f}: done ({len(rows)} photos so far)", file=sys.stderr)
    if args.cache and fresh:
        np.savez_compressed(args.cache, **{**cache, **fresh})
    Path(args.cache + ".rows.json" if args.cache else "/tmp/tta_rows.json").write_text(
        json.dumps(rows, default=str)
    )

    base = "default (1, 1.25 up)"
    res = {"photos": len(rows)}
    for name in COMBOS:
        diffs = [r[name][r["threshold"]] - r[base][r["threshold"]] for r in rows]
        res[name] = {
            "stored": round(statistics.mean(r[name][r["threshold"]] for r in rows), 4),
            "whole_cars": round(
                statistics.mean(r[name][r["threshold"]] for r in rows if "extra" in r["image"]), 4
            ),
            "close_ups": round(
                statistics.mean(r[name][r["threshold"]] for r in rows if "extra" not in r["image"]), 4
            ),
            "paired": round(statistics.mean(diffs), 4),
            "se": round(statistics.stdev(diffs) / math.sqrt(len(diffs)), 4) if len(diffs) > 1 else None,
            "sweep": {t: round(statistics.mean(r[name][t] for r in rows), 4) for t in THRESHOLDS},
        }
    print(json.dumps(res, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
