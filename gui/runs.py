"""Past training runs on disk: a run folder holds ``summary.json``, ``history.csv``, ``curves.png`` and the
model (``model.keras``), as ``viaseg.core.ml.train`` writes them. No widgets."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from .curves import metric


@dataclasses.dataclass
class RunInfo:
    folder: Path
    summary: dict
    model_path: Path | None

    @property
    def ensemble(self) -> dict | None:
        """What a run of several networks averaged records of them (``summary["ensemble"]``), else None."""
        ens = self.summary.get("ensemble")
        return ens if isinstance(ens, dict) and ens.get("members") else None

    @property
    def best_val_dice(self) -> float | None:
        v = self.summary.get("val_dice")
        if isinstance(v, (int, float)):
            return float(v)
        m = self.summary.get("best_metrics") or {}
        v = metric(m, "val_dice") if isinstance(m, dict) else None
        if v is None:
            v = metric(m, "train_dice") if isinstance(m, dict) else None
        return v


def read_run(folder: Path) -> RunInfo | None:
    """A run folder's summary and model file; None when it is not a run (no summary and no model)."""
    folder = Path(folder)
    summary: dict = {}
    sp = folder / "summary.json"
    if sp.is_file():
        try:
            summary = json.loads(sp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {"error": f"{sp}: unreadable summary"}
        if not isinstance(summary, dict):  # null, a list, a string: one such file emptied the whole Runs list
            summary = {"error": f"{sp}: unreadable summary (not a JSON object)"}
    model = None
    mp = summary.get("model_path")
    if mp and not isinstance(mp, str):
        mp = None
    if mp:
        # a run folder is self-contained: its own model file wins over the path it was written with, so a
        # moved, copied or shared run loads the model beside its summary (older runs recorded absolute paths)
        p = Path(mp)
        for cand in (folder / p.name, p if p.is_absolute() else folder / p):
            if cand.is_file():
                model = cand
                break
    if model is None:
        cands = sorted(folder.glob("*.keras"), key=lambda p: (p.stem not in ("best", "model"), p.name))
        model = cands[0] if cands else None
    if not summary and model is None:
        return None
    return RunInfo(folder, summary, model)


def read_history(folder: Path) -> list[dict]:
    path = Path(folder) / "history.csv"
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error):
        return []


def list_runs(root: Path) -> list[RunInfo]:
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [r for p in root.iterdir() if p.is_dir() and (r := read_run(p)) is not None]
    return sorted(runs, key=lambda r: r.folder.stat().st_mtime, reverse=True)
