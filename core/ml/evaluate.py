"""Evaluation: per-image Dice and IoU of a model's full-resolution masks against the annotated polygons.

``viaseg evaluate MODEL DATASET[:split] [--json] [--threshold T]`` (default split: ``val`` when the dataset
has one). The ground truth is rasterized at the image's FULL resolution from the VIA geometry and compared with
the full-resolution prediction (probabilities resized bilinearly, then thresholded), so the score is what a
user sees, not a 128-px proxy.

Scores: per image ``dice = 2|T∩P| / (|T|+|P|)`` and ``iou = |T∩P| / |T∪P|``; an image whose true mask and
prediction are both empty scores 1 on both. ``mean_*`` average the per-image scores; ``global_*`` pool the pixel
counts of all images (large images weigh more). The per-image list is sorted worst first (lowest Dice) — the
disagreement list the GUI shows. ``--json`` prints::

    {"mean_dice", "global_dice", "mean_iou", "global_iou", "threshold", "split", "count",
     "per_image": [{"image", "dice", "iou", "true_pixels", "pred_pixels"}, ...],
     "errors": [{"image", "error"}, ...]}

With ``--sweep`` it also scores thresholds 0.05..0.95 from the same predictions (``"sweep": [{"threshold",
"mean_dice", "global_dice"}]``, ``"best_threshold"``).

Images that cannot be read are reported (stderr warning, ``errors``), left out of the scores, and make the
command exit with status 1.

Library use (GUI "Predict all"): :func:`evaluate`, :func:`dice_iou`, :func:`agreement_image`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..annotation.project import ImageEntry
from ..base.errors import DatasetError

# agreement_image colours (RGBA): true positive green, false positive red, false negative blue
TP_COLOR = (46, 204, 64)
FP_COLOR = (255, 65, 54)
FN_COLOR = (0, 116, 217)

DEFAULT_SPLITS = ("val", "valid", "validation", "dev", "test")
SWEEP_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95
_BINS = 1000  # probability resolution of the sweep histograms


def _binary(mask: np.ndarray, what: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim != 2:
        raise ValueError(f"{what} must be an HxW mask, got shape {m.shape}")
    return m > 0 if m.dtype != bool else m


def pixel_counts(true_mask: np.ndarray, pred_mask: np.ndarray) -> tuple[int, int, int]:
    """(|T∩P|, |T|, |P|)."""
    t = _binary(true_mask, "true mask")
    p = _binary(pred_mask, "predicted mask")
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: true {t.shape} vs predicted {p.shape}")
    return int(np.count_nonzero(t & p)), int(np.count_nonzero(t)), int(np.count_nonzero(p))


def scores_of_counts(inter: int, nt: int, np_: int) -> tuple[float, float]:
    total = nt + np_
    if total == 0:
        return 1.0, 1.0
    return 2.0 * inter / total, inter / (total - inter)


def dice_iou(true_mask: np.ndarray, pred_mask: np.ndarray) -> tuple[float, float]:
    """``(dice, iou)`` of two same-shape masks (bool, or non-zero = foreground). Both empty -> ``(1.0, 1.0)``."""
    return scores_of_counts(*pixel_counts(true_mask, pred_mask))


def score_entry(entry: ImageEntry, probabilities: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(dice, iou)`` of a full-resolution probability map against ``entry``'s regions rasterized at the same
    size, thresholded as :func:`evaluate` does (``p > threshold``): the one per-image score of viaseg."""
    from ..annotation.raster import rasterize

    p = np.asarray(probabilities)
    h, w = p.shape[:2]
    return scores_of_counts(*pixel_counts(rasterize(entry.regions, (w, h)), p > threshold))


def agreement_image(true_mask: np.ndarray, pred_mask: np.ndarray, alpha: int = 160) -> np.ndarray:
    """``HxWx4`` RGBA ``uint8`` picture of where a prediction agrees with the truth: true positives
    :data:`TP_COLOR` (green), false positives :data:`FP_COLOR` (red), false negatives :data:`FN_COLOR` (blue),
    all with opacity ``alpha``; true negatives fully transparent. Meant to be drawn over the photo."""
    t = _binary(true_mask, "true mask")
    p = _binary(pred_mask, "predicted mask")
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: true {t.shape} vs predicted {p.shape}")
    a = int(np.clip(alpha, 0, 255))
    # each pixel's case (0 TN, 1 FN, 2 FP, 3 TP) picks its RGBA from a 4-entry table: one lookup instead of a
    # masked write per case (a 3-megapixel picture in a few milliseconds; the app redraws it at every change)
    table = np.array([(0, 0, 0, 0), (*FN_COLOR, a), (*FP_COLOR, a), (*TP_COLOR, a)], np.uint8)
    case = t.view(np.uint8) + 2 * p.view(np.uint8)
    words = np.take(table.view(np.uint32).ravel(), case)  # a whole RGBA pixel per lookup
    return words.view(np.uint8).reshape(case.shape + (4,))


@dataclass
class ImageScore:
    """Scores of one image. ``image`` is the file name as written in the VIA file."""

    image: str
    path: Path
    dice: float
    iou: float
    true_pixels: int
    pred_pixels: int
    intersection: int
    sweep: tuple | None = None  # (intersections, predicted pixels) per SWEEP_THRESHOLDS, when swept

    def to_dict(self) -> dict:
        return {
            "image": self.image,
            "dice": round(self.dice, 6),
            "iou": round(self.iou, 6),
            "true_pixels": self.true_pixels,
            "pred_pixels": self.pred_pixels,
        }


@dataclass
class EvalError:
    image: str
    path: Path
    error: str

    def to_dict(self) -> dict:
        return {"image": self.image, "error": self.error}


@dataclass
class EvalResult:
    """Scores of a set of images; ``per_image`` is sorted worst first (lowest Dice, then IoU, then name)."""

    threshold: float
    per_image: list[ImageScore] = field(default_factory=list)
    errors: list[EvalError] = field(default_factory=list)
    split: str | None = None
    tta: bool = False  # predictions averaged with the mirror image
    tta_scales: tuple = (1.0,)  # and over the image resized by these factors
    stopped: bool = False  # should_stop() ended it early: the scores cover the images done so far
    excluded: list[str] = field(default_factory=list)  # left out: the same image is in the train split

    @property
    def count(self) -> int:
        return len(self.per_image)

    @property
    def mean_dice(self) -> float | None:
        return float(np.mean([s.dice for s in self.per_image])) if self.per_image else None

    @property
    def mean_iou(self) -> float | None:
        return float(np.mean([s.iou for s in self.per_image])) if self.per_image else None

    @property
    def global_dice(self) -> float | None:
        if not self.per_image:
            return None
        return scores_of_counts(*self._pooled())[0]

    @property
    def global_iou(self) -> float | None:
        if not self.per_image:
            return None
        return scores_of_counts(*self._pooled())[1]

    def _pooled(self) -> tuple[int, int, int]:
        return (
            sum(s.intersection for s in self.per_image),
            sum(s.true_pixels for s in self.per_image),
            sum(s.pred_pixels for s in self.per_image),
        )

    @property
    def sweep(self) -> list[dict] | None:
        """Mean and global Dice at each of :data:`SWEEP_THRESHOLDS` (``evaluate(..., sweep=True)``), from the
        same forward passes; ``None`` when not swept. Thresholds compare at 1/1000 probability resolution."""
        sweeps = [s.sweep for s in self.per_image if s.sweep is not None]
        if not self.per_image or len(sweeps) < len(self.per_image):
            return None
        inter = np.array([w[0] for w in sweeps], np.float64)  # images x thresholds
        pred = np.array([w[1] for w in sweeps], np.float64)
        true = np.array([s.true_pixels for s in self.per_image], np.float64)[:, None]
        total = true + pred
        per = np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)
        pooled = total.sum(axis=0)
        glob = np.where(pooled > 0, 2 * inter.sum(axis=0) / np.maximum(pooled, 1), 1.0)
        return [
            {"threshold": t, "mean_dice": round(float(m), 6), "global_dice": round(float(g), 6)}
            for t, m, g in zip(SWEEP_THRESHOLDS, per.mean(axis=0), glob, strict=True)
        ]

    @property
    def best_threshold(self) -> float | None:
        """The swept threshold with the highest mean Dice (ties: the one closest to 0.5)."""
        sw = self.sweep
        if not sw:
            return None
        return max(sw, key=lambda r: (r["mean_dice"], -abs(r["threshold"] - 0.5)))["threshold"]

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None else round(v, 6)

        out = {
            "mean_dice": r(self.mean_dice),
            "global_dice": r(self.global_dice),
            "mean_iou": r(self.mean_iou),
            "global_iou": r(self.global_iou),
            "threshold": self.threshold,
            "tta": self.tta,
            "tta_scales": list(self.tta_scales),
            "split": self.split,
            "count": self.count,
            "per_image": [s.to_dict() for s in self.per_image],
            "errors": [e.to_dict() for e in self.errors],
        }
        if self.excluded:
            out["excluded_train_duplicates"] = list(self.excluded)
        sweep = self.sweep
        if sweep is not None:
            out["sweep"] = sweep
            out["best_threshold"] = self.best_threshold
        return out


def _sweep_counts(probs: np.ndarray, truth: np.ndarray) -> tuple[list[int], list[int]]:
    """(|T ∩ {p > t}|, |{p > t}|) for every t of :data:`SWEEP_THRESHOLDS`, from one histogram pass."""
    q = np.minimum((np.asarray(probs, np.float32) * _BINS).astype(np.int32), _BINS).ravel()
    t = np.asarray(truth).ravel() > 0
    all_c = np.cumsum(np.bincount(q, minlength=_BINS + 1)[::-1])[::-1]  # all_c[k] = #(q >= k)
    true_c = np.cumsum(np.bincount(q[t], minlength=_BINS + 1)[::-1])[::-1]
    ks = [int(round(th * _BINS)) for th in SWEEP_THRESHOLDS]
    return [int(true_c[k]) for k in ks], [int(all_c[k]) for k in ks]


def _sort_key(s: ImageScore):
    return (s.dice, s.iou, s.image)


def evaluate(
    predictor,
    split_or_entries,
    threshold: float | None = None,
    on_progress: Callable[[int, int, ImageScore | EvalError], None] | None = None,
    batch_size: int = 4,
    should_stop: Callable[[], bool] | None = None,
    on_prediction: Callable[[ImageEntry, object], None] | None = None,
    sweep: bool = False,
) -> EvalResult:
    """Score ``predictor`` (a :class:`~viaseg.core.ml.predict.Predictor`) on a ``Split`` or a list of
    ``ImageEntry``. ``threshold`` defaults to the model's. ``on_progress(done, total, score_or_error)`` is
    called after each image (from the calling thread); ``should_stop()`` is checked between images;
    ``on_prediction(entry, prediction)`` receives each full-resolution :class:`Prediction` (e.g. to show
    it). ``sweep``: also count every threshold of :data:`SWEEP_THRESHOLDS` (``result.sweep``,
    ``result.best_threshold``) from the same predictions. Unreadable images become :class:`EvalError` rows,
    never exceptions."""
    entries: list[ImageEntry] = list(getattr(split_or_entries, "entries", split_or_entries))
    split = getattr(split_or_entries, "name", None)
    thr = predictor.threshold if threshold is None else float(threshold)
    result = EvalResult(
        threshold=thr,
        split=split,
        tta=bool(getattr(predictor, "tta", False)),
        tta_scales=tuple(getattr(predictor, "scales", (1.0,))),
    )
    total = len(entries)
    done = 0
    items = predictor.predict_many([e.path for e in entries], batch_size=batch_size)
    try:
        for entry, item in zip(entries, items, strict=True):
            if should_stop is not None and should_stop():
                result.stopped = True
                break
            done += 1
            if not item.ok:
                err = EvalError(entry.filename, entry.path, item.error.problem)
                result.errors.append(err)
                if on_progress:
                    on_progress(done, total, err)
                continue
            pred = item.prediction
            score = _score_image(entry, pred, thr, sweep)
            result.per_image.append(score)
            if on_prediction:
                on_prediction(entry, pred)
            if on_progress:
                on_progress(done, total, score)
    finally:
        close = getattr(items, "close", None)
        if close:
            close()
    result.per_image.sort(key=_sort_key)
    return result


def _score_image(entry: ImageEntry, pred, thr: float, sweep: bool) -> ImageScore:
    """``pred`` (a full-resolution :class:`Prediction`) scored against ``entry``'s regions at ``thr``."""
    from ..annotation.raster import rasterize

    h, w = pred.shape
    truth = rasterize(entry.regions, (w, h))
    inter, nt, npred = pixel_counts(truth, pred.mask(thr))
    dice, iou = scores_of_counts(inter, nt, npred)
    counts = _sweep_counts(pred.probabilities, truth) if sweep else None
    return ImageScore(entry.filename, entry.path, dice, iou, nt, npred, inter, counts)


# ------------------------------------------------------------------------------------------------ CLI


def choose_split(dataset, requested: str | None):
    """The split to evaluate: ``requested``, else ``val`` (or valid/validation/dev/test), else the only one."""
    if requested is not None:
        sp = dataset.split(requested)
    else:
        labeled = {n: s for n, s in dataset.splits.items() if s.labeled}
        name = next((n for n in DEFAULT_SPLITS if n in labeled), None)
        if name is None and len(labeled) == 1:
            name = next(iter(labeled))
        if name is None:
            raise DatasetError(
                f"{dataset.root}: choose a split to evaluate with DATASET:split "
                f"(labeled splits: {', '.join(labeled) or 'none'})"
            )
        sp = labeled[name]
    if not sp.labeled:
        raise DatasetError(f"{dataset.root}: split {sp.name!r} has no annotations to evaluate against")
    if not sp.entries:
        raise DatasetError(f"{dataset.root}: split {sp.name!r} has no images")
    return sp


def format_report(result: EvalResult, worst: int = 20) -> str:
    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        f"split {result.split or '-'}: {result.count} images scored at threshold {result.threshold:g}"
        + (f", {len(result.errors)} unreadable" if result.errors else ""),
        f"  mean Dice {f(result.mean_dice)}   global Dice {f(result.global_dice)}",
        f"  mean IoU  {f(result.mean_iou)}   global IoU  {f(result.global_iou)}",
    ]
    if result.excluded:
        lines.append("left out (also in train): " + ", ".join(result.excluded))
    if result.per_image:
        shown = result.per_image if worst <= 0 else result.per_image[:worst]
        lines.append(f"worst {len(shown)} of {result.count} (lowest Dice first):")
        lines.append(f"  {'dice':>6} {'iou':>6} {'true px':>10} {'pred px':>10}  image")
        for s in shown:
            lines.append(f"  {s.dice:6.3f} {s.iou:6.3f} {s.true_pixels:10d} {s.pred_pixels:10d}  {s.image}")
    sweep = result.sweep
    if sweep:
        lines.append(f"threshold sweep (best mean Dice at {result.best_threshold:g}):")
        lines.append(f"  {'thresh':>6} {'mean':>6} {'global':>6}")
        for row in sweep:
            lines.append(f"  {row['threshold']:6.2f} {row['mean_dice']:6.3f} {row['global_dice']:6.3f}")
    for e in result.errors:
        lines.append(f"unreadable: {e.image}: {e.error}")
    return "\n".join(lines)


def train_duplicates(dataset, split) -> list[ImageEntry]:
    """Entries of ``split`` that are copies of pictures in the dataset's ``train`` split (same bytes, same pixels,
    or a re-encoded/resized copy; ``check_copies.copies_of``): scoring them measures memory, not
    generalisation."""
    from ..checks.check_copies import copies_of

    train = dataset.splits.get("train")
    if train is None or train is split:
        return []
    return [split.entries[i] for i in copies_of(train.entries, split.entries)]
