"""``viaseg evaluate MODEL DATASET[:split]``: per-image Dice and IoU at full resolution, worst first (the scores
are :mod:`viaseg.core.ml.evaluate`'s)."""

from __future__ import annotations

import json
import sys

from ..annotation.project import AREA_SHAPES
from ..ml.evaluate import EvalError, choose_split, evaluate, format_report, train_duplicates
from .argtypes import non_negative_int, positive_int


def register(subparsers) -> None:
    from .predict_cmd import add_tta_option, probability

    p = subparsers.add_parser(
        "evaluate",
        help="score a model on a labeled split (Dice, IoU, worst images first)",
        description="Per-image Dice and IoU of MODEL's full-resolution masks against the annotated polygons "
        "of DATASET[:split] (default split: val). Images are listed worst first.",
    )
    p.add_argument("model", help="viaseg .keras model file")
    p.add_argument("dataset", help="dataset folder or VIA file, optionally DATASET:split")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument(
        "--threshold", type=probability, default=None, help="probability threshold (default: model's)"
    )
    p.add_argument("--batch-size", type=positive_int, default=4, help="images per network call (default 4)")
    add_tta_option(p)
    p.add_argument(
        "--worst", type=non_negative_int, default=20, help="how many worst images to list (0 = all)"
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="also score thresholds 0.05..0.95 (same predictions) and name the best",
    )
    p.add_argument(
        "--exclude-train-duplicates",
        action="store_true",
        help="leave out images whose file or pixels also occur in the train split (as training's validation does)",
    )
    p.set_defaults(func=run)


def run(args) -> int:

    from ..annotation.dataset import load_dataset, parse_spec
    from .predict_cmd import ProgressBar, apply_tta_options, check_threshold

    check_threshold(args.threshold)
    root, requested = parse_spec(args.dataset)
    dataset = load_dataset(args.dataset)
    split = choose_split(dataset, requested)
    from ..ml.predict import Predictor

    predictor = Predictor.load(args.model)
    apply_tta_options(predictor, args)
    entries = list(split.entries)
    excluded = []
    if args.exclude_train_duplicates:  # DATASET:split loads that split alone: the train split is needed too
        full = dataset if "train" in dataset.splits or requested is None else load_dataset(root)
        excluded = train_duplicates(full, split)
    entries = [e for e in entries if e not in excluded]
    bar = ProgressBar(len(entries), "evaluating")

    def progress(done, total, item):
        if isinstance(item, EvalError):
            bar.message(f"warning: {item.path}: {item.error} (skipped)")
        bar.update(done)

    try:
        result = evaluate(
            predictor,
            entries,
            args.threshold,
            on_progress=progress,
            batch_size=args.batch_size,
            sweep=args.sweep,
        )
    finally:
        bar.close()
    result.split = split.name
    result.excluded = [e.filename for e in excluded]
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_report(result, args.worst))
    _say_empty_truths(result, entries)
    if result.errors:
        print(f"viaseg evaluate: {len(result.errors)} image(s) could not be read", file=sys.stderr)
        return 1
    return 0


def _say_empty_truths(result, entries) -> None:
    """Photos whose regions cover no pixel of the photo (all outside it, or degenerate) are scored as photos
    without damage, which a model that predicts nothing gets right (Dice 1): said, with where to look, as they
    were counted in the mean without a word."""
    with_regions = {str(e.path) for e in entries if any(r.kind in AREA_SHAPES for r in e.regions)}
    empty = [s.image for s in result.per_image if s.true_pixels == 0 and str(s.path) in with_regions]
    if empty:
        names = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        print(
            f"viaseg evaluate: warning: {len(empty)} image(s) have regions that cover no pixel of the photo "
            f"(outside it, or degenerate): {names}; scored as photos without damage (viaseg check names the "
            "regions)",
            file=sys.stderr,
        )
