"""``viaseg check DATASET``: the problems :func:`viaseg.core.checks.checks.check_dataset` finds, as text or JSON;
exit status 0 no errors, 1 errors, 2 unreadable."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..annotation.dataset import load_dataset
from ..checks.checks import check_dataset


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="check a dataset: missing/corrupt images, bad polygons, images shared between splits",
        description="Check a VIA dataset before training: missing or unreadable images, size fields that do not "
        "match the files, degenerate / self-intersecting / out-of-image regions, duplicate images (leaks between "
        "splits) and conflicting annotations of them, attribute names that differ between splits, images without "
        "regions, annotation files (or parts of them) that could not be loaded. Exit status: 0 no errors, 1 errors found, 2 the dataset cannot be read.",
    )
    p.add_argument(
        "dataset",
        metavar="DATASET",
        help="a VIA file, a folder (with train/ val/ test/ subfolders or a VIA file), or DATASET:split",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"images", "regions", "problems": [{kind, severity, split, image, region, message}]}',
    )
    p.add_argument(
        "--no-decode",
        action="store_true",
        help="read image headers only (faster; re-encoded duplicate copies are then not detected)",
    )
    p.add_argument("--all", action="store_true", help="list every problem (default: 20 per kind)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.dataset)
    report = check_dataset(dataset, decode=not args.no_decode)
    if args.json:
        text = json.dumps(report.to_json(), ensure_ascii=False, indent=1)
    else:
        text = report.to_text(limit=None if args.all else 20, title=str(Path(args.dataset)))
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `viaseg check DS | head`: the reader left; the exit status still counts
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return report.exit_code
