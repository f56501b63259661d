"""*Improve model* in the training panel: the button, its budget, and the old-versus-new verdict.

The work is ``viaseg.core.loop.ImproveJob`` in the training process (the panel's ``TrainThread``); this module
builds the job from the panel's settings and shows its result: both models' scores on the same held-out
images, which one is active, and a link to use the other one instead.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSpinBox, QWidget


class ImproveControls(QWidget):
    """``Improve model`` + its time budget (minutes, default 2)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton("Improve model")
        self.button.setToolTip("Fine-tune the active model on the annotations as they are now (unsaved edits "
                               "included), photos added or edited since it was trained drawn 3x as often; then "
                               "score it against the active model on held-out photos and keep the better one.")
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
    from viaseg.core.loop import ImproveJob

    return ImproveJob(config, emphasis=emphasis)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "–"


def verdict_html(cmp: dict, active: str, epochs: int | None = None) -> str:
    """What the user reads after *Improve model*: both scores on the same photos, which is active, why."""
    if not cmp:
        return ""
    old, new = cmp.get("old_mean_dice"), cmp.get("new_mean_dice")
    n = len(cmp.get("held_out") or [])
    kept_new = active == "new"
    head = "<b>Improved model is active.</b>" if kept_new else "<b>The previous model stays active</b> (it scored higher)."
    lines = [head,
             f"Mean Dice on {n} held-out photo(s): previous {_fmt(old)} → new {_fmt(new)}"
             f" ({html.escape(str(cmp.get('held_out_source', '')))}).",
             f"{len(cmp.get('changed') or [])} photo(s) added or edited since the previous model were "
             f"drawn {cmp.get('emphasis', 3)}x as often."]
    if isinstance(epochs, int):
        lines.append(f"Fine-tuned for {epochs} epoch(s)." + (
            " A fine-tuning this short often scores lower at first (the optimizer starts afresh): give it more "
            "time." if not kept_new and epochs < 4 else ""))
    if not cmp.get("fair", True):
        lines.append("Note: the previous model may have trained on these photos, so its score is optimistic.")
    if not cmp.get("old_known", True):
        lines.append("The previous model did not record what it trained on: no photo counted as new.")
    other = "the previous model" if kept_new else "the new model anyway"
    lines.append(f"<a href='viaseg:use-other'>Use {other}</a>")
    return "<br>".join(lines)


def other_model(cmp: dict, active: str) -> str | None:
    """The model file the *use the other one* link switches to."""
    path = cmp.get("old_model") if active == "new" else cmp.get("new_model")
    return str(path) if path and Path(path).is_file() else None
