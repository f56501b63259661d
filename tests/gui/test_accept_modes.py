"""Accepting a prediction onto an image that already has regions: Replace / Merge / Add, each one undo step
(issue 21: accepting added overlapping duplicates). A stand-in model returns a known map, so no TensorFlow."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from viaseg.core.annotation import edits
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.annotation.project import Region
from viaseg.core.annotation.raster import rasterize
from viaseg.gui.prediction_host import PanelHost
from viaseg.gui.prediction_panel import PredictionPanel, Target
from viaseg.gui.workers import InferenceService

W, H = 64, 64
RECT = {"name": "rect", "x": 10, "y": 10, "width": 20, "height": 20}


def known_map() -> np.ndarray:
    """Two blobs: one overlapping RECT (x 20..39, y 15..34), one far from it (x 45..57, y 45..57)."""
    p = np.zeros((H, W), np.float32)
    p[15:35, 20:40] = 0.9
    p[45:58, 45:58] = 0.9
    return p


class KnownPredictor:
    meta: dict = {}

    def predict(self, image):
        return known_map()


class Host(PanelHost):
    shows_targets = can_set_regions = True

    def __init__(self, dataset):
        self.dataset = dataset
        self.history = edits.History()
        self.current = None

    def current_target(self):
        return self.current

    def add_regions(self, entry, regions):
        self.history.push(edits.AddRegions(entry, regions))

    def set_regions(self, entry, regions, fresh, text):
        for r in fresh:
            r.attributes = {"damage": "predicted", **r.attributes}
        self.history.push(edits.SetRegions(entry, regions, text))

    def split_names(self):
        return list(self.dataset.splits)


def make_labelled(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(root / name), np.full((H, W, 3), 90, np.uint8))
    via = {
        "a.png1": {
            "filename": "a.png",
            "size": 1,
            "file_attributes": {},
            "regions": [
                {"shape_attributes": dict(RECT), "region_attributes": {"damage": "dent"}},
                {
                    "shape_attributes": {"name": "point", "cx": 5, "cy": 60},
                    "region_attributes": {"damage": "chip"},
                },
            ],
        },
        "b.png2": {"filename": "b.png", "size": 2, "regions": [], "file_attributes": {}},
    }
    path = root / "via_region_data.json"
    path.write_text(json.dumps(via))
    return path


@pytest.fixture
def setup(qtbot, tmp_path):
    ds = load_dataset(make_labelled(tmp_path / "proj"))
    host = Host(ds)
    service = InferenceService(loader=lambda path: KnownPredictor())
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    model = tmp_path / "known.keras"
    with zipfile.ZipFile(model, "w") as zf:  # only its metadata is read: the loader is the stand-in
        zf.writestr("viaseg_meta.json", json.dumps({"threshold": 0.5}))
    service.set_model(model)
    panel.tolerance.setValue(0)  # every contour pixel a vertex: the union's outline is exact
    yield panel, host, service, ds
    service.shutdown()


def predict(qtbot, panel, host, service, entry):
    host.current = Target(entry.path, entry, "x")
    with qtbot.waitSignal(service.predicted, timeout=20000):
        assert panel.predict_current()
    assert panel.probs is not None


def test_accept_onto_regions_asks_and_replace_merge_add_are_one_undo_step_each(qtbot, setup):
    panel, host, service, ds = setup
    entry = next(e for e in ds.splits[next(iter(ds.splits))].entries if e.filename == "a.png")
    original = list(entry.regions)
    rect, point = original
    predict(qtbot, panel, host, service, entry)
    asked = []

    def answer(mode):
        def ask(n_old, n_new):
            asked.append((n_old, n_new))
            return mode

        return ask

    # cancelled: nothing changes, no undo step
    panel.ask_accept_mode = answer(None)
    assert panel.accept_polygons() == []
    assert asked == [(2, 2)] and entry.regions == original and not host.history.can_undo()

    # Replace: the two predicted polygons are the image's regions
    panel.ask_accept_mode = answer("replace")
    added = panel.accept_polygons()
    assert len(added) == 2 and entry.regions == added
    assert all(r.attributes["damage"] == "predicted" for r in added)
    assert len(host.history) == 1
    host.history.undo()
    assert entry.regions == original and entry.regions[0] is rect

    # Merge: the blob over the rect joins it (one outline, the rect's attributes), the far blob is added, the
    # point (no area) stays the very same object
    panel.ask_accept_mode = answer("merge")
    assert len(panel.accept_polygons()) == 2
    assert len(entry.regions) == 3 and len(host.history) == 1
    merged, kept, new = entry.regions
    assert kept is point and merged is not rect
    assert merged.kind == "polygon" and merged.attributes == {"damage": "dent"}
    assert new.attributes == {"damage": "predicted"}
    got = rasterize([merged], (W, H)).astype(bool)
    want = (rasterize([Region(dict(RECT))], (W, H)) | _blob1()).astype(bool)
    assert np.count_nonzero(got ^ want) <= 4  # the union's traced outline, to a few pixels
    far = rasterize([new], (W, H)).astype(bool)
    assert far[50, 50] and not far[20, 20]
    host.history.undo()
    assert entry.regions == original and entry.regions[0] is rect

    # Add: today's behaviour, overlaps stay
    panel.ask_accept_mode = answer("add")
    assert len(panel.accept_polygons()) == 2
    assert entry.regions[:2] == original and len(entry.regions) == 4
    host.history.undo()
    assert entry.regions == original
    assert len(asked) == 4

    # a mode given directly (menu, scripts) is not asked
    assert len(panel.accept_polygons("replace")) == 2 and len(asked) == 4
    host.history.undo()
    assert entry.regions == original


def _blob1() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[15:35, 20:40] = 1
    return m


def test_accept_onto_an_image_without_regions_does_not_ask(qtbot, setup):
    panel, host, service, ds = setup
    entry = next(e for sp in ds.splits.values() for e in sp.entries if e.filename == "b.png")
    predict(qtbot, panel, host, service, entry)
    panel.ask_accept_mode = lambda *a: pytest.fail("asked on an image without regions")
    assert len(panel.accept_polygons()) == 2 and len(entry.regions) == 2
    assert not panel.split_combo.isEnabled()  # "Add photo to" is for dropped photos only


def test_the_question_offers_replace_merge_add_and_cancel(qtbot, setup):
    panel, *_ = setup
    box = panel.accept_mode_box(3, 2)
    modes = [b.property("accept_mode") for b in box.buttons() if b.property("accept_mode")]
    assert sorted(modes) == ["add", "merge", "replace"]
    assert box.button(QMessageBox.StandardButton.Cancel) is not None
    assert "3 region(s)" in box.text() and "2 predicted" in box.text()
    box.deleteLater()

    # the real dialog: clicking Merge answers "merge"
    def click_merge():
        dlg = QApplication.activeModalWidget()
        assert isinstance(dlg, QMessageBox)
        next(b for b in dlg.buttons() if b.property("accept_mode") == "merge").click()

    QTimer.singleShot(50, click_merge)
    assert panel.ask_accept_mode(3, 2) == "merge"


class ImageSizedPredictor:
    """On a map of the photo's size: a blob over the top edge of conftest's a.png polygon (x 20..80, y 20..60),
    one away from every region."""

    meta: dict = {}

    def predict(self, image):
        from viaseg.core.imaging.imageio import image_size

        w, h = image_size(image)
        p = np.zeros((h, w), np.float32)
        p[10:30, 30:50] = 0.9
        p[2:14, 100:115] = 0.9
        return p


def _window_with_known_model(window, project, tmp_path):
    """The window on ``project`` with the ML docks, its active model a stand-in (ImageSizedPredictor, no
    TensorFlow): the MLWiring."""
    from viaseg.gui.ml_wiring import install

    assert window.open_path(project)
    ml = getattr(window, "ml", None) or install(window)
    ml.service._worker._loader = lambda path: ImageSizedPredictor()
    ml.service._needs_tf = False
    model = tmp_path / "known.keras"
    with zipfile.ZipFile(model, "w") as zf:
        zf.writestr("viaseg_meta.json", json.dumps({"threshold": 0.5}))
    ml.service.set_model(model)
    return ml


def test_window_replace_and_merge_are_undoable_and_saved(qtbot, window, project, tmp_path):
    """The main window's host: Replace then undo, Merge then save; the saved file has the merged outline with
    the region's attributes and the untouched regions as they were."""
    ml = _window_with_known_model(window, project, tmp_path)
    try:
        window.show_row(0)  # a.png: polygon x 20..80 y 20..60 ("dent") and a rect at (90, 65) ("scratch")
        entry = window.current_entry()
        original = list(entry.regions)
        before = json.loads(project.read_text())["a.png1"]["regions"]
        with qtbot.waitSignal(ml.service.predicted, timeout=20000):
            ml.act_predict.trigger()
        ml.prediction.tolerance.setValue(0)
        ml.prediction.ask_accept_mode = lambda n_old, n_new: "replace"
        assert len(ml.prediction.accept_polygons()) == 2
        assert len(entry.regions) == 2 and not set(map(id, entry.regions)) & set(map(id, original))
        window.undo()
        assert entry.regions == original and not window.session.is_dirty()

        ml.prediction.ask_accept_mode = lambda n_old, n_new: "merge"
        assert len(ml.prediction.accept_polygons()) == 2
        assert window.session.history.undo_text() == "merge the prediction into the regions"
        assert window.save()
        saved = json.loads(project.read_text())["a.png1"]["regions"]
        assert len(saved) == 3
        merged, rect, far = saved
        assert merged["region_attributes"] == {"damage": "dent"}  # the region's, not the prediction's
        assert merged["shape_attributes"]["name"] == "polygon"
        xs, ys = merged["shape_attributes"]["all_points_x"], merged["shape_attributes"]["all_points_y"]
        assert (min(xs), max(xs), max(ys)) == (20, 80, 60)  # the old polygon's edges...
        assert min(ys) == 10  # ...and the blob's top
        assert rect == before[1]  # untouched
        assert min(far["shape_attributes"]["all_points_x"]) == 100
    finally:
        ml.shutdown()


def test_a_prediction_is_never_accepted_onto_another_image(qtbot, window, project, tmp_path):
    """P on a.png, then D to b.png, then Accept: a.png's prediction was added to b.png (the panel only looked
    at which image was shown when it redrew); a prediction arriving after the user moved on said "Predicted
    a.png" under b.png."""
    ml = _window_with_known_model(window, project, tmp_path)
    panel = ml.prediction
    try:
        window.show_row(0)
        with qtbot.waitSignal(ml.service.predicted, timeout=20000):
            ml.act_predict.trigger()
        assert panel.probs is not None and panel.accept_btn.isEnabled()
        qtbot.waitUntil(lambda: panel.vertex_hint.text() != "", timeout=5000)
        window.step(1)  # b.png, no regions
        b = window.current_entry()
        assert b.filename == "b.png" and panel.probs is None and not panel.accept_btn.isEnabled()
        assert panel.vertex_hint.text() == ""  # it counted a.png's polygons
        assert "a.png is put aside" in panel.message.text()
        assert panel.accept_polygons("add") == [] and b.regions == []
        # a prediction still running when the user moves on is not shown under the next image
        window.show_row(0)
        ml.act_predict.trigger()
        window.step(1)
        qtbot.wait(300)
        QApplication.processEvents()
        assert panel.probs is None and not panel.message.text().startswith("Predicted a.png")
        # the image predicted, still shown: accepted as before
        with qtbot.waitSignal(ml.service.predicted, timeout=20000):
            ml.act_predict.trigger()
        assert len(panel.accept_polygons("add")) >= 1 and b.regions
    finally:
        ml.shutdown()


def test_a_dropped_photo_goes_into_a_folder_of_photos_and_only_once(qtbot, tmp_path, project_factory, window):
    """'Add photo to' offered a folder of photos (an unlabelled split) that Accept then refused, with its reason
    replaced at once by "Could not add"; accepting the same photo twice copied it in twice (111-2.jpg)."""
    import cv2

    root = tmp_path / "ds"
    project_factory(root / "train")
    (root / "test").mkdir()
    cv2.imwrite(str(root / "test" / "t.png"), np.zeros((90, 120, 3), np.uint8))
    photo = tmp_path / "outside" / "new.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((90, 120, 3), 90, np.uint8))
    ml = _window_with_known_model(window, root, tmp_path)
    panel = ml.prediction
    try:
        with qtbot.waitSignal(ml.service.predicted, timeout=20000):
            panel.open_photos([photo])
        panel.split_combo.setCurrentText("test")
        assert panel.split_combo.currentText() == "test"
        assert panel.accept_polygons("add")
        test = window.session.dataset.splits["test"]
        assert test.project is not None and [e.filename for e in test.entries] == ["t.png", "new.png"]
        assert "Added new.png to test" in panel.message.text()
        # the photo, now the project's, is predicted again (the AI region tool asks for its map at once): which
        # split it went to stays in view (it was replaced by "Predicted new.png." within a second)
        with qtbot.waitSignal(ml.service.predicted, timeout=20000):
            ml.act_predict.trigger()
        qtbot.waitUntil(lambda: panel.message.text().endswith("Predicted new.png."), timeout=20000)
        assert "Added new.png to test with" in panel.message.text()
        # the same photo again: refused, and the panel says why
        with qtbot.waitSignal(ml.service.predicted, timeout=20000):
            panel.open_photos([photo])
        assert panel.accept_polygons("add") == []
        said = panel.message.text()
        assert "Could not add new.png to split 'test': new.png is already in split 'test'" in said
        assert sorted(p.name for p in (root / "test").iterdir()) == ["new.png", "t.png"]
        window.undo()  # one step: the photo out, and the folder of photos without a VIA file again
        assert test.project is None and [e.filename for e in test.entries] == ["t.png"]
        assert not (root / "test" / "new.png").exists()
    finally:
        ml.shutdown()


def test_opening_another_project_drops_a_predict_all_still_running(qtbot, tmp_path, project_factory, window):
    """Predict all of 100 photos, another project opened at 80: the rest went on, and its end said "Predicted 100
    of 100 images; the image list is sorted by their Dice" over the new project, with a column of the old one's
    scores. It is dropped, and said so."""
    import shutil

    first = project_factory(tmp_path / "first")
    via = json.loads(first.read_text())
    for i in range(30):  # enough photos that the batch is still running when the other project opens
        shutil.copy(first.parent / "a.png", first.parent / f"c{i}.png")
        via[f"c{i}.png1"] = {"filename": f"c{i}.png", "size": 1, "regions": [], "file_attributes": {}}
    first.write_text(json.dumps(via))
    second = project_factory(tmp_path / "second")
    ml = _window_with_known_model(window, first, tmp_path)
    panel = ml.prediction
    columns = []
    window.image_list.set_extra_column = lambda title, *a, **k: columns.append(title)
    try:
        panel.refresh_splits()
        assert panel.predict_all() >= 2
        assert window.open_path(second)
        assert "Predict all stopped: another project was opened" in panel.message.text()
        assert columns == [None]  # the new project's list: no column of the old scores
        qtbot.wait(1500)  # what was in flight answers now: ignored
        assert columns == [None] and panel.all_btn.isEnabled() and not panel._all_total
        assert "Predicted" not in panel.message.text()
    finally:
        ml.shutdown()
