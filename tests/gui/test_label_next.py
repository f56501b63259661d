"""Label next (issue 18): Predict all on an unlabelled split ranks its photos, typical first (the one that best
stands for the others and for what the annotated photos leave uncovered), by how unsure the model is when the
photos' features cannot be had; L opens the first one that is still unlabelled."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from ml_helpers import make_model
from test_prediction_panel import Host
from viaseg.core.annotation.dataset import load_dataset
from viaseg.gui.prediction_panel import PredictionPanel
from viaseg.gui.workers import InferenceService


class MapByBrightness:
    """A stand-in model whose map follows the photo: the brightness of its centre is the damage probability
    there (so a mid-grey photo is the ambiguous one), zero elsewhere."""

    meta: dict = {}

    def predict(self, image):
        img = cv2.imread(str(image)) if not isinstance(image, np.ndarray) else image
        h, w = img.shape[:2]
        probs = np.zeros((h, w), np.float32)
        probs[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = img[h // 2, w // 2, 0] / 255.0
        return probs


class NextHost(Host):
    def __init__(self, dataset):
        super().__init__(dataset)
        self.opened = []
        self.rank = None

    def set_rank_column(self, title, mapping, ascending=False):
        self.rank = (title, dict(mapping), ascending)

    def open_entry(self, entry):
        self.opened.append(entry.filename)


@pytest.fixture
def unlabelled(tmp_path):
    """A project whose 'test' split has four unlabelled photos: sure damage, sure clean, a faint hint and one
    ambiguous (half believed over a large area)."""
    root = tmp_path / "proj"
    (root / "test").mkdir(parents=True)
    for name, grey in (("sure.png", 250), ("clean.png", 0), ("hint.png", 40), ("ambiguous.png", 128)):
        cv2.imwrite(str(root / "test" / name), np.full((40, 40, 3), grey, np.uint8))
    (root / "train").mkdir()
    cv2.imwrite(str(root / "train" / "a.png"), np.full((40, 40, 3), 9, np.uint8))
    (root / "train" / "via_region_data.json").write_text(
        '{"a.png1": {"filename": "a.png", "size": 1, "regions": [{"shape_attributes": {"name": "rect", "x": 1, '
        '"y": 1, "width": 9, "height": 9}, "region_attributes": {}}], "file_attributes": {}}}'
    )
    return load_dataset(str(root))


def test_without_features_predict_all_ranks_by_doubt_and_L_opens_the_most_uncertain(
    qtbot, unlabelled, tmp_path
):
    """A model that gives no features (this stand-in): the order falls back to the doubt, and says so."""
    host = NextHost(unlabelled)
    service = InferenceService(loader=lambda path: MapByBrightness())
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(service.model_changed, timeout=30000):
        service.set_model(make_model(tmp_path / "m.keras"))  # its metadata; the loader gives the stand-in
    panel.refresh_splits()
    panel.all_split.setCurrentText("test")
    try:
        # no ranking yet: Next to label ranks the split first, then opens the top photo
        assert panel.next_to_label() is None
        qtbot.waitUntil(lambda: bool(host.opened), timeout=30000)
        assert host.opened == ["ambiguous.png"]
        title, column, ascending = host.rank
        assert title == "doubt" and not ascending and host.column is None  # no Dice column: no labels
        by_name = {e.key: e.filename for e in unlabelled.split("test").entries}
        order = sorted(column, key=lambda k: -column[k])
        assert [by_name[k] for k in order] == ["ambiguous.png", "hint.png", "sure.png", "clean.png"]
        assert panel.order == order  # L follows the doubt column
        assert column[order[-1]] == 0.0
        # labelling the top photo moves Next to the next one
        top = unlabelled.split("test").entries[
            [e.filename for e in unlabelled.split("test").entries].index("ambiguous.png")
        ]
        top.regions.append(unlabelled.split("train").entries[0].regions[0])
        assert panel.next_to_label().filename == "hint.png"
        assert host.opened[-1] == "hint.png"
        # a photo deleted from disk since the order was made is passed over and named (L opened it again and
        # again, the canvas showing its cached picture)
        (unlabelled.root / "test" / "hint.png").unlink()
        assert panel.next_to_label().filename == "sure.png"
        assert "Passed over 1 photo(s) no longer on disk: hint.png" in panel.message.text()
        for name in ("sure.png", "clean.png"):
            (unlabelled.root / "test" / name).unlink()
        assert panel.next_to_label() is None and "no longer on disk" in panel.message.text()
        # a split where every photo has regions: said, nothing opened
        panel.all_split.setCurrentText("train")
        assert panel.next_to_label() is None
        assert "nothing left to label" in panel.message.text()
    finally:
        service.shutdown()


def test_the_shown_prediction_follows_a_new_active_model(qtbot, unlabelled, tmp_path):
    """Improve model (or Make active) changes the model: the prediction on screen is made again with it."""
    from viaseg.gui.prediction_panel import Target

    class Constant:
        meta: dict = {}

        def __init__(self, value):
            self.value = value

        def predict(self, image):
            img = cv2.imread(str(image))
            return np.full(img.shape[:2], self.value, np.float32)

    host = NextHost(unlabelled)
    service = InferenceService(loader=lambda path: Constant(0.9 if path.endswith("b.keras") else 0.1))
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    a, b = make_model(tmp_path / "a.keras"), make_model(tmp_path / "b.keras")
    try:
        with qtbot.waitSignal(service.model_changed, timeout=30000):
            service.set_model(a)
        entry = unlabelled.split("test").entries[0]
        host.current = Target(entry.path, entry, "test")
        assert panel.predict_current()
        qtbot.waitUntil(lambda: panel.probs is not None, timeout=30000)
        assert float(panel.probs.mean()) == pytest.approx(0.1)
        service.set_model(b)
        qtbot.waitUntil(lambda: float(panel.probs.mean()) > 0.5, timeout=30000)
        assert float(panel.probs.mean()) == pytest.approx(0.9)
    finally:
        service.shutdown()


def test_a_model_whose_warm_up_fails_is_loaded_afresh_for_the_next_prediction(qtbot, tmp_path):
    """Seen once after Improve model: the new model's first trace failed in the warm-up. The worker must not
    keep that predictor; the next prediction loads the model again."""
    loads = []

    class FailsFirst:
        meta: dict = {}

        def __init__(self, n):
            self.n = n

        def predict(self, image):
            if self.n == 1:
                raise RuntimeError("traced function broken")
            return np.full(np.asarray(image).shape[:2], 0.5, np.float32)

    def loader(path):
        loads.append(path)
        return FailsFirst(len(loads))

    service = InferenceService(loader=loader)
    got = []
    service.predicted.connect(lambda job, tag, probs: got.append(float(probs.mean())))
    try:
        service.set_model(make_model(tmp_path / "m.keras"), load=True)
        qtbot.waitUntil(lambda: len(loads) == 1, timeout=30000)
        service.submit(("one", 1), np.zeros((20, 30, 3), np.uint8))
        qtbot.waitUntil(lambda: bool(got), timeout=30000)
        assert got == [0.5] and len(loads) == 2
    finally:
        service.shutdown()


def dropped_setup(qtbot, host, tmp_path, greys):
    """A folder of flat grey photos to drop (name, grey level) and a panel on ``host`` whose stand-in model's map
    follows each photo's brightness: (folder, service, panel); the caller shuts the service down."""
    folder = tmp_path / "dropped"
    folder.mkdir()
    for name, grey in greys:
        cv2.imwrite(str(folder / name), np.full((30, 30, 3), grey, np.uint8))
    service = InferenceService(loader=lambda path: MapByBrightness())
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    return folder, service, panel


def test_label_next_ranks_dropped_photos_too(qtbot, unlabelled, tmp_path):
    """Photos dropped on the window (not in any split) are ranked the same way: the list is reordered with
    each photo's doubt, and L shows the most uncertain one that was not added to a split yet."""
    from PySide6.QtCore import Qt

    host = NextHost(unlabelled)
    folder, service, panel = dropped_setup(
        qtbot, host, tmp_path, (("d_sure.png", 250), ("d_clean.png", 0), ("z_ambiguous.png", 128))
    )
    try:
        with qtbot.waitSignal(service.model_changed, timeout=30000):
            service.set_model(make_model(tmp_path / "m.keras"))
        panel.refresh_splits()
        assert panel.all_split.findText("Dropped photos") < 0  # nothing dropped yet
        panel.open_photos([folder])
        assert panel.all_split.findText("Dropped photos") >= 0
        panel.all_split.setCurrentText("Dropped photos")
        assert host.shown.name == "d_clean.png"  # the first dropped photo is shown
        assert panel.next_to_label() is None  # ranks first
        qtbot.waitUntil(lambda: len(panel.doubt) == 3 and panel.all_btn.isEnabled(), timeout=30000)
        qtbot.waitUntil(lambda: host.shown.name == "z_ambiguous.png", timeout=30000)
        # its prediction's message keeps what Label next said
        qtbot.waitUntil(lambda: "Predicted z_ambiguous.png" in panel.message.text(), timeout=30000)
        assert panel.message.text().startswith("Next to label: z_ambiguous.png (#1 of 3")
        names = [panel.photos.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.photos.count())]
        assert [n.rsplit("/", 1)[-1] for n in names] == ["z_ambiguous.png", "d_sure.png", "d_clean.png"]
        assert "doubt" in panel.photos.item(0).text()
        assert host.opened == []  # a dropped photo is shown as one, not opened as a project image
        # once it is added to a split (accept with Add photo to), L moves on
        panel._dropped_entries[str(folder / "z_ambiguous.png")].regions = ["added"]
        assert panel.next_to_label().filename == "d_sure.png"
        assert host.shown.name == "d_sure.png"
    finally:
        service.shutdown()


class MapAndFeatures(MapByBrightness):
    """The same map, and features from the photo's colour: its mean green and red (plus one), as a unit vector,
    so green photos are alike, red ones are alike and the two kinds unlike. Records the photos it was asked."""

    def __init__(self):
        self.asked: list[str] = []

    def embeddings(self, paths):
        out = {}
        for p in paths:
            self.asked.append(p)
            img = cv2.imread(p)
            if img is None:
                out[p] = None
                continue
            v = img[..., 1:].reshape(-1, 2).mean(axis=0) + 1.0
            out[p] = v / np.linalg.norm(v)
        return out


@pytest.fixture
def two_kinds(tmp_path):
    """An unlabelled 'test' split of three green photos the model half-believes (the most uncertain) and two
    red ones it is surer about; the one annotated photo (train) is green."""
    root = tmp_path / "kinds"
    (root / "test").mkdir(parents=True)
    (root / "train").mkdir()
    photos = {"g1.png": (128, 200, 0), "g2.png": (128, 210, 10), "g3.png": (128, 190, 5)}
    photos |= {"r1.png": (20, 0, 200), "r2.png": (20, 5, 210)}
    for name, bgr in photos.items():
        cv2.imwrite(str(root / "test" / name), np.full((40, 40, 3), bgr, np.uint8))
    cv2.imwrite(str(root / "train" / "a.png"), np.full((40, 40, 3), (9, 200, 0), np.uint8))
    (root / "train" / "via_region_data.json").write_text(
        '{"a.png1": {"filename": "a.png", "size": 1, "regions": [{"shape_attributes": {"name": "rect", "x": 1, '
        '"y": 1, "width": 9, "height": 9}, "region_attributes": {}}], "file_attributes": {}}}'
    )
    return load_dataset(str(root))


def _panel_on_test_split(qtbot, dataset, stand_in, model):
    """(host, service, panel): a Prediction panel whose service answers with ``stand_in``, ``model`` active
    (its metadata and run record), the *Predict all* box on the 'test' split."""
    host = NextHost(dataset)
    service = InferenceService(loader=lambda path: stand_in)
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(service.model_changed, timeout=30000):
        service.set_model(model)
    panel.refresh_splits()
    panel.all_split.setCurrentText("test")
    return host, service, panel


def test_label_next_puts_first_the_kind_the_annotated_photos_leave_uncovered(qtbot, two_kinds, tmp_path):
    """The annotated photo is green, so the red photos are what is not covered: L opens a red one first although
    the green ones are the most uncertain; the column is the place in that order (1 first, sorted ascending)."""
    stand_in = MapAndFeatures()
    host, service, panel = _panel_on_test_split(qtbot, two_kinds, stand_in, make_model(tmp_path / "m.keras"))
    try:
        assert panel.next_to_label() is None
        qtbot.waitUntil(lambda: bool(host.opened), timeout=30000)
        by_key = {e.key: e.filename for e in two_kinds.split("test").entries}
        assert max(panel.doubt, key=panel.doubt.get) in {k for k, n in by_key.items() if n.startswith("g")}
        assert host.opened[0].startswith("r")  # not the most uncertain: the uncovered kind
        title, column, ascending = host.rank
        assert title == "next" and ascending
        assert sorted(column.values()) == [1, 2, 3, 4, 5]
        first = min(column, key=column.get)
        assert by_key[first] == host.opened[0] and panel.order[0] == first
        assert any(p.endswith("a.png") for p in stand_in.asked)  # the annotated photo was asked as covered
        assert "Next to label" in panel.message.text() and "#1 of 5" in panel.message.text()
        # labelling it moves L to the second in the order
        entry = next(e for e in two_kinds.split("test").entries if e.key == first)
        entry.regions.append(two_kinds.split("train").entries[0].regions[0])
        assert panel.next_to_label().key == panel.order[1]
        # a new active model (Improve model): the order was the old model's; the next L orders them again
        asked = len(stand_in.asked)
        with qtbot.waitSignal(service.model_changed, timeout=30000):
            service.set_model(make_model(tmp_path / "improved.keras"))
        assert panel.order == []
        opened = len(host.opened)
        assert panel.next_to_label() is None  # predicts and orders first
        qtbot.waitUntil(lambda: len(host.opened) > opened, timeout=30000)
        assert len(stand_in.asked) > asked and sorted(panel.order) == sorted(k for k in column if k != first)
        assert host.opened[-1] != by_key[first]  # labelled meanwhile: not opened again
        assert any(p.endswith(by_key[first]) for p in stand_in.asked[asked:])  # now counted as covered
    finally:
        service.shutdown()


def test_the_real_model_gives_features_for_label_next_and_none_for_an_unreadable_photo(qtbot, tmp_path):
    """The app's own loader and a real (tiny) model: one background job returns a unit vector per photo."""
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((40, 50, 3), 90, np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    service = InferenceService()
    got = {}
    service.embedded.connect(lambda job, tag, vectors: got.update(vectors))
    try:
        service.set_model(make_model(tmp_path / "m.keras"))
        service.submit_embeddings(("rank", 2), [good, bad])
        qtbot.waitUntil(lambda: bool(got), timeout=60000)
        assert got[str(bad)] is None
        assert np.linalg.norm(got[str(good)]) == pytest.approx(1.0, abs=1e-4)
        assert service.pending == 0
    finally:
        service.shutdown()


def test_label_next_counts_as_covered_only_what_the_model_trained_on(qtbot, two_kinds, tmp_path):
    """A model whose run records it trained on nothing: the annotated green photo is not covered, so the
    larger kind (three green photos) comes first, and the annotated photo is not asked for."""
    import json

    stand_in = MapAndFeatures()
    run = tmp_path / "run"
    run.mkdir()
    model = make_model(run / "model.keras")
    (run / "summary.json").write_text(json.dumps({"trained_on": {}}))
    host, service, panel = _panel_on_test_split(qtbot, two_kinds, stand_in, model)
    try:
        panel.next_to_label()
        qtbot.waitUntil(lambda: bool(host.opened), timeout=30000)
        assert host.opened[0].startswith("g")
        assert not any(p.endswith("a.png") for p in stand_in.asked)
    finally:
        service.shutdown()


class ReadingHost(NextHost):
    """Like the window: showing a photo that cannot be read fails (returns False); every photo shown is noted."""

    def __init__(self, dataset):
        super().__init__(dataset)
        self.shown_all = []

    def show_external(self, path):
        self.shown_all.append(Path(path).name)
        if cv2.imread(str(path)) is None:
            return False
        return super().show_external(path)


def test_ordering_dropped_photos_keeps_the_list_and_shows_no_photo_on_the_way(qtbot, unlabelled, tmp_path):
    """Reordering the dropped list took every item out while its selection handler ran: each removal showed (and
    predicted) the next photo, and an unreadable one was dropped from under the loop, which emptied the list."""
    from PySide6.QtCore import Qt

    host = ReadingHost(unlabelled)
    folder, service, panel = dropped_setup(
        qtbot, host, tmp_path, (("a_sure.png", 250), ("c_clean.png", 0), ("d_ambiguous.png", 128))
    )
    (folder / "b_broken.png").write_bytes(b"not an image")
    try:
        with qtbot.waitSignal(service.model_changed, timeout=30000):
            service.set_model(make_model(tmp_path / "m.keras"))
        panel.open_photos([folder])
        panel.all_split.setCurrentText("Dropped photos")
        assert host.shown_all == ["a_sure.png"]
        assert panel.next_to_label() is None  # predicts the dropped photos, then orders them
        qtbot.waitUntil(lambda: host.shown.name == "d_ambiguous.png", timeout=30000)
        assert host.shown_all == ["a_sure.png", "d_ambiguous.png"]  # nothing shown but L's choice
        names = [
            Path(panel.photos.item(i).data(Qt.ItemDataRole.UserRole)).name
            for i in range(panel.photos.count())
        ]
        assert sorted(names) == ["a_sure.png", "b_broken.png", "c_clean.png", "d_ambiguous.png"]
        assert names[0] == "d_ambiguous.png"  # the unreadable one stays listed (Predict all named it)
    finally:
        service.shutdown()


def test_L_on_another_unlabelled_split_orders_that_split_instead_of_saying_it_is_labelled(qtbot, tmp_path):
    """With an order of 'test', L on 'val' (three photos, none labelled) said "Every image of 'val' has regions"
    and opened nothing."""
    root = tmp_path / "proj"
    for split, names in (("test", ("t1.png", "t2.png")), ("val", ("v1.png", "v2.png", "v3.png"))):
        (root / split).mkdir(parents=True)
        for i, name in enumerate(names):
            cv2.imwrite(str(root / split / name), np.full((40, 40, 3), 60 + 40 * i, np.uint8))
    dataset = load_dataset(str(root))
    host = NextHost(dataset)
    service = InferenceService(loader=lambda path: MapByBrightness())
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(service.model_changed, timeout=30000):
        service.set_model(make_model(tmp_path / "m.keras"))
    panel.refresh_splits()
    try:
        panel.all_split.setCurrentText("test")
        panel.next_to_label()
        qtbot.waitUntil(lambda: bool(host.opened), timeout=30000)
        assert host.opened[-1].startswith("t")
        panel.all_split.setCurrentText("val")
        panel.next_to_label()
        qtbot.waitUntil(lambda: host.opened[-1].startswith("v"), timeout=30000)
        assert "has regions" not in panel.message.text()
    finally:
        service.shutdown()


def test_a_prediction_running_when_another_model_is_made_active_is_not_shown_as_its(
    qtbot, unlabelled, tmp_path
):
    """P, then another model made active before the answer: the old model's map was shown as "Predicted" under
    the new model's name and threshold, and nothing predicted the image again. Only the new model's answer is
    taken now."""
    from viaseg.gui.prediction_photos import Target

    class Const:
        meta: dict = {}

        def __init__(self, value):
            self.value = value

        def predict(self, image):
            import time

            time.sleep(0.3)  # still running when the other model is made active
            h, w = cv2.imread(str(image)).shape[:2]
            return np.full((h, w), self.value, np.float32)

    m1, m2 = make_model(tmp_path / "m1.keras"), make_model(tmp_path / "m2.keras")
    service = InferenceService(loader=lambda path: Const(0.2 if Path(path) == m1 else 0.8))
    host = NextHost(unlabelled)
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    try:
        with qtbot.waitSignal(service.model_changed, timeout=30000):
            service.set_model(m1)
        entry = unlabelled.split("test").entries[0]
        host.current = Target(entry.path, entry)
        assert panel.predict_current()
        service.set_model(m2)  # before the first answer
        qtbot.waitUntil(lambda: panel.probs is not None and service.pending == 0, timeout=30000)
        qtbot.wait(500)
        assert float(panel.probs.max()) == pytest.approx(0.8)
    finally:
        service.shutdown()


def test_an_L_waiting_for_the_ordering_is_told_when_the_model_changes(qtbot, unlabelled):
    """L pressed, the photos being ordered, another model made active: the ordering was dropped but the L stayed
    pending, said nothing, and fired at the end of a later Predict all with an unrelated message."""
    host = NextHost(unlabelled)
    service = InferenceService(loader=lambda path: MapByBrightness())
    panel = PredictionPanel(service, host)
    qtbot.addWidget(panel)
    try:
        panel._all_doubt = {"k": 0.5}  # as Predict all left it, the ordering's job running
        panel._rank_job, panel._next_after_all = 7, True
        assert panel.forget_order()
        assert not panel._next_after_all and panel._rank_job is None
        assert "press L to order them with it" in panel.message.text()
    finally:
        service.shutdown()
