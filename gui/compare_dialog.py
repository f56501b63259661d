"""Side-by-side view of two annotations of the same image (for "conflicting duplicate" problems)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout
from viaseg.core.base.errors import ImageReadError

from .canvas import Canvas


class CompareDialog(QDialog):
    def __init__(self, parent, rows, cache, class_of):
        super().__init__(parent)
        self.setWindowTitle("Compare annotations")
        self.resize(1200, 600)
        outer = QVBoxLayout(self)
        lay = QHBoxLayout()
        outer.addLayout(lay, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)

        self.canvases = []
        for row in rows:
            col = QVBoxLayout()
            e = row.entry
            col.addWidget(QLabel(f"{row.split}: {e.filename} ({len(e.regions)} regions, key {e.key})"))
            c = Canvas(self)
            c.class_of = class_of
            c.pusher = lambda _cmd: None  # read-only: edits are ignored
            try:
                d = cache.get(str(e.path))
                c.set_entry(e, d.qimage, d.size)
            except ImageReadError as exc:
                c.set_entry(e, None, None, placeholder=str(exc))
            c.installEventFilter(self)  # Esc on a canvas closes the window (the canvas would only deselect)
            col.addWidget(c, 1)
            lay.addLayout(col)
            self.canvases.append(c)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QEvent.Type.KeyPress and ev.key() == Qt.Key.Key_Escape:
            self.reject()
            return True
        return super().eventFilter(obj, ev)
