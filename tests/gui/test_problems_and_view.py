"""Problems panel round trip (fix clears the entry, duplicate comparison), closing with unsaved edits, view
navigation (wheel zoom around the cursor, pans, Tab), the demo project as first-launch default."""

from __future__ import annotations

import json
import shutil

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QMessageBox
from viaseg.core.annotation import journal


def _bowtie_project(folder, project_factory):
    via = project_factory(folder)
    data = json.loads(via.read_text())
    # a self-intersecting quad: vertices 1 and 2 swapped
    data["a.png1"]["regions"][0]["shape_attributes"]["all_points_x"] = [20, 80, 20, 80]
    data["a.png1"]["regions"][0]["shape_attributes"]["all_points_y"] = [20, 20, 60, 60]
    via.write_text(json.dumps(data))
    return via


def _check(window, qtbot):
    window.problems.run_check(window.session.dataset, wait=True)
    qtbot.waitUntil(lambda: window.problems.status.text() != "checking…", timeout=10000)
    return window.problems.problems


def test_fixing_a_problem_clears_it(window, tmp_path, qtbot, project_factory):
    via = _bowtie_project(tmp_path / "p", project_factory)
    window.open_path(via)
    probs = _check(window, qtbot)
    bad = [p for p in probs if p.kind == "self_intersection"]
    assert bad and bad[0].image == "a.png" and bad[0].region == 0
    assert window.image_list.model.problems  # the list shows a problem mark
    window.show_row(1)
    window.problems.jump.emit(bad[0])  # clicking the problem: go to the image, select the region
    c = window.canvas
    assert c.entry.filename == "a.png" and c.selected == 0
    # fix: drag vertex 2 (20,60) to (80,60) and vertex 3 (80,60) to (20,60)
    for src, dst in (((20, 60), (50, 75)), ((80, 60), (20, 60)), ((50, 75), (80, 60))):
        a, b = c.to_widget(*src), c.to_widget(*dst)
        qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=a.toPoint())
        qtbot.mouseMove(c, b.toPoint())
        qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=b.toPoint())
    assert c.entry.regions[0].shape["all_points_x"] == [20, 80, 80, 20]
    assert window.recheck_timer.isActive()  # re-check is debounced after an edit
    window.problem_links.recheck_current()
    assert not [p for p in window.problems.problems if p.kind == "self_intersection"]
    left = [p.kind for p in window.problems.problems if p.image == "a.png"]
    assert left == ["size_mismatch"]  # the VIA size field (1) is still wrong: only what was fixed clears
    assert window.image_list.model.problems.get(id(c.entry)) == len(left)


def test_conflicting_duplicate_compare(window, tmp_path, qtbot, project_factory):
    root = tmp_path / "ds"
    project_factory(root / "train")
    val = project_factory(root / "val")
    shutil.copy(root / "train" / "a.png", root / "val" / "a.png")  # the same photo in both splits
    data = json.loads(val.read_text())
    data["a.png1"]["regions"] = data["a.png1"]["regions"][:1]  # annotated differently
    val.write_text(json.dumps(data))
    window.open_path(root)
    probs = _check(window, qtbot)
    conflict = next(p for p in probs if p.kind == "conflicting_duplicate")
    window.problems.compare.emit(conflict)
    dlg = window.problem_links._compare
    assert dlg.isVisible() and len(dlg.canvases) == 2
    counts = sorted(len(c.entry.regions) for c in dlg.canvases)
    assert counts == [1, 2]
    assert {window.session.split_of(c.entry).name for c in dlg.canvases} == {"train", "val"}
    dlg.close()


def test_close_with_unsaved_changes_asks(window, project, qtbot):
    window.open_path(project)
    c = window.canvas
    c.select(0)
    c.delete_selected_region()
    window.write_journal()
    answers = []

    def ask(title, text, buttons):
        answers.append(title)
        return QMessageBox.StandardButton.Cancel

    window.ask = ask
    assert not window.close()  # cancelled: still open, edits kept
    assert answers == ["Unsaved changes"] and window.session.is_dirty()
    window.ask = lambda *a: QMessageBox.StandardButton.Discard
    assert window.close()
    assert journal.find_recovery(project) is None  # discarding removes the recovery file
    assert len(json.loads(project.read_text())["a.png1"]["regions"]) == 2  # file untouched


def test_wheel_zoom_pan_and_tab(window, project, qtbot):
    from PySide6.QtCore import QPoint as QP
    from PySide6.QtGui import QWheelEvent

    window.open_path(project)
    c = window.canvas
    anchor = c.to_widget(30, 30)
    before = c.scale
    ev = QWheelEvent(
        anchor,
        c.mapToGlobal(anchor),
        QP(0, 0),
        QP(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    c.wheelEvent(ev)
    assert abs(c.scale - before * 1.25) < 1e-9
    p = c.to_image(anchor)
    assert abs(p.x() - 30) < 1e-6 and abs(p.y() - 30) < 1e-6  # the point under the cursor stays put
    off = QPointF(c.offset)
    qtbot.mousePress(c, Qt.MouseButton.MiddleButton, pos=QPoint(100, 100))
    qtbot.mouseMove(c, QPoint(130, 90))
    qtbot.mouseRelease(c, Qt.MouseButton.MiddleButton, pos=QPoint(130, 90))
    assert (c.offset - off) == QPointF(30, -10)
    c.setFocus()
    qtbot.keyPress(c, Qt.Key.Key_Space)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    qtbot.mouseMove(c, QPoint(190, 200))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=QPoint(190, 200))
    qtbot.keyRelease(c, Qt.Key.Key_Space)
    assert (c.offset - off) == QPointF(20, -10) and not window.session.is_dirty()
    qtbot.mouseMove(c, c.to_widget(10.2, 20.7).toPoint())
    assert window.lbl_pos.text() == "x 10, y 20"
    assert c.selected == -1
    qtbot.keyClick(c, Qt.Key.Key_Tab)
    assert c.selected == 0
    qtbot.keyClick(c, Qt.Key.Key_Tab)
    assert c.selected == 1
    qtbot.keyClick(c, Qt.Key.Key_Tab)
    assert c.selected == 0


def test_first_launch_opens_demo(qtbot, state_dir, monkeypatch, project):
    from viaseg.gui import app

    monkeypatch.setattr(app, "demo_path", lambda: project.parent)
    w = app.create_window(None, ml=False)  # no argument, no last project: the demo
    assert w.session.source == project.parent and w.session.rows
    w.problems.pool.waitForDone()
    w.close()
    monkeypatch.setattr(app, "demo_path", lambda: None)
    w.settings.clear()  # forget the last project
    w.settings.sync()
    w2 = app.create_window(None, ml=False)
    assert w2.session.dataset is None and "Open" in w2.statusBar().currentMessage()
    w2.close()


def test_edit_in_unlabeled_split_is_saved_to_a_new_via_file(window, tmp_path, qtbot, project_factory):
    from viaseg.core.annotation.dataset import load_dataset

    root = tmp_path / "ds"
    project_factory(root / "train")
    (root / "test").mkdir()
    shutil.copy(root / "train" / "b.png", root / "test" / "c.png")  # images only: an unlabeled split
    window.open_path(root)
    row = next(i for i, r in enumerate(window.session.rows) if r.split == "test")
    window.show_row(row)
    c = window.canvas
    c.start_drawing()
    for x, y in ((10, 10), (50, 10), (50, 40)):
        qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=c.to_widget(x, y).toPoint())
    qtbot.keyClick(c, Qt.Key.Key_Return)
    assert len(c.entry.regions) == 1
    window.write_journal()
    rec = journal.find_recovery(root)
    assert rec is not None and any(f.path.endswith("test/via_region_data.json") for f in rec.files)
    assert window.save()
    ds = load_dataset(root)
    test = ds.splits["test"]
    assert test.labeled and test.entries[0].filename == "c.png"
    assert test.entries[0].regions[0].shape["all_points_x"] == [10, 50, 50]


def test_fitted_view_follows_window_size_until_the_user_zooms(window, project, qtbot):
    """The app opens its project before the window has its final size: the fit must follow resizes
    (first launch showed the demo image at a corner), but never undo a zoom the user chose."""
    window.open_path(project)
    c = window.canvas
    w, h = c.img_size

    def fitted() -> bool:
        s = min(c.width() / w, c.height() / h) * 0.98
        return abs(c.scale - s) < 1e-9

    qtbot.waitUntil(fitted)
    small = c.scale
    window.resize(1400, 1000)
    qtbot.waitUntil(lambda: c.scale > small * 1.2 and fitted())
    c.zoom_to(3.0)
    window.resize(1000, 700)
    qtbot.wait(50)
    assert c.scale == 3.0


def test_editing_a_leaked_image_keeps_its_leak_problem(window, tmp_path, qtbot, project_factory):
    """A one-image re-check after an edit cannot see duplicates: the train/val leak must stay listed."""
    root = tmp_path / "ds"
    project_factory(root / "train")
    project_factory(root / "val")  # val/a.png is the same file as train/a.png: a leak
    window.open_path(root)
    probs = _check(window, qtbot)
    assert any(p.kind == "duplicate_image" and (p.split, p.image) == ("val", "a.png") for p in probs)
    row = next(
        i for i, r in enumerate(window.session.rows) if r.split == "val" and r.entry.filename == "a.png"
    )
    window.show_row(row)
    c = window.canvas
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=c.to_widget(50, 40).toPoint())  # select the polygon
    assert c.selected == 0
    a, b = c.to_widget(20, 20), c.to_widget(25, 22)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=a.toPoint())
    qtbot.mouseMove(c, b.toPoint())
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=b.toPoint())
    assert window.session.is_dirty()
    window.problem_links.recheck_current()
    assert any(
        p.kind == "duplicate_image" and (p.split, p.image) == ("val", "a.png")
        for p in window.problems.problems
    )


def _fix_bowtie(window):
    """Untangle region 0 of a.png the way a drag would, then the debounced one-image re-check."""
    window.show_row(next(i for i, r in enumerate(window.session.rows) if r.entry.filename == "a.png"))
    e = window.canvas.entry
    e.regions[0].shape["all_points_x"] = [20, 80, 80, 20]
    window.problem_links.recheck_current()


def test_edit_during_a_full_check_is_not_undone_by_its_result(
    window, tmp_path, qtbot, project_factory, monkeypatch
):
    import threading

    from viaseg.core.checks import checks

    real = checks.check_dataset
    release = threading.Event()

    def slow_check(dataset, **kw):
        report = real(dataset, **kw)  # sees the polygon still crossed
        release.wait(10)  # ...and reports after the user has fixed it
        return report

    window.open_path(_bowtie_project(tmp_path / "p", project_factory))
    window.problems.pool.waitForDone()
    qtbot.waitUntil(lambda: not window.problems.checking, timeout=10000)
    monkeypatch.setattr(checks, "check_dataset", slow_check)
    window.problems.run_check(window.session.dataset)
    assert window.problems.checking
    _fix_bowtie(window)
    assert not [p for p in window.problems.problems if p.kind == "self_intersection"]
    release.set()
    window.problems.pool.waitForDone()
    qtbot.waitUntil(lambda: not window.problems.checking, timeout=10000)
    kinds = [p.kind for p in window.problems.problems if p.image == "a.png"]
    assert "self_intersection" not in kinds  # the stale full-check result did not bring it back
    assert kinds == ["size_mismatch"]  # and what the full check found, and the edit did not fix, is there


def test_only_the_newest_check_is_shown_and_a_check_reads_a_copy_the_user_may_edit_meanwhile(
    window, tmp_path, qtbot, project_factory, monkeypatch
):
    import threading

    from viaseg.core.checks import checks

    real = checks.check_dataset
    window.open_path(_bowtie_project(tmp_path / "p", project_factory))
    window.problems.pool.waitForDone()
    qtbot.waitUntil(lambda: not window.problems.checking, timeout=10000)
    seen = []
    gate = threading.Event()

    def first_check_is_stale(dataset, **kw):
        seen.append(len(seen))
        if len(seen) == 1:
            gate.wait(10)  # still running when the next check is asked for
            return checks.Report(
                1,
                0,
                [
                    checks.Problem(
                        "missing_file",
                        "error",
                        "train",
                        "gone.png",
                        None,
                        "from the project closed meanwhile",
                    )
                ],
            )
        return real(dataset, **kw)

    shown = []
    window.problems.changed.connect(lambda: shown.extend(p.image for p in window.problems.problems))
    monkeypatch.setattr(checks, "check_dataset", first_check_is_stale)
    window.problems.run_check(window.session.dataset)
    window.problems.run_check(window.session.dataset)  # queued behind the first: its result wins
    gate.set()
    window.problems.pool.waitForDone()
    qtbot.waitUntil(lambda: not window.problems.checking, timeout=10000)
    assert seen == [0, 1]
    assert shown and "gone.png" not in shown  # the superseded check's result was never shown
    assert [p for p in window.problems.problems if p.kind == "self_intersection"]

    # the check reads a copy: the user edits the live dataset while it runs, and the check does not see it
    from viaseg.core.annotation import edits

    got: dict = {}
    gate2 = threading.Event()

    def sees_a_copy(dataset, **kw):
        got["dataset"] = dataset
        gate2.wait(10)
        got["regions"] = sum(len(e.regions) for _, e in dataset.entries())
        return real(dataset, **kw)

    monkeypatch.setattr(checks, "check_dataset", sees_a_copy)
    live = window.session.dataset
    before = sum(len(e.regions) for _, e in live.entries())
    window.problems.run_check(live)
    qtbot.waitUntil(lambda: "dataset" in got, timeout=10000)
    entry = next(e for _, e in live.entries() if e.regions)
    window.session.push(edits.DeleteRegions(entry, list(entry.regions)))
    gate2.set()
    window.problems.pool.waitForDone()
    qtbot.waitUntil(lambda: not window.problems.checking, timeout=10000)
    assert before > 0 and got["dataset"] is not live and got["regions"] == before
    assert "check failed" not in window.problems.status.text()


def test_check_after_an_image_removal_reads_no_unchanged_file(window, project, qtbot, monkeypatch):
    from pathlib import Path

    from viaseg.core.imaging import imageio

    window.open_path(project)
    window.problems.pool.waitForDone()  # the check the window may start on opening has read the files already
    reads: list[str] = []
    real_read = imageio.read_image
    monkeypatch.setattr(
        imageio, "read_image", lambda p, *a, **k: reads.append(Path(p).name) or real_read(p, *a, **k)
    )
    window.problems.run_check(
        window.session.dataset, wait=True, fresh=True
    )  # as the Re-check button: every file
    qtbot.waitUntil(lambda: window.problems.status.text() != "checking…", timeout=10000)
    probs = window.problems.problems
    assert sorted(reads) == ["a.png", "b.png"] and any(p.image == "b.png" for p in probs)
    window.show_row(1)
    assert window.current_entry().filename == "b.png" and window.remove_image()
    reads.clear()
    assert window.full_check_timer.isActive()
    window.full_check_timer.stop()
    window.run_full_check()  # what that timer does 1.5 s after an image is added or removed
    window.problems.pool.waitForDone()
    qtbot.waitUntil(lambda: window.problems.status.text() != "checking…", timeout=10000)
    assert reads == []  # a.png is unchanged since the last check: not decoded again
    # b.png is out of the VIA file now, its photo still in the folder
    assert [p.kind for p in window.problems.problems if p.image == "b.png"] == ["unlisted_image"]
    window.problems.recheck.click()  # the Re-check button looks at every file afresh
    window.problems.pool.waitForDone()
    qtbot.waitUntil(lambda: window.problems.status.text() != "checking…", timeout=10000)
    assert reads == ["a.png"]


def test_compare_window_has_a_close_button_and_esc_closes_it(qtbot, tmp_path):
    from types import SimpleNamespace

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialogButtonBox
    from viaseg.core.annotation.project import ImageEntry
    from viaseg.core.base.errors import ImageReadError
    from viaseg.gui.compare_dialog import CompareDialog

    class NoImages:
        def get(self, path):
            raise ImageReadError(path, "not here")

    rows = [
        SimpleNamespace(split=s, entry=ImageEntry(key=f"{s}.png", filename=f"{s}.png", base_dir=tmp_path))
        for s in ("train", "val")
    ]
    dlg = CompareDialog(None, rows, NoImages(), lambda r: None)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert dlg.findChild(QDialogButtonBox) is not None
    dlg.canvases[0].setFocus()
    qtbot.keyClick(dlg.canvases[0], Qt.Key.Key_Escape)
    assert not dlg.isVisible()
    dlg.show()
    dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close).click()
    assert not dlg.isVisible()


def test_a_problem_zooms_to_its_region_and_a_dataset_problem_says_what_it_is(window, project):
    from viaseg.core.checks.check_report import Problem

    window.open_path(project)
    window.show_row(1)  # another image first
    c = window.canvas
    fit = c.scale
    rect = Problem("out_of_image", "warning", None, "a.png", 1, "region 1 reaches outside the image")
    window.problem_links.jump_to_problem(rect)
    assert c.entry.filename == "a.png" and c.selected == 1
    assert c.scale > fit * 1.5  # zoomed in on the small rect (20x15 px of a 120x90 image)
    centre = c.to_widget(100, 72.5)  # the rect's centre
    assert abs(centre.x() - c.width() / 2) < 2 and abs(centre.y() - c.height() / 2) < 2
    whole = Problem(
        "attribute_mismatch", "warning", None, None, None, "splits name the class attribute differently"
    )
    window.problem_links.jump_to_problem(whole)
    assert window.statusBar().currentMessage() == "splits name the class attribute differently"


def test_shortcut_help_is_a_table():
    from viaseg.gui.actions import SHORTCUTS, shortcuts_html

    html = shortcuts_html()
    assert html.startswith("<table>") and html.count("<tr>") == sum(
        1 for line in SHORTCUTS.splitlines() if line and not line.startswith(" ")
    )
    assert "AI region" in html and "Ctrl+Z" in html
