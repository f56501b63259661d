"""Benchmark: the annotate -> improve -> predict loop, simulated (issue 18).

    python tests/perf/bench_loop.py --json --base MODEL [--reference MODEL ...] [--rounds 3] [--per-round 10]
        [--steps 120] [--seeds 0 1 2] [--next-seeds 0] [--strategies next random]
        [--score typical|entropy|views|diverse|typical_doubt] [--lr LR] [--work DIR]
        [--resume EARLIER.json:ROUND] [--curves-from EARLIER.json ...]

A labeller starts from ``--base`` (the default model trained on car-damage, the close-ups:
``viaseg train ../shared/datasets/car-damage --out BASE --time-limit 600 --seed 0``). The pool is
car-damage-extra-split/train (100 whole-car photos; their annotations stand in for the user's corrections).
Each round adds ``--per-round`` photos chosen by *Label next* (``next``: in the app's order since the
thirty-seventh session, typical first, ``core.loop.rank_typical``; ``--score entropy`` the most uncertain first,
``core.loop.uncertainty``, the app's order before) or at random (``random``, one curve per seed), then runs *Improve model*
(``core.loop.ImproveJob``: fine-tune from the current model on car-damage/train plus the photos labelled so
far, the new ones drawn 3x as often). Its budget is ``--steps`` training steps (batch 8) rather than seconds,
so that other work on the machine changes the time, not the result; 120 steps is what 120 s buy on an idle
machine of this kind (0.79 s a step). After each round the model is scored at full resolution, as ``viaseg
evaluate`` does, on car-damage:val (train copies left out, 12 photos) and car-damage-extra-split:val (31).
The loop always continues from the new model; what the app's keep-the-better rule would have chosen (judged
on car-damage:val, the project's own validation split) is recorded per round.

Printed: per strategy the curve (photos labelled, CPU seconds, both scores), its area (mean score over the
rounds), ``extra_val_after_30``, ``car_val_after_30`` (Label next, the mean over ``--next-seeds``: its order
is the model's, the training seed changes the model), the random mean at 30, ``reference_extra_val_100``
(``--reference`` models, e.g. the documented command on car-damage + all 100 pool photos, scored the same way),
``photos_to_match_random_30`` (the first round at which Label next's mean reaches random order's mean at 30) and
``seconds_per_round``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared")) / "datasets"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_sets():
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.ml.evaluate import train_duplicates

    car = load_dataset(str(SHARED / "car-damage"))
    extra = load_dataset(str(SHARED / "car-damage-extra-split"))
    car_train = [e for e in car.splits["train"].entries if e.path.is_file()]
    dups = {id(e) for e in train_duplicates(car, car.splits["val"])}
    car_val = [e for e in car.splits["val"].entries if id(e) not in dups]
    pool = [e for e in extra.splits["train"].entries if e.regions]
    return car_train, car_val, pool, list(extra.splits["val"].entries)


def rank_next(
    model_path: str, candidates: list, score: str = "typical", labelled: list | None = None
) -> list:
    """The candidates in *Label next*'s order: ``typical`` (``core.loop.rank_typical``, the app's since the
    thirty-seventh session, ties by the entropy), ``entropy`` (``core.loop.uncertainty``, most uncertain first;
    one forward pass each, no averaging), ``views`` (``core.loop.view_disagreement``: the
    photo and its mirror image, at the network's input size) or ``diverse`` (the entropy's more uncertain half
    first, spread by ``core.loop.rank_diverse`` over the encoder's view of the photos, away from the
    ``labelled`` ones and from each other)."""
    import cv2
    from viaseg.core.ml.loop import (
        photo_embeddings,
        rank_diverse,
        rank_typical,
        rank_uncertain,
        uncertainty,
        view_disagreement,
    )
    from viaseg.core.ml.predict import _INTERP, Predictor, interactive

    pred = Predictor.load(model_path, cache=False)  # its settings change here: not the shared instance
    # the maps the app's Label next ranks by (one pass at 9/8 since the twenty-first session)
    interactive(pred)
    scores = {}
    if score == "views":
        pred.tta = False
        pred.scales = (1.0,)
        h, w = pred.input_hw
        for e in candidates:
            try:
                img, _, _ = pred._load(e.path)
            except Exception:  # an unreadable photo ranks last
                scores[e.filename] = -1.0
                continue
            x = cv2.resize(img, (w, h), interpolation=_INTERP[pred.resize])
            p = pred.predict_inputs(np.stack([x, x[:, ::-1]]))
            scores[e.filename] = view_disagreement(p[0], p[1][:, ::-1])
    else:
        for e, item in zip(candidates, pred.predict_many([e.path for e in candidates]), strict=True):
            scores[e.filename] = uncertainty(item.prediction.probabilities[::4, ::4]) if item.ok else -1.0
    if score in ("diverse", "typical", "typical_doubt"):
        emb = photo_embeddings(pred, [e.path for e in candidates])
        known = [
            v for v in photo_embeddings(pred, [e.path for e in labelled or []]).values() if v is not None
        ]
        by_file = {e.filename: emb[str(e.path)] for e in candidates}
        if score in ("typical", "typical_doubt"):
            order = rank_typical(
                by_file, np.stack(known) if known else None, scores, weighted=score == "typical_doubt"
            )
        else:
            order = rank_diverse(scores, by_file, np.stack(known) if known else None)
    else:
        order = rank_uncertain(scores)
    by_name = {e.filename: e for e in candidates}
    return [by_name[n] for n in order]


def improve(
    model: str,
    train: list,
    car_val: list,
    extra_val: list,
    out: Path,
    steps: int,
    seed: int,
    cache: Path,
    lr: float | None = None,
) -> dict:
    import keras
    from viaseg.core.ml import pipeline as P
    from viaseg.core.ml.loop import ImproveJob
    from viaseg.core.ml.train import preset

    job = ImproveJob(
        preset(
            "default",
            dataset=list(train),
            val=[car_val, extra_val],
            out_dir=out,
            init_from=model,
            seed=seed,
            cache_dir=cache,
            lr_schedule="flat_cosine",
        ),
        emphasis=3,
        learning_rate=lr,
    )
    tcfg, plan, _ = job.prepare()
    n = len(tcfg.dataset) + sum(len(x) for x in tcfg.extra_train)
    job.config.epochs = max(1, round(steps / P.steps_per_epoch(n, tcfg.batch_size)))
    c0, t0 = cpu_seconds(), time.perf_counter()
    res = job.run()
    if not res.ok:
        raise SystemExit(f"improve failed: {res.error}")
    car_row, extra_row = res.summary["val_sets"][:2]  # in the order given: car-damage:val, then extra val
    keras.backend.clear_session()
    return {
        "model": str(res.model_path),
        "epochs": res.summary["epochs_run"],
        "n_train_draws": n,
        "changed": len(plan.changed),
        "car_val": car_row["mean_dice"],
        "car_val_global": car_row["global_dice"],
        "extra_val": extra_row["mean_dice"],
        "extra_val_global": extra_row["global_dice"],
        "keep_rule": res.keep,
        "cpu_s": round(cpu_seconds() - c0, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def run_curve(
    strategy: str, seed: int, args, sets, work: Path, start: list[dict] | None = None
) -> list[dict]:
    """One curve of ``args.rounds`` rounds; ``start``: the rows of an earlier run's curve to go on from (its
    last model, every photo it chose counted as labelled), kept at the head of the returned rows."""
    car_train, car_val, pool, extra_val = sets
    model, labelled, rows = args.base, [], list(start or [])
    remaining = list(pool)
    rng = random.Random(seed)
    rng.shuffle(remaining)
    if rows:
        model = rows[-1]["model"]
        done = {n for r in rows for n in r["chosen"]}
        labelled = [e for e in pool if e.filename in done]
        remaining = [e for e in remaining if e.filename not in done]
    cpu_total = rows[-1]["cpu_total_s"] if rows else 0.0
    for k in range(len(rows), len(rows) + args.rounds):
        c0 = cpu_seconds()
        if strategy == "next":
            remaining = rank_next(model, remaining, args.score, car_train + labelled)
        chosen, remaining = remaining[: args.per_round], remaining[args.per_round :]
        labelled += chosen
        rank_cpu = cpu_seconds() - c0
        row = improve(
            model,
            car_train + labelled,
            car_val,
            extra_val,
            work / f"{strategy}-s{seed}-r{k + 1}",
            args.steps,
            seed,
            work / "cache",
            args.lr,
        )
        cpu_total += rank_cpu + row["cpu_s"]
        row.update(
            round=k + 1,
            photos=len(labelled),
            rank_cpu_s=round(rank_cpu, 1),
            cpu_total_s=round(cpu_total, 1),
            chosen=[e.filename for e in chosen],
        )
        rows.append(row)
        model = row["model"]
        print(
            json.dumps(
                {"strategy": strategy, "seed": seed, **{k2: v for k2, v in row.items() if k2 != "chosen"}}
            ),
            file=sys.stderr,
            flush=True,
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the starting model (trained on car-damage)")
    ap.add_argument(
        "--reference", nargs="*", default=[], help="models trained on car-damage + all 100 pool photos"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument(
        "--steps", type=int, default=120, help="training steps per Improve (120 ~ 120 s idle here)"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="random-order seeds")
    ap.add_argument(
        "--next-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="training seeds of the Label next curves (the order is the model's; the keys average them)",
    )
    ap.add_argument("--strategies", nargs="+", default=["next", "random"], choices=["next", "random"])
    ap.add_argument("--work", default="/tmp/viaseg-bench-loop")
    ap.add_argument(
        "--score",
        choices=("typical", "entropy", "views", "diverse", "typical_doubt"),
        default="typical",
        help="Label next's score: typical (the app's; the photos that best stand for the pool, each next one for "
        "what the chosen and labelled leave uncovered: core.loop.rank_typical), entropy (most uncertain first, "
        "the app's until the thirty-seventh session), views (mirror-view disagreement), diverse (the more "
        "uncertain half by entropy, spread over unlike photos by the encoder's features) or typical_doubt (typical "
        "first, each photo's standing for another weighted by that one's entropy)",
    )
    ap.add_argument(
        "--lr", type=float, default=None, help="Improve's peak learning rate (default: ImproveJob's own)"
    )
    ap.add_argument(
        "--resume",
        metavar="JSON:ROUND",
        help="go on from an earlier run's printed JSON: each curve run here starts from that run's curve of the "
        "same name after ROUND rounds (its model and its photos), then adds --rounds rounds of --per-round "
        "photos (e.g. a 5-photo round after 20 photos, between the 10-photo rounds)",
    )
    ap.add_argument(
        "--curves-from",
        nargs="*",
        default=[],
        help="earlier runs' printed JSON whose curves not run here join the summary (e.g. the random-order curves "
        "that photos_to_match_random_30 compares with)",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--smoke", action="store_true", help="3 photos per validation set, 8 in the pool (a check)"
    )
    args = ap.parse_args(argv)
    if not (SHARED / "car-damage-extra-split").is_dir():
        print(f"skipped: {SHARED} has no car-damage / car-damage-extra-split", file=sys.stderr)
        return 0
    from viaseg.core.ml.loop import score_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sets = load_sets()
    if args.smoke:
        sets = (sets[0], sets[1][:3], sets[2][:8], sets[3][:3])
    t0 = time.perf_counter()
    base_scores = {
        "car_val": score_model(args.base, sets[1])["mean_dice"],
        "extra_val": score_model(args.base, sets[3])["mean_dice"],
    }
    start: dict[str, list] = {}
    if args.resume:
        file, _, k = args.resume.rpartition(":")
        start = {n: rows[: int(k)] for n, rows in json.loads(Path(file).read_text())["curves"].items()}
    curves: dict[str, list] = {}
    for strategy in args.strategies:
        for seed in args.next_seeds if strategy == "next" else args.seeds:
            name = f"{strategy}-s{seed}"
            if args.resume and name not in start:
                raise SystemExit(f"{args.resume}: no curve {name} to go on from")
            curves[name] = run_curve(strategy, seed, args, sets, work, start.get(name))
    for file in args.curves_from:
        for n, rows in json.loads(Path(file).read_text())["curves"].items():
            curves.setdefault(n, rows)
    refs = [score_model(m, sets[3])["mean_dice"] for m in args.reference]

    def at(name: str, photos: int, key: str):
        return next((r[key] for r in curves.get(name, []) if r["photos"] == photos), None)

    def area(rows, key):
        return round(sum(r[key] for r in rows) / len(rows), 4) if rows else None

    last = max((r["photos"] for rows in curves.values() for r in rows), default=0)

    def mean_of(strategy, photos, key="extra_val"):
        vals = [at(n, photos, key) for n in curves if n.startswith(strategy + "-")]
        vals = [v for v in vals if v is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    def random_mean(photos, key="extra_val"):
        return mean_of("random", photos, key)

    target = random_mean(30)
    match = None
    if target is not None:
        steps = sorted({r["photos"] for n, rows in curves.items() if n.startswith("next-") for r in rows})
        match = next((p for p in steps if (mean_of("next", p) or -1.0) >= target), None)
    rounds = [r for rows in curves.values() for r in rows]
    out = {
        "base": args.base,
        "base_scores": base_scores,
        "steps_per_round": args.steps,
        "learning_rate": args.lr,
        "label_next_score": args.score,
        "per_round": args.per_round,
        "extra_val_after_30": mean_of("next", 30),
        "car_val_after_30": mean_of("next", 30, "car_val"),
        "label_next_seeds": args.next_seeds,
        "random_extra_val_after_30": target,
        "random_car_val_after_30": random_mean(30, "car_val"),
        "reference_extra_val_100": round(sum(refs) / len(refs), 4) if refs else None,
        "reference_models": dict(zip(args.reference, refs, strict=True)),
        "photos_to_match_random_30": match,
        "seconds_per_round": round(sum(r["wall_s"] + r["rank_cpu_s"] for r in rounds) / len(rounds), 1)
        if rounds
        else None,
        "cpu_seconds_per_round": round(sum(r["cpu_s"] + r["rank_cpu_s"] for r in rounds) / len(rounds), 1)
        if rounds
        else None,
        "areas": {
            n: {"extra_val": area(rows, "extra_val"), "car_val": area(rows, "car_val")}
            for n, rows in curves.items()
        },
        "curves": curves,
        "last_photos": last,
        "total_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out, indent=2 if not args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
