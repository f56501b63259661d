"""The Keras callbacks of viaseg's own that :func:`.train_callbacks._make_callbacks` gives ``model.fit``:
:class:`EventsAndStop` (events, sample plots, ``should_stop``, the time limit and the step budget) and
:class:`Rate` (the learning rate in every epoch's logs). Imported only once TensorFlow is set up (it imports
keras)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import pipeline as P
from .presets import TrainConfig
from .train_budget import budget_spent
from .train_events import BatchEnd, EpochEnd, SamplePredictions
from .train_plumbing import agree

log = logging.getLogger("viaseg.train")


class EventsAndStop(keras.callbacks.Callback):
    """Emits the run's events, plots the sample predictions, and stops the run when ``should_stop()`` says so
    or the time limit has passed.

    With several workers (``multi``) every worker must take the same number of steps, so a stop request and
    the time limit act at the end of an epoch, agreed between the workers (any one asking stops all)."""

    def __init__(
        self, cfg: TrainConfig, run_dir: Path, emit, should_stop, state, val_arrays, strategy, multi: bool
    ):
        super().__init__()
        self.cfg, self.run_dir, self.emit, self.should_stop = cfg, run_dir, emit, should_stop
        self.state, self.val_arrays, self.strategy, self.multi = state, val_arrays, strategy, multi
        self._writer: Any = None  # TensorBoard's, made on the first samples

    def on_train_begin(self, logs=None):
        self.state["t0"] = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        state = self.state
        state["epoch"] = epoch
        state["epoch_t0"] = time.perf_counter()
        if self.multi:  # before the learning-rate schedule's callback reads it
            state["elapsed"] = agree(self.strategy, time.perf_counter() - state["t0"], chief_only=True)

    def _stop_asked(self) -> str:
        cfg, state = self.cfg, self.state
        if self.should_stop is not None and self.should_stop():
            return "stopped"
        if state["epoch"] < getattr(cfg, "min_epochs", 0):
            return ""  # neither limit cuts a run before its minimum epochs
        if cfg.time_limit_s and time.perf_counter() - state["t0"] > cfg.time_limit_s:
            return "time_limit"
        if budget_spent(cfg, state):
            return "step_budget"  # every worker has taken as many steps: no need to agree on it
        return ""

    def on_train_batch_end(self, batch, logs=None):
        state = self.state
        logs = logs or {}
        loss = float(logs.get("loss", float("nan")))
        state["batches"] += 1
        self.emit(
            BatchEnd(batch, state["epoch"], loss, float(logs.get("dice", float("nan"))), state["steps"])
        )
        if not math.isfinite(loss):
            state["nan"] = (state["epoch"], batch)
            self.model.stop_training = True
        if self.multi:
            return  # decided at the epoch's end, by every worker together
        reason = self._stop_asked()
        if reason:
            state["reason"] = reason
            self.model.stop_training = True

    def _tensorboard_samples(self, epoch, ev) -> None:
        """The sample strip as TensorBoard images (image | true mask | predicted mask, one row each)."""
        try:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(str(self.run_dir / "tensorboard" / "samples"))
            rows = [
                np.concatenate(
                    [np.asarray(img, np.uint8), _grey(np.squeeze(t) > 0), _grey(np.squeeze(p))], axis=1
                )
                for img, t, p in zip(ev.images, ev.true_masks, ev.pred_masks, strict=True)
            ]
            with self._writer.as_default():
                tf.summary.image(
                    "samples: image | true | predicted",
                    np.stack(rows),
                    step=epoch + 1,
                    max_outputs=len(rows),
                )
            self._writer.flush()
        except Exception as exc:  # a log never stops training
            log.warning("cannot write TensorBoard samples: %s", exc)

    def on_epoch_end(self, epoch, logs=None):
        cfg, state = self.cfg, self.state
        logs = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        logs.pop("learning_rate", None)
        state["epochs_run"] = epoch + 1
        for k, v in logs.items():
            state["history"].setdefault(k, []).append(v)
        self.emit(EpochEnd(epoch, dict(logs), time.perf_counter() - state["epoch_t0"], cfg.epochs))
        every = cfg.sample_every
        if every and len(self.val_arrays) and ((epoch + 1) % every == 0 or epoch == 0):
            self._samples(epoch)
        if self.multi:
            # any worker asking stops them all (a user's stop counts 1000, a time limit 1)
            reason = self._stop_asked()
            asked = "" if reason == "step_budget" else reason
            agreed = agree(self.strategy, {"": 0.0, "time_limit": 1.0, "stopped": 1000.0}[asked])
            if agreed > 0.5:
                state["reason"] = "stopped" if agreed >= 999.5 else "time_limit"
                self.model.stop_training = True
            elif reason == "step_budget":
                state["reason"] = reason
                self.model.stop_training = True

    def _samples(self, epoch) -> None:
        """Predict the sample validation images; plot them, send them as an event and to TensorBoard."""
        val_arrays = self.val_arrays
        idx = self.state["sample_idx"]
        imgs = val_arrays.images[idx]
        if self.multi:  # this worker's copy of the weights, no distributed predict
            pred = np.asarray(self.model(P.to_float_images(imgs), training=False))[..., 0]
        else:
            pred = self.model.predict(P.to_float_images(imgs), verbose=0)[..., 0]
        names = [val_arrays.names[i] for i in idx]
        ev = SamplePredictions(epoch, imgs, val_arrays.masks[idx], pred.astype(np.float32), names)
        try:
            from .plots import plot_samples

            plot_samples(
                imgs,
                ev.true_masks,
                ev.pred_masks,
                self.run_dir / "samples" / f"epoch_{epoch + 1:03d}.png",
                title=f"epoch {epoch + 1}",
                threshold=self.cfg.threshold,
            )
        except Exception as exc:  # a plot never stops training
            log.warning("cannot write sample plot: %s", exc)
        self.emit(ev)
        self._tensorboard_samples(epoch, ev)


def _grey(mask) -> np.ndarray:
    """A 0..1 mask as an RGB image (0..255)."""
    m = (np.nan_to_num(np.asarray(mask, np.float32))[..., None] * 255).clip(0, 255).astype(np.uint8)
    return np.repeat(m, 3, axis=2)


class Rate(keras.callbacks.Callback):
    """Every epoch's learning rate in the logs, whatever the schedule (TensorBoard plots it)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
