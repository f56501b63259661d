"""``viaseg masks DATASET --out DIR``: one lossless PNG mask per annotated image.

* DATASET: a VIA file, a folder holding one, or a folder of split subfolders (``train/ val/ test/``, each with
  one VIA file; a subfolder with images but no VIA file is an unlabeled split and gets no masks);
  ``DATASET:split`` selects one split.
* Output mirrors the splits: ``DIR/train/image1.png`` for ``train/image1.jpg`` (a file name with folders,
  ``images/a.jpg``, keeps them: ``DIR/train/images/a.png``). When two images of a split share a stem
  (``a.jpg`` and ``a.jpeg``) both masks keep the full name (``a.jpg.png``, ``a.jpeg.png``) and a warning says so;
  a name that is still taken gets ``~2``, ``~3``. Masks never go into a folder holding the dataset's photos.
* Masks are 8-bit single-channel PNGs the size of the image *as displayed* (EXIF orientation applied), 0/255
  (``--values 255``, default) or 0/1 (``--values index``). Always PNG, never JPEG (lossy masks are wrong masks).
* Images listed with no region get no mask unless ``--include-empty`` (then an all-zero mask: a negative
  example). Regions that are not areas (polyline, point) or are malformed are skipped with a warning.
* Missing or unreadable images: a warning naming the file on stderr, the rest continues, exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from ..annotation.project import ImageEntry
from ..annotation.raster import rasterize_report
from ..base.errors import DatasetError, ImageReadError, ViaSaveError
from ..base.fsutil import atomic_write
from ..imaging.imageio import image_size

VALUES = {"255": 255, "index": 1}


@dataclass
class MasksResult:
    written: list[Path] = field(default_factory=list)
    per_split: dict[str, int] = field(default_factory=dict)
    empty_skipped: int = 0
    failed: list[str] = field(default_factory=list)  # messages about images that got no mask
    warnings: list[str] = field(default_factory=list)


def _load(spec: str):
    """``[(split_name, entries)]`` of the labeled splits and ``[names]`` of unlabeled ones."""
    from ..annotation.dataset import load_dataset

    ds = load_dataset(spec)
    labeled = [(s.name, s.entries) for s in ds.splits.values() if s.project is not None]
    unlabeled = [s.name for s in ds.splits.values() if s.project is None]
    return labeled, unlabeled


def _rel_mask_path(entry: ImageEntry, full_name: bool) -> PurePosixPath:
    """Relative output path of an entry's mask (no absolute parts, no ``..``)."""
    name = entry.filename.replace("\\", "/")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".", "..", "/")]
    if "://" in name or not parts or PurePosixPath(name).is_absolute():
        parts = [PurePosixPath(name).name or entry.key]
    rel = PurePosixPath(*parts)
    return rel.with_name(rel.name + ".png") if full_name else rel.with_suffix(".png")


def _encode_png(mask: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:  # pragma: no cover - cv2 only fails on invalid input
        raise ViaSaveError("PNG encoding failed")
    return buf.tobytes()


def write_masks(
    spec: str | Path, out_dir: str | Path, value: int = 255, include_empty: bool = False, log=None
) -> MasksResult:
    """Write the masks of every labeled split of ``spec`` under ``out_dir``. ``log(msg)`` gets warnings."""
    out_dir = Path(out_dir)
    res = MasksResult()

    def warn(msg: str) -> None:
        res.warnings.append(msg)
        if log is not None:
            log(msg)

    labeled, _unlabeled = _load(str(spec))
    if not labeled:
        raise DatasetError(f"{spec}: no labeled split (no VIA file), so there are no masks to write")
    plan = _plan(labeled, out_dir, include_empty, warn)
    _refuse_photo_folders(plan, labeled, out_dir)
    res.per_split = {split: 0 for split, _entries in labeled}
    for split, e, dest in plan:
        if dest is None:
            res.empty_skipped += 1
            continue
        try:
            w, h = image_size(e.path)
        except ImageReadError as exc:
            msg = f"{split}/{e.filename}: no mask: {exc}"
            res.failed.append(msg)
            warn(msg)
            continue
        mask, skipped = rasterize_report(e.regions, (w, h))
        for s in skipped:
            warn(f"{split}/{e.filename}: {s} (not in the mask)")
        if value != 1:
            mask = mask * np.uint8(value)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(dest, _encode_png(mask), backup=False)
        except (OSError, ViaSaveError) as exc:
            raise ViaSaveError(f"{dest}: cannot write mask ({exc})") from exc
        res.written.append(dest)
        res.per_split[split] += 1
    return res


def _plan(labeled, out_dir: Path, include_empty: bool, warn) -> list[tuple[str, ImageEntry, Path | None]]:
    """``(split, entry, mask path or None for no mask)`` of every entry, each mask path used once: names that
    still meet after the stem rule (``a.jpg``, ``a.png`` and ``a.jpg.png`` in one split) get ``~2``, ``~3``
    (before, the last one written replaced the other's mask and the count said 3 masks for 2 files)."""
    plan: list[tuple[str, ImageEntry, Path | None]] = []
    for split, entries in labeled:
        stems: dict[str, int] = {}
        for e in entries:
            k = str(_rel_mask_path(e, False)).lower()
            stems[k] = stems.get(k, 0) + 1
        used: set[str] = set()
        for e in entries:
            if not e.regions and not include_empty:
                plan.append((split, e, None))
                continue
            clash = stems[str(_rel_mask_path(e, False)).lower()] > 1
            rel = _rel_mask_path(e, clash)
            n = 2
            while str(rel).lower() in used:
                rel = _rel_mask_path(e, clash)
                rel = rel.with_name(f"{rel.stem}~{n}.png")
                n += 1
            if clash or n > 2:
                warn(f"{split}/{e.filename}: another image of the split has the same stem; mask named {rel}")
            used.add(str(rel).lower())
            plan.append((split, e, out_dir / split / Path(*rel.parts)))
    return plan


def _refuse_photo_folders(plan, labeled, out_dir: Path) -> None:
    """Masks never go into a folder that holds the dataset's photos: ``--out`` the dataset folder (or the
    folder above a VIA file) wrote ``image51.png``'s mask over the photo itself, and other masks among the
    photos, where they read as unlisted photos."""
    photo_dirs = {e.path.parent.resolve() for _split, entries in labeled for e in entries}
    for _split, e, dest in plan:
        if dest is not None and dest.parent.resolve() in photo_dirs:
            raise DatasetError(
                f"--out {out_dir}: the mask of {e.filename} would go to {dest}, a folder holding the dataset's "
                "photos (a mask can replace a photo of the same name there); choose an output folder outside "
                "the dataset's photo folders, e.g. --out masks"
            )


def _run(args: argparse.Namespace) -> int:
    def log(msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr)

    res = write_masks(args.dataset, args.out, VALUES[args.values], args.include_empty, log=log)
    splits = ", ".join(f"{k}: {v}" for k, v in res.per_split.items())
    print(f"wrote {len(res.written)} masks to {args.out} ({splits})")
    if res.empty_skipped:
        print(
            f"{res.empty_skipped} images without regions got no mask (use --include-empty for all-zero masks)"
        )
    if res.failed:
        print(f"{len(res.failed)} images could not be read (see warnings above)", file=sys.stderr)
        return 1
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "masks",
        help="write one PNG mask per annotated image",
        description="Rasterize the VIA regions of a dataset into lossless 8-bit PNG masks, one per annotated "
        "image, the size of the image, in OUT/<split>/<image name>.png.",
    )
    p.add_argument("dataset", help="VIA file, dataset folder (train/ val/ test/ subfolders) or DATASET:split")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument(
        "--values",
        choices=tuple(VALUES),
        default="255",
        help="pixel value of damage: 255 (viewable, default) or index (1, for training code)",
    )
    p.add_argument(
        "--include-empty", action="store_true", help="also write all-zero masks for images without regions"
    )
    p.set_defaults(func=_run)
