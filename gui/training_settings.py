"""The Training panel's settings form: presets, the fields a run is configured with, more data to train on,
and the ``TrainConfig`` built from them (:func:`build_config`); :class:`SettingsMixin` is a base class of
``TrainingPanel``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)
from viaseg.core.ml.presets import LOSSES, LR_SCHEDULES, PRESETS, preset

ENCODER_LABELS = {
    "efficientnet_lite0": "EfficientNet-Lite0 (ImageNet-trained)",
    "mobilenet_v2": "MobileNetV2 (ImageNet-trained)",
    "xception": "Xception-style (from scratch)",
}

# ------------------------------------------------------------------------------------------- core glue


def preset_values(name: str) -> dict:
    """The form's fields for preset ``name`` (from ``viaseg.core.ml.presets``, which does not import TF)."""
    cfg = preset(name)
    return dict(
        image_size=int(cfg.size),
        epochs=int(cfg.epochs),
        batch_size=int(cfg.batch_size),
        learning_rate=float(cfg.learning_rate),
        loss=cfg.loss,
        augment=bool(cfg.augment.any),
        bn_momentum=float(cfg.bn_momentum),
        val_split=float(cfg.val_fraction),
        time_limit_min=int(round((cfg.time_limit_s or 0) / 60)),
        max_steps=int(cfg.max_steps),
        lr_schedule=cfg.lr_schedule,
        encoder=cfg.encoder,
        ensemble=int(cfg.ensemble),
    )


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
    from viaseg.core.ml.pipeline import Augment

    cfg = preset(settings.get("preset", "default"))
    cfg.dataset = data
    cfg.out_dir = new_run_dir(Path(runs_root), cfg.preset)
    cfg.encoder = str(settings.get("encoder") or cfg.encoder)
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
    cfg.max_steps = int(settings.get("max_steps", cfg.max_steps) or 0)
    cfg.ensemble = int(settings.get("ensemble") or 1)
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


class SettingsMixin:
    """``TrainingPanel``'s settings form (folded while a run goes on) and what it reads from it."""

    def _build_settings(self, tl: QVBoxLayout) -> None:
        """The settings form, added to the Train tab's layout ``tl``."""
        box = self.settings_box = QGroupBox()
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._make_model_fields()
        self._make_data_fields()
        extra_box = self._build_extra_data()
        form.addRow("Preset", self.preset)
        form.addRow("Network", self.encoder)
        form.addRow("Image size", self.image_size)
        form.addRow("Epochs", self.epochs)
        form.addRow("Time limit", self.time_limit)
        form.addRow("Steps at most", self.max_steps)
        form.addRow("Networks averaged", self.ensemble)
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

    def _make_model_fields(self) -> None:
        """The fields of the preset's recipe (a preset sets them all, see :meth:`_apply_preset`)."""
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.preset.setToolTip(
            "default: quick, small model. research: the longer setup from the research notes."
        )
        self.preset.currentTextChanged.connect(self._apply_preset)
        self.encoder = QComboBox()
        for key, text in ENCODER_LABELS.items():
            self.encoder.addItem(text, key)
        self.encoder.setToolTip(
            "The U-Net's encoder. EfficientNet-Lite0 (the default) and MobileNetV2 start from ImageNet weights "
            "that ship with viaseg (no download): the better choice for a few hundred photos or fewer; "
            "EfficientNet-Lite0 generalizes better at the same speed. Xception-style: the research project's "
            "encoder, trained from random weights. Image sizes round to 32 px for the ImageNet encoders."
        )
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
        self.lr_schedule.setToolTip(
            "auto: flat_cosine with a time limit, else plateau. plateau: halve the rate "
            "when the val Dice stops improving. cosine: anneal to 1e-5 over the time "
            "limit (using all of it) or else over the epochs. flat_cosine: the full rate "
            "for the first half, then the cosine. constant: no change."
        )
        self.augment = QCheckBox("flips, crops, colour jitter")
        self.bn_momentum = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=0.999, singleStep=0.01)
        self.bn_momentum.setToolTip(
            "BatchNormalization momentum; lower (e.g. 0.9) suits very small datasets."
        )
        self.val_split = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.5, singleStep=0.05)
        self.val_split.setToolTip(
            "Fraction of the training images held out for validation when the project "
            "has no 'val' split (a 'val' split is always used when present)."
        )
        self.time_limit = QSpinBox(minimum=0, maximum=24 * 60)
        self.time_limit.setSuffix(" min")
        self.time_limit.setSpecialValueText("none")
        self.time_limit.setToolTip(
            "Stop after this much training (the best model so far is kept); 0: no limit."
        )
        self.max_steps = QSpinBox(minimum=0, maximum=1_000_000, singleStep=100)
        self.max_steps.setSpecialValueText("no limit")
        self.max_steps.setToolTip(
            "With a time limit, the run also ends after this many training steps (or 40 passes over the "
            "photos, if more), its learning rate following whichever of the two is further along: a fast "
            "computer trains the recipe as long as it was chosen at, not as long as the clock allows; out of "
            "fold the same quality as 1600 steps in 37 % less time (viaseg train --max-steps; "
            "docs/RESULTS.md). 0: the time limit alone."
        )
        # the step budget bounds a time-limited run only (core/ml/train_budget.py): greyed out without a limit
        self.time_limit.valueChanged.connect(lambda minutes: self.max_steps.setEnabled(minutes > 0))
        self.max_steps.setEnabled(False)  # the form opens with no time limit
        self.ensemble = QSpinBox(minimum=1, maximum=4)
        self.ensemble.setSuffix(" networks")
        self.ensemble.setSpecialValueText("1 network")  # the minimum, shown without the plural
        self.ensemble.setToolTip(
            "Train this many networks one after another, each for its share of the time limit and with its "
            "own seed, and save one model that averages them (viaseg train --ensemble). Out of fold two "
            "5-minute networks beat one 10-minute network by about 0.02 mean Dice (docs/RESULTS.md), but "
            "predicting takes that many times as long. A model of several networks cannot be fine-tuned "
            "(Start from, Improve model)."
        )

    def _make_data_fields(self) -> None:
        """What a run starts from and which annotations it reads."""
        self.start_from_active = QCheckBox("the active model's weights")
        self.start_from_active.setToolTip(
            "Fine-tune: start from the model made active in the Runs tab instead of "
            "random weights (its network is kept)."
        )
        self.start_from_active.setEnabled(False)
        self.use_unsaved = QCheckBox("train on the annotations as they are in the app")
        self.use_unsaved.setChecked(True)
        self.use_unsaved.setToolTip("Off: train on the files as last saved.")

    def _build_extra_data(self) -> QVBoxLayout:
        """More data to train on: its buttons, with the chosen files named under them."""
        self.extra_data: list[str] = []
        extra_row = QHBoxLayout()
        self.extra_label = QLabel("nothing else")
        self.extra_label.setWordWrap(True)
        self.extra_label.setToolTip(
            "More annotated data trained on together with the project (for example photos "
            "of another style). Every photo is drawn equally often; a dataset folder with "
            "its own val split is also scored on it, separately."
        )
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
        return extra_box

    def show_settings(self, on: bool) -> None:
        """Expand or fold the settings form (folded while a run goes on, to give the curves room)."""
        self.settings_box.setVisible(on)
        with QSignalBlocker(self.settings_toggle):
            self.settings_toggle.setChecked(on)
        self.settings_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    # ----------------------------------------------------------------------------------------- settings
    @Slot(str)
    def _apply_preset(self, name: str) -> None:
        v = preset_values(name)
        with QSignalBlocker(self.preset):
            self.preset.setCurrentText(name)
        self.encoder.setCurrentIndex(max(0, self.encoder.findData(v["encoder"])))
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
        self.max_steps.setValue(int(v["max_steps"]))
        self.ensemble.setValue(int(v["ensemble"]))

    # ------------------------------------------------------------------------------------- more data
    def add_extra_data(self, path: str | Path) -> bool:
        """Also train on ``path`` (a VIA file or dataset folder) when it holds annotated images; else say why
        (naming the file) and leave the list as it was."""
        from viaseg.core.annotation.dataset import load_dataset
        from viaseg.core.base.errors import ViasegError

        path = str(path)
        try:
            ds = load_dataset(path)
            annotated = [e for sp in ds.splits.values() if sp.labeled for e in sp.entries if e.regions]
            missing = [e for e in annotated if not e.path.is_file()]
        except (ViasegError, OSError) as exc:
            self._set_message(f"Cannot also train on {path}: {exc}", error=True)
            return False
        if not annotated:
            self._set_message(f"Cannot also train on {path}: it has no annotated images.", error=True)
            return False
        if len(missing) == len(annotated):  # the run trained on none of them, and said so nowhere
            self._set_message(
                f"Cannot also train on {path}: none of its {len(annotated)} annotated photos is on disk (e.g. "
                f"{missing[0].path}).",
                error=True,
            )
            return False
        if path not in self.extra_data:
            self.set_extra_data([*self.extra_data, path])
        gone = f"; {len(missing)} of them are not on disk and are left out" if missing else ""
        self._set_message(f"Also training on {path} ({len(annotated)} annotated images{gone}).")
        return True

    def set_extra_data(self, paths: list[str]) -> None:
        self.extra_data = list(paths)
        # the folder and its parent: a split folder's own name ("train") says little
        self.extra_label.setText(
            "; ".join("/".join(Path(p).parts[-2:]) or p for p in paths) if paths else "nothing else"
        )
        self.extra_label.setToolTip("\n".join(paths) or self.extra_label.toolTip())
        self.clear_extra_btn.setEnabled(bool(paths))

    def _pick_extra_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Also train on a VIA file", "", "VIA project (*.json *.csv)"
        )
        if path:
            self.add_extra_data(path)

    def _pick_extra_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Also train on a dataset folder")
        if path:
            self.add_extra_data(path)

    def settings(self) -> dict:
        size = self.image_size.value()
        encoder = self.encoder.currentData()
        step = 16 if encoder == "xception" else 32  # the network halves the size five or four times
        return dict(
            preset=self.preset.currentText(),
            encoder=encoder,
            image_size=size - size % step or step,
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            learning_rate=self.learning_rate.value(),
            loss=self.loss.currentText(),
            lr_schedule=self.lr_schedule.currentText(),
            augment=self.augment.isChecked(),
            bn_momentum=self.bn_momentum.value(),
            val_split=self.val_split.value(),
            time_limit_min=self.time_limit.value(),
            max_steps=self.max_steps.value(),
            ensemble=self.ensemble.value(),
            init_from=self.active_model if self.start_from_active.isChecked() and self.active_model else None,
            extra=list(self.extra_data),
        )

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
