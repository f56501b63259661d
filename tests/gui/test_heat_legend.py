"""The heat map has a colour legend (0 … threshold … 1) while it is shown, and none otherwise (issue 21)."""

from __future__ import annotations

import json
import zipfile

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from viaseg.gui import overlays
from viaseg.gui.prediction_panel import PredictionPanel
from viaseg.gui.workers import InferenceService


class RampPredictor:
    """A stand-in model: probabilities rising from 0 (left) to 1 (right)."""

    meta: dict = {}

    def predict(self, image):
        return np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))


def test_legend_shows_with_the_heat_map_only_and_follows_the_threshold(qtbot, tmp_path):
    model = tmp_path / "stand-in.keras"
    with zipfile.ZipFile(model, "w") as zf:
        zf.writestr("viaseg_meta.json", json.dumps({"threshold": 0.5}))
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((30, 40, 3), np.uint8))
    service = InferenceService(loader=lambda path: RampPredictor())
    panel = PredictionPanel(service)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    try:
        service.set_model(model)
        legend = panel.heat_legend
        panel.mode.setCurrentIndex(panel.mode.findData("heat"))
        assert not legend.isVisible()  # heat chosen, but nothing predicted yet
        with qtbot.waitSignal(service.predicted, timeout=20000):
            panel.open_photos([photo])
        assert panel.overlay is not None and legend.isVisible()
        panel.threshold.setValue(30)
        assert legend.threshold == pytest.approx(0.30)
        # what it paints: blue at 0, red at 1, and the part below the threshold faded (lighter)
        img = legend.grab().toImage()
        bar = legend.bar_rect()
        y = int(bar.center().y())
        left = img.pixelColor(int(bar.left()) + 2, y)
        right = img.pixelColor(int(bar.right()) - 2, y)
        assert left.blue() > left.red() and right.red() > right.blue()
        ramp = overlays.legend_rgba(100, 1, 0.3)[0]
        assert ramp[20, :3].min() > 150  # faded towards white below the threshold
        assert ramp[29, :3].min() > ramp[31, :3].min()  # full colour from the threshold on
        for mode in ("outline", "agreement"):
            panel.mode.setCurrentIndex(panel.mode.findData(mode))
            assert panel.overlay is not None and not legend.isVisible()
        panel.mode.setCurrentIndex(panel.mode.findData("heat"))
        assert legend.isVisible()
        panel.set_target(None)  # the image is gone: no overlay, no legend
        assert not legend.isVisible()
    finally:
        service.shutdown()
