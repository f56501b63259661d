"""How a training run scores its model for ``summary.json``: :func:`_score_best_model` (the validation images
predicted at full resolution by a ``Predictor`` and scored as ``viaseg evaluate`` does, or at the training size
with a warning when that cannot run), :func:`_score_more_val` (each further validation set, its copies of
training images left out) and :func:`_val_set_row` (one row of the summary's ``val_sets``); and what the run
folder says about the model: :func:`_model_meta` (saved with it) and :func:`_summary` (``summary.json``), from
the run's state (:class:`_Run`, :class:`_Fitted`) that :mod:`.train` hands over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..checks.check_copies import copies_of
from .loop import trained_on
from .presets import TrainConfig, resolve_schedule


def _val_set_row(name: str, n: int, scores: dict) -> dict:
    return {
        "name": name,
        "n_images": n,
        "mean_dice": scores.get("mean_dice"),
        "global_dice": scores.get("global_dice"),
        "mean_iou": scores.get("mean_iou"),
        "global_iou": scores.get("global_iou"),
    }


def _score_more_val(model, meta, name, entries, train_entries, cfg, warnings) -> dict:
    """A further validation set scored as ``viaseg evaluate`` does (its copies of training images left out)."""
    from .evaluate import evaluate
    from .predict import Predictor

    left_out = []
    if cfg.exclude_duplicates:
        copies = {entries[i].filename for i in copies_of(train_entries, entries)}
        left_out = [e.filename for e in entries if e.filename in copies]
        entries = [e for e in entries if e.filename not in copies]
    result = evaluate(Predictor(model, meta), entries, batch_size=cfg.batch_size)
    for err in result.errors:
        warnings.append(f"{name}: {err.image}: {err.error} (not scored)")
    scores = {
        "mean_dice": result.mean_dice,
        "global_dice": result.global_dice,
        "mean_iou": result.mean_iou,
        "global_iou": result.global_iou,
    }
    row = _val_set_row(name, result.count, scores)
    if left_out:
        row["excluded_duplicates"] = left_out
    return row


def _score_best_model(model, meta, arrays, entries, cfg, warnings) -> tuple[dict, str]:
    """Hard Dice / IoU of the trained model, as ``viaseg evaluate`` scores it: each image predicted at its full
    resolution by a ``Predictor`` (mirror averaging when ``cfg.tta``) against its mask rasterized at full size.
    Falls back to the training-size arrays (with a warning) when that cannot run."""
    from . import unet
    from .predict import Predictor

    keep = set(arrays.names)  # the images actually used (duplicates and unreadable files left out)
    chosen = [e for e in entries if e.filename in keep]
    predictor = Predictor(model, meta)
    try:
        from .evaluate import evaluate

        if len(chosen) != len(arrays):
            raise RuntimeError(f"{len(chosen)} of {len(arrays)} images matched by name")
        result = evaluate(predictor, chosen, batch_size=cfg.batch_size)
        if result.errors:
            raise RuntimeError("; ".join(f"{e.image}: {e.error}" for e in result.errors[:3]))
        return {
            "mean_dice": result.mean_dice,
            "global_dice": result.global_dice,
            "mean_iou": result.mean_iou,
            "global_iou": result.global_iou,
            "per_image": {s.image: s.dice for s in result.per_image},
        }, "full resolution"
    except Exception as exc:  # the run's model is fine; only its full-size score is missing
        warnings.append(f"scored at the training size, not full resolution: {exc}")
    # the same preprocessing and mirror averaging, on the arrays the run validated on
    probs = predictor.predict_inputs(arrays.images, batch_size=cfg.batch_size)
    scores = unet.hard_dice_scores(arrays.masks, probs, cfg.threshold)
    scores["per_image"] = dict(zip(arrays.names, scores.pop("per_image_dice"), strict=True))
    return scores, f"{cfg.size} px"


def _viaseg_version() -> str:
    try:
        from viaseg import __version__

        return __version__
    except Exception:
        return "unknown"


@dataclass
class _Run:
    """One run's settings and what it has learnt so far, handed from step to step."""

    cfg: TrainConfig
    run_dir: Path
    state: dict[str, Any]
    warnings: list[str]
    device: str
    precision: str = ""
    data: Any = None  # train_plumbing.Data
    tr: Any = None  # P.Arrays: the training images
    va: Any = None  # P.Arrays: the validation images used during training
    duplicates: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Fitted:
    """What ``model.fit`` left: the model, the epoch whose weights it holds, how long it took."""

    model: Any
    strategy: Any
    early: Any  # Keras' EarlyStopping callback: its best epoch and whether it stopped the run
    monitor: str
    best_epoch: int
    kept: str
    train_seconds: float


def _prediction_meta(cfg: TrainConfig) -> dict:
    """What a ``Predictor`` needs to predict as this run's model will (size, threshold, averaging, resize)."""
    return {
        "input_size": [cfg.size, cfg.size],
        "threshold": cfg.threshold,
        "tta": bool(cfg.tta),
        "tta_scales": [float(v) for v in cfg.tta_scales],
        "resize": cfg.resize,
        "input_scale": "rgb/255",
    }


def _model_meta(run: _Run, fitted: _Fitted, tf) -> dict:
    """The metadata saved with the model (``model.keras``)."""
    cfg = run.cfg
    return {
        **_prediction_meta(cfg),
        "class_names": list(cfg.class_names),
        "config": cfg.to_dict(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "viaseg_version": _viaseg_version(),
        "best_epoch": fitted.best_epoch + 1,
        "tf_version": tf.__version__,
        "precision": run.precision,
        "device": run.device,
        # file name -> region hash: what "changed since" compares; a photo that could not be read was not
        # trained on (added later with the same regions, it must count as new)
        "trained_on": trained_on([e for e in run.data.train if str(e.path) not in _unread(run)]),
    }


def _unread(run: _Run) -> set[str]:
    """The paths of the training images the run skipped (unreadable or missing files)."""
    return {name for name, _ in (getattr(run.tr, "skipped", None) or [])}


def _scores(run: _Run, model, meta: dict) -> tuple[dict, str, list[dict]]:
    """The model's scores on the validation images (on the training images when there are none), and one row
    per validation set."""
    data, tr, va, cfg = run.data, run.tr, run.va, run.cfg
    eval_set = va if len(va) else tr.resized(cfg.size)  # (training photos may be decoded larger)
    eval_entries = data.val if len(va) else data.train
    scores, evaluated_at = _score_best_model(model, meta, eval_set, eval_entries, cfg, run.warnings)
    val_sets = [_val_set_row(data.val_source if len(va) else "training images", len(eval_set), scores)]
    for name, entries in data.more_val:
        val_sets.append(_score_more_val(model, meta, name, entries, data.train, cfg, run.warnings))
    return scores, evaluated_at, val_sets


def _summary(run: _Run, fitted: _Fitted, meta, scores, evaluated_at, val_sets, best_metrics) -> dict:
    """``summary.json``, its model path still to be filled in."""
    cfg, state, tr, va, best_epoch = run.cfg, run.state, run.tr, run.va, fitted.best_epoch
    images_seen = state["batches"] * cfg.batch_size
    train_seconds = fitted.train_seconds
    return {
        "ok": state["nan"] is None,
        "best_epoch": best_epoch + 1 if best_epoch >= 0 else None,
        "epochs_run": state["epochs_run"],
        "stop_reason": _reason(state, fitted.early, cfg),
        "monitor": fitted.monitor,
        "lr_schedule": resolve_schedule(cfg),
        "kept": fitted.kept,  # "best": the best validation epoch's weights; "last": the final weights
        "balance_sources": bool(cfg.balance_sources),
        "sources": {
            name: sum(1 for i in range(len(tr)) if tr.source_of(i) == k)
            for k, name in enumerate(run.data.source_names)
        },
        "init_from": str(cfg.init_from) if cfg.init_from else None,  # the model it was fine-tuned from
        "trained_on": meta["trained_on"],
        "val_dice": scores["mean_dice"],
        "val_global_dice": scores["global_dice"],
        "val_iou": scores["mean_iou"],
        "val_global_iou": scores["global_iou"],
        "per_image_dice": scores["per_image"],
        "evaluated_on": ("val" if len(va) else "train (no validation images)") + f", {evaluated_at}",
        "val_sets": val_sets,  # every validation set, each scored alone at full resolution
        "best_metrics": best_metrics,
        "train_seconds": round(train_seconds, 2),
        "images_per_second": round(images_seen / train_seconds, 2) if train_seconds > 0 else None,
        "n_train": len(tr),
        "n_val": len(va),
        "val_source": run.data.val_source,
        "excluded_duplicates": run.duplicates,
        "skipped": run.skipped,
        "warnings": run.warnings,
        "params": int(fitted.model.count_params()),
        "replicas": int(fitted.strategy.num_replicas_in_sync),
        "precision": run.precision,
        "device": run.device,  # what trained: "GPU: NVIDIA H200", "CPU (AMD EPYC, 2 threads)", "... x 2 workers"
        "model_path": None,
    }


def _reason(state, early, cfg) -> str:
    if state["nan"] is not None:
        return "nan"
    if state["reason"]:
        return state["reason"]
    if early.stopped_epoch > 0:
        return "early_stopping"
    return "completed"
