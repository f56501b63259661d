"""Prediction panel: drop photos, overlay, re-threshold without a forward pass, accept as polygons + undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from ml_helpers import make_model, make_project
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget
from viaseg.core.annotation import edits
from viaseg.core.annotation.dataset import load_dataset
from viaseg.gui.prediction_host import PanelHost
from viaseg.gui.prediction_panel import PhotoDropFilter, PredictionPanel, Target
from viaseg.gui.workers import InferenceService


class Host(PanelHost):
    """Stands in for the main window adapter: one dataset, an undo history, the overlay it was given."""

    shows_targets = True

    def __init__(self, dataset):
        self.dataset = dataset
        self.history = edits.History()
        self.overlay = None
        self.shown = None
        self.current = None
        self.column = None

    def current_target(self):
        return self.current

    def set_overlay(self, img):
        self.overlay = img

    def show_external(self, path):
        self.shown = Path(path)
        self.current = Target(Path(path))

    def add_regions(self, entry, regions):
        self.history.push(edits.AddRegions(entry, regions))

    def split_names(self):
        return list(self.dataset.splits)

    def split_entries(self, name):
        return list(self.dataset.split(name).entries)

    def set_dice_column(self, mapping):
        self.column = dict(mapping)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture
def setup(qtbot, tmp_path, model_file):
    ds = load_dataset(make_project(tmp_path / "proj", n_train=2, n_val=3))
    host = Host(ds)
    service = InferenceService()
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(service.model_changed, timeout=60000):
        service.set_model(model_file)
    panel.refresh_splits()
    yield panel, host, service
    service.shutdown()


def drop_files(widget, paths) -> bool:
    """What a desktop drag does: DragEnter (must be accepted for Qt to deliver the drop), then Drop."""
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(5, 5), *args)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDropEvent(QPointF(5, 5), *args))
    return True


def test_drop_photo_shows_overlay_and_rethreshold_needs_no_forward_pass(qtbot, setup, tmp_path):
    panel, host, service = setup
    target = QWidget()
    qtbot.addWidget(target)
    PhotoDropFilter.install(target, panel)
    photo = next((tmp_path / "proj" / "val").glob("*.png"))
    with qtbot.waitSignal(service.predicted, timeout=60000):
        assert drop_files(target, [photo])
    assert host.shown == photo
    assert panel.probs is not None and panel.probs.shape == (48, 48)  # full resolution of the photo
    assert host.overlay is not None and (host.overlay.width(), host.overlay.height()) == (48, 48)
    passes, renders = service.forward_passes, panel.renders
    before = host.overlay
    # threshold below every probability: the whole image is foreground -> a different overlay, same pass count
    panel.mode.setCurrentIndex(panel.mode.findData("outline"))
    panel.threshold.setValue(1)
    low = host.overlay
    panel.threshold.setValue(99)
    high = host.overlay
    assert panel.renders > renders
    assert low != high and low is not before
    assert service.forward_passes == passes
    qtbot.wait(50)
    assert service.forward_passes == passes and service.pending == 0


def test_vertex_hint_counts_what_accept_would_make_once_the_overlay_is_shown(qtbot, setup, tmp_path):
    panel, host, service = setup
    photo = next((tmp_path / "proj" / "val").glob("*.png"))
    with qtbot.waitSignal(service.predicted, timeout=60000):
        panel.show_photo(photo)
    assert host.overlay is not None  # the picture first; the hint is traced when the event loop is free

    def hint_matches() -> bool:
        regions = panel.predicted_regions()
        want = f"{len(regions)} polygon(s), {sum(len(r.points()) for r in regions)} vertices"
        return panel.vertex_hint.text() == want

    qtbot.waitUntil(hint_matches, timeout=5000)
    # nothing above 0.99 (the seeded tiny model's map stays near 0.5): the hint follows
    panel.threshold.setValue(99)

    def hint_is_zero() -> None:  # on a timeout pytest-qt raises the last of these, with what the panel shows
        state = (
            panel.vertex_hint.text(),
            panel.threshold.value(),
            panel.probs is None,
            panel._hint_timer.isActive(),
            None if panel.probs is None else float(panel.probs.max()),
        )
        assert panel.vertex_hint.text() == "0 polygon(s), 0 vertices", state

    qtbot.waitUntil(hint_is_zero, timeout=5000)


def test_on_a_large_photo_the_vertex_hint_waits_for_the_slider_to_rest(qtbot, setup, tmp_path):
    """Each count traces the whole map (0.2 s at 48 MP): counted at every threshold step, dragging the slider
    stalled on every step. On a map above HINT_DEBOUNCE_PIXELS it is counted once the slider rests."""
    import numpy as np
    from viaseg.gui.prediction_accept import HINT_DEBOUNCE_MS, HINT_DEBOUNCE_PIXELS

    panel, _host, service = setup
    photo = next((tmp_path / "proj" / "val").glob("*.png"))
    with qtbot.waitSignal(service.predicted, timeout=60000):
        panel.show_photo(photo)
    side = int(HINT_DEBOUNCE_PIXELS**0.5) + 1
    big = np.zeros((side, side), np.float32)
    big[100:300, 100:400] = 0.9
    panel.probs = big
    traced = []
    real = panel.predicted_regions
    panel.predicted_regions = lambda: traced.append(1) or real()
    for v in (40, 41, 42, 43):  # a drag: steps closer together than the pause
        panel.threshold.setValue(v)
        qtbot.wait(20)
    assert traced == [] and panel._hint_timer.interval() == HINT_DEBOUNCE_MS
    qtbot.waitUntil(lambda: panel.vertex_hint.text().startswith("1 polygon(s)"), timeout=5000)
    assert traced == [1]  # once, after the slider rested
    panel.probs = big[:100, :100]  # a small map: at once, as before
    panel.threshold.setValue(50)
    assert panel._hint_timer.interval() == 0


def test_drop_non_image_gives_message(qtbot, setup, tmp_path):
    panel, host, _ = setup
    target = QWidget()
    qtbot.addWidget(target)
    PhotoDropFilter.install(target, panel)
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert drop_files(target, [bad])
    assert "notes.txt" in panel.message.text() and "not an image" in panel.message.text()
    assert host.shown is None and panel.probs is None


def test_what_was_not_opened_stays_said_after_the_first_photo_is_predicted(qtbot, setup, tmp_path):
    panel, host, service = setup
    photo = next((tmp_path / "proj" / "val").glob("*.png"))
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with qtbot.waitSignal(service.predicted, timeout=60000):
        assert panel.open_photos([photo, bad, tmp_path / "gone.jpg"]) == [photo]
    text = panel.message.text()
    assert f"Predicted {photo.name}." in text
    assert "Not opened: notes.txt: not an image" in text and "gone.jpg: no such file" in text


def test_predict_project_image_agreement_accept_and_undo(qtbot, setup):
    panel, host, service = setup
    entry = host.dataset.split("val").entries[0]
    host.current = Target(entry.path, entry, "val")
    n_before = len(entry.regions)
    with qtbot.waitSignal(service.predicted, timeout=60000):
        assert panel.predict_current()
    assert panel.mode_value == "agreement"  # annotated image: agreement view by default
    assert panel.dice is not None and 0.0 <= panel.dice <= 1.0
    panel.threshold.setValue(1)  # everything predicted: Dice = 2|T| / (|T| + all pixels)
    truth = panel._truth_disp > 0
    expected = 2 * truth.sum() / (truth.sum() + truth.size)
    assert panel.dice == pytest.approx(expected, rel=1e-6)
    # the agreement overlay colours FP pixels red and TP pixels green
    img = host.overlay.convertToFormat(host.overlay.format())
    ys, xs = np.nonzero(truth)
    tp = img.pixelColor(int(xs[0]), int(ys[0]))
    fy, fx = np.argwhere(~truth)[0]
    fp = img.pixelColor(int(fx), int(fy))
    assert tp.green() > tp.red() and fp.red() > fp.green()

    added = panel.accept_polygons("add")  # beside the annotation (the image has regions)
    assert added and len(entry.regions) == n_before + len(added)
    assert all(r.kind == "polygon" for r in added)
    host.history.undo()
    assert len(entry.regions) == n_before


def test_predict_all_fills_dice_column(qtbot, setup, model_file):
    panel, host, service = setup
    panel.all_split.setCurrentText("val")
    assert panel.predict_all() == 3
    qtbot.waitUntil(lambda: panel.all_btn.isEnabled(), timeout=60000)
    assert host.column is not None and len(host.column) == 3
    keys = {e.key for e in host.dataset.split("val").entries}
    assert set(host.column) == keys
    # each value is the full-resolution hard Dice, computed here by hand from the same model's map
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.ml.predict import Predictor, interactive

    predictor = interactive(Predictor.load(model_file, cache=False))
    for e in host.dataset.split("val").entries:
        probs = np.asarray(predictor.predict(e.path))
        truth = rasterize(e.regions, (probs.shape[1], probs.shape[0])) > 0
        pred = probs > panel.threshold_value
        total = truth.sum() + pred.sum()
        expected = 1.0 if total == 0 else 2.0 * np.logical_and(truth, pred).sum() / total
        assert host.column[e.key] == pytest.approx(expected, abs=1e-6), e.filename


class _SlowPredictor:
    """A stand-in model: 50 ms per image, an all-zero probability map."""

    meta: dict = {}

    def predict(self, image):
        import time

        time.sleep(0.05)
        if isinstance(image, (str, Path)):  # the service hands file paths over undecoded
            from viaseg.core.imaging.imageio import image_size

            w, h = image_size(image)
            return np.zeros((h, w), np.float32)
        return np.zeros(np.asarray(image).shape[:2], np.float32)


def test_a_prediction_asked_for_during_predict_all_does_not_wait_for_the_split(qtbot, tmp_path, model_file):
    service = InferenceService(loader=lambda path: _SlowPredictor())
    try:
        service.set_model(model_file)
        photo = make_project(tmp_path / "p", n_train=1, n_val=0) / "train" / "train0.png"
        order = []
        service.predicted.connect(lambda job, tag, probs: order.append(tag))
        for i in range(6):
            service.submit(("all", i), str(photo), background=True)
        assert service.background_queued == 5  # one at a time goes to the worker
        service.submit(("one", "now"), str(photo))
        qtbot.waitUntil(lambda: len(order) == 7, timeout=20000)
        assert order.index(("one", "now")) <= 1  # after at most the background image already running
        assert [t for t in order if t[0] == "all"] == [("all", i) for i in range(6)]
        assert service.pending == 0
    finally:
        service.shutdown()


def test_predict_all_can_be_stopped_and_names_images_it_could_not_read(qtbot, tmp_path, model_file):
    ds = load_dataset(make_project(tmp_path / "proj", n_train=1, n_val=4))
    host = Host(ds)
    service = InferenceService(loader=lambda path: _SlowPredictor())
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    try:
        service.set_model(model_file)
        panel.refresh_splits()
        panel.all_split.setCurrentText("val")
        assert panel.predict_all() == 4
        assert panel.all_stop_btn.isEnabled()
        assert panel.stop_all() >= 2  # the images not started yet
        qtbot.waitUntil(lambda: panel.all_btn.isEnabled(), timeout=20000)
        assert not panel.all_stop_btn.isEnabled()
        done = len(host.column)
        assert 1 <= done <= 2
        assert panel.message.text().startswith(f"Stopped. Predicted {done} of 4 images")

        bad = ds.split("val").entries[2]
        Path(bad.path).write_bytes(b"not an image")  # e.g. a photo truncated on disk
        assert panel.predict_all() == 4
        qtbot.waitUntil(lambda: panel.all_btn.isEnabled(), timeout=20000)
        assert len(host.column) == 3 and bad.key not in host.column
        text = panel.message.text()
        assert "Predicted 3 of 4 images" in text and f"1 failed: {bad.filename}: " in text
        assert str(bad.path) not in text  # the photo is named once, by its name, then the problem
    finally:
        service.shutdown()


def test_export_mask_full_size(qtbot, setup, tmp_path):
    import cv2

    panel, host, service = setup
    photo = next((tmp_path / "proj" / "train").glob("*.png"))
    with qtbot.waitSignal(service.predicted, timeout=60000):
        panel.open_photos([photo])
    panel.threshold.setValue(1)
    out = panel.export_mask(tmp_path / "m.png")
    m = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert m.shape == (48, 48) and set(np.unique(m)) <= {0, 255}
    assert panel.export_overlay(tmp_path / "o.png").is_file()
    gone = tmp_path / "no-such-folder" / "m.png"  # the message named a temporary file ".m.png.j4bc.tmp"
    assert panel.export_mask(gone) is None
    assert panel.message.text() == f"{gone}: cannot write (its folder does not exist)"


# ------------------------------------------------------------------------- wired into the real main window


@pytest.fixture
def wired(qtbot, window, tmp_path, model_file):
    from viaseg.gui.ml_wiring import install

    root = make_project(tmp_path / "wproj", n_train=2, n_val=2)
    assert window.open_path(root)
    ml = getattr(window, "ml", None) or install(window)
    with qtbot.waitSignal(ml.service.model_changed, timeout=60000):
        ml.training.set_active_model(str(model_file))
    yield window, ml
    ml.shutdown()


def test_window_predict_key_accept_and_undo(qtbot, wired):
    window, ml = wired
    row = next(i for i, r in enumerate(window.session.rows) if r.split == "val")
    window.show_row(row)
    entry = window.current_entry()
    n = len(entry.regions)
    with qtbot.waitSignal(ml.service.predicted, timeout=60000):
        ml.act_predict.trigger()  # the P shortcut's action
    assert window.canvas.prediction is not None
    assert not ml.prediction.split_combo.isEnabled()  # "Add photo to" is for dropped photos only
    assert ml.prediction.dice is not None  # agreement with the annotation
    ml.prediction.threshold.setValue(1)
    added = ml.prediction.accept_polygons("add")  # the val image has regions: say what to do
    assert added and len(entry.regions) == n + len(added)
    assert window.session.is_dirty()
    window.undo()
    assert len(entry.regions) == n
    # moving to another image drops the old prediction instead of drawing it on the new one
    window.show_row(0)
    assert window.canvas.prediction is None
    ml.prediction.threshold.setValue(50)
    assert window.canvas.prediction is None and ml.prediction.probs is None


def test_window_drop_photo_overlay_and_add_to_split(qtbot, wired, tmp_path):
    import cv2

    window, ml = wired
    photo = tmp_path / "outside" / "new_photo.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((40, 56, 3), 120, np.uint8))
    with qtbot.waitSignal(ml.service.predicted, timeout=60000):
        assert drop_files(window, [photo])
    assert window.external_path == photo and window.canvas.prediction is not None
    assert ml.prediction.probs.shape == (40, 56)
    assert ml.prediction.split_combo.isEnabled()
    rows = len(window.session.rows)
    ml.prediction.split_combo.setCurrentText("train")
    ml.prediction.threshold.setValue(1)
    assert ml.prediction.accept_polygons()
    assert len(window.session.rows) == rows + 1
    train = window.session.dataset.splits["train"]
    added = train.entries[-1]
    assert (
        added.filename == "new_photo.png" and added.regions and (train.image_dir / "new_photo.png").is_file()
    )
    window.undo()
    assert len(window.session.rows) == rows and added not in train.entries
    # undoing the import also takes the copied photo out of the split's folder; redo brings it back
    assert not (train.image_dir / "new_photo.png").exists() and photo.is_file()
    window.redo()
    assert added in train.entries and (train.image_dir / "new_photo.png").is_file()


def test_window_drop_non_image_message(qtbot, wired, tmp_path):
    window, ml = wired
    bad = tmp_path / "readme.txt"
    bad.write_text("x")
    drop_files(window, [bad])
    assert "not an image" in ml.prediction.message.text()
    assert window.session.dataset is not None  # the project stays open


def test_window_drop_routing_and_dice_column(qtbot, wired, tmp_path):
    import cv2

    window, ml = wired
    # a folder of photos goes to prediction (its images are listed); a dataset folder opens as a project
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"p{i}.png"), np.full((24, 32, 3), 60 * i, np.uint8))
    source = window.session.source
    with qtbot.waitSignal(ml.service.predicted, timeout=60000):
        assert drop_files(window, [photos])
    assert ml.prediction.photos.count() == 2 and window.session.source == source
    other = make_project(tmp_path / "other", n_train=1, n_val=1)
    drop_files(window, [other])
    assert window.session.source == other
    # Predict all fills the image list's Dice column
    ml.prediction.all_split.setCurrentText("val")
    assert ml.prediction.predict_all() == 1
    qtbot.waitUntil(lambda: ml.prediction.all_btn.isEnabled(), timeout=60000)
    model = window.image_list.model
    assert model.extra_title == "Dice" and len(model.extra) == 1


def test_the_app_predicts_once_at_the_mean_size_with_the_mirror_average(tmp_path):
    """A model that stores multi-scale averaging: the app keeps its mirror average, runs the network once at
    the mean of the sizes and leaves the average over sizes to batch prediction; the CLI's Predictor.load keeps
    everything the model stores."""
    from viaseg.core.ml.modelio import save_model
    from viaseg.core.ml.predict import Predictor
    from viaseg.core.ml.unet import build_unet_xception
    from viaseg.gui.workers import _default_loader

    path = save_model(
        build_unet_xception(input_size=32, base_width=4),
        tmp_path / "m.keras",
        {"input_size": 32, "threshold": 0.5, "tta": True, "tta_scales": [0.875, 1.0, 1.125]},
    )
    assert Predictor.load(path, cache=False).scales == (0.875, 1.0, 1.125)
    app = _default_loader(str(path))
    assert app.scales == (1.0,) and app.tta is True  # one pass at the mean of 7/8, 1 and 9/8
    path = save_model(
        build_unet_xception(input_size=32, base_width=4),
        tmp_path / "m2.keras",
        {"input_size": 32, "threshold": 0.5, "tta": True, "tta_scales": [1.0, 1.25]},
    )
    app = _default_loader(str(path))
    assert app.scales == (1.125,) and app.tta is True  # today's default: one pass at 9/8


def test_window_drop_unreadable_photos_leave_the_list_and_the_canvas(qtbot, wired, tmp_path):
    """A 0-byte JPEG and a text file named .jpg: each gets a message naming it, leaves the Dropped photos list,
    and the canvas says it cannot show it instead of keeping the previous image (issue 21, item 8)."""
    window, ml = wired
    window.show_row(0)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a photo")
    for bad in (empty, fake):
        assert drop_files(window, [bad])
        assert bad.name in ml.prediction.message.text()
        names = [ml.prediction.photos.item(i).text() for i in range(ml.prediction.photos.count())]
        assert bad.name not in names and bad not in ml.prediction.external
        assert window.canvas.qimage is None and bad.name in window.canvas.placeholder
        assert ml.prediction.target is None and window.canvas.prediction is None


def test_the_right_dock_opens_on_attributes(qtbot, wired):
    window, ml = wired
    qtbot.waitUntil(lambda: not window.dock_attributes.visibleRegion().isEmpty(), timeout=3000)
    assert ml.dock_prediction.visibleRegion().isEmpty()  # a tab behind it


def test_polygon_detail_follows_the_cli_defaults_until_the_user_sets_it(qtbot):
    from viaseg.core.ml.prediction import detail_defaults

    service = InferenceService()
    panel = PredictionPanel(service, None)
    qtbot.addWidget(panel)
    service.meta = {"input_size": [256, 256]}
    panel.apply_detail_defaults((3000, 4000))  # a 12-megapixel photo: 15.6 photo pixels per network pixel
    tol, area = detail_defaults((4000, 3000), (256, 256))
    assert panel.tolerance.value() == round(tol * 2) == 8 and panel.min_area.value() == round(area) == 244
    assert not panel.detail_user_set
    panel.apply_detail_defaults((480, 640))  # a small photo: the floors (1 px, 10 px²)
    assert panel.tolerance.value() == 2 and panel.min_area.value() == 10
    panel.tolerance.setValue(6)  # the user's choice stays for every later photo
    assert panel.detail_user_set
    panel.apply_detail_defaults((3000, 4000))
    assert panel.tolerance.value() == 6 and panel.min_area.value() == 10
    service.shutdown()
