"""Several shorter runs averaged into one model: ``TrainConfig.ensemble`` (``viaseg train --ensemble K``).

K members train one after another, each for 1/K of the time limit and of the step budget (or all the epochs
when there is no time limit) with its own seed (``seed * K + k``: runs of different seeds share no member), each
in its own run folder ``RUN/member_k/`` exactly as a single run does (its own threshold calibration included). ``RUN/model.keras``
then holds one network that runs every member on the same input and averages their probabilities
(:func:`combine`); its threshold is the mean of the members' (each chosen on photos that member had not trained
on yet), and it is scored on every validation set as a single run is (``RUN/summary.json``). The Predictor runs
an ensemble's members as one function, each with its batch norms folded (``predict.Predictor``); a model file
is all the app, ``viaseg predict / evaluate / crossval / export`` need.

Events: each member's ``Started`` carries ``part=(k, K)`` and a note saying so; the members' own ``Finished`` /
``Failed`` are not passed on: the ensemble reports one ``Finished`` (its folder and model) or one ``Failed`` (which
member failed, and why). ``RUN/history.csv`` holds the members' epochs one after another (a ``member`` column,
epochs counted on), so the run shows its curves as a single run does.

Why (docs/RESULTS.md, twenty-fifth session): out of fold on the 149 training photos (folds 0 and 1 of 5, 30
held-out photos each), two 300-s members averaged scored 0.599 and 0.483 where one 600-s run scored 0.578 and
0.472 the same hour (paired +0.021, s.e. 0.013; +0.011, s.e. 0.024), though each member alone scored only
0.45-0.55: their errors differ more than a second five minutes improves one model. Not the default: the gain
is within two standard errors, with the EfficientNet-Lite0 encoder on a faster CPU (thirty-fourth session: about
55 epochs a member, 105-110 for the one network) it is +0.006 (s.e. 0.012) on the same two folds, such a model
cannot be fine-tuned (*Improve model*), and batch prediction costs K times the network. The app runs half the
members on the photo and half on its mirror image (``predict.interactive``), so two cost it what one does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENSEMBLE_KEY = "ensemble"  # the model metadata's record of its members (absent: a single network)


def fine_tune_problem(path: str | Path) -> str:
    """Why the model at ``path`` cannot be fine-tuned (an average of several networks), else "" (also for a file
    that cannot be read: loading it says why). No TensorFlow: the metadata only."""
    from .modelio import read_meta

    try:
        ens = read_meta(path).get(ENSEMBLE_KEY)
    except Exception:
        return ""
    if not ens:
        return ""
    if (
        isinstance(ens, dict) and ens.get("members") == 1
    ):  # a stopped run's one network, saved before it said so
        return ""
    return (
        f"{path}: an ensemble of several networks cannot be fine-tuned as one; start from one of its members "
        "(member_0/model.keras in its run folder) or train a new model"
    )


def member_seed(seed: int, k: int, n: int) -> int:
    """The seed of member ``k`` of ``n`` of a run with ``seed``."""
    return int(seed) * int(n) + int(k)


def combine(members: list, name: str = "ensemble"):
    """One Keras model running every model of ``members`` (same input shape) on its input and averaging
    their outputs; each member is kept whole, as a nested model named ``member_k``."""
    import keras

    shape = tuple(members[0].inputs[0].shape[1:])
    inp = keras.Input(shape=shape, name="image")
    outs = []
    for k, m in enumerate(members):
        if len(m.inputs) != 1 or len(m.outputs) != 1:
            raise ValueError("an ensemble's members must each take one image and give one map")
        outs.append(keras.Model(m.inputs[0], m.outputs[0], name=f"member_{k}")(inp))
    out = outs[0] if len(outs) == 1 else keras.layers.Average(name="average", dtype="float32")(outs)
    return keras.Model(inp, out, name=name)


def members_of(model) -> list:
    """The member networks of an ensemble model made by :func:`combine` (in order)."""
    import keras

    subs = [
        layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name.startswith("member_")
    ]
    return sorted(subs, key=lambda m: int(m.name.split("_")[1]))


def train_ensemble(
    cfg,
    train_one: Callable[..., Any],
    on_event: Callable[[object], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: list | None = None,
):
    """Train ``cfg.ensemble`` members with ``train_one`` (``train.train`` for one network) and save their
    average; returns a ``TrainResult`` for the whole (its ``summary``: the first member's, with the ensemble's
    scores, threshold and members). Never raises for a training failure."""
    from datetime import datetime

    from .train_events import Failed, TrainResult

    n = int(cfg.ensemble)
    run_dir = Path(cfg.out_dir) if cfg.out_dir else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")

    def fail(message: str) -> TrainResult:
        if on_event is not None:
            on_event(Failed(message, run_dir, None))
        return TrainResult(ok=False, run_dir=run_dir, error=message)

    if cfg.init_from:
        return fail(
            "an ensemble trains its members from the start: --ensemble cannot fine-tune (--init-from)"
        )
    if cfg.strategy == "multiworker":
        return fail("an ensemble trains on one machine: --ensemble cannot run with the multiworker strategy")
    per = cfg.time_limit_s / n if cfg.time_limit_s else None
    member_steps = (
        -(-cfg.max_steps // n) if cfg.max_steps else 0
    )  # its share (still >= 40 epochs: train_budget)
    results: list[Any] = []
    for k in range(n):
        if results and should_stop is not None and should_stop():
            break
        member_events = _member_events(on_event, k, n)
        mcfg = dataclasses.replace(
            cfg,
            ensemble=1,
            seed=member_seed(cfg.seed, k, n),
            time_limit_s=per,
            max_steps=member_steps,
            out_dir=run_dir / f"member_{k}",
        )
        res = train_one(mcfg, on_event=member_events, should_stop=should_stop, callbacks=callbacks)
        if not res.ok or res.model_path is None:
            return fail(f"member {k + 1} of {n}: {res.error or 'no model'}")
        results.append(res)
    try:
        result = _assemble(cfg, run_dir, results, n)
    except Exception as exc:  # a message, never a traceback
        return fail(f"cannot assemble the ensemble: {type(exc).__name__}: {exc}")
    if on_event is not None:
        from .train_events import Finished

        on_event(Finished(result.best_epoch, result.best_metrics, run_dir, result.model_path, result.reason))
    return result


def _member_events(on_event: Callable[[object], None] | None, k: int, n: int):
    """``on_event`` for member ``k`` of ``n``: its Started says which network it is; its Finished / Failed stay
    inside (the ensemble reports its own)."""
    if on_event is None:
        return None
    from .train_events import Failed, Finished, Started

    def forward(ev: object) -> None:
        if isinstance(ev, (Finished, Failed)):
            return
        if isinstance(ev, Started):
            note = f"network {k + 1} of {n}; the model averages them when the last one is done"
            ev = dataclasses.replace(ev, part=(k, n), notes=[*ev.notes, note])
        on_event(ev)

    return forward


def write_history(run_dir: Path, member_dirs: list[Path]) -> Path | None:
    """``run_dir/history.csv``: every member's ``history.csv`` one after another, a ``member`` column first and
    the epochs counted on across members (None when no member wrote one)."""
    import csv

    rows: list[dict] = []
    fields: list[str] = ["member", "epoch"]
    for k, d in enumerate(member_dirs):
        try:
            with (Path(d) / "history.csv").open(newline="", encoding="utf-8") as fh:
                member_rows = list(csv.DictReader(fh))
        except (OSError, csv.Error):
            continue
        offset = len(rows)
        for i, row in enumerate(member_rows):
            fields += [f for f in row if f not in fields]
            rows.append({**row, "member": k, "epoch": offset + i})
    if not rows:
        return None
    path = Path(run_dir) / "history.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run_folder_extras(cfg, run_dir: Path, hist: Path | None, member_dirs: list[Path], summary: dict) -> None:
    """What every run folder holds, for the ensemble's too (they were only in ``member_k/``): ``config.json``,
    ``curves.png`` of the members' epochs one after another, and the last member's ``samples/``."""
    import csv
    import shutil

    from .plots import plot_curves

    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    try:
        if hist is not None:
            with hist.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            series: dict[str, list[float]] = {}
            for key in rows[0] if rows else []:
                if key in ("member", "epoch"):
                    continue
                try:
                    series[key] = [float(r[key]) for r in rows]
                except (TypeError, ValueError):
                    continue  # a column some members lack
            plot_curves(series, run_dir / "curves.png")
        samples = member_dirs[-1] / "samples" if member_dirs else None
        if samples is not None and samples.is_dir() and not (run_dir / "samples").exists():
            shutil.copytree(samples, run_dir / "samples")
    except Exception as exc:  # a figure is not worth the run: said, as a single run says it
        summary.setdefault("warnings", []).append(f"cannot write curves.png or samples/: {exc}")
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


def _assemble(cfg, run_dir: Path, results: list, n: int):
    import numpy as np

    from .modelio import load_model, save_model
    from .train_events import TrainResult

    loaded = [load_model(r.model_path) for r in results]
    metas = [m for _, m in loaded]
    thresholds = [float(m.get("threshold", cfg.threshold)) for m in metas]
    meta = dict(metas[0])
    meta["threshold"] = float(np.mean(thresholds))
    record = {
        "members": len(results),
        "asked": n,
        "seeds": [member_seed(cfg.seed, k, n) for k in range(len(results))],
        "thresholds": thresholds,
        "time_limit_s_each": cfg.time_limit_s / n if cfg.time_limit_s else None,
        "member_models": [str(Path(r.model_path).relative_to(run_dir)) for r in results],
    }
    if len(results) > 1:
        meta[ENSEMBLE_KEY] = record
        model = combine([m for m, _ in loaded])
    else:  # stopped after its first network: the model is that network (it can be fine-tuned, as any other)
        meta["stopped_ensemble"] = record
        model = loaded[0][0]
    path = save_model(model, run_dir / "model.keras", meta)

    first = results[0].summary
    summary: dict[str, Any] = dict(first)
    warnings = list(first.get("warnings") or [])
    val_sets = _score(cfg, model, meta, summary, warnings, len(results), n)
    summary.update(
        val_sets=val_sets or first.get("val_sets", []),
        threshold=meta["threshold"],
        threshold_calibration={
            "skipped": None,
            "ensemble": f"the mean of its {len(results)} members' thresholds "
            + " / ".join(f"{t:.2f}" for t in thresholds),
        },
        ensemble=record,
        epochs_run=sum(int(r.summary.get("epochs_run") or 0) for r in results),
        train_seconds=round(sum(float(r.summary.get("train_seconds") or 0.0) for r in results), 2),
        params=int(model.count_params()),
        warnings=warnings,
        model_path=str(path),
    )
    if len(results) < n:
        summary["warnings"] = [
            *warnings,
            f"stopped after {len(results)} of {n} members: the model averages those",
        ]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    hist = write_history(run_dir, [Path(r.run_dir) for r in results])
    _run_folder_extras(cfg, run_dir, hist, [Path(r.run_dir) for r in results], summary)
    return TrainResult(
        ok=True,
        run_dir=run_dir,
        model_path=path,
        best_epoch=results[-1].best_epoch,
        best_metrics=dict(results[-1].best_metrics),
        summary=summary,
        history=results[0].history,
        reason=results[-1].reason,
    )


def _score(cfg, model, meta: dict, summary: dict, warnings: list, members: int, n: int) -> list:
    """Score the averaged model on the first member's validation photos (``summary`` updated as a run's) and
    on every further validation set; returns the ``val_sets`` rows."""
    from .evaluate import evaluate
    from .predict import Predictor
    from .train_plumbing import resolve_data
    from .train_scoring import _score_more_val, _val_set_row

    mcfg = dataclasses.replace(cfg, ensemble=1, seed=member_seed(cfg.seed, 0, n))
    data = resolve_data(mcfg)
    scored = set(summary.get("per_image_dice") or {})
    val = [e for e in data.val if e.filename in scored]
    val_sets = []
    if val:
        res = evaluate(Predictor(model, meta), val, batch_size=cfg.batch_size)
        scores = {
            "mean_dice": res.mean_dice,
            "global_dice": res.global_dice,
            "mean_iou": res.mean_iou,
            "global_iou": res.global_iou,
        }
        summary.update(
            val_dice=res.mean_dice,
            val_global_dice=res.global_dice,
            val_iou=res.mean_iou,
            val_global_iou=res.global_iou,
            per_image_dice={s.image: s.dice for s in res.per_image},
            n_val=res.count,
            evaluated_on=f"val, full resolution, the {members} members averaged",
        )
        val_sets.append(_val_set_row(data.val_source, res.count, scores))
    for name, entries in data.more_val:
        val_sets.append(_score_more_val(model, meta, name, entries, data.train, mcfg, warnings))
    return val_sets
