"""Dataset checks: find what would silently spoil training before it happens. ``viaseg check DATASET``.

:func:`check_dataset` returns a :class:`Report` (``images``, ``regions``, ``problems``); each
:class:`Problem` has a ``kind`` (see :data:`KINDS`), a ``severity`` (``error`` | ``warning`` | ``info``), the
``split`` and ``image`` (file name as written in the VIA file) it concerns, the ``region`` index (or None) and
a ``message`` saying what is wrong and what to do. Problems come in a stable order: by split (dataset order),
image (file order), region, then kind. :func:`check_entry` re-checks one image (the GUI calls it after edits).

Exit status of ``viaseg check``: 0 no errors, 1 errors found, 2 unusable input (bad path, unreadable VIA file).

The rules live beside this module: per-file checks in :mod:`.check_files`, copies in :mod:`.check_copies`,
attribute names in :mod:`.check_attributes`, region geometry in :mod:`.check_geometry`, the report in
:mod:`.check_report`. This module runs them over a dataset or one image and is the ``viaseg check`` command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..annotation.dataset import Dataset, Split
from ..annotation.project import ImageEntry
from .check_attributes import _attribute_problems
from .check_copies import CONFLICT_IOU as CONFLICT_IOU  # re-exported
from .check_copies import _duplicate_problems
from .check_copies import duplicate_groups as duplicate_groups  # re-exported
from .check_files import VISUAL_MAD as VISUAL_MAD  # re-exported
from .check_files import FileCache, _file_checks, _FileInfo, _size_mismatch
from .check_geometry import analyze_shapes
from .check_report import FILE_KINDS, KINDS, REGION_KINDS, SEVERITIES, Problem, Report

__all__ = [
    "FILE_KINDS",
    "KINDS",
    "REGION_KINDS",
    "SEVERITIES",
    "FileCache",
    "Problem",
    "Report",
    "check_dataset",
    "check_entry",
]

OOB_TOLERANCE = 1.0  # pixels: VIA draws on pixel edges, so x == width is inside


# --------------------------------------------------------------------------------------------- geometry


def _geometry_problems(
    items: list[tuple[str | None, ImageEntry, tuple[int, int] | None]],
) -> dict[int, list[Problem]]:
    """Region problems of many entries at once; returns {item index: problems}."""
    shapes: list[dict] = []
    owner: list[int] = []
    rindex: list[int] = []
    for k, (_, entry, _) in enumerate(items):
        for r, region in enumerate(entry.regions):
            shapes.append(region.shape)
            owner.append(k)
            rindex.append(r)
    out: dict[int, list[Problem]] = {}
    if not shapes:
        return out
    bbox, issues = analyze_shapes(shapes)

    def add(s: int, kind: str, severity: str, message: str) -> None:
        split, entry, _ = items[owner[s]]
        out.setdefault(owner[s], []).append(
            Problem(kind, severity, split, entry.filename, rindex[s], message, entry.key)
        )

    for s in sorted(issues):
        for iss in issues[s]:
            add(s, iss.kind, iss.severity, iss.message)
    wh = np.array(
        [items[k][2] if items[k][2] is not None else (np.nan, np.nan) for k in owner], dtype=np.float64
    )
    _out_of_bounds(bbox, wh, add)
    _repeated_regions(shapes, owner, rindex, items, add)
    return out


def _repeated_regions(shapes, owner, rindex, items, add: Callable[[int, str, str, str], None]) -> None:
    """A region that is an exact copy of an earlier one of its image (same shape, same attributes): a CSV row
    written twice, a paste done twice. It counts twice in the region count and nowhere else (the mask is the
    same), so it was never said."""
    first: dict[tuple[int, str], int] = {}
    for s, shape in enumerate(shapes):
        _, entry, _ = items[owner[s]]
        attrs = entry.regions[rindex[s]].attributes
        try:
            sig = json.dumps([shape, attrs], sort_keys=True, default=str)
        except (TypeError, ValueError):
            continue
        earlier = first.setdefault((owner[s], sig), rindex[s])
        if earlier != rindex[s]:
            add(
                s,
                "repeated_region",
                "warning",
                f"region {rindex[s]} is an exact copy of region {earlier} (same outline and attributes), "
                "perhaps a row or a paste done twice; delete one",
            )


def _out_of_bounds(bbox: np.ndarray, wh: np.ndarray, add: Callable[[int, str, str, str], None]) -> None:
    """Report the regions whose box (``bbox`` row) reaches outside their image's ``wh`` (NaN: size unknown)."""
    tol = OOB_TOLERANCE
    with np.errstate(invalid="ignore"):
        outside = (
            (bbox[:, 0] < -tol)
            | (bbox[:, 1] < -tol)
            | (bbox[:, 2] > wh[:, 0] + tol)
            | (bbox[:, 3] > wh[:, 1] + tol)
        )
        fully = (bbox[:, 2] < 0) | (bbox[:, 3] < 0) | (bbox[:, 0] > wh[:, 0]) | (bbox[:, 1] > wh[:, 1])
    for j in np.flatnonzero(outside):
        x0, y0, x1, y1 = bbox[j]
        w, h = wh[j]
        if np.isnan(w):  # image size unknown (missing/unreadable file): only negative coordinates are sure
            add(
                int(j),
                "out_of_bounds",
                "warning",
                f"region has negative coordinates (x {x0:g}..{x1:g}, y {y0:g}..{y1:g}), outside any image; "
                f"move it inside the image",
            )
            continue
        where = f"x {x0:g}..{x1:g}, y {y0:g}..{y1:g} in a {w:g}x{h:g} image"
        if fully[j]:
            add(
                int(j),
                "out_of_bounds",
                "error",
                f"region lies entirely outside the image ({where}); wrong image or wrong coordinates: "
                f"delete it or redraw it",
            )
        else:
            add(
                int(j),
                "out_of_bounds",
                "warning",
                f"region reaches outside the image ({where}); drag it inside (masks clip it)",
            )


def check_entry(
    split_name: str | None, entry: ImageEntry, image_size: tuple[int, int] | None = None, labeled: bool = True
) -> list[Problem]:
    """Problems of one image, fast enough to run after every edit.

    With ``image_size`` given (the GUI has the image open) only the regions are checked: degenerate,
    self-intersecting, unsupported and out-of-bounds regions, and an empty entry. Without it the file is also
    looked at (missing, size field, header readable) to get the size; pixels are never decoded here."""
    out: list[Problem] = []
    if image_size is None:
        info = _file_checks(split_name, entry, labeled, decode=False, hashing=False, out=out)
        size, exists = info.size, info.exists
    else:
        size, exists = (int(image_size[0]), int(image_size[1])), True
    for probs in _geometry_problems([(split_name, entry, size)]).values():
        out.extend(probs)
    if labeled and exists and not entry.regions:
        out.append(_unannotated(split_name, entry))
    return _sorted(out, {split_name: 0}, {id(entry): 0})


def _unannotated(split: str | None, entry: ImageEntry) -> Problem:
    return Problem(
        "unannotated_image",
        "info",
        split,
        entry.filename,
        None,
        "no regions: it trains as an image without damage; annotate it if it shows damage, or delete "
        "the entry",
        entry.key,
    )


# --------------------------------------------------------------------------------------------- the whole dataset


def _sorted(
    problems: list[Problem], split_pos: dict, entry_pos: dict, extra: dict | None = None
) -> list[Problem]:
    kind_pos = {k: i for i, k in enumerate(KINDS)}

    def key(p: Problem):
        ep = extra.get(id(p), -1) if extra else -1
        return (
            split_pos.get(p.split, -1),
            ep,
            -1 if p.region is None else p.region,
            kind_pos.get(p.kind, len(kind_pos)),
            p.kind,
            p.message,
        )

    return sorted(problems, key=key)


def _entry_file_info(
    sp: Split,
    entry: ImageEntry,
    decode: bool,
    cache: dict[str, _FileInfo],
    file_cache: FileCache | None,
    found: list[Problem],
) -> _FileInfo:
    """What is known about an entry's image file: reused when the file is listed twice or is unchanged since
    the last check (only the recorded size is checked again), else read; its problems go to ``found``."""
    path = entry.path
    real = os.path.normcase(os.path.abspath(path))
    known = cache.get(real)
    if known is None or not known.exists:
        known = file_cache.get(real, decode) if file_cache is not None else None
    if known is not None and known.exists:  # listed twice, or unchanged since the last check
        info = known
        assert info.nbytes is not None  # set by _file_checks wherever the file exists
        mismatch = _size_mismatch(sp.name, entry, sp.labeled, path, info.nbytes)
        if mismatch is not None:
            found.append(mismatch)
    else:
        info = _file_checks(sp.name, entry, sp.labeled, decode, True, found, path)
        if file_cache is not None:
            file_cache.put(real, info)
    cache[real] = info
    return info


def _unlisted_problem(sp: Split, path: Path) -> Problem:
    return Problem(
        "unlisted_image",
        "info",
        sp.name,
        path.name,
        None,
        f"{path.name} is in the {sp.name} folder but not in its annotation file; add and annotate it, "
        f"or move it out of the folder",
    )


def check_dataset(
    dataset: Dataset,
    decode: bool = True,
    progress: Callable[[int, int], None] | None = None,
    file_cache: FileCache | None = None,
) -> Report:
    """Check every split of ``dataset``. ``decode=False`` reads only image headers (no pixel hashing, so
    re-encoded duplicates are not detected; identical files still are). ``progress(done, total)`` is called
    after each image file (for a GUI progress bar). ``file_cache`` keeps what was read about each unchanged
    file for the next check."""
    total = dataset.image_count
    items: list[tuple[str | None, ImageEntry, tuple[int, int] | None]] = []
    labeled: list[bool] = []
    infos: list[_FileInfo] = []
    problems: list[Problem] = []
    pos: dict[int, int] = {}  # id(problem) -> position of its image in dataset order
    cache: dict[str, _FileInfo] = {}

    def place(p: Problem, k: int) -> None:
        problems.append(p)
        pos[id(p)] = k

    for sp in dataset.splits.values():
        for message in sp.warnings:  # what the readers left out: the data is not there to check
            place(Problem("not_loaded", "error", sp.name, None, None, message), -1)
        for entry in sp.entries:
            k = len(items)
            found: list[Problem] = []
            info = _entry_file_info(sp, entry, decode, cache, file_cache, found)
            for p in found:
                place(p, k)
            if sp.labeled and info.exists and not entry.regions:
                place(_unannotated(sp.name, entry), k)
            items.append((sp.name, entry, info.size))
            labeled.append(sp.labeled)
            infos.append(info)
            if progress is not None:
                progress(len(items), total)
        base = len(items) + 10**9  # unlisted files sort after the listed images of their split
        for i, path in enumerate(sp.unlisted_images()):
            place(_unlisted_problem(sp, path), base + i)
    for k, probs in _geometry_problems(items).items():
        for p in probs:
            place(p, k)
    for k, p in _duplicate_problems(items, infos, labeled):
        place(p, k)
    for p in _attribute_problems(dataset):
        place(p, -1)
    split_pos = {name: i for i, name in enumerate(dataset.splits)}
    regions = sum(len(e.regions) for _, e, _ in items)
    return Report(images=len(items), regions=regions, problems=_sorted(problems, split_pos, {}, pos))
