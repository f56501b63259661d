"""The graph of a viaseg export: :func:`serving_module` turns viaseg's Keras :class:`~viaseg.core.ml.predict.Predictor`
(scaling, network, foreground channel, mirror and multi-scale averages) into one ``tf.Module`` whose ``serve``
maps ``uint8`` RGB images at the input size (:data:`INPUT_NAME`) to probabilities (:data:`OUTPUT_NAME`); and
the helpers around it: the deterministic :func:`check_images` every export is compared on, :func:`network_input`
and :func:`full_resolution` (a photo into the exported model's input, its map back to the photo's size, as the
Predictor does). :mod:`.export` writes this graph in each format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


def _predictor(model_path: Path, tta: str):
    """viaseg's Keras predictor of the model with the averages ``tta`` asks for (a fresh one, not cached)."""
    from .predict import Predictor

    pred = Predictor.load(model_path, cache=False)
    if tta in ("flip", "none"):
        pred.scales = (1.0,)
    if tta == "none":
        pred.tta = False
    return pred


def serving_module(predictor, batch: int | None = None):
    """A ``tf.Module`` whose ``serve(image)`` maps ``uint8 [N, H, W, 3]`` RGB images at the model's input size
    to ``{"probabilities": float32 [N, H, W]}``: :meth:`Predictor.predict_inputs` as one TensorFlow graph
    (scaling, network, foreground channel, mirror and multi-scale averages as ``predictor`` is set up).
    ``batch``: a fixed batch size (TFLite: the converter leaves some ops of a dynamic-batch U-Net untranslated)
    or ``None`` for any."""
    from . import tfsetup

    tf = tfsetup.load_tf()
    h, w = predictor.input_hw
    sizes = predictor.scale_sizes()
    networks = [predictor._model_at(hw) for hw in sizes]  # the model itself first, copies at other sizes
    normalize, mirror = predictor.normalize, bool(predictor.tta)

    def foreground(out):
        if isinstance(out, (list, tuple)):
            out = out[0]
        out = tf.cast(out, tf.float32)
        if out.shape.rank == 3:
            return out
        if out.shape[-1] == 1:
            return out[..., 0]
        return 1.0 - out[..., 0]

    def at_size(x, net):
        p = foreground(net(x, training=False))
        if mirror:  # the image and its left-right mirror, averaged (Predictor._forward_at)
            q = foreground(net(tf.reverse(x, axis=[2]), training=False))
            p = 0.5 * (p + tf.reverse(q, axis=[2]))
        return p

    class Serving(tf.Module):  # type: ignore[name-defined]  # tf: the module load_tf imports at run time
        def __init__(self):
            super().__init__(name="viaseg_export")
            self.networks = networks  # tracked: their weights are saved with the module

        @tf.function(input_signature=[tf.TensorSpec([batch, h, w, 3], tf.uint8, name=INPUT_NAME)])
        def serve(self, image):
            x = tf.cast(image, tf.float32)
            if normalize == "unit":
                x = x * (1.0 / 255.0)
            elif normalize == "symmetric":
                x = x * (1.0 / 127.5) - 1.0
            total = at_size(x, self.networks[0])
            for hw, net in zip(sizes[1:], self.networks[1:], strict=True):
                xs = tf.image.resize(x, hw, method="bilinear", antialias=False)
                p = at_size(xs, net)
                total = (
                    total + tf.image.resize(p[..., None], (h, w), method="bilinear", antialias=False)[..., 0]
                )
            if len(sizes) > 1:
                total = total / float(len(sizes))
            return {OUTPUT_NAME: tf.identity(total, name=OUTPUT_NAME)}

    return Serving()


def check_images(hw: tuple[int, int], n: int = 2) -> np.ndarray:
    """Deterministic ``uint8`` test images at ``hw``: smooth gradients with a bright blob and noise."""
    h, w = hw
    rng = np.random.default_rng(1234)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 + 0.0 * xx], -1) * 200.0
        cy, cx = h * (0.3 + 0.4 * i / max(n, 1)), w * (0.6 - 0.3 * i / max(n, 1))
        blob = np.exp(-(((yy - cy) / (0.2 * h)) ** 2 + ((xx - cx) / (0.15 * w)) ** 2))[..., None] * 255.0
        img = base * 0.6 + blob * 0.8 + rng.normal(0, 12, (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def network_input(predictor, image) -> tuple[np.ndarray, tuple[int, int]]:
    """A photo (path or RGB array) as the exported model's input: ``uint8`` ``H x W x 3`` at the model's input
    size, decoded and resized exactly as :meth:`Predictor.predict` does before scaling; and the photo's full
    ``(w, h)``, to resize the map back with :func:`full_resolution`. Raises ``ImageReadError``."""
    import cv2

    from .predict import _INTERP

    img, size, _ = predictor._load(image)
    h, w = predictor.input_hw
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=_INTERP[predictor.resize])
    return np.ascontiguousarray(img, dtype=np.uint8), size


def full_resolution(predictor, probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An exported model's ``H x W`` map resized to the photo's ``(w, h)`` as :meth:`Predictor.predict` does."""
    return predictor._upscale(np.asarray(probabilities, np.float32), size)
