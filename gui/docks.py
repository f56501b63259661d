"""Dock widgets of the main window: every panel sits in a scroll area, so no panel's own minimum size (the
Training tab's charts and sample strip want ~1,200 px) sets the window's: the window fits a 1366x768 screen
with every dock open, and a short dock scrolls instead of pushing the status bar off screen."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


def add_dock(window: QMainWindow, title: str, panel: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    """A dock named ``dock_<title>`` (for saving the layout) holding ``panel`` in a scroll area."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(panel)
    dock = QDockWidget(title, window)
    dock.setObjectName(f"dock_{title.lower()}")
    dock.setWidget(scroll)
    window.addDockWidget(area, dock)
    return dock


class Banner(QFrame):
    """A non-modal message strip over the canvas (e.g. why a file did not open), closed with its × button."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet(
            "#banner { background: #fde7e9; border: 1px solid #b00020; }#banner QLabel { color: #7a0016; }"
        )
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("×")
        close.setAutoRaise(True)
        close.setToolTip("Close this message")
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()


def with_banner(banner: Banner, widget: QWidget) -> QWidget:
    """``widget`` with ``banner`` above it, as one central widget."""
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(0)
    lay.addWidget(banner)
    lay.addWidget(widget, 1)
    return box
