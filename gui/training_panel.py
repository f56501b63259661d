"""The Training panel: settings, Start/Stop, progress, live curves, sample predictions, past runs.

Standalone ``QWidget``; it knows nothing of the main window. What it needs from outside:

* ``data_provider()`` -> what ``TrainConfig`` takes as its data: a ``Dataset`` object (the app's in-memory
  annotations, "use unsaved edits") or a path. Called with ``unsaved=True/False`` when it accepts a keyword.
* ``runs_root``: the folder runs are written to and listed from.

It emits ``model_activated(path)`` when a run finishes (its best model) or when the user makes a past run
active, ``training_started()`` and ``training_finished(result_or_None)``.

Its parts live beside it, as base classes: ``training_settings`` (the settings form, presets,
:func:`build_config`), ``training_runs`` (the Runs tab, the active model), ``training_progress`` (a run's
events: progress, curves, result) and ``improve_ui`` (*Improve model*). Their public names are importable from
here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.ml.ensemble import fine_tune_problem

from .curves import CurvesWidget, SampleStrip
from .improve_ui import ImproveControls, ImproveMixin
from .train_thread import TrainThread
from .training_progress import RunProgressMixin, _fmt_secs
from .training_runs import RunsTabMixin
from .training_settings import LOSSES, SettingsMixin, _model_label, build_config, new_run_dir, preset_values
from .workers import wait_responsive

__all__ = [
    "LOSSES",
    "TrainingPanel",
    "_fmt_secs",
    "_model_label",
    "build_config",
    "new_run_dir",
    "preset_values",
]


# ---------------------------------------------------------------------------------------------- panel


class TrainingPanel(SettingsMixin, RunsTabMixin, RunProgressMixin, ImproveMixin, QWidget):
    model_activated = Signal(str)
    runs_root_chosen = Signal(str)  # the user picked or typed the runs folder (kept for the next session)
    training_started = Signal()
    training_finished = Signal(object)

    def __init__(
        self,
        data_provider: Callable[..., Any] | None = None,
        runs_root: str | Path = "runs",
        parent: QWidget | None = None,
        config_overrides: dict | None = None,
        train_fn: Callable | None = None,
        train_mode: str = "process",
    ):
        super().__init__(parent)
        self.other_jobs: list[Callable[[], str]] = []  # see busy_elsewhere
        self.stop_asked = False  # Stop was pressed during the current run
        self.train_mode = train_mode  # "process": TF runs in a spawned process (see train_child); "thread"
        self.data_provider = data_provider
        self.config_overrides = dict(config_overrides or {})
        self._train_fn = train_fn
        self.thread: TrainThread | None = None
        self.active_model: str | None = None
        self.last_result: Any = None
        self.last_error: str | None = None
        self._epochs_total = 0
        self._time_limit: float | None = None  # seconds; the run ends at whichever comes first
        self._steps_per_epoch: int | None = None
        self._step_budget: int | None = None  # the run also ends after this many steps (train_budget)
        self._t0 = 0.0
        # an ensemble's networks train one after another (core/ml/ensemble.py): (k, n) of the one training now, and
        # the epochs shown before it (its curves go on from there)
        self._part: tuple[int, int] | None = None
        self._epoch_offset = self._epochs_shown = 0
        self._improving: str | None = None  # the model an Improve run started from, while it runs
        self.last_improve: dict = {}
        self._improve_active = "new"
        self._improve_epochs: int | None = None
        self._build(Path(runs_root))
        self._apply_preset("default")

    # ------------------------------------------------------------------------------------------- layout
    def _build(self, runs_root: Path) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        tabs = self.tabs = QTabWidget()
        outer.addWidget(tabs)
        tabs.addTab(self._build_train_tab(), "Train")
        self._build_runs_tab(tabs, runs_root)

    def _build_train_tab(self) -> QWidget:
        """The Train tab: the foldable settings, the run controls and what a run shows (curves, samples)."""
        train_tab = QWidget()
        tl = QVBoxLayout(train_tab)
        tl.setContentsMargins(2, 2, 2, 2)
        self.settings_toggle = QToolButton()
        self.settings_toggle.setText("Settings")
        self.settings_toggle.setCheckable(True)
        self.settings_toggle.setChecked(True)
        self.settings_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.settings_toggle.setArrowType(Qt.ArrowType.DownArrow)
        self.settings_toggle.setAutoRaise(True)
        self.settings_toggle.toggled.connect(self.show_settings)
        tl.addWidget(self.settings_toggle)
        self._build_settings(tl)
        self._build_run_controls(tl)
        split = QSplitter(Qt.Orientation.Vertical)
        self.curves = CurvesWidget()
        self.samples = SampleStrip()
        split.addWidget(self.curves)
        split.addWidget(self.samples)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        tl.addWidget(split, 1)
        return train_tab

    def _build_run_controls(self, tl: QVBoxLayout) -> None:
        """Start/Stop, Improve model, the progress bar and the lines a run writes to."""
        row = QHBoxLayout()
        self.start_btn = QPushButton("Start training")
        self.start_btn.clicked.connect(self.start)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Ends the run after the current batch; the best model so far is kept.")
        self.stop_btn.setEnabled(False)
        self.stop_btn.clicked.connect(self.stop)
        row.addWidget(self.start_btn)
        row.addWidget(self.stop_btn)
        tl.addLayout(row)
        self.improve = ImproveControls()
        self.improve.button.clicked.connect(self.start_improve)
        tl.addWidget(self.improve)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        tl.addWidget(self.progress)
        # what the run computes on ("GPU: NVIDIA H200 · mixed_float16", "CPU (AMD EPYC, 2 threads) · float32"),
        # from the run's Started event; kept for the whole run (the message line changes every epoch)
        self.device_label = QLabel("")
        self.device_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.device_label.setVisible(False)  # no room taken before a run says what it trains on
        tl.addWidget(self.device_label)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        tl.addWidget(self.message)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setOpenExternalLinks(False)
        self.result_label.linkActivated.connect(self._link)
        tl.addWidget(self.result_label)

    def _link(self, url: str) -> None:
        if url == "viaseg:use-other":
            self.use_other_model()
        elif url in ("viaseg:use-new", "viaseg:use-old"):
            self.use_other_model(url.rsplit("-", 1)[1])
        else:
            QDesktopServices.openUrl(QUrl(url))

    # ------------------------------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def busy_elsewhere(self) -> str:
        """Why another training job of the app (a label check, the click network's fine-tuning) keeps this one
        from starting, or "": two trainings at once doubled the CPU load and the memory. ``other_jobs`` holds
        one function per job, each returning its sentence when it runs."""
        return next((why for why in (job() for job in self.other_jobs) if why), "")

    def _refuse_if_busy(self) -> bool:
        if self.thread is not None:
            self._set_message(
                "The run is stopping; start again when it has ended."
                if self.stop_asked
                else "A training run is already in progress; stop it first.",
                error=True,
            )
            return True
        why = self.busy_elsewhere() or self._runs_root_problem()
        if why:
            self._set_message(why, error=True)
            return True
        return False

    def _runs_root_problem(self) -> str:
        """Why no run folder can be made under the runs folder, or "": an empty field wrote into ./runs of
        wherever the app was started, and a file there failed only after the training process started."""
        import os

        text = self.runs_root_edit.text().strip()
        if not text:
            return "Choose a folder for the runs first (Training ▸ Runs ▸ …)."
        root = Path(text)
        if root.exists() and not root.is_dir():
            return f"Runs folder {root}: is a file; choose a folder (Training ▸ Runs ▸ …)."
        there = root.absolute()  # made by the run itself; here only what would stop it (nothing is created)
        while not there.exists() and there != there.parent:
            there = there.parent
        if not there.is_dir():
            return f"Runs folder {root}: {there} is a file; choose another folder (Training ▸ Runs ▸ …)."
        if not os.access(there, os.W_OK | os.X_OK):
            return (
                f"Runs folder {root}: {there} cannot be written into; choose another (Training ▸ Runs ▸ …)."
            )
        return ""

    @Slot()
    def start(self) -> bool:
        """Start a run in the background; False (with a message) when one is running or set-up fails."""
        if self._refuse_if_busy():
            return False
        try:
            data = self._data()
            config = build_config(self.settings(), data, self.runs_root, self.config_overrides)
        except Exception as exc:  # any set-up problem becomes a message
            self._fail(f"Cannot start training: {exc}")
            return False
        if config.init_from and (problem := fine_tune_problem(config.init_from)):
            self._fail(f"Cannot start from the active model: {problem}")
            return False
        if (
            not config.extra_train
        ):  # with more datasets the run may still learn from them: it checks them itself
            from viaseg.core.ml.loop import learn_problem

            problem = learn_problem(config.dataset, "train")
            if problem:
                self._fail(problem)
                return False
        self._improving = None
        return self._launch(config, config)

    def _launch(self, job: Any, config: Any, notes: tuple[str, ...] = ()) -> bool:
        """Start ``job`` in the training process; ``notes``: sentences shown with the run's start message."""
        self.stop_asked = False
        self._launch_notes = tuple(notes)
        self.curves.begin_run(
            int(getattr(config, "epochs", self.epochs.value())), str(getattr(config, "loss", ""))
        )
        self.samples.clear()
        self.result_label.setText("")
        self.device_label.setText("")
        self.device_label.setToolTip("")
        self.last_result, self.last_error = None, None
        self._epochs_total = int(getattr(config, "epochs", self.epochs.value()))
        self._time_limit = getattr(config, "time_limit_s", None)
        self._steps_per_epoch = None
        self._step_budget = None
        self._t0 = time.monotonic()
        self._part, self._epoch_offset, self._epochs_shown = None, 0, 0
        self.thread = TrainThread(
            job, train_fn=None if job is not config else self._train_fn, mode=self.train_mode
        )
        self.thread.event.connect(self._on_event)
        self.thread.finished.connect(self._on_thread_finished)
        self._set_message("Preparing data and model…")
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.start_btn.setEnabled(False)
        self.improve.button.setEnabled(False)
        self.show_settings(False)  # room for the curves and samples while it runs
        self.stop_btn.setEnabled(True)
        self.thread.start()
        self.training_started.emit()
        return True

    @Slot()
    def stop(self) -> None:
        if self.thread is not None and self.thread.isRunning():
            self.thread.stop()
            self.stop_asked = True
            self.stop_btn.setEnabled(False)
            self._set_message("Stopping after the current batch…")

    def stop_and_wait(self, timeout_ms: int = 120000, responsive: bool = False) -> bool:
        """Stop a run and block until its thread ended (used when the window closes). ``responsive``: meanwhile
        the window repaints and shows the run's messages (the user's input waits): the run saves its best model
        and scores it first, 7-10 s in which a frozen window was all the user saw."""
        th = self.thread
        if th is None:
            return True
        th.stop()
        self.stop_asked = True
        if responsive:
            self._set_message("Stopping the run: saving its best model so far…")
            ok = wait_responsive(th, timeout_ms)
        else:
            ok = th.wait(timeout_ms)
        if ok and self.thread is th:
            terminal = th.terminal
            if terminal is not None and terminal is not getattr(self, "_terminal_handled", None):
                self._terminal_handled = (
                    terminal  # handled now; its queued copy is ignored if it still arrives
                )
                self._handle(terminal)
            self._on_thread_finished()
        return ok

    @Slot()
    def _on_thread_finished(self) -> None:
        th = self.thread
        if th is None:
            return
        self.thread = None
        self.start_btn.setEnabled(True)
        self.improve.set_model(self.active_model)
        self.stop_btn.setEnabled(False)
        if self._improving:
            self._improve_done(th.result)
        self.curves.fit()  # the run is over: one full draw with ranges fitted to the data
        if th.error and not self.last_error:
            self._fail(f"Training failed: {th.error}")
        th.deleteLater()
        self.training_finished.emit(th.result)

    def _fail(self, text: str) -> None:
        self.last_error = text
        self._set_message(text, error=True)
        self.progress.setFormat("failed")

    def _set_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020; font-weight: bold;" if error else "")
        self.message.setText(text)
