"""'+ attribute' asks the type (text, dropdown, radio, checkbox) and the options; the definition is one undo step
and is what the saved VIA file holds (issue 21: only a text attribute could be added)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QDialogButtonBox, QRadioButton
from viaseg.gui.attributes_panel import NewAttributeDialog


def via2_project_file(project_factory, folder):
    """conftest's two images as a VIA 2 *project* file (the format that stores attribute definitions)."""
    via = project_factory(folder)
    meta = json.loads(via.read_text())
    path = folder / "project.json"
    path.write_text(
        json.dumps(
            {
                "_via_settings": {"project": {"name": "x"}},
                "_via_img_metadata": meta,
                "_via_attributes": {"region": {}, "file": {}},
            }
        )
    )
    via.unlink()
    return path


def test_added_attribute_types_and_options_are_saved_in_the_via_file(window, tmp_path, project_factory):
    path = via2_project_file(project_factory, tmp_path / "p")
    assert window.open_path(path)
    window.canvas.select(0)
    region = window.canvas.entry.regions[0]
    panel = window.attributes
    assert panel.add_attribute("region", "severity", "dropdown", ["minor", "major"])
    combo = panel.widgets[("region", "severity")]
    assert isinstance(combo, QComboBox) and [combo.itemText(i) for i in range(combo.count())] == [
        "",
        "minor",
        "major",
    ]
    assert region.attributes["severity"] == ""
    assert window.session.history.undo_text() == "add dropdown attribute 'severity'"
    assert panel.add_attribute("region", "side", "radio", ["left", "right"])
    assert isinstance(panel.widgets[("region", "side")].findChild(QRadioButton), QRadioButton)
    assert panel.add_attribute("file", "flags", "checkbox", ["blurry", "night"])
    assert isinstance(panel.widgets[("file", "flags")].findChild(QCheckBox), QCheckBox)
    assert window.canvas.entry.file_attributes["flags"] == {}
    assert panel.add_attribute("region", "note")  # text, as before
    # each is one undo step
    window.undo()
    assert "note" not in region.attributes and ("region", "note") not in panel.widgets
    window.redo()
    assert window.save()
    saved = json.loads(path.read_text())["_via_attributes"]
    assert saved["region"]["severity"] == {
        "type": "dropdown",
        "description": "",
        "options": {"minor": "", "major": ""},
        "default_options": {},
    }
    assert saved["region"]["side"]["type"] == "radio" and list(saved["region"]["side"]["options"]) == [
        "left",
        "right",
    ]
    assert saved["file"]["flags"]["type"] == "checkbox" and list(saved["file"]["flags"]["options"]) == [
        "blurry",
        "night",
    ]
    assert saved["region"]["note"]["type"] == "text"
    # reopened: the dropdown is a dropdown again
    assert window.open_path(path)
    window.canvas.select(0)
    assert isinstance(window.attributes.widgets[("region", "severity")], QComboBox)


def test_refusals_and_a_format_that_stores_no_types(window, project):
    assert window.open_path(project)  # plain VIA 2 annotations: values only, no definitions
    window.canvas.select(0)
    panel = window.attributes
    said = []
    panel.message.connect(said.append)
    assert not panel.add_attribute("region", "damage", "dropdown", ["a"])  # already there
    assert "already" in said[-1]
    assert not panel.add_attribute("region", "severity", "dropdown", [])  # a choice needs options
    assert "option" in said[-1] and not window.session.is_dirty()
    assert panel.add_attribute("region", "severity", "dropdown", ["minor", "major"])
    assert "'VIA 2 project', keeps it" in said[-1]  # the user is told the type will not be in this file


def test_the_dialog_asks_name_type_and_options(window, project, qtbot):
    dlg = NewAttributeDialog("region")
    qtbot.addWidget(dlg)
    ok = dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled() and not dlg.options.isEnabled()  # no name yet; text needs no options
    dlg.name.setText("severity")
    assert ok.isEnabled()
    dlg.kind.setCurrentIndex(dlg.kind.findData("checkbox"))
    assert dlg.options.isEnabled() and not ok.isEnabled()  # a checkbox needs its options
    dlg.options.setText(" minor, major ,, ")
    assert ok.isEnabled() and dlg.values() == ("severity", "checkbox", ["minor", "major"])

    # "+ attribute" runs it and defines what was entered
    assert window.open_path(project)
    window.canvas.select(0)

    def fill():
        d = QApplication.activeModalWidget()
        assert isinstance(d, NewAttributeDialog)
        d.name.setText("side")
        d.kind.setCurrentIndex(d.kind.findData("radio"))
        d.options.setText("left, right")
        d.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    QTimer.singleShot(50, fill)
    window.attributes.region_box.add_btn.click()
    d = window.session.attributes(window.canvas.entry)["region"]["side"]
    assert d["type"] == "radio" and list(d["options"]) == ["left", "right"]


def test_typing_a_value_then_clicking_elsewhere_keeps_the_app_alive(window, project, qtbot):
    """Committing a typed value (the field losing focus) rebuilt the form inside the field's own focus-out
    handler, and the form deleted that field there: a segmentation fault when the user clicked the canvas or
    another image after typing. The form's widgets are now deleted once control is back in the event loop."""
    import shiboken6
    from PySide6.QtCore import QEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QLineEdit

    window.open_path(project)
    window.show()
    window.canvas.select(0)
    field = window.attributes.widgets[("region", "damage")]
    assert isinstance(field, QLineEdit)
    field.setFocus()
    QTest.keyClicks(field, "X")
    field.editingFinished.emit()  # what losing focus sends: the value is pushed, the form rebuilt
    assert window.canvas.entry.regions[0].attributes["damage"] == "dentX"
    assert shiboken6.isValid(field)  # still there while its own signal runs
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(field)  # and gone afterwards
    fresh = window.attributes.widgets[("region", "damage")]
    assert fresh is not field and fresh.text() == "dentX"
    window.session.undo()
    assert window.canvas.entry.regions[0].attributes["damage"] == "dent"
