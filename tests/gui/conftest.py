"""Tiny generated VIA projects and an offscreen main window for the annotation GUI tests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")


def _image(path: Path, w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)


def make_project(folder: Path) -> Path:
    """Two 120x90 images: a.png with a polygon (ints) + a rect, b.png with nothing. VIA 2 annotations."""
    folder.mkdir(parents=True, exist_ok=True)
    _image(folder / "a.png", 120, 90, 1)
    _image(folder / "b.png", 120, 90, 2)
    data = {
        "a.png1": {
            "filename": "a.png",
            "size": 1,
            "regions": [
                {
                    "shape_attributes": {
                        "name": "polygon",
                        "all_points_x": [20, 80, 80, 20],
                        "all_points_y": [20, 20, 60, 60],
                    },
                    "region_attributes": {"damage": "dent"},
                },
                {
                    "shape_attributes": {"name": "rect", "x": 90, "y": 65, "width": 20, "height": 15},
                    "region_attributes": {"damage": "scratch"},
                },
            ],
            "file_attributes": {"weather": "sun"},
        },
        "b.png2": {"filename": "b.png", "size": 2, "regions": [], "file_attributes": {}},
    }
    path = folder / "via_region_data.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("VIASEG_STATE_DIR", str(d))
    return d


@pytest.fixture
def project_factory():
    return make_project


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "proj")


@pytest.fixture
def window(qtbot, state_dir):
    from viaseg.gui.main_window import MainWindow

    w = MainWindow(settings=None)

    def no_dialogs(title, text, buttons):
        raise AssertionError(f"unexpected dialog: {title}: {text}")

    w.ask = no_dialogs
    w.resize(900, 650)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.problems.pool.waitForDone()
    w.cache.pool.waitForDone()
    w.session.history.set_clean()  # no "save changes?" prompt at teardown
    w.close()
    w.deleteLater()
