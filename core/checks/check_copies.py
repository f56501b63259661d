"""The one rule for copies of a picture and the dataset checks built on it: :func:`duplicate_groups` (a group per
set of copies: same bytes, same pixels, or a re-encoded / resized copy confirmed on thumbnails; cross-validation
keeps each group in one fold) and the ``duplicate_image`` / ``conflicting_duplicate`` problems of
:func:`.checks.check_dataset` (a picture in two splits leaks between them; two copies annotated differently).
"""

from __future__ import annotations

import numpy as np

from ..annotation.project import ImageEntry
from .check_files import _file_checks, _FileInfo, _same_picture
from .check_report import Problem

CONFLICT_IOU = 0.5  # copies whose region masks overlap less than this disagree


def _label_multiset(entry: ImageEntry) -> list[str]:
    labs = []
    for r in entry.regions:
        attrs = r.attributes if isinstance(r.attributes, dict) else {}
        labs.append("|".join(sorted(str(v) for v in attrs.values())))
    return sorted(labs)


def _disagreement(
    a: ImageEntry, b: ImageEntry, size_a: tuple[int, int] | None, size_b: tuple[int, int] | None
) -> str | None:
    """Why two annotations of one image disagree, or None when they match closely enough. The copies may
    differ in size (a resized copy): each is rasterized from its own size to one common mask size."""
    if len(a.regions) != len(b.regions):
        return f"{len(a.regions)} region{'s' if len(a.regions) != 1 else ''} here but {len(b.regions)} in"
    if not a.regions:
        return None
    if _label_multiset(a) != _label_multiset(b):
        return "different region labels than"
    size_a, size_b = size_a or size_b, size_b or size_a
    if size_a is None:
        return None
    from ..annotation.raster import rasterize

    assert size_b is not None  # as size_a is not: one of the two was given
    w, h = size_a
    scale = min(1.0, 256.0 / max(w, h))
    out = (max(1, round(w * scale)), max(1, round(h * scale)))
    ma = rasterize(a.regions, size_a, out) > 0
    mb = rasterize(b.regions, size_b, out) > 0
    union = np.count_nonzero(ma | mb)
    if union == 0:
        return None
    iou = np.count_nonzero(ma & mb) / union
    if iou < CONFLICT_IOU:
        return f"regions overlapping only {iou:.0%} (IoU) with"
    return None


def _copy_roots(infos: list[_FileInfo]) -> list[int]:
    """For each file, the index of the first file it is a copy of (itself when none): same bytes, same
    pixels, or a visual copy (lossy re-encode, resize) confirmed on thumbnails. The one rule for copies."""
    parent = list(range(len(infos)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for attr in ("byte_hash", "pixel_hash"):
        first: dict[bytes, int] = {}
        for i, info in enumerate(infos):
            h = getattr(info, attr)
            if h is None:
                continue
            if h in first:
                a, b = find(first[h]), find(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first[h] = i
    # visual copies (lossy re-encode, resize): same difference or average hash, confirmed on thumbnails
    for slot in (0, 1):
        buckets: dict[bytes, list[int]] = {}
        for i, info in enumerate(infos):
            if info.visual_keys is not None:
                buckets.setdefault(info.visual_keys[slot], []).append(i)
        for members in buckets.values():
            reps: list[int] = []  # one member per distinct picture seen in this bucket
            for i in members:
                for r in reps:
                    if _same_picture(infos[r], infos[i]):
                        a, b = find(r), find(i)
                        if a != b:
                            parent[max(a, b)] = min(a, b)
                        break
                else:
                    reps.append(i)
    return [find(i) for i in range(len(infos))]


def duplicate_groups(entries: list[ImageEntry], decode: bool = True) -> list[int]:
    """A group number per entry: entries whose images are copies of each other (same bytes, same pixels, or
    with ``decode`` a re-encoded or resized copy) share it. Unreadable images are a group of their own.
    Used to keep copies together (cross-validation folds) by the same rule ``viaseg check`` reports leaks by."""
    infos = [_file_checks("", e, False, decode, True, []) for e in entries]
    return _copy_roots(infos)


def copies_of(originals: list[ImageEntry], candidates: list[ImageEntry], decode: bool = True) -> list[int]:
    """Indices of ``candidates`` whose picture is also among ``originals`` (same bytes, same pixels, or with
    ``decode`` a re-encoded or resized copy): the validation images training and ``viaseg evaluate
    --exclude-train-duplicates`` leave out, by the same rule ``viaseg check`` reports leaks by."""
    groups = duplicate_groups(list(originals) + list(candidates), decode)
    seen = set(groups[: len(originals)])
    return [i for i, g in enumerate(groups[len(originals) :]) if g in seen]


def _copy_groups(infos: list[_FileInfo]) -> list[list[int]]:
    """Indices of the files that are copies of each other, one sorted list per picture with copies."""
    roots = _copy_roots(infos)
    groups: dict[int, list[int]] = {}
    for i in range(len(infos)):
        if infos[i].byte_hash is not None or infos[i].pixel_hash is not None:
            groups.setdefault(roots[i], []).append(i)
    return [sorted(members) for members in groups.values() if len(members) >= 2]


def _how_copied(copy: _FileInfo, orig: _FileInfo, entry: ImageEntry, oentry: ImageEntry) -> str:
    if copy.byte_hash is not None and copy.byte_hash == orig.byte_hash:
        how = "identical file to"
    elif copy.pixel_hash is not None and copy.pixel_hash == orig.pixel_hash:
        how = "a re-encoded copy (same pixels, different file) of"
    else:
        how = "a visually identical copy (re-encoded or resized) of"
    if entry.path.resolve() == oentry.path.resolve():
        how = "the same file listed again: see"
    return how


def _duplicate_problem(split, entry: ImageEntry, osplit, other: str, how: str) -> Problem:
    if split != osplit:
        return Problem(
            "duplicate_image",
            "error",
            split,
            entry.filename,
            None,
            f"{how} {other}: the image is in both {osplit} and {split}, which leaks "
            f"it between splits; remove it from one of them",
            entry.key,
        )
    return Problem(
        "duplicate_image",
        "warning",
        split,
        entry.filename,
        None,
        f"{how} {other}; keep one entry",
        entry.key,
    )


def _conflict_problem(items, infos: list[_FileInfo], m: int, ref: int) -> Problem | None:
    """conflicting_duplicate of copy ``m`` when its annotation disagrees with that of the earlier copy ``ref``."""
    split, entry, _ = items[m]
    rsplit, rentry, _ = items[ref]
    why = _disagreement(entry, rentry, infos[m].size, infos[ref].size)
    if not why:
        return None
    return Problem(
        "conflicting_duplicate",
        "warning",
        split,
        entry.filename,
        None,
        f"annotated differently from its copy: {why} {rsplit}/{rentry.filename}; "
        f"make them agree (one image must not teach two answers)",
        entry.key,
    )


def _duplicate_problems(items, infos: list[_FileInfo], labeled: list[bool]) -> list[tuple[int, Problem]]:
    """duplicate_image / conflicting_duplicate, each attached to the later copy; returns (item index, problem)."""
    out: list[tuple[int, Problem]] = []
    for members in _copy_groups(infos):
        orig = members[0]
        osplit, oentry, _ = items[orig]
        for m in members[1:]:
            split, entry, _ = items[m]
            how = _how_copied(infos[m], infos[orig], entry, oentry)
            out.append((m, _duplicate_problem(split, entry, osplit, f"{osplit}/{oentry.filename}", how)))
            if not labeled[m]:
                continue
            ref = next((j for j in members if j < m and labeled[j]), None)
            if ref is None:
                continue
            conflict = _conflict_problem(items, infos, m, ref)
            if conflict is not None:
                out.append((m, conflict))
    return out
