"""Annotation GUI: open, navigate, edit with simulated mouse/keyboard, undo/redo, save, recovery, bad input."""

from __future__ import annotations

import copy
import json

from PySide6.QtCore import QPoint, Qt
from viaseg.core.annotation import edits, journal


def wpos(canvas, x, y) -> QPoint:
    p = canvas.to_widget(x, y)
    return QPoint(round(p.x()), round(p.y()))


def click(qtbot, canvas, x, y, mods=Qt.KeyboardModifier.NoModifier):
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, mods, wpos(canvas, x, y))


def drag(qtbot, canvas, src, dst, steps=5):
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=wpos(canvas, *src))
    for i in range(1, steps + 1):
        f = i / steps
        qtbot.mouseMove(canvas, wpos(canvas, src[0] + (dst[0] - src[0]) * f, src[1] + (dst[1] - src[1]) * f))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=wpos(canvas, *dst))


def test_open_view_and_navigate(window, project, qtbot):
    assert window.open_path(project)
    assert [r.entry.filename for r in window.session.rows] == ["a.png", "b.png"]
    c = window.canvas
    assert c.entry.filename == "a.png" and c.qimage is not None and c.img_size == (120, 90)
    assert c.scale > 1  # fitted to the window
    assert "2 regions" in window.lbl_regions.text() and "120×90" in window.lbl_size.text()
    c.setFocus()
    qtbot.keyClick(c, Qt.Key.Key_D)
    assert c.entry.filename == "b.png"
    qtbot.keyClick(c, Qt.Key.Key_Left)
    assert c.entry.filename == "a.png"
    qtbot.keyClick(c, Qt.Key.Key_End)
    assert c.entry.filename == "b.png"
    # filter: only unannotated images
    window.image_list.filter.setCurrentText("unannotated")
    assert window.image_list.proxy.rowCount() == 1
    window.image_list.search.setText("zzz")
    assert window.image_list.proxy.rowCount() == 0
    # extra column API (for the ML side)
    window.image_list.search.setText("")
    window.image_list.filter.setCurrentText("all")
    window.image_list.set_extra_column("dice", {"a.png1": 0.5, ("train", "b.png2"): 0.25})
    m = window.image_list.model
    assert m.columnCount() == 5 and m.data(m.index(0, 4)) == "0.500"
    # a new column is seen without scrolling, even in a narrow list (the name column gives way)
    il = window.image_list
    il.view.setColumnWidth(2, 400)
    il.set_extra_column("doubt", {"a.png1": 0.1})
    assert il.view.columnViewportPosition(4) + il.view.columnWidth(4) <= il.view.viewport().width()
    # Label next's place column (1 first): sorted ascending, an image without a place goes last, not first
    from viaseg.gui.window_host import WindowHost

    WindowHost(window).set_rank_column("next", {"b.png2": 1}, ascending=True)
    names = [il.proxy.data(il.proxy.index(r, 2)) for r in range(il.proxy.rowCount())]
    assert names == ["b.png", "a.png"] and il.proxy.data(il.proxy.index(0, 4)) == "1"
    # Predict all's Dice column, worst first: an image without a Dice (another split) goes last too
    WindowHost(window).set_dice_column({"b.png2": 0.9})
    assert [il.proxy.data(il.proxy.index(r, 2)) for r in range(il.proxy.rowCount())] == ["b.png", "a.png"]


def test_drag_vertex_then_save_changes_only_that_vertex(window, project, qtbot):
    before = json.loads(project.read_text())
    window.open_path(project)
    c = window.canvas
    click(qtbot, c, 50, 40)  # inside the polygon: selects it
    assert c.selected == 0
    drag(qtbot, c, (80, 20), (95, 12))
    assert window.session.is_dirty() and window.windowTitle().startswith("*")
    assert len(window.session.history) == 1  # the whole drag is one undo step
    assert window.save()
    assert not window.session.is_dirty() and not window.windowTitle().startswith("*")
    after = json.loads(project.read_text())
    sa = after["a.png1"]["regions"][0]["shape_attributes"]
    assert sa["all_points_x"][1] == 95 and sa["all_points_y"][1] == 12
    assert all(type(v) is int for v in sa["all_points_x"] + sa["all_points_y"])
    expected = copy.deepcopy(before)
    expected["a.png1"]["regions"][0]["shape_attributes"]["all_points_x"][1] = 95
    expected["a.png1"]["regions"][0]["shape_attributes"]["all_points_y"][1] = 12
    assert after == expected
    assert (project.parent / "via_region_data.json.bak").is_file()


def test_move_region_and_resize_rect(window, project, qtbot):
    window.open_path(project)
    c = window.canvas
    reg = c.entry.regions[0]
    drag(qtbot, c, (50, 40), (60, 45))
    assert reg.shape["all_points_x"] == [30, 90, 90, 30] and reg.shape["all_points_y"] == [25, 25, 65, 65]
    rect = c.entry.regions[1]
    click(qtbot, c, 100, 70)
    assert c.selected == 1
    drag(qtbot, c, (110, 80), (115, 85))
    assert (rect.shape["width"], rect.shape["height"]) == (25, 20)
    window.undo()
    window.undo()
    assert reg.shape["all_points_x"] == [20, 80, 80, 20] and rect.shape["width"] == 20


def test_insert_and_delete_vertex(window, project, qtbot):
    window.open_path(project)
    c = window.canvas
    reg = c.entry.regions[0]
    click(qtbot, c, 50, 40)
    click(qtbot, c, 50, 20, Qt.KeyboardModifier.AltModifier)  # on the top edge
    assert edits.logical_points(reg.shape) == [(20, 20), (50, 20), (80, 20), (80, 60), (20, 60)]
    qtbot.mouseDClick(c, Qt.MouseButton.LeftButton, pos=wpos(c, 80, 40))  # double-click on the right edge
    assert (80, 40) in edits.logical_points(reg.shape) and len(reg.shape["all_points_x"]) == 6
    click(qtbot, c, 50, 20, Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ShiftModifier)
    assert (50, 20) not in edits.logical_points(reg.shape)
    click(qtbot, c, 80, 40)  # select a vertex, then Delete removes it
    assert c.sel_vertex >= 0
    qtbot.keyClick(c, Qt.Key.Key_Delete)
    assert edits.logical_points(reg.shape) == [(20, 20), (80, 20), (80, 60), (20, 60)]
    click(qtbot, c, 20, 60)
    qtbot.keyClick(c, Qt.Key.Key_Backspace)
    assert len(reg.shape["all_points_x"]) == 3
    click(qtbot, c, 20, 20)
    qtbot.keyClick(c, Qt.Key.Key_Backspace)  # a triangle keeps its 3 vertices
    assert len(reg.shape["all_points_x"]) == 3
    assert "at least 3" in window.statusBar().currentMessage()


def test_draw_polygon_by_clicks(window, project, qtbot):
    window.open_path(project)
    window.show_row(1)
    c = window.canvas
    c.setFocus()
    qtbot.keyClick(c, Qt.Key.Key_N)
    assert c.drawing == []
    assert window.statusBar().currentMessage().startswith("Draw: click points")
    for x, y in ((10, 10), (40.4, 10), (40, 30), (10, 30)):
        click(qtbot, c, x, y)
    qtbot.keyClick(c, Qt.Key.Key_Backspace)  # drop the last point
    click(qtbot, c, 10, 10)  # the first point closes
    assert c.drawing is None
    assert not window.statusBar().currentMessage().startswith("Draw:")  # the prompt goes with the drawing
    e = c.entry
    assert len(e.regions) == 1
    assert e.regions[0].shape == {
        "name": "polygon",
        "all_points_x": [10, 40, 40],
        "all_points_y": [10, 10, 30],
    }
    assert e.regions[0].attributes == {"damage": "dent"}  # class of the project's regions
    assert c.selected == 0
    qtbot.keyClick(c, Qt.Key.Key_N)
    click(qtbot, c, 5, 5)
    qtbot.keyClick(c, Qt.Key.Key_Escape)
    assert c.drawing is None and len(e.regions) == 1
    window.save()
    saved = json.loads(window.session.source.read_text())
    assert saved["b.png2"]["regions"][0]["shape_attributes"]["all_points_x"] == [10, 40, 40]


def test_undo_redo_across_image_switch(window, project, qtbot):
    window.open_path(project)
    c = window.canvas
    reg = c.entry.regions[0]
    click(qtbot, c, 50, 40)
    drag(qtbot, c, (20, 20), (5, 5))
    assert edits.logical_points(reg.shape)[0] == (5, 5)
    window.show_row(1)
    qtbot.keyClick(c, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert c.entry.filename == "a.png"  # undo went back to the edited image
    assert edits.logical_points(reg.shape)[0] == (20, 20)
    assert not window.session.is_dirty()
    qtbot.keyClick(c, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert edits.logical_points(reg.shape)[0] == (5, 5)
    qtbot.keyClick(c, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert edits.logical_points(reg.shape)[0] == (5, 5)  # Ctrl+Shift+Z is redo: nothing left to redo


def test_delete_copy_paste_duplicate(window, project, qtbot):
    window.open_path(project)
    c = window.canvas
    a = c.entry
    click(qtbot, c, 50, 40)
    qtbot.keyClick(c, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(c, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(a.regions) == 3 and a.regions[2].shape["all_points_x"] == [30, 90, 90, 30]
    window.show_row(1)
    qtbot.keyClick(c, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    b = c.entry
    assert len(b.regions) == 1 and b.regions[0].shape["all_points_x"] == [20, 80, 80, 20]
    assert b.regions[0] is not a.regions[0] and b.regions[0].shape is not a.regions[0].shape
    c.select(0)
    c.setFocus()
    qtbot.keyClick(c, Qt.Key.Key_Delete)
    assert b.regions == []
    window.undo()
    assert len(b.regions) == 1


def test_copy_all_regions_and_paste_via_json_through_the_system_clipboard(window, project, qtbot):
    from PySide6.QtWidgets import QApplication

    window.open_path(project)
    c = window.canvas
    a = c.entry
    n_a = len(a.regions)
    assert n_a >= 2
    qtbot.keyClick(c, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    text = QApplication.clipboard().text()  # what a text editor would get: VIA 2 region objects
    assert [r["shape_attributes"] for r in json.loads(text)] == [r.shape for r in a.regions]
    window.show_row(1)
    b = c.entry
    n_b = len(b.regions)
    qtbot.keyClick(c, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert [r.shape for r in b.regions[n_b:]] == [r.shape for r in a.regions]
    assert [r.attributes for r in b.regions[n_b:]] == [r.attributes for r in a.regions]
    window.undo()  # one paste, one undo step
    assert len(b.regions) == n_b

    # VIA region JSON typed or copied elsewhere (a VIA 1 object keyed by region id) pastes as regions too
    QApplication.clipboard().setText(
        json.dumps(
            {
                "0": {
                    "shape_attributes": {"name": "rect", "x": 5, "y": 6, "width": 7, "height": 8},
                    "region_attributes": {"name": "scratch"},
                }
            }
        )
    )
    window.paste_regions()
    assert b.regions[-1].shape == {"name": "rect", "x": 5, "y": 6, "width": 7, "height": 8}
    assert b.regions[-1].attributes == {"name": "scratch"} and len(b.regions) == n_b + 1

    msgs = []
    window.notify = lambda text, error=False: msgs.append((text, error))
    QApplication.clipboard().setText(
        '[{"shape_attributes": {"name": "polygon", "all_points_x": [1, "x"], "all_points_y": [1, 2]}}]'
    )
    window.paste_regions()
    assert len(b.regions) == n_b + 1  # nothing pasted
    assert msgs[-1][1] and "clipboard" in msgs[-1][0] and "all_points_x" in msgs[-1][0]
    QApplication.clipboard().setText("hello")
    window.paste_regions()
    assert len(b.regions) == n_b + 1 and "holds no regions" in msgs[-1][0]


def test_attribute_edit_through_panel(window, project, qtbot):
    window.open_path(project)
    c = window.canvas
    click(qtbot, c, 50, 40)
    w = window.attributes.widgets[("region", "damage")]
    assert w.text() == "dent"
    w.setText("crack")
    w.editingFinished.emit()
    assert c.entry.regions[0].attributes == {"damage": "crack"}
    fw = window.attributes.widgets[("file", "weather")]
    fw.setText("rain")
    fw.editingFinished.emit()
    assert c.entry.file_attributes == {"weather": "rain"}
    window.undo()
    window.undo()
    assert c.entry.regions[0].attributes == {"damage": "dent"} and c.entry.file_attributes == {
        "weather": "sun"
    }


def test_dropdown_attribute_from_via_attributes(window, tmp_path, qtbot, project_factory):
    from PySide6.QtWidgets import QComboBox

    via = project_factory(tmp_path / "p2")
    meta = json.loads(via.read_text())
    proj = {
        "_via_settings": {"project": {"name": "x"}},
        "_via_img_metadata": meta,
        "_via_attributes": {
            "region": {
                "damage": {
                    "type": "dropdown",
                    "description": "",
                    "options": {"dent": "", "scratch": "", "crack": ""},
                    "default_options": {},
                }
            },
            "file": {},
        },
    }
    path = tmp_path / "p2" / "project.json"
    path.write_text(json.dumps(proj))
    via.unlink()
    assert window.open_path(path)
    window.canvas.select(0)
    combo = window.attributes.widgets[("region", "damage")]
    assert isinstance(combo, QComboBox) and combo.currentText() == "dent"
    combo.setCurrentText("crack")
    assert window.canvas.entry.regions[0].attributes["damage"] == "crack"


def test_recovery_restores_edits_after_crash(window, project, qtbot, state_dir):
    from viaseg.gui.main_window import MainWindow

    window.open_path(project)
    c = window.canvas
    click(qtbot, c, 50, 40)
    drag(qtbot, c, (80, 60), (100, 70))
    window.write_journal()  # what the debounce timer does
    assert journal.find_recovery(project) is not None
    # crash: the window is never closed or saved; a new session opens the same project
    w2 = MainWindow(settings=None)
    assert w2.open_path(project, restore=True)
    reg = w2.session.rows[0].entry.regions[0]
    assert edits.logical_points(reg.shape)[2] == (100, 70)
    assert w2.session.is_dirty()
    # what came back is visible: the edited image (only it) is marked and in the "edited" filter
    model = w2.image_list.model
    assert [model.status(r) for r in w2.session.rows][0].startswith("✎")
    assert "✎" not in model.status(w2.session.rows[1])
    # ... and undoable as one step, back to the file on disk, and redoable
    assert w2.session.history.undo_text() == "restore unsaved edits"
    w2.undo()
    reg = w2.session.rows[0].entry.regions[0]
    assert edits.logical_points(reg.shape)[2] != (100, 70) and not w2.session.is_dirty()
    assert "✎" not in model.status(w2.session.rows[0])
    w2.redo()
    reg = w2.session.rows[0].entry.regions[0]
    assert edits.logical_points(reg.shape)[2] == (100, 70) and w2.session.is_dirty()
    assert w2.save()
    assert journal.find_recovery(project) is None
    saved = json.loads(project.read_text())
    assert saved["a.png1"]["regions"][0]["shape_attributes"]["all_points_x"][2] == 100
    w2.problems.pool.waitForDone()
    w2.close()
    w2.deleteLater()


def test_bad_inputs_give_messages_not_exceptions(window, project, tmp_path, qtbot):
    window.open_path(project)
    bad = tmp_path / "bad.json"
    bad.write_text('{"a.png1": {"filename": "a.png", "regions": [')
    assert not window.open_path(bad)
    assert "bad.json" in window.statusBar().currentMessage()
    assert window.session.source == project  # the open project stays usable
    # said where the user looks, not only in the status bar
    assert window.banner.isVisible() and "bad.json" in window.banner.label.text()
    assert "invalid JSON" in window.banner.label.text() or "line" in window.banner.label.text()
    # an edited project: a file that cannot open is found out before any save/discard question
    window.canvas.select(0)
    assert window.canvas.delete_selected_region()
    assert window.session.is_dirty()
    asked = []
    window.ask = lambda *a: asked.append(a)
    assert not window.open_path(bad) and asked == [] and window.session.is_dirty()
    window.ask = lambda *a: (_ for _ in ()).throw(AssertionError("unexpected dialog"))
    window.session.undo()
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert not window.open_path(empty)
    assert "empty.json" in window.statusBar().currentMessage()
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    assert not window.open_path(txt)
    assert (
        "not a VIA file" in window.statusBar().currentMessage() and "notes.txt" in window.banner.label.text()
    )
    assert not window.open_path(tmp_path / "nope")
    # corrupt and missing images: a placeholder and a message, navigation continues
    (project.parent / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (project.parent / "b.png").unlink()
    window.open_path(project)
    assert window.canvas.qimage is None and "a.png" in window.canvas.placeholder
    window.step(1)
    assert window.canvas.entry.filename == "b.png" and window.canvas.qimage is None
    assert "b.png" in window.statusBar().currentMessage()
    window.canvas.grab()  # paints without an image


def test_failed_save_keeps_edits(window, project, qtbot, monkeypatch):
    from viaseg.core.base.errors import ViaSaveError

    window.open_path(project)
    c = window.canvas
    click(qtbot, c, 50, 40)
    drag(qtbot, c, (20, 20), (30, 30))

    def fail(*_a, **_k):
        raise ViaSaveError(f"{project}: cannot save (No space left on device)")

    monkeypatch.setattr("viaseg.core.annotation.workspace.save_via", fail)
    assert not window.save()
    assert "No space left" in window.statusBar().currentMessage()
    assert window.session.is_dirty()
    assert edits.logical_points(c.entry.regions[0].shape)[0] == (30, 30)
    monkeypatch.undo()
    assert window.save() and not window.session.is_dirty()


def test_views_mask_zoom_and_problems(window, project, qtbot):
    window.open_path(project)
    c = window.canvas
    window.problems.run_check(window.session.dataset, wait=True)
    qtbot.waitUntil(lambda: window.problems.status.text() != "checking…", timeout=10000)
    kinds = {p.kind for p in window.problems.problems}
    assert "unannotated_image" in kinds  # b.png
    window.problems.jump.emit(next(p for p in window.problems.problems if p.kind == "unannotated_image"))
    assert c.entry.filename == "b.png"
    c.set_mask_view(True)
    window.opacity_slider.setValue(100)  # mask fully opaque: exactly what training sees
    window.show_row(0)
    img = c.grab().toImage()
    for (x, y), want in (((50, 40), 255), ((100, 72), 255), ((5, 85), 0), ((85, 40), 0)):
        q = c.to_widget(x, y)
        assert img.pixelColor(round(q.x()), round(q.y())).lightness() == want, (x, y)
    c.set_mask_view(False)
    old = c.scale
    c.zoom_to(old * 2)
    assert abs(c.scale - 2 * old) < 1e-9 and "%" in window.lbl_zoom.text()
    c.fit()
    assert abs(c.scale - old) < 1e-6


def test_point_regions_are_drawn_selectable_and_movable(window, project, qtbot):
    data = json.loads(project.read_text())
    data["b.png2"]["regions"] = [
        {"shape_attributes": {"name": "point", "cx": 60, "cy": 45}, "region_attributes": {"damage": "dent"}}
    ]
    project.write_text(json.dumps(data))
    window.open_path(project)
    window.show_row(1)
    c = window.canvas
    img = c.grab().toImage()
    q = c.to_widget(60, 45)
    before = img.pixelColor(round(q.x()) + 4, round(q.y()))  # on the marker's outline
    c.set_overlay_visible(False)
    after = c.grab().toImage().pixelColor(round(q.x()) + 4, round(q.y()))
    assert before != after
    c.set_overlay_visible(True)
    drag(qtbot, c, (60, 45), (70, 50))
    assert c.selected == 0
    assert (c.entry.regions[0].shape["cx"], c.entry.regions[0].shape["cy"]) == (70, 50)


def test_import_attribute_definitions_file(window, project, tmp_path, qtbot):
    from PySide6.QtWidgets import QComboBox

    defs = {
        "region": {
            "damage": {
                "type": "dropdown",
                "description": "",
                "options": {"dent": "", "scratch": "", "crack": ""},
                "default_options": {},
            }
        },
        "file": {},
    }
    attr_file = tmp_path / "attributes.json"
    attr_file.write_text(json.dumps(defs))
    assert not window.open_path(attr_file)  # nothing open yet: a message, not a crash
    assert "need an open project" in window.statusBar().currentMessage()
    window.open_path(project)
    assert window.open_path(attr_file)
    assert window.session.source == project  # still the same project
    window.canvas.select(0)
    combo = window.attributes.widgets[("region", "damage")]
    assert isinstance(combo, QComboBox) and combo.currentText() == "dent"
    combo.setCurrentText("scratch")
    assert window.canvas.entry.regions[0].attributes["damage"] == "scratch"


def test_save_as_next_to_the_images_or_elsewhere_only_after_asking(window, project, tmp_path, qtbot):
    from PySide6.QtWidgets import QMessageBox

    window.open_path(project)
    b = QMessageBox.StandardButton
    assert window.save_as(project.parent / "copy.json")  # next to its images: no question (ask would raise)
    assert json.loads((project.parent / "copy.json").read_text())["a.png1"]["filename"] == "a.png"
    assert window.session.source == project.parent / "copy.json"

    asked = []
    window.ask = lambda title, text, buttons: asked.append(text) or b.Cancel
    elsewhere = tmp_path / "elsewhere" / "moved.json"
    elsewhere.parent.mkdir()
    assert not window.save_as(elsewhere)
    assert not elsewhere.exists() and str(project.parent) in asked[0] and "missing" in asked[0]
    window.ask = lambda title, text, buttons: asked.append(text) or b.Save
    assert window.save_as(elsewhere) and elsewhere.exists() and len(asked) == 2
    assert window.session.source == elsewhere


def test_save_as_writes_the_format_its_name_and_type_say(window, project, monkeypatch):
    """A JSON project saved as export.csv wrote JSON into the .csv, a CSV one saved as .json wrote CSV; and
    'Save as a VIA 2 project' (the attribute panel's advice) had no way to be done."""
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.formats.via_io import load_via
    from viaseg.gui import main_window_files

    window.open_path(project)
    folder = project.parent
    assert window.save_as(folder / "export.csv")
    text = (folder / "export.csv").read_text()
    assert text.startswith("filename,file_size,file_attributes,region_count")
    assert (
        "saved as" in window.statusBar().currentMessage() and "(csv)" in window.statusBar().currentMessage()
    )
    assert len(load_via(folder / "export.csv").images) == 2
    assert window.save_as(folder / "back.json")  # from CSV to a .json name: VIA 2 annotations, not CSV
    assert json.loads((folder / "back.json").read_text())["a.png1"]["filename"] == "a.png"
    # the dialog's file type: a VIA 2 project keeps attribute types (the name has no suffix: .json added)
    kind = next(k for k, f in main_window_files.SAVE_AS_TYPES.items() if f == "via2-project")
    monkeypatch.setattr(
        main_window_files.QFileDialog, "getSaveFileName", lambda *a, **k: (str(folder / "proj"), kind)
    )
    assert window.save_as()
    saved = json.loads((folder / "proj.json").read_text())
    assert "_via_img_metadata" in saved and "_via_attributes" in saved
    assert window.session.projects()[0].fmt == "via2-project"
    assert load_dataset(folder / "proj.json").splits


def test_remove_image_from_project_saves_undoes_and_keeps_the_photo(window, project, qtbot):
    window.open_path(project)
    assert [r.entry.filename for r in window.session.rows] == ["a.png", "b.png"]
    window.show_row(0)
    assert window.remove_image()
    assert [r.entry.filename for r in window.session.rows] == ["b.png"]
    assert window.canvas.entry.filename == "b.png" and window.current == 0  # the next image is shown
    assert window.image_list.model.rowCount() == 1 and window.session.is_dirty()
    assert window.save()
    saved = json.loads(project.read_text())
    assert list(saved) == ["b.png2"] and (project.parent / "a.png").is_file()  # the photo stays on disk
    window.undo()  # brings it back, where it was, and shows it
    assert [r.entry.filename for r in window.session.rows] == ["a.png", "b.png"]
    assert window.canvas.entry.filename == "a.png" and len(window.canvas.entry.regions) == 2
    assert window.save()
    assert list(json.loads(project.read_text())) == ["a.png1", "b.png2"]
    window.redo()
    assert [r.entry.filename for r in window.session.rows] == ["b.png"]
    window.remove_image()
    assert window.session.rows == [] and window.canvas.entry is None
    assert window.save() and json.loads(project.read_text()) == {}


def test_remove_image_of_a_folder_without_via_file_is_refused(window, tmp_path, qtbot, project_factory):
    root = tmp_path / "ds"
    project_factory(root / "train")
    test = root / "test"
    test.mkdir()
    (root / "train" / "b.png").rename(test / "t.png")
    window.open_path(root)
    row = next(i for i, r in enumerate(window.session.rows) if r.split == "test")
    window.show_row(row)
    msgs = []
    window.notify = lambda text, error=False: msgs.append((text, error))
    assert not window.remove_image()
    assert msgs[-1][1] and "t.png" in msgs[-1][0] and "without a VIA file" in msgs[-1][0]
    assert any(r.split == "test" for r in window.session.rows) and not window.session.is_dirty()


def test_right_click_menus_act_on_the_region_and_image_under_the_cursor(window, project, qtbot):
    from viaseg.gui.actions import canvas_menu, image_menu

    window.open_path(project)
    c = window.canvas
    a = c.entry
    c.select(-1)
    menu = canvas_menu(window, wpos(c, 50, 40))  # inside the polygon: it gets selected
    items = {i.text().split("\t")[0]: i for i in menu.actions() if i.text()}
    assert c.selected == 0 and items["&Copy region"].isEnabled() and items["Delete region"].isEnabled()
    assert items["Delete region"].text().endswith("Ctrl+Del")  # the shortcut is shown
    items["Delete region"].trigger()
    assert len(a.regions) == 1 and a.regions[0].shape["name"] == "rect"
    c.select(-1)
    menu = canvas_menu(window, wpos(c, 5, 5))  # outside every region: region items greyed, others not
    items = {i.text().split("\t")[0]: i for i in menu.actions() if i.text()}
    assert c.selected == -1 and not items["&Copy region"].isEnabled() and items["&Paste regions"].isEnabled()
    assert window.act_copy.isEnabled()  # the window's own shortcut is untouched

    view = window.image_list.view
    b_row = next(r for r in range(view.model().rowCount()) if view.model().index(r, 2).data() == "b.png")
    pos = view.visualRect(view.model().index(b_row, 2)).center()
    menu = image_menu(window, pos)
    assert window.canvas.entry.filename == "b.png"  # right-clicking a row shows that image
    (remove,) = [i for i in menu.actions() if i.text().startswith("Remove")]
    remove.trigger()
    assert [r.entry.filename for r in window.session.rows] == ["a.png"]


def test_a_removed_image_is_journaled_and_stays_removed_after_a_crash(window, project, qtbot, state_dir):
    from viaseg.gui.main_window import MainWindow

    window.open_path(project)
    window.show_row(0)
    window.remove_image()
    window.write_journal()  # what the debounce timer does: the removed image's project is the one journaled
    assert journal.find_recovery(project) is not None
    w2 = MainWindow(settings=None)
    assert w2.open_path(project, restore=True)
    assert [r.entry.filename for r in w2.session.rows] == ["b.png"]
    w2.problems.pool.waitForDone()
    w2.session.history.set_clean()
    w2.close()
    w2.deleteLater()


def test_name_column_sorts_naturally(window, tmp_path, qtbot):
    """image2 before image10 (plain text order put image10 and image13 before image2)."""
    import cv2
    import numpy as np
    from viaseg.core.annotation.project import natural_sort_key

    folder = tmp_path / "nat"
    folder.mkdir()
    for n in ("image10.png", "image2.png", "Image1.png", "image13.png"):
        cv2.imwrite(str(folder / n), np.zeros((8, 8, 3), np.uint8))
    assert window.open_path(folder)
    il = window.image_list
    il.view.sortByColumn(2, Qt.SortOrder.AscendingOrder)  # the Name column
    shown = [il.proxy.data(il.proxy.index(r, 2)) for r in range(il.proxy.rowCount())]
    assert shown == ["Image1.png", "image2.png", "image10.png", "image13.png"]
    assert sorted(["b20", "b3", "a100"], key=natural_sort_key) == ["a100", "b3", "b20"]


def test_double_click_on_or_just_outside_an_edge_inserts_a_vertex(window, project, qtbot):
    """The first click of a double-click 2 px outside the outline used to deselect, so nothing was inserted."""
    from PySide6.QtCore import QPoint

    window.open_path(project)
    c = window.canvas
    reg = c.entry.regions[0]  # polygon (20,20)-(80,20)-(80,60)-(20,60)
    for selected_first in (True, False):
        if selected_first:
            click(qtbot, c, 50, 40)
            assert c.selected == 0
        else:
            c.select(-1)
        before = set(edits.logical_points(reg.shape))
        y = 40 + (5 if selected_first else -5)
        outside = wpos(c, 80, y) + QPoint(2, 0)  # 2 widget px right of the right edge
        qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=outside)
        assert c.selected == 0  # the click on the line picked the region instead of deselecting
        qtbot.mouseDClick(c, Qt.MouseButton.LeftButton, pos=outside)
        added = set(edits.logical_points(reg.shape)) - before
        assert len(added) == 1 and len(reg.shape["all_points_x"]) == len(before) + 1
        ((x, y_new),) = added
        assert abs(x - 80) <= 1 and abs(y_new - y) <= 2  # on the edge, where the user clicked
    window.session.undo()
    assert len(reg.shape["all_points_x"]) == 5  # one undo step per insertion
    # far from every outline a click still deselects
    click(qtbot, c, 110, 85)
    assert c.selected == -1


def test_outline_hits_are_plain_functions():
    import numpy as np
    from viaseg.gui.hits import nearest_edge, outline_hit

    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    i, near, dist = nearest_edge(square, True, (12, 5))
    assert i == 1 and np.allclose(near, (10, 5)) and dist == 2.0
    i, near, dist = nearest_edge(square, True, (-3, 5))  # the closing edge of a polygon
    assert i == 3 and dist == 3.0
    assert nearest_edge(square, False, (-3, 8))[0] == 2  # a polyline has no closing edge
    assert nearest_edge(square[:1], True, (0, 0)) is None
    far = square + 100
    assert outline_hit([(square, True), (far, True)], (12, 5), 8) == 0
    assert outline_hit([(square, True), (far, True)], (50, 50), 8) == -1
    both = [(square, True), (square + 1, True)]
    assert outline_hit(both, (11, 5), 8) == 1  # the topmost first...
    assert outline_hit(both, (11, 5), 8, first=0) == 0  # ...unless one is selected


def test_first_edit_on_an_unlabeled_split_then_undo_leaves_no_trace(window, tmp_path, qtbot, project_factory):
    """A folder of photos without a VIA file (an unlabeled split): the first region gives it a VIA file in the same
    undo step, so undo leaves no file-to-be, no 'unannotated image' problems and a clean title (issue 21, item 7)."""
    import cv2
    import numpy as np
    from viaseg.core.annotation.project import Region

    root = tmp_path / "ds"
    project_factory(root / "train")
    (root / "test").mkdir()
    for name in ("p1.png", "p2.png"):
        cv2.imwrite(str(root / "test" / name), np.full((60, 80, 3), 120, np.uint8))
    assert window.open_path(root)
    split = window.session.dataset.splits["test"]
    assert split.project is None

    def kinds_in_test():
        window.problems.run_check(window.session.dataset, wait=True)
        qtbot.waitUntil(lambda: window.problems.status.text() != "checking…", timeout=10000)
        return {p.kind for p in window.problems.problems if p.split == "test"}

    before = kinds_in_test()
    entry = split.entries[0]
    region = Region(shape={"name": "rect", "x": 5, "y": 5, "width": 20, "height": 10}, attributes={})
    window.session.push(edits.AddRegions(entry, [region]))
    assert split.project is not None and window.session.is_dirty()
    assert "unannotated_image" in kinds_in_test()  # p2.png, now that the split is labeled
    window.undo()
    assert split.project is None and not window.session.is_dirty()
    assert kinds_in_test() == before and "unannotated_image" not in before
    assert not window.windowTitle().startswith("*")
    window.redo()
    assert split.project is not None and entry.regions == [region]


def test_rename_an_attribute_across_splits_then_undo(window, tmp_path, qtbot, project_factory):
    """The attribute-mismatch problem asks for a rename: the panel does it in every split as one undo step, and
    deletes too (issue 21, item 6)."""
    root = tmp_path / "ds"
    project_factory(root / "train")
    val = project_factory(root / "val")
    val.write_text(val.read_text().replace('"damage"', '"Damage Type"'))
    assert window.open_path(root)

    def mismatch():
        window.problems.run_check(window.session.dataset, wait=True)
        qtbot.waitUntil(lambda: window.problems.status.text() != "checking…", timeout=10000)
        return [p for p in window.problems.problems if p.kind == "attribute_mismatch"]

    assert mismatch()
    val_regions = [r for e in window.session.dataset.splits["val"].entries for r in e.regions]
    assert window.attributes.rename_attribute("region", "Damage Type", "damage")
    assert all("damage" in r.attributes and "Damage Type" not in r.attributes for r in val_regions)
    assert val_regions[0].attributes["damage"] == "dent" and not mismatch()
    assert window.session.is_dirty() and "rename attribute" in window.session.history.undo_text()
    window.undo()
    assert all("Damage Type" in r.attributes for r in val_regions) and mismatch()
    # a clash is refused with a message, nothing changes
    train_regions = [r for e in window.session.dataset.splits["train"].entries for r in e.regions]
    train_regions[0].attributes["Damage Type"] = "x"
    assert not window.attributes.rename_attribute("region", "Damage Type", "damage")
    assert "already have" in window.statusBar().currentMessage()
    del train_regions[0].attributes["Damage Type"]
    assert window.attributes.delete_attribute("region", "Damage Type")
    assert not any("Damage Type" in r.attributes for r in val_regions)
    window.undo()
    assert val_regions[0].attributes["Damage Type"] == "dent"


def test_pasting_regions_that_do_not_fit_the_photo_says_so(window, project, qtbot):
    """Regions from a larger photo pasted onto a smaller one: the paste happens (undoable) and the message says
    how many reach outside this photo, with the first selected (issue 21, item 11)."""
    from PySide6.QtWidgets import QApplication

    window.open_path(project)
    window.show_row(1)  # b.png, 120x90
    msgs = []
    window.notify = lambda text, error=False: msgs.append((text, error))
    QApplication.clipboard().setText(
        json.dumps(
            [
                {
                    "shape_attributes": {"name": "rect", "x": 5, "y": 6, "width": 7, "height": 8},
                    "region_attributes": {},
                },
                {
                    "shape_attributes": {
                        "name": "polygon",
                        "all_points_x": [100, 300, 200],
                        "all_points_y": [10, 20, 80],
                    },
                    "region_attributes": {},
                },
            ]
        )
    )
    window.paste_regions()
    b = window.canvas.entry
    text, error = msgs[-1]
    assert error and "1 reach outside this 120×90 photo" in text
    assert window.canvas.selected_region() is b.regions[-1]
    QApplication.clipboard().setText(
        json.dumps(
            [
                {
                    "shape_attributes": {"name": "rect", "x": 5, "y": 6, "width": 7, "height": 8},
                    "region_attributes": {},
                }
            ]
        )
    )
    window.paste_regions()
    assert msgs[-1] == ("pasted 1 region", False)


def test_the_zoom_label_never_reads_zero(window, project):
    """At the smallest zoom the status bar said "0 %"."""
    window.open_path(project)
    window.canvas.zoom_to(0.004)
    window._on_view()
    assert window.lbl_zoom.text() == f"{window.canvas.scale * 100:.2g} %" != "0 %"
    window.canvas.zoom_to(2.0)
    window._on_view()
    assert window.lbl_zoom.text() == "200 %"


def test_pasted_regions_that_show_as_nothing_are_named(window, project):
    """A 2-point polygon or an unknown shape pasted from elsewhere was added as an invisible region with
    "pasted 1 region"."""
    from PySide6.QtWidgets import QApplication

    window.open_path(project)
    window.show_row(1)
    b = window.canvas.entry
    msgs = []
    window.notify = lambda text, error=False: msgs.append((text, error))
    two_points = {"name": "polygon", "all_points_x": [1, 9], "all_points_y": [1, 9]}
    for shape, words in ((two_points, "has 2 distinct point"), ({"name": "hexagon", "x": 1}, "hexagon")):
        rect = {"name": "rect", "x": 5, "y": 6, "width": 7, "height": 8}
        QApplication.clipboard().setText(json.dumps([{"shape_attributes": s} for s in (rect, shape)]))
        n = len(b.regions)
        window.paste_regions()
        text, error = msgs[-1]
        assert len(b.regions) == n + 2 and error and "pasted region 2:" in text and "Ctrl+Z" in text, text
        assert words in text.lower(), text
        assert window.canvas.selected_region() is b.regions[-1]
        window.undo()
        assert len(b.regions) == n


def test_editing_shortcuts_stay_in_the_search_box_while_typing(window, project, qtbot):
    """Typing in the image search box and pressing Ctrl+D duplicated the selected region; Ctrl+Shift+Delete
    took the shown image out of its split."""
    window.open_path(project)
    window.show()
    window.show_row(0)
    window.canvas.select(0)
    entry = window.current_entry()
    n = len(entry.regions)
    search = window.image_list.search
    search.setFocus()
    qtbot.waitUntil(search.hasFocus, timeout=2000)
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(search, Qt.Key.Key_D, ctrl)
    qtbot.keyClick(search, Qt.Key.Key_Delete, ctrl | shift)
    qtbot.keyClick(search, Qt.Key.Key_N, ctrl)
    assert len(entry.regions) == n and len(window.session.rows) == 2 and window.canvas.drawing is None
    assert not window.session.is_dirty()
    window.canvas.setFocus()  # on the canvas the same keys act as before
    qtbot.waitUntil(window.canvas.hasFocus, timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_D, ctrl)
    assert len(entry.regions) == n + 1


def test_editing_shortcuts_stay_in_every_field_of_the_docks(window, project, qtbot):
    """Only the search box and the attribute fields kept them: in the Training form's spin boxes, its runs folder
    line, Check labels' Folds and Prediction's Minimum area, Ctrl+Shift+Delete took the shown image out of its
    split and Ctrl+D duplicated a region hidden behind the dock."""
    from viaseg.gui.ml_wiring import install

    window.open_path(project)
    ml = getattr(window, "ml", None) or install(window)
    window.show()
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    try:
        for field in (
            ml.training.time_limit,
            ml.training.runs_root_edit,
            ml.label_check.folds,
            ml.prediction.min_area,
        ):
            dock = field
            while dock is not None and type(dock).__name__ != "QDockWidget":
                dock = dock.parentWidget()
            dock.show()
            dock.raise_()
            window.show_row(0)
            window.canvas.select(0)
            entry = window.current_entry()
            n, rows = len(entry.regions), len(window.session.rows)
            ml.training.tabs.setCurrentIndex(1 if field is ml.training.runs_root_edit else 0)
            field.setFocus()
            qtbot.waitUntil(field.hasFocus, timeout=2000)
            for key, mods in ((Qt.Key.Key_D, ctrl), (Qt.Key.Key_Delete, ctrl | shift), (Qt.Key.Key_N, ctrl)):
                qtbot.keyClick(field, key, mods)
            assert len(entry.regions) == n and len(window.session.rows) == rows, field
            assert window.canvas.drawing is None and not window.session.is_dirty(), field
    finally:
        ml.shutdown()


def test_editing_shortcuts_stay_in_an_attribute_field_too(window, project, qtbot):
    from PySide6.QtWidgets import QLineEdit

    window.open_path(project)
    window.show()
    window.canvas.select(0)
    entry = window.current_entry()
    n = len(entry.regions)
    field = window.attributes.widgets[("region", "damage")]
    assert isinstance(field, QLineEdit)
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    qtbot.keyClick(field, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(entry.regions) == n
