"""Training panel: a real tiny run in the background, live curves, Stop, failures as messages, runs list."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from ml_helpers import TINY, make_project, tiny_settings
from viaseg.core.annotation.dataset import load_dataset
from viaseg.gui.runs import list_runs
from viaseg.gui.training_panel import TrainingPanel, build_config


@pytest.fixture
def project(tmp_path):
    return load_dataset(make_project(tmp_path / "proj", n_train=8, n_val=4, size=40))


def make_panel(qtbot, tmp_path, data, **kw):
    panel = TrainingPanel(
        data_provider=lambda: data, runs_root=tmp_path / "runs", config_overrides=dict(TINY, **kw)
    )
    qtbot.addWidget(panel)
    tiny_settings(panel, epochs=kw.pop("epochs", 2))
    return panel


def test_two_epochs_curves_and_active_model(qtbot, tmp_path, project):
    panel = make_panel(qtbot, tmp_path, project)
    activated = []
    panel.model_activated.connect(activated.append)
    with qtbot.waitSignal(panel.training_finished, timeout=180000):
        assert panel.start()
        assert not panel.start()  # only one training at a time
        assert "already" in panel.message.text()
    assert panel.last_error is None, panel.last_error
    for series in ("train_loss", "val_loss", "train_dice", "val_dice", "val_hard_dice"):
        pts = panel.curves.points(series)
        assert [x for x, _ in pts] == [1.0, 2.0], series
    assert len(panel.curves.points("batch_loss")) == 2 * 2  # 8 images / batch 4, 2 epochs
    assert panel.samples.count == 2  # sample strip from SamplePredictions
    assert activated and Path(activated[-1]).is_file() and panel.active_model == activated[-1]
    assert "Best epoch" in panel.result_label.text() and "run folder" in panel.result_label.text()
    # the device the run trained on came from the training process and stays shown (issue 20)
    assert panel.device_label.text().startswith("Device: CPU (") or panel.device_label.text().startswith(
        "Device: GPU: "
    ), panel.device_label.text()
    assert panel.device_label.text().endswith((" · float32", " · mixed_float16"))
    assert panel.start_btn.isEnabled() and not panel.stop_btn.isEnabled() and not panel.is_running()
    # the training process ends without Python's teardown (gui/train_child.py): what it wrote is complete
    import tensorflow as tf

    epochs = set()
    for path in (Path(activated[-1]).parent / "tensorboard").rglob("events.out.tfevents.*"):
        for ev in tf.compat.v1.train.summary_iterator(str(path)):
            epochs.update(ev.step for v in ev.summary.value if v.tag == "epoch_loss")
    assert epochs == {0, 1}
    # the run is listed; making it active again emits its model
    runs = list_runs(tmp_path / "runs")
    assert len(runs) == 1 and runs[0].model_path == Path(activated[-1])
    panel.refresh_runs()
    assert panel.runs.topLevelItemCount() == 1
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    assert f"device: {runs[0].summary['device']}" in panel.run_summary.text()
    for series in ("val_dice", "val_hard_dice"):  # from its history.csv
        assert len(panel.run_curves.points(series)) == 2, series
    panel.active_model = None
    panel.activate_selected_run()
    assert panel.active_model == str(runs[0].model_path)
    assert panel.runs.topLevelItem(0).text(3) == "●"
    # fine-tuning: a second run starts from the active model, and the Runs tab says so
    first = runs[0].model_path
    panel.start_from_active.setChecked(True)
    with qtbot.waitSignal(panel.training_finished, timeout=180000):
        assert panel.start()
    assert panel.last_error is None, panel.last_error
    runs = list_runs(tmp_path / "runs")  # newest first
    assert (
        len(runs) == 2 and runs[0].summary["init_from"] == str(first) and runs[1].summary["init_from"] is None
    )
    panel.refresh_runs()
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    assert f"started from: {first}" in panel.run_summary.text()
    panel.runs.setCurrentItem(panel.runs.topLevelItem(1))
    assert "started from" not in panel.run_summary.text()


def test_failure_is_a_message(qtbot, tmp_path):
    root = make_project(tmp_path / "gone", n_train=3, n_val=1, size=32)
    ds = load_dataset(root)
    for p in Path(root).rglob("*.png"):
        p.unlink()  # annotated, but the photos are gone: the training process finds out and fails
    panel = make_panel(qtbot, tmp_path, ds)
    with qtbot.waitSignal(panel.training_finished, timeout=120000):
        panel.start()
    assert panel.last_error and "no readable annotated image" in panel.last_error
    assert "train0.png: no such file" in panel.message.text()
    assert panel.active_model is None and panel.start_btn.isEnabled()


def test_a_project_without_regions_is_refused_at_once(qtbot, tmp_path):
    ds = load_dataset(make_project(tmp_path / "empty", n_train=3, n_val=1, size=32))
    for _, e in ds.entries():
        e.regions.clear()  # "use unsaved edits": the in-memory dataset has no annotation left
    panel = make_panel(qtbot, tmp_path, ds)
    assert not panel.start()
    assert "no annotated regions" in panel.message.text() and "Also train on" in panel.message.text()
    assert panel.thread is None and panel.start_btn.isEnabled()


def test_no_project_is_a_message(qtbot, tmp_path):
    panel = TrainingPanel(data_provider=None, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    assert not panel.start()
    assert "No project" in panel.message.text() and panel.thread is None


def test_presets_fill_the_form(qtbot, tmp_path):
    panel = TrainingPanel(runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    panel.preset.setCurrentText("research")
    assert panel.image_size.value() == 128 and panel.loss.currentText() == "dice"
    assert not panel.augment.isChecked() and panel.bn_momentum.value() == pytest.approx(0.99)
    assert panel.lr_schedule.currentText() == "constant"  # the research recipe's fixed rate
    panel.preset.setCurrentText("default")
    assert panel.augment.isChecked() and panel.lr_schedule.currentText() == "auto"
    panel.lr_schedule.setCurrentText("flat_cosine")
    assert build_config(panel.settings(), None, tmp_path / "runs").lr_schedule == "flat_cosine"


def test_the_network_follows_the_preset_reaches_the_config_and_rounds_the_size(qtbot, tmp_path):
    from viaseg.core.ml.presets import preset

    panel = TrainingPanel(runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    for name in ("research", "default"):
        panel.preset.setCurrentText(name)
        assert panel.encoder.currentData() == preset(name).encoder
        assert build_config(panel.settings(), None, tmp_path / "runs").encoder == preset(name).encoder
    panel.encoder.setCurrentIndex(panel.encoder.findData("mobilenet_v2"))
    panel.image_size.setValue(240)  # MobileNetV2 halves the size five times: 224
    cfg = build_config(panel.settings(), None, tmp_path / "runs")
    assert (cfg.encoder, cfg.size) == ("mobilenet_v2", 224)
    panel.encoder.setCurrentIndex(panel.encoder.findData("xception"))
    cfg = build_config(panel.settings(), None, tmp_path / "runs")
    assert (cfg.encoder, cfg.size) == ("xception", 240)


def test_start_from_the_active_model_reaches_the_config(qtbot, tmp_path):
    panel = TrainingPanel(runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    assert not panel.start_from_active.isEnabled()  # no active model yet
    panel.start_from_active.setChecked(True)
    assert build_config(panel.settings(), None, tmp_path / "runs").init_from is None
    model = tmp_path / "runs" / "20260101-000000-default" / "model.keras"
    other = tmp_path / "other.keras"
    for path in (model, other):  # model files as far as their metadata goes (no network is loaded here)
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("viaseg_meta.json", "{}")
    with qtbot.waitSignal(panel.model_activated):
        panel.set_active_model(str(model))
    assert panel.start_from_active.isEnabled() and "20260101-000000-default" in panel.start_from_active.text()
    assert build_config(panel.settings(), None, tmp_path / "runs").init_from == str(model)
    panel.start_from_active.setChecked(False)
    assert build_config(panel.settings(), None, tmp_path / "runs").init_from is None
    # restoring the last session's model does not announce it again
    with qtbot.assertNotEmitted(panel.model_activated):
        panel.set_active_model(str(other), announce=False)
    assert panel.active_model == str(other) and "other.keras" in panel.start_from_active.text()
    # a file that is no model (cut short) is not made active: said, and the active one stays
    broken = tmp_path / "runs" / "cut" / "model.keras"
    broken.parent.mkdir()
    broken.write_bytes(b"PK\x03\x04 cut short")
    with qtbot.assertNotEmitted(panel.model_activated):
        assert not panel.set_active_model(str(broken))
    assert panel.active_model == str(other) and "Not made active" in panel.message.text()


def test_time_limit_field_reaches_the_config(qtbot, tmp_path):
    panel = TrainingPanel(runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    assert panel.time_limit.value() == 0 and panel.time_limit.text() == "none"  # presets set no limit
    assert build_config(panel.settings(), None, tmp_path / "runs").time_limit_s is None
    assert not panel.max_steps.isEnabled()  # no time limit: the step budget does not apply
    panel.time_limit.setValue(10)
    assert build_config(panel.settings(), None, tmp_path / "runs").time_limit_s == 600
    assert panel.max_steps.isEnabled()
    # the step budget: the preset's, a user's own, none
    assert (
        panel.max_steps.value() == 1000 == build_config(panel.settings(), None, tmp_path / "runs").max_steps
    )
    panel.max_steps.setValue(2500)
    assert build_config(panel.settings(), None, tmp_path / "runs").max_steps == 2500
    panel.max_steps.setValue(0)
    assert panel.max_steps.text() == "no limit"
    assert build_config(panel.settings(), None, tmp_path / "runs").max_steps == 0
    panel._apply_preset("default")
    assert panel.max_steps.value() == 1000
    # a run with a time limit: the bar follows the clock when that ends the run before its epochs
    import time

    panel._epochs_total, panel._time_limit, panel._t0 = 400, 60.0, time.monotonic() - 30
    panel._show_progress(10 / 400, 9, "")
    assert 490 <= panel.progress.value() <= 520
    text = panel.progress.format()
    assert "0:30 of 1:00" in text and "epoch 10" in text and "/400" not in text  # time is the progress
    # ... and the steps when the run's step budget will end it before its time limit does
    from viaseg.core.ml.train_events import BatchEnd, Started

    panel._t0 = time.monotonic() - 6
    panel._handle(Started(tmp_path, 149, 12, 400, 19, step_budget=1000))
    panel._t0 = time.monotonic() - 6
    panel._handle(BatchEnd(step=9, epoch=26, loss=0.5, dice=0.5, steps=19))  # step 26 * 19 + 10 = 504
    assert 500 <= panel.progress.value() <= 510 and "step 504 of 1000" in panel.progress.format()
    panel._step_budget = None
    panel._time_limit = None
    panel._show_progress(10 / 400, 9, "")
    assert "epoch 10/400" in panel.progress.format()
    # the curves' x range follows the data, not the 400-epoch setting
    panel.curves.begin_run(400, "bce_dice")
    assert panel.curves.ax_loss.get_xlim()[1] <= 8.5
    for ep in range(1, 12):
        panel.curves.add_epoch(ep, {"loss": 0.5, "val_loss": 0.6})
    panel.curves.flush()
    lo, hi = panel.curves.ax_loss.get_xlim()
    assert 11 <= hi <= 16.5


def test_closing_window_during_training_asks_then_stops(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QMessageBox
    from viaseg.gui.ml_wiring import install

    assert window.open_path(make_project(tmp_path / "wproj", n_train=8, n_val=2, size=40))
    ml = getattr(window, "ml", None) or install(window)
    ml.training.config_overrides = dict(TINY)
    tiny_settings(ml.training, epochs=50)
    asked = []
    window.ask = lambda *a: asked.append(a) or QMessageBox.StandardButton.No
    started = []
    with qtbot.waitSignal(ml.training.training_started, timeout=10000):
        assert ml.training.start()
    ml.training.thread.event.connect(lambda ev: started.append(ev))
    qtbot.waitUntil(lambda: any(type(e).__name__ == "BatchEnd" for e in started), timeout=120000)
    assert not window.close()  # "No": the window stays, training goes on
    assert asked and ml.training.is_running()
    # Stop: asks core to end after the current batch (the button greys out at once)
    ml.training.stop_btn.click()
    assert "Stopping" in ml.training.message.text() and not ml.training.stop_btn.isEnabled()
    window.ask = lambda *a: asked.append(a) or QMessageBox.StandardButton.Yes
    # while it waits for the run to save its model the window repaints (it froze for 7-10 s), and the run's
    # end is handled once
    import time

    from PySide6.QtCore import QTimer

    ticks, finished = [], []
    timer = QTimer(interval=20)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    real_finished = ml.training._on_finished
    ml.training._on_finished = lambda ev: finished.append(ev) or real_finished(ev)
    t0 = time.monotonic()
    assert window.close()  # still running until that batch ends: asks again, then waits for the thread
    waited = time.monotonic() - t0
    timer.stop()
    assert waited < 0.3 or ticks, f"no event processed in {waited:.1f} s of waiting"
    assert len(finished) <= 1 and window.isEnabled()
    # the stopped run's model is remembered for the next session, not loaded for prediction while closing
    if finished:
        assert ml.training.active_model == str(finished[0].model_path) and ml.service.model_path is None
    assert len(asked) == 2 and not ml.training.is_running() and ml.training.thread is None
    assert len(ml.training.curves.points("train_loss")) < 50
    text = ml.training.message.text()
    assert "Stopped" in text or "stopped before any epoch" in text, text
    ml.shutdown()


def test_many_qt_calls_do_not_leak_singletons(qtbot):
    """A long run updates labels and emits a signal per batch. PySide6 6.12.0 (on CPython 3.11) dropped a
    reference to None on every void call and to True on every emit, aborting long runs; pyproject pins
    PySide6 < 6.12. This guards against such a build coming back."""
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class Emitter(QObject):
        sig = Signal(object)

    e = Emitter()
    e.sig.connect(lambda _x: None)
    label = QLabel()
    qtbot.addWidget(label)
    n0, t0 = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(2000):
        e.sig.emit(i)
        label.setText("x")
    assert sys.getrefcount(None) - n0 > -500 and sys.getrefcount(True) - t0 > -500


def test_stop_before_first_batch_ends_at_once(qtbot, tmp_path, project):
    panel = make_panel(qtbot, tmp_path, project)
    with qtbot.waitSignal(panel.training_finished, timeout=60000):
        assert panel.start()
        panel.stop()  # the training process is still importing TensorFlow
    assert "no model was trained" in panel.message.text()
    assert panel.active_model is None and not panel.is_running() and panel.start_btn.isEnabled()


def test_epoch_line_shows_the_hard_val_dice(qtbot, tmp_path, project):
    from types import SimpleNamespace

    panel = make_panel(qtbot, tmp_path, project)
    panel._on_epoch(
        SimpleNamespace(
            epoch=0,
            epochs=2,
            metrics={"loss": 0.9, "dice": 0.4, "val_loss": 0.8, "val_dice": 0.5, "val_hard_dice": 0.625},
        )
    )
    text = panel.message.text()
    assert "Epoch 1" in text and "val dice 0.500" in text and "val hard dice 0.625" in text
    assert panel.curves.points("val_hard_dice") == [(1.0, 0.625)]


def test_also_train_on_more_data_reports_each_validation_set(qtbot, tmp_path, project):
    other = make_project(tmp_path / "other", n_train=6, n_val=3, size=40, seed=5)
    panel = make_panel(qtbot, tmp_path, project, epochs=1)
    bad = tmp_path / "broken.json"
    bad.write_text("{ not json")
    assert not panel.add_extra_data(bad)
    assert str(bad) in panel.message.text() and panel.extra_data == []  # named, nothing added
    assert not panel.add_extra_data(tmp_path / "nowhere")
    assert panel.add_extra_data(other) and panel.extra_data == [str(other)]
    assert panel.extra_label.text() == f"{tmp_path.name}/other" and panel.clear_extra_btn.isEnabled()
    cfg = build_config(panel.settings(), project, tmp_path / "runs", TINY)
    assert cfg.extra_train == [str(other)] and not cfg.balance_sources  # every photo equally often
    with qtbot.waitSignal(panel.training_finished, timeout=180000):
        assert panel.start()
    assert panel.last_error is None, panel.last_error
    run = list_runs(tmp_path / "runs")[0]
    assert sorted(run.summary["sources"].values()) == [6, 8]  # the project's 8 and the other folder's 6
    names = [row["name"] for row in run.summary["val_sets"]]
    assert len(names) == 2 and names[1].endswith("other:val")  # its own val split, reported apart
    panel.refresh_runs()
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    assert "other:val (3 images): mean Dice" in panel.run_summary.text()
    panel.set_extra_data([])
    assert panel.extra_label.text() == "nothing else" and not panel.clear_extra_btn.isEnabled()


def test_a_moved_or_copied_run_folder_loads_its_own_model(tmp_path):
    """summary.json names the model relative to the run folder; a copied run must not load the original."""
    import json
    import shutil

    from viaseg.gui.runs import read_run

    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"original")
    (run / "summary.json").write_text(json.dumps({"model_path": "model.keras", "val_dice": 0.5}))
    copy = tmp_path / "elsewhere" / "r1"
    shutil.copytree(run, copy)
    assert read_run(copy).model_path == copy / "model.keras"
    # an older run that recorded the absolute path of its first place: the copy still uses its own file
    (copy / "summary.json").write_text(json.dumps({"model_path": str(run / "model.keras")}))
    assert read_run(copy).model_path == copy / "model.keras"
    (copy / "model.keras").unlink()  # nothing beside it: the recorded place is the fallback
    assert read_run(copy).model_path == run / "model.keras"


def test_the_window_fits_a_1366x768_screen_with_every_dock(qtbot, window, tmp_path):
    """The Training tab's charts and sample strip made the window at least 1190 px tall."""
    from viaseg.gui.ml_wiring import install

    assert window.open_path(make_project(tmp_path / "fit", n_train=4, n_val=2, size=40))
    ml = getattr(window, "ml", None) or install(window)
    for dock in (
        window.dock_images,
        window.dock_attributes,
        window.dock_problems,
        ml.dock_training,
        ml.dock_prediction,
    ):
        dock.show()
    ml.dock_training.raise_()
    hint = window.minimumSizeHint()
    assert hint.height() <= 768 and hint.width() <= 1366, (hint.width(), hint.height())
    window.resize(1366, 768)
    qtbot.wait(50)
    assert window.height() <= 768 and window.statusBar().isVisible()


def test_the_panel_shows_which_device_trains_for_the_whole_run(qtbot, tmp_path):
    """The device line comes from the run's Started event and stays while epochs replace the message line."""
    from viaseg.core.ml.train_events import EpochEnd, Started

    panel = TrainingPanel(runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    assert panel.device_label.text() == "" and panel.device_label.isHidden()
    panel._handle(
        Started(tmp_path / "runs" / "r", 8, 2, 3, 2, device="GPU: NVIDIA H200", precision="mixed_float16")
    )
    assert panel.device_label.text() == "Device: GPU: NVIDIA H200 · mixed_float16"
    assert not panel.device_label.isHidden()
    panel._handle(EpochEnd(0, {"loss": 0.5, "dice": 0.4, "val_dice": 0.3}, 1.0, 3))
    assert "Epoch 1" in panel.message.text()
    assert panel.device_label.text() == "Device: GPU: NVIDIA H200 · mixed_float16"
    panel._handle(
        Started(tmp_path / "runs" / "r2", 8, 2, 3, 2, device="CPU (AMD EPYC, 2 threads)", precision="float32")
    )
    assert panel.device_label.text() == "Device: CPU (AMD EPYC, 2 threads) · float32"


def test_networks_averaged_train_one_after_another_and_show_as_one_run(qtbot, tmp_path, project):
    """*Networks averaged* 2: the curves go on from the first network's epochs into the second's, the bar says
    which network trains, the run ends once (the averaged model becomes active), the Runs tab lists one run with
    every epoch's curve; *Improve model* on it says why it cannot."""
    panel = make_panel(qtbot, tmp_path, project)
    panel.ensemble.setValue(2)
    assert build_config(panel.settings(), None, tmp_path / "runs").ensemble == 2
    formats: list[str] = []
    panel.progress.valueChanged.connect(lambda _v: formats.append(panel.progress.format()))
    finished: list = []
    panel.training_finished.connect(lambda *a: finished.append(a))
    with qtbot.waitSignal(panel.training_finished, timeout=240000):
        assert panel.start()
    assert panel.last_error is None, panel.last_error
    assert len(finished) == 1
    assert [x for x, _ in panel.curves.points("val_dice")] == [1.0, 2.0, 3.0, 4.0]
    assert any("network 1 of 2" in f for f in formats) and any("network 2 of 2" in f for f in formats)
    assert "2 networks averaged" in panel.result_label.text()
    runs = list_runs(tmp_path / "runs")
    assert len(runs) == 1 and panel.active_model == str(runs[0].model_path)
    assert runs[0].model_path.name == "model.keras" and runs[0].summary["ensemble"]["members"] == 2
    panel.refresh_runs()
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    assert len(panel.run_curves.points("val_dice")) == 4  # the members' history.csv, one after another
    assert "networks averaged: 2" in panel.run_summary.text() and "best epoch" not in panel.run_summary.text()
    assert panel.runs.topLevelItem(0).text(2) == "2 networks"
    # refused at once, before a training process starts only to fail
    assert not panel.start_improve() and panel.thread is None
    assert "cannot be fine-tuned" in (panel.last_error or ""), panel.last_error
    assert "member_0" in panel.last_error


def test_also_train_on_a_file_whose_photos_are_not_on_disk_is_refused_or_counted(qtbot, tmp_path, project):
    """A VIA file whose photos are elsewhere was taken as "(3 annotated images)" and the run trained on none of
    them without a word."""
    import json
    import shutil

    other = make_project(tmp_path / "other", n_train=4, n_val=0, size=40, seed=5)
    via = next((other / "train").glob("*.json"))
    moved = tmp_path / "alone" / "via_region_data.json"
    moved.parent.mkdir()
    shutil.copy(via, moved)  # the annotations without their photos
    panel = make_panel(qtbot, tmp_path, project)
    assert not panel.add_extra_data(moved)
    said = panel.message.text()
    assert "none of its 4 annotated photos is on disk" in said and panel.extra_data == []
    photo = next(iter(json.loads(moved.read_text()).values()))["filename"]
    shutil.copy(other / "train" / photo, moved.parent / photo)  # one of them there
    assert panel.add_extra_data(moved)
    assert "(4 annotated images; 3 of them are not on disk and are left out)" in panel.message.text()


def test_one_odd_summary_does_not_empty_the_runs_list(qtbot, tmp_path):
    """A summary.json of null, a list or a string, or with a model_path that is no string, raised in read_run,
    so the whole Runs list failed to refresh (it refreshes after every training too)."""
    import json

    root = tmp_path / "runs"
    for name, summary in (
        ("good", {"val_dice": 0.5, "best_epoch": 3}),
        ("null", None),
        ("list", [1, 2]),
        ("text", "done"),
        ("badpath", {"model_path": 5, "ensemble": {"members": 2, "seeds": 7}}),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "summary.json").write_text(json.dumps(summary))
    panel = TrainingPanel(runs_root=root)
    qtbot.addWidget(panel)
    panel.refresh_runs()
    names = sorted(panel.runs.topLevelItem(i).text(0) for i in range(panel.runs.topLevelItemCount()))
    assert names == ["badpath", "good", "list", "null", "text"]
    for i in range(panel.runs.topLevelItemCount()):  # each one shows, the odd ones say so
        panel.runs.setCurrentItem(panel.runs.topLevelItem(i))
    runs = {r.folder.name: r for r in list_runs(root)}
    assert "not a JSON object" in runs["null"].summary["error"] and runs["badpath"].model_path is None


def test_a_chosen_runs_folder_is_kept_when_a_project_opens_and_for_the_next_session(
    qtbot, tmp_path, state_dir
):
    """The runs folder the user typed or picked was reset to PROJECT/runs by every project opened, and the next
    session started from the state folder again."""
    from PySide6.QtCore import QSettings
    from viaseg.gui.main_window import MainWindow
    from viaseg.gui.ml_wiring import install

    settings = QSettings(str(tmp_path / "viaseg.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    ml = install(w)
    try:
        mine = tmp_path / "my-runs"
        mine.mkdir()
        ml.training.runs_root_edit.setText(str(mine))
        with qtbot.waitSignal(ml.training.runs_root_chosen):
            ml.training.runs_root_edit.editingFinished.emit()
        assert settings.value("runs_root") == str(mine)
        project = make_project(tmp_path / "proj", n_train=2, n_val=1, size=32)
        assert w.open_path(project)
        assert ml.training.runs_root == mine  # not PROJECT/runs
    finally:
        ml.shutdown()


def test_a_runs_folder_that_cannot_hold_runs_is_said_before_anything_starts(qtbot, tmp_path):
    """A file named as the runs folder failed 5 s later in the training process ("NotADirectoryError" and a
    traceback on stderr); an empty field wrote into ./runs of wherever the app was started."""
    project = make_project(tmp_path / "proj", n_train=2, n_val=1, size=32)
    panel = TrainingPanel(data_provider=lambda: load_dataset(str(project)), runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    launched = []
    panel._launch = lambda *a, **k: launched.append(a) or True
    afile = tmp_path / "afile"
    afile.write_text("x")
    panel.runs_root_edit.setText(str(afile))
    assert not panel.start() and "is a file" in panel.message.text()
    panel.runs_root_edit.setText("  ")
    assert not panel.start() and "Choose a folder for the runs" in panel.message.text()
    panel.runs_root_edit.setText(str(afile / "runs"))  # under a file
    assert not panel.start() and "is a file" in panel.message.text()
    panel.runs_root_edit.setText(str(tmp_path / "new" / "runs"))  # made by the run itself
    assert panel.start() and launched
