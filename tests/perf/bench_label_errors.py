"""Benchmark: how well out-of-fold predictions find label errors, against in-sample ones.

    python tests/perf/bench_label_errors.py --json [--time-limit 60] [--folds 5] [--seed 0]

A seeded copy of car-damage/train gets injected errors: 10 % of the regions deleted, 10 % of the images given a
spurious region, 10 % of the polygons shifted by 30 % of their size. Images are then ranked worst first
(``label_errors.rank``: lowest Dice, then the larger disagreement) two ways:

* out of fold: ``viaseg crossval`` (K models, each image predicted by the one that never saw it);
* in sample: one model trained on every image scores the same images (what *Predict all* does today).

Printed: ``recall_at_20pct`` (share of the images with an injected error found in the first 20 % of the ranking),
``precision_top10``, the same ``*_in_sample``, the counts, and the time. Photos are copied to a temp folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared")) / "datasets" / "car-damage" / "train"


def inject(entries, seed: int) -> set[str]:
    """Change the annotations of ``entries`` in place; return the names of the images that got an error."""
    from viaseg.core.annotation.project import Region

    rng = random.Random(seed)
    hurt: set[str] = set()
    polys = [(e, r) for e in entries for r in e.regions if r.shape.get("name") == "polygon"]
    for e, r in rng.sample(polys, max(1, len(polys) // 10)):  # shifted by 30 % of the region's size
        xs, ys = r.shape["all_points_x"], r.shape["all_points_y"]
        dx = 0.3 * (max(xs) - min(xs)) * rng.choice((-1, 1))
        dy = 0.3 * (max(ys) - min(ys)) * rng.choice((-1, 1))
        r.shape = dict(
            r.shape, all_points_x=[round(x + dx) for x in xs], all_points_y=[round(y + dy) for y in ys]
        )
        hurt.add(e.filename)
    regions = [(e, r) for e in entries for r in e.regions]
    for e, r in rng.sample(regions, max(1, len(regions) // 10)):  # deleted
        if r in e.regions:
            e.regions.remove(r)
            hurt.add(e.filename)
    from viaseg.core.imaging.imageio import image_size

    for e in rng.sample(entries, max(1, len(entries) // 10)):  # a spurious region
        w, h = image_size(e.path)
        s = 0.15 * min(w, h)
        cx, cy = rng.uniform(s, w - s), rng.uniform(s, h - s)
        xs = [round(cx - s), round(cx + s), round(cx + s), round(cx - s)]
        ys = [round(cy - s), round(cy - s), round(cy + s), round(cy + s)]
        e.regions.append(
            Region({"name": "polygon", "all_points_x": xs, "all_points_y": ys}, {"name": "damage"})
        )
        hurt.add(e.filename)
    return hurt


def scores_of(order: list[str], hurt: set[str]) -> dict:
    k = max(1, round(0.2 * len(order)))
    return {
        "recall_at_20pct": round(len(set(order[:k]) & hurt) / max(1, len(hurt)), 3),
        "precision_top10": round(len(set(order[:10]) & hurt) / 10, 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--time-limit", type=float, default=60, help="seconds of training per model")
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="train each model for this many epochs (rate annealed over them, final weights kept) "
        "instead of --time-limit seconds: other work on the machine then changes the time only",
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(json.dumps({"skipped": f"{DATA} not found"}))
        return 0
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.formats.via_io import save_via
    from viaseg.core.checks.label_errors import rank
    from viaseg.core.ml.crossval import crossval
    from viaseg.core.ml.evaluate import evaluate
    from viaseg.core.ml.predict import Predictor
    from viaseg.core.ml.presets import preset
    from viaseg.core.ml.train import train

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "train"
        shutil.copytree(DATA, folder)
        ds = load_dataset(folder)
        split = next(iter(ds.splits.values()))
        entries = [e for e in split.entries if e.path.is_file()]
        hurt = inject(entries, args.seed)
        save_via(split.project, folder / "via_region_data.json")
        entries = [e for e in load_dataset(folder).splits[split.name].entries if e.path.is_file()]
        budget = (
            dict(epochs=args.epochs, lr_schedule="flat_cosine", keep="last", patience=10_000)
            if args.epochs
            else dict(time_limit_s=args.time_limit)
        )
        cfg = preset("default", seed=args.seed, sample_every=0, **budget)
        res = crossval(cfg, [("car-damage-with-errors", entries)], Path(tmp) / "cv", folds=args.folds)
        oof = {s.image: s.dice for s in res.per_image}
        area = {s.image: sum(d["area"] for d in s.disagreements) for s in res.per_image}
        out = {"images": len(entries), "images_with_errors": len(hurt), **scores_of(rank(oof, area), hurt)}
        full = train(
            preset(
                "default",
                dataset=entries,
                val=entries,
                out_dir=Path(tmp) / "all",
                seed=args.seed,
                sample_every=0,
                **budget,
            )
        )
        if full.ok:
            ev = evaluate(Predictor.load(full.model_path), entries)
            inside = {s.image: s.dice for s in ev.per_image}
            out.update({f"{k}_in_sample": v for k, v in scores_of(rank(inside), hurt).items()})
    out.update(
        {
            "time_limit_s_per_model": None if args.epochs else args.time_limit,
            "epochs": args.epochs,
            "folds": args.folds,
            "seed": args.seed,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    )
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
