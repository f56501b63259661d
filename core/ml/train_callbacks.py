"""What ``model.fit`` runs with besides the data: :func:`_make_callbacks` (Keras' EarlyStopping, ModelCheckpoint,
CSVLogger, TerminateOnNaN, the learning-rate schedule, optional EMA weights, and viaseg's own callbacks from
:mod:`.train_progress`, which emit events, write sample plots and act on ``should_stop`` and the time limit,
agreed between workers under a multi-worker strategy) and :func:`_multiworker_fit_fixes` (work-arounds for
Keras' multi-worker ``fit``).
:class:`_TrainingFailed` is the failure with a message meant for the user that :func:`.train.train` reports.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from .presets import (
    ANNEALING,
    KEEP,
    LR_SCHEDULES,
    MONITORS,
    TrainConfig,
    resolve_keep,
    resolve_schedule,
)
from .train_budget import progress

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
    from .train_progress import EventsAndStop, Rate

    multi = strategy is not None and cfg.strategy == "multiworker"
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
    schedule = _lr_schedule(keras, cfg, sched, monitor, state, multi)
    cbs = [
        EventsAndStop(cfg, run_dir, emit, should_stop, state, val_arrays, strategy, multi),
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


def _lr_schedule(keras, cfg: TrainConfig, sched: str, monitor: str, state, multi: bool) -> list:
    """The callback that sets the learning rate as ``sched`` says (none for a constant rate)."""
    if sched == "plateau":
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode="max", factor=0.5, patience=max(2, cfg.patience // 3), min_lr=1e-5
            )
        ]
    if sched in ANNEALING:
        # one cosine from the learning rate down to 1e-5 over the run: over the time limit when there is one
        # (the fraction of it used when the epoch begins), else over the epochs, or over the step budget when
        # that is further along (train_budget). flat_cosine keeps the full rate for the first half of the run
        # and anneals over the second half
        lr0 = cfg.learning_rate
        flat = 0.5 if sched == "flat_cosine" else 0.0

        def rate(epoch: int, _lr) -> float:
            elapsed = state["elapsed"] if multi and cfg.time_limit_s else None
            q = max(0.0, progress(cfg, state, epoch, elapsed) - flat) / (1.0 - flat)
            return 1e-5 + 0.5 * (lr0 - 1e-5) * (1 + math.cos(math.pi * q))

        return [keras.callbacks.LearningRateScheduler(rate)]
    if sched == "constant":
        return []
    raise _TrainingFailed(f"unknown lr_schedule {cfg.lr_schedule!r} ({', '.join(LR_SCHEDULES)})")


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
