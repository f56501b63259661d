"""Inference: a loaded model turned into full-resolution probability maps.

``Predictor.load(path)`` loads a viaseg ``.keras`` model once; ``predictor.predict(image)`` returns a
:class:`Prediction` — a ``float32`` ``HxW`` array of probabilities **at the image's full resolution** (the
network's ``input_size`` output is resized with bilinear interpolation, then thresholded on demand; never a
nearest-upscaled low-resolution mask). ``prediction.mask(threshold)`` thresholds without another forward pass.

Speed (see ``tests/perf/bench_predict.py``):

* the model is called through one ``tf.function`` with a fixed input signature (``model(x, training=False)``),
  not ``model.predict``, whose per-call overhead dominates single-image latency;
* a JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still gives at least the network's input size on
  both sides (:func:`viaseg.core.imaging.imageio.read_image` ``max_side``), so a 12-MP photo costs a fraction of a
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

This module is the Predictor itself (loading, the network, preprocessing, one image); its tiled and many-image
methods come from :mod:`.predict_batch`, :class:`Prediction` / :class:`ItemResult` and the metadata tables from
:mod:`.prediction` (all re-exported here).
"""

from __future__ import annotations

import copy
import math
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..base.errors import ModelError
from .predict_batch import _starts as _starts  # re-exported (tests use it)
from .predict_batch import _tile_weight as _tile_weight  # re-exported (tests use it)
from .predict_batch import _TiledAndBatchPrediction
from .prediction import _INTERP, _SCALES, DEFAULT_THRESHOLD, Prediction, meta_input_hw
from .prediction import ItemResult as ItemResult  # re-exported


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
    hw = meta_input_hw(meta)
    if hw is None:
        shape = getattr(model, "input_shape", None)
        if shape is None or len(shape) != 4 or shape[1] is None or shape[2] is None:
            raise ModelError("model metadata has no input_size and the model input shape is not fixed")
        return int(shape[1]), int(shape[2])
    return hw


def _foreground(out: np.ndarray) -> np.ndarray:
    """Network output NxHxWxC -> NxHxW foreground probability (C == 1: sigmoid; else 1 - background)."""
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 3:
        return out
    if out.shape[-1] == 1:
        return out[..., 0]
    return 1.0 - out[..., 0]


def interactive(predictor: Predictor) -> Predictor:
    """``predictor`` set up for a photo a user is waiting for (the app): the mirror average stays, the average
    over sizes (``tta_scales``, 2.6x the compute for the default's 1 and 5/4) is left to batch ``viaseg predict``
    / ``viaseg evaluate``, and the network runs once, at the mean of those sizes (the default: 9/8, 288 px for
    a 256-px model). Training's scale crops show damage larger than a whole photo does; at its own size alone
    the network scored 0.481 mean Dice out of fold on the 149 training photos, at 9/8 0.506, averaging 1 and
    5/4 0.514 (twenty-first session, docs/RESULTS.md). An ensemble (``--ensemble K``) runs half its members on
    the photo and the other half on its mirror image (``members_per_view``), so two networks cost what one
    does. Returns the same object."""
    predictor.scales = (round(sum(predictor.scales) / len(predictor.scales), 4),)
    predictor.members_per_view = True
    return predictor


def _meta_threshold(value: Any, path: Path | None) -> float:
    """The stored threshold, or ``ModelError`` naming the file: "abc" ended in a traceback, and 5 was taken,
    so every mask came out empty."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 < t < 1.0:
        raise ModelError(f"{path or 'model'}: threshold {value!r} in its metadata is not between 0 and 1")
    return t


class Predictor(_TiledAndBatchPrediction):
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
        self.threshold = _meta_threshold(self.meta.get("threshold", DEFAULT_THRESHOLD), self.path)
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
        self._fns: dict[tuple[tuple[int, int], bool, bool], Any] = {}
        # run a copy with the batch norms folded into the convolutions (same outputs, faster), and how many
        # batch norms the last copy folded
        self.fold_batch_norms = True
        self.folded_batch_norms = 0
        # an ensemble with the mirror average (``tta``): the photo goes through members 0, 2, ... and its
        # mirror image through members 1, 3, ..., so each view costs half the members; still every member's
        # map in the average, and an ensemble of two costs the app what one network does (``interactive``)
        self.members_per_view = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def forget(cls, path: str | Path) -> None:
        """Drop every cached ``Predictor`` of ``path`` (the next ``load`` reads the file again)."""
        name = str(Path(path).resolve())
        with cls._cache_lock:
            for key in [k for k in cls._cache if k[0] == name]:
                cls._cache.pop(key, None)

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
        """The (h, w) input sizes the network runs at, one per scale (rounded to multiples of 32; the model's
        own first when a scale gives it)."""
        h, w = self.input_hw
        out: list[tuple[int, int]] = []
        for s in self.scales:
            hw = (max(32, math.floor(h * s / 32 + 0.5) * 32), max(32, math.floor(w * s / 32 + 0.5) * 32))
            if hw not in out:
                out.append(hw)
        if (h, w) in out:
            out.insert(0, out.pop(out.index((h, w))))
        return out

    @property
    def members(self) -> list:
        """The member networks of an ensemble model (``core.ml.ensemble``), else ``[]``."""
        from .ensemble import ENSEMBLE_KEY, members_of

        return members_of(self.model) if self.meta.get(ENSEMBLE_KEY) else []

    def _model_at(self, hw: tuple[int, int]):
        """The network taking ``hw`` inputs: the model itself, or a copy built from its config for that input
        size with the same weights (a U-Net is fully convolutional); an ensemble's members each so."""
        if hw == self.input_hw:
            return self.model
        members = self.members
        if members:
            from .ensemble import combine

            return combine([self._network_at(m, hw) for m in members])
        return self._network_at(self.model, hw)

    def _network_at(self, network, hw: tuple[int, int]):
        if network.inputs and tuple(network.inputs[0].shape[1:3]) == tuple(hw):
            return network
        import keras

        from . import unet  # noqa: F401 - registers the custom layers the config names

        cfg = copy.deepcopy(network.get_config())
        inputs = [layer for layer in cfg.get("layers") or [] if layer.get("class_name") == "InputLayer"]
        if len(inputs) != 1:
            raise ModelError(f"{self.path or 'model'}: cannot run this network at other input sizes")
        inputs[0]["config"]["batch_shape"] = (None, hw[0], hw[1], 3)
        model = keras.Model.from_config(cfg)
        model.set_weights(network.get_weights())
        return model

    def _function(self, hw: tuple[int, int] | None = None, halves: bool = False):
        """The network function at ``hw``. ``halves``: the batch's two halves (with ``tta``: the images and their
        mirror images) go through the network as two independent branches of one graph, which TensorFlow's
        inter-op threads run at once: one call on a small batch leaves most of a CPU's cores idle (the default
        network, a photo and its mirror image at 288 px on 2 cores: 45 -> 33 ms; twenty-sixth session)."""
        hw = self.input_hw if hw is None else hw
        split = bool(halves and self.members_per_view)
        fn = self._fns.get((hw, halves, split))
        if fn is None:
            from . import tfsetup

            tf = tfsetup.load_tf()
            members = self.members
            if members:  # an ensemble: each member at this size with its batch norms folded, averaged
                nets = [self._fast_copy(self._network_at(m, hw)) for m in members]
            else:
                nets = [self._fast_copy(self._model_at(hw))]

            def mean(outs):
                return outs[0] if len(outs) == 1 else tf.add_n(outs) / float(len(outs))

            # which networks each half of the batch goes through: all of them, or (members per view) the
            # photos the even members and the mirror images the odd ones
            first, second = (nets[0::2], nets[1::2]) if split and len(nets) > 1 else (nets, nets)

            def forward(x):
                if not halves:
                    return mean([net(x, training=False) for net in nets])
                h = tf.shape(x)[0] // 2
                return tf.concat(
                    [
                        mean([net(x[:h], training=False) for net in first]),
                        mean([net(x[h:], training=False) for net in second]),
                    ],
                    0,
                )

            fn = tf.function(forward, input_signature=[tf.TensorSpec([None, hw[0], hw[1], 3], tf.float32)])
            self._fns[(hw, halves, split)] = fn
        return fn

    def _fast_copy(self, model):
        """``model`` with its batch norms folded into the convolutions before them (the same function; the
        MobileNetV2 U-Net's forward pass 48.9 -> 44.6 ms at batch 2 on this project's CPU: ``inference_graph``);
        ``model`` itself where folding does not apply."""
        if not self.fold_batch_norms:
            return model
        from .inference_graph import fold_batch_norms

        try:
            folded, n = fold_batch_norms(model)
        except Exception:  # an unusual graph: run it as it is
            return model
        self.folded_batch_norms = n
        return folded

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
            total = np.zeros((len(batch), h, w), np.float32)
            for hw in sizes:
                if hw == (h, w):
                    total += self._forward_at(batch, hw)
                    continue
                x = np.stack([cv2.resize(b, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR) for b in batch])
                prob = self._forward_at(x, hw)
                total += np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in prob])
        return total / len(sizes) if len(sizes) > 1 else total

    def _forward_at(self, batch: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        n = len(batch)
        if self.tta:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        try:  # with tta the batch is the n images, then their mirror images: two halves
            out = self._function(hw, halves=self.tta)(batch)
        except ModelError:
            raise
        except Exception as exc:  # TF raises many types; the user needs the model's name
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
            from ..imaging.imageio import image_size, read_image

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
