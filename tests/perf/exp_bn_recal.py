"""Experiment (issue 16): do a trained model's batch-norm statistics, re-estimated on its own training photos as
they look at prediction, generalize better than the ones training leaves?

Why: the default preset trains with batch-norm momentum 0.5, so each layer's moving mean and variance at the
end of a run are those of its last two or three batches: about 20 augmented crops (scale 0.6-1 of the photo,
rotated, colour-jittered), while prediction shows the network whole photos at 1 and 5/4 of the training size
(the train/test scale gap of the sixteenth and twenty-first sessions). "Precise BN" (re-estimating the
statistics over many un-augmented inputs after training, as FixRes and detectron2 do) costs one forward pass
over the training photos and no training.

How: for each fold of a finished ``viaseg crossval`` (its models, its division into folds, rebuilt here exactly
as ``crossval`` builds it), the fold's model predicts its held-out photos as ``crossval`` does (the reference),
then its batch norms are re-estimated on the fold's training photos, whole, at the sizes the Predictor runs
(1 and each ``tta_scales`` factor), each with its mirror image, as the cumulative mean of the batches' means
and variances, and the held-out photos are predicted again. Mean hard Dice per photo at full resolution at the
model's stored (calibrated) threshold and at a sweep of thresholds, paired per photo.

    python tests/perf/exp_bn_recal.py CV_DIR [CV_DIR ...] --folds 0,1 --json

(the CV dirs of one 5-fold division, e.g. the seventeenth session's fold 0 and the eighteenth's folds 1-4).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATASETS = [
    str(ROOT.parent / "shared/datasets/car-damage"),
    str(ROOT.parent / "shared/datasets/car-damage-extra-split/train"),
]
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def fold_split(datasets: list[str], folds: int = 5, fold_seed: int = 0):
    """The cross-validation's division (``crossval`` builds it the same way): (entries, fold of each)."""
    from viaseg.core.checks.check_copies import duplicate_groups
    from viaseg.core.ml.crossval import _annotated, assign_folds
    from viaseg.core.ml.train_plumbing import _entries_of

    sources = []
    for spec in datasets:
        entries, desc, _ = _entries_of(spec, "train", "the dataset")
        sources.append((desc, entries))
    entries, src_idx, _ = _annotated(sources, True)
    groups = duplicate_groups(entries, decode=True)
    return entries, assign_folds(src_idx, groups, folds, seed=fold_seed)


def fold_model(cv_dirs: list[str], f: int) -> Path | None:
    """Fold ``f``'s model in the first of ``cv_dirs`` (``viaseg crossval`` folders) that has one."""
    return next((p for d in cv_dirs if (p := Path(d) / f"fold_{f}" / "model.keras").is_file()), None)


def oof_photos(cv_dirs: list[str]):
    """``(crossval row, entry, the fold model's threshold, out-of-fold map, is a whole-car photo)`` for every
    photo scored by the ``viaseg crossval`` folders ``cv_dirs``."""
    from viaseg.core.ml.crossval import load_map

    entries, _ = fold_split(DATASETS)
    by = {(e.filename, "extra" in str(e.path)): e for e in entries}
    for d in cv_dirs:
        for x in json.loads((Path(d) / "crossval.json").read_text())["per_image"]:
            whole = "extra" in x["source"]
            summary = json.loads((Path(d) / f"fold_{x['fold']}" / "summary.json").read_text())
            yield (
                x,
                by[(x["image"], whole)],
                summary.get("threshold", 0.5),
                load_map(Path(d) / x["map_path"]),
                whole,
            )


def batch_norms(model) -> list:
    import keras

    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate(predictor, images: list[np.ndarray], batch: int = 8, mirror: bool = True, scales=None) -> int:
    """Re-estimate every batch norm of ``predictor.model`` on ``images`` (RGB uint8, any size) as the Predictor
    shows them to the network; returns the number of batches. The model is changed in place."""
    h, w = predictor.input_hw
    sizes = predictor.scale_sizes() if scales is None else scales
    bns = batch_norms(predictor.model)
    saved = [b.momentum for b in bns]
    small = [cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in images]
    x0 = predictor._normalise(np.stack(small)).astype(np.float32)
    k = 0
    for hw in sizes:
        models = predictor._model_at(hw)
        nets_bns = batch_norms(models)
        x = x0 if hw == (h, w) else np.stack([cv2.resize(b, (hw[1], hw[0])) for b in x0])
        if mirror:
            x = np.concatenate([x, x[:, :, ::-1]])
        order = np.random.default_rng(0).permutation(len(x))
        for i in range(0, len(x), batch):
            k += 1
            for b in nets_bns:
                b.momentum = 1.0 - 1.0 / k  # the cumulative mean of every batch so far (k = 1: replaced)
            models(x[order[i : i + batch]], training=True)
        if models is not predictor.model:  # a copy at another size: its statistics back into the model
            for src, dst in zip(nets_bns, bns, strict=True):
                dst.moving_mean.assign(src.moving_mean)
                dst.moving_variance.assign(src.moving_variance)
        # the next size's copy starts from these statistics
    for b, m in zip(bns, saved, strict=True):
        b.momentum = m
    predictor._fns.clear()
    return k


def score(predictor, held, thresholds=THRESHOLDS) -> list[dict]:
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.ml.evaluate import pixel_counts, scores_of_counts

    out = []
    items = predictor.predict_many([e.path for e in held], batch_size=8)
    for entry, item in zip(held, items, strict=True):
        pred = item.prediction
        hgt, wid = pred.shape
        truth = rasterize(entry.regions, (wid, hgt))
        row = {"image": entry.filename, "source": str(entry.path.parent)}
        for t in (predictor.threshold, *thresholds):
            inter, nt, np_ = pixel_counts(truth, pred.probabilities >= t)
            row[f"{t:.3f}"] = float(scores_of_counts(inter, nt, np_)[0])
        row["stored"] = row[f"{predictor.threshold:.3f}"]
        out.append(row)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cv_dirs", nargs="+")
    ap.add_argument("--folds", default="0")
    ap.add_argument("--no-mirror", action="store_true")
    ap.add_argument("--only-size", action="store_true", help="re-estimate at the model's own size only")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from viaseg.core.imaging.imageio import read_image
    from viaseg.core.ml import tfsetup
    from viaseg.core.ml.predict import Predictor

    tfsetup.load_tf()
    entries, fold_of = fold_split(DATASETS)
    rows: list[dict] = []
    for f in [int(s) for s in args.folds.split(",")]:
        model_path = fold_model(args.cv_dirs, f)
        if model_path is None:
            print(f"fold {f}: no model in {args.cv_dirs}", file=sys.stderr)
            continue
        held = [e for e, fo in zip(entries, fold_of, strict=True) if fo == f]
        train = [e for e, fo in zip(entries, fold_of, strict=True) if fo != f]
        ref = Predictor.load(model_path, cache=False)
        before = score(ref, held)
        rec = Predictor.load(model_path, cache=False)
        t0 = time.perf_counter()
        images = [read_image(e.path)[..., :3] for e in train]
        sizes = [rec.input_hw] if args.only_size else None
        nb = recalibrate(rec, images, mirror=not args.no_mirror, scales=sizes)
        secs = time.perf_counter() - t0
        after = score(rec, held)
        print(
            f"fold {f}: {len(held)} held out, {len(train)} photos, {nb} batches, {secs:.0f} s",
            file=sys.stderr,
        )
        for b, a in zip(before, after, strict=True):
            rows.append({"fold": f, "threshold": ref.threshold, "before": b, "after": a})

    def mean(key, which, sub=None):
        vals = [r[which][key] for r in rows if sub is None or sub in r[which]["source"]]
        return round(statistics.mean(vals), 4) if vals else None

    diffs = [r["after"]["stored"] - r["before"]["stored"] for r in rows]
    res = {
        "photos": len(rows),
        "before_stored": mean("stored", "before"),
        "after_stored": mean("stored", "after"),
        "paired": round(statistics.mean(diffs), 4),
        "paired_se": round(statistics.stdev(diffs) / math.sqrt(len(diffs)), 4) if len(diffs) > 1 else None,
        "up": sum(d > 0.005 for d in diffs),
        "down": sum(d < -0.005 for d in diffs),
        "whole_cars": [mean("stored", "before", "extra"), mean("stored", "after", "extra")],
        "close_ups": [mean("stored", "before", "car-damage/"), mean("stored", "after", "car-damage/")],
        "sweep_before": {f"{t}": mean(f"{t:.3f}", "before") for t in THRESHOLDS},
        "sweep_after": {f"{t}": mean(f"{t:.3f}", "after") for t in THRESHOLDS},
        "thresholds": sorted({r["threshold"] for r in rows}),
    }
    print(json.dumps(res, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
