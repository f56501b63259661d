"""*Check labels*: a short cross-validation of the open project, run by the app's training process, and the
reading of its ``crossval.json`` (also one written by ``viaseg crossval``). No Qt; TensorFlow only inside
:func:`run_check_labels`.

The app hands a :class:`CheckLabelsJob` (picklable: the recipe, a snapshot of the annotations, the folder) to
the spawned training process, which runs job objects (``job.run``, see ``gui/train_child.py``).
:func:`run_check_labels` runs :func:`viaseg.core.ml.crossval.crossval` with every fold's training cut at
``fold_seconds``, or (``fold_epochs``) trained for that many epochs, its rate annealed over them, and each
held-out photo's map averaged over ``CHECK_SCALES`` (three sizes, one more than a model's own). Its events: a
:class:`FoldProgress` when a fold begins, then that fold's own ``Started``, ``BatchEnd`` and ``EpochEnd`` as
they come (in order, so they belong to the fold last announced), a :class:`FoldFailed` for a fold whose training
failed (the check goes on); its result: a :class:`CheckLabelsDone`. A Stop in the middle of a fold leaves that
fold's model half trained: its images are then dropped from the results (the folds finished before the Stop
stay).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .presets import TrainConfig

MIN_PER_FOLD = 2  # annotated images each fold must hold out, at least
# a fold's events worth the pipe (no sample pictures); its Finished/Failed are not the job's end, so they
# never travel as such
RELAYED = ("Started", "BatchEnd", "EpochEnd")


# the sizes (factors of the training size) each out-of-fold map averages, each with its mirror image: one size
# more than a model's own prediction (1 and 5/4), so small damage the fold's model half sees at its own size
# gets listed. Thirty-second session (tests/perf/bench_label_errors.py, docs/RESULTS.md): on the eight kept
# runs of seeds 0-7, re-predicted with the same fold models, 0.679 of the injected errors came in the first
# fifth of the areas list against 0.665 with 1 and 5/4 (0.629 with the size alone); on five new seeds (8-12,
# not looked at before the choice) 0.806 against 0.794. 3/2 adds seconds of prediction to minutes of training
CHECK_SCALES: tuple[float, ...] = (1.0, 1.25, 1.5)


@dataclass
class CheckLabelsJob:
    """What the training process runs instead of a training: ``config`` is the recipe (its ``dataset``,
    ``val`` and ``out_dir`` are replaced per fold), ``sources`` the annotated images (``[(name, entries)]``,
    one per split: the names are how the results name an image's split)."""

    config: TrainConfig
    sources: list[tuple[str, list[Any]]]
    out_dir: Path
    folds: int = 3
    fold_seconds: float = 60.0
    # each fold trains this many epochs (its rate annealed over them) instead of ``fold_seconds``: the same
    # models on any machine, only the time differs
    fold_epochs: int | None = None
    # the sizes each held-out photo's map averages (None: the fold model's own)
    predict_scales: tuple[float, ...] | None = CHECK_SCALES

    def run(
        self, on_event: Callable[[Any], None] | None = None, should_stop: Callable[[], bool] | None = None
    ) -> CheckLabelsDone:
        """What the training process calls (see ``gui/train_child.py``)."""
        return run_check_labels(self, on_event, should_stop)


@dataclass
class FoldProgress:
    """A fold begins (``fold`` from 0)."""

    fold: int
    folds: int
    message: str


@dataclass
class FoldFailed:
    """Fold ``fold``'s training failed (its images stay unscored; the other folds go on)."""

    fold: int
    message: str


@dataclass
class CheckLabelsDone:
    """The end of a check: ``results`` is ``out_dir/crossval.json`` (None when nothing was written)."""

    out_dir: Path
    results: Path | None
    stopped: bool = False
    cut_fold: int | None = None  # the fold a Stop interrupted (its images are not in the results)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""  # why the check could not run at all (then ``results`` is None)

    @property
    def ok(self) -> bool:
        return not self.problem


def usable(sources: list[tuple[str, list[Any]]], include_empty: bool = True) -> list[Any]:
    """The images a check can fold: annotated (or empty ones, which the recipe trains on as negatives) and
    found on disk."""
    return [e for _, ents in sources for e in ents if (e.regions or include_empty) and e.path.is_file()]


def most_folds(job: CheckLabelsJob) -> int:
    """The most folds, up to ``job.folds``, that its photos allow (``MIN_PER_FOLD`` held out by each); 0 when
    not even 2 folds fit."""
    k = min(job.folds, len(usable(job.sources, job.config.include_empty)) // MIN_PER_FOLD)
    return k if k >= 2 else 0


def job_problem(job: CheckLabelsJob) -> str | None:
    """Why ``job`` cannot run, in a sentence for the user; None when it can."""
    if not 2 <= job.folds <= 10:
        return f"{job.folds} folds: choose between 2 and 10"
    if job.fold_epochs is not None and job.fold_epochs < 1:
        return f"{job.fold_epochs} epochs per fold: choose at least 1"
    if not any(e.regions for _, ents in job.sources for e in ents):
        return "The project has no annotated regions yet: there is nothing to check."
    n = len(usable(job.sources, job.config.include_empty))
    listed = sum(1 for _, ents in job.sources for e in ents if e.regions or job.config.include_empty)
    need = MIN_PER_FOLD * job.folds
    if n < need:
        gone = f" ({listed - n} of the project's photos are not on disk)" if listed > n else ""
        # the photos counted: annotated ones, and (include_empty) those of labelled splits without regions,
        # which train as negatives; "annotated photos" said 3 of 1 annotated and 2 empty ones
        which = "photos with regions or marked empty" if job.config.include_empty else "annotated photos"
        if n < MIN_PER_FOLD * 2:  # not even the fewest folds fit: fewer folds would not help
            return (
                f"Checking labels needs at least {MIN_PER_FOLD * 2} {which} (two models, each learning from "
                f"the photos the other is checked on); there are {n}{gone}. Annotate more photos."
            )
        return (
            f"Checking labels with {job.folds} folds needs at least {need} {which} (each model must learn "
            f"from the others); there are {n}{gone}. Annotate more photos or choose fewer folds."
        )
    return None


def make_job(
    config: TrainConfig,
    dataset: Any,
    out_dir: str | Path,
    folds: int = 3,
    fold_seconds: float = 60.0,
    fold_epochs: int | None = None,
) -> CheckLabelsJob:
    """A job over every annotated split of ``dataset`` (a ``viaseg.core.annotation.dataset.Dataset``, e.g. the app's
    snapshot of its unsaved annotations). The recipe never starts from another model's weights: that model may
    have seen the held-out photos. Each fold is one network (``ensemble`` 1, whatever the recipe asks): a fold's
    few minutes split between several networks would leave each undertrained. With ``fold_epochs`` each fold
    trains that many epochs and no time limit (``fold_seconds`` is then unused)."""
    sources = [
        (name, list(sp.entries))
        for name, sp in dataset.splits.items()
        if getattr(sp, "labeled", sp.project is not None) and sp.entries
    ]
    budget: dict[str, Any] = (
        dict(time_limit_s=None, epochs=int(fold_epochs))
        if fold_epochs is not None
        else dict(time_limit_s=float(fold_seconds))
    )
    cfg = dataclasses.replace(config, init_from=None, dataset=None, val=None, ensemble=1, **budget)
    return CheckLabelsJob(
        cfg,
        sources,
        Path(out_dir),
        int(folds),
        float(fold_seconds),
        int(fold_epochs) if fold_epochs is not None else None,
    )


def run_check_labels(
    job: CheckLabelsJob,
    on_event: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CheckLabelsDone:
    """Run the check (see the module docstring). A job that cannot run (:func:`job_problem`) returns at once
    with the reason in ``problem``."""
    from .crossval import crossval

    problem = job_problem(job)
    if problem:
        return CheckLabelsDone(Path(job.out_dir), None, problem=problem)
    emit = on_event or (lambda ev: None)
    stop = should_stop or (lambda: False)
    t0 = time.monotonic()
    state: dict[str, int | None] = {"training": None, "cut": None}  # the fold whose model is learning now

    def on_fold(f: int, k: int, message: str) -> None:
        state["training"] = f
        emit(FoldProgress(f, k, message))

    def fold_event(f: int, ev: Any) -> None:
        kind = type(ev).__name__
        if kind in ("Finished", "Failed"):
            state["training"] = None
        if kind == "Failed":
            emit(FoldFailed(f, str(getattr(ev, "message", ev))))
        elif kind in RELAYED:
            emit(ev)

    def stopping() -> bool:
        if not stop():
            return False
        if state["cut"] is None and state["training"] is not None:
            state["cut"] = state["training"]  # a Stop between folds cuts nothing short
        return True

    result = crossval(
        job.config,
        job.sources,
        job.out_dir,
        folds=job.folds,
        on_event=fold_event,
        on_fold=on_fold,
        should_stop=stopping,
        predict_scales=job.predict_scales,
    )
    cut = state["cut"]
    if cut is not None:  # that fold's model learned for part of its time only: its scores would mislead
        _drop_fold(result, cut, Path(job.out_dir) / "crossval.json")
    return CheckLabelsDone(
        Path(job.out_dir),
        Path(job.out_dir) / "crossval.json",
        result.stopped,
        cut,
        list(result.errors),
        time.monotonic() - t0,
    )


def _drop_fold(result, cut: int, path: Path) -> None:
    """Leave fold ``cut`` out of ``result`` and rewrite its ``crossval.json`` saying so."""
    result.per_image = [s for s in result.per_image if s.fold != cut]
    result.fold_runs = [r for r in result.fold_runs if r.get("fold") != cut]
    result.stopped = True
    data = result.to_dict()
    data["cut_short_fold"] = cut
    path.write_text(json.dumps(data, indent=2, default=str))


# ----------------------------------------------------------------------------------------- reading results


@dataclass
class CheckedImage:
    """One image of a ``crossval.json``: its out-of-fold Dice and where the model disagrees (dicts with
    ``kind``, ``area``, ``bbox`` [x, y, w, h], ``polygon`` [[x, y], ...])."""

    image: str
    source: str
    fold: int
    dice: float
    disagreements: list[dict]
    review_score: float | None = None  # label_errors.DEFAULT_RULE's score (higher: review first), if stored
    file_bytes: int | None = None  # the photo's size when it was checked (crossval.OofScore), if stored

    def is_photo(self, path: str | Path) -> bool:
        """Whether ``path`` can be the photo this result was computed on: its size in bytes is the recorded one
        (a photo of the same name in another project is not); True when no size was recorded."""
        if self.file_bytes is None:
            return True
        try:
            return Path(path).stat().st_size == self.file_bytes
        except OSError:
            return False

    def count(self, kind: str) -> int:
        return sum(1 for d in self.disagreements if d.get("kind") == kind)

    @property
    def area(self) -> int:
        return sum(int(d.get("area", 0)) for d in self.disagreements)


@dataclass
class CheckResults:
    folds: int
    images: list[CheckedImage]  # worst first (label_errors.rank)
    mean_dice: float | None
    errors: list[str]
    skipped: list[str]
    stopped: bool
    cut_short_fold: int | None = None


def read_results(path: str | Path) -> CheckResults:
    """``crossval.json`` (a folder holding one, or the file) as :class:`CheckResults`, worst image first.
    Raises ``ValueError`` with a sentence for a file that is not one."""
    from ..checks.label_errors import rank
    from .crossval_merge import read_json

    p, data = read_json(path)
    try:
        return _results_of(p, data, rank)
    except (KeyError, TypeError, ValueError) as exc:  # a hand-edited or foreign file: named, with what broke
        if str(exc).startswith(str(p)):
            raise
        raise ValueError(f"{p}: not a readable check result ({type(exc).__name__}: {exc})") from None


def _results_of(p: Path, data: dict, rank) -> CheckResults:
    images = []
    for row in data["per_image"]:
        try:
            images.append(
                CheckedImage(
                    str(row["image"]),
                    str(row.get("source", "")),
                    int(row.get("fold", 0)),
                    float(row["dice"]),
                    [d for d in row.get("disagreements") or [] if isinstance(d, dict) and d.get("kind")],
                    float(row["review_score"]) if row.get("review_score") is not None else None,
                    int(row["file_bytes"]) if isinstance(row.get("file_bytes"), int) else None,
                )
            )
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{p}: an image row without image name or Dice: {str(row)[:120]}") from None
    keys = {i: f"{im.source}\n{im.image}\n{i}" for i, im in enumerate(images)}
    if images and all(im.review_score is not None for im in images):
        # the label-error score crossval stored (label_errors.DEFAULT_RULE), highest first
        def worst(i: int) -> tuple:
            return (-(images[i].review_score or 0.0), images[i].dice, -images[i].area, keys[i])

        order = [keys[i] for i in sorted(keys, key=worst)]
    else:  # results written before that score existed: lowest Dice first
        order = rank(
            {keys[i]: im.dice for i, im in enumerate(images)},
            {keys[i]: im.area for i, im in enumerate(images)},
        )
    back = {k: i for i, k in keys.items()}
    cut = data.get("cut_short_fold")
    return CheckResults(
        int(data.get("folds") or 0),
        [images[back[k]] for k in order],
        data.get("mean_dice"),
        [str(e) for e in data.get("errors") or []],
        [str(e) for e in data.get("skipped") or []],
        bool(data.get("stopped")),
        int(cut) if isinstance(cut, int) else None,
    )


def split_hint(source: str) -> str:
    """The split an image's ``source`` names: the app names sources by split (``train``), ``viaseg crossval``
    by ``DIR:split``."""
    return source.rsplit(":", 1)[-1] if ":" in source else source
