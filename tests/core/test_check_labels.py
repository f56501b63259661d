"""Check labels (core side): the job the app sends to the training process, what a Stop in the middle of a fold
leaves out, refusals in a sentence, and reading crossval.json worst first."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest
from viaseg.core.annotation.dataset import Dataset, Split
from viaseg.core.annotation.project import ImageEntry, Project, Region
from viaseg.core.ml import crossval as crossval_mod
from viaseg.core.ml.check_labels import (
    CHECK_SCALES,
    CheckLabelsJob,
    FoldFailed,
    job_problem,
    make_job,
    most_folds,
    read_results,
    run_check_labels,
    split_hint,
)
from viaseg.core.ml.crossval import CrossvalResult, OofScore
from viaseg.core.ml.presets import preset


def entries(folder, n, prefix, regions=True):
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        name = f"{prefix}{i}.png"
        (folder / name).write_bytes(b"x")
        regs = [Region({"name": "rect", "x": 1, "y": 1, "width": 5, "height": 5}, {})] if regions else []
        out.append(ImageEntry(key=name, filename=name, regions=regs, base_dir=folder))
    return out


def dataset(tmp_path, n_train=6, n_val=2):
    tr, va = entries(tmp_path / "train", n_train, "t"), entries(tmp_path / "val", n_val, "v")
    un = entries(tmp_path / "test", 3, "u", regions=False)
    return Dataset(
        root=tmp_path,
        splits={
            "train": Split("train", Project(images=tr), tmp_path / "train", tr),
            "val": Split("val", Project(images=va), tmp_path / "val", va),
            "test": Split("test", None, tmp_path / "test", un),
        },
    )


def test_the_job_covers_the_annotated_splits_never_starts_from_a_model_and_pickles(tmp_path):
    cfg = preset("default", init_from="/some/model.keras", time_limit_s=600, ensemble=2)
    job = make_job(cfg, dataset(tmp_path), tmp_path / "out", folds=3, fold_seconds=45)
    assert [name for name, _ in job.sources] == ["train", "val"]  # the unlabeled split is not checked
    assert job.config.init_from is None  # that model may have seen the held-out photos
    assert job.config.ensemble == 1  # a fold's short budget goes to one network
    assert job.config.time_limit_s == 45 and cfg.time_limit_s == 600  # the recipe is a copy
    assert job_problem(job) is None
    back = pickle.loads(pickle.dumps(job))  # it travels to the training process
    assert isinstance(back, CheckLabelsJob) and back.folds == 3 and callable(back.run)


def test_the_check_averages_more_sizes_than_a_model_predicts_with(tmp_path, monkeypatch):
    """Check labels' maps average CHECK_SCALES (three sizes: more of the injected errors come first, see its
    comment) whatever the model stores; a job may ask for others, or for the model's own (None)."""
    asked = []

    def fake(cfg, sources, out_dir, folds, **kw):
        asked.append(kw.get("predict_scales", "not passed"))
        res = CrossvalResult(folds)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "crossval.json").write_text(json.dumps(res.to_dict()))
        return res

    monkeypatch.setattr(crossval_mod, "crossval", fake)
    job = make_job(preset("default"), dataset(tmp_path), tmp_path / "out", folds=3)
    assert job.predict_scales == CHECK_SCALES and len(CHECK_SCALES) > len(preset("default").tta_scales)
    run_check_labels(job)
    run_check_labels(dataclasses.replace(job, predict_scales=None))
    assert asked == [CHECK_SCALES, None]


def test_a_job_by_epochs_trains_that_many_epochs_without_a_time_limit(tmp_path):
    cfg = preset("default", time_limit_s=600, epochs=400)
    job = make_job(cfg, dataset(tmp_path), tmp_path / "out", folds=3, fold_epochs=15)
    assert job.fold_epochs == 15 and job.config.epochs == 15 and job.config.time_limit_s is None
    assert cfg.epochs == 400 and cfg.time_limit_s == 600  # the recipe is a copy
    assert job_problem(job) is None
    assert "at least 1" in job_problem(make_job(cfg, dataset(tmp_path / "b"), tmp_path / "o", fold_epochs=0))
    assert pickle.loads(pickle.dumps(job)).fold_epochs == 15


def test_too_few_photos_no_regions_or_photos_gone_are_sentences(tmp_path):
    cfg = preset("default")
    job = make_job(cfg, dataset(tmp_path, n_train=3, n_val=2), tmp_path / "out", folds=3)
    assert "at least 6 photos with regions or marked empty" in job_problem(
        job
    ) and "there are 5" in job_problem(job)
    assert most_folds(job) == 2  # what 5 photos allow (the dock then checks with 2)
    three = make_job(cfg, dataset(tmp_path / "d", n_train=1, n_val=2), tmp_path / "out", folds=5)
    assert most_folds(three) == 0
    # not even 2 folds fit: "choose fewer folds" would send the user to a control that cannot help
    assert "at least 4 photos with regions or marked empty" in job_problem(
        three
    ) and "fewer folds" not in job_problem(three)
    assert job_problem(make_job(cfg, dataset(tmp_path / "b"), tmp_path / "out", folds=2)) is None
    job = make_job(cfg, dataset(tmp_path / "c"), tmp_path / "out", folds=4)
    for e in job.sources[0][1][:4]:
        e.path.unlink()  # deleted while the project was open
    assert "not on disk" in job_problem(job)
    done = run_check_labels(job)  # the training process says the same, without a traceback
    assert not done.ok and done.results is None and "not on disk" in done.problem
    empty = make_job(cfg, dataset(tmp_path / "d"), tmp_path / "out")
    for _, ents in empty.sources:
        for e in ents:
            e.regions.clear()
    assert "no annotated regions" in job_problem(empty)


def _fake_crossval(stop_during=None, stop_before=None, fail=None):
    """Stands in for crossval: 3 folds of 2 images. The Stop comes during fold ``stop_during``'s training (after
    a batch, where train asks) or before fold ``stop_before`` begins; fold ``fail``'s training fails."""
    from viaseg.core.ml.train_events import BatchEnd, Failed, Finished

    stopper = {"on": False}

    def fake(cfg, sources, out_dir, folds, on_event, on_fold, should_stop, **kw):
        res = CrossvalResult(folds)
        for f in range(folds):
            stopper["on"] = stopper["on"] or f == stop_before
            if should_stop():
                res.stopped = True
                break
            on_fold(f, folds, f"fold {f + 1}/{folds}")
            on_event(f, BatchEnd(0, 0, 0.5, 0.5))
            if f == stop_during:
                stopper["on"] = True
                should_stop()
            if f == fail:
                on_event(f, Failed("out of memory"))
                res.errors.append(f"fold {f}: out of memory")
                continue
            on_event(f, Finished(0, {}, None, None))
            res.fold_runs.append({"fold": f})
            res.per_image += [OofScore(f"img{f}{k}.png", "train", f, 0.5, 0.3, 1, 1, 1) for k in range(2)]
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "crossval.json").write_text(json.dumps(res.to_dict()))
        return res

    return fake, stopper


@pytest.mark.parametrize("stop_during", [None, 1])
def test_a_stop_in_the_middle_of_a_fold_drops_that_folds_photos(tmp_path, monkeypatch, stop_during):
    fake, stopper = _fake_crossval(stop_during)
    monkeypatch.setattr(crossval_mod, "crossval", fake)
    job = make_job(preset("default"), dataset(tmp_path), tmp_path / "out", folds=3)
    events = []
    done = run_check_labels(job, events.append, should_stop=lambda: stopper["on"])
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "FoldProgress" and "BatchEnd" in kinds and "Finished" not in kinds
    res = read_results(done.results)
    folds = sorted({im.fold for im in res.images})
    if stop_during is None:
        assert not done.stopped and done.cut_fold is None and folds == [0, 1, 2]
    else:  # fold 1 saw the Stop mid-training: its half-trained model scores nothing; fold 0 stays
        assert done.stopped and done.cut_fold == 1 and folds == [0]
        assert res.stopped and res.cut_short_fold == 1


def test_a_stop_between_folds_cuts_nothing_short_and_a_failed_fold_is_an_event(tmp_path, monkeypatch):
    fake, stopper = _fake_crossval(stop_before=2, fail=0)
    monkeypatch.setattr(crossval_mod, "crossval", fake)
    job = make_job(preset("default"), dataset(tmp_path), tmp_path / "out", folds=3)
    events: list = []
    done = run_check_labels(job, events.append, should_stop=lambda: stopper["on"])
    assert done.stopped and done.cut_fold is None
    assert [(e.fold, e.message) for e in events if isinstance(e, FoldFailed)] == [(0, "out of memory")]
    assert [im.fold for im in read_results(done.results).images] == [1, 1]


def test_results_are_read_worst_first_with_clear_errors(tmp_path):
    rows = [
        {"image": "b.png", "source": "/d:train", "fold": 0, "dice": 0.4, "disagreements": []},
        {
            "image": "a.png",
            "source": "/d:train",
            "fold": 1,
            "dice": 0.2,
            "disagreements": [{"kind": "extra", "area": 30, "bbox": [0, 0, 5, 6], "polygon": []}],
        },
        {
            "image": "c.png",
            "source": "val",
            "fold": 1,
            "dice": 0.2,
            "disagreements": [{"kind": "missed", "area": 90, "bbox": [0, 0, 9, 10], "polygon": []}],
        },
    ]
    (tmp_path / "crossval.json").write_text(json.dumps({"folds": 2, "per_image": rows, "mean_dice": 0.27}))
    res = read_results(tmp_path)  # the folder works too
    assert [im.image for im in res.images] == ["c.png", "a.png", "b.png"]  # ties: the larger area first
    assert res.images[0].count("missed") == 1 and res.folds == 2
    assert split_hint("/d:train") == "train" and split_hint("val") == "val"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        read_results(bad)
    bad.write_text('{"folds": 2}')
    with pytest.raises(ValueError, match="per_image"):
        read_results(bad)
    with pytest.raises(ValueError, match="cannot read"):
        read_results(tmp_path / "nothing.json")
    # hand-edited numbers: the file is named (it was "invalid literal for int()" alone)
    for broken in (
        {"folds": "abc", "per_image": rows},
        {
            "folds": 2,
            "per_image": [
                {**rows[2], "disagreements": [{"kind": "missed", "area": "big", "bbox": [0, 0, 9, 10]}]}
            ],
        },
    ):
        bad.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=f"{bad}: not a readable check result"):
            read_results(bad)
    # results that carry the label-error score are ordered by it, highest first, whatever the Dice
    for row, score in zip(rows, (0.9, 0.1, 0.5), strict=True):
        row["review_score"] = score
    (tmp_path / "crossval.json").write_text(json.dumps({"folds": 2, "per_image": rows}))
    res = read_results(tmp_path)
    assert [im.image for im in res.images] == ["b.png", "c.png", "a.png"]
    assert res.images[0].review_score == pytest.approx(0.9)
