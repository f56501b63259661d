"""What *Label next*'s order costs in the app, after *Predict all*: the background job that asks the model's
encoder for each photo's features (``core.ml.loop.photo_embeddings`` with the app's predictor,
``core.ml.predict.interactive``), then ``core.ml.loop.rank_typical`` on the GUI thread.

    python tests/perf/bench_label_next.py --model RUN/model.keras [--pool DATASET:split] [--covered DATASET:split]
        [--json]

Defaults: the pool is ``../shared/datasets/car-damage-extra-split:train`` (100 whole-car photos, as if unlabelled)
and the covered photos ``../shared/datasets/car-damage:train`` (49 annotated close-ups). Prints
``{"photos", "covered", "features_s", "features_ms_per_photo", "order_ms", "first"}``: the features job's wall
time for the pool and covered photos together, and the ordering's. Run it alone: it is a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def _paths(spec: str) -> list[str]:
    from viaseg.core.annotation.dataset import load_dataset

    folder, _, split = spec.rpartition(":")
    ds = load_dataset(folder)
    return [str(e.path) for e in ds.split(split).entries if e.path.is_file()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--pool", default=str(SHARED / "car-damage-extra-split") + ":train")
    ap.add_argument("--covered", default=str(SHARED / "car-damage") + ":train")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not SHARED.is_dir() and (args.pool.startswith(str(SHARED)) or args.covered.startswith(str(SHARED))):
        print(f"skipped: {SHARED} is absent", file=sys.stderr)
        return 0
    from viaseg.core.ml.loop import photo_embeddings, rank_typical
    from viaseg.core.ml.predict import Predictor, interactive
    from viaseg.core.ml.tfsetup import interactive_threads

    interactive_threads()
    pred = interactive(Predictor.load(args.model))
    pool, covered = _paths(args.pool), _paths(args.covered)
    photo_embeddings(pred, pool[:2])  # traces the encoder once, as the app's first order does too
    t0 = time.perf_counter()
    vectors = photo_embeddings(pred, pool + covered)
    features_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    known = [vectors[p] for p in covered if vectors.get(p) is not None]
    order = rank_typical({p: vectors[p] for p in pool}, np.stack(known) if known else None)
    order_ms = (time.perf_counter() - t0) * 1000
    out = {
        "photos": len(pool),
        "covered": len(covered),
        "features_s": round(features_s, 2),
        "features_ms_per_photo": round(1000 * features_s / max(1, len(pool) + len(covered)), 1),
        "order_ms": round(order_ms, 1),
        "first": [Path(p).name for p in order[:5]],
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
