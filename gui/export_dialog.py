"""*Model → Export…*: export the current model as ONNX, TFLite or a TensorFlow SavedModel.

:func:`export_model_dialog` opens :class:`ExportDialog`: format, TFLite weight type (float32, float16, int8),
the test-time averages baked into the graph, and the output path. The export (``viaseg.core.ml.export``, the same
code as ``viaseg export``) runs in an :class:`ExportThread`, never on the GUI thread; the dialog shows the
result — the file, its size and how far its output is from the Keras model — or the error as one plain
sentence (typed viaseg errors as they are, never a traceback). While an export runs the dialog cannot be closed
(a running ``QThread`` must not be destroyed); a test model takes seconds, a full-size model longer (the ONNX
conversion is the slowest).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .workers import EXIT_WAITS, _failure_text, import_tensorflow

# (label, format, suffix of the default output name)
FORMAT_CHOICES = [
    ("ONNX (.onnx) — onnxruntime, any language", "onnx", ".onnx"),
    ("TFLite (.tflite) — phones, LiteRT", "tflite", ".tflite"),
    ("TensorFlow SavedModel (folder) — TensorFlow Serving", "savedmodel", "_savedmodel"),
]
QUANTIZE_CHOICES = [
    ("float32 (exact)", "none"),
    ("float16 (half the size)", "float16"),
    ("int8 weights (dynamic range, a quarter)", "int8"),
]
TTA_CHOICES = [
    ("as the model was trained to be used (like viaseg predict)", "model"),
    ("mirror image only (like the app)", "flip"),
    ("none: one network pass (fastest)", "none"),
]


_RUNNING: set = set()  # export threads still running: kept alive past their dialog, waited for at exit


def _wait_for_exports() -> None:
    for thread in list(_RUNNING):
        thread.wait()


EXIT_WAITS.append(_wait_for_exports)  # at exit, before TensorFlow's own exit handlers (gui.workers._stop_all)


def _prune() -> None:
    """Forget finished export threads (on the GUI thread only, so none is deleted from its own thread)."""
    for thread in [t for t in _RUNNING if t.isFinished()]:
        _RUNNING.discard(thread)


class ExportThread(QThread):
    """Runs one :func:`viaseg.core.ml.export.export_model` call; ``status(str)`` while it works, then
    ``succeeded(ExportResult)`` or ``failed(str)`` (a sentence for the user)."""

    status = Signal(str)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, model_path, out, fmt: str, quantize: str, tta: str, parent=None):
        super().__init__(parent)
        self.args = (Path(model_path), Path(out), fmt, quantize, tta)
        self.setObjectName("viaseg-export")

    def run(self) -> None:  # runs on the export thread
        from viaseg.core.ml.export import export_model

        model_path, out, fmt, quantize, tta = self.args
        try:
            res = export_model(model_path, out, fmt, quantize, tta=tta, on_status=self.status.emit)
        except BaseException as exc:  # every failure becomes a message, never a crash
            self.failed.emit(_failure_text(exc))
            return
        self.succeeded.emit(res)


class ExportDialog(QDialog):
    """The export form; ``start()`` (the Export button) runs the export off the GUI thread. ``finished_export``
    is emitted with ``(ok, message)`` when it ends; the message is also shown in the dialog."""

    finished_export = Signal(bool, str)

    def __init__(self, parent: QWidget | None, model_path):
        super().__init__(parent)
        self.model_path = Path(model_path)
        self.worker: ExportThread | None = None
        self.result = None
        self._auto_out = True  # the output path follows the format until the user edits it
        self._confirmed = ""  # a path the file dialog already asked to replace
        self.setWindowTitle("Export model")
        self.setMinimumWidth(560)

        outer = QVBoxLayout(self)
        intro = QLabel(
            f"Export <b>{self.model_path.name}</b> to run without viaseg. The exported model takes RGB images "
            "(uint8) at the model's input size and returns the damage probability map; its metadata "
            "(input size, threshold, class names) is written beside it as JSON. See docs/deploy.md."
        )
        intro.setWordWrap(True)
        outer.addWidget(intro)

        outer.addLayout(self._build_form())
        self._build_status(outer)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setDefault(True)
        outer.addWidget(self.buttons)

        self.format.currentIndexChanged.connect(self._format_changed)
        # the default name says the weights' kind (model_float16.tflite): it stayed model.tflite
        self.quantize.currentIndexChanged.connect(self._format_changed)
        self.out.textEdited.connect(self._out_edited)
        self.browse.clicked.connect(self._browse)
        self.export_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        self._format_changed()

    def _build_form(self) -> QFormLayout:
        """Format, TFLite weights, averaging and the output path."""
        form = QFormLayout()
        self.format = QComboBox()
        for label, fmt, _ in FORMAT_CHOICES:
            self.format.addItem(label, fmt)
        form.addRow("Format", self.format)
        self.quantize = QComboBox()
        for label, q in QUANTIZE_CHOICES:
            self.quantize.addItem(label, q)
        form.addRow("TFLite weights", self.quantize)
        self.tta = QComboBox()
        for label, t in TTA_CHOICES:
            self.tta.addItem(label, t)
        self.tta.setToolTip(
            "Averages inside the exported graph: the mirror image and, for models trained "
            "with them, other sizes (about 6 network passes: slower, slightly better)."
        )
        form.addRow("Averaging", self.tta)
        row = QHBoxLayout()
        self.out = QLineEdit()
        self.browse = QPushButton("Browse…")
        row.addWidget(self.out, 1)
        row.addWidget(self.browse)
        form.addRow("Save to", row)
        return form

    def _build_status(self, outer: QVBoxLayout) -> None:
        """The busy bar (shown while an export runs) and the result or error line."""
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy
        self.progress.setVisible(False)
        outer.addWidget(self.progress)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.message)

    # ------------------------------------------------------------------ form

    @property
    def fmt(self) -> str:
        return self.format.currentData()

    def _default_out(self) -> Path:
        suffix = next(s for _, f, s in FORMAT_CHOICES if f == self.fmt)
        q = self.quantize.currentData()
        extra = f"_{q}" if self.fmt == "tflite" and q != "none" else ""
        return self.model_path.with_name(self.model_path.stem + extra + suffix)

    def _format_changed(self, *_args) -> None:
        tflite = self.fmt == "tflite"
        self.quantize.setEnabled(tflite)
        if not tflite:
            self.quantize.setCurrentIndex(0)
        if self._auto_out:
            self.out.setText(str(self._default_out()))

    def _out_edited(self, _text: str) -> None:
        self._auto_out = False

    def _browse(self) -> None:
        start = self.out.text() or str(self._default_out())
        if self.fmt == "savedmodel":
            path, _ = QFileDialog.getSaveFileName(self, "SavedModel folder to create", start, "Folder (*)")
        else:
            filt = "ONNX model (*.onnx)" if self.fmt == "onnx" else "TFLite model (*.tflite)"
            path, _ = QFileDialog.getSaveFileName(self, "Export model as", start, filt)
        if path:
            self.out.setText(path)
            self._auto_out = False
            self._confirmed = path  # the file dialog asked before replacing it

    # ------------------------------------------------------------------ running

    def _replace_ok(self, out: Path) -> bool:
        """Ask before an export replaces ``out`` (an earlier export: the default name is taken again after every
        export; a file export did not write is refused by ``core.ml.export`` itself)."""
        what = "folder" if out.is_dir() else "file"
        answer = QMessageBox.question(
            self,
            "Replace the export?",
            f"{out} exists. Replace this {what} (and its metadata) with the new export?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def start(self) -> None:
        """Start the export (the Export button). Does nothing while one runs."""
        if self.running:
            return
        out = self.out.text().strip()
        if not out:
            self._done(False, "Choose where to save the exported model.")
            return
        if Path(out).exists() and out != self._confirmed and not self._replace_ok(Path(out)):
            self._show(f"Nothing exported: {out} is kept as it was. Choose another name.", ok=False)
            return
        self._set_busy(True)
        self._show("Loading TensorFlow…", ok=None)
        import_tensorflow()  # on the GUI thread, before a worker uses it (see gui/workers.py)
        # no Qt parent: a running QThread must never be destroyed with its dialog; _RUNNING keeps it alive
        self.worker = worker = ExportThread(
            self.model_path, out, self.fmt, self.quantize.currentData(), self.tta.currentData()
        )
        _prune()
        _RUNNING.add(worker)
        # bound slots of this dialog (a GUI-thread object): queued to the GUI thread, never run on the worker
        self.worker.status.connect(self._status)
        self.worker.succeeded.connect(self._succeeded)
        self.worker.failed.connect(self._failed)
        self.worker.start()

    @Slot(str)
    def _status(self, msg: str) -> None:
        self._show(msg[:1].upper() + msg[1:] + "…", ok=None)

    @Slot(str)
    def _failed(self, msg: str) -> None:
        self._done(False, f"Export failed: {msg}")

    @Slot(object)
    def _succeeded(self, res) -> None:
        self.result = res
        lines = [
            f"Exported to {res.path} ({res.size_bytes / 1e6:.2f} MB, {res.seconds:.1f} s).",
            f"Metadata: {res.meta_path}.",
        ]
        if res.max_abs_diff is not None:
            lines.append(
                f"Checked with {res.runtime}: at most {res.max_abs_diff:.2g} from the Keras model's "
                "probabilities."
            )
        self._done(True, " ".join(lines))

    def _done(self, ok: bool, message: str) -> None:
        _prune()
        self._set_busy(False)
        self._show(message, ok=ok)
        self.finished_export.emit(ok, message)

    def _show(self, text: str, ok: bool | None) -> None:
        color = {True: "#1b7f2a", False: "#b00020", None: ""}[ok]
        self.message.setStyleSheet(f"color: {color};" if color else "")
        self.message.setText(text)

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        for w in (self.format, self.tta, self.out, self.browse, self.export_button):
            w.setEnabled(not busy)
        self.quantize.setEnabled(not busy and self.fmt == "tflite")
        close = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        if close is not None:
            close.setEnabled(not busy)

    def reject(self) -> None:  # Close, Esc, the window's close button
        if self.running:
            self._show("The export is still running; the dialog closes when it is done.", ok=None)
            return
        super().reject()

    def closeEvent(self, ev) -> None:
        if self.running:
            ev.ignore()
            return
        super().closeEvent(ev)


def export_model_dialog(parent: QWidget | None, model_path) -> None:
    """Show the export dialog for ``model_path`` (modal); returns when the user closes it."""
    dlg = ExportDialog(parent, model_path)
    dlg.exec()
    dlg.deleteLater()
