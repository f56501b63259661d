"""``viaseg clicknet DATASET [DATASET ...] --out NET.npz [--time-limit S | --steps N] [--from NPZ]``.

Fine-tunes the click network of the AI region tool (:mod:`viaseg.core.ml.clicknet`) on the polygons of one or
more datasets (``DATASET:split``, or the dataset's ``train`` split, else every labelled split), starting from the
weights shipped with viaseg (``--from`` another weights file; ``--from imagenet``: from the ImageNet encoder
alone, a network of your own from scratch). The result is a weights file the app uses once it is chosen in the
Tools toolbar (*Click network* ▸ *Use weights…*) or given as ``VIASEG_CLICKNET``. Photos that cannot be read are
left out with a message naming each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .argtypes import non_negative_int, positive_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "clicknet",
        help="fine-tune the AI region tool's click network on your own polygons",
        description="Fine-tune the click network (the AI region tool's first click) on the annotated photos "
        "of DATASET(s), starting from the weights that ship with viaseg; writes a weights file for the app.",
    )
    p.add_argument("datasets", nargs="+", metavar="DATASET", help="dataset folder, VIA file or DATASET:split")
    p.add_argument("--out", required=True, help="the weights file to write (.npz)")
    p.add_argument(
        "--time-limit", type=positive_float, default=300.0, help="seconds of training (default 300)"
    )
    p.add_argument("--steps", type=positive_int, help="stop after this many steps instead (batches of 8)")
    p.add_argument(
        "--from",
        dest="init_from",
        default="shipped",
        help="weights to start from: shipped (default), imagenet (the encoder alone), or a .npz file",
    )
    p.add_argument(
        "--lr", type=positive_float, help="learning rate (default 1e-4 fine-tuning, 5e-4 from imagenet)"
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..base.errors import DatasetError
    from ..ml.clicknet import WEIGHTS
    from ..ml.clicknet_train import fine_tune, load_photos, train

    _check_paths(args)
    rep = load_photos(args.datasets)
    for msg in rep.problems:
        print(f"viaseg clicknet: warning: {msg}", file=sys.stderr)
    if not rep.photos:
        raise DatasetError(f"{', '.join(args.datasets)}: no annotated region to train the click network on")
    n_regions = sum(len(d["regs"]) for d in rep.photos)
    if not args.json:
        print(f"{len(rep.photos)} photos, {n_regions} regions", file=sys.stderr)

    def progress(p) -> None:
        if not args.json and (p.step % 100 == 0 or p.step == 1):
            print(f"step {p.step}, {p.seconds:.0f} s, loss {p.loss:.4f}", file=sys.stderr)

    t0 = time.time()
    cmd = "viaseg clicknet " + " ".join(sys.argv[2:])
    if args.init_from == "imagenet":
        from ..ml.clicknet import save_weights

        model, steps = train(
            rep.photos,
            seconds=args.time_limit,
            steps=args.steps,
            lr=args.lr or 5e-4,
            seed=args.seed,
            on_progress=progress,
        )
        out = save_weights(model, args.out, f"click network trained from ImageNet: {cmd}")
    else:
        init = WEIGHTS if args.init_from == "shipped" else args.init_from
        out, steps = fine_tune(
            rep.photos,
            args.out,
            seconds=args.time_limit,
            steps=args.steps,
            init_from=init,
            lr=args.lr or 1e-4,
            seed=args.seed,
            on_progress=progress,
            about=f"click network fine-tuned from {init}: {cmd}",
        )
    res = {
        "out": str(out),
        "photos": len(rep.photos),
        "regions": n_regions,
        "left_out": rep.problems,
        "steps": steps,
        "seconds": round(time.time() - t0, 1),
        "from": args.init_from,
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"wrote {out} ({steps} steps, {res['seconds']} s)")
    return 0


def _check_paths(args: argparse.Namespace) -> None:
    """Before minutes of training: ``--out`` must be a new or earlier ``.npz`` weights file (it replaced a photo
    or an annotation file given by mistake) in a folder that exists, and ``--from`` a weights file that reads
    (a text or empty file ended in a traceback)."""
    import zipfile

    from ..base.errors import ModelError, ViaSaveError
    from ..ml.clicknet import weights_problem

    out = Path(args.out)
    if out.suffix.lower() != ".npz" or str(args.out).endswith(("/", "\\")):
        raise ViaSaveError(f"--out {args.out}: give a weights file name ending in .npz (e.g. mine.npz)")
    if out.is_dir():
        raise ViaSaveError(f"--out {out}: is a folder; give a weights file name ending in .npz")
    if not out.parent.is_dir():
        raise ViaSaveError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and not zipfile.is_zipfile(out):
        raise ViaSaveError(f"--out {out}: exists and is not a weights file (.npz); not replaced")
    if args.init_from in ("shipped", "imagenet"):
        return
    src = Path(args.init_from)
    if not src.is_file():
        raise ModelError(f"--from {src}: no such weights file (or give shipped / imagenet)")
    reason = weights_problem(src)
    if reason:
        raise ModelError(
            f"--from {src}: not a click network weights file (.npz from viaseg clicknet): {reason}"
        )
