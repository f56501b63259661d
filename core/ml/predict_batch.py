"""The :class:`~viaseg.core.ml.predict.Predictor` methods for large photos and many photos, as a base class it
inherits: :meth:`predict_tiled` (overlapping input-size tiles of the photo shrunk by a factor, blended with
weights that taper towards tile edges; :func:`_starts`, :func:`_tile_weight`) and :meth:`predict_many` (files
decoded in parallel through ``tf.data``, the network run per batch, one :class:`ItemResult` per file in order,
an unreadable file an error rather than an exception). They rely on the Predictor's ``_load``, ``_forward``,
``_normalise``, ``_to_input`` and ``_upscale``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from ..base.errors import ImageReadError
from .prediction import ItemResult, Prediction


class _TiledAndBatchPrediction:
    """Base of :class:`~viaseg.core.ml.predict.Predictor`: its sliding-window and many-image methods."""

    # the Predictor's (declared here for type checking only: this class sets none of them)
    input_hw: tuple[int, int]
    threshold: float
    _load: Callable[..., tuple[np.ndarray, tuple[int, int], str | None]]
    _forward: Callable[[np.ndarray], np.ndarray]
    _normalise: Callable[[np.ndarray], np.ndarray]
    _to_input: Callable[[np.ndarray], np.ndarray]
    _upscale: Callable[[np.ndarray, tuple[int, int]], np.ndarray]

    # ------------------------------------------------------------------ sliding window

    def predict_tiled(
        self, image, downscale: float = 2.0, overlap: float = 0.25, batch_size: int = 16
    ) -> Prediction:
        """Sliding-window prediction for large photos: the image is shrunk by ``downscale`` (2 = half size),
        covered with input-size tiles overlapping by ``overlap`` (0..0.9 of a tile), each tile predicted,
        and the tiles blended with weights that taper linearly towards tile edges. The result is resized to
        full resolution. A working image smaller than one tile is padded (reflect)."""
        if downscale <= 0:
            raise ValueError("downscale must be > 0")
        if not 0.0 <= overlap < 0.95:
            raise ValueError("overlap must be in [0, 0.95)")
        img, size, source = self._load(image, scale=float(downscale))
        w, h = size
        ww, wh = max(1, round(w / downscale)), max(1, round(h / downscale))
        if (img.shape[1], img.shape[0]) != (ww, wh):
            shrink = ww <= img.shape[1] and wh <= img.shape[0]
            img = cv2.resize(img, (ww, wh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        th, tw = self.input_hw
        ph, pw = max(th - wh, 0), max(tw - ww, 0)
        if ph or pw:
            img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REFLECT_101 if min(wh, ww) > 1 else 0)
        H, W = img.shape[:2]
        ys = _starts(H, th, overlap)
        xs = _starts(W, tw, overlap)
        weight = _tile_weight(th, tw, overlap)
        acc = np.zeros((H, W), np.float32)
        norm = np.zeros((H, W), np.float32)
        x_in = self._normalise(img)
        coords = [(y, x) for y in ys for x in xs]
        for i in range(0, len(coords), batch_size):
            chunk = coords[i : i + batch_size]
            batch = np.stack([x_in[y : y + th, x : x + tw] for y, x in chunk])
            probs = self._forward(batch)
            for (y, x), p in zip(chunk, probs, strict=True):
                acc[y : y + th, x : x + tw] += p * weight
                norm[y : y + th, x : x + tw] += weight
        prob = (acc / np.maximum(norm, 1e-6))[:wh, :ww]
        return Prediction(self._upscale(prob, size), self.threshold, source)

    # ------------------------------------------------------------------ many images

    def predict_many(
        self, paths: Iterable[str | Path], batch_size: int = 8, tile_downscale: float | None = None
    ) -> Iterator[ItemResult]:
        """Predict many image files, in order, yielding one :class:`ItemResult` per path as soon as its batch
        is done. Decoding and resizing run in parallel through ``tf.data``; the network runs per batch. An
        unreadable image gives an ``ItemResult`` with ``error`` set (an ``ImageReadError``), not an
        exception. With ``tile_downscale`` every image goes through :meth:`predict_tiled` instead."""
        files = [Path(p) for p in paths]
        if not files:
            return
        if tile_downscale:
            for p in files:
                try:
                    yield ItemResult(p, self.predict_tiled(p, downscale=tile_downscale))
                except ImageReadError as exc:
                    yield ItemResult(p, error=exc)
            return
        from . import tfsetup

        tf = tfsetup.load_tf()
        h, w = self.input_hw

        def load_np(raw: bytes):
            path = Path(raw.decode("utf-8", "surrogateescape"))
            try:
                img, (fw, fh), _ = self._load(path)
                return self._to_input(img), np.array([fh, fw], np.int32), b""
            except ImageReadError as exc:
                return np.zeros((h, w, 3), np.float32), np.array([0, 0], np.int32), exc.problem.encode()
            except Exception as exc:  # reported per image, never kills the batch
                msg = f"cannot read image ({type(exc).__name__}: {exc})"
                return np.zeros((h, w, 3), np.float32), np.array([0, 0], np.int32), msg.encode()

        def load_tf(p):
            x, size, err = tf.numpy_function(load_np, [p], [tf.float32, tf.int32, tf.string], stateful=False)
            x.set_shape([h, w, 3])
            size.set_shape([2])
            err.set_shape([])
            return x, size, err

        names = [str(p).encode("utf-8", "surrogateescape") for p in files]
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(names, dtype=tf.string))
        ds = ds.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(max(1, int(batch_size))).prefetch(1)
        i = 0
        for xb, sizes, errs in ds.as_numpy_iterator():
            ok = [j for j, e in enumerate(errs) if not e]
            probs = self._forward(xb[ok]) if ok else None
            k = 0
            for j in range(len(errs)):
                path = files[i]
                i += 1
                if errs[j]:
                    yield ItemResult(path, error=ImageReadError(path, errs[j].decode("utf-8", "replace")))
                    continue
                fh, fw = (int(v) for v in sizes[j])
                assert probs is not None  # errs[j] is empty: j is in ok
                prob = self._upscale(probs[k], (fw, fh))
                k += 1
                yield ItemResult(path, Prediction(prob, self.threshold, str(path)))


def _starts(total: int, tile: int, overlap: float) -> list[int]:
    """Tile origins covering ``total`` with tiles of ``tile`` px overlapping by ``overlap``; the last tile
    is aligned to the end."""
    if total <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, total - tile, stride))
    starts.append(total - tile)
    return starts


def _tile_weight(th: int, tw: int, overlap: float) -> np.ndarray:
    """Blending weight of one tile: 1 in the middle, tapering linearly over the overlap towards the edges
    (never 0, so an image border covered by a single tile keeps its prediction)."""

    def ramp(n: int) -> np.ndarray:
        r = max(1.0, overlap * n)
        i = np.arange(n, dtype=np.float32) + 0.5
        return np.clip(np.minimum(i, n - i) / r, 0.05, 1.0)

    return np.outer(ramp(th), ramp(tw)).astype(np.float32)
