"""The Check labels dock: a real check in the training process on a tiny project (one photo's region deleted,
one photo with a region on bare background) ranks that photo first; clicking shows and zooms; Apply is one
undo step; bad states are messages."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from viaseg.core.annotation import edits
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.ml.check_labels import CheckLabelsDone, FoldFailed, FoldProgress, make_job, read_results
from viaseg.core.ml.pipeline import Augment
from viaseg.core.ml.presets import preset

DELETED, WRONG = "train3.png", "train7.png"  # the photo whose region is deleted; the one with a bogus region
SQUARE = (1, 1, 9, 9)  # the bogus region, on bare background (every ellipse stays inside 11..53)
RECIPE = dict(
    size=32,
    encoder="xception",
    base_width=8,
    batch_size=2,
    epochs=25,
    learning_rate=2e-3,
    norm="group",
    lr_schedule="constant",
    sample_every=0,
    augment=Augment.off(),
    tta=False,
    tta_scales=(1.0,),
)


def make_photos(root: Path, n_train: int = 9, n_val: int = 3, size: int = 64, seed: int = 5) -> Path:
    """Noise photos with one bright ellipse each, annotated as a polygon (train/ and val/ splits)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        via = {}
        for i in range(n):
            img = rng.integers(40, 90, size=(size, size, 3), dtype=np.uint8)
            cx, cy = (int(v) for v in rng.integers(24, 41, size=2))
            rx, ry = (int(v) for v in rng.integers(8, 14, size=2))
            cv2.ellipse(img, (cx, cy), (rx, ry), 0, 0, 360, (60, 200, 230), -1)
            name = f"{split}{i}.png"
            cv2.imwrite(str(d / name), img)
            t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            regions = [
                {
                    "shape_attributes": {
                        "name": "polygon",
                        "all_points_x": np.round(cx + rx * np.cos(t)).astype(int).tolist(),
                        "all_points_y": np.round(cy + ry * np.sin(t)).astype(int).tolist(),
                    },
                    "region_attributes": {"damage": "dent"},
                }
            ]
            if name == WRONG:
                x0, y0, x1, y1 = SQUARE
                regions.append(
                    {
                        "shape_attributes": {
                            "name": "rect",
                            "x": x0,
                            "y": y0,
                            "width": x1 - x0,
                            "height": y1 - y0,
                        },
                        "region_attributes": {"damage": "dent"},
                    }
                )
            via[f"{name}-1"] = {"filename": name, "size": -1, "regions": regions, "file_attributes": {}}
        (d / "via_region_data.json").write_text(json.dumps(via), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def real_check(qapp, tmp_path_factory):
    """A real check through the training process (spawned, as the app runs it): the annotations as the app
    holds them after deleting DELETED's region (an unsaved edit), 3 folds of a tiny recipe, 25 epochs each."""
    from viaseg.gui.train_thread import TrainThread

    root = make_photos(tmp_path_factory.mktemp("check") / "proj")
    ds = load_dataset(root)
    next(e for e in ds.splits["train"].entries if e.filename == DELETED).regions.clear()
    job = make_job(
        preset("default", **RECIPE), ds, root / "runs" / "check-labels-fixture", folds=3, fold_epochs=25
    )
    # the tiny recipe learns at one size, without scale crops: its maps at Check labels' larger sizes
    # (CHECK_SCALES, which the default recipe's scale crops prepare for) would be guesses. Its own size here;
    # the sizes a job hands to crossval are tested in tests/core/test_check_labels.py
    job = dataclasses.replace(job, predict_scales=None)
    events: list = []
    th = TrainThread(job, mode="process")
    th.event.connect(events.append, Qt.ConnectionType.DirectConnection)
    th.start()
    if not th.wait(600_000):  # never leave the thread running: Qt aborts the process that destroys it
        th.stop()
        th.wait(120_000)
        pytest.fail("the check did not end within 10 minutes")
    assert th.error is None, th.error
    done = th.result
    assert isinstance(done, CheckLabelsDone) and done.ok and not done.errors, done
    assert [e.fold for e in events if isinstance(e, FoldProgress)] == [0, 1, 2]
    assert any(type(e).__name__ == "BatchEnd" for e in events)
    runs = json.loads(done.results.read_text())["fold_runs"]
    assert [r["epochs_run"] for r in runs] == [25, 25, 25]  # each fold trained its epochs, no time limit
    return root, done


def test_the_real_check_ranks_the_photo_with_the_deleted_region_first(real_check):
    _, done = real_check
    res = read_results(done.results)
    assert len(res.images) == 12
    first = res.images[0]
    assert first.image == DELETED and first.dice == 0.0
    assert first.disagreements[0]["kind"] == "extra"  # the model found the damage nobody annotated any more
    assert all(im.dice > 0.2 for im in res.images[1:]), [(im.image, im.dice) for im in res.images]
    wrong = next(im for im in res.images if im.image == WRONG)
    x, y, w, h = next(d["bbox"] for d in wrong.disagreements if d["kind"] == "missed" and d["bbox"][0] < 10)
    assert x + w <= 11 and y + h <= 11  # the bogus square is an area the model does not see


# ------------------------------------------------------------------------------------------------ the dock


@pytest.fixture
def app(qtbot, window, real_check, tmp_path):
    """The window on a fresh copy of the project, DELETED's region deleted in the app (not saved)."""
    from viaseg.gui.ml_wiring import install

    src, done = real_check
    root = tmp_path / "proj"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("runs"))
    assert window.open_path(root)
    ml = getattr(window, "ml", None) or install(window)
    entry = next(r.entry for r in window.session.rows if r.entry.filename == DELETED)
    window.session.push(edits.DeleteRegions(entry, list(entry.regions)))
    yield window, ml.label_check, done
    ml.shutdown()


def run_with(qtbot, panel, fn) -> None:
    """Start the panel's check with ``fn(job, on_event, should_stop)`` in a thread instead of the process."""
    panel.train_fn, panel.train_mode = fn, "thread"
    assert panel.start(), panel.message.text()
    qtbot.waitUntil(lambda: panel.thread is None, timeout=60000)


def replay(done, seen=None):
    """A stand-in for the training process that hands back the real check's results."""

    def fn(job, on_event=None, should_stop=None):
        if seen is not None:
            seen.append(job)
        on_event(FoldProgress(0, job.folds, "fold 1/3: training on 8 images, holding out 4"))
        shutil.copytree(done.out_dir, job.out_dir)
        return CheckLabelsDone(job.out_dir, job.out_dir / "crossval.json")

    return fn


def top_item(panel, name):
    return next(
        panel.tree.topLevelItem(i)
        for i in range(panel.tree.topLevelItemCount())
        if panel.tree.topLevelItem(i).text(0) == name
    )


def area_item(top, kind):
    return next(top.child(j) for j in range(top.childCount()) if top.child(j).text(0).startswith(kind))


def area_of(panel, item) -> dict:
    _, i, j = item.data(0, Qt.ItemDataRole.UserRole)
    return panel.results.images[i].disagreements[j]


def test_check_labels_lists_the_photo_first_shows_it_and_applies_its_area_as_one_undo_step(qtbot, app):
    window, panel, done = app
    seen: list = []
    run_with(qtbot, panel, replay(done, seen))
    job = seen[0]
    snap = next(e for _, ents in job.sources for e in ents if e.filename == DELETED)
    assert snap.regions == []  # the check saw the unsaved deletion
    assert job.out_dir.parent == panel.training.runs_root and job.out_dir.name.startswith("check-labels-")
    assert panel.last_error == "", panel.message.text()
    top = panel.tree.topLevelItem(0)
    assert top.text(0) == DELETED and top.text(1) == "0.000" and "12 photos checked" in panel.message.text()
    panel.tree.setCurrentItem(top)  # a click on the photo shows it with its areas outlined
    entry = window.current_entry()
    assert entry.filename == DELETED and window.canvas.highlight
    c = window.canvas
    assert c.highlight[0][0].boundingRect().width() > 10
    area = area_item(top, "extra")
    x, y, w, h = area_of(panel, area)["bbox"]
    panel.tree.setCurrentItem(area)  # a click on an area zooms to it (a 64 px photo is fitted already)
    centre = c.to_widget(x + w / 2, y + h / 2)
    assert abs(centre.x() - c.width() / 2) < 1 and abs(centre.y() - c.height() / 2) < 1
    assert len(c.highlight) == 1
    assert panel.apply_btn.isEnabled()
    steps = window.session.history.index
    panel.apply_btn.click()
    assert window.session.history.index == steps + 1  # one undo step
    (new,) = entry.regions
    assert new.kind == "polygon" and new.attributes == {"damage": "dent"}  # the project's default attributes
    d = read_results(done.results).images[0].disagreements[0]
    x, y, w, h = d["bbox"]
    xs, ys = new.shape["all_points_x"], new.shape["all_points_y"]
    assert x - 1 <= min(xs) and max(xs) <= x + w and y - 1 <= min(ys) and max(ys) <= y + h
    assert "applied" in area.text(0) and not panel.apply_btn.isEnabled()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Z
    assert entry.regions == [] and window.session.history.index == steps
    assert "applied" not in area.text(0) and panel.apply_btn.isEnabled()


def test_areas_order_lists_every_area_surest_first_and_applies_from_the_list(qtbot, app):
    window, panel, done = app
    assert panel.load_results(done.results)
    res = panel.results
    panel.order.setCurrentIndex(1)  # "areas, worst first": every photo's areas in one list
    n = panel.tree.topLevelItemCount()
    assert n == sum(len(im.disagreements) for im in res.images) and n > 2
    items = [panel.tree.topLevelItem(k) for k in range(n)]
    scores = [area_of(panel, it)["score"] for it in items]
    assert scores == sorted(scores, reverse=True) and all(it.childCount() == 0 for it in items)
    assert all(it.text(0).split(" · ")[0] in ("missed", "extra") for it in items)  # each row names its area
    assert panel.tree.columnWidth(0) > 40  # ... and the column shows it
    # the label errors come early: the damage whose annotation was deleted (the model sees it) first; the bogus
    # square on bare background (the model is surest nothing is there) in the first third, after larger areas
    # where a tiny model is less sure (the score weighs an area's share of the photo's damage)
    order = [(it.text(3), it.text(0).split(" ")[0]) for it in items]
    assert order[0] == (DELETED, "extra"), order[:4]
    assert order.index((WRONG, "missed")) < len(order) / 3, order
    first = items[0]
    panel.tree.setCurrentItem(first)  # shows the photo, zoomed to the area
    entry = window.current_entry()
    assert entry.filename == DELETED and len(window.canvas.highlight) == 1
    steps = window.session.history.index
    assert panel.apply_item(first)
    assert window.session.history.index == steps + 1 and len(entry.regions) == 1
    assert "applied" in first.text(0)
    window.undo()
    assert entry.regions == [] and "applied" not in first.text(0)
    panel.order.setCurrentIndex(0)  # back to photos, each with its areas
    assert panel.tree.topLevelItem(0).text(0) == DELETED and panel.tree.topLevelItem(0).childCount() > 0


def test_areas_order_of_results_without_area_scores_lists_the_largest_first(qtbot, app, tmp_path):
    """A crossval.json written before areas had a score (or by hand): the areas order still lists them all,
    largest first, with the score column empty."""
    window, panel, done = app
    data = json.loads(Path(done.results).read_text())
    for row in data["per_image"]:
        for d in row.get("disagreements") or []:
            d.pop("score", None)
            d.pop("confidence", None)
    old = tmp_path / "crossval.json"
    old.write_text(json.dumps(data))
    assert panel.load_results(old)
    panel.order.setCurrentIndex(1)
    items = [panel.tree.topLevelItem(k) for k in range(panel.tree.topLevelItemCount())]
    sizes = [area_of(panel, it)["area"] for it in items]
    assert len(items) == sum(len(r.get("disagreements") or []) for r in data["per_image"])
    assert sizes == sorted(sizes, reverse=True) and all(it.text(1) == "" for it in items)


def test_applying_a_missed_area_deletes_exactly_the_bogus_region(qtbot, app):
    window, panel, done = app
    assert panel.load_results(done.results)  # Open results… (the CLI's crossval.json reads the same)
    top = top_item(panel, WRONG)
    entry = next(r.entry for r in window.session.rows if r.entry.filename == WRONG)
    before = list(entry.regions)
    shapes = [dict(r.shape) for r in before]
    child = next(
        top.child(j) for j in range(top.childCount()) if area_of(panel, top.child(j))["bbox"][0] < 10
    )
    assert child.text(0).startswith("missed")
    assert panel.apply_item(child)
    assert entry.regions == [before[0]] and entry.regions[0] is before[0]  # the ellipse stays, untouched
    assert entry.regions[0].shape == shapes[0]
    window.undo()
    assert entry.regions == before and all(a is b for a, b in zip(entry.regions, before, strict=True))
    assert [r.shape for r in entry.regions] == shapes


def test_a_photo_no_longer_in_the_project_is_greyed_and_says_so(qtbot, app):
    window, panel, done = app
    gone = next(r for r in window.session.rows if r.entry.filename == "train5.png")
    sp = window.session.split_of(gone.entry)
    window.session.push(edits.RemoveImage(gone.entry, window.session.image_lists(sp)))
    assert panel.load_results(done.out_dir)
    assert "1 of them are not in the open project" in panel.message.text()
    top = top_item(panel, "train5.png")
    assert "not in the open project" in top.toolTip(0)
    panel.tree.setCurrentItem(top.child(0))
    assert not panel.apply_btn.isEnabled()
    assert not panel.apply_item(top.child(0))
    assert "not in the open project" in window.statusBar().currentMessage()


def test_results_of_another_project_s_photos_of_the_same_names_are_never_applied(qtbot, app, tmp_path):
    """A check started on one project and finished after another was opened matched the other project's photos
    by name, and Apply added regions to them. The results record each photo's size: another project's photo of
    the same name is greyed, its areas cannot be applied; the project checked, opened again, is matched."""
    window, panel, done = app
    other = make_photos(tmp_path / "other", seed=11)  # the same names, other photos
    assert read_results(done.out_dir).images[0].file_bytes is not None
    from PySide6.QtWidgets import QMessageBox

    window.ask = lambda *a: QMessageBox.StandardButton.Discard  # the fixture's unsaved edit
    assert window.open_path(other)
    assert panel.load_results(done.out_dir)
    assert all(e is None for e in panel.entries)
    assert "None of these photos is in the open project" in panel.message.text()
    top = top_item(panel, DELETED)
    panel.tree.setCurrentItem(top.child(0))
    assert not panel.apply_btn.isEnabled() and not panel.apply_item(top.child(0))
    before = {r.entry.filename: len(r.entry.regions) for r in window.session.rows}
    assert {r.entry.filename: len(r.entry.regions) for r in window.session.rows} == before
    # results written before sizes were recorded still match by name
    data = json.loads((done.out_dir / "crossval.json").read_text())
    for row in data["per_image"]:
        row.pop("file_bytes")
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert panel.load_results(tmp_path / "old.json") and all(e is not None for e in panel.entries)


def test_bad_states_are_messages(qtbot, app, tmp_path):
    window, panel, done = app
    bad = tmp_path / "crossval.json"
    bad.write_text("{not json")
    assert not panel.load_results(bad) and "not JSON" in panel.message.text()

    def fold_fails(job, on_event=None, should_stop=None):
        on_event(FoldProgress(0, job.folds, "fold 1/3"))
        on_event(FoldFailed(0, "Out of memory during training"))
        shutil.copytree(done.out_dir, job.out_dir)
        return CheckLabelsDone(job.out_dir, job.out_dir / "crossval.json", errors=["fold 0: out of memory"])

    run_with(qtbot, panel, fold_fails)
    assert "fold 1 failed: Out of memory" in panel.message.text() and panel.tree.topLevelItemCount() == 12

    def crashes(job, on_event=None, should_stop=None):
        raise RuntimeError("the disk is full")

    run_with(qtbot, panel, crashes)
    text = panel.message.text()
    assert text.startswith("Check labels failed:") and "the disk is full" in text and "Traceback" not in text

    panel.folds.setValue(5)
    for r in window.session.rows[5:]:  # too few photos for 5 folds of at least 2: as many folds as fit
        r.entry.regions.clear()
    panel.training.config_overrides["include_empty"] = False
    seen = []
    run_with(qtbot, panel, replay(done, seen))
    assert seen[-1].folds == 2 and panel.folds.value() == 2
    panel.folds.setValue(5)
    window.session.rows[4].entry.regions.clear()
    window.session.rows[3].entry.regions.clear()  # 3 annotated photos: not even 2 folds
    # fewer folds would not help: the message says so instead of "choose fewer folds"
    assert not panel.start() and "needs at least 4 annotated photos" in panel.message.text()
    assert "there are 3" in panel.message.text() and "fewer folds" not in panel.message.text()


def test_each_fold_is_trained_for_the_epochs_or_seconds_chosen(qtbot, app):
    window, panel, done = app
    seen: list = []
    panel.set_budget(12, "epochs")
    annotated = sum(1 for r in window.session.rows if r.entry.regions)
    assert "5 × 12 epochs" in panel.estimate.text(), panel.estimate.text()
    assert f"for {annotated} annotated photos" in panel.estimate.text()
    panel.folds.setValue(3)
    run_with(qtbot, panel, replay(done, seen))
    job = seen[-1]
    assert job.fold_epochs == 12 and job.config.epochs == 12 and job.config.time_limit_s is None
    assert panel.last_error == "", panel.message.text()
    panel.set_budget(90, "seconds")
    assert "3 × 1:30 of training" in panel.estimate.text(), panel.estimate.text()
    run_with(qtbot, panel, replay(done, seen))
    job = seen[-1]
    assert job.fold_epochs is None and job.config.time_limit_s == 90
    panel.unit.setCurrentText("epochs")  # a unit of its own: its own range and starting value
    assert panel.per_fold.value() == 15 and panel.per_fold.maximum() == 500


def test_stop_ends_the_check_and_says_what_is_listed(qtbot, app):
    window, panel, done = app

    def until_stopped(job, on_event=None, should_stop=None):
        on_event(FoldProgress(1, job.folds, "fold 2/3"))
        while not should_stop():
            pass
        shutil.copytree(done.out_dir, job.out_dir)
        return CheckLabelsDone(job.out_dir, job.out_dir / "crossval.json", stopped=True, cut_fold=1)

    panel.train_fn, panel.train_mode = until_stopped, "thread"
    assert panel.start() and panel.stop_btn.isEnabled()
    qtbot.waitUntil(lambda: f"fold 2/{panel.job.folds}" in panel.progress.format(), timeout=10000)
    panel.stop_btn.click()
    qtbot.waitUntil(lambda: panel.thread is None, timeout=10000)
    assert "fold 2 was stopped before it finished" in panel.message.text()
    assert panel.progress.format() == "stopped" and panel.start_btn.isEnabled()


def test_closing_while_a_check_runs_keeps_the_window_painting(qtbot, app):
    """Closing while a check ran blocked the GUI thread until its process ended (11-16 s of a frozen window);
    the window now repaints and says it is stopping, and the check ends once."""
    import time

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    window, panel, done = app

    def slow_to_stop(job, on_event=None, should_stop=None):
        on_event(FoldProgress(0, job.folds, "fold 1/3"))
        while not should_stop():
            time.sleep(0.01)
        time.sleep(1.0)  # the fold's model saved and scored
        shutil.copytree(done.out_dir, job.out_dir)
        return CheckLabelsDone(job.out_dir, job.out_dir / "crossval.json", stopped=True, cut_fold=0)

    panel.train_fn, panel.train_mode = slow_to_stop, "thread"
    assert panel.start()
    qtbot.waitUntil(lambda: "fold 1/" in panel.progress.format(), timeout=10000)
    b = QMessageBox.StandardButton
    window.ask = lambda title, *a: b.Yes if title == "Label check in progress" else b.Discard
    ticks: list = []
    timer = QTimer(interval=20)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    window.show()
    assert window.close()
    timer.stop()
    assert len(ticks) >= 10, ticks  # about a second of waiting, events processed throughout
    assert panel.thread is None and not panel.is_running() and window.isEnabled()
    assert panel.progress.format() == "stopped"


def test_the_model_menu_opens_the_dock(qtbot, app):
    window, panel, _ = app
    panel.dock.hide()
    panel.act_check.trigger()
    assert panel.dock.isVisible()
    assert (
        panel.act_check
        in next(
            a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Model"
        ).actions()
    )


def test_an_area_of_a_large_photo_is_zoomed_to_and_outlined(qtbot):
    from PySide6.QtCore import QRectF
    from viaseg.gui.canvas import Canvas

    c = Canvas()
    qtbot.addWidget(c)
    c.resize(800, 600)
    c.set_entry(None, None, (4000, 3000))
    fitted = c.scale
    c.show_rect(QRectF(1000, 500, 200, 100))
    assert c.scale > 2 * fitted
    centre = c.to_widget(1100, 550)
    assert abs(centre.x() - 400) < 1 and abs(centre.y() - 300) < 1
    c.set_highlight([([(1000, 500), (1200, 500), (1200, 600)], "cyan"), ([(1, 1)], "red")])
    assert len(c.highlight) == 1  # a single point is no outline
    c.grab()  # painted without error
    c.set_entry(None, None, (4000, 3000))  # another photo: the outline goes
    assert c.highlight == []
