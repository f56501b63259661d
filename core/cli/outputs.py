"""Checks of the output paths the commands write, made before any slow work: a run folder that holds an
earlier run, an output among the user's photos."""

from __future__ import annotations

import argparse
from pathlib import Path


def check_run_dir(args: argparse.Namespace) -> None:
    """Before any data is read: ``--out`` an existing file ended in a traceback, and an earlier run's folder was
    trained into silently (its model replaced; a run that then failed left its config.json naming another
    dataset beside the old model)."""
    from ..base.errors import ViaSaveError, ViasegError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ViaSaveError(f"--out {out}: exists and is a file; give a run folder (new or empty)")
    earlier = [n for n in ("model.keras", "config.json", "summary.json") if (out / n).exists()]
    if earlier and not args.overwrite and not other_worker(args):
        raise ViaSaveError(
            f"--out {out}: holds an earlier run ({', '.join(earlier)}); give a new folder, or --overwrite to "
            "replace it"
        )
    cache = getattr(args, "cache_dir", None)
    if cache and Path(cache).exists() and not Path(cache).is_dir():  # said once per image before
        raise ViaSaveError(f"--cache-dir {cache}: exists and is a file; give a folder (made if missing)")
    size = getattr(args, "size", None)
    if size is not None and size % 16:
        raise ViasegError(f"--size {size}: must be a multiple of 16 (e.g. {max(16, size // 16 * 16)})")


def other_worker(args: argparse.Namespace) -> bool:
    """A multi-worker run's worker other than the chief: it writes no run folder, so an earlier one is no
    matter (the chief, started the same moment, may have begun writing it)."""
    import json
    import os

    if getattr(args, "strategy", None) != "multiworker":
        return False
    try:
        task = json.loads(os.environ.get("TF_CONFIG", "")).get("task", {})
        return int(task.get("index", 0)) != 0
    except (ValueError, AttributeError, TypeError):
        return False
