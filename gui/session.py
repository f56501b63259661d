"""The open document as Qt signals: :class:`Session` is core's ``Workspace`` (project/dataset, undo history, dirty
tracking, saving, journal; no Qt) whose callbacks emit signals, so widgets on the GUI thread can connect to them.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from viaseg.core.annotation.workspace import Row, Workspace

__all__ = ["Row", "Session"]


class Session(QObject, Workspace):
    """Signals: ``opened()``, ``changed(object entry)``, ``dirty_changed(bool)``, ``rows_changed()`` (an image
    was added or removed: ``rows`` were re-indexed, before ``changed``) — ``Workspace``'s callbacks."""

    opened = Signal()
    changed = Signal(object)  # the ImageEntry whose content changed (after push/undo/redo)
    dirty_changed = Signal(bool)
    rows_changed = Signal()

    def __init__(self, parent=None):
        QObject.__init__(self, parent)
        Workspace.__init__(self)
        self.on_opened = self.opened.emit
        self.on_changed = self.changed.emit
        self.on_dirty_changed = self.dirty_changed.emit
        self.on_rows_changed = self.rows_changed.emit
