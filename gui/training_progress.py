"""A training run's progress in the Training panel: its events (started, batches, epochs, samples, finished)
shown as the progress bar, the message line, the live curves and the result; :class:`RunProgressMixin` is a
base class of ``TrainingPanel``."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Slot

from .curves import EPOCH_SERIES, metric
from .runs import read_run
from .workers import event_kind


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
