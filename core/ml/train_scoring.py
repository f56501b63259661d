"""How a training run scores its model for ``summary.json``: :func:`_score_best_model` (the validation images
predicted at full resolution by a ``Predictor`` and scored as ``viaseg evaluate`` does, or at the training size
with a warning when that cannot run), :func:`_score_more_val` (each further validation set, its copies of
training images left out) and :func:`_val_set_row` (one row of the summary's ``val_sets``).
"""

from __future__ import annotations

from . import pipeline as P


def _val_set_row(name: str, n: int, scores: dict) -> dict:
    return {
        "name": name,
        "n_images": n,
        "mean_dice": scores.get("mean_dice"),
        "global_dice": scores.get("global_dice"),
        "mean_iou": scores.get("mean_iou"),
        "global_iou": scores.get("global_iou"),
    }


def _score_more_val(model, meta, name, entries, tr, cfg, warnings) -> dict:
    """A further validation set scored as ``viaseg evaluate`` does (its copies of training images left out)."""
    from .evaluate import evaluate
    from .predict import Predictor

    left_out = []
    if cfg.exclude_duplicates:
        load = dict(
            size=cfg.size,
            resize=cfg.resize,
            include_empty=True,
            cache_dir=cfg.cache_dir,
            threads=cfg.threads,
            on_warning=warnings.append,
        )
        arr = P.load_arrays(entries, **load)
        dup = {arr.names[i] for i in P.find_duplicates(tr, arr)}
        left_out = [e.filename for e in entries if e.filename in dup]
        entries = [e for e in entries if e.filename not in dup]
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
