"""A training run's progress in the Training panel: its events (started, batches, epochs, samples, finished)
shown as the progress bar, the message line, the live curves and the result; :class:`RunProgressMixin` is a
base class of ``TrainingPanel``."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Slot
from viaseg.core.ml.train_events import BatchEnd, EpochEnd, Failed, Finished, SamplePredictions, Started

from .curves import EPOCH_SERIES, metric
from .runs import read_run


def _fmt_secs(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class RunProgressMixin:
    """``TrainingPanel``'s handling of a run's events."""

    @Slot(object)
    def _on_event(self, ev: Any) -> None:
        sender = self.sender()
        if sender is not None and sender is not self.thread:
            return  # a late event of a run already wound up (stop_and_wait)
        if ev is getattr(self, "_terminal_handled", None):
            return  # stop_and_wait handled it; delivered again once its thread was gone (sender None)
        if isinstance(ev, (Finished, Failed)):
            self._terminal_handled = ev  # stop_and_wait does not handle it again
        self._handle(ev)

    def _handle(self, ev: Any) -> None:
        match ev:
            case Started():
                self._on_started(ev)
            case BatchEnd():
                self._on_batch(ev)
            case EpochEnd():
                self._on_epoch(ev)
            case SamplePredictions():
                self.samples.set_samples(
                    ev.epoch,
                    ev.images,
                    ev.true_masks,
                    ev.pred_masks,
                    epoch_label=self._epoch_offset + ev.epoch + 1,
                )
            case Finished():
                self._on_finished(ev)
            case Failed():
                self._fail(f"Training failed: {ev.message}")

    def _on_started(self, ev: Started) -> None:
        part = getattr(ev, "part", None)
        later_network = part is not None and part[0] > 0
        self._part = part
        # a later network of an ensemble: its epochs go on from the last one shown, the clock from the run's start
        self._epoch_offset = self._epochs_shown if later_network else 0
        self._epochs_total = int(ev.epochs or self._epochs_total)
        self._steps_per_epoch = int(ev.steps_per_epoch) if ev.steps_per_epoch else None
        self._step_budget = getattr(ev, "step_budget", None)
        extra = f" on {ev.n_train} training / {ev.n_val} validation images"
        extra += f" (validation: {ev.val_source})" if ev.val_source else ""
        skipped = list(ev.skipped)
        msg = f"Training{extra}…"
        if skipped:
            msg += (
                f"\n{len(skipped)} image(s) left out: "
                + "; ".join(skipped[:3])
                + (" …" if len(skipped) > 3 else "")
            )
        for note in (*ev.notes, *getattr(self, "_launch_notes", ())):
            msg += f"\n{note}"
        self._set_message(msg)
        device, precision = ev.device or "", ev.precision or ""
        if device:
            self.device_label.setText(f"Device: {device}" + (f" · {precision}" if precision else ""))
            self.device_label.setToolTip(
                "What this run trains on; set up a GPU machine with ./setup.sh (docs/gpu.md)"
            )
            self.device_label.setVisible(True)
        if not later_network:
            self._t0 = time.monotonic()

    def _network_text(self) -> str:
        """ "network 2 of 3 · " while an ensemble's second network trains; "" for a single network."""
        return f"network {self._part[0] + 1} of {self._part[1]} · " if self._part else ""

    def _run_fraction(self, frac: float) -> float:
        """``frac`` of the network training now, as a fraction of the whole run."""
        return (self._part[0] + frac) / self._part[1] if self._part else frac

    def _on_batch(self, ev: BatchEnd) -> None:
        """``epoch`` and ``step`` (batch within the epoch) count from 0, as core reports them."""
        epoch, step = int(ev.epoch), int(ev.step)
        spe = int(ev.steps or self._steps_per_epoch or 0)
        if spe:
            self._steps_per_epoch = spe
        x = self._epoch_offset + epoch + (step + 1) / spe if spe else float(self._epoch_offset + epoch)
        self.curves.add_batch(x, ev.loss, ev.dice)
        if spe:
            done = epoch * spe + step + 1
            frac = self._steps_fraction(done)
            budget = self._step_budget
            batch_txt = f"step {done} of {budget}" if budget else f"batch {step + 1}/{spe}"
        else:
            frac, batch_txt = epoch / max(1, self._epochs_total), f"batch {step + 1}"
        self._show_progress(self._run_fraction(frac), epoch, batch_txt)

    def _on_epoch(self, ev: EpochEnd) -> None:
        epoch = int(ev.epoch)
        metrics = dict(ev.metrics)
        self._epochs_total = int(ev.epochs or self._epochs_total)
        shown = self._epoch_offset + epoch + 1
        self._epochs_shown = shown
        self.curves.add_epoch(shown, metrics)
        spe = self._steps_per_epoch
        frac = self._steps_fraction((epoch + 1) * spe) if spe else (epoch + 1) / max(1, self._epochs_total)
        self._show_progress(self._run_fraction(frac), epoch, "")
        parts = [f"Network {self._part[0] + 1} of {self._part[1]}"] if self._part else []
        parts.append(f"Epoch {epoch + 1}")
        for name in EPOCH_SERIES:
            v = metric(metrics, name)
            if v is not None:
                parts.append(f"{name.replace('_', ' ')} {v:.3f}")
        if any(isinstance(v, float) and math.isnan(v) for v in metrics.values()):
            parts.append("(NaN!)")
        self._set_message(" · ".join(parts))

    def _steps_fraction(self, done: int) -> float:
        """The share of the network's training done after ``done`` steps: of its epochs, or of its step budget
        when that ends it sooner (core/ml/train_budget.py). Needs the steps per epoch."""
        frac = done / (max(1, self._steps_per_epoch or 1) * max(1, self._epochs_total))
        return max(frac, done / self._step_budget) if self._step_budget else frac

    def _show_progress(self, frac: float, epoch: int, batch_txt: str) -> None:
        elapsed = time.monotonic() - self._t0
        if self._time_limit:  # the run ends at its time limit, its step budget or its last epoch: the first
            frac = max(frac, elapsed / self._time_limit)
        frac = max(0.0, min(1.0, frac))
        self.progress.setValue(int(frac * 1000))
        left = f" · {_fmt_secs(elapsed * (1 - frac) / frac)} left" if frac > 0.01 else ""
        if self._time_limit:  # progress is time: the epoch count is not what ends the run
            txt = f"{_fmt_secs(elapsed)} of {_fmt_secs(self._time_limit)} · "
            txt += f"{self._network_text()}epoch {epoch + 1}"
        else:
            txt = f"{self._network_text()}epoch {epoch + 1}/{self._epochs_total}"
        if batch_txt:
            txt += f" · {batch_txt}"
        self.progress.setFormat(txt + left)

    def _on_finished(self, ev: Finished) -> None:
        best_epoch, best = ev.best_epoch, dict(ev.best_metrics)
        run_dir, model_path = ev.run_dir, ev.model_path
        self.last_result = ev
        vd = metric(best, "val_dice")
        shown_epoch = best_epoch + 1 if isinstance(best_epoch, int) and best_epoch >= 0 else "–"
        run = read_run(Path(run_dir)) if run_dir else None  # read once: the summary the run just wrote
        kept_last = bool(run and run.summary.get("kept") == "last")
        if run and run.ensemble:  # an ensemble's epochs are its networks'; what it keeps is their average
            n = run.ensemble.get("members")
            txt = (
                f"<b>Done.</b> {n} networks averaged"
                if n != 1
                else f"<b>Done.</b> Stopped after the first of {run.ensemble.get('asked', '?')} networks: the model is that one"
            )
        else:
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
