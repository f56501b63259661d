"""Decoded images for the canvas: numpy (core.imageio) -> QImage, an LRU cache, and background prefetch.

Images are decoded at *display* resolution (``max_side``; libjpeg decodes 12-MP JPEGs at 1/2 or 1/4 scale,
several times faster) and never larger than :data:`MAX_QIMAGE_SIDE` (Qt cannot paint beyond 32,767 px).
The canvas maps the (possibly smaller) QImage onto the image's *true* size, so coordinates stay exact.
A full-resolution decode is requested when the user zooms in past the decoded resolution.

Workers (QThreadPool) only decode and build QImages (no widgets); results come back through a queued signal
and are inserted into the cache on the GUI thread.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage
from viaseg.core.base.errors import ImageReadError
from viaseg.core.imaging.imageio import image_size, read_image

log = logging.getLogger(__name__)

MAX_QIMAGE_SIDE = 16384
DISPLAY_MAX_SIDE = 1920


@dataclass
class Decoded:
    path: str
    qimage: QImage  # Format_RGB32, possibly smaller than the image
    size: tuple[int, int]  # true (w, h) of the image, EXIF-rotated
    full: bool  # decoded at full resolution


def to_qimage(rgb: np.ndarray) -> QImage:
    """HxWx3 uint8 RGB -> a QImage owning its pixels (RGB32, the fastest format to paint)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return img.convertToFormat(QImage.Format.Format_RGB32)  # deep copy: independent of the numpy buffer


def decode(path: str, max_side: int | None) -> Decoded:
    """Decode ``path`` for display. Raises ImageReadError."""
    size = image_size(path)
    arr = read_image(path, max_side=max_side)
    h, w = arr.shape[:2]
    # a display decode may come back larger than max_side (JPEG scales are powers of 2; other formats decode
    # in full): keep at most twice max_side, and never more than Qt can paint
    limit = MAX_QIMAGE_SIDE if max_side is None else min(MAX_QIMAGE_SIDE, 2 * max(max_side, 1))
    side = max(w, h)
    if side > limit:
        f = limit / side
        arr = cv2.resize(arr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    q = to_qimage(arr)
    full = q.width() >= size[0] and q.height() >= size[1]
    return Decoded(str(path), q, (int(size[0]), int(size[1])), full)


class _Job(QRunnable):
    def __init__(self, loader: ImageCache, path: str, max_side: int | None):
        super().__init__()
        self.loader, self.path, self.max_side = loader, path, max_side

    def run(self) -> None:  # worker thread: no widgets touched
        # results travel through a deque, the signal carries only a str: Python objects sent through queued
        # cross-thread signals were seen to corrupt reference counts (PySide 6.12 crashes at exit)
        try:
            d = decode(self.path, self.max_side)
        except ImageReadError as exc:
            self.loader._results.append((self.path, None, str(exc)))
        except Exception as exc:  # a worker must never die silently
            self.loader._results.append((self.path, None, f"{self.path}: cannot decode ({exc})"))
        else:
            self.loader._results.append((self.path, d, ""))
        try:
            self.loader._done.emit(self.path)
        except RuntimeError:  # the window was closed meanwhile
            pass


class ImageCache(QObject):
    """``get(path)`` decodes synchronously on a miss; ``prefetch(paths)`` decodes in the background.
    Signals: ``loaded(Decoded)`` for background results (prefetch or full-resolution requests)."""

    loaded = Signal(object)
    failed = Signal(str, str)
    _done = Signal(str)

    def __init__(self, capacity: int = 8, max_side: int | None = DISPLAY_MAX_SIDE, parent=None):
        super().__init__(parent)
        self.capacity = capacity
        self.max_side = max_side
        self._cache: OrderedDict[str, Decoded] = OrderedDict()
        self._pending: set[tuple[str, bool]] = set()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._results: deque = deque()
        self._done.connect(self._drain)

    def cached(self, path: str) -> Decoded | None:
        d = self._cache.get(str(path))
        if d is not None:
            self._cache.move_to_end(str(path))
        return d

    def get(self, path: str) -> Decoded:
        """The decoded image (from the cache, else decoded now). Raises ImageReadError."""
        d = self.cached(path)
        if d is not None:
            return d
        d = decode(str(path), self.max_side)
        self._put(d)
        return d

    def prefetch(self, paths) -> None:
        for p in paths:
            p = str(p)
            if p in self._cache or (p, False) in self._pending:
                continue
            self._pending.add((p, False))
            self.pool.start(_Job(self, p, self.max_side))

    def request_full(self, path: str) -> None:
        p = str(path)
        d = self._cache.get(p)
        if (d is not None and d.full) or (p, True) in self._pending:
            return
        self._pending.add((p, True))
        self.pool.start(_Job(self, p, None))

    def _put(self, d: Decoded) -> None:
        old = self._cache.get(d.path)
        if old is not None and old.full and not d.full:
            return
        self._cache[d.path] = d
        self._cache.move_to_end(d.path)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    def _drain(self, _path: str = "") -> None:
        while self._results:
            self._on_done(*self._results.popleft())

    def _on_done(self, path: str, d: Decoded | None, err: str) -> None:
        self._pending.discard((path, False))
        self._pending.discard((path, True))
        if d is None:
            log.info("background decode failed: %s", err)
            self.failed.emit(path, err)
            return
        self._put(d)
        self.loaded.emit(d)

    def clear(self) -> None:
        self._cache.clear()


def frame_for_regions(entry) -> tuple[int, int]:
    """For a missing image, a frame large enough to show its regions."""
    from viaseg.core.annotation.raster import shape_polygon

    xs, ys = [1.0], [1.0]
    for r in entry.regions:
        pts = shape_polygon(r.shape)
        if pts is not None and len(pts):
            xs.append(float(pts[:, 0].max()))
            ys.append(float(pts[:, 1].max()))
    return (int(max(xs)) + 20, int(max(ys)) + 20)
