"""What goes wrong in a labeller's first hour, and what the app must do then (issue 21): the training process
killed or raising mid-run, a bad model file made active, the crash journal written by its timer after a real
edit, the restore question answered Yes or No, a corrupt journal met when opening."""

from __future__ import annotations

import json
import os
import signal
import time
import types

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from viaseg.core.annotation import journal

# ------------------------------------------------------------------------------------------ training process


class RaisingJob:
    """Runs in the spawned training process (pickled by reference): one batch, then an exception, as a disk
    filling up mid-run would raise."""

    def run(self, on_event, should_stop):
        from viaseg.core.ml.train_events import BatchEnd

        on_event(BatchEnd(step=0, epoch=0, loss=0.7, dice=0.1, steps=4))
        raise OSError(28, "No space left on device")


def training_panel(qtbot, tmp_path, data=None):
    from ml_helpers import TINY, tiny_settings
    from viaseg.gui.training_panel import TrainingPanel

    panel = TrainingPanel(
        data_provider=lambda: data, runs_root=tmp_path / "runs", config_overrides=dict(TINY)
    )
    qtbot.addWidget(panel)
    tiny_settings(panel, epochs=50)
    assert panel.train_mode == "process"  # the real thing: a spawned child process
    return panel


def assert_ready_again(panel, *words):
    """The run is over: a red message with ``words``, Start enabled, Stop not, nothing running."""
    assert all(w in panel.message.text() for w in words), panel.message.text()
    assert "b00020" in panel.message.styleSheet()  # shown as an error
    assert panel.progress.format() == "failed"
    assert panel.start_btn.isEnabled() and not panel.stop_btn.isEnabled()
    assert not panel.is_running() and panel.thread is None


def test_training_process_killed_mid_run_is_a_message_and_the_panel_is_ready_again(qtbot, tmp_path):
    from ml_helpers import make_project
    from viaseg.core.annotation.dataset import load_dataset

    data = load_dataset(make_project(tmp_path / "proj", n_train=8, n_val=2, size=32))
    panel = training_panel(qtbot, tmp_path, data)
    assert panel.start()
    events = []
    panel.thread.event.connect(lambda ev: events.append(type(ev).__name__))
    # the run has started for real (data read, TensorFlow loaded in the child); killed before its first batch
    # only to keep the test short: the app sees the same thing at any later point (a dead child, no answer)
    qtbot.waitUntil(lambda: "Started" in events, timeout=120000)
    with qtbot.waitSignal(panel.training_finished, timeout=30000) as done:
        os.kill(panel.thread.process.pid, signal.SIGKILL)  # what the OOM killer does
    assert done.args == [None]  # no result
    assert_ready_again(panel, "Training failed", "ended unexpectedly", "exit code -9", "killed")
    assert panel.active_model is None and "Finished" not in events
    # ready again: a new run starts (and is stopped before its first batch)
    with qtbot.waitSignal(panel.training_finished, timeout=60000):
        assert panel.start()
        panel.stop()
    assert panel.start_btn.isEnabled() and panel.thread is None


def test_training_process_raising_mid_run_is_a_message_and_the_panel_is_ready_again(qtbot, tmp_path):
    panel = training_panel(qtbot, tmp_path)
    config = types.SimpleNamespace(epochs=2, time_limit_s=None, loss="dice")
    with qtbot.waitSignal(panel.training_finished, timeout=60000) as done:
        assert panel._launch(RaisingJob(), config)  # the path start() and Improve model take with their job
    assert done.args == [None]
    assert_ready_again(panel, "Training failed", "OSError", "No space left on device")
    assert panel.last_error and "No space left" in panel.last_error


# ------------------------------------------------------------------------------------------- bad model file


@pytest.fixture
def ml_window(qtbot, window, project):
    from viaseg.gui.ml_wiring import install

    assert window.open_path(project)
    ml = getattr(window, "ml", None) or install(window)
    yield window, ml
    ml.shutdown()


@pytest.mark.parametrize("kind", ["not a zip", "a zip without a network"])
def test_a_bad_model_file_made_active_is_a_message_and_the_app_keeps_working(
    qtbot, ml_window, tmp_path, kind
):
    import zipfile

    window, ml = ml_window
    bad = tmp_path / "broken.keras"
    if kind == "not a zip":
        bad.write_bytes(b"\x00garbage, e.g. a download cut short")
    else:  # its metadata reads (no TensorFlow), the network does not load
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("viaseg_meta.json", json.dumps({"input_size": 32, "threshold": 0.5}))
    failed = []
    ml.service.model_failed.connect(lambda path, msg: failed.append((path, msg)))
    if kind == "not a zip":  # refused before anything loads: it was marked active and saved for next time
        assert not ml.training.set_active_model(str(bad))  # Training ▸ Runs ▸ Make active
        assert ml.training.active_model != str(bad) and "broken.keras" in ml.training.message.text()
        return
    ml.training.set_active_model(str(bad))  # Training ▸ Runs ▸ Make active, or a settings file
    qtbot.waitUntil(lambda: bool(failed), timeout=60000)
    assert failed[0][0] == str(bad) and "broken.keras" in failed[0][1]
    text = ml.prediction.message.text()
    assert text.startswith("Cannot load model:") and "broken.keras" in text
    assert "b00020" in ml.prediction.message.styleSheet()
    # the app keeps running: P answers with a message, images still show and edits still undo
    window.show_row(0)
    ml.act_predict.trigger()
    qtbot.waitUntil(
        lambda: (
            "fail" in ml.prediction.message.text().lower()
            or "No active model" in ml.prediction.message.text()
        ),
        timeout=60000,
    )
    assert ml.prediction.probs is None and window.canvas.prediction is None
    window.show_row(1)
    window.show_row(0)
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    window.undo()
    assert len(window.current_entry().regions) == 2


# ------------------------------------------------------------------------------------------------- journal


def test_the_journal_timer_writes_after_a_real_edit(qtbot, window, project):
    assert window.open_path(project)
    c = window.canvas
    start = c.to_widget(80, 20).toPoint()  # the polygon's top-right vertex
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(c, c.to_widget(100, 10).toPoint())
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=c.to_widget(100, 10).toPoint())
    assert window.session.is_dirty()
    t0 = time.monotonic()
    assert journal.find_recovery(project) is None  # debounced: not at once
    qtbot.waitUntil(lambda: journal.find_recovery(project) is not None, timeout=10000)
    assert time.monotonic() - t0 >= 1.0  # written by the ~2 s timer, not by the edit itself
    rec = journal.find_recovery(project)
    restored = rec.files[0].load()
    xs = restored.images[0].regions[0].shape["all_points_x"]
    assert 100 in xs and 80 not in xs  # the dragged vertex, as it is in memory
    assert (
        json.loads(project.read_text())["a.png1"]["regions"][0]["shape_attributes"]["all_points_x"][1] == 80
    )


def _crashed_edit(window, project):
    """An edit journaled, then the app 'crashes' (never saved or closed)."""
    assert window.open_path(project)
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    window.write_journal()
    assert journal.find_recovery(project) is not None
    window.session.history.set_clean()  # the fixture closes this window without a save question


@pytest.fixture
def second_window(qtbot, state_dir):
    from viaseg.gui.main_window import MainWindow

    made = []

    def make():
        w = MainWindow(settings=None)
        qtbot.addWidget(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.problems.pool.waitForDone()
        w.session.history.set_clean()
        w.close()


@pytest.mark.parametrize("answer", ["Yes", "No"])
def test_the_restore_question_yes_restores_and_no_discards(qtbot, window, project, second_window, answer):
    _crashed_edit(window, project)
    w2 = second_window()
    asked = []

    def ask(title, text, buttons):
        asked.append((title, text))
        return getattr(QMessageBox.StandardButton, answer)

    w2.ask = ask
    assert w2.open_path(project)  # restore=None: the app asks
    assert len(asked) == 1 and asked[0][0] == "Restore unsaved edits?"
    a = next(r.entry for r in w2.session.rows if r.entry.filename == "a.png")
    if answer == "Yes":
        assert len(a.regions) == 1 and w2.session.is_dirty()  # the deleted region stays deleted
        assert w2.session.history.undo_text() == "restore unsaved edits"
        assert journal.find_recovery(project) is not None  # kept until saved
        assert "restored unsaved edits" in w2.statusBar().currentMessage()  # said, not replaced by "opened"
    else:
        assert len(a.regions) == 2 and not w2.session.is_dirty()  # the file as on disk
        assert journal.find_recovery(project) is None  # discarded: not asked again
        w3 = second_window()
        w3.ask = lambda *args: pytest.fail("asked again after No")
        assert w3.open_path(project)


def test_a_corrupt_journal_is_a_message_and_the_project_opens(qtbot, window, project):
    path = journal.recovery_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"viaseg_recovery": 1, "files": [{"path": ')  # cut short by the crash
    window.ask = lambda *args: pytest.fail("no question for a journal that cannot be read")
    assert window.open_path(project)
    said = window.statusBar().currentMessage()
    assert said.startswith("opened ") and "unsaved edits could not be restored" in said and "recovery" in said
    assert [r.entry.filename for r in window.session.rows] == ["a.png", "b.png"]
    assert not window.session.is_dirty() and len(window.session.rows[0].entry.regions) == 2
    # the next edit's journal replaces it with a good one
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    window.write_journal()
    rec = journal.find_recovery(project)
    assert rec is not None and len(rec.files[0].load().images[0].regions) == 1


# ------------------------------------------------------------------------------------------ unreadable photos


def test_an_unreadable_photos_message_goes_when_a_readable_photo_is_shown(window, project):
    (project.parent / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    assert window.open_path(project)
    window.show_row(0)
    assert "a.png" in window.statusBar().currentMessage() and window.canvas.qimage is None
    window.step(1)  # b.png reads: the message about a.png stayed 15 s under b.png before
    assert window.canvas.qimage is not None and "a.png" not in window.statusBar().currentMessage()
    window.step(-1)
    assert "a.png" in window.statusBar().currentMessage()
    assert window.show_external_image(project.parent / "b.png")
    assert "a.png" not in window.statusBar().currentMessage()
    window.show_row(1)
    window.notify("saved")  # other messages are left alone
    window.show_row(1)
    assert window.statusBar().currentMessage() == "saved"


def test_the_canvas_wraps_why_a_photo_cannot_be_shown_within_its_width(window, project, tmp_path):
    from PySide6.QtGui import QFontMetrics
    from viaseg.gui.canvas_paint import PLACEHOLDER_FLAGS, PLACEHOLDER_MARGIN

    deep = tmp_path / "a-long-folder-name-for-photos" / "taken-on-the-second-day-of-the-survey"
    deep.mkdir(parents=True)
    bad = deep / "front-left-door-close-up.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    window.resize(420, 650)
    assert not window.show_external_image(bad)
    c = window.canvas
    text = c.placeholder
    assert bad.name in text
    box = c.rect().adjusted(PLACEHOLDER_MARGIN, 0, -PLACEHOLDER_MARGIN, 0)
    fm = QFontMetrics(c.font())
    assert fm.horizontalAdvance(text) > box.width()  # too long for one line here
    drawn = fm.boundingRect(box, int(PLACEHOLDER_FLAGS), text)
    assert box.left() <= drawn.left() and drawn.right() <= box.right(), (drawn, box)
    c.grab()  # paints


def test_a_dropped_folder_names_what_it_does_not_open(tmp_path):
    """A dropped folder's subfolders and HEIC photos were left out without a word."""
    import cv2
    import numpy as np
    from viaseg.gui.prediction_photos import expand_paths

    d = tmp_path / "survey"
    (d / "day2").mkdir(parents=True)
    cv2.imwrite(str(d / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    (d / "phone.HEIC").write_bytes(b"x")
    images, problems = expand_paths([d])
    assert [p.name for p in images] == ["a.jpg"]
    assert len(problems) == 1 and problems[0].startswith("survey: 1 subfolder(s)") and "HEIC" in problems[0]
    assert expand_paths([d / "day2"])[1] == [f"{d / 'day2'}: folder holds no images"]


def test_edits_of_an_imported_labelme_folder_say_they_are_not_journaled(window, labelme_fixtures, tmp_path):
    """The crash journal holds VIA files; an imported labelme/COCO project has none, so its journal held
    nothing, yet the next start asked "Restore them?" and said it had restored edits it had not."""
    import shutil

    folder = tmp_path / "lm"
    shutil.copytree(labelme_fixtures / "instance_segmentation", folder)
    assert window.open_path(folder)
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    window.write_journal()
    said = window.statusBar().currentMessage()
    assert "not in the crash-recovery file" in said and "Save as" in said
    assert journal.find_recovery(folder) is None  # no journal that restores nothing
    # a journal of nothing left by an older version is not offered either
    path = journal.recovery_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"viaseg_recovery": 1, "source": str(folder), "saved_at": 0.0, "files": []}))
    window.session.history.set_clean()
    window.ask = lambda *args: pytest.fail("asked to restore a journal that holds nothing")
    assert window.open_path(folder)
    assert not path.exists()


def test_saving_over_a_file_changed_on_disk_asks_and_keeps_the_other_version(window, project):
    """Another program changed the VIA file after viaseg read it; Ctrl+S said "saved" and its change was gone."""
    from viaseg.core.base.fsutil import backup_path

    assert window.open_path(project)
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    theirs = json.loads(project.read_text())
    theirs["b.png2"]["file_attributes"] = {"checked_by": "colleague"}
    project.write_text(json.dumps(theirs))
    os.utime(project, ns=(time.time_ns() + 5_000_000_000,) * 2)  # a later mtime, whatever the clock's grain
    asked = []
    window.ask = lambda title, text, buttons: asked.append((title, text)) or QMessageBox.StandardButton.Cancel
    assert not window.save()
    assert asked[0][0] == "File changed on disk" and str(project) in asked[0][1]
    assert json.loads(project.read_text())["b.png2"]["file_attributes"] == {"checked_by": "colleague"}
    assert window.session.is_dirty() and "not saved" in window.statusBar().currentMessage()
    window.ask = lambda title, text, buttons: asked.append((title, text)) or QMessageBox.StandardButton.Save
    assert window.save() and len(asked) == 2
    assert len(json.loads(project.read_text())["a.png1"]["regions"]) == 1  # the user's edit
    kept = json.loads(backup_path(project).read_text())
    assert kept["b.png2"]["file_attributes"] == {"checked_by": "colleague"}  # theirs, kept aside
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    window.ask = lambda *args: pytest.fail("asked although the file is as viaseg wrote it")
    assert window.save()  # the next save of our own file asks nothing


def test_the_restore_question_names_each_split_and_a_file_saved_since(window, project, second_window):
    """Three splits' files were all named via_region_data.json; and a file saved again after the journal was
    written was replaced by the journal's version on Yes, without a word."""
    _crashed_edit(window, project)
    os.utime(project, (time.time() + 60, time.time() + 60))  # saved again after the journal
    w2 = second_window()
    asked = []
    w2.ask = lambda title, text, buttons: asked.append(text) or QMessageBox.StandardButton.No
    assert w2.open_path(project)
    assert f"({project.parent.name}/{project.name})" in asked[0]
    assert "changed on disk after these edits were journaled" in asked[0]


def test_no_training_starts_while_a_label_check_or_a_click_network_fine_tune_runs(window, project):
    """Start training (or Improve model) while Check labels or the click network's fine-tuning ran started a
    second training process: twice the CPU load and the memory. The reverse was refused already."""
    from viaseg.gui.ml_wiring import install

    assert window.open_path(project)
    ml = getattr(window, "ml", None) or install(window)
    try:
        tp = ml.training
        started = []
        tp._launch = lambda *a, **k: started.append(a) or True  # would start the process
        ml.label_check.is_running = lambda: True
        assert not tp.start() and "label check is running" in tp.message.text()
        tp.active_model = __file__  # any existing file: Improve gets as far as the check
        assert not tp.start_improve() and "label check is running" in tp.message.text()
        ml.label_check.is_running = lambda: False
        ml.clicknet_ui.job = types.SimpleNamespace(isRunning=lambda: True)
        assert not tp.start() and "click network is being fine-tuned" in tp.message.text()
        ml.clicknet_ui.job = None
        assert tp.start() and len(started) == 1  # nothing else running: it starts
    finally:
        ml.shutdown()


def test_closing_while_training_asks_about_unsaved_edits_before_it_stops_the_run(window, project):
    """Close, Yes to "Stop it and close?", Cancel to "Save the changes?": the window stayed open but the run
    had been stopped already. Now the save question comes first, and is asked once."""
    from viaseg.gui.ml_wiring import install

    assert window.open_path(project)
    ml = getattr(window, "ml", None) or install(window)
    stopped = []
    ml.training.is_running = lambda: True
    ml.training.stop_and_wait = lambda *a, **k: stopped.append(1) or True
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    b = QMessageBox.StandardButton
    asked = []

    def ask(answers):
        return lambda title, text, buttons: asked.append(title) or answers[title]

    window.ask = ask({"Training in progress": b.Yes, "Unsaved changes": b.Cancel})
    window.show()
    assert not window.close()
    assert stopped == [] and asked == ["Training in progress", "Unsaved changes"] and window.isVisible()
    asked.clear()
    window.ask = ask({"Training in progress": b.Yes, "Unsaved changes": b.Discard})
    assert window.close()
    assert stopped == [1] and asked == ["Training in progress", "Unsaved changes"]  # asked once
    ml.training.is_running = lambda: False
    ml.shutdown()


def test_click_network_weights_unusable_at_start_turn_it_off_and_say_so(qtbot, window, tmp_path, monkeypatch):
    """``VIASEG_CLICKNET`` (or the last session's choice) naming a file that cannot be used: the message went to
    the status line, where the project's "opened" replaced it at once, and the shipped network ran instead of
    the user's. The network is off for the session, and the message comes once the window is up."""
    from viaseg.gui.ml_wiring import install

    text = tmp_path / "mine.npz"
    text.write_text("not weights", encoding="utf-8")
    monkeypatch.setenv("VIASEG_CLICKNET", str(text))
    notes = []
    window.notify = lambda msg, error=False: notes.append((msg, error))
    ml = install(window)
    try:
        qtbot.waitUntil(
            lambda: len(notes) >= 2, timeout=5000
        )  # said at once and again after the event loop ran
        assert all("mine.npz is not a weights file (not a .npz archive)" in t and e for t, e in notes[-2:])
        assert not ml.assist.use_net and not ml.act_clicknet.isChecked() and ml.clicknet.weights is None
    finally:
        ml.shutdown()
