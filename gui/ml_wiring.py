"""Wires training and prediction into the main window: ``install(window) -> MLWiring``.

Adds the Training, Prediction and Check labels docks, a Model menu (Predict = P, Predict images…, Predict all,
Accept as polygons, Train/Stop, Check labels…), File ▸ Predict images…, drop handling for photos and image
folders (VIA files and dataset folders still go to the window's own drop handler), the per-image Dice column, and
a clean shutdown: closing the window during a run asks, then stops the run and waits for its thread.

What it uses from the window: ``session`` (dataset, rows, push, signals), ``canvas.set_prediction_overlay``,
``canvas.default_attributes``, ``show_external_image``, ``show_row``, ``current``/``external_path``,
``image_list.set_extra_column``, ``settings`` (QSettings or None), ``ask(title, text, buttons)`` and ``notify``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMessageBox, QSlider
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.annotation.workspace import snapshot
from viaseg.core.assist.segment import LEVELS

from .assist_tool import AssistTool, target_key_of
from .clicknet_service import ClickNetService
from .clicknet_wiring import ClickNetWiring
from .docks import add_dock
from .label_check_dock import install as install_label_check
from .prediction_panel import PredictionPanel
from .text_keys import keep_editing_keys_within
from .training_panel import TrainingPanel
from .window_host import DropRouter, WindowHost
from .workers import InferenceService

if TYPE_CHECKING:
    from .main_window import MainWindow


class _CloseGuard(QObject):
    def __init__(self, ml: MLWiring):
        super().__init__(ml.window)
        self.ml = ml

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Close and obj is self.ml.window and not self.ml.confirm_close():
            event.ignore()  # a close event starts accepted: refusing means ignoring it
            return True
        return False


# ---------------------------------------------------------------------------------------------- wiring


class MLWiring:
    def __init__(self, window: MainWindow):
        self.window = w = window
        self._closing = False  # the window is closing (confirm_close): a model activated now is not loaded
        self.service = InferenceService(parent=w)
        self.host = WindowHost(w)
        self.training = TrainingPanel(data_provider=self.training_data, runs_root=self._default_runs_root())
        self.prediction = PredictionPanel(self.service, self.host)
        self.dock_training = self._dock("Training", self.training)
        self.dock_prediction = self._dock("Prediction", self.prediction)
        anchor = w.dock_attributes
        w.tabifyDockWidget(anchor, self.dock_prediction)
        w.tabifyDockWidget(anchor, self.dock_training)
        anchor.raise_()  # the right dock opens on Attributes: labelling comes first
        self.clicknet = ClickNetService(parent=w)
        self.clicknet_ui = ClickNetWiring(self)  # its toolbar button and Model menu entry, fine-tuning
        self._menus()
        self.assist = AssistTool(w.canvas, self.prediction, target_key_of(w), net=self.clicknet)
        self._assist_ui()
        cn = self.clicknet_ui
        self.act_clicknet = cn.act_toggle
        self.use_clicknet_weights, self.fine_tune_clicknet = cn.use_weights, cn.fine_tune
        self._shipped_clicknet = cn.use_shipped
        self.drop_router = DropRouter(self.prediction, w)
        w.setAcceptDrops(True)
        w.installEventFilter(self.drop_router)
        self.close_guard = _CloseGuard(self)
        w.installEventFilter(self.close_guard)
        self.label_check = install_label_check(self)  # the Check labels dock and its Model menu entry
        self.training.other_jobs += [self._label_check_running, self.clicknet_ui.tuning]
        # a runs folder the user chose is kept (opening a project reset it to PROJECT/runs, every session too)
        self.training.runs_root_chosen.connect(lambda path: self._set_setting("runs_root", path))
        self.training.model_activated.connect(self._on_model_activated)
        self.training.training_started.connect(lambda: self.act_stop.setEnabled(True))
        self.training.training_finished.connect(lambda _r: self.act_stop.setEnabled(False))
        self.prediction.status.connect(lambda text: w.notify(text, "fail" in text.lower()))
        w.session.opened.connect(self._on_opened)
        w.session.changed.connect(self.prediction.entry_changed)
        w.image_shown.connect(self.prediction.host_image_changed)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.service.tensorflow_loading.connect(self._tensorflow_loading)
        self.clicknet.tensorflow_loading.connect(self._tensorflow_loading)
        model = self._setting("active_model")
        if model and Path(model).is_file():
            self.training.set_active_model(str(model), announce=False)
            # once the window is up: TensorFlow's import (GUI thread, seconds) then load + warm-up (background)
            QTimer.singleShot(
                200, lambda: self.service.model_path is None and self.service.set_model(model, load=True)
            )
        if w.session.dataset is not None:
            self._on_opened()

    # --------------------------------------------------------------------------------------- layout
    def _dock(self, title: str, widget) -> QDockWidget:
        return add_dock(self.window, title, widget, Qt.DockWidgetArea.RightDockWidgetArea)

    def _action(self, menu, text, slot, keys=(), tip=""):
        a = QAction(text, self.window)
        if keys:
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            a.setToolTip(tip)
        a.triggered.connect(lambda _=False: slot())
        menu.addAction(a)
        self.window.addAction(a)
        return a

    def _menus(self) -> None:
        w = self.window
        mb = w.menuBar()
        file_menu = next(
            (a.menu() for a in mb.actions() if a.menu() and a.text().replace("&", "") == "File"), None
        )
        if file_menu is not None:
            acts = file_menu.actions()
            self.act_predict_images = QAction("Predict &images…", w)
            self.act_predict_images.triggered.connect(lambda _=False: self.prediction.choose_photos())
            before = next((a for a in acts if a.isSeparator()), None)
            file_menu.insertAction(before, self.act_predict_images) if before else file_menu.addAction(
                self.act_predict_images
            )
        m = mb.addMenu("&Model")
        self.act_predict = self._action(
            m,
            "&Predict current image",
            self.predict_current,
            ["P"],
            "Run the active model on the image shown (P)",
        )
        self._action(m, "Predict &images…", self.prediction.choose_photos)
        self._action(m, "Predict &all in split", self._predict_all)
        self._action(
            m,
            "&Next to label",
            self.prediction.next_to_label,
            ["L"],
            "Open the unlabelled photo that best stands for those not labelled yet (orders the split first if needed)",
        )
        self._action(m, "&Accept prediction as polygons", self.prediction.accept_polygons)
        m.addSeparator()
        self.act_clicknet_tune = self._action(
            m,
            "Fine-tune the &click network on this project…",
            lambda: self.clicknet_ui.fine_tune(),
            tip="Teach the AI region tool's click network your own damage: a few minutes of training on this "
            "project's polygons (unsaved edits included), in the background; the result is then in use",
        )
        self._action(
            m,
            "&Export active model…",
            self._export_model,
            tip="ONNX, TFLite or TensorFlow SavedModel: run it without viaseg (docs/deploy.md)",
        )
        self._action(m, "&Train…", self._show_training)
        self.act_stop = self._action(m, "&Stop training", self.training.stop)
        self.act_stop.setEnabled(False)
        m.addSeparator()
        m.addAction(self.dock_training.toggleViewAction())
        m.addAction(self.dock_prediction.toggleViewAction())

    def _assist_ui(self) -> None:
        """Edit ▸ AI region (I) and a Tools toolbar: the tool's toggle and the Detail slider of the selected
        AI region."""
        w = self.window
        a = QAction("&AI region (click a damage)", w)
        a.setCheckable(True)
        a.setShortcut(QKeySequence("I"))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.setToolTip(
            "AI region (I): click a damage to get its polygon; Shift/right click = not this, drag = box, "
            "Enter accepts, Esc cancels"
        )
        a.toggled.connect(self.assist.set_active)
        self.assist.active_changed.connect(a.setChecked)
        w.addAction(a)
        self.act_assist = a
        edit = next(
            (m.menu() for m in w.menuBar().actions() if m.menu() and m.text().replace("&", "") == "Edit"),
            None,
        )
        if edit is not None:
            acts = edit.actions()
            i = acts.index(w.act_new_polygon) + 1 if w.act_new_polygon in acts else len(acts)
            edit.insertAction(acts[i], a) if i < len(acts) else edit.addAction(a)
        w.canvas.drawing_changed.connect(lambda on: on and self.assist.set_active(False))
        tb = w.addToolBar("Tools")
        tb.setObjectName("toolbar_tools")
        tb.addAction(a)
        self.clicknet_ui.add_to_toolbar(tb)
        tb.addWidget(QLabel(" detail "))
        self.detail_slider = QSlider(Qt.Orientation.Horizontal)
        self.detail_slider.setRange(0, len(LEVELS) - 1)
        self.detail_slider.setInvertedAppearance(True)  # right = more vertices (a lower level)
        self.detail_slider.setMaximumWidth(120)
        self.detail_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.detail_slider.setEnabled(False)
        self.detail_slider.setToolTip(
            "Vertices of the selected AI region, made again from its mask (+ / - with the region selected)"
        )
        self._detail_key = None
        self.detail_slider.sliderPressed.connect(self._detail_drag_start)
        self.detail_slider.valueChanged.connect(self._detail_moved)
        self.detail_slider.sliderReleased.connect(w.session.end_drag)
        self.assist.detail_available.connect(self._detail_shown)
        # an edit (a move, a reshape, its undo) can end or bring back the selected region's detail from its mask
        w.session.changed.connect(lambda _entry: self.assist._emit_detail())
        tb.addWidget(self.detail_slider)

    def _detail_shown(self, level: int, _n: int) -> None:
        s = self.detail_slider
        s.blockSignals(True)
        s.setEnabled(level >= 0)
        if level >= 0:
            s.setValue(level)
        s.blockSignals(False)

    def _detail_drag_start(self) -> None:
        self._detail_key = ("detail", id(self))

    def _detail_moved(self, level: int) -> None:
        key = self._detail_key if self.detail_slider.isSliderDown() else None
        self.assist.set_detail(level, merge_key=key)

    def _export_model(self) -> None:
        model = self.service.model_path
        if not model:
            self.window.notify(
                "No active model to export: train one or choose a run in Training ▸ Runs.", True
            )
            return
        from .export_dialog import export_model_dialog

        export_model_dialog(self.window, model)

    def _show_training(self) -> None:
        self.dock_training.show()
        self.dock_training.raise_()

    # ----------------------------------------------------------------------------------------- data
    def _setting(self, key: str):
        s = self.window.settings
        return s.value(key) if s is not None else None

    def _set_setting(self, key: str, value) -> None:
        s = self.window.settings
        if s is not None:
            s.setValue(key, value)

    def _default_runs_root(self) -> Path:
        saved = self._setting("runs_root")
        if saved:
            return Path(str(saved))
        src = self.window.session.source
        if src is not None:
            base = Path(src) if Path(src).is_dir() else Path(src).parent
            if os.access(base, os.W_OK):
                return base / "runs"
        from viaseg.core.annotation import journal

        return journal.state_dir() / "runs"

    def training_data(self, unsaved: bool = True):
        s = self.window.session
        if s.dataset is None or s.source is None:
            raise ValueError("No project is open: open a VIA file or dataset folder first.")
        return snapshot(s.dataset) if unsaved else load_dataset(s.source)

    def _on_opened(self) -> None:
        if not self._setting("runs_root"):
            self.training.set_runs_root(self._default_runs_root())
        self.prediction.project_changed()  # a Predict all of the photos before is dropped
        self.prediction.refresh_splits()
        self.prediction.set_target(None)
        self.window.image_list.set_extra_column(None)

    def _label_check_running(self) -> str:
        if self.label_check.is_running():
            return "A label check is running (Check labels); train when it has finished, or stop it."
        return ""

    def _tensorflow_loading(self) -> None:
        self.window.notify("Loading TensorFlow (once per session)…")
        self.window.statusBar().repaint()

    def _on_model_activated(self, path: str) -> None:
        if not self._closing:  # a run stopped by closing the window: remembered for the next session only
            self.service.set_model(
                path, load=True
            )  # loaded and warmed in the background: the first P is quick
        self._set_setting("active_model", path)
        self.window.notify(f"active model: {path}")

    # -------------------------------------------------------------------------------------- actions
    def predict_current(self) -> bool:
        self.dock_prediction.show()
        self.dock_prediction.raise_()
        return self.prediction.predict_current()

    def _predict_all(self) -> None:
        self.dock_prediction.show()
        self.dock_prediction.raise_()
        self.prediction.predict_all()

    # ------------------------------------------------------------------------------------- shutdown
    def confirm_close(self) -> bool:
        """Closing the window: while a run goes on, ask; yes stops it and waits for its thread."""
        if not self.training.is_running():
            return True
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        ans = self.window.ask(
            "Training in progress",
            "A training run is in progress. Stop it (keeping the best model so far) and close?",
            buttons,
        )
        if ans != QMessageBox.StandardButton.Yes:
            return False
        # the project's save question before the run is stopped: a Cancel there stopped the run all the same
        if not self.window.maybe_save():
            return False
        self.window.save_question_answered = True  # closeEvent does not ask it again (Discard stays dirty)
        self.window.setEnabled(False)  # nothing to click while the run winds up; the window still repaints
        # its model is not loaded for prediction now (TensorFlow's import on the GUI thread: 4 s of the 10 the
        # window took to close)
        self._closing = True
        try:
            self.training.stop_and_wait(responsive=True)
        finally:
            self.window.setEnabled(True)
        return True

    def shutdown(self) -> None:
        if self.training.is_running():
            self.training.stop_and_wait()
        self.clicknet_ui.stop_and_wait()
        self.service.shutdown()
        self.clicknet.shutdown()


def install(window) -> MLWiring:
    """Add training and prediction to ``window``; the returned object is also ``window.ml``."""
    ml = MLWiring(window)
    window.ml = ml
    keep_editing_keys_within(window)  # the ML docks' spin boxes and lines too
    return ml
