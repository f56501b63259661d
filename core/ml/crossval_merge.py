"""Saved cross-validation results: reading a ``crossval.json`` (:func:`read_json`; *Check labels* opens one) and
joining runs of different folds into one result (:func:`merge_results`, ``viaseg crossval --merge``). No Qt,
no TensorFlow."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .crossval import CrossvalResult, OofScore


def read_json(path: str | Path) -> tuple[Path, dict]:
    """``crossval.json`` (a folder holding one, or the file): its path and content. Raises ``ValueError`` with a
    sentence naming the file when it cannot be read or holds no ``per_image`` list."""
    p = Path(path)
    if p.is_dir():
        p = p / "crossval.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("per_image"), list):
        raise ValueError(f"{p}: not the results of a label check or `viaseg crossval` (no per_image list)")
    return p, data


def merge_results(dirs: list[str | Path], out_dir: str | Path) -> CrossvalResult:
    """The folds of several ``crossval`` runs (``--only-folds`` run apart: other days, other machines) as one
    result, written to ``out_dir/crossval.json``: every image scored once, the interval over all of them.

    Each of ``dirs`` is a folder holding a ``crossval.json`` (or the file). Refused with a ``ValueError`` that
    names the file: a file that is not crossval's, a different number of folds, a fold or an image in two
    inputs (runs divided into folds differently). The maps stay where they are; their paths are rewritten
    relative to ``out_dir`` (absolute where no relative path exists). ``out_dir`` may not be one of the inputs
    (its own result would be overwritten)."""
    out = Path(out_dir)
    merged: CrossvalResult | None = None
    seen_folds: dict[int, Path] = {}
    seen_images: dict[tuple[str, str], Path] = {}
    names = {f.name for f in dataclasses.fields(OofScore)}
    for d in dirs:
        p = Path(d)
        if (p / "crossval.json" if p.is_dir() else p).resolve() == (out / "crossval.json").resolve():
            raise ValueError(f"{p}: an input of the merge; write the merged result to another folder")
        p, data = read_json(p)
        if "folds" not in data:
            raise ValueError(f"{p}: not the crossval.json of `viaseg crossval` (no number of folds)")
        try:
            k = int(data["folds"])
        except (TypeError, ValueError):
            raise ValueError(f"{p}: its number of folds is not a number ({data['folds']!r})") from None
        if merged is None:
            merged = CrossvalResult(k)
        elif k != merged.folds:
            raise ValueError(f"{p}: {k} folds where the first input has {merged.folds}: not one division")
        runs = [r for r in data.get("fold_runs") or [] if isinstance(r, dict)]
        for r in runs:
            f = int(r.get("fold", -1))
            if f in seen_folds:
                raise ValueError(f"{p}: fold {f} is also in {seen_folds[f]}; merge runs of different folds")
            seen_folds[f] = p
            if r.get("run_dir"):
                r = {**r, "run_dir": _rebase(p.parent / str(r["run_dir"]), out)}
            merged.fold_runs.append(r)
        for row in data["per_image"]:
            try:
                score = OofScore(**{key: v for key, v in row.items() if key in names})
            except TypeError:
                raise ValueError(f"{p}: an image row without its scores: {str(row)[:120]}") from None
            key = (score.source, score.image)
            if key in seen_images:
                raise ValueError(
                    f"{p}: {score.image} ({score.source}) is also scored in {seen_images[key]}: "
                    "the runs divided the photos into folds differently (other datasets or --fold-seed)"
                )
            seen_images[key] = p
            if score.map_path:
                score.map_path = _rebase(p.parent / score.map_path, out)
            merged.per_image.append(score)
        merged.errors += [str(e) for e in data.get("errors") or []]
        merged.skipped += [str(e) for e in data.get("skipped") or [] if str(e) not in merged.skipped]
        merged.stopped = merged.stopped or bool(data.get("stopped"))
    if merged is None:
        raise ValueError("nothing to merge: give the folders of two or more crossval runs")
    merged.fold_runs.sort(key=lambda r: int(r.get("fold", -1)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossval.json").write_text(json.dumps(merged.to_dict(), indent=2, default=str))
    return merged


def _rebase(path: Path, out: Path) -> str:
    """``path`` relative to the folder ``out``, as crossval.json stores its paths."""
    import os

    try:
        return os.path.relpath(path.resolve(), out.resolve())
    except ValueError:  # another drive (Windows)
        return str(path.resolve())
