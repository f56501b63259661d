"""The *Check labels* dock in the main window: tabbed with Training, its entry in the Model menu, and a clean
stop of a running check when the window closes. The panel itself is :mod:`label_check_panel`."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMessageBox

from .label_check_panel import LabelCheckPanel


class _CloseGuard(QObject):
    def __init__(self, panel: LabelCheckPanel):
        super().__init__(panel.w)
        self.panel = panel

    def eventFilter(self, obj, event):
        if event.type() != QEvent.Type.Close or obj is not self.panel.w or not self.panel.is_running():
            return False
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        if (
            self.panel.w.ask(
                "Label check in progress", "A label check is running. Stop it and close?", buttons
            )
            != QMessageBox.StandardButton.Yes
        ):
            event.ignore()
            return True
        w = self.panel.w
        w.setEnabled(False)  # nothing to click while the check winds up; the window still repaints
        try:
            self.panel.stop_and_wait(responsive=True)
        finally:
            w.setEnabled(True)
        return False


def install(ml) -> LabelCheckPanel:
    """The dock (tabbed with Training), Model ▸ Check labels…, and a clean stop when the window closes."""
    w = ml.window
    panel = LabelCheckPanel(w, ml.training, lambda: ml.training_data(unsaved=True))
    dock = ml._dock("Check labels", panel)
    w.tabifyDockWidget(ml.dock_training, dock)
    ml.dock_training.raise_()
    model_menu = next(
        (a.menu() for a in w.menuBar().actions() if a.menu() and a.text().replace("&", "") == "Model"), None
    )
    act = QAction("Check &labels…", w)
    act.setToolTip("Find label errors: photos whose annotation a model that never saw them disagrees with")
    act.triggered.connect(lambda _=False: (dock.show(), dock.raise_()))
    if model_menu is not None:
        stop = next((a for a in model_menu.actions() if a.text().replace("&", "") == "Stop training"), None)
        acts = model_menu.actions()
        after = acts[acts.index(stop) + 1] if stop is not None and acts.index(stop) + 1 < len(acts) else None
        model_menu.insertAction(after, act) if after is not None else model_menu.addAction(act)
        model_menu.addAction(dock.toggleViewAction())
    w.addAction(act)
    panel.act_check = act
    panel.dock = dock
    panel.close_guard = _CloseGuard(panel)
    w.installEventFilter(panel.close_guard)
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(panel.stop_and_wait)
    return panel
