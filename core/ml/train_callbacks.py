"""What ``model.fit`` runs with besides the data: :func:`_make_callbacks` (Keras' EarlyStopping, ModelCheckpoint,
CSVLogger, TerminateOnNaN, the learning-rate schedule, optional EMA weights, and viaseg's own callback that emits
events, writes sample plots and acts on ``should_stop`` and the time limit, agreed between workers under a
multi-worker strategy) and :func:`_multiworker_fit_fixes` (work-arounds for Keras' multi-worker ``fit``).
:class:`_TrainingFailed` is the failure with a message meant for the user that :func:`.train.train` reports.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from . import pipeline as P
from .presets import (
    ANNEALING,
    KEEP,
    LR_SCHEDULES,
    MONITORS,
    TrainConfig,
    resolve_keep,
    resolve_schedule,
)
from .train_events import BatchEnd, EpochEnd, SamplePredictions
from .train_plumbing import agree

log = logging.getLogger("viaseg.train")


class _TrainingFailed(Exception):
    """A failure with a message meant for the user."""


def _make_callbacks(
    keras, cfg: TrainConfig, run_dir: Path, emit, should_stop, state, val_arrays, strategy=None
):
    """Keras' callbacks plus the event / stop / time-limit one.

    With several workers (``strategy`` a multi-worker one) every worker must take the same number of steps and
    the same learning rate, so the stop request and the time limit act at the end of an epoch, agreed between
    the workers (any one asking stops all), and the time a schedule follows is the chief's."""
    multi = strategy is not None and cfg.strategy == "multiworker"

    class EventsAndStop(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            state["t0"] = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            state["epoch"] = epoch
            state["epoch_t0"] = time.perf_counter()
            if multi:  # before the learning-rate schedule's callback reads it
                state["elapsed"] = agree(strategy, time.perf_counter() - state["t0"], chief_only=True)

        def _stop_asked(self) -> str:
            if should_stop is not None and should_stop():
                return "stopped"
            if (
                cfg.time_limit_s
                and time.perf_counter() - state["t0"] > cfg.time_limit_s
                and state["epoch"] >= getattr(cfg, "min_epochs", 0)
            ):
                return "time_limit"
            return ""

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            loss = float(logs.get("loss", float("nan")))
            state["batches"] += 1
            emit(BatchEnd(batch, state["epoch"], loss, float(logs.get("dice", float("nan"))), state["steps"]))
            if not math.isfinite(loss):
                state["nan"] = (state["epoch"], batch)
                self.model.stop_training = True
            if multi:
                return  # decided at the epoch's end, by every worker together
            reason = self._stop_asked()
            if reason:
                state["reason"] = reason
                self.model.stop_training = True

        def _tensorboard_samples(self, epoch, ev) -> None:
            """The sample strip as TensorBoard images (image | true mask | predicted mask, one row each)."""
            try:
                import tensorflow as tf

                if getattr(self, "_writer", None) is None:
                    self._writer = tf.summary.create_file_writer(str(run_dir / "tensorboard" / "samples"))
                rows = []
                for img, t, p in zip(ev.images, ev.true_masks, ev.pred_masks, strict=True):
                    grey = [
                        np.repeat(
                            (np.nan_to_num(np.asarray(m, np.float32))[..., None] * 255)
                            .clip(0, 255)
                            .astype(np.uint8),
                            3,
                            axis=2,
                        )
                        for m in (np.squeeze(t) > 0, np.squeeze(p))
                    ]
                    rows.append(np.concatenate([np.asarray(img, np.uint8), *grey], axis=1))
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
            logs = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
            logs.pop("learning_rate", None)
            state["epochs_run"] = epoch + 1
            for k, v in logs.items():
                state["history"].setdefault(k, []).append(v)
            emit(EpochEnd(epoch, dict(logs), time.perf_counter() - state["epoch_t0"], cfg.epochs))
            every = cfg.sample_every
            if every and len(val_arrays) and ((epoch + 1) % every == 0 or epoch == 0):
                idx = state["sample_idx"]
                imgs = val_arrays.images[idx]
                if multi:  # this worker's copy of the weights, no distributed predict
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
                        run_dir / "samples" / f"epoch_{epoch + 1:03d}.png",
                        title=f"epoch {epoch + 1}",
                        threshold=cfg.threshold,
                    )
                except Exception as exc:  # a plot never stops training
                    log.warning("cannot write sample plot: %s", exc)
                emit(ev)
                self._tensorboard_samples(epoch, ev)
            if multi:
                # any worker asking stops them all (a user's stop counts 1000, a time limit 1)
                reason = self._stop_asked()
                agreed = agree(strategy, {"": 0.0, "time_limit": 1.0, "stopped": 1000.0}[reason])
                if agreed > 0.5:
                    state["reason"] = "stopped" if agreed >= 999.5 else "time_limit"
                    self.model.stop_training = True

    if cfg.monitor not in MONITORS:
        raise _TrainingFailed(f"unknown monitor {cfg.monitor!r} ({', '.join(MONITORS)})")
    if cfg.keep not in KEEP:
        raise _TrainingFailed(f"unknown keep {cfg.keep!r} ({', '.join(KEEP)})")
    keep_last = resolve_keep(cfg) == "last"
    monitor = ("val_" if len(val_arrays) else "") + ("hard_dice" if cfg.monitor == "hard_dice" else "dice")
    sched = resolve_schedule(cfg)
    patience = cfg.patience
    if (sched in ANNEALING and cfg.time_limit_s) or keep_last:
        # the rate comes down over the time limit: the run uses all of it; early stopping would end it while
        # the rate is still high (and with keep "last" the validation score must not decide anything)
        patience = 1_000_000
    if sched == "plateau" and keep_last:
        raise _TrainingFailed(
            "keep 'last' needs a schedule that does not follow the validation score "
            "(constant, cosine or flat_cosine), not plateau"
        )
    if sched == "plateau":
        schedule = [
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode="max", factor=0.5, patience=max(2, cfg.patience // 3), min_lr=1e-5
            )
        ]
    elif sched in ANNEALING:
        # one cosine from the learning rate down to 1e-5 over the run: over the time limit when there is one
        # (the fraction of it used when the epoch begins), else over the epochs. flat_cosine keeps the full
        # rate for the first half of the run and anneals over the second half
        lr0, n, limit = cfg.learning_rate, max(1, cfg.epochs), cfg.time_limit_s
        flat = 0.5 if sched == "flat_cosine" else 0.0

        def progress(epoch: int) -> float:
            if limit:
                elapsed = state["elapsed"] if multi else time.perf_counter() - state["t0"]
                return min(1.0, elapsed / limit)
            return min(epoch, n) / n

        def rate(epoch: int, _lr) -> float:
            q = max(0.0, progress(epoch) - flat) / (1.0 - flat)
            return 1e-5 + 0.5 * (lr0 - 1e-5) * (1 + math.cos(math.pi * q))

        schedule = [keras.callbacks.LearningRateScheduler(rate)]
    elif sched == "constant":
        schedule = []
    else:
        raise _TrainingFailed(f"unknown lr_schedule {cfg.lr_schedule!r} ({', '.join(LR_SCHEDULES)})")

    class Rate(keras.callbacks.Callback):
        """Every epoch's learning rate in the logs, whatever the schedule (TensorBoard plots it)."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None and "learning_rate" not in logs:
                logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))

    cbs = [
        EventsAndStop(),
        keras.callbacks.TerminateOnNaN(),
        *schedule,  # before the CSVLogger: history.csv gets each epoch's learning_rate
        Rate(),
        # `tensorboard --logdir RUNS` compares runs as Keras users are used to: scalars per epoch, the rate,
        # the sample predictions (written by EventsAndStop); no graph, no profiling (they cost time and space)
        *(_tensorboard(keras, run_dir) if not multi else []),  # (not checked under several workers)
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoint_best.keras"), monitor=monitor, mode="max", save_best_only=True
        ),
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max", patience=patience, restore_best_weights=not keep_last
        ),
    ]
    if cfg.ema:
        # first: validation, samples, the checkpoint and early stopping all see the averaged weights
        cbs.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    return cbs, monitor


def _tensorboard(keras, run_dir: Path) -> list:
    """Keras' TensorBoard callback when the tensorboard package is there (a dependency; without it the run
    trains and says why it has no TensorBoard logs)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        log.warning("no TensorBoard logs: the tensorboard package is not installed")
        return []
    return [
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False, profile_batch=0)
    ]


def _multiworker_fit_fixes(model, cfg) -> None:
    """Work around two faults of Keras 3 (3.15) ``fit`` under MultiWorkerMirroredStrategy (tensorflow#72388):

    * ``fit`` / ``evaluate`` first ``strategy.reduce`` a whole ``(x, y)`` batch only to learn its shapes, and
      the multi-worker strategy cannot reduce a tuple ("Attempt to convert a value (PerReplica...)"): the model
      builds its loss and metrics from zeros of the same shapes instead;
    * each step's logs are reduced across workers with ``axis=0``, which a scalar does not have ("Invalid
      reduction dimension 0 for input with 0 dimensions"): the steps return each log as a 1-element vector,
      whose mean over every replica along axis 0 is the scalar Keras expects."""
    import numpy as np
    import tensorflow as tf

    px = cfg.crop or cfg.size
    batch = (
        np.zeros((cfg.batch_size, px, px, 3), "float32"),
        np.zeros((cfg.batch_size, px, px, 1), "float32"),
    )
    build = model._maybe_symbolic_build  # the method the first fault is in

    def build_from_shapes(iterator=None, data_batch=None):
        return build(data_batch=batch)

    def vectors(step):
        def wrapped(data):
            return {k: tf.reshape(tf.cast(v, tf.float32), [1]) for k, v in step(data).items()}

        return wrapped

    model._maybe_symbolic_build = build_from_shapes
    model.train_step = vectors(model.train_step)
    model.test_step = vectors(model.test_step)
