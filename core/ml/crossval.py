"""K-fold cross-validation by image: how good a recipe really is on a user's own photos. No Qt.

``crossval(config, sources, folds=5)`` divides the annotated images of every source into K folds (copies of one
picture, as ``viaseg check`` finds them, always in the same fold; each source spread evenly over the folds),
trains K models with :func:`viaseg.core.ml.train.train`, each without one fold, and predicts every held-out image
at full resolution with the model that never saw it. The held-out fold chooses nothing: the runs keep their
final weights (``keep="last"``) under a schedule that does not follow the validation score, so the
out-of-fold scores are unbiased. Each image's out-of-fold probability map is kept (8-bit PNG) for finding
label errors.

Reported: out-of-fold mean and global Dice / IoU with 95 % bootstrap intervals over images, the same per
source, and every image's score (worst first). :mod:`.crossval_merge` reads a saved result and joins runs of
different folds (``only_folds`` run apart) into one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..annotation.project import ImageEntry
from ..base.errors import DatasetError
from .presets import TrainConfig, resolve_schedule

log = logging.getLogger("viaseg.crossval")
# disagreement areas kept per image: this many largest, and this many highest scoring (label_errors.listed)
MAX_LISTED = 5


@dataclass
class OofScore:
    """One image scored by the model of the fold that held it out."""

    image: str
    source: str
    fold: int
    dice: float
    iou: float
    true_pixels: int
    pred_pixels: int
    intersection: int
    map_path: str = ""  # the out-of-fold probability map (PNG, 0..255 = 0..1), relative to the output folder
    # where that map and the annotation differ (label_errors.disagreements), largest first
    disagreements: list[dict] = field(default_factory=list)
    # how likely a label error is here, by label_errors.DEFAULT_RULE (higher: review first); None: not scored
    review_score: float | None = None
    # the photo's size in bytes when it was scored (with its name, how VIA itself tells a file): the app shows
    # and applies a result only on the open project's photo of that name *and* size, never on another
    # project's photo of the same name; None: not recorded (results written before it was)
    file_bytes: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class CrossvalResult:
    folds: int
    per_image: list[OofScore] = field(default_factory=list)
    fold_runs: list[dict] = field(default_factory=list)  # per fold: run folder, images, epochs, seconds
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # images left out before folding, and why
    stopped: bool = False

    def scores(self, source: str | None = None) -> dict:
        """Mean / global Dice and IoU of the out-of-fold predictions, with 95 % bootstrap intervals."""
        rows = [s for s in self.per_image if source is None or s.source == source]
        return summarize(rows)

    def to_dict(self) -> dict:
        sources = sorted({s.source for s in self.per_image})
        return {
            "folds": self.folds,
            "n_images": len(self.per_image),
            **self.scores(),
            "by_source": {src: self.scores(src) for src in sources} if len(sources) > 1 else {},
            "per_image": [s.to_dict() for s in sorted(self.per_image, key=lambda s: (s.dice, s.image))],
            "fold_runs": self.fold_runs,
            "errors": self.errors,
            "skipped": self.skipped,
            "stopped": self.stopped,
        }


def _pooled(rows: list[OofScore]) -> tuple[float | None, float | None]:
    inter = sum(r.intersection for r in rows)
    tot = sum(r.true_pixels + r.pred_pixels for r in rows)
    if not rows:
        return None, None
    if tot == 0:
        return 1.0, 1.0
    return 2 * inter / tot, inter / (tot - inter)


def summarize(rows: list[OofScore], n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean and global Dice / IoU of ``rows`` and a 95 % percentile bootstrap interval of each (images
    resampled with replacement)."""
    if not rows:
        return {"n": 0, "mean_dice": None, "global_dice": None, "mean_iou": None, "global_iou": None}
    dice = np.array([r.dice for r in rows])
    iou = np.array([r.iou for r in rows])
    inter = np.array([r.intersection for r in rows], dtype=np.float64)
    tot = np.array([r.true_pixels + r.pred_pixels for r in rows], dtype=np.float64)
    gd, gi = _pooled(rows)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(rows), size=(n_boot, len(rows)))
    si, st = inter[idx].sum(1), tot[idx].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_d = np.where(st > 0, 2 * si / st, 1.0)
        g_i = np.where(st > 0, si / (st - si), 1.0)

    def ci(samples: np.ndarray) -> list[float]:
        lo, hi = np.percentile(samples, [2.5, 97.5])
        return [round(float(lo), 4), round(float(hi), 4)]

    return {
        "n": len(rows),
        "mean_dice": float(dice.mean()),
        "mean_dice_ci95": ci(dice[idx].mean(1)),
        "global_dice": gd,
        "global_dice_ci95": ci(g_d),
        "mean_iou": float(iou.mean()),
        "mean_iou_ci95": ci(iou[idx].mean(1)),
        "global_iou": gi,
        "global_iou_ci95": ci(g_i),
    }


def assign_folds(sources: list[int], groups: list[int], k: int, seed: int = 0) -> list[int]:
    """A fold (0..k-1) per image. Images of one group (copies of a picture) share a fold; within each source
    groups are dealt in a seeded order to the fold that has the fewest of that source's images so far (ties:
    the fewest images overall), so every fold gets its share of every source."""
    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    n = len(sources)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(groups[i], []).append(i)
    rng = random.Random(seed)
    fold = [-1] * n
    total = [0] * k
    for src in sorted(set(sources)):
        keys = sorted({groups[i] for i in range(n) if sources[i] == src and fold[i] < 0})
        rng.shuffle(keys)
        per = [0] * k
        for g in keys:
            f = min(range(k), key=lambda j: (per[j], total[j], j))
            for i in members[g]:
                fold[i] = f
                total[f] += 1
                if sources[i] == src:
                    per[f] += 1
    return fold


def _save_map(path: Path, probs: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(np.rint(probs * 255.0), 0, 255).astype(np.uint8))


def load_map(path: str | Path) -> np.ndarray:
    """An out-of-fold probability map written by :func:`crossval`, as float32 0..1."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise FileNotFoundError(f"{path}: no readable probability map")
    return img.astype(np.float32) / 255.0


def fold_config(
    cfg: TrainConfig, train_parts: list[list[ImageEntry]], held: list[ImageEntry], run_dir: Path
) -> TrainConfig:
    """The training config of one fold: the training folds of each source (the first source as the dataset,
    the others as extras, so balanced sampling still sees them apart) plus ``cfg.extra_train``, the held-out
    fold as validation data for the curves only, and the final weights kept."""
    first, *rest = [p for p in train_parts if p] or [[]]
    schedule = resolve_schedule(cfg)
    return dataclasses.replace(
        cfg,
        dataset=first,
        extra_train=[*rest, *cfg.extra_train],
        val=held,
        out_dir=run_dir,
        keep="last",
        # the plateau schedule follows the validation score, so it would let the held-out fold steer training
        lr_schedule="flat_cosine" if schedule == "plateau" else cfg.lr_schedule,
    )


def crossval(
    cfg: TrainConfig,
    sources: list[tuple[str, list[ImageEntry]]],
    out_dir: str | Path,
    folds: int = 5,
    only_folds: list[int] | None = None,
    on_event: Callable[[int, object], None] | None = None,
    on_fold: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    fold_seed: int = 0,
    predict_scales: tuple[float, ...] | None = None,
) -> CrossvalResult:
    """Cross-validate ``cfg`` over the annotated images of ``sources`` (``[(name, entries), ...]``).

    ``on_event(fold, event)`` gets every training event of every fold; ``on_fold(fold, folds, message)``
    a line per fold. ``predict_scales``: the sizes (factors of the training size) whose probabilities each
    held-out photo's map averages; None: the ones each fold's model stores (``tta_scales``). Each fold's row in
    ``fold_runs`` says which it used. Writes ``out_dir/fold_N/`` (each fold's run folder),
    ``out_dir/oof_maps/`` and ``out_dir/crossval.json``; returns the result. A fold whose training fails is
    reported in ``errors`` and its images are left unscored (never silently)."""
    from ..checks.check_copies import duplicate_groups
    from .predict import scale_factors

    scales = None if predict_scales is None else scale_factors(predict_scales)
    out = Path(out_dir)
    entries, src_idx, skipped = _annotated(sources, cfg.include_empty)
    if len(entries) < folds:  # before the output folder is made: a refused run leaves nothing behind
        raise DatasetError(
            f"{len(entries)} annotated images cannot be divided into {folds} folds: use --folds "
            f"{max(2, len(entries))} or fewer"
        )
    out.mkdir(parents=True, exist_ok=True)
    groups = duplicate_groups(entries, decode=True)
    split = _Split(
        entries, src_idx, assign_folds(src_idx, groups, folds, seed=fold_seed), [n for n, _ in sources]
    )
    result = CrossvalResult(folds, skipped=skipped)
    wanted = list(range(folds)) if only_folds is None else [f for f in only_folds if 0 <= f < folds]
    for f in wanted:
        if should_stop is not None and should_stop():
            result.stopped = True
            break
        model_path, batch_size = _train_fold(
            cfg, split, f, folds, out, result, on_event, on_fold, should_stop
        )
        if model_path is not None:
            _score_fold(split, f, model_path, batch_size, out, result, scales)
    (out / "crossval.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result


def _annotated(
    sources: list[tuple[str, list[ImageEntry]]], include_empty: bool
) -> tuple[list[ImageEntry], list[int], list[str]]:
    """The images to fold (annotated ones, or all with ``include_empty``), each one's source index, and the
    images left out because their file is missing."""
    entries: list[ImageEntry] = []
    src_idx: list[int] = []
    skipped: list[str] = []
    for k, (_, ents) in enumerate(sources):
        for e in ents:
            if not e.path.is_file():
                skipped.append(f"{e.path}: no such image file (left out of every fold)")
            elif e.regions or include_empty:
                entries.append(e)
                src_idx.append(k)
    return entries, src_idx, skipped


@dataclass
class _Split:
    """The images being cross-validated: each one's source (index into ``names``) and fold."""

    entries: list[ImageEntry]
    src_idx: list[int]
    fold_of: list[int]
    names: list[str]  # the sources' names

    def held(self, f: int) -> list[ImageEntry]:
        return [e for e, fo in zip(self.entries, self.fold_of, strict=True) if fo == f]

    def train_parts(self, f: int) -> list[list[ImageEntry]]:
        """The images outside fold ``f``, one list per source."""
        return [
            [
                e
                for e, fo, s in zip(self.entries, self.fold_of, self.src_idx, strict=True)
                if fo != f and s == k
            ]
            for k in range(len(self.names))
        ]

    def held_sources(self, f: int) -> dict[int, str]:
        """``id(entry)`` -> its source's name, for the images of fold ``f``."""
        return {
            id(e): self.names[s]
            for e, s, fo in zip(self.entries, self.src_idx, self.fold_of, strict=True)
            if fo == f
        }


def _train_fold(
    cfg, split: _Split, f: int, folds: int, out: Path, result: CrossvalResult, on_event, on_fold, should_stop
) -> tuple[Path | None, int]:
    """Train fold ``f``'s model and record the run in ``result``; its model (None when training failed) and
    the batch size it predicts with."""
    from .train import train

    held, parts = split.held(f), split.train_parts(f)
    run_dir = out / f"fold_{f}"
    if on_fold:
        on_fold(
            f,
            folds,
            f"fold {f + 1}/{folds}: training on {sum(map(len, parts))} images, holding out {len(held)}",
        )
    fcfg = fold_config(cfg, parts, held, run_dir)
    res = train(
        fcfg,
        on_event=functools.partial(on_event, f) if on_event else None,  # on_event(f, ev)
        should_stop=should_stop,
    )
    row = {
        "fold": f,
        "run_dir": str(run_dir.relative_to(out)),
        "n_train": sum(map(len, parts)),
        "n_held_out": len(held),
        "ok": res.ok,
        "epochs_run": res.summary.get("epochs_run"),
        "train_seconds": res.summary.get("train_seconds"),
    }
    result.fold_runs.append(row)
    if not res.ok or res.model_path is None:
        result.errors.append(f"fold {f}: {res.error}")
        return None, fcfg.batch_size
    return res.model_path, fcfg.batch_size


def _score_fold(
    split: _Split,
    f: int,
    model_path: Path,
    batch_size: int,
    out: Path,
    result: CrossvalResult,
    scales: tuple[float, ...] | None = None,
):
    """Predict fold ``f``'s images with the model that never saw them (averaged over ``scales`` when given);
    score them into ``result`` and keep each probability map."""
    from .predict import Predictor

    held = split.held(f)
    predictor = Predictor.load(model_path, cache=False)
    if scales is not None:
        predictor.scales = scales
    for row in result.fold_runs:
        if row.get("fold") == f:
            row["predict_scales"] = list(predictor.scales)
    held_src = split.held_sources(f)
    items = predictor.predict_many([e.path for e in held], batch_size=batch_size)
    try:
        for entry, item in zip(held, items, strict=True):
            if item.error is not None:  # not item.ok
                result.errors.append(f"{entry.path}: {item.error.problem} (not scored)")
                continue
            pred = item.prediction
            assert pred is not None  # an ItemResult holds either a prediction or an error
            src = held_src[id(entry)]
            rel = Path("oof_maps") / f"{split.names.index(src)}" / (entry.filename.replace("/", "_") + ".png")
            score = _oof_score(entry, pred, predictor.threshold, src, f, rel)
            _save_map(out / rel, pred.probabilities)
            result.per_image.append(score)
    finally:
        close = getattr(items, "close", None)
        if close:
            close()


def _oof_score(entry: ImageEntry, pred, threshold: float, src: str, f: int, rel: Path) -> OofScore:
    from ..annotation.raster import rasterize
    from ..checks.label_errors import DEFAULT_RULE, disagreements, error_score, listed
    from .evaluate import pixel_counts, scores_of_counts

    h, w = pred.shape
    truth = rasterize(entry.regions, (w, h))
    inter, n_true, n_pred = pixel_counts(truth, pred.mask(threshold))
    dice, iou = scores_of_counts(inter, n_true, n_pred)
    found = [d.to_dict() for d in listed(disagreements(truth, pred.probabilities, threshold), MAX_LISTED)]
    review = error_score(DEFAULT_RULE, truth, pred.probabilities, threshold)
    return OofScore(
        entry.filename,
        src,
        f,
        float(dice),
        float(iou),
        n_true,
        n_pred,
        inter,
        str(rel),
        found,
        float(review),
        _file_bytes(entry.path),
    )


def _file_bytes(path: Path) -> int | None:
    try:
        return int(Path(path).stat().st_size)
    except OSError:
        return None
