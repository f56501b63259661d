"""Pure NumPy rendering of prediction overlays (no widgets): heat map, outline, agreement (TP/FP/FN), Dice.

Every renderer returns an ``HxWx4`` ``uint8`` RGBA array the size of the probability map; :func:`rgba_to_qimage`
wraps it for the canvas. Re-thresholding or changing opacity only re-runs these functions, never the model.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage
from viaseg.core.ml.evaluate import FN_COLOR as FN_RGB  # noqa: F401  (legend colours, shared with the CLI)
from viaseg.core.ml.evaluate import FP_COLOR as FP_RGB  # noqa: F401
from viaseg.core.ml.evaluate import TP_COLOR as TP_RGB  # noqa: F401
from viaseg.core.ml.evaluate import agreement_image, dice_iou  # noqa: F401  (one definition of the scores)

MODES = ("heat", "outline", "agreement")
MAX_OVERLAY_SIDE = (
    2048  # overlays larger than this are rendered reduced (the canvas scales them to the image)
)


def display_scale(shape: tuple[int, ...], max_side: int = MAX_OVERLAY_SIDE) -> float:
    return min(1.0, max_side / max(shape[0], shape[1], 1))


def reduce(arr: np.ndarray, scale: float, nearest: bool = False, smooth: bool = False) -> np.ndarray:
    """``arr`` resized by ``scale`` (< 1) for display: by area averaging; ``nearest`` for masks; ``smooth`` by
    bilinear sampling, for maps with no detail finer than the display grid (a probability map is the network's
    output enlarged bilinearly): 4 ms where area averaging takes 19-28 ms for 12 megapixels."""
    if scale >= 1.0:
        return arr
    h, w = arr.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR if smooth else cv2.INTER_AREA
    return cv2.resize(arr, size, interpolation=interp)


def _ramp() -> np.ndarray:
    """256 x 3 uint8: the colour of each probability step (0 blue -> 0.5 yellow-green -> 1 red)."""
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0, ::-1]


def _jet(p: np.ndarray) -> np.ndarray:
    """A compact 'turbo-like' colour ramp: 0 blue -> 0.5 yellow-green -> 1 red; returns HxWx3 uint8."""
    return _ramp()[np.clip(p * 255.0 + 0.5, 0, 255).astype(np.uint8)]


def _steps(p: np.ndarray) -> np.ndarray:
    """Probabilities as 256 steps (round(255 p), saturated): uint8, one SIMD pass."""
    return cv2.convertScaleAbs(np.asarray(p, dtype=np.float32), alpha=255.0)


def heat_rgba(probs: np.ndarray, threshold: float, opacity: float) -> np.ndarray:
    """Probabilities as a colour ramp; pixels below ``threshold`` fade out, so the slider shows its cut.

    Colour and transparency are both functions of the probability's 256 steps, so the whole overlay is one
    4-channel table lookup (a 3-megapixel overlay in a few milliseconds: it is rebuilt at every threshold or
    opacity change and after every prediction)."""
    q = np.arange(256, dtype=np.float32) / 255.0
    alpha = np.where(q > threshold, 1.0, 0.25 * q / max(threshold, 1e-6))
    lut = np.empty((256, 1, 4), np.uint8)
    lut[:, 0, :3] = _ramp()
    lut[:, 0, 3] = np.clip(alpha * opacity * 255.0, 0, 255).astype(np.uint8)
    steps = _steps(probs)
    return cv2.LUT(cv2.merge([steps] * 4), lut)


def _rgba32(r: int, g: int, b: int, a: int) -> np.uint32:
    """One RGBA8888 pixel as the uint32 that a little- or big-endian view of the bytes reads."""
    return np.frombuffer(bytes((r, g, b, a)), dtype=np.uint32)[0]


def outline_rgba(
    probs: np.ndarray, threshold: float, opacity: float, rgb=(255, 220, 0), width: int = 2
) -> np.ndarray:
    """The thresholded mask as a filled tint with a solid outline."""
    m = np.greater(np.asarray(probs), threshold).view(np.uint8)
    rgba = np.empty(m.shape + (4,), np.uint8)
    px = rgba.view(np.uint32)[..., 0]  # one 32-bit word per pixel: two whole-image passes instead of eight
    np.multiply(m, _rgba32(*rgb, int(round(90 * opacity))), out=px, casting="unsafe")
    if m.any():
        # the outline: pixels within ``width`` of the mask's border on both sides (a morphological gradient: one
        # pass, where tracing and drawing the contours took most of the time)
        k = max(1, width) + 1
        edge = cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((k, k), np.uint8))
        np.copyto(px, _rgba32(*rgb, int(round(255 * max(opacity, 0.35)))), where=edge.view(bool))
    return rgba


def agreement_rgba(true_mask: np.ndarray, probs: np.ndarray, threshold: float, opacity: float) -> np.ndarray:
    return agreement_image(true_mask, np.asarray(probs) > threshold, alpha=int(round(255 * opacity)))


def render(
    mode: str, probs: np.ndarray, threshold: float, opacity: float, true_mask: np.ndarray | None = None
):
    """RGBA overlay for ``mode`` (``agreement`` needs ``true_mask``; without one it falls back to outline)."""
    if mode == "heat":
        return heat_rgba(probs, threshold, opacity)
    if mode == "agreement" and true_mask is not None:
        return agreement_rgba(true_mask, probs, threshold, opacity)
    return outline_rgba(probs, threshold, opacity)


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """The RGBA array as an image the raster painter draws as it is: premultiplied ARGB32 (an RGBA8888 image is
    converted to it again at every repaint; here once, instead of the copy the buffer needs anyway)."""
    a = np.ascontiguousarray(rgba)
    h, w = a.shape[:2]
    img = QImage(a.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def composite(image_rgb: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """The overlay blended over the image (both resized to the image size): HxWx3 uint8, for export."""
    img = np.asarray(image_rgb, dtype=np.uint8)
    if rgba.shape[:2] != img.shape[:2]:
        rgba = cv2.resize(rgba, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = img.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def legend_rgba(width: int, height: int, threshold: float, veil: float = 0.55) -> np.ndarray:
    """The heat map's colour bar, probability 0 (left) to 1 (right): the ramp's colours, veiled with ``veil``
    white below ``threshold`` (where the overlay fades them out; at full strength they would vanish near 0, and
    the legend would no longer say which colour is which). ``height x width x 4``, opaque."""
    p = np.linspace(0.0, 1.0, max(2, int(width)), dtype=np.float32)
    rgb = _jet(p).astype(np.float32)
    below = (p <= threshold)[:, None]
    rgb = np.where(below, rgb * (1.0 - veil) + 255.0 * veil, rgb)
    out = np.empty((max(1, int(height)), p.shape[0], 4), np.uint8)
    out[..., :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)[None]
    out[..., 3] = 255
    return out
