"""``viaseg crossval DATASET [DATASET ...] --out DIR``: K-fold cross-validation of a training recipe.

Every DATASET's annotated training images are divided into folds (copies kept together); ``--extra`` data
always trains. Prints out-of-fold Dice / IoU with 95 % bootstrap intervals, per dataset, and the worst images.
``viaseg crossval --merge CV_DIR ... --out DIR`` joins runs of different folds (``--only-folds``) into one result.
"""

from __future__ import annotations

import argparse
import json
import sys

from .argtypes import non_negative_int


def register(subparsers) -> None:
    from .train_cmd import add_recipe_options

    p = subparsers.add_parser(
        "crossval",
        help="k-fold cross-validation: how good a recipe really is on your photos",
        description="Train K models, each without one fold of the images of DATASET (and of every further "
        "DATASET; copies of a picture stay in one fold), predict each held-out image with the model that never "
        "saw it, and report out-of-fold mean and global Dice / IoU with 95%% bootstrap intervals over images, "
        "per dataset, and per image (worst first). The held-out fold chooses nothing: each fold keeps its final "
        "weights. Writes DIR/fold_N/ (run folders), DIR/oof_maps/ (each image's out-of-fold probability map) "
        "and DIR/crossval.json.",
    )
    p.add_argument(
        "datasets",
        nargs="*",
        metavar="DATASET",
        help="dataset folder, VIA file or DIR:split (default split: train)",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="CV_DIR",
        help="instead of training: join the output folders of runs of different folds (--only-folds run "
        "apart) into one result in --out, scored over all their images",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    p.add_argument("--only-folds", metavar="F,F", help="run only these folds (0-based), e.g. 0 or 0,1")
    p.add_argument(
        "--fold-seed", type=non_negative_int, default=0, help="seed of the division into folds (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument(
        "--worst", type=non_negative_int, default=10, help="how many worst images to list (default 10)"
    )
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_recipe_options(p)
    p.set_defaults(func=run)


def _folds_arg(text: str | None, k: int) -> list[int] | None:
    from ..base.errors import ViasegError

    if not text:
        return None
    try:
        folds = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ViasegError(f"--only-folds {text!r}: give fold numbers such as 0,2") from None
    bad = [f for f in folds if not 0 <= f < k]
    if bad:
        raise ViasegError(f"--only-folds: fold {bad[0]} does not exist (folds 0..{k - 1})")
    return folds


def _sources(specs: list[str]):
    from ..ml.train_plumbing import _entries_of

    out = []
    for spec in specs:
        entries, desc, _ = _entries_of(spec, "train", "the dataset")
        out.append((desc, entries))
    return out


def format_report(res: dict, worst: int) -> str:
    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    def line(name: str, s: dict) -> str:
        return (
            f"  {name}: {s['n']} images  mean Dice {f(s['mean_dice'])} {s.get('mean_dice_ci95', '')}  "
            f"global Dice {f(s['global_dice'])} {s.get('global_dice_ci95', '')}  "
            f"mean IoU {f(s['mean_iou'])}  global IoU {f(s['global_iou'])}"
        )

    lines = [
        f"{res['folds']}-fold cross-validation, out-of-fold scores (95% bootstrap intervals):",
        line("all", res),
    ]
    for name, s in res["by_source"].items():
        lines.append(line(name, s))
    rows = res["per_image"][: worst if worst > 0 else None]
    if rows:
        lines.append(f"worst {len(rows)} (lowest out-of-fold Dice first):")
        for r in rows:
            lines.append(f"  {r['dice']:6.3f}  fold {r['fold']}  {r['image']}  ({r['source']})")
    for e in res["skipped"]:
        lines.append(f"skipped: {e}")
    for e in res["errors"]:
        lines.append(f"error: {e}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    from ..base.errors import ViasegError
    from ..ml.crossval import crossval
    from ..ml.crossval_merge import merge_results
    from .train_cmd import _config

    if args.merge:
        if args.datasets:
            raise ViasegError("--merge joins finished runs: give no DATASET with it")
        try:
            merged = merge_results(args.merge, args.out)
        except ValueError as exc:
            raise ViasegError(str(exc)) from None
        res = merged.to_dict()
        print(json.dumps(res, indent=2, default=str) if args.json else format_report(res, args.worst))
        return 1 if merged.errors else 0
    if not args.datasets:
        raise ViasegError("give at least one DATASET (or --merge CV_DIR ...)")
    if args.folds < 2:
        raise ViasegError("--folds must be at least 2")
    only = _folds_arg(args.only_folds, args.folds)
    cfg = _config(args)
    sources = _sources(args.datasets)

    def on_fold(f, k, msg):
        print(msg, file=sys.stderr, flush=True)

    def on_event(f, ev):
        from ..ml.train_events import EpochEnd, Failed

        if isinstance(ev, EpochEnd) and not args.quiet:
            print(
                f"  fold {f + 1} epoch {ev.epoch + 1}  {ev.seconds:4.1f}s  loss {ev.metrics.get('loss', 0):.4f}",
                file=sys.stderr,
                flush=True,
            )
        elif isinstance(ev, Failed):
            print(f"  fold {f + 1} failed: {ev.message}", file=sys.stderr)

    result = crossval(
        cfg,
        sources,
        args.out,
        folds=args.folds,
        only_folds=only,
        on_event=on_event,
        on_fold=on_fold,
        fold_seed=args.fold_seed,
    )
    for msg in result.skipped:
        print(f"warning: skipped {msg}", file=sys.stderr)
    res = result.to_dict()
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print(format_report(res, args.worst))
    return 1 if result.errors else 0
