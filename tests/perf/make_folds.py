"""Write the fold list of ``viaseg crossval`` without training: a ``crossval.json`` holding, for every annotated
photo of the given datasets, its source and fold (as ``viaseg crossval DATASET ... --folds K --seed S`` divides
them: by image, duplicates in the same fold). The click-network experiments (``exp_clicknet.py --no-map``,
``exp_push_shape.py``) read folds from such a file when they need no out-of-fold maps:

    python tests/perf/make_folds.py ../shared/datasets/car-damage:train \
        ../shared/datasets/car-damage-extra-split/train:train --out FOLDS_DIR

Prints the photos per fold. (Twenty-seventh session: the 149 training photos, fold 0 the same 30 photos as the
sessions' ``viaseg crossval ... --only-folds 0 --seed 0`` runs.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("datasets", nargs="+", metavar="DATASET:SPLIT")
    ap.add_argument("--out", required=True, help="a folder; crossval.json is written in it")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.checks.check_copies import duplicate_groups
    from viaseg.core.ml.crossval import _annotated, assign_folds

    sources = []
    for spec in args.datasets:
        root, split = spec.rsplit(":", 1)
        sources.append((spec, list(load_dataset(root).split(split).entries)))
    entries, src_idx, skipped = _annotated(sources, False)
    folds = assign_folds(src_idx, groups=duplicate_groups(entries, decode=True), k=args.folds, seed=args.seed)
    rows = [
        # map_path: the experiments take a photo only where its row names a map; with --no-map none is read
        {"image": e.filename, "source": args.datasets[k], "fold": f, "map_path": "none"}
        for e, k, f in zip(entries, src_idx, folds, strict=True)
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossval.json").write_text(json.dumps({"per_image": rows, "skipped": skipped}, indent=1))
    print(json.dumps({"photos": len(rows), "per_fold": [folds.count(i) for i in range(args.folds)]}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
