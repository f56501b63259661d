"""Experiment (issue 16): several shorter runs averaged against one long run, out of fold.

The same time buys one 600-s model or two 300-s ones; averaging models (a deep ensemble) usually gains more than
a model's second five minutes do (+0.025 on the validation sets here, the time-to-quality table). Each
``--members`` folder is a ``viaseg crossval --only-folds F`` run of the same fold (same division into folds:
``--fold-seed`` 0), different seeds or budgets; the fold's held-out photos are predicted by each member as
``viaseg evaluate`` does, the probability maps averaged, and scored (hard Dice per photo at full resolution) at
the members' mean calibrated threshold and over a sweep, paired per photo against ``--reference`` (a crossval
folder of the same fold, e.g. the 600-s default: its own per-photo scores and ``oof_maps``).

    python tests/perf/exp_ensemble.py --fold 0 --members CV300_S0 CV300_S1 --reference CV600 --json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exp_bn_recal import DATASETS, fold_split

THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--members", nargs="+", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.ml.crossval import load_map
    from viaseg.core.ml.evaluate import pixel_counts, scores_of_counts
    from viaseg.core.ml.predict import Predictor

    f = args.fold
    entries, fold_of = fold_split(DATASETS)
    held = [e for e, fo in zip(entries, fold_of, strict=True) if fo == f]
    preds = [Predictor.load(Path(m) / f"fold_{f}" / "model.keras", cache=False) for m in args.members]
    thr = float(np.mean([p.threshold for p in preds]))
    ref = json.loads((Path(args.reference) / "crossval.json").read_text())
    ref_thr = json.loads((Path(args.reference) / f"fold_{f}" / "summary.json").read_text()).get(
        "threshold", 0.5
    )
    ref_rows = {(x["image"], "extra" in x["source"]): x for x in ref["per_image"] if x["fold"] == f}

    def dice(truth, p, t):
        return float(scores_of_counts(*pixel_counts(truth, p >= t))[0])

    rows = []
    for e in held:
        probs = [p.predict(e.path).probabilities for p in preds]
        h, w = probs[0].shape
        truth = rasterize(e.regions, (w, h))
        avg = np.mean(probs, 0)
        rx = ref_rows[(e.filename, "extra" in str(e.path))]
        rmap = load_map(Path(args.reference) / rx["map_path"])
        row = {
            "whole": "extra" in str(e.path),
            "ensemble": dice(truth, avg, thr),
            "members": [dice(truth, p, q.threshold) for p, q in zip(probs, preds, strict=True)],
            "reference": rx["dice"],
            "sweep": {t: dice(truth, avg, t) for t in THRESHOLDS},
            "reference_sweep": {t: dice(truth, rmap, t) for t in THRESHOLDS},
        }
        rows.append(row)

    def m(vals):
        return round(statistics.mean(vals), 4)

    diffs = [r["ensemble"] - r["reference"] for r in rows]
    res = {
        "photos": len(rows),
        "members": args.members,
        "threshold": thr,
        "ensemble": m(r["ensemble"] for r in rows),
        "reference": m(r["reference"] for r in rows),
        "reference_threshold": ref_thr,
        "paired": m(diffs),
        "se": round(statistics.stdev(diffs) / math.sqrt(len(diffs)), 4),
        "members_alone": [m(r["members"][i] for r in rows) for i in range(len(preds))],
        "whole_cars": [
            m(r["ensemble"] for r in rows if r["whole"]),
            m(r["reference"] for r in rows if r["whole"]),
        ],
        "close_ups": [
            m(r["ensemble"] for r in rows if not r["whole"]),
            m(r["reference"] for r in rows if not r["whole"]),
        ],
        "sweep": {t: m(r["sweep"][t] for r in rows) for t in THRESHOLDS},
        "reference_sweep": {t: m(r["reference_sweep"][t] for r in rows) for t in THRESHOLDS},
    }
    print(json.dumps(res, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
