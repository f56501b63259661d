"""The overlay renderers: what each pixel of the heat map and the outline view shows (pure NumPy, no widgets)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QImage
from viaseg.gui import overlays


def _square(size: int = 40, lo: int = 10, hi: int = 30, p: float = 0.9) -> np.ndarray:
    probs = np.full((size, size), 0.2, np.float32)
    probs[lo:hi, lo:hi] = p
    return probs


def test_heat_map_colours_follow_the_probability_and_fade_below_the_threshold():
    probs = np.tile(np.linspace(0, 1, 101, dtype=np.float32), (3, 1))
    rgba = overlays.heat_rgba(probs, threshold=0.6, opacity=0.8)
    assert rgba.shape == (3, 101, 4) and rgba.dtype == np.uint8
    # the ramp: blue end at 0, red end at 1
    assert rgba[0, 0, 2] > rgba[0, 0, 0] and rgba[0, 100, 0] > rgba[0, 100, 2]
    # the ramp's colour of each probability (rounding a half step either way: one step of the ramp)
    np.testing.assert_allclose(rgba[0, :, :3], overlays._jet(probs[0]), atol=4)
    # above the threshold: full opacity x 0.8; below: a quarter of it, growing with p
    assert (rgba[0, 61:, 3] == int(255 * 0.8)).all()
    below = rgba[0, :60, 3].astype(int)
    assert below[0] == 0 and np.all(np.diff(below) >= 0)
    assert abs(below[40] - 255 * 0.8 * 0.25 * 0.4 / 0.6) <= 1.5


def test_outline_tints_the_mask_and_draws_its_border():
    rgba = overlays.outline_rgba(_square(), threshold=0.5, opacity=0.5, rgb=(10, 20, 30), width=2)
    inside, border, outside = rgba[20, 20], rgba[20, 10], rgba[20, 2]
    assert tuple(inside) == (10, 20, 30, 45)  # tint: 90 x opacity
    assert tuple(border) == (10, 20, 30, 128)  # border: 255 x opacity
    assert tuple(rgba[20, 9]) == (10, 20, 30, 128)  # both sides of the edge
    assert outside[3] == 0 and rgba[20, 7, 3] == 0
    # nothing above the threshold: fully transparent
    assert not overlays.outline_rgba(_square(p=0.3), 0.5, 0.5)[..., 3].any()


def test_overlay_image_is_premultiplied_and_keeps_the_colours():
    rgba = overlays.outline_rgba(_square(), threshold=0.5, opacity=1.0, rgb=(200, 100, 0))
    img = overlays.rgba_to_qimage(rgba)
    assert img.format() == QImage.Format.Format_ARGB32_Premultiplied
    c = img.pixelColor(20, 10)  # the border: opaque
    assert (c.red(), c.green(), c.blue(), c.alpha()) == (200, 100, 0, 255)
    assert img.pixelColor(2, 2).alpha() == 0
    del rgba  # the image owns its pixels
    assert img.pixelColor(20, 10).red() == 200
