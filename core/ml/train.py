"""Training engine: ``train(config, on_event=None, should_stop=None) -> TrainResult``. No Qt.

A run: resolve the data (path or in-memory), decode every image once (``pipeline.load_arrays``), leave
validation images that duplicate training images out, build the U-Net, ``model.fit`` with Keras' own
callbacks (EarlyStopping on the monitored validation Dice restoring the best weights, ModelCheckpoint of the
best model, CSVLogger, TerminateOnNaN) plus ours (events, ``should_stop`` checked after every batch, a time limit),
then evaluate the best model (hard Dice per image at the threshold) and write the run folder::

    config.json  history.csv  curves.png  samples/epoch_NNN.png  model.keras  summary.json

Nothing escapes to the caller: every failure becomes a ``Failed`` event and ``TrainResult(ok=False,
error=...)``. A run that diverges (NaN loss) fails but keeps the best model it had.

This module is the run itself (data, model, ``fit``, the run folder); the callbacks ``fit`` gets are built in
:mod:`.train_callbacks` (viaseg's own in :mod:`.train_progress`), the model's scores, its metadata and
``summary.json`` come from :mod:`.train_scoring`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import ViasegError
from ..checks.check_copies import copies_of
from . import pipeline as P
from .plots import sample_indices
from .presets import (
    PRESETS,
    TrainConfig,
    preset,
    resolve_keep,
)
from .train_budget import step_budget
from .train_callbacks import _make_callbacks, _multiworker_fit_fixes, _TrainingFailed
from .train_events import Event as Event  # re-exported
from .train_events import (
    Failed,
    Finished,
    Started,
    TrainResult,
)
from .train_plumbing import (
    configure_threads,
    device_description,
    is_chief,
    make_strategy,
    resolve_data,
    resolve_precision,
)
from .train_scoring import _Fitted, _model_meta, _prediction_meta, _Run, _scores, _summary

__all__ = ["TrainConfig", "preset", "PRESETS", "train", "TrainResult", "Event"]

log = logging.getLogger("viaseg.train")


def train(
    config: TrainConfig,
    on_event: Callable[[object], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """Train a U-Net as ``config`` says; report progress through ``on_event``; stop (keeping the best model)
    as soon as ``should_stop()`` is true after a batch. ``callbacks``: more Keras callbacks, run after
    viaseg's own (e.g. a benchmark's probe). Never raises for a training failure."""
    cfg = config
    if cfg.ensemble > 1:  # several networks, each trained by this function (core/ml/ensemble.py)
        from .ensemble import train_ensemble

        return train_ensemble(cfg, train, on_event, should_stop, callbacks)
    run_dir = Path(cfg.out_dir) if cfg.out_dir else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    state: dict[str, Any] = dict(epoch=0, batches=0, history={}, reason="", nan=None, epochs_run=0, steps=0)
    worker_dir = None
    if cfg.strategy == "multiworker" and not is_chief():
        # Keras' multi-worker pattern: every worker runs the same steps (saving included: the collective ops
        # must match), a non-chief one into a temporary folder it deletes; the chief writes the run folder
        import tempfile

        worker_dir = run_dir = Path(tempfile.mkdtemp(prefix="viaseg-worker-"))

    emit = _emitter(on_event)

    def fail(message: str, model_path: Path | None = None, summary: dict | None = None) -> TrainResult:
        emit(Failed(message, run_dir, model_path))
        return TrainResult(
            ok=False,
            run_dir=run_dir,
            model_path=model_path,
            error=message,
            summary=summary or {},
            history=state["history"],
        )

    if cfg.ensemble < 1:
        return fail(f"ensemble {cfg.ensemble}: give 1 (one network) or more members")
    try:
        thread_note = configure_threads(cfg.threads)  # before TF runs any op
        setup_notes = [thread_note] if thread_note else []
        if worker_dir is not None:
            setup_notes.append("this worker writes no run folder: the chief (task index 0) does")
        result = _train(cfg, run_dir, state, emit, should_stop, fail, setup_notes, list(callbacks or []))
        if worker_dir is not None:
            result.run_dir = result.model_path = None
        return result
    except Exception as exc:  # the GUI must get a message, not a traceback
        return fail(_failure_message(exc))
    finally:
        if worker_dir is not None:
            import shutil

            shutil.rmtree(worker_dir, ignore_errors=True)


def _emitter(on_event: Callable[[object], None] | None) -> Callable[[object], None]:
    def emit(ev) -> None:
        if on_event is not None:
            try:
                on_event(ev)
            except Exception as exc:  # a broken listener must not kill training
                log.warning("event listener failed on %s: %s", type(ev).__name__, exc)

    return emit


def _failure_message(exc: Exception) -> str:
    """What the user is told about the exception that ended a run (logged with its traceback when unexpected)."""
    if isinstance(exc, (_TrainingFailed, ViasegError)):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: try a smaller --batch-size or --size"
    if type(exc).__name__ == "ResourceExhaustedError":
        return "out of memory while training: try a smaller --batch-size or --size"
    log.exception("training failed")
    return f"training failed: {type(exc).__name__}: {exc}"


def _train(cfg, run_dir, state, emit, should_stop, fail, setup_notes, more_callbacks) -> TrainResult:
    from . import tfsetup

    tf = tfsetup.load_tf()  # before keras builds anything: viaseg's TF settings apply to the training graph
    import keras

    # before any TF op: a multi-worker strategy sets up the collective ops at TensorFlow's start
    strategy = make_strategy(cfg.strategy)
    device = _device(cfg, strategy)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.crop and (cfg.crop % 16 or not 16 <= cfg.crop <= cfg.size):
        raise _TrainingFailed(
            f"crop {cfg.crop}: must be a multiple of 16 between 16 and the size ({cfg.size})"
        )
    if not 0.0 < cfg.threshold < 1.0:
        raise _TrainingFailed(f"threshold {cfg.threshold}: must be between 0 and 1")
    if cfg.encoder != "xception" and (cfg.size % 32 or (cfg.crop or 32) % 32):
        raise _TrainingFailed(f"encoder {cfg.encoder}: size ({cfg.size}) and crop must be multiples of 32")
    if cfg.encoder_freeze != "none" and cfg.encoder != "mobilenet_v2":
        raise _TrainingFailed(
            f"encoder freeze {cfg.encoder_freeze}: needs --encoder mobilenet_v2 (this run's is {cfg.encoder})"
        )
    if not cfg.decoder_lr_mult > 0:
        raise _TrainingFailed(f"decoder learning-rate multiple {cfg.decoder_lr_mult}: must be above 0")
    if cfg.decoder_lr_mult != 1.0 and cfg.encoder != "mobilenet_v2":
        raise _TrainingFailed(
            f"decoder learning-rate multiple {cfg.decoder_lr_mult}: needs the MobileNetV2 ImageNet encoder "
            f"(--encoder mobilenet_v2; this run's is {cfg.encoder})"
        )
    if cfg.init_from:
        from .ensemble import fine_tune_problem

        if problem := fine_tune_problem(cfg.init_from):
            raise _TrainingFailed(problem)
    if cfg.init_from:  # fine-tuning: the network's layers are the starting model's
        cfg, note = _follow_init_model(cfg)
        if note:
            setup_notes = [*setup_notes, note]
    run = _Run(cfg, run_dir, state, list(setup_notes), device)
    _load_data(run)
    # after the data loaded: a run that cannot start leaves a folder's earlier config.json as it was
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    run.precision = resolve_precision(cfg.precision)
    emit(
        Started(
            run_dir,
            len(run.tr),
            len(run.va),
            cfg.epochs,
            state["steps"],
            run.duplicates,
            run.skipped,
            run.data.val_source,
            cfg.to_dict(),
            notes=list(setup_notes),
            device=device,
            precision=run.precision,
            step_budget=step_budget(cfg, state["steps"]),
        )
    )
    fitted = _fit(run, tf, keras, strategy, emit, should_stop, more_callbacks)
    return _finish(run, fitted, tf, emit, fail)


def _device(cfg, strategy) -> str:
    device = device_description(cfg.threads)
    if cfg.strategy == "multiworker":
        spec = strategy.cluster_resolver.cluster_spec().as_dict()
        n_workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
        device = f"{device} x {n_workers} workers"
    return device


def _load_data(run: _Run) -> None:
    """Decode the training and validation images into ``run``, validation copies of training images left out."""
    cfg, state = run.cfg, run.state
    run.data = data = resolve_data(cfg)
    if not any(e.regions for e in data.train):
        raise _TrainingFailed(
            f"no annotated images in the training data ({data.train_source}): "
            "draw at least one region before training"
        )
    load: dict[str, Any] = dict(
        size=cfg.size,
        resize=cfg.resize,
        include_empty=cfg.include_empty,
        cache_dir=cfg.cache_dir,
        threads=cfg.threads,
        on_warning=run.warnings.append,
    )
    # the training photos at the crops' source size (cfg.sharp_crops), the validation photos at the training size
    run.tr = tr = _load_sources(data.train, data.train_sources, {**load, "size": cfg.source_size})
    if not len(tr) or not tr.masks.any():
        raise _TrainingFailed(
            f"no readable annotated image in the training data ({data.train_source}); "
            + "; ".join(f"{n}: {r}" for n, r in tr.skipped[:5])
        )
    va = P.load_arrays(data.val, **load) if data.val else P.Arrays.empty(cfg.size)
    if cfg.exclude_duplicates and len(va):
        copies = {data.val[i].filename for i in copies_of(data.train, data.val)}
        dup = {i for i, name in enumerate(va.names) if name in copies}
        run.duplicates = [va.names[i] for i in sorted(dup)]
        va = va.subset(i for i in range(len(va)) if i not in dup)
        if run.duplicates:
            run.warnings.append(
                f"left out of validation (same content as a training image): {', '.join(run.duplicates)}"
            )
    run.va = va
    state["sample_idx"] = sample_indices(len(va), cfg.n_samples)
    state["steps"] = P.steps_per_epoch(len(tr), cfg.batch_size)
    run.skipped = [f"{n}: {r}" for n, r in tr.skipped + va.skipped]


def _fit(run: _Run, tf, keras, strategy, emit, should_stop, more_callbacks) -> _Fitted:
    """Build the U-Net (same seed, same weights) and train it; which epoch's weights it ends with."""
    from . import unet
    from .networks import build_network

    cfg, state, tr, va = run.cfg, run.state, run.tr, run.va
    keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
        model = build_network(
            cfg, None if cfg.crop else cfg.size, precision=run.precision, pretrained=not cfg.init_from
        )
        if cfg.init_from:
            _init_weights(model, Path(cfg.init_from), cfg)
        unet.compile_model(
            model,
            cfg.loss,
            learning_rate=cfg.learning_rate,
            ema=cfg.ema,
            decoder_lr_mult=cfg.decoder_lr_mult,
            encoder_layers=_encoder_layers(cfg),
        )
    calibrate = _calibration(run, tf, keras)
    train_ds = P.train_dataset(
        tr,
        cfg.batch_size,
        cfg.seed,
        cfg.augment,
        cfg.shuffle_buffer,
        balance=cfg.balance_sources,
        crop=cfg.crop,
        out_size=cfg.size,
        held=calibrate.held if calibrate else None,
        release=calibrate.release if calibrate else None,
    )
    val_ds = P.eval_dataset(va, cfg.batch_size) if len(va) else None
    if cfg.strategy == "multiworker":  # in-memory data: each worker takes its share of every global batch
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(opts)
        val_ds = val_ds.with_options(opts) if val_ds is not None else None
        _multiworker_fit_fixes(model, cfg)
    callbacks, monitor = _make_callbacks(keras, cfg, run.run_dir, emit, should_stop, state, va, strategy)
    if calibrate:
        callbacks.insert(1, calibrate)  # after EventsAndStop (its clock), before the checkpoint
    callbacks += more_callbacks

    t0 = time.perf_counter()
    model.fit(
        train_ds,
        steps_per_epoch=state["steps"],
        epochs=cfg.epochs,
        validation_data=val_ds,
        callbacks=callbacks,
        verbose=0,
    )
    train_seconds = time.perf_counter() - t0
    early = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    best_epoch, kept = _best_epoch(state, early, monitor, cfg)
    return _Fitted(model, strategy, early, monitor, best_epoch, kept, train_seconds)


def _encoder_layers(cfg) -> set[str]:
    """The names of the pretrained encoder's layers (the ones ``decoder_lr_mult`` leaves at the base rate)."""
    if cfg.decoder_lr_mult == 1.0 or cfg.encoder != "mobilenet_v2":
        return set()
    from .unet_mobilenet import encoder_layer_names

    return encoder_layer_names()


def _calibration(run: _Run, tf, keras):
    """The threshold-calibration callback of this run (train_calibrate), or None (the reason is kept in
    ``state["calibration"]``)."""
    from .train_calibrate import choose_held, make_callback, skip_reason

    cfg, tr, state = run.cfg, run.tr, run.state
    only = cfg.calibrate_on if cfg.init_from else None
    held = (
        choose_held(tr.masks, tr.sources, cfg.calibrate, cfg.seed, names=list(tr.names), only=only)
        if cfg.calibrate and (only or not cfg.init_from)
        else None
    )
    why = skip_reason(cfg, held)
    if why:
        state["calibration"] = {"threshold": None, "skipped": why}
        if cfg.calibrate and cfg.init_from:  # fine-tuning keeps the threshold its starting model chose
            from .modelio import read_meta

            start = read_meta(cfg.init_from).get("threshold")
            if isinstance(start, (int, float)) and 0.0 < float(start) < 1.0:
                state["calibration"]["inherited"] = float(start)
        return None
    assert held is not None
    sources = run.data.train_sources if tr.sources else [0] * len(run.data.train)
    by_key = {(s, e.filename): e for e, s in zip(run.data.train, sources, strict=True)}
    # one entry per photo (a fine-tuning draws its new photos several times, as rows of further sources)
    entries = list(
        {tr.names[i]: by_key[(tr.source_of(i), tr.names[i])] for i in np.flatnonzero(held)}.values()
    )
    state["calibration"] = {"threshold": None, "skipped": "the run ended before the calibration point"}
    release = tf.Variable(False, trainable=False)
    return make_callback(keras)(cfg, state, held, release, entries, _prediction_meta(cfg))


def _best_epoch(state, early, monitor: str, cfg) -> tuple[int, str]:
    """The epoch (from 0; -1: none) whose weights the model holds, and which weights were kept."""
    hist = state["history"]
    best_epoch = int(early.best_epoch) if hist.get(monitor) else -1
    if best_epoch >= 0 and not math.isfinite(hist[monitor][best_epoch]):
        best_epoch = -1
    kept = resolve_keep(cfg)
    if kept == "last" and state["epochs_run"] and state["nan"] is None:
        best_epoch = state["epochs_run"] - 1  # the weights saved are the final ones
    return best_epoch, kept


def _finish(run: _Run, fitted: _Fitted, tf, emit, fail) -> TrainResult:
    """Evaluate the model, write the run folder and say how the run ended."""
    from .modelio import save_model

    state, run_dir, best_epoch = run.state, run.run_dir, fitted.best_epoch
    meta = _model_meta(run, fitted, tf)
    calibration = state.get("calibration") or {}
    if calibration.get("threshold") is not None:
        meta["threshold"] = calibration["threshold"]  # chosen on photos the model had not trained on yet
    elif calibration.get("inherited") is not None:
        meta["threshold"] = calibration["inherited"]
    scores, evaluated_at, val_sets = _scores(run, fitted.model, meta)
    hist = state["history"]
    best_metrics = {k: v[best_epoch] for k, v in hist.items()} if best_epoch >= 0 else {}
    summary = _summary(run, fitted, meta, scores, evaluated_at, val_sets, best_metrics)
    summary["threshold"] = meta["threshold"]
    summary["threshold_calibration"] = calibration
    try:
        from .plots import plot_curves

        plot_curves(hist, run_dir / "curves.png")
    except Exception as exc:
        run.warnings.append(f"cannot write curves.png: {exc}")

    model_path = None
    if best_epoch >= 0:  # weights are the best epoch's (EarlyStopping restores them)
        meta.update(
            val_dice=scores["mean_dice"], val_global_dice=scores["global_dice"], val_iou=scores["mean_iou"]
        )
        model_path = save_model(fitted.model, run_dir / "model.keras", meta)
        summary["model_path"] = model_path.name  # relative to the run folder: runs can be moved and shared
    (run_dir / "checkpoint_best.keras").unlink(missing_ok=True)  # model.keras holds the same weights
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

    if state["nan"] is not None:
        return fail(_diverged_message(state["nan"], best_epoch, model_path), model_path, summary)
    if model_path is None:
        return fail("training stopped before any epoch finished: no model saved", None, summary)
    reason = summary["stop_reason"]
    emit(Finished(best_epoch, best_metrics, run_dir, model_path, reason))
    return TrainResult(
        ok=True,
        run_dir=run_dir,
        model_path=model_path,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        summary=summary,
        history=hist,
        reason=reason,
    )


def _diverged_message(nan_at: tuple[int, int], best_epoch: int, model_path: Path | None) -> str:
    ep, b = nan_at
    kept = (
        f"; the best model (epoch {best_epoch + 1}) is kept at {model_path}"
        if model_path
        else "; no epoch finished before it, so no model was saved"
    )
    return f"training diverged: the loss became NaN at epoch {ep + 1}, batch {b + 1} (try a lower --lr){kept}"


def _load_sources(entries, sources, load) -> P.Arrays:
    """Training arrays, each row tagged with its source (the dataset, or which extra)."""
    if not sources or len(set(sources)) == 1:
        return P.load_arrays(entries, **load)
    parts = []
    for k in sorted(set(sources)):
        part = P.load_arrays([e for e, s in zip(entries, sources, strict=True) if s == k], **load)
        part.sources = [k] * len(part)
        parts.append(part)
    return P.Arrays.concat(parts)


def _follow_init_model(cfg):
    """``cfg`` with the base width and normalization of the model it starts from (read from that model's
    metadata, no TensorFlow needed), and a note when they differ from what ``cfg`` asked for."""
    import dataclasses

    from .modelio import read_meta

    src = read_meta(cfg.init_from).get("config") or {}  # ModelError names a missing or broken file
    arch = {k: src[k] for k in ("encoder", "base_width", "norm") if src.get(k) is not None}
    if src:
        arch.setdefault("encoder", "xception")  # models saved before there was a choice
    changed = {k: v for k, v in arch.items() if getattr(cfg, k) != v}
    if not changed:
        return cfg, ""
    said = ", ".join(f"{k.replace('_', ' ')} {v} (not {getattr(cfg, k)})" for k, v in changed.items())
    return dataclasses.replace(cfg, **changed), f"starting from {cfg.init_from}: its network is kept: {said}"


def _init_weights(model, path: Path, cfg) -> None:
    """Copy the weights of the viaseg model at ``path`` into ``model`` (same layers; the input size may
    differ, convolution weights do not depend on it)."""
    from .modelio import load_model

    src, meta = load_model(path)  # ModelError names the file
    want = [tuple(w.shape) for w in model.weights]
    got = [tuple(w.shape) for w in src.weights]
    if want != got:
        src_cfg = meta.get("config") or {}
        theirs = ", ".join(
            f"{k.replace('_', ' ')} {src_cfg[k]}" for k in ("base_width", "norm") if k in src_cfg
        )
        raise _TrainingFailed(
            f"{path}: cannot start from this model: its network ({theirs + ', ' if theirs else ''}"
            f"{len(got)} weight tensors) does not match this run's (base width {cfg.base_width}, norm {cfg.norm}, "
            f"{len(want)} weight tensors)"
        )
    model.set_weights(src.get_weights())
