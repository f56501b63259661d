"""Threshold calibration: a run picks its own probability threshold on training photos it has not trained on yet.

Why (docs/RESULTS.md, seventeenth session): how sure a model is on photos it never saw depends on the data.
Out of fold, 10-minute models of the 149 car photos score best at a threshold of 0.1-0.2 (+0.07 mean Dice over
0.5), 2-minute ones at 0.3, while the demo model, whose synthetic photos it learns almost exactly, is best near
0.6 and loses 0.08 at 0.2. No fixed threshold suits every project, and a threshold chosen on the photos the
model trained on says nothing (in sample the best is 0.45: it has learnt them).

How: a seeded share of the annotated training photos (``cfg.calibrate``, per source) is kept out of training
for the first :data:`CALIBRATE_AT` of the run (of its time limit or step budget, whichever is further along,
else of its epochs: train_budget). At the first epoch end after that, those photos are predicted at full
resolution exactly as ``viaseg evaluate`` does (the run's averaging), the threshold with the best mean Dice per
image in :data:`RANGE` is kept (each threshold's score averaged with its neighbours', so one photo cannot pull it
far), and the photos join training for the rest of the run (the annealed part of the schedule). The model is
saved with that threshold; ``summary.json`` says how it was chosen (``threshold_calibration``). Too few
annotated photos (:data:`MIN_HELD`), several workers, or a run ending before the calibration point: the preset's
threshold stays, and the summary says why.

*Improve model* (a run that starts from another model) calibrates only on the photos new or edited since that
model (``cfg.calibrate_on``; a fine-tuning memorises its new photos within a minute, so the others, all seen
before, cannot choose): :data:`IMPROVE_SHARE` of them are kept out until :data:`IMPROVE_AT` of its budget.
With fewer than ``MIN_HELD / IMPROVE_SHARE`` new photos, or none named, it keeps its starting model's
threshold. Why: fine-tuned on a new style, a model is far less sure there than where it started (nineteenth
session, the improve loop: the starting model's 0.30 cost whole-car photos 0.05-0.09 of mean Dice).

The pure parts (:func:`choose_held`, :func:`choose_threshold`) need no TensorFlow; :class:`Calibrate` is the
Keras callback (imported once TensorFlow is set up).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .train_budget import progress

log = logging.getLogger("viaseg.train")

CALIBRATE_AT = 0.75  # the share of the run (train_budget.progress) trained without the calibration photos
MIN_HELD = 5  # fewer annotated calibration photos than this: no calibration (the preset's threshold)
RANGE = (0.1, 0.7)  # thresholds a calibration may choose
IMPROVE_SHARE = 0.5  # Improve model: the share of its new photos kept out for calibration ...
IMPROVE_AT = 0.5  # ... until this share of its budget (the new photos are what it must learn)


def choose_held(
    masks: np.ndarray,
    sources: list[int],
    fraction: float,
    seed: int,
    names: list[str] | None = None,
    only: list[str] | None = None,
) -> np.ndarray | None:
    """Which training rows to keep for calibration (bool per row), or None when there are too few.

    ``masks``: the training masks (N x H x W); only annotated rows (some damage) are chosen, ``fraction`` of
    them from each source (at least one per source that has two or more), by a generator seeded with ``seed``;
    at least one annotated row of every source stays in training.

    ``only`` (with ``names``, the rows' file names): choose among the photos of these names instead,
    ``fraction`` of them (at least :data:`MIN_HELD`), and keep out every row of a chosen photo (*Improve
    model* draws its new photos several times, as rows of further sources)."""
    if not 0.0 < fraction < 1.0:
        return None
    n = len(masks)
    annotated = np.array([bool(np.any(m)) for m in masks], bool)
    if only is not None:
        if names is None or len(names) != n:
            raise ValueError("choose_held: 'only' needs a file name per row")
        wanted = set(only)
        pool = sorted({nm for nm, a in zip(names, annotated, strict=True) if a and nm in wanted})
        take = min(len(pool) - 1, int(fraction * len(pool)))
        if take < MIN_HELD:
            return None
        rng = np.random.default_rng(10_007 + int(seed))
        chosen = set(rng.choice(pool, take, replace=False).tolist())
        return np.array([nm in chosen for nm in names], bool)
    src = np.asarray(sources if sources else [0] * n)
    rng = np.random.default_rng(10_007 + int(seed))
    held = np.zeros(n, bool)
    for k in sorted(set(src.tolist())):
        idx = np.flatnonzero(annotated & (src == k))
        if len(idx) < 2:
            continue
        take = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        held[rng.choice(idx, take, replace=False)] = True
    return held if held.sum() >= MIN_HELD else None


def choose_threshold(sweep: list[dict], lo: float = RANGE[0], hi: float = RANGE[1]) -> float:
    """The threshold of ``sweep`` (``[{"threshold", "mean_dice"}, ...]`` in increasing threshold, as
    ``EvalResult.sweep`` gives) in ``[lo, hi]`` with the best mean Dice averaged with its two neighbours';
    ties: the one nearest 0.5."""
    th = np.array([r["threshold"] for r in sweep], float)
    md = np.array([r["mean_dice"] for r in sweep], float)
    if not len(th):
        raise ValueError("empty sweep")
    padded = np.concatenate([md[:1], md, md[-1:]])
    smooth = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0
    inside = np.flatnonzero((th >= lo - 1e-9) & (th <= hi + 1e-9))
    if not len(inside):
        raise ValueError(f"no swept threshold in [{lo}, {hi}]")
    best = max(inside, key=lambda i: (round(float(smooth[i]), 9), -abs(th[i] - 0.5)))
    return float(round(th[best], 4))


def skip_reason(cfg: Any, held: np.ndarray | None) -> str:
    """Why a run does not calibrate its threshold ('' when it does)."""
    if not cfg.calibrate:
        return "off (a threshold was given, or the preset does not calibrate)"
    if cfg.init_from and not cfg.calibrate_on:
        return (
            "off when fine-tuning without new photos named (Improve model names the photos new or edited since "
            "its starting model); the starting model's threshold"
        )
    if cfg.strategy != "default":
        return f"off with the {cfg.strategy} strategy"
    if held is None and cfg.init_from:
        return (
            f"too few photos new or edited since the starting model to keep {cfg.calibrate:.0%} of them out "
            f"(at least {MIN_HELD} needed); the starting model's threshold"
        )
    if held is None:
        return (
            f"too few annotated training photos to keep {cfg.calibrate:.0%} of them out "
            f"(at least {MIN_HELD} needed)"
        )
    return ""


def threshold_line(summary: dict) -> str:
    """How a run's threshold was set, in words (the Runs tab, the CLI), from its ``summary.json``."""
    t = summary.get("threshold")
    cal = summary.get("threshold_calibration") or {}
    if not isinstance(t, (int, float)):
        return "threshold: not recorded (a run from before calibration)"
    if cal.get("threshold") is not None:
        return (
            f"threshold {t:.2f}: calibrated on {cal.get('n_images')} training photos kept out of training "
            f"until {cal.get('at_seconds', 0):.0f} s (epoch {cal.get('at_epoch')}), then trained on"
        )
    if cal.get("ensemble"):
        return f"threshold {t:.2f}: {cal['ensemble']}"
    if cal.get("inherited") is not None:
        return (
            f"threshold {t:.2f}: the starting model's (a fine-tuning calibrates only on "
            f"{int(np.ceil(MIN_HELD / IMPROVE_SHARE))} or more new or edited photos)"
        )
    if cal.get("skipped"):
        return f"threshold {t:.2f}: not calibrated ({cal['skipped']})"
    return f"threshold {t:.2f}"


def make_callback(keras_mod):
    """The :class:`Calibrate` callback class (built on demand: this module must import without Keras)."""

    class Calibrate(keras_mod.callbacks.Callback):
        """At the first epoch end past :data:`CALIBRATE_AT` of the run: score the held-out photos over every
        threshold, keep the best in ``state["calibration"]``, then let them into training (``release``)."""

        def __init__(self, cfg, state: dict, held: np.ndarray, release, held_entries: list, meta: dict):
            super().__init__()
            self.cfg, self.state, self.held, self.release = cfg, state, held, release
            self.held_entries, self.meta = held_entries, dict(meta)
            self.done = False

        def _progress(self, epoch: int) -> float:
            return progress(self.cfg, self.state, epoch + 1)

        def on_epoch_end(self, epoch, logs=None):
            if self.done or self._progress(epoch) < (IMPROVE_AT if self.cfg.init_from else CALIBRATE_AT):
                return
            self.done = True
            try:
                self.state["calibration"] = self.calibrate(epoch)
            except Exception as exc:  # calibration never ends a run: the preset's threshold stays
                log.warning("threshold calibration failed: %s", exc)
                self.state["calibration"] = {"threshold": None, "skipped": f"failed: {exc}"}
            self.release.assign(True)

        def calibrate(self, epoch: int) -> dict:
            from .evaluate import evaluate
            from .predict import Predictor

            t = time.perf_counter()
            result = evaluate(
                Predictor(self.model, self.meta),
                self.held_entries,
                batch_size=self.cfg.batch_size,
                sweep=True,
            )
            return calibration_record(self.cfg, result, self.held_entries, epoch, self.state["t0"], t)

    return Calibrate


def calibration_record(cfg, result, held_entries: list, epoch: int, t0: float, t: float) -> dict:
    """What a run records of its calibration (``summary["threshold_calibration"]``): the threshold chosen on
    ``result`` (an ``evaluate(..., sweep=True)`` of the ``held_entries``) at ``epoch`` (from 0), the sweep, and
    the mean Dice at the chosen and the preset's threshold; ``t0``: the run's start, ``t``: the scoring's."""
    sweep = result.sweep
    if not sweep or result.count < MIN_HELD:
        return {"threshold": None, "skipped": f"only {result.count} calibration photos could be read"}
    chosen = choose_threshold(sweep)
    at = {round(r["threshold"], 2): r["mean_dice"] for r in sweep}
    out = {
        "threshold": chosen,
        "n_images": result.count,
        "images": [e.filename for e in held_entries],
        "at_epoch": epoch + 1,
        "at_seconds": round(time.perf_counter() - t0, 1),
        "seconds": round(time.perf_counter() - t, 1),
        "mean_dice_at_chosen": at.get(round(chosen, 2)),
        "mean_dice_at_preset": at.get(round(float(cfg.threshold), 2)),
        "sweep": [
            {"threshold": r["threshold"], "mean_dice": r["mean_dice"]}
            for r in sweep
            if RANGE[0] - 1e-9 <= r["threshold"] <= RANGE[1] + 1e-9
        ],
    }

    def f(v) -> str:
        return "?" if v is None else f"{v:.3f}"

    log.info(
        f"threshold calibrated on {result.count} training photos kept out so far: {chosen:.2f} "
        f"(mean Dice {f(out['mean_dice_at_chosen'])}; {f(out['mean_dice_at_preset'])} at the "
        f"preset's {cfg.threshold:.2f}); they now join training"
    )
    return out
