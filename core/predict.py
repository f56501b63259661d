"""Inference: a loaded model turned into full-resolution probability maps.

``Predictor.load(path)`` loads a viaseg ``.keras`` model once; ``predictor.predict(image)`` returns a
:class:`Prediction` — a ``float32`` ``HxW`` array of probabilities **at the image's full resolution** (the
network's ``input_size`` output is resized with bilinear interpolation, then thresholded on demand; never a
nearest-upscaled low-resolution mask). ``prediction.mask(threshold)`` thresholds without another forward pass.

Speed (see ``tests/perf/bench_predict.py``):

* the model is called through one ``tf.function`` with a fixed input signature (``model(x, training=False)``),
  not ``model.predict``, whose per-call overhead dominates single-image latency;
* a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still gives at least the network's input size on
  both sides (:func:`viaseg.core.imageio.read_image` ``max_side``), so a 12-MP photo costs a fraction of a
  full decode;
* the probabilities are upscaled with ``cv2.resize`` in ``float32``.

Several images: :meth:`Predictor.predict_many` decodes in parallel through ``tf.data`` and runs the network in
batches. Very large photos: :meth:`Predictor.predict_tiled` runs the network on overlapping input-size tiles of
the photo downscaled by a factor, blending the tiles with tapered weights.

Thread safety: TensorFlow is imported lazily (never at module import). A ``Predictor`` may be called from
any thread (the GUI uses a worker thread); calls are serialised by a lock, one image at a time.

Preprocessing matches training: the image is resized (stretched, no letterbox) to the input size with the
interpolation in ``meta["resize"]`` (``area`` | ``bilinear`` | ``nearest``) and scaled as ``meta["input_scale"]``
says (``"rgb/255"`` = 0..1, the default and what training writes; ``"rgb"`` = raw 0..255; ``"rgb/127.5-1"``).
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ImageReadError, ModelError

_INTERP = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
DEFAULT_THRESHOLD = 0.5
# meta["input_scale"] (written by training; "normalize" accepted too) -> how pixels are scaled
_SCALES = {
    "rgb/255": "unit",
    "unit": "unit",
    "0..1": "unit",
    "rgb/127.5-1": "symmetric",
    "symmetric": "symmetric",
    "-1..1": "symmetric",
    "rgb": "none",
    "none": "none",
    "0..255": "none",
}


class Prediction(np.ndarray):
    """Probabilities (``float32``, ``HxW``, full image resolution) that remember the model's threshold.

    It *is* a NumPy array (``np.asarray(pred)``, ``pred.shape``, ``pred > 0.3`` all work); in addition:
    ``mask(threshold=None)`` → ``bool`` ``HxW`` (probability ``>`` threshold, default the model's),
    ``mask_u8(threshold=None)`` → ``uint8`` 0/255, ``probabilities`` → the plain array,
    ``threshold`` and ``source`` (the image path, when predicted from a file).
    """

    threshold: float
    source: str | None

    def __new__(cls, probabilities, threshold: float = DEFAULT_THRESHOLD, source: str | None = None):
        obj = np.asarray(probabilities, dtype=np.float32).view(cls)
        obj.threshold = float(threshold)
        obj.source = source
        return obj

    def __array_finalize__(self, obj):
        if obj is None:
            return
        self.threshold = getattr(obj, "threshold", DEFAULT_THRESHOLD)
        self.source = getattr(obj, "source", None)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # ufunc results that are not a probability map (comparisons, reductions) come back as plain arrays
        if return_scalar:
            return arr[()]
        if arr.shape != self.shape or arr.dtype != np.float32:
            return arr.view(np.ndarray)
        return super().__array_wrap__(arr, context, return_scalar)

    def __reduce__(self):  # pickling keeps the attributes
        return (Prediction, (self.view(np.ndarray).copy(), self.threshold, self.source))

    @property
    def probabilities(self) -> np.ndarray:
        return self.view(np.ndarray)

    def mask(self, threshold: float | None = None) -> np.ndarray:
        t = self.threshold if threshold is None else float(threshold)
        return self.view(np.ndarray) > t

    def mask_u8(self, threshold: float | None = None) -> np.ndarray:
        return self.mask(threshold).astype(np.uint8) * np.uint8(255)


@dataclass
class ItemResult:
    """One image of :meth:`Predictor.predict_many`: either ``prediction`` or ``error`` is set."""

    path: Path
    prediction: Prediction | None = None
    error: ImageReadError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def scale_factors(scales) -> tuple[float, ...]:
    """``tta_scales`` as a tuple of floats; ``ValueError`` unless one or more numbers between 0.25 and 4."""
    try:
        out = tuple(float(s) for s in (scales if isinstance(scales, (list, tuple)) else [scales]))
    except (TypeError, ValueError):
        out = ()
    if not out or not all(0.25 <= s <= 4.0 for s in out):
        raise ValueError(f"scale factors must be numbers between 0.25 and 4, got {scales!r}")
    return out


def _check_scales(scales, path) -> tuple[float, ...]:
    try:
        return scale_factors(scales)
    except ValueError as exc:
        raise ModelError(f"{path or 'model'}: tta_scales: {exc}") from None


def _input_hw(meta: dict, model) -> tuple[int, int]:
    size = meta.get("input_size")
    if size is None:
        shape = getattr(model, "input_shape", None)
        if shape is None or len(shape) != 4 or shape[1] is None or shape[2] is None:
            raise ModelError("model metadata has no input_size and the model input shape is not fixed")
        return int(shape[1]), int(shape[2])
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def _foreground(out: np.ndarray) -> np.ndarray:
    """Network output NxHxWxC -> NxHxW foreground probability (C == 1: sigmoid; else 1 - background)."""
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 3:
        return out
    if out.shape[-1] == 1:
        return out[..., 0]
    return 1.0 - out[..., 0]


def interactive(predictor: Predictor) -> Predictor:
    """``predictor`` set up for a photo a user is waiting for (the app): the mirror average stays, the
    averages at other sizes (``tta_scales``: 3x the compute for +0.01 mean Dice on held-out photos) are left to
    batch ``viaseg predict`` / ``viaseg evaluate``. With them a 2-megapixel photo missed the app's 50 ms target
    (docs/RESULTS.md). Returns the same object."""
    predictor.scales = (1.0,)
    return predictor


class Predictor:
    """A model ready for inference. Build with :meth:`load` (a ``.keras`` file) or ``Predictor(model, meta)``."""

    _cache: dict[tuple[str, int, int], Predictor] = {}  # most recently loaded last
    _cache_lock = threading.Lock()
    CACHE_SIZE = 2  # models kept loaded by load(cache=True); older ones are released

    def __init__(self, model, meta: dict[str, Any] | None = None, path: str | Path | None = None):
        self.model = model
        self.meta = dict(meta or {})
        self.path = Path(path) if path is not None else None
        self.input_hw = _input_hw(self.meta, model)
        shape = getattr(model, "input_shape", None)
        if isinstance(shape, tuple) and len(shape) == 4 and None not in shape[1:3]:
            if tuple(shape[1:3]) != self.input_hw or shape[3] not in (None, 3):
                raise ModelError(
                    f"{self.path or 'model'}: metadata says input {self.input_hw[1]}x{self.input_hw[0]}x3 "
                    f"but the network takes {shape[2]}x{shape[1]}x{shape[3]}"
                )
        self.threshold = float(self.meta.get("threshold", DEFAULT_THRESHOLD))
        resize = str(self.meta.get("resize", "area")).lower()
        if resize not in _INTERP:
            raise ModelError(f"{self.path or 'model'}: unknown resize method {resize!r} in metadata")
        self.resize = resize
        scale = (
            str(self.meta.get("input_scale", self.meta.get("normalize", "rgb/255"))).lower().replace(" ", "")
        )
        norm = _SCALES.get(scale)
        if norm is None:
            raise ModelError(f"{self.path or 'model'}: unknown input_scale {scale!r} in metadata")
        self.normalize = norm
        # test-time augmentation: average the network on the image and its mirror image (meta "tta", written
        # by training; callers may switch it per predictor)
        self.tta = bool(self.meta.get("tta", False))
        # multi-scale test-time augmentation: the network also runs on the input resized by these factors
        # (sizes rounded to multiples of 32) and the probabilities are averaged (meta "tta_scales", written by
        # training; 1.0 alone = off)
        self.scales = _check_scales(self.meta.get("tta_scales", (1.0,)), self.path)
        # network invocations (one per batch): lets callers check that re-thresholding is free
        self.forward_calls = 0
        self._lock = threading.RLock()
        self._fns: dict[tuple[int, int], Any] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, path: str | Path, cache: bool = True) -> Predictor:
        """Load a viaseg model file. With ``cache`` the same file (same size and mtime) gives the same
        ``Predictor`` again, so callers may call ``load`` freely without reloading. Raises ``ModelError``."""
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ModelError(f"{path}: no such model file") from None
        except OSError as exc:
            raise ModelError(f"{path}: cannot read model file ({exc.strerror or exc})") from None
        if path.is_dir():
            raise ModelError(f"{path}: is a folder, not a .keras model file")
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if cache:
            with cls._cache_lock:
                hit = cls._cache.pop(key, None)
                if hit is not None:
                    cls._cache[key] = hit  # now the most recent
            if hit is not None:
                return hit
        from .modelio import load_model

        model, meta = load_model(path)
        pred = cls(model, meta, path)
        if cache:
            with cls._cache_lock:
                cls._cache.pop(key, None)
                cls._cache[key] = pred
                while len(cls._cache) > cls.CACHE_SIZE:
                    cls._cache.pop(next(iter(cls._cache)))
        return pred

    @property
    def input_size(self) -> int:
        return max(self.input_hw)

    @property
    def class_names(self) -> list[str]:
        names = self.meta.get("class_names") or []
        return [str(n) for n in names] if isinstance(names, (list, tuple)) else [str(names)]

    @property
    def foreground_name(self) -> str:
        """The class the probability map is about (the last non-background class name, else ``damage``)."""
        names = [n for n in self.class_names if n.lower() not in ("background", "bg", "_background_")]
        return names[-1] if names else "damage"

    # ------------------------------------------------------------------ the network

    def scale_sizes(self) -> list[tuple[int, int]]:
        """The (h, w) input sizes the network runs at: the model's own first, then one per other scale."""
        h, w = self.input_hw
        out = [(h, w)]
        for s in self.scales:
            hw = (max(32, math.floor(h * s / 32 + 0.5) * 32), max(32, math.floor(w * s / 32 + 0.5) * 32))
            if hw not in out:
                out.append(hw)
        return out

    def _model_at(self, hw: tuple[int, int]):
        """The network taking ``hw`` inputs: the model itself, or a copy built from its config for that input
        size with the same weights (a U-Net is fully convolutional)."""
        if hw == self.input_hw:
            return self.model
        import keras

        from . import unet  # noqa: F401 - registers the custom layers the config names

        cfg = copy.deepcopy(self.model.get_config())
        inputs = [layer for layer in cfg.get("layers") or [] if layer.get("class_name") == "InputLayer"]
        if len(inputs) != 1:
            raise ModelError(f"{self.path or 'model'}: cannot run this network at other input sizes")
        inputs[0]["config"]["batch_shape"] = (None, hw[0], hw[1], 3)
        model = keras.Model.from_config(cfg)
        model.set_weights(self.model.get_weights())
        return model

    def _function(self, hw: tuple[int, int] | None = None):
        hw = self.input_hw if hw is None else hw
        fn = self._fns.get(hw)
        if fn is None:
            from . import tfsetup

            tf = tfsetup.load_tf()
            model = self._model_at(hw)

            def forward(x):
                return model(x, training=False)

            fn = tf.function(forward, input_signature=[tf.TensorSpec([None, hw[0], hw[1], 3], tf.float32)])
            self._fns[hw] = fn
        return fn

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """NxHxWx3 float32 (already normalised) -> NxHxW float32 probabilities at input size. With ``tta``
        the image and its left-right mirror go through the network in one call and are averaged; with
        ``scales`` the batch is also resized to each other scale's size and the probabilities, resized back,
        are averaged too."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        h, w = self.input_hw
        if len(batch) == 0:
            return np.zeros((0, h, w), np.float32)
        with self._lock:
            self.forward_calls += 1
            sizes = self.scale_sizes()
            total = self._forward_at(batch, sizes[0])
            for hw in sizes[1:]:
                x = np.stack([cv2.resize(b, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR) for b in batch])
                prob = self._forward_at(x, hw)
                total += np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in prob])
        return total / len(sizes) if len(sizes) > 1 else total

    def _forward_at(self, batch: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        n = len(batch)
        if self.tta:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        try:
            out = self._function(hw)(batch)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - TF raises many types; the user needs the model's name
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path or 'model'}: the network failed to run ({msg})") from exc
        if isinstance(out, (list, tuple)):
            out = out[0]
        out = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
        prob = _foreground(out)
        if self.tta:
            prob = 0.5 * (prob[:n] + prob[n:, :, ::-1])
        return np.ascontiguousarray(prob, dtype=np.float32)

    def predict_inputs(self, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """Images already at the network's input size (``NxHxWx3`` ``uint8``, as the training pipeline keeps
        them) -> ``NxHxW`` ``float32`` probabilities at that size, scaled and (with ``tta``) mirror-averaged
        exactly as :meth:`predict` does, without the full-resolution resize."""
        images = np.asarray(images)
        h, w = self.input_hw
        if images.ndim != 4 or images.shape[1:] != (h, w, 3):
            raise ValueError(f"expected N x {h} x {w} x 3 images, got shape {images.shape}")
        step = max(1, int(batch_size))
        parts = [self._forward(self._normalise(images[i : i + step])) for i in range(0, len(images), step)]
        return np.concatenate(parts) if parts else np.zeros((0, h, w), np.float32)

    def warmup(self) -> None:
        """Trace the network function once (the first real call is otherwise ~1 s slower)."""
        h, w = self.input_hw
        self._forward(np.zeros((1, h, w, 3), np.float32))

    # ------------------------------------------------------------------ preprocessing

    def _normalise(self, img: np.ndarray) -> np.ndarray:
        x = img.astype(np.float32)
        if self.normalize == "unit":
            x *= 1.0 / 255.0
        elif self.normalize == "symmetric":
            x = x * (1.0 / 127.5) - 1.0
        return x

    def _to_input(self, img: np.ndarray) -> np.ndarray:
        """RGB uint8 image (any size) -> HxWx3 float32 network input."""
        h, w = self.input_hw
        if img.shape[0] != h or img.shape[1] != w:
            # exactly the training pipeline's resize (same interpolation even when enlarging)
            img = cv2.resize(img, (w, h), interpolation=_INTERP[self.resize])
        return self._normalise(img)

    def _load(self, image, scale: float | None = None) -> tuple[np.ndarray, tuple[int, int], str | None]:
        """``image`` (path or array) -> (RGB uint8 at reduced or full scale, full (w, h), source)."""
        if isinstance(image, (str, Path)):
            from .imageio import image_size, read_image

            path = Path(image)
            size = image_size(path)
            img = read_image(path, max_side=self._max_side(size, scale))
            return img, size, str(path)
        arr = _as_rgb(image)
        return arr, (arr.shape[1], arr.shape[0]), None

    def _max_side(self, size: tuple[int, int], scale: float | None = None) -> int:
        """``max_side`` for a reduced JPEG decode of a ``(w, h)`` image: both decoded sides must stay at least
        the network input (``scale`` None) or the image shrunk by ``scale`` (tiling), so the decoder never
        gives less detail than the next resize needs."""
        w, h = size
        longer = max(w, h, 1)
        if self.resize == "nearest":
            return longer  # training decodes 'nearest' models at full size (pipeline); so do we
        if scale is None:
            ih, iw = self.input_hw
            need = max(iw / max(w, 1), ih / max(h, 1))
            floor = 2 * max(ih, iw)  # what the training pipeline asks the decoder for: same pixels here
        else:
            need, floor = 1.0 / scale, 1
        return max(1, min(longer, max(floor, math.ceil(longer * need))))

    # ------------------------------------------------------------------ single image

    def _upscale(self, prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        w, h = size
        if prob.shape == (h, w):
            return np.ascontiguousarray(prob, dtype=np.float32)
        shrink = w <= prob.shape[1] and h <= prob.shape[0]
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def predict(self, image, tile_downscale: float | None = None, overlap: float = 0.25) -> Prediction:
        """Probabilities at ``image``'s full resolution. ``image``: a file path or an RGB ``uint8`` array
        (``HxW``, ``HxWx3``, ``HxWx4``). ``tile_downscale``: use :meth:`predict_tiled` with that factor.
        Raises ``ImageReadError`` for an unreadable file."""
        if tile_downscale:
            return self.predict_tiled(image, downscale=tile_downscale, overlap=overlap)
        img, size, source = self._load(image)
        x = self._to_input(img)[None]
        prob = self._forward(x)[0]
        return Prediction(self._upscale(prob, size), self.threshold, source)

    def mask(self, image, threshold: float | None = None) -> np.ndarray:
        """Boolean full-resolution mask (shortcut for ``predict(image).mask(threshold)``)."""
        return self.predict(image).mask(threshold)

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
        paths = [Path(p) for p in paths]
        if not paths:
            return
        if tile_downscale:
            for p in paths:
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
            except Exception as exc:  # noqa: BLE001 - reported per image, never kills the batch
                msg = f"cannot read image ({type(exc).__name__}: {exc})"
                return np.zeros((h, w, 3), np.float32), np.array([0, 0], np.int32), msg.encode()

        def load_tf(p):
            x, size, err = tf.numpy_function(load_np, [p], [tf.float32, tf.int32, tf.string], stateful=False)
            x.set_shape([h, w, 3])
            size.set_shape([2])
            err.set_shape([])
            return x, size, err

        names = [str(p).encode("utf-8", "surrogateescape") for p in paths]
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(names, dtype=tf.string))
        ds = ds.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(max(1, int(batch_size))).prefetch(1)
        i = 0
        for xb, sizes, errs in ds.as_numpy_iterator():
            ok = [j for j, e in enumerate(errs) if not e]
            probs = self._forward(xb[ok]) if ok else None
            k = 0
            for j in range(len(errs)):
                path = paths[i]
                i += 1
                if errs[j]:
                    yield ItemResult(path, error=ImageReadError(path, errs[j].decode("utf-8", "replace")))
                    continue
                fh, fw = (int(v) for v in sizes[j])
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


def _as_rgb(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and float(np.nanmax(arr)) <= 1.0:
            arr = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255)
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)
