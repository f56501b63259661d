"""Per-file dataset checks: :func:`_file_checks` looks at one image file (missing, not a file, unreadable,
the VIA file's recorded byte size, the pixel size) and fingerprints it (byte hash, pixel hash, visual hashes and
a thumbnail) for the copy rule of :mod:`.check_copies`; :class:`FileCache` keeps what was learned about files
that have not changed since the last :func:`.checks.check_dataset`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..annotation.project import ImageEntry
from ..base.errors import ImageReadError
from .check_report import Problem

VISUAL_MAD = (
    3.0  # mean absolute difference (0..255) of 32x32 gray thumbnails under which two images are copies
)


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
        rest = entry.key[len(entry.filename) :]
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


def _size_mismatch(
    split: str | None, entry: ImageEntry, labeled: bool, path: Path, nbytes: int
) -> Problem | None:
    recorded = _recorded_size(entry) if labeled else None
    if recorded is None or recorded == nbytes:
        return None
    return Problem(
        "size_mismatch",
        "warning",
        split,
        entry.filename,
        None,
        f"the VIA file records {recorded} bytes but {Path(path).name} has {nbytes} bytes: it was "
        f"replaced or re-encoded after annotation; check the regions still fit the picture",
        entry.key,
    )


def _stat(entry: ImageEntry, path: Path, problem: Callable[[str, str, str], None]) -> os.stat_result | None:
    """The image file's stat, or None after reporting why it cannot be read (missing, a URL, not a file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        n = len(entry.regions)
        if "://" in entry.filename:
            problem(
                "missing_file",
                "error",
                f"{entry.filename} is a URL; viaseg reads local files only: download the image into "
                f"{entry.base_dir or '.'} and change the entry's filename to the local file name",
            )
            return None
        problem(
            "missing_file",
            "error",
            f"image file {path} does not exist ({n} region{'s' if n != 1 else ''} listed); copy the image "
            f"there, fix the file name in the annotation file, or delete the entry",
        )
        return None
    except OSError as exc:
        problem("unreadable_image", "error", f"cannot access {path} ({exc.strerror or exc})")
        return None
    if not stat.S_ISREG(st.st_mode):
        problem("unreadable_image", "error", f"{path} is not a file; fix the file name or delete the entry")
        return None
    return st


def _read_pixels(
    info: _FileInfo, path: Path, st: os.stat_result, decode: bool, problem: Callable[[str, str, str], None]
) -> None:
    """Pixel size into ``info``; with ``decode`` also the pixel hash and the visual signature."""
    from ..imaging.imageio import image_size, read_image

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
        problem(
            "unreadable_image",
            "error",
            f"{exc.problem}; replace the file with a valid image or delete the entry",
        )


def _byte_hash(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return (
                hashlib.file_digest(f, "blake2b").digest()
                if hasattr(hashlib, "file_digest")
                else hashlib.blake2b(f.read()).digest()
            )
    except OSError:
        return None


def _file_checks(
    split: str | None,
    entry: ImageEntry,
    labeled: bool,
    decode: bool,
    hashing: bool,
    out: list[Problem],
    path: Path | None = None,
) -> _FileInfo:
    info = _FileInfo()
    path = entry.path if path is None else path

    def problem(kind: str, severity: str, message: str) -> None:
        out.append(Problem(kind, severity, split, entry.filename, None, message, entry.key))

    st = _stat(entry, path, problem)
    if st is None:
        return info
    info.exists = True
    info.nbytes = st.st_size
    mismatch = _size_mismatch(split, entry, labeled, path, st.st_size)
    if mismatch is not None:
        out.append(mismatch)
    _read_pixels(info, path, st, decode, problem)
    if hashing:
        info.byte_hash = _byte_hash(path)
    return info
