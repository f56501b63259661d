"""What inference returns, and the metadata rules it is read with (no TensorFlow): :class:`Prediction` (a
``float32`` full-resolution probability map that remembers the model's threshold and thresholds on demand),
:class:`ItemResult` (one image of :meth:`~viaseg.core.ml.predict.Predictor.predict_many`: a prediction or an
error), ``DEFAULT_THRESHOLD``, the resize methods a model's ``resize`` may name (``_INTERP``) and the
``input_scale`` spellings (``_SCALES``). :mod:`.predict` re-exports them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..base.errors import ImageReadError

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


def meta_input_hw(meta: dict) -> tuple[int, int] | None:
    """The network input ``(height, width)`` a model's metadata gives (``input_size``: a side or ``[h, w]``),
    None when it gives none."""
    size = meta.get("input_size")
    if not size:
        return None
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def detail_defaults(size: tuple[int, int], input_hw: tuple[int, int]) -> tuple[float, float]:
    """The polygon detail a ``(w, h)`` photo predicted at the network's ``input_hw`` gets unless the user says
    otherwise — ``(tolerance, min_area)`` in full-resolution pixels for ``raster.mask_to_regions`` — for
    ``viaseg predict`` and the app's *Accept as polygons* alike: a quarter of a network pixel of simplification
    (at least 1 px) and one network pixel as the smallest region (at least 10 px²), so the outline keeps what the
    model resolved and no more."""
    w, h = size
    cell = max(w / input_hw[1], h / input_hw[0])  # full-resolution pixels per network pixel
    return max(1.0, cell / 4.0), max(10.0, cell * cell)


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
