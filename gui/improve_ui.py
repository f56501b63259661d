"""*Improve model* in the training panel: the button, its budget, and the old-versus-new verdict.

The work is ``viaseg.core.ml.loop.ImproveJob`` in the training process (the panel's ``TrainThread``); this module
builds the job from the panel's settings and shows its result: both models' scores on the same held-out
images, which one is active, and a link to use the other one instead.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSpinBox, QWidget
from viaseg.core.ml.ensemble import fine_tune_problem
from viaseg.core.ml.improve_recipe import follow_model_recipe

from .training_settings import _model_label, build_config, new_run_dir

if TYPE_CHECKING:
    from viaseg.core.ml.loop import ImproveResult


class ImproveControls(QWidget):
    """``Improve model`` + its time budget (minutes, default 2)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton("Improve model")
        self.button.setToolTip(
            "Fine-tune the active model on the annotations as they are now (unsaved edits "
            "included), photos added or edited since it was trained drawn 3x as often; then "
            "score it against the active model on held-out photos and keep the better one."
        )
        self.button.setEnabled(False)
        self.budget = QSpinBox(minimum=1, maximum=120)
        self.budget.setValue(2)
        self.budget.setSuffix(" min")
        self.budget.setToolTip("How long Improve model trains")
        row.addWidget(self.button)
        row.addWidget(self.budget)
        row.addStretch(1)

    def set_model(self, path: str | None) -> None:
        self.button.setEnabled(bool(path))


def make_job(config: Any, emphasis: int = 3):
    """The ``ImproveJob`` for a ``TrainConfig`` that starts from the active model (no TensorFlow here)."""
    from viaseg.core.ml.loop import ImproveJob

    return ImproveJob(config, emphasis=emphasis)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "–"


def verdict_html(cmp: dict, active: str, epochs: int | None = None, elsewhere: str = "") -> str:
    """What the user reads after *Improve model*: both scores on the same photos, which is active, why.
    ``active``: "new", "old", or "elsewhere" (``elsewhere`` names the model the user made active meanwhile)."""
    if not cmp:
        return ""
    old, new = cmp.get("old_mean_dice"), cmp.get("new_mean_dice")
    n = len(cmp.get("held_out") or [])
    kept_new = active == "new"
    if active == "elsewhere":
        head = (
            f"<b>{html.escape(elsewhere or 'The model you chose')} stays active</b>: it was made active while "
            "Improve model ran, so neither of these replaced it."
        )
    elif kept_new:
        head = "<b>Improved model is active.</b>"
    else:
        head = "<b>The previous model stays active</b> (it scored higher)."
    lines = [
        head,
        f"Mean Dice on {n} held-out photo(s): previous {_fmt(old)} → new {_fmt(new)}"
        f" ({html.escape(str(cmp.get('held_out_source', '')))}).",
        f"{len(cmp.get('changed') or [])} photo(s) added or edited since the previous model were "
        f"drawn {cmp.get('emphasis', 3)}x as often.",
    ]
    if isinstance(epochs, int):
        lines.append(
            f"Fine-tuned for {epochs} epoch(s)."
            + (
                " A fine-tuning this short often scores lower at first (the optimizer starts afresh): give it more "
                "time."
                if not kept_new and epochs < 4
                else ""
            )
        )
    if cmp.get("threshold_how"):
        was = cmp.get("old_threshold")
        lines.append(
            "New model's "
            + html.escape(str(cmp["threshold_how"]), quote=False)
            + (
                f"; the previous model's: {was:.2f}."
                if isinstance(was, (int, float)) and was != cmp.get("new_threshold")
                else "."
            )
        )
    if not cmp.get("fair", True):
        lines.append("Note: the previous model may have trained on these photos, so its score is optimistic.")
    if not cmp.get("old_known", True):
        lines.append("The previous model did not record what it trained on: no photo counted as new.")
    if active == "elsewhere":
        lines.append(
            "<a href='viaseg:use-new'>Use the new model</a> · <a href='viaseg:use-old'>Use the previous model</a>"
        )
    else:
        other = "the previous model" if kept_new else "the new model anyway"
        lines.append(f"<a href='viaseg:use-other'>Use {other}</a>")
    return "<br>".join(lines)


def other_model(cmp: dict, active: str) -> str | None:
    """The model file the *use the other one* link switches to ("new" or "old" active); for ``active`` "use-new"
    / "use-old", that one."""
    want = {"new": "old", "old": "new", "use-new": "new", "use-old": "old"}.get(active, "new")
    path = cmp.get(f"{want}_model")
    return str(path) if path and Path(path).is_file() else None


def _same_file(a: str | None, b: str | None) -> bool:
    return bool(a and b) and Path(str(a)).resolve() == Path(str(b)).resolve()


class ImproveMixin:
    """``TrainingPanel``'s *Improve model*: start it, activate the better model, switch to the other one."""

    @Slot()
    def start_improve(self) -> bool:
        """*Improve model*: fine-tune the active model for the chosen budget on the current annotations, then
        keep whichever of the two scores better on held-out photos (see ``core.loop``)."""
        if self._refuse_if_busy():
            return False
        if not self.active_model or not Path(self.active_model).is_file():
            self._fail("Cannot improve: no active model (train one, or make a run active in the Runs tab).")
            return False
        if problem := fine_tune_problem(self.active_model):
            self._fail(f"Cannot improve: {problem}")
            return False
        try:
            data = self._data()
            settings = dict(
                self.settings(),
                init_from=self.active_model,
                time_limit_min=float(self.improve.budget.value()),
                ensemble=1,  # fine-tunes the one active network, whatever the form asks of a new run
            )
            config = build_config(settings, data, self.runs_root, self.config_overrides)
            # the model's own size, batch, rate, loss and augmentation, not the form's (a new run's)
            config, note = follow_model_recipe(config)
        except Exception as exc:  # any set-up problem becomes a message
            self._fail(f"Cannot improve the model: {exc}")
            return False
        from viaseg.core.ml.loop import learn_problem

        problem = learn_problem(config.dataset, "improve")
        if problem:
            self._fail(problem)
            return False
        config.out_dir = new_run_dir(self.runs_root, "improve")
        self._improving = self.active_model
        return self._launch(make_job(config), config, (note,) if note else ())

    def _improve_done(self, result: ImproveResult | None) -> None:
        """Activate the better of the two models (the new one when not worse) and say so."""
        started, self._improving = self._improving, None
        if result is None or not result.ok:
            if result is not None and result.error and not self.last_error:
                self._fail(f"Improve model failed: {result.error}")
            return
        cmp = dict(result.comparison)
        self.last_improve = cmp
        self.last_improve_result = result
        keep = cmp.get("keep", "new")
        self._improve_epochs = result.summary.get("epochs_run")
        if started and self.active_model and not _same_file(self.active_model, started):
            # another model was made active meanwhile: the user's choice stands, both others a click away
            self._improve_active = "elsewhere"
            self.result_label.setText(self._verdict())
        else:
            if keep == "new" and result.model_path:
                self.set_active_model(str(result.model_path))
            self._improve_active = keep
            self.result_label.setText(self._verdict())
        self._set_message(
            "Improve model stopped early: the model so far was judged against the old one."
            if self.stop_asked
            else "Improve model finished."
        )
        self.refresh_runs()

    def _verdict(self) -> str:
        elsewhere = _model_label(self.active_model) if self.active_model else ""
        return verdict_html(self.last_improve or {}, self._improve_active, self._improve_epochs, elsewhere)

    def use_other_model(self, which: str = "") -> bool:
        """The verdict's link: switch between the previous and the improved model (``which`` "new" / "old": that
        one, after another model was made active meanwhile)."""
        cmp = self.last_improve or {}
        active = self._improve_active
        path = other_model(cmp, f"use-{which}" if which else active)
        if not path:
            self._fail("That model file is no longer there.")
            return False
        if not self.set_active_model(path):
            return False
        self._improve_active = which or ("old" if active == "new" else "new")
        self.result_label.setText(self._verdict())
        return True
