"""The *Check labels* dock's budget: how long each fold's model trains (epochs or seconds), and the estimate of
the whole check shown before it starts. A mixin of :class:`.label_check_panel.LabelCheckPanel`, which builds the
widgets (``folds``, ``per_fold``, ``unit``, ``estimate``)."""

from __future__ import annotations

from .training_panel import _fmt_secs

OVERHEAD_S = 25  # per fold on a CPU, roughly: start-up, data, predicting the held-out photos
# how each fold's training is bounded, and the budget the dock starts from in each unit: 120 s (about 30 epochs
# a fold on a 2-core CPU); 5 folds of 15 epochs found about as many injected errors in about half the time
# (+0.02 over six seeds: fewer on three, more on three; docs/RESULTS.md, thirty-first session)
UNITS = ("epochs", "seconds")
DEFAULT_UNIT = "seconds"
DEFAULT_BUDGET = {"epochs": 15, "seconds": 120}
BUDGET_RANGE = {"epochs": (1, 500), "seconds": (10, 3600)}
# seconds an epoch takes per training photo at 256 px with the default recipe on the 2-core CPU of
# docs/RESULTS.md (an epoch of 149 photos: 10.9 s); only for the estimate shown before a check starts
EPOCH_S_PER_PHOTO = 0.075


class BudgetMixin:
    """The budget controls' behaviour; the panel provides ``w``, ``training`` and the widgets."""

    def _unit_changed(self, unit: str) -> None:
        lo, hi = BUDGET_RANGE[unit]
        self.per_fold.blockSignals(True)
        self.per_fold.setRange(lo, hi)
        self.per_fold.setSingleStep(15 if unit == "seconds" else 1)
        self.per_fold.setSuffix(" s" if unit == "seconds" else "")
        self.per_fold.setValue(DEFAULT_BUDGET[unit])
        self.per_fold.blockSignals(False)
        self._update_estimate()

    def set_budget(self, value: int, unit: str) -> None:
        """Each fold's training: ``value`` epochs or seconds (``unit``, one of ``UNITS``)."""
        self.unit.setCurrentText(unit)
        self.per_fold.setValue(int(value))

    def budget(self) -> tuple[float, int | None]:
        """(seconds per fold, epochs per fold or None): what :func:`make_job` takes."""
        if self.unit.currentText() == "epochs":
            return float(DEFAULT_BUDGET["seconds"]), int(self.per_fold.value())
        return float(self.per_fold.value()), None

    def _photos(self) -> int:
        """The open project's annotated photos (for the estimate)."""
        session = getattr(self.w, "session", None)
        return sum(1 for r in getattr(session, "rows", []) if r.entry.regions)

    def _epoch_s(self, k: int) -> float:
        """A rough time of one epoch of a fold's model on a 2-core CPU."""
        size = getattr(getattr(self.training, "image_size", None), "value", lambda: 256)()
        return EPOCH_S_PER_PHOTO * self._photos() * (k - 1) / k * (size / 256) ** 2

    def _update_estimate(self) -> None:
        k = self.folds.value()
        seconds, epochs = self.budget()
        if epochs is None:
            self.estimate.setText(
                f"about {_fmt_secs(k * (seconds + OVERHEAD_S))} ({k} × {_fmt_secs(seconds)} of training, "
                "plus start-up and predicting)"
            )
            return
        guess = k * (epochs * self._epoch_s(k) + OVERHEAD_S)
        self.estimate.setText(
            f"{k} × {epochs} epochs: about {_fmt_secs(guess)} on a 2-core CPU for {self._photos()} annotated "
            "photos (the time as measured shows once the check runs)"
        )
