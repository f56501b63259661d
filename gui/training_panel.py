"""The Training panel: settings, Start/Stop, progress, live curves, sample predictions, past runs.

Standalone ``QWidget``; it knows nothing of the main window. What it needs from outside:

* ``data_provider()`` -> what ``TrainConfig`` takes as its data: a ``Dataset`` object (the app's in-memory
  annotations, "use unsaved edits") or a path. Called with ``unsaved=True/False`` when it accepts a keyword.
* ``runs_root``: the folder runs are written to and listed from.

It emits ``model_activated(path)`` when a run finishes (its best model) or when the user makes a past run
active, ``training_started()`` and ``training_finished(result_or_None)``.
"""

from __future__ import annotations

import html
import inspect
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.presets import LR_SCHEDULES, PRESETS, preset

from .curves import EPOCH_SERIES, CurvesWidget, SampleStrip, metric
from .improve_ui import ImproveControls, make_job, other_model, verdict_html
from .runs import RunInfo, list_runs, read_history, read_run
from .workers import TrainThread, event_kind

LOSSES = ("bce_dice", "dice", "bce", "focal_tversky")  # as core.unet.LOSSES (not imported: no Keras at start-up)


# ------------------------------------------------------------------------------------------- core glue


def preset_values(name: str) -> dict:
    """The form's fields for preset ``name`` (from ``viaseg.core.presets``, which does not import TF)."""
    cfg = preset(name)
    return dict(image_size=int(cfg.size), epochs=int(cfg.epochs), batch_size=int(cfg.batch_size),
                learning_rate=float(cfg.learning_rate), loss=cfg.loss, augment=bool(cfg.augment.any),
                bn_momentum=float(cfg.bn_momentum), val_split=float(cfg.val_fraction),
                time_limit_min=int(round((cfg.time_limit_s or 0) / 60)), lr_schedule=cfg.lr_schedule)


def new_run_dir(root: Path, label: str = "") -> Path:
    """A fresh run folder name under ``root`` (core creates it): ``YYYYmmdd-HHMMSS-label``, unique."""
    from datetime import datetime

    base = datetime.now().strftime("%Y%m%d-%H%M%S") + (f"-{label}" if label else "")
    path, n = root / base, 2
    while path.exists():
        path, n = root / f"{base}-{n}", n + 1
    return path


def build_config(settings: dict, data: Any, runs_root: Path, overrides: dict | None = None):
    """A ``TrainConfig``: the preset, then what the form sets, then ``overrides`` (tests pass e.g.
    ``base_width``). Augmentations "off" switches every augmentation off; "on" keeps the preset's."""
    from viaseg.core.pipeline import Augment

    cfg = preset(settings.get("preset", "default"))
    cfg.dataset = data
    cfg.out_dir = new_run_dir(Path(runs_root), cfg.preset)
    cfg.size = int(settings["image_size"])
    cfg.epochs = int(settings["epochs"])
    cfg.batch_size = int(settings["batch_size"])
    cfg.learning_rate = float(settings["learning_rate"])
    cfg.loss = str(settings["loss"])
    cfg.lr_schedule = str(settings.get("lr_schedule") or cfg.lr_schedule)
    cfg.bn_momentum = float(settings["bn_momentum"])
    cfg.val_fraction = float(settings["val_split"])
    cfg.init_from = settings.get("init_from") or None
    cfg.extra_train = [str(x) for x in settings.get("extra") or []]
    minutes = float(settings.get("time_limit_min") or 0)
    cfg.time_limit_s = minutes * 60 if minutes > 0 else None
    if not settings["augment"]:
        cfg.augment = Augment.off()
    elif not cfg.augment.any:
        cfg.augment = Augment()
    for k, v in (overrides or {}).items():
        if not hasattr(cfg, k):
            raise TypeError(f"TrainConfig has no option {k!r}")
        setattr(cfg, k, v)
    return cfg


def _model_label(path: str) -> str:
    """A short name for a model file: its run folder's name for a run's model.keras, else the file name."""
    p = Path(path)
    return p.parent.name if p.name == "model.keras" and p.parent.name else p.name


def _fmt_secs(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# ---------------------------------------------------------------------------------------------- panel


class TrainingPanel(QWidget):
    model_activated = Signal(str)
    training_started = Signal()
    training_finished = Signal(object)

    def __init__(self, data_provider: Callable[..., Any] | None = None, runs_root: str | Path = "runs",
                 parent: QWidget | None = None, config_overrides: dict | None = None,
                 train_fn: Callable | None = None, train_mode: str = "process"):
        super().__init__(parent)
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
        self._t0 = 0.0
        self._improving: str | None = None  # the model an Improve run started from, while it runs
        self.last_improve: dict = {}
        self._improve_active = "new"
        self._build(Path(runs_root))
        self._apply_preset("default")

    # ------------------------------------------------------------------------------------------- layout
    def _build(self, runs_root: Path) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        tabs = self.tabs = QTabWidget()
        outer.addWidget(tabs)

        # --- "Train" tab: settings + run controls + curves
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
        box = self.settings_box = QGroupBox()
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.preset.setToolTip("default: quick, small model. research: the longer setup from the research notes.")
        self.preset.currentTextChanged.connect(self._apply_preset)
        self.image_size = QSpinBox(minimum=32, maximum=1024, singleStep=16)
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip("Images are resized to this square size (a multiple of 16).")
        self.epochs = QSpinBox(minimum=1, maximum=1000)
        self.batch_size = QSpinBox(minimum=1, maximum=256)
        self.learning_rate = QDoubleSpinBox(decimals=6, minimum=1e-6, maximum=1.0, singleStep=1e-4)
        self.loss = QComboBox()
        self.loss.addItems(LOSSES)
        self.lr_schedule = QComboBox()
        self.lr_schedule.addItems(LR_SCHEDULES)
        self.lr_schedule.setToolTip("auto: flat_cosine with a time limit, else plateau. plateau: halve the rate "
                                    "when the val Dice stops improving. cosine: anneal to 1e-5 over the time "
                                    "limit (using all of it) or else over the epochs. flat_cosine: the full rate "
                                    "for the first half, then the cosine. constant: no change.")
        self.augment = QCheckBox("flips, crops, colour jitter")
        self.bn_momentum = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=0.999, singleStep=0.01)
        self.bn_momentum.setToolTip("BatchNormalization momentum; lower (e.g. 0.9) suits very small datasets.")
        self.val_split = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.5, singleStep=0.05)
        self.val_split.setToolTip("Fraction of the training images held out for validation when the project "
                                  "has no 'val' split (a 'val' split is always used when present).")
        self.time_limit = QSpinBox(minimum=0, maximum=24 * 60)
        self.time_limit.setSuffix(" min")
        self.time_limit.setSpecialValueText("none")
        self.time_limit.setToolTip("Stop after this much training (the best model so far is kept); 0: no limit.")
        self.start_from_active = QCheckBox("the active model's weights")
        self.start_from_active.setToolTip("Fine-tune: start from the model made active in the Runs tab instead of "
                                          "random weights (its network is kept).")
        self.start_from_active.setEnabled(False)
        self.use_unsaved = QCheckBox("train on the annotations as they are in the app")
        self.use_unsaved.setChecked(True)
        self.use_unsaved.setToolTip("Off: train on the files as last saved.")
        self.extra_data: list[str] = []
        extra_row = QHBoxLayout()
        self.extra_label = QLabel("nothing else")
        self.extra_label.setWordWrap(True)
        self.extra_label.setToolTip("More annotated data trained on together with the project (for example photos "
                                    "of another style). Every photo is drawn equally often; a dataset folder with "
                                    "its own val split is also scored on it, separately.")
        add_file = QPushButton("VIA file…")
        add_file.setToolTip("Also train on the images of a VIA project file")
        add_file.clicked.connect(self._pick_extra_file)
        add_dir = QPushButton("Folder…")
        add_dir.setToolTip("Also train on a dataset folder (its train split, or the VIA file in it)")
        add_dir.clicked.connect(self._pick_extra_folder)
        self.clear_extra_btn = QPushButton("Clear")
        self.clear_extra_btn.clicked.connect(lambda: self.set_extra_data([]))
        self.clear_extra_btn.setEnabled(False)
        extra_row.addWidget(add_file)
        extra_row.addWidget(add_dir)
        extra_row.addWidget(self.clear_extra_btn)
        extra_row.addStretch(1)
        extra_box = QVBoxLayout()  # the names get the full width under the buttons
        extra_box.setContentsMargins(0, 0, 0, 0)
        extra_box.addLayout(extra_row)
        extra_box.addWidget(self.extra_label)
        form.addRow("Preset", self.preset)
        form.addRow("Image size", self.image_size)
        form.addRow("Epochs", self.epochs)
        form.addRow("Time limit", self.time_limit)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Rate schedule", self.lr_schedule)
        form.addRow("Loss", self.loss)
        form.addRow("Augmentations", self.augment)
        form.addRow("BatchNorm momentum", self.bn_momentum)
        form.addRow("Validation split", self.val_split)
        form.addRow("Start from", self.start_from_active)
        form.addRow("Use unsaved edits", self.use_unsaved)
        form.addRow("Also train on", extra_box)
        tl.addWidget(box)

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
        split = QSplitter(Qt.Orientation.Vertical)
        self.curves = CurvesWidget()
        self.samples = SampleStrip()
        split.addWidget(self.curves)
        split.addWidget(self.samples)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        tl.addWidget(split, 1)
        tabs.addTab(train_tab, "Train")

        # --- "Runs" tab
        runs_tab = QWidget()
        rl = QVBoxLayout(runs_tab)
        rrow = QHBoxLayout()
        self.runs_root_edit = QLineEdit(str(runs_root))
        self.runs_root_edit.setToolTip("Folder where runs are written and listed from.")
        self.runs_root_edit.editingFinished.connect(self.refresh_runs)
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(self._browse_runs_root)
        rrow.addWidget(QLabel("Runs folder"))
        rrow.addWidget(self.runs_root_edit, 1)
        rrow.addWidget(browse)
        rl.addLayout(rrow)
        self.runs = QTreeWidget()
        self.runs.setHeaderLabels(["run", "best val Dice", "best epoch", "active"])
        self.runs.setRootIsDecorated(False)
        self.runs.currentItemChanged.connect(self._show_run)
        self.runs.itemDoubleClicked.connect(lambda *_: self.activate_selected_run())
        rl.addWidget(self.runs, 1)
        brow = QHBoxLayout()
        self.activate_btn = QPushButton("Make active")
        self.activate_btn.clicked.connect(self.activate_selected_run)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_runs)
        brow.addWidget(self.activate_btn)
        brow.addWidget(refresh)
        rl.addLayout(brow)
        self.run_summary = QLabel("")
        self.run_summary.setWordWrap(True)
        self.run_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rl.addWidget(self.run_summary)
        self.run_curves = CurvesWidget()
        rl.addWidget(self.run_curves, 2)
        tabs.addTab(runs_tab, "Runs")
        tabs.currentChanged.connect(lambda i: self.refresh_runs() if i == 1 else None)

    def _link(self, url: str) -> None:
        if url == "viaseg:use-other":
            self.use_other_model()
        else:
            QDesktopServices.openUrl(QUrl(url))

    def show_settings(self, on: bool) -> None:
        """Expand or fold the settings form (folded while a run goes on, to give the curves room)."""
        self.settings_box.setVisible(on)
        with QSignalBlocker(self.settings_toggle):
            self.settings_toggle.setChecked(on)
        self.settings_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    @property
    def runs_root(self) -> Path:
        return Path(self.runs_root_edit.text().strip() or "runs")

    def set_runs_root(self, path: str | Path) -> None:
        self.runs_root_edit.setText(str(path))
        self.refresh_runs()

    def _browse_runs_root(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Runs folder", str(self.runs_root))
        if d:
            self.set_runs_root(d)

    # ----------------------------------------------------------------------------------------- settings
    @Slot(str)
    def _apply_preset(self, name: str) -> None:
        v = preset_values(name)
        with QSignalBlocker(self.preset):
            self.preset.setCurrentText(name)
        self.image_size.setValue(int(v["image_size"]))
        self.epochs.setValue(int(v["epochs"]))
        self.batch_size.setValue(int(v["batch_size"]))
        self.learning_rate.setValue(float(v["learning_rate"]))
        if v["loss"] in LOSSES:
            self.loss.setCurrentText(v["loss"])
        self.lr_schedule.setCurrentText(v["lr_schedule"])
        self.augment.setChecked(bool(v["augment"]))
        self.bn_momentum.setValue(float(v["bn_momentum"]))
        self.val_split.setValue(float(v["val_split"] or 0.0))
        self.time_limit.setValue(int(v["time_limit_min"]))

    # ------------------------------------------------------------------------------------- more data
    def add_extra_data(self, path: str | Path) -> bool:
        """Also train on ``path`` (a VIA file or dataset folder) when it holds annotated images; else say why
        (naming the file) and leave the list as it was."""
        from viaseg.core.dataset import load_dataset
        from viaseg.core.errors import ViasegError

        path = str(path)
        try:
            ds = load_dataset(path)
            n = sum(len(sp.entries) for sp in ds.splits.values() if sp.labeled)
        except (ViasegError, OSError) as exc:
            self._set_message(f"Cannot also train on {path}: {exc}", error=True)
            return False
        if n == 0:
            self._set_message(f"Cannot also train on {path}: it has no annotated images.", error=True)
            return False
        if path not in self.extra_data:
            self.set_extra_data([*self.extra_data, path])
        self._set_message(f"Also training on {path} ({n} annotated images).")
        return True

    def set_extra_data(self, paths: list[str]) -> None:
        self.extra_data = list(paths)
        # the folder and its parent: a split folder's own name ("train") says little
        self.extra_label.setText("; ".join("/".join(Path(p).parts[-2:]) or p for p in paths) if paths
                                 else "nothing else")
        self.extra_label.setToolTip("\n".join(paths) or self.extra_label.toolTip())
        self.clear_extra_btn.setEnabled(bool(paths))

    def _pick_extra_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Also train on a VIA file", "", "VIA project (*.json *.csv)")
        if path:
            self.add_extra_data(path)

    def _pick_extra_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Also train on a dataset folder")
        if path:
            self.add_extra_data(path)

    def settings(self) -> dict:
        size = self.image_size.value()
        return dict(preset=self.preset.currentText(), image_size=size - size % 16 or 16,
                    epochs=self.epochs.value(), batch_size=self.batch_size.value(),
                    learning_rate=self.learning_rate.value(), loss=self.loss.currentText(),
                    lr_schedule=self.lr_schedule.currentText(),
                    augment=self.augment.isChecked(), bn_momentum=self.bn_momentum.value(),
                    val_split=self.val_split.value(), time_limit_min=self.time_limit.value(),
                    init_from=self.active_model if self.start_from_active.isChecked() and self.active_model
                    else None, extra=list(self.extra_data))

    def _data(self) -> Any:
        if self.data_provider is None:
            raise ValueError("No project is open: open a VIA project or dataset folder first.")
        unsaved = self.use_unsaved.isChecked()
        try:
            params = inspect.signature(self.data_provider).parameters
        except (TypeError, ValueError):
            params = {}
        if "unsaved" in params:
            return self.data_provider(unsaved=unsaved)
        return self.data_provider()

    # ------------------------------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    @Slot()
    def start(self) -> bool:
        """Start a run in the background; False (with a message) when one is running or set-up fails."""
        if self.thread is not None:
            self._set_message("A training run is already in progress; stop it first.", error=True)
            return False
        try:
            data = self._data()
            config = build_config(self.settings(), data, self.runs_root, self.config_overrides)
        except Exception as exc:  # noqa: BLE001 - any set-up problem becomes a message
            self._fail(f"Cannot start training: {exc}")
            return False
        self._improving = None
        return self._launch(config, config)

    @Slot()
    def start_improve(self) -> bool:
        """*Improve model*: fine-tune the active model for the chosen budget on the current annotations, then
        keep whichever of the two scores better on held-out photos (see ``core.loop``)."""
        if self.thread is not None:
            self._set_message("A training run is already in progress; stop it first.", error=True)
            return False
        if not self.active_model or not Path(self.active_model).is_file():
            self._fail("Cannot improve: no active model (train one, or make a run active in the Runs tab).")
            return False
        try:
            data = self._data()
            settings = dict(self.settings(), init_from=self.active_model,
                            time_limit_min=float(self.improve.budget.value()))
            config = build_config(settings, data, self.runs_root, self.config_overrides)
            config.out_dir = new_run_dir(self.runs_root, "improve")
        except Exception as exc:  # noqa: BLE001 - any set-up problem becomes a message
            self._fail(f"Cannot improve the model: {exc}")
            return False
        self._improving = self.active_model
        return self._launch(make_job(config), config)

    def _launch(self, job: Any, config: Any) -> bool:
        self.curves.begin_run(int(getattr(config, "epochs", self.epochs.value())), str(getattr(config, "loss", "")))
        self.samples.clear()
        self.result_label.setText("")
        self.device_label.setText("")
        self.device_label.setToolTip("")
        self.last_result, self.last_error = None, None
        self._epochs_total = int(getattr(config, "epochs", self.epochs.value()))
        self._time_limit = getattr(config, "time_limit_s", None)
        self._steps_per_epoch = None
        self._t0 = time.monotonic()
        self.thread = TrainThread(job, train_fn=None if job is not config else self._train_fn, mode=self.train_mode)
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
            self.stop_btn.setEnabled(False)
            self._set_message("Stopping after the current batch…")

    def stop_and_wait(self, timeout_ms: int = 120000) -> bool:
        """Stop a run and block until its thread ended (used when the window closes)."""
        th = self.thread
        if th is None:
            return True
        th.stop()
        ok = th.wait(timeout_ms)
        if ok:
            if th.terminal is not None:  # its queued events will not be delivered to us any more
                self._handle(th.terminal)
            self._on_thread_finished()
        return ok

    @Slot(object)
    def _on_event(self, ev: Any) -> None:
        sender = self.sender()
        if sender is not None and sender is not self.thread:
            return  # a late event of a run already wound up (stop_and_wait)
        self._handle(ev)

    def _handle(self, ev: Any) -> None:
        kind = event_kind(ev)
        if kind == "Started":
            self._on_started(ev)
        elif kind == "BatchEnd":
            self._on_batch(ev)
        elif kind == "EpochEnd":
            self._on_epoch(ev)
        elif kind == "SamplePredictions":
            ep = int(getattr(ev, "epoch", 0))
            self.samples.set_samples(ep, ev.images, ev.true_masks, ev.pred_masks, epoch_label=ep + 1)
        elif kind == "Finished":
            self._on_finished(ev)
        elif kind == "Failed":
            self._fail(f"Training failed: {getattr(ev, 'message', ev)}")

    def _on_started(self, ev: Any) -> None:
        self._epochs_total = int(getattr(ev, "epochs", 0) or self._epochs_total)
        spe = getattr(ev, "steps_per_epoch", None)
        self._steps_per_epoch = int(spe) if spe else None
        n_train, n_val = getattr(ev, "n_train", None), getattr(ev, "n_val", None)
        extra = f" on {n_train} training / {n_val} validation images" if n_train is not None else ""
        val_src = getattr(ev, "val_source", "")
        extra += f" (validation: {val_src})" if val_src else ""
        skipped = list(getattr(ev, "skipped", []) or [])
        msg = f"Training{extra}…"
        if skipped:
            msg += f"\n{len(skipped)} image(s) left out: " + "; ".join(skipped[:3]) + (" …" if len(skipped) > 3 else "")
        for note in getattr(ev, "notes", None) or []:
            msg += f"\n{note}"
        self._set_message(msg)
        device, precision = getattr(ev, "device", "") or "", getattr(ev, "precision", "") or ""
        if device:
            self.device_label.setText(f"Device: {device}" + (f" · {precision}" if precision else ""))
            self.device_label.setToolTip("What this run trains on; set up a GPU machine with ./setup.sh "
                                         "(docs/gpu.md)")
            self.device_label.setVisible(True)
        self._t0 = time.monotonic()

    def _on_batch(self, ev: Any) -> None:
        """``epoch`` and ``step`` (batch within the epoch) count from 0, as core reports them."""
        epoch, step = int(getattr(ev, "epoch", 0)), int(ev.step)
        spe = int(getattr(ev, "steps", 0) or self._steps_per_epoch or 0)
        if spe:
            self._steps_per_epoch = spe
        x = epoch + (step + 1) / spe if spe else float(epoch)
        self.curves.add_batch(x, getattr(ev, "loss", None), getattr(ev, "dice", None))
        total = max(1, self._epochs_total)
        if spe:
            frac = (epoch * spe + step + 1) / (spe * total)
            batch_txt = f"batch {step + 1}/{spe}"
        else:
            frac, batch_txt = epoch / total, f"batch {step + 1}"
        self._show_progress(frac, epoch, batch_txt)

    def _on_epoch(self, ev: Any) -> None:
        epoch = int(ev.epoch)
        metrics = dict(getattr(ev, "metrics", {}) or {})
        self._epochs_total = int(getattr(ev, "epochs", 0) or self._epochs_total)
        self.curves.add_epoch(epoch + 1, metrics)
        self._show_progress((epoch + 1) / max(1, self._epochs_total), epoch, "")
        parts = [f"Epoch {epoch + 1}"]
        for name in EPOCH_SERIES:
            v = metric(metrics, name)
            if v is not None:
                parts.append(f"{name.replace('_', ' ')} {v:.3f}")
        if any(isinstance(v, float) and math.isnan(v) for v in metrics.values()):
            parts.append("(NaN!)")
        self._set_message(" · ".join(parts))

    def _show_progress(self, frac: float, epoch: int, batch_txt: str) -> None:
        elapsed = time.monotonic() - self._t0
        if self._time_limit:  # the run ends at its time limit or its last epoch, whichever comes first
            frac = max(frac, elapsed / self._time_limit)
        frac = max(0.0, min(1.0, frac))
        self.progress.setValue(int(frac * 1000))
        left = f" · {_fmt_secs(elapsed * (1 - frac) / frac)} left" if frac > 0.01 else ""
        if self._time_limit:  # progress is time: the epoch count is not what ends the run
            txt = f"{_fmt_secs(elapsed)} of {_fmt_secs(self._time_limit)} · epoch {epoch + 1}"
        else:
            txt = f"epoch {epoch + 1}/{self._epochs_total}"
        if batch_txt:
            txt += f" · {batch_txt}"
        self.progress.setFormat(txt + left)

    def _on_finished(self, ev: Any) -> None:
        best_epoch = getattr(ev, "best_epoch", None)
        best = dict(getattr(ev, "best_metrics", {}) or {})
        run_dir = getattr(ev, "run_dir", None)
        model_path = getattr(ev, "model_path", None)
        self.last_result = ev
        vd = metric(best, "val_dice")
        shown_epoch = best_epoch + 1 if isinstance(best_epoch, int) and best_epoch >= 0 else "–"
        run = read_run(Path(run_dir)) if run_dir else None  # read once: the summary the run just wrote
        kept_last = bool(run and run.summary.get("kept") == "last")
        txt = f"<b>Done.</b> {'Kept' if kept_last else 'Best'} epoch {shown_epoch}"
        full = run.summary.get("val_dice") if run else None
        if isinstance(full, (int, float)):  # what the Runs tab and `viaseg evaluate` report
            txt += f", val Dice {full:.3f} (full resolution)"
        elif vd is not None:
            txt += f", val Dice {vd:.3f} (soft, at the training size)"
        if run_dir:
            url = QUrl.fromLocalFile(str(Path(run_dir).resolve())).toString()
            txt += f" · run folder: <a href='{url}'>{Path(run_dir).name}</a>"
        self.result_label.setText(txt)
        self.progress.setValue(1000)
        self.progress.setFormat("finished")
        stopped = self.thread is not None and self.thread.stop_requested
        self._set_message("Stopped; the best model so far was kept." if stopped else "Training finished.")
        if self._improving:
            self._set_message("Fine-tuning finished; scoring the previous model on the same held-out photos…")
        elif model_path and Path(model_path).is_file():
            self.set_active_model(str(model_path))
        self.refresh_runs()

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

    def _improve_done(self, result: Any) -> None:
        """Activate the better of the two models (the new one when not worse) and say so."""
        self._improving = None
        cmp = dict(getattr(result, "comparison", None) or {})
        if result is None or not getattr(result, "ok", False):
            if result is not None and getattr(result, "error", None) and not self.last_error:
                self._fail(f"Improve model failed: {result.error}")
            return
        self.last_improve = cmp
        self.last_improve_result = result
        keep = cmp.get("keep", "new")
        if keep == "new" and getattr(result, "model_path", None):
            self.set_active_model(str(result.model_path))
        self._improve_active = keep
        self._improve_epochs = (getattr(result, "summary", None) or {}).get("epochs_run")
        self.result_label.setText(verdict_html(cmp, keep, self._improve_epochs))
        self._set_message("Improve model finished.")
        self.refresh_runs()

    def use_other_model(self) -> bool:
        """The verdict's link: switch between the previous and the improved model."""
        cmp = getattr(self, "last_improve", None) or {}
        active = getattr(self, "_improve_active", "new")
        path = other_model(cmp, active)
        if not path:
            self._fail("That model file is no longer there.")
            return False
        self._improve_active = "old" if active == "new" else "new"
        self.set_active_model(path)
        self.result_label.setText(verdict_html(cmp, self._improve_active, getattr(self, "_improve_epochs", None)))
        return True

    def _fail(self, text: str) -> None:
        self.last_error = text
        self._set_message(text, error=True)
        self.progress.setFormat("failed")

    def _set_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020; font-weight: bold;" if error else "")
        self.message.setText(text)

    # -------------------------------------------------------------------------------------------- runs
    def set_active_model(self, path: str, announce: bool = True) -> None:
        """Make ``path`` the active model (announced through ``model_activated`` unless ``announce`` is
        false, e.g. when restoring the last session's)."""
        self.active_model = str(path)
        self.start_from_active.setEnabled(True)
        if self.thread is None:
            self.improve.set_model(self.active_model)
        self.start_from_active.setText(f"the active model's weights ({_model_label(self.active_model)})")
        if announce:
            self.model_activated.emit(self.active_model)
        self._mark_active()

    @Slot()
    def refresh_runs(self) -> None:
        cur = self.runs.currentItem()
        keep = cur.data(0, Qt.ItemDataRole.UserRole) if cur else None
        self.runs.clear()
        for run in list_runs(self.runs_root):
            vd = run.best_val_dice
            be = run.summary.get("best_epoch", "")
            it = QTreeWidgetItem([run.folder.name, "" if vd is None else f"{vd:.3f}", str(be), ""])
            it.setData(0, Qt.ItemDataRole.UserRole, str(run.folder))
            it.setToolTip(0, str(run.folder))
            self.runs.addTopLevelItem(it)
            if keep == str(run.folder):
                self.runs.setCurrentItem(it)
        self._mark_active()
        for c in range(4):
            self.runs.resizeColumnToContents(c)

    def _mark_active(self) -> None:
        for i in range(self.runs.topLevelItemCount()):
            it = self.runs.topLevelItem(i)
            run = read_run(Path(it.data(0, Qt.ItemDataRole.UserRole)))
            active = bool(run and run.model_path and self.active_model
                          and Path(run.model_path).resolve() == Path(self.active_model).resolve())
            it.setText(3, "●" if active else "")

    def _selected_run(self) -> RunInfo | None:
        it = self.runs.currentItem()
        return read_run(Path(it.data(0, Qt.ItemDataRole.UserRole))) if it else None

    def _show_run(self, *_):
        run = self._selected_run()
        if run is None:
            self.run_summary.setText("")
            return
        s = run.summary
        lines = [f"<b>{run.folder.name}</b>"]
        for key in ("best_epoch", "epochs_run", "stop_reason", "n_train", "n_val", "val_source", "val_dice",
                    "train_seconds", "evaluated_on", "device", "precision"):
            if key in s:
                v = f"{s[key]:.3f}" if isinstance(s[key], float) else s[key]
                lines.append(f"{key.replace('_', ' ')}: {v}")
        if s.get("init_from"):
            lines.append(f"started from: {html.escape(str(s['init_from']))}")
        for row in s.get("val_sets") or []:
            if isinstance(row, dict) and isinstance(row.get("mean_dice"), (int, float)):
                lines.append(f"scored on {html.escape(str(row.get('name')))} ({row.get('n_images')} images): "
                             f"mean Dice {row['mean_dice']:.3f}, global {row.get('global_dice') or 0:.3f}")
        if isinstance(s.get("best_metrics"), dict):
            lines.append(", ".join(f"{k} {v:.3f}" for k, v in s["best_metrics"].items()
                                   if isinstance(v, (int, float))))
        lines.append(f"model: {run.model_path.name if run.model_path else 'none'}")
        self.run_summary.setText("<br>".join(lines))
        self.run_curves.set_history(read_history(run.folder))

    @Slot()
    def activate_selected_run(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        if run.model_path is None:
            self.run_summary.setText(f"{run.folder}: this run has no saved model to activate.")
            return
        self.set_active_model(str(run.model_path))
