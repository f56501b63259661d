"""The AI region tool's click network in the main window: the Tools toolbar's *Click network* toggle and its
menu (a weights file, or the shipped ones), and *Model ▸ Fine-tune the click network on this project*, which
trains it on the project's polygons in the background training process (``core.ml.clicknet_train.ClickNetJob``)
and puts the result in use. The network itself runs in ``gui.clicknet_service``; the tool is
``gui.assist_tool``. ``ml`` is the window's ``MLWiring`` (its settings, training panel, tool and service)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolButton

from .train_thread import TrainThread
from .workers import import_tensorflow


class ClickNetWiring:
    def __init__(self, ml):
        self.ml = ml
        self.window = ml.window
        self.job: TrainThread | None = None  # a fine-tuning running or done
        self.act_toggle: QAction | None = None

    def add_to_toolbar(self, tb) -> None:
        """The *Click network* toggle (saved in the settings) with its weights menu."""
        ml, w = self.ml, self.window
        net = QAction("Click network", w)
        net.setCheckable(True)
        net.setToolTip(
            "AI region: the first click's region from the click network shipped with viaseg (on), or from the "
            "active model's map, else the photo's colours and edges (off)"
        )
        on = ml._setting("assist_clicknet")
        net.setChecked(str(on).lower() not in ("false", "0"))
        ml.assist.set_use_net(net.isChecked())
        net.toggled.connect(self._toggled)
        self.act_toggle = net
        menu = QMenu(w)
        self.act_file = menu.addAction("Use weights file…", self.choose_weights)
        self.act_shipped = menu.addAction("Use the weights shipped with viaseg", self.use_shipped)
        net.setMenu(menu)
        tb.addAction(net)
        button = tb.widgetForAction(net)
        if isinstance(button, QToolButton):
            button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        ml.assist.net_disabled.connect(self._failed)
        weights = os.environ.get("VIASEG_CLICKNET") or ml._setting("assist_clicknet_weights")
        if weights:
            self.use_weights(str(weights), announce=False, at_start=True)

    def use_weights(self, path: str | None, announce: bool = True, at_start: bool = False) -> bool:
        """The click network's weights: a file of `viaseg clicknet` (fine-tuned on your polygons), or None for
        the shipped ones. A file that cannot be used is refused with a message naming it; chosen in the menu,
        the weights in use stay; at the start (``VIASEG_CLICKNET``, the last session's choice), the network is
        off for the session and the message comes once the window is up (it went to the status line, where the
        project's "opened" replaced it at once, and the shipped network ran instead of the user's)."""
        from viaseg.core.ml.clicknet import weights_problem

        missing = bool(path) and not Path(str(path)).is_file()
        reason = ("does not exist" if missing else weights_problem(path)) if path else None
        if reason and not missing:
            reason = f"is not a weights file ({reason})"
        if reason and at_start:
            self.ml.assist.set_use_net(False)
            self._failed(f"{path} {reason}")
            QTimer.singleShot(0, lambda: self._failed(f"{path} {reason}"))  # after the project's own message
            return False
        if reason:  # checked before it is saved for the next session (it turned the network off each start)
            self.window.notify(f"Click network: {path} {reason}; keeping the weights in use.", True)
            return False
        self.ml.clicknet.set_weights(path or None)
        self.ml._set_setting("assist_clicknet_weights", path or "")
        self.act_toggle.setToolTip(
            "AI region: the first click's region from the click network "
            + (f"({Path(path).name}, fine-tuned)" if path else "(shipped with viaseg)")
            + " when on; off: the active model's map, else the photo's colours and edges"
        )
        if announce:
            self.window.notify(
                f"Click network: using {path}."
                if path
                else "Click network: using the weights shipped with viaseg."
            )
        return True

    def tuning(self) -> str:
        """The Training panel's refusal while the click network is being fine-tuned ("" when it is not)."""
        if self.job is not None and self.job.isRunning():
            return "The click network is being fine-tuned (Model menu); train when it has finished."
        return ""

    def fine_tune(self, minutes: float | None = None, steps: int | None = None, mode: str = "process"):
        """Model ▸ Fine-tune the click network: ``minutes`` of training (asked when None) on every annotated
        photo of the project, in the training process; the weights then go in use. Again while it runs: stop
        (the weights so far are kept). Returns the TrainThread, or None when it did not start."""
        from datetime import datetime

        from viaseg.core.ml.clicknet_train import ClickNetJob

        w = self.window
        running = self.job
        if running is not None and running.isRunning():
            running.stop()
            w.notify("Click network: stopping (the weights trained so far are kept)…")
            return None
        if self.ml.training.is_running():
            w.notify("Click network: a training is running; fine-tune the click network when it ends.", True)
            return None
        if self.ml.label_check.is_running():  # two trainings at once: twice the load and the memory
            w.notify(
                "Click network: a label check is running; fine-tune the click network when it ends.", True
            )
            return None
        try:
            data = self.ml.training_data()
        except ValueError as exc:
            w.notify(str(exc), True)
            return None
        entries = [e for sp in data.splits.values() if sp.labeled for e in sp.entries if e.regions]
        if not entries:
            w.notify("Click network: no annotated region in this project to learn from.", True)
            return None
        if minutes is None and steps is None:
            from PySide6.QtWidgets import QInputDialog

            minutes, ok = QInputDialog.getInt(
                w,
                "Fine-tune the click network",
                f"Minutes of training on the {len(entries)} annotated photos of this project:",
                5,
                1,
                240,
            )
            if not ok:
                return None
        root = Path(self.ml.training.runs_root)
        root.mkdir(parents=True, exist_ok=True)
        out = root / f"clicknet-{datetime.now():%Y%m%d-%H%M%S}.npz"
        job = ClickNetJob(entries, str(out), seconds=60.0 * float(minutes or 0), steps=steps)
        if mode == "thread":  # TensorFlow in this process: imported on the GUI thread first (gui.workers)
            import_tensorflow()
        th = TrainThread(job, parent=w, mode=mode)
        th.event.connect(self._progress)
        th.done.connect(lambda res: self._tuned(th, res))
        self.job = th
        self.ml.act_clicknet_tune.setText("Stop fine-tuning the &click network")
        w.notify(f"Click network: fine-tuning on {len(entries)} photos in the background…")
        th.start()
        return th

    def _progress(self, ev) -> None:
        step = getattr(ev, "step", None)
        if step is not None and (step + 1) % 20 == 0:
            self.window.notify(f"Click network: fine-tuning, step {step + 1}, loss {ev.loss:.3f}")

    def _tuned(self, th, res) -> None:
        self.ml.act_clicknet_tune.setText("Fine-tune the &click network on this project…")
        if res is None:
            self.window.notify(f"Click network: fine-tuning failed: {th.error}", True)
            return
        if self.use_weights(res.path, announce=False):
            self._on()
        left = f"; {len(res.left_out)} photos left out (unreadable)" if res.left_out else ""
        self.window.notify(
            f"Click network fine-tuned on {res.photos} photos ({res.regions} regions, {res.steps} steps){left}: "
            f"now in use ({res.path}). The Click network menu goes back to the shipped one."
        )

    def choose_weights(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self.window, "Click network weights (viaseg clicknet --out)", "", "Click network weights (*.npz)"
        )
        if path and self.use_weights(path):
            self._on()

    def use_shipped(self) -> None:
        if self.use_weights(None):
            self._on()

    def _on(self) -> None:
        self.act_toggle.setChecked(True)
        self.ml.assist.set_use_net(True)  # (also when the action was checked but a failure had turned it off)

    def _failed(self, message: str) -> None:
        """Off for this session, not in the settings: the next session tries again."""
        self.act_toggle.blockSignals(True)
        self.act_toggle.setChecked(False)
        self.act_toggle.blockSignals(False)
        self.window.notify(f"Click network off: {message}", True)

    def _toggled(self, on: bool) -> None:
        self.ml.assist.set_use_net(on)
        self.ml._set_setting("assist_clicknet", bool(on))

    def stop_and_wait(self) -> None:
        """At exit: a fine-tuning still running stops (keeping what it learnt)."""
        if self.job is not None and self.job.isRunning():
            self.job.stop()
            self.job.wait(60000)
