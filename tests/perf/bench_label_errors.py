"""Benchmark: how well out-of-fold predictions find label errors, against in-sample ones.

    python tests/perf/bench_label_errors.py --json [--epochs 15 | --time-limit 120] [--folds 5] [--seed 0]
        [--keep DIR] [--no-in-sample] [--predict-scales 1,1.25]
    python tests/perf/bench_label_errors.py --json --rerank DIR      # every rule again on a kept run, no training

A seeded copy of car-damage/train gets injected errors: 10 % of the regions deleted, 10 % of the images given a
spurious region, 10 % of the polygons shifted by 30 % of their size. Images are then ranked for review two ways:

* out of fold: ``viaseg crossval`` (K models, each image predicted by the one that never saw it), as *Check
  labels* does;
* in sample: one model trained on every image predicts the same images (what *Predict all* gives).

Each ranking rule of ``core.checks.label_errors`` (``RULES``: the Dice, or the disagreeing pixels weighed by the
model's confidence) orders both. Printed: ``recall_at_20pct`` (the issue's measure: the share of the injected
errors whose image is in the first 20 % of the order; an image with two errors counts twice),
``recall_ceiling`` (the best any order of images can reach: the 20 % with the most errors first),
``image_recall_at_20pct`` and its ceiling (with more images hurt than 20 % of the set, not all can be first),
``precision_top10``, recall per kind of error, the same ``*_in_sample``, for the app's rule (``DEFAULT_RULE``),
then every rule under ``by_rule``. ``--keep DIR`` keeps the photos, maps and models so that ``--rerank DIR``
can score rules again without training. ``both/RULE``: images ordered by the sum of their out-of-fold and
in-sample scores (two models' views of each image: one that never saw it, one that trained on it briefly)."""

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


def inject(entries, seed: int) -> list[tuple[str, str]]:
    """Change the annotations of ``entries`` in place; return each injected error as (image name, kind)."""
    from viaseg.core.annotation.project import Region

    rng = random.Random(seed)
    errors: list[tuple[str, str]] = []
    polys = [(e, r) for e in entries for r in e.regions if r.shape.get("name") == "polygon"]
    for e, r in rng.sample(polys, max(1, len(polys) // 10)):  # shifted by 30 % of the region's size
        xs, ys = r.shape["all_points_x"], r.shape["all_points_y"]
        dx = 0.3 * (max(xs) - min(xs)) * rng.choice((-1, 1))
        dy = 0.3 * (max(ys) - min(ys)) * rng.choice((-1, 1))
        r.shape = dict(
            r.shape, all_points_x=[round(x + dx) for x in xs], all_points_y=[round(y + dy) for y in ys]
        )
        errors.append((e.filename, "shifted"))
    regions = [(e, r) for e in entries for r in e.regions]
    for e, r in rng.sample(regions, max(1, len(regions) // 10)):  # deleted
        if r in e.regions:
            e.regions.remove(r)
            errors.append((e.filename, "deleted"))
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
        errors.append((e.filename, "spurious"))
    return errors


def scores_of(order: list[str], errors: list[tuple[str, str]]) -> dict:
    """``recall_at_20pct``: the share of the injected errors whose image is in the first 20 % of ``order`` (the
    issue's measure: errors found, an image with two errors counts twice); ``image_recall_at_20pct``: the share
    of the images with an error there, with its ceiling (the first 20 % may hold fewer images than have
    errors); ``precision_top10``: images with an error among the first 10."""
    k = max(1, round(0.2 * len(order)))
    top, hurt = set(order[:k]), {name for name, _ in errors}
    per_image = sorted((sum(n == name for n, _ in errors) for name in hurt), reverse=True)
    return {
        "recall_at_20pct": round(sum(name in top for name, _ in errors) / max(1, len(errors)), 3),
        # the best any order of images can do: the k images with the most errors first
        "recall_ceiling": round(sum(per_image[:k]) / max(1, len(errors)), 3),
        "image_recall_at_20pct": round(len(top & hurt) / max(1, len(hurt)), 3),
        "image_recall_ceiling": round(min(k, len(hurt)) / max(1, len(hurt)), 3),
        "precision_top10": round(len(set(order[:10]) & hurt) / 10, 3),
        "recall_at_20pct_by_kind": {
            kind: round(sum(name in top for name, k2 in errors if k2 == kind) / n, 3)
            for kind in ("deleted", "spurious", "shifted")
            if (n := sum(k2 == kind for _, k2 in errors))
        },
    }


def located_errors(kept: Path, entries: dict) -> list[tuple[str, str, object]]:
    """The injected errors of a ``--keep`` run with where they are: (image name, kind, the error's mask at the
    photo's size), found by comparing the run's annotations with car-damage/train's (a deleted region, a new
    square, a polygon moved: both its places)."""
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.imaging.imageio import image_size

    orig = {e.filename: e for e in next(iter(load_dataset(DATA).splits.values())).entries}
    out: list[tuple[str, str, object]] = []

    def key(r) -> str:
        return json.dumps(r.shape, sort_keys=True)

    for name, e in entries.items():
        o = orig.get(name)
        if o is None:
            continue
        size = image_size(e.path)
        now, before = {key(r) for r in e.regions}, {key(r) for r in o.regions}
        gone = [r for r in o.regions if key(r) not in now]
        new = [r for r in e.regions if key(r) not in before]
        for r in new:
            xs = r.shape.get("all_points_x", [])
            twin = next((g for g in gone if len(g.shape.get("all_points_x", [])) == len(xs)), None)
            square = len(xs) == 4 and xs[0] == xs[3] and xs[1] == xs[2]
            if twin is not None and not square:
                out.append((name, "shifted", (rasterize([r], size) > 0) | (rasterize([twin], size) > 0)))
                gone.remove(twin)
            else:
                out.append((name, "spurious", rasterize([r], size) > 0))
        out += [(name, "deleted", rasterize([g], size) > 0) for g in gone]
    return out


# a fixed number of areas to look at (about a fifth of the areas car-damage/train's 49 photos had at the model's
# threshold): a rule or threshold that lists more areas must not win by being given a longer look
AREAS_LOOKED_AT = 40


def area_scores_of(areas: list, located: list) -> dict:
    """Every photo's disagreement areas in one list, worst first (``areas``: (score, image, Disagreement));
    ``recall_at_20pct``: the share of the injected errors (``located``) that an area among the first 20 % of
    the list covers (overlap at least a tenth of the smaller of the two); ``precision_top10``: the share of the
    first 10 areas on an error."""
    import cv2
    import numpy as np

    areas = sorted(areas, key=lambda a: (-a[0], a[1], a[2].bbox))
    k = max(1, round(0.2 * len(areas)))

    def hits(area, err) -> bool:
        _, name, d = area
        if name != err[0]:
            return False
        m = np.zeros(err[2].shape, np.uint8)
        if d.polygon:
            cv2.fillPoly(m, [np.round(np.asarray(d.polygon)).astype(np.int32)], 1)
        else:
            x, y, w, h = d.bbox
            m[y : y + h, x : x + w] = 1
        both = int(np.count_nonzero(m.astype(bool) & err[2]))
        return both >= 0.1 * max(1, min(int(m.sum()), int(err[2].sum())))

    found = [any(hits(a, e) for a in areas[:k]) for e in located]
    return {
        "recall_at_20pct": round(sum(found) / max(1, len(located)), 3),
        # the same effort whatever the number of areas: the first AREAS_LOOKED_AT areas
        f"recall_at_{AREAS_LOOKED_AT}_areas": round(
            sum(any(hits(a, e) for a in areas[:AREAS_LOOKED_AT]) for e in located) / max(1, len(located)), 3
        ),
        "errors_located": len(located),
        "areas": len(areas),
        "areas_reviewed": k,
        "recall_any_area": round(
            sum(any(hits(a, e) for a in areas) for e in located) / max(1, len(located)), 3
        ),
        "precision_top10": round(sum(any(hits(a, e) for e in located) for a in areas[:10]) / 10, 3),
        "recall_at_20pct_by_kind": {
            kind: round(sum(f for f, e in zip(found, located, strict=True) if e[1] == kind) / n, 3)
            for kind in ("deleted", "spurious", "shifted")
            if (n := sum(e[1] == kind for e in located))
        },
    }


def fold_thresholds(kept: Path) -> tuple[dict[int, float], float]:
    """The threshold each fold's model chose (its ``summary.json``: the one ``crossval`` drew its areas at), and
    the in-sample model's; 0.5 where a run has none."""

    def of(summary: Path) -> float:
        try:
            return float(json.loads(summary.read_text()).get("threshold") or 0.5)
        except (OSError, ValueError):
            return 0.5

    cv = json.loads((kept / "cv" / "crossval.json").read_text())
    by_fold = {
        int(r["fold"]): of(kept / "cv" / r["run_dir"] / "summary.json") for r in cv.get("fold_runs", [])
    }
    return by_fold, of(kept / "all" / "summary.json")


def stored_areas(kept: Path) -> list:
    """The areas ``crossval.json`` lists for each photo, with the scores it stored: what the *Check labels*
    panel's areas order shows, as (score, image, Disagreement)."""
    from viaseg.core.checks.label_errors import Disagreement

    out = []
    for row in json.loads((kept / "cv" / "crossval.json").read_text())["per_image"]:
        for d in row.get("disagreements") or []:
            poly = [(float(x), float(y)) for x, y in d.get("polygon") or []]
            dis = Disagreement(
                d["kind"],
                int(d["area"]),
                tuple(d["bbox"]),
                poly,
                float(d.get("confidence", 0.0)),
                float(d.get("score", 0.0)),
            )
            out.append((dis.score, row["image"], dis))
    return out


def rankings(kept: Path) -> dict[str, dict]:
    """Every ranking rule of ``label_errors`` over the maps a ``--keep`` run left in ``kept``: out of fold and
    in sample, scored against the injected errors (no training: the maps are files). Each map is read at the
    threshold its model chose (a fold's calibration), as ``crossval`` does; ``out_of_fold/as_stored`` scores the
    areas ``crossval.json`` itself lists (the panel's order), ``.../RULE@0.5`` the maps at 0.5."""
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.checks.label_errors import (
        AREA_RULES,
        EXTRA_THRESHOLD,
        RULES,
        disagreements,
        error_score,
        listed,
    )
    from viaseg.core.ml.crossval import MAX_LISTED, load_map

    errors = [tuple(e) for e in json.loads((kept / "errors.json").read_text())]
    ds = load_dataset(kept / "train")
    entries = {e.filename: e for e in next(iter(ds.splits.values())).entries if e.path.is_file()}
    oof = json.loads((kept / "cv" / "crossval.json").read_text())["per_image"]
    by_fold, in_sample_threshold = fold_thresholds(kept)
    maps = {
        "out_of_fold": {
            row["image"]: (kept / "cv" / row["map_path"], by_fold.get(int(row.get("fold", -1)), 0.5))
            for row in oof
        },
        "in_sample": {
            name: (kept / "in_sample" / (name.replace("/", "_") + ".png"), in_sample_threshold)
            for name in entries
        },
    }
    located = located_errors(kept, entries)
    out: dict[str, dict] = {}
    score: dict[str, dict[str, dict[str, float]]] = {}
    for how, paths in maps.items():
        evidence = {}
        for name, (path, thr) in paths.items():
            if name not in entries or not Path(path).is_file():
                continue
            probs = load_map(path)
            truth = rasterize(entries[name].regions, (probs.shape[1], probs.shape[0]))
            evidence[name] = (truth, probs, thr)
        if not evidence:  # no in-sample model (--no-in-sample)
            continue
        for rule in RULES:
            s = {n: error_score(rule, t, p, thr) for n, (t, p, thr) in evidence.items()}
            tie = {n: error_score("confident_area", t, p, thr) for n, (t, p, thr) in evidence.items()}
            out[f"{how}/{rule}"] = scores_of(sorted(s, key=lambda n: (-s[n], -tie[n], n)), errors)
            score.setdefault(rule, {})[how] = s
        # every photo's areas in one list (the panel's "areas" order)
        # (a region shifted and then deleted by the injection is one deleted region in the annotations: the
        # located errors can be one fewer than the injected ones; ``errors_located`` says how many)
        if located:
            for rule in AREA_RULES:
                for look, tag, fixed in (
                    (EXTRA_THRESHOLD, "", None),
                    (None, "@threshold", None),
                    (EXTRA_THRESHOLD, "@0.5", 0.5),
                ):
                    areas = [
                        (d.score, n, d)
                        for n, (t, p, thr) in evidence.items()
                        # what crossval.json keeps
                        for d in listed(
                            disagreements(t, p, fixed or thr, rule=rule, extra_threshold=look), MAX_LISTED
                        )
                    ]
                    out[f"{how}/{rule}{tag}"] = area_scores_of(areas, located)
    if located:
        out["out_of_fold/as_stored"] = area_scores_of(stored_areas(kept), located)
    # both views at once: the sum of the out-of-fold and the in-sample score of each image
    for rule, by in score.items():
        names = set(by.get("out_of_fold", {})) & set(by.get("in_sample", {}))
        total = {n: by["out_of_fold"][n] + by["in_sample"][n] for n in names}
        if total:
            out[f"both/{rule}"] = scores_of(sorted(total, key=lambda n: (-total[n], n)), errors)
    out["thresholds"] = {"folds": by_fold, "in_sample": in_sample_threshold}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    # the defaults are the app's: Check labels trains 5 folds of 120 s unless the user changes them
    ap.add_argument("--time-limit", type=float, default=120, help="seconds of training per model")
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="train each model for this many epochs (rate annealed over them, final weights kept) "
        "instead of --time-limit seconds: other work on the machine then changes the time only",
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--no-in-sample",
        action="store_true",
        help="skip the in-sample model (one more training on all photos): out-of-fold numbers only",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--predict-scales",
        type=lambda v: tuple(float(x) for x in v.split(",")),
        default=None,
        help="sizes each out-of-fold map averages, e.g. 1,1.25 (default: Check labels' own, CHECK_SCALES)",
    )
    ap.add_argument(
        "--keep", type=Path, default=None, help="keep the work folder here (maps, injected errors, models)"
    )
    ap.add_argument(
        "--rerank",
        type=Path,
        default=None,
        help="no training: score every ranking rule on the maps a --keep run left in this folder",
    )
    args = ap.parse_args(argv)
    if args.rerank:
        out = summarize(rankings(args.rerank), json.loads((args.rerank / "run.json").read_text()))
        print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
        return 0
    if not DATA.exists():
        print(json.dumps({"skipped": f"{DATA} not found"}))
        return 0
    t0 = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run = build(args, args.keep)
        by_rule = rankings(args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run = build(args, Path(tmp))
            by_rule = rankings(Path(tmp))
    run["seconds"] = round(time.perf_counter() - t0, 1)
    if args.keep:
        (args.keep / "run.json").write_text(json.dumps(run))
    out = summarize(by_rule, run)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def build(args, work: Path) -> dict:
    """Inject the errors into a copy of car-damage/train in ``work``, run the K-fold check (``work/cv``) and
    one model on every image, whose maps go to ``work/in_sample``. Returns the run's settings and counts."""
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.formats.via_io import save_via
    from viaseg.core.ml.check_labels import CHECK_SCALES
    from viaseg.core.ml.crossval import _save_map, crossval
    from viaseg.core.ml.predict import Predictor
    from viaseg.core.ml.presets import preset
    from viaseg.core.ml.train import train

    folder = work / "train"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(DATA, folder)
    ds = load_dataset(folder)
    split = next(iter(ds.splits.values()))
    entries = [e for e in split.entries if e.path.is_file()]
    errors = inject(entries, args.seed)
    (work / "errors.json").write_text(json.dumps(errors))
    save_via(split.project, folder / "via_region_data.json")
    entries = [e for e in load_dataset(folder).splits[split.name].entries if e.path.is_file()]
    budget = (
        dict(epochs=args.epochs, lr_schedule="flat_cosine", keep="last", patience=10_000)
        if args.epochs
        else dict(time_limit_s=args.time_limit)
    )
    cfg = preset("default", seed=args.seed, sample_every=0, **budget)
    scales = CHECK_SCALES if args.predict_scales is None else args.predict_scales
    crossval(
        cfg,
        [("car-damage-with-errors", entries)],
        work / "cv",
        folds=args.folds,
        predict_scales=scales,
    )
    run = {
        "images": len(entries),
        "images_with_errors": len({name for name, _ in errors}),
        "errors": len(errors),
        "time_limit_s_per_model": None if args.epochs else args.time_limit,
        "epochs": args.epochs,
        "folds": args.folds,
        "seed": args.seed,
        "predict_scales": list(scales),
    }
    if args.no_in_sample:
        return run
    full = train(
        preset(
            "default",
            dataset=entries,
            val=entries,
            out_dir=work / "all",
            seed=args.seed,
            sample_every=0,
            **budget,
        )
    )
    if full.ok and full.model_path is not None:
        predictor = Predictor.load(full.model_path)
        items = predictor.predict_many([e.path for e in entries])
        for entry, item in zip(entries, items, strict=True):
            if item.prediction is not None:
                _save_map(
                    work / "in_sample" / (entry.filename.replace("/", "_") + ".png"),
                    item.prediction.probabilities,
                )
    return run


def summarize(by_rule: dict[str, dict], run: dict) -> dict:
    """The app's rule (``label_errors.DEFAULT_RULE``) as the headline, out of fold and in sample, then every
    rule."""
    from viaseg.core.checks.label_errors import AREA_RULE, DEFAULT_RULE

    out = dict(run)
    out["thresholds"] = by_rule.pop("thresholds", None)
    out.update(by_rule.get(f"out_of_fold/{DEFAULT_RULE}", {}))
    out.update({f"{k}_in_sample": v for k, v in by_rule.get(f"in_sample/{DEFAULT_RULE}", {}).items()})
    out["rule"] = DEFAULT_RULE
    # the panel's "areas" order: every photo's disagreement areas in one list, worst first
    # out of fold: the areas crossval.json lists, as the panel shows them (each at its fold's threshold);
    # "_at_0.5": the same rule with every map read at 0.5 (what this benchmark reported until the
    # thirty-first session)
    for key, suffix in (
        ("out_of_fold/as_stored", ""),
        (f"out_of_fold/{AREA_RULE}@0.5", "_at_0.5"),
        (f"in_sample/{AREA_RULE}", "_in_sample"),
    ):
        a = by_rule.get(key, {})
        if a:
            out[f"area_recall_at_20pct{suffix}"] = a["recall_at_20pct"]
            out[f"area_recall_at_{AREAS_LOOKED_AT}_areas{suffix}"] = a[f"recall_at_{AREAS_LOOKED_AT}_areas"]
            out[f"area_precision_top10{suffix}"] = a["precision_top10"]
            out[f"areas_reviewed{suffix}"] = f"{a['areas_reviewed']} of {a['areas']}"
            out[f"errors_located{suffix}"] = a["errors_located"]
    out["area_rule"] = AREA_RULE
    out["by_rule"] = by_rule
    return out


if __name__ == "__main__":
    sys.exit(main())
