"""Datasets: one VIA file, or a folder of splits.

Layouts understood by :func:`load_dataset`:

* a VIA file (``.json`` / ``.csv``) -> one split named after its folder;
* a folder holding a VIA file directly -> one split named after the folder (``"all"`` for a nameless root);
* a folder whose subfolders each hold a VIA file (``train/``, ``val/``...) -> one split per subfolder;
  a subfolder holding images but no VIA file (``test/``) is an *unlabeled* split whose entries are
  synthesized from the image files (no regions, ``key`` = file name);
* a folder holding only images -> one unlabeled split.

Annotations made elsewhere open the same way (:func:`viaseg.core.annotation.formats.foreign.load_input`): a COCO file, a labelme
JSON file, a folder whose ``*.json`` files are all labelme files (one image each: together one split), and a
folder (or split subfolder) holding one COCO file. Their projects have ``path=None`` (like an unlabeled split's):
nothing writes VIA content over them; saving needs a VIA file name first.

What a reader could not load (a shape type it does not know, a broken JSON file among labelme files, the videos
of a VIA 3 project...) is never dropped unsaid: each is a line of ``Split.warnings`` naming the file and the
problem (``viaseg check`` reports them as errors).

``DATASET:split`` selects one split (see :func:`parse_spec`). Which file in a folder is the VIA file:
``via_region_data.json`` when present, else the single ``*.json`` / ``*.csv`` that parses as VIA (else the
labelme files, or the single COCO file); several candidates raise :class:`DatasetError` naming them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import DatasetError, ViaFormatError
from ..imaging.imageio import IMAGE_EXTS as IMAGE_EXTS  # the one list; re-exported for dataset users
from .project import ImageEntry, Project

PREFERRED_VIA_NAME = "via_region_data.json"
VIA_EXTS = (".json", ".csv")
# splits with a conventional name come first, in this order; the others follow alphabetically
_SPLIT_ORDER = ("train", "training", "val", "valid", "validation", "dev", "test", "testing")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def natural_key(text: str) -> list:
    """Sort key putting ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


# photo formats viaseg does not read (camera raw, HEIF/AVIF): said, not skipped unseen
UNREAD_PHOTO_EXTS = (
    ".heic",
    ".heif",
    ".avif",
    ".dng",
    ".cr2",
    ".cr3",
    ".nef",
    ".arw",
    ".orf",
    ".rw2",
    ".raw",
)


def folder_leftovers(folder: str | Path) -> str:
    """What of ``folder`` a folder input leaves out that a user may have meant as photos, in words ("" when
    nothing): subfolders (not searched), photos in formats viaseg does not read, links to missing files."""
    subdirs, unread, broken = 0, 0, 0
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                try:
                    if e.is_dir():
                        subdirs += 1
                    elif os.path.splitext(e.name)[1].lower() in UNREAD_PHOTO_EXTS:
                        unread += 1
                    elif is_image_file(Path(e.name)) and e.is_symlink() and not os.path.exists(e.path):
                        broken += 1
                except OSError:
                    continue
    except OSError:
        return ""
    parts = [f"{subdirs} subfolder(s) (folders are not searched: give each one)"] if subdirs else []
    if unread:
        parts.append(
            f"{unread} photo(s) in a format viaseg does not read (HEIC, AVIF, camera raw: save as JPEG)"
        )
    if broken:
        parts.append(f"{broken} link(s) to missing files")
    return "; ".join(parts)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (hidden files left out), in natural order — the one folder listing
    of datasets, ``viaseg predict`` and photos dropped on the app. One ``scandir``: no ``stat`` per file where the
    file system reports entry types (a folder of 100,000 photos lists in well under a second)."""
    names = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if not is_image_file(Path(e.name)):
                    continue
                try:
                    if e.is_file():
                        names.append(e.name)
                except OSError:
                    continue
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list folder ({exc.strerror or exc})") from exc
    names.sort(key=natural_key)
    return [folder / n for n in names]


@dataclass(eq=False)
class Split:
    """One split of a dataset. ``project`` is None for an unlabeled split (a folder of images)."""

    name: str
    project: Project | None
    image_dir: Path
    entries: list[ImageEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what its files held that is not loaded, and why

    @property
    def labeled(self) -> bool:
        return self.project is not None

    @property
    def region_count(self) -> int:
        return sum(len(e.regions) for e in self.entries)

    def unlisted_images(self) -> list[Path]:
        """Image files in ``image_dir`` that no entry of a labeled split refers to ([] when unlabeled)."""
        if self.project is None or not self.image_dir.is_dir():
            return []
        listed = {_norm(e.path) for e in self.entries}
        found = [p for p in list_images(self.image_dir) if _norm(p) not in listed]
        if (
            self.image_dir / PREDICT_JOURNAL
        ).is_file():  # `viaseg predict`'s output: its own masks and overlays
            found = [p for p in found if not p.name.endswith(PREDICT_OUTPUTS)]
        return found


# a folder `viaseg predict` wrote (core/cli/predict_cmd.py): its journal, and the names of what it writes beside
# the VIA file, which are not photos to list (`viaseg check` on it named every mask and overlay "unlisted")
PREDICT_JOURNAL = "predictions.jsonl"
PREDICT_OUTPUTS = ("_mask.png", "_overlay.jpg")


@dataclass(eq=False)
class Dataset:
    """``root`` is the path the dataset was loaded from; ``splits`` keeps a stable order."""

    root: Path
    splits: dict[str, Split] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        try:
            return self.splits[name]
        except KeyError:
            raise DatasetError(
                f"{self.root}: no split named {name!r} (splits: {', '.join(self.splits) or 'none'})"
            ) from None

    def entries(self, split: str | None = None) -> Iterator[tuple[str, ImageEntry]]:
        """``(split_name, entry)`` for every image of one split, or of all splits in order."""
        splits = [self.split(split)] if split is not None else list(self.splits.values())
        for sp in splits:
            for e in sp.entries:
                yield sp.name, e

    @property
    def image_count(self) -> int:
        return sum(len(s.entries) for s in self.splits.values())

    @property
    def region_count(self) -> int:
        return sum(s.region_count for s in self.splits.values())


def _norm(p: Path) -> str:
    """Absolute, normalised spelling of a path (no file-system access: cheap for 10,000s of entries)."""
    return os.path.normcase(os.path.abspath(p))


# --------------------------------------------------------------------------------------------- specs


def parse_spec(spec: str | Path) -> tuple[Path, str | None]:
    """``"DIR"`` -> ``(DIR, None)``; ``"DIR:val"`` -> ``(DIR, "val")``.

    A string that exists as a path as a whole is a path even if it contains ``:``. Raises DatasetError
    when neither the whole string nor the part before the last ``:`` exists."""
    if isinstance(spec, Path):
        if not spec.exists():
            raise DatasetError(f"{spec}: no such file or folder")
        return spec, None
    text = str(spec)
    if not text:
        raise DatasetError("empty dataset path")
    whole = Path(text)
    if whole.exists():
        return whole, None
    if ":" in text:
        path, split = text.rsplit(":", 1)
        if path and split and "/" not in split and "\\" not in split:
            p = Path(path)
            if p.exists():
                return p, split
            raise DatasetError(f"{path}: no such file or folder (from dataset spec {text!r})")
    raise DatasetError(f"{text}: no such file or folder")


# --------------------------------------------------------------------------------------------- loading


def _load_via(path: Path, warnings: list[str]) -> Project:
    from .formats.foreign import via_checked
    from .formats.via_io import (
        load_via,  # imported late: via_io is the heavy part and not needed by parse_spec
    )

    return via_checked(load_via(path), warnings)


def _load_any(path: Path, warnings: list[str] | None = None) -> tuple[Project, str]:
    """A VIA, COCO or labelme file's project and format (a VIA format name, ``coco`` or ``labelme``); what it
    holds that is not loaded is described in ``warnings``."""
    from .formats.foreign import load_input

    return load_input(path, warnings if warnings is not None else [])


def find_via_file(folder: Path, warnings: list[str] | None = None) -> tuple[Path, Project] | None:
    """The annotation file of ``folder`` and its parsed project, or None when the folder has no json/csv at all.

    ``via_region_data.json`` wins; otherwise the one ``*.json``/``*.csv`` that parses as VIA; with none, the
    labelme files (every json there; the path returned is the first) or the one COCO file. Raises
    DatasetError when several VIA files parse, or when json/csv files exist but none of them is an annotation
    file (so a broken annotation file is never mistaken for an unlabeled folder). Among labelme files, a file
    that cannot be read is left out and named in ``warnings``, as is whatever a reader did not load."""
    warnings = warnings if warnings is not None else []
    preferred = folder / PREFERRED_VIA_NAME
    if preferred.is_file():
        return preferred, _load_via(preferred, warnings)
    try:
        candidates = sorted(
            (
                p
                for p in folder.iterdir()
                if p.is_file() and p.suffix.lower() in VIA_EXTS and not p.name.startswith(".")
            ),
            key=lambda p: natural_key(p.name),
        )
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list folder ({exc.strerror or exc})") from exc
    if not candidates:
        return None
    parsed: dict[str, list[tuple[Path, Project]]] = {"via": [], "labelme": [], "coco": []}
    failures: list[tuple[Path, ViaFormatError]] = []
    notes: dict[Path, list[str]] = {}
    for p in candidates:
        try:
            project, kind = _load_any(p, notes.setdefault(p, []))
        except ViaFormatError as exc:
            failures.append((p, exc))
            continue
        parsed[kind if kind in parsed else "via"].append((p, project))
    via = parsed["via"]

    def chosen(files: list[tuple[Path, Project]]) -> None:
        warnings.extend(m for p, _ in files for m in notes[p])

    if len(via) == 1:
        chosen(via)
        return via[0]
    if len(via) > 1:
        names = ", ".join(p.name for p, _ in via)
        raise DatasetError(
            f"{folder}: several VIA files ({names}); keep one, or name it {PREFERRED_VIA_NAME}, "
            f"or pass the file itself"
        )
    if parsed["labelme"] and not parsed["coco"]:  # a folder of labelme files: a broken one is left out, named
        from .formats.labelme_io import left_out

        warnings.extend(left_out(p, exc) for p, exc in failures)
        chosen(parsed["labelme"])
        return _foreign_file(folder, parsed["labelme"], [])
    if not failures:
        chosen(parsed["coco"])
        return _foreign_file(folder, parsed["labelme"], parsed["coco"])
    if len(failures) == 1:
        raise failures[0][1]
    why = "; ".join(f"{p.name}: {exc.problem}" for p, exc in failures)
    raise DatasetError(f"{folder}: none of the json/csv files is a readable VIA file ({why})")


def _foreign_file(folder: Path, labelme: list, coco: list) -> tuple[Path, Project]:
    """A folder without a VIA file: its labelme files as one project, or its one COCO file."""
    if labelme and not coco:
        from .formats.foreign import foreign_project

        return labelme[0][0], foreign_project([im for _, pr in labelme for im in pr.images])
    if len(coco) == 1 and not labelme:
        return coco[0]
    names = ", ".join(p.name for p, _ in coco + labelme)
    raise DatasetError(
        f"{folder}: several annotation files that are not VIA files ({names}); "
        "keep one set (labelme files, or one COCO file), or pass the file itself"
    )


def _labeled_split(name: str, project: Project, image_dir: Path, warnings: list[str] | None = None) -> Split:
    for e in project.images:
        if e.base_dir is None:
            e.base_dir = image_dir
    return Split(
        name=name, project=project, image_dir=image_dir, entries=project.images, warnings=warnings or []
    )


def _unlabeled_split(name: str, folder: Path, images: list[Path] | None = None) -> Split:
    images = list_images(folder) if images is None else images
    entries = [ImageEntry(key=p.name, filename=p.name, size=None, base_dir=folder) for p in images]
    return Split(name=name, project=None, image_dir=folder, entries=entries)


def _split_sort_key(name: str) -> tuple:
    low = name.lower()
    if low in _SPLIT_ORDER:
        return (0, _SPLIT_ORDER.index(low), "")
    return (1, 0, natural_key(name))


def _split_name_of(folder: Path) -> str:
    return folder.resolve().name or "all"


def _load_folder(folder: Path) -> dict[str, Split]:
    warnings: list[str] = []
    own = find_via_file(folder, warnings)
    if own is not None:
        path, project = own
        name = _split_name_of(folder)
        return {name: _labeled_split(name, project, path.parent, warnings)}
    try:
        subdirs = sorted(
            (d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_"))),
            key=lambda d: _split_sort_key(d.name),
        )
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list folder ({exc.strerror or exc})") from exc
    splits: dict[str, Split] = {}
    for d in subdirs:
        warnings = []
        found = find_via_file(d, warnings)
        if found is not None:
            path, project = found
            splits[d.name] = _labeled_split(d.name, project, path.parent, warnings)
            continue
        images = list_images(d)
        if images:
            splits[d.name] = _unlabeled_split(d.name, d, images)
    if splits:
        return splits
    images = list_images(folder)
    if images:
        name = _split_name_of(folder)
        return {name: _unlabeled_split(name, folder, images)}
    raise DatasetError(
        f"{folder}: not a dataset: no VIA file ({PREFERRED_VIA_NAME} or one *.json/*.csv), "
        f"no split subfolders and no images"
    )


def load_dataset(spec: str | Path) -> Dataset:
    """Load a dataset from a VIA file, a folder, or ``DATASET:split`` (then only that split is loaded).

    Raises DatasetError (bad path, unknown split, ambiguous VIA files) or ViaFormatError (unreadable VIA,
    COCO or labelme file); both name the file."""
    path, split = parse_spec(spec)
    if path.is_file():
        if path.suffix.lower() not in VIA_EXTS:
            raise DatasetError(f"{path}: not a VIA file (expected .json or .csv)")
        warnings: list[str] = []
        project = _load_any(path, warnings)[0]
        name = _split_name_of(path.parent)
        splits = {name: _labeled_split(name, project, path.parent, warnings)}
    elif path.is_dir():
        if split is not None and (path / split).is_dir() and (path / split).name == split:
            # load just the requested split folder (cheaper, and a broken sibling does not block it)
            sub = path / split
            found = find_via_file(sub, warnings := [])
            if found is not None:
                splits = {split: _labeled_split(split, found[1], found[0].parent, warnings)}
            else:
                images = list_images(sub)
                if not images:
                    raise DatasetError(f"{sub}: split folder holds no VIA file and no images")
                splits = {split: _unlabeled_split(split, sub, images)}
            return Dataset(root=path, splits=splits)
        splits = _load_folder(path)
    else:
        raise DatasetError(f"{path}: neither a file nor a folder")
    ds = Dataset(root=path, splits=splits)
    if split is not None:
        ds = Dataset(root=path, splits={split: ds.split(split)})
    return ds
