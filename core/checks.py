"""Dataset checks: find what would silently spoil training before it happens. ``viaseg check DATASET``.

:func:`check_dataset` returns a :class:`Report` (``images``, ``regions``, ``problems``); each
:class:`Problem` has a ``kind`` (see :data:`KINDS`), a ``severity`` (``error`` | ``warning`` | ``info``), the
``split`` and ``image`` (file name as written in the VIA file) it concerns, the ``region`` index (or None) and
a ``message`` saying what is wrong and what to do. Problems come in a stable order: by split (dataset order),
image (file order), region, then kind. :func:`check_entry` re-checks one image (the GUI calls it after edits).

Exit status of ``viaseg check``: 0 no errors, 1 errors found, 2 unusable input (bad path, unreadable VIA file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .check_geometry import analyze_shapes
from .check_report import FILE_KINDS, KINDS, REGION_KINDS, SEVERITIES, Problem, Report
from .dataset import Dataset, Split, load_dataset
from .errors import ImageReadError
from .project import ImageEntry

__all__ = ["FILE_KINDS", "KINDS", "REGION_KINDS", "SEVERITIES", "FileCache", "Problem", "Report", "check_dataset",
           "check_entry", "register"]

OOB_TOLERANCE = 1.0  # pixels: VIA draws on pixel edges, so x == width is inside
CONFLICT_IOU = 0.5  # copies whose region masks overlap less than this disagree
VISUAL_MAD = 3.0  # mean absolute difference (0..255) of 32x32 gray thumbnails under which two images are copies


# --------------------------------------------------------------------------------------------- per-file checks


@dataclass
class _FileInfo:
    exists: bool = False
    nbytes: int | None = None
    size: tuple[int, int] | None = None  # (w, h)
    byte_hash: bytes | None = None
    pixel_hash: bytes | None = None
    visual_keys: tuple[bytes, bytes] | None = None  # (difference hash, average hash) of the gray thumbnail
    thumb: np.ndarray | None = None  # 32x32 gray, to confirm a visual match
    stamp: tuple[int, int, bool] | None = None  # (bytes, mtime_ns, decoded) when read without a problem


class FileCache:
    """What checks learned about image files, kept from one :func:`check_dataset` to the next (the app checks
    the whole dataset again after an image is added or removed): a file whose size and modification time are
    unchanged is not read and decoded again. Only files read without a problem are kept."""

    def __init__(self) -> None:
        self._infos: dict[str, _FileInfo] = {}

    def __len__(self) -> int:
        return len(self._infos)

    def get(self, real: str, decode: bool) -> _FileInfo | None:
        info = self._infos.get(real)
        if info is None:
            return None
        try:
            st = os.stat(real)
        except OSError:
            return None
        return info if info.stamp == (st.st_size, st.st_mtime_ns, decode) else None

    def put(self, real: str, info: _FileInfo) -> None:
        if info.stamp is not None:
            self._infos[real] = info


def _recorded_size(entry: ImageEntry) -> int | None:
    """The byte size the VIA file records (``size``, else the digits after the filename in the key)."""
    s = entry.size
    if isinstance(s, bool):
        return None
    if isinstance(s, int):
        return s if s >= 0 else None
    if isinstance(s, float) and s.is_integer():
        return int(s) if s >= 0 else None
    if isinstance(s, str) and s.strip().isdigit():
        return int(s.strip())
    if s is None and entry.key.startswith(entry.filename):
        rest = entry.key[len(entry.filename):]
        if rest.isdigit():
            return int(rest)
    return None


def _visual_signature(img: np.ndarray) -> tuple[tuple[bytes, bytes], np.ndarray]:
    """Keys that survive re-encoding and resizing (64-bit difference and average hashes) and a thumbnail."""
    import cv2

    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    d = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    a = cv2.resize(gray, (8, 8), interpolation=cv2.INTER_AREA)
    thumb = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    keys = (np.packbits(d[:, 1:] > d[:, :-1]).tobytes(), np.packbits(a > a.mean()).tobytes())
    return keys, thumb


def _same_picture(a: _FileInfo, b: _FileInfo) -> bool:
    """Confirm a visual-hash match: same aspect ratio and nearly the same thumbnail."""
    if a.thumb is None or b.thumb is None or not a.size or not b.size:
        return False
    ra, rb = a.size[0] / a.size[1], b.size[0] / b.size[1]
    if abs(ra - rb) > 0.02 * max(ra, rb):
        return False
    return float(np.abs(a.thumb - b.thumb).mean()) <= VISUAL_MAD


def _size_mismatch(split: str, entry: ImageEntry, labeled: bool, path: Path, nbytes: int) -> Problem | None:
    recorded = _recorded_size(entry) if labeled else None
    if recorded is None or recorded == nbytes:
        return None
    return Problem("size_mismatch", "warning", split, entry.filename, None,
                   f"the VIA file records {recorded} bytes but {Path(path).name} has {nbytes} bytes: it was "
                   f"replaced or re-encoded after annotation; check the regions still fit the picture", entry.key)


def _file_checks(split: str, entry: ImageEntry, labeled: bool, decode: bool, hashing: bool,
                 out: list[Problem], path: Path | None = None) -> _FileInfo:
    from .imageio import image_size, read_image

    info = _FileInfo()
    path = entry.path if path is None else path

    def problem(kind, severity, message):
        out.append(Problem(kind, severity, split, entry.filename, None, message, entry.key))

    try:
        st = os.stat(path)
    except FileNotFoundError:
        n = len(entry.regions)
        if "://" in entry.filename:
            problem("missing_file", "error",
                    f"{entry.filename} is a URL; viaseg reads local files only: download the image into "
                    f"{entry.base_dir or '.'} and change the entry's filename to the local file name")
            return info
        problem("missing_file", "error",
                f"image file {path} does not exist ({n} region{'s' if n != 1 else ''} listed); copy the image "
                f"there, fix the file name in the VIA file, or delete the entry")
        return info
    except OSError as exc:
        problem("unreadable_image", "error", f"cannot access {path} ({exc.strerror or exc})")
        return info
    if not stat.S_ISREG(st.st_mode):
        problem("unreadable_image", "error", f"{path} is not a file; fix the file name or delete the entry")
        return info
    info.exists = True
    info.nbytes = st.st_size
    mismatch = _size_mismatch(split, entry, labeled, path, st.st_size)
    if mismatch is not None:
        out.append(mismatch)
    try:
        if decode:
            img = read_image(path)
            info.size = (int(img.shape[1]), int(img.shape[0]))
            h = hashlib.blake2b(digest_size=16)
            h.update(repr(img.shape).encode())
            h.update(np.ascontiguousarray(img).data)
            info.pixel_hash = h.digest()
            info.visual_keys, info.thumb = _visual_signature(img)
        else:
            info.size = image_size(path)
        info.stamp = (st.st_size, st.st_mtime_ns, decode)
    except ImageReadError as exc:
        problem("unreadable_image", "error", f"{exc.problem}; replace the file with a valid image or delete the entry")
    if hashing:
        try:
            with open(path, "rb") as f:
                info.byte_hash = hashlib.file_digest(f, "blake2b").digest() if hasattr(hashlib, "file_digest") \
                    else hashlib.blake2b(f.read()).digest()
        except OSError:
            pass
    return info


# --------------------------------------------------------------------------------------------- geometry


def _geometry_problems(items: list[tuple[str, ImageEntry, tuple[int, int] | None]]) -> dict[int, list[Problem]]:
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
            Problem(kind, severity, split, entry.filename, rindex[s], message, entry.key))

    for s in sorted(issues):
        for iss in issues[s]:
            add(s, iss.kind, iss.severity, iss.message)
    wh = np.array([items[k][2] if items[k][2] is not None else (np.nan, np.nan) for k in owner], dtype=np.float64)
    tol = OOB_TOLERANCE
    with np.errstate(invalid="ignore"):
        outside = (bbox[:, 0] < -tol) | (bbox[:, 1] < -tol) | (bbox[:, 2] > wh[:, 0] + tol) | \
            (bbox[:, 3] > wh[:, 1] + tol)
        fully = (bbox[:, 2] < 0) | (bbox[:, 3] < 0) | (bbox[:, 0] > wh[:, 0]) | (bbox[:, 1] > wh[:, 1])
    for s in np.flatnonzero(outside):
        x0, y0, x1, y1 = bbox[s]
        w, h = wh[s]
        if np.isnan(w):  # image size unknown (missing/unreadable file): only negative coordinates are sure
            add(int(s), "out_of_bounds", "warning",
                f"region has negative coordinates (x {x0:g}..{x1:g}, y {y0:g}..{y1:g}), outside any image; "
                f"move it inside the image")
            continue
        where = f"x {x0:g}..{x1:g}, y {y0:g}..{y1:g} in a {w:g}x{h:g} image"
        if fully[s]:
            add(int(s), "out_of_bounds", "error",
                f"region lies entirely outside the image ({where}); wrong image or wrong coordinates: "
                f"delete it or redraw it")
        else:
            add(int(s), "out_of_bounds", "warning",
                f"region reaches outside the image ({where}); drag it inside (masks clip it)")
    return out


def check_entry(split_name: str | None, entry: ImageEntry, image_size: tuple[int, int] | None = None,
                labeled: bool = True) -> list[Problem]:
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
    return Problem("unannotated_image", "info", split, entry.filename, None,
                   "no regions: it trains as an image without damage; annotate it if it shows damage, or delete "
                   "the entry", entry.key)


# --------------------------------------------------------------------------------------------- dataset-level


def _value_text(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)


def _attribute_names(split: Split) -> tuple[dict[str, set[str]], Counter, Counter]:
    """Per region-attribute name: its values; how many regions use it; how often two names share a region."""
    values: dict[str, set[str]] = {}
    uses: Counter = Counter()
    together: Counter = Counter()
    for e in split.entries:
        for r in e.regions:
            attrs = r.attributes if isinstance(r.attributes, dict) else {}
            keys = sorted(str(k) for k in attrs)
            for k, v in attrs.items():
                values.setdefault(str(k), set()).add(_value_text(v))
            uses.update(keys)
            if len(keys) > 1:
                together.update((a, b) for i, a in enumerate(keys) for b in keys[i + 1:])
    return values, uses, together


def _names(ns) -> str:
    return ", ".join(f"'{n}'" for n in ns)


def _attribute_problems(dataset: Dataset) -> list[Problem]:
    """Across splits: different attribute name sets. Within a split: two names never used together on one
    region but holding the same values (one attribute under two names, e.g. after merging files)."""
    out: list[Problem] = []
    ref: tuple[str, dict[str, set[str]]] | None = None
    for sp in dataset.splits.values():
        if not sp.labeled:
            continue
        values, uses, together = _attribute_names(sp)
        names = sorted(values)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                common = values[a] & values[b]
                if common and not together[(a, b)]:
                    out.append(Problem(
                        "attribute_mismatch", "warning", sp.name, None, None,
                        f"{uses[a]} region(s) use '{a}' and {uses[b]} use '{b}' for the same values "
                        f"({', '.join(sorted(common)[:5])}): one attribute under two names; rename one of them"))
        if not names:
            continue
        if ref is None:
            ref = (sp.name, values)
            continue
        rname, rvalues = ref
        if set(values) == set(rvalues):
            continue
        only_here, only_ref = sorted(set(values) - set(rvalues)), sorted(set(rvalues) - set(values))
        if only_here and only_ref:
            msg = f"region attributes differ: {rname} uses {_names(only_ref)} where {sp.name} uses {_names(only_here)}"
        elif only_here:
            msg = f"region attributes differ: {sp.name} also uses {_names(only_here)}, which {rname} does not"
        else:
            msg = f"region attributes differ: {sp.name} lacks {_names(only_ref)}, which {rname} uses"
        here = set().union(*(values[n] for n in only_here)) if only_here else set()
        there = set().union(*(rvalues[n] for n in only_ref)) if only_ref else set()
        common = here & there
        if common:
            msg += (f"; both hold the same values ({', '.join(sorted(common)[:5])}), so this is one attribute under "
                    f"two names: rename it in one VIA file so all splits agree (training by class reads one "
                    f"attribute)")
        else:
            msg += "; make every split use the same attribute names, or classes will not match between splits"
        out.append(Problem("attribute_mismatch", "warning", sp.name, None, None, msg))
    return out


def _label_multiset(entry: ImageEntry) -> list[str]:
    labs = []
    for r in entry.regions:
        attrs = r.attributes if isinstance(r.attributes, dict) else {}
        labs.append("|".join(sorted(str(v) for v in attrs.values())))
    return sorted(labs)


def _disagreement(a: ImageEntry, b: ImageEntry, size_a: tuple[int, int] | None,
                  size_b: tuple[int, int] | None) -> str | None:
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
    from .raster import rasterize

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


def _duplicate_problems(items, infos: list[_FileInfo], labeled: list[bool]) -> list[tuple[int, Problem]]:
    """duplicate_image / conflicting_duplicate, each attached to the later copy; returns (item index, problem)."""
    roots = _copy_roots(infos)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        if infos[i].byte_hash is not None or infos[i].pixel_hash is not None:
            groups.setdefault(roots[i], []).append(i)
    out: list[tuple[int, Problem]] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort()
        orig = members[0]
        osplit, oentry, _ = items[orig]
        for m in members[1:]:
            split, entry, _ = items[m]
            other = f"{osplit}/{oentry.filename}"
            if infos[m].byte_hash is not None and infos[m].byte_hash == infos[orig].byte_hash:
                how = "identical file to"
            elif infos[m].pixel_hash is not None and infos[m].pixel_hash == infos[orig].pixel_hash:
                how = "a re-encoded copy (same pixels, different file) of"
            else:
                how = "a visually identical copy (re-encoded or resized) of"
            if entry.path.resolve() == oentry.path.resolve():
                how = "the same file listed again: see"
            if split != osplit:
                out.append((m, Problem("duplicate_image", "error", split, entry.filename, None,
                                       f"{how} {other}: the image is in both {osplit} and {split}, which leaks "
                                       f"it between splits; remove it from one of them", entry.key)))
            else:
                out.append((m, Problem("duplicate_image", "warning", split, entry.filename, None,
                                       f"{how} {other}; keep one entry", entry.key)))
            if not labeled[m]:
                continue
            ref = next((j for j in members if j < m and labeled[j]), None)
            if ref is None:
                continue
            rsplit, rentry, _ = items[ref]
            why = _disagreement(entry, rentry, infos[m].size, infos[ref].size)
            if why:
                out.append((m, Problem("conflicting_duplicate", "warning", split, entry.filename, None,
                                       f"annotated differently from its copy: {why} {rsplit}/{rentry.filename}; "
                                       f"make them agree (one image must not teach two answers)", entry.key)))
    return out


# --------------------------------------------------------------------------------------------- the whole dataset


def _sorted(problems: list[Problem], split_pos: dict, entry_pos: dict, extra: dict | None = None) -> list[Problem]:
    kind_pos = {k: i for i, k in enumerate(KINDS)}

    def key(p: Problem):
        ep = extra.get(id(p), -1) if extra else -1
        return (split_pos.get(p.split, -1), ep, -1 if p.region is None else p.region,
                kind_pos.get(p.kind, len(kind_pos)), p.kind, p.message)

    return sorted(problems, key=key)


def check_dataset(dataset: Dataset, decode: bool = True,
                  progress: Callable[[int, int], None] | None = None, file_cache: FileCache | None = None) -> Report:
    """Check every split of ``dataset``. ``decode=False`` reads only image headers (no pixel hashing, so
    re-encoded duplicates are not detected; identical files still are). ``progress(done, total)`` is called
    after each image file (for a GUI progress bar). ``file_cache`` keeps what was read about each unchanged
    file for the next check."""
    total = dataset.image_count
    items: list[tuple[str, ImageEntry, tuple[int, int] | None]] = []
    labeled: list[bool] = []
    infos: list[_FileInfo] = []
    problems: list[Problem] = []
    pos: dict[int, int] = {}  # id(problem) -> position of its image in dataset order
    cache: dict[str, _FileInfo] = {}

    def place(p: Problem, k: int) -> None:
        problems.append(p)
        pos[id(p)] = k

    for sp in dataset.splits.values():
        for entry in sp.entries:
            k = len(items)
            found: list[Problem] = []
            path = entry.path
            real = os.path.normcase(os.path.abspath(path))
            known = cache.get(real)
            if known is None or not known.exists:
                known = file_cache.get(real, decode) if file_cache is not None else None
            if known is not None and known.exists:  # listed twice, or unchanged since the last check
                info = known
                mismatch = _size_mismatch(sp.name, entry, sp.labeled, path, info.nbytes)
                if mismatch is not None:
                    found.append(mismatch)
            else:
                info = _file_checks(sp.name, entry, sp.labeled, decode, True, found, path)
                if file_cache is not None:
                    file_cache.put(real, info)
            cache[real] = info
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
            place(Problem("unlisted_image", "info", sp.name, path.name, None,
                          f"{path.name} is in the {sp.name} folder but not in its VIA file; add and annotate it, "
                          f"or move it out of the folder"), base + i)
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


# --------------------------------------------------------------------------------------------- command line


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="check a dataset: missing/corrupt images, bad polygons, images shared between splits",
        description="Check a VIA dataset before training: missing or unreadable images, size fields that do not "
        "match the files, degenerate / self-intersecting / out-of-image regions, duplicate images (leaks between "
        "splits) and conflicting annotations of them, attribute names that differ between splits, images without "
        "regions. Exit status: 0 no errors, 1 errors found, 2 the dataset cannot be read.",
    )
    p.add_argument("dataset", metavar="DATASET",
                   help="a VIA file, a folder (with train/ val/ test/ subfolders or a VIA file), or DATASET:split")
    p.add_argument("--json", action="store_true",
                   help='print {"images", "regions", "problems": [{kind, severity, split, image, region, message}]}')
    p.add_argument("--no-decode", action="store_true",
                   help="read image headers only (faster; re-encoded duplicate copies are then not detected)")
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
