"""Model → Export…: the dialog exports off the GUI thread and reports success or failure in plain words."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("keras")

from ml_helpers import make_model
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog
from viaseg.gui.export_dialog import ExportDialog, export_model_dialog


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("m") / "tiny.keras", size=32)


def test_dialog_exports_onnx_in_a_worker_thread(qtbot, model, tmp_path, monkeypatch):
    import viaseg.core.ml.export as ex

    threads = []
    real = ex.export_model

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(ex, "export_model", spy)
    dlg = ExportDialog(None, model)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.out.text() == str(model.with_name("tiny.onnx"))  # default: beside the model
    dlg.format.setCurrentIndex(dlg.format.findData("tflite"))
    assert dlg.quantize.isEnabled() and dlg.out.text().endswith("tiny.tflite")
    dlg.format.setCurrentIndex(dlg.format.findData("onnx"))
    assert not dlg.quantize.isEnabled()
    dlg.tta.setCurrentIndex(dlg.tta.findData("none"))
    out = tmp_path / "exported.onnx"
    dlg.out.setText(str(out))
    with qtbot.waitSignal(dlg.finished_export, timeout=120_000) as sig:
        dlg.start()
        assert dlg.running and not dlg.export_button.isEnabled()
        dlg.reject()  # closing while it runs is refused
        assert dlg.isVisible() and "still running" in dlg.message.text()
    ok, message = sig.args
    assert ok, message
    assert threads and threads[0] is not threading.main_thread()  # never on the GUI thread
    assert out.is_file() and str(out) in message and "onnxruntime" in message
    meta = json.loads(out.with_name("exported.onnx.json").read_text(encoding="utf-8"))
    assert meta["format"] == "onnx" and meta["input_size"] == [32, 32] and meta["tta"] == "none"
    assert dlg.message.text() == message and dlg.export_button.isEnabled()
    qtbot.waitUntil(lambda: not dlg.running)


def test_dialog_reports_failures_without_traceback(qtbot, model, tmp_path):
    dlg = ExportDialog(None, tmp_path / "missing.keras")
    qtbot.addWidget(dlg)
    dlg.out.setText(str(tmp_path / "m.onnx"))
    with qtbot.waitSignal(dlg.finished_export, timeout=60_000) as sig:
        dlg.start()
    ok, message = sig.args
    assert not ok and "missing.keras" in message and "no such model file" in message
    assert "Traceback" not in message and dlg.message.text() == message
    qtbot.waitUntil(lambda: not dlg.running)

    dlg2 = ExportDialog(None, model)
    qtbot.addWidget(dlg2)
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    dlg2.out.setText(str(tmp_path / "a_file" / "m.onnx"))
    with qtbot.waitSignal(dlg2.finished_export, timeout=60_000) as sig:
        dlg2.start()
    ok, message = sig.args
    assert not ok and "a_file is not a folder" in message
    qtbot.waitUntil(lambda: not dlg2.running)


def test_export_model_dialog_opens_and_closes(qtbot, model):
    seen = []

    def close_it():
        dlg = QApplication.activeModalWidget()
        seen.append(type(dlg).__name__)
        if isinstance(dlg, QDialog):
            dlg.reject()

    QTimer.singleShot(200, close_it)
    assert export_model_dialog(None, model) is None
    assert seen == ["ExportDialog"]


def test_the_default_name_follows_the_tflite_weights(qtbot, model):
    """Choosing float16 or int8 weights left the default name model.tflite."""
    dlg = ExportDialog(None, model)
    qtbot.addWidget(dlg)
    dlg.format.setCurrentIndex(dlg.format.findData("tflite"))
    assert dlg.out.text().endswith(f"{model.stem}.tflite")
    dlg.quantize.setCurrentIndex(dlg.quantize.findData("float16"))
    assert dlg.out.text().endswith(f"{model.stem}_float16.tflite")
    dlg.out.setText("/tmp/mine.tflite")
    dlg._out_edited("/tmp/mine.tflite")  # a name the user typed is kept
    dlg.quantize.setCurrentIndex(dlg.quantize.findData("int8"))
    assert dlg.out.text() == "/tmp/mine.tflite"


def test_an_existing_export_is_replaced_only_when_the_user_says_so(qtbot, model, tmp_path, monkeypatch):
    """Export twice with the default name replaced the first export without a word."""
    from PySide6.QtWidgets import QMessageBox

    out = tmp_path / "exported.onnx"
    out.write_bytes(b"an earlier export")
    asked = []

    def answer(reply):
        def question(parent, title, text, *args):
            asked.append(text)
            return reply

        return question

    dlg = ExportDialog(None, model)
    qtbot.addWidget(dlg)
    dlg.out.setText(str(out))
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    dlg.start()
    assert not dlg.running and out.read_bytes() == b"an earlier export"
    assert asked and str(out) in asked[0] and "kept as it was" in dlg.message.text()
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(dlg.finished_export, timeout=120_000) as sig:
        dlg.start()
    assert sig.args[0], sig.args[1]
    assert len(asked) == 2 and out.read_bytes() != b"an earlier export"
    qtbot.waitUntil(lambda: not dlg.running)
