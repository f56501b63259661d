"""Cross-validation: folds keep copies together and spread every source; out-of-fold scoring is complete and
honest (the held-out fold chooses nothing); bootstrap intervals; the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from viaseg.core.annotation.project import ImageEntry
from viaseg.core.ml.crossval import OofScore, assign_folds, load_map, summarize


def test_folds_keep_groups_together_and_spread_each_source():
    sources = [0] * 20 + [1] * 40
    groups = list(range(60))
    groups[1] = groups[0]  # image 1 is a copy of image 0
    groups[30] = groups[0]  # ... and so is an image of the other source
    folds = assign_folds(sources, groups, 5, seed=3)
    assert folds[0] == folds[1] == folds[30]
    for src, n in ((0, 20), (1, 40)):
        per = [sum(1 for i, f in enumerate(folds) if f == k and sources[i] == src) for k in range(5)]
        assert max(per) - min(per) <= 2, per  # every fold holds its share of each source
        assert sum(per) == n
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    assert assign_folds(sources, groups, 5, seed=3) == folds  # seeded
    assert assign_folds(sources, groups, 5, seed=4) != folds
    with pytest.raises(ValueError):
        assign_folds(sources, groups, 1)


def _row(dice, inter, nt, npred, name="x"):
    return OofScore(name, "s", 0, dice, dice / (2 - dice) if dice < 2 else 1.0, nt, npred, inter)


def test_summary_means_pooled_scores_and_intervals():
    rows = [_row(1.0, 100, 100, 100, "a"), _row(0.0, 0, 10, 0, "b"), _row(0.5, 25, 50, 50, "c")]
    s = summarize(rows, n_boot=500, seed=1)
    assert s["n"] == 3
    assert s["mean_dice"] == pytest.approx(0.5)
    assert s["global_dice"] == pytest.approx(2 * 125 / (150 + 160))  # pooled pixel counts, not a mean
    lo, hi = s["mean_dice_ci95"]
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    one = summarize([_row(0.7, 35, 50, 50)], n_boot=50)
    assert one["mean_dice_ci95"] == [0.7, 0.7]  # one image: nothing to resample
    assert summarize([])["mean_dice"] is None


@pytest.fixture
def tiny_sources(tmp_path):
    from test_train import make_images

    a = make_images(tmp_path / "a", 6, seed=11)
    b = make_images(tmp_path / "b", 4, seed=12)
    # a copy of a[0] under another name: it must land in a[0]'s fold, or the model would be scored on a
    # picture it trained on
    shutil.copy(a[0].path, tmp_path / "a" / "copy.png")
    a.append(ImageEntry(key="copy.png", filename="copy.png", regions=a[0].regions, base_dir=tmp_path / "a"))
    return [("a", a), ("b", b)]


def test_crossval_scores_every_image_once_with_a_model_that_never_saw_it(tmp_path, tiny_sources, monkeypatch):
    pytest.importorskip("tensorflow")
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.checks.label_errors import DEFAULT_RULE, error_score
    from viaseg.core.ml import train as train_mod
    from viaseg.core.ml.crossval import crossval
    from viaseg.core.ml.pipeline import Augment
    from viaseg.core.ml.presets import preset

    seen = []
    real_train = train_mod.train

    def spy(cfg, on_event=None, should_stop=None):
        seen.append(cfg)
        return real_train(cfg, on_event=on_event, should_stop=should_stop)

    monkeypatch.setattr(train_mod, "train", spy)
    cfg = preset(
        "default",
        size=32,
        encoder="xception",
        base_width=8,
        batch_size=4,
        epochs=2,
        sample_every=0,
        augment=Augment.off(),
        tta=False,
        tta_scales=(1.0,),
    )
    res = crossval(cfg, tiny_sources, tmp_path / "cv", folds=3, predict_scales=(1.0, 2.0))
    assert not res.errors
    entries = {(src, e.filename): e for src, ents in tiny_sources for e in ents}
    names = sorted(s.image for s in res.per_image)
    all_names = sorted(e.filename for _, ents in tiny_sources for e in ents)
    assert names == all_names  # every image scored exactly once
    fold_of = {s.image: s.fold for s in res.per_image}
    assert fold_of["copy.png"] == fold_of[tiny_sources[0][1][0].filename]
    assert len(seen) == 3
    for f, cfg_f in enumerate(seen):
        trained = {e.filename for e in cfg_f.dataset} | {e.filename for x in cfg_f.extra_train for e in x}
        held = {s.image for s in res.per_image if s.fold == f}
        assert not trained & held  # the fold's model never saw its held-out images
        assert cfg_f.keep == "last" and cfg_f.lr_schedule != "plateau"  # the fold chooses nothing
        assert [e.filename for e in cfg_f.val] and {e.filename for e in cfg_f.val} == held
        # each source stays a source of its own, so balanced sampling still sees two datasets
        assert len(cfg_f.extra_train) == 1
    for s in res.per_image:
        m = load_map(tmp_path / "cv" / s.map_path)
        assert m.shape == (48, 48) and 0.0 <= m.min() <= m.max() <= 1.0
        assert all(d["kind"] in ("missed", "extra") and d["area"] > 0 for d in s.disagreements)
        if s.dice < 0.5 and s.true_pixels > 100:  # a poor map of a real region disagrees somewhere
            assert s.disagreements
        # the label-error score of the review order, computed from the same map and annotation
        # (the map is kept as 8-bit PNG: a pixel at the threshold may flip, hence the tolerance)
        truth = rasterize(entries[s.source, s.image].regions, (48, 48))
        assert s.review_score == pytest.approx(error_score(DEFAULT_RULE, truth, m, cfg.threshold), abs=0.05)
    saved = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    assert saved["n_images"] == len(all_names) and set(saved["by_source"]) == {"a", "b"}
    # the maps average the sizes asked for, not the model's own (1 only), and each fold says so
    assert [r["predict_scales"] for r in saved["fold_runs"]] == [[1.0, 2.0]] * 3
    from viaseg.core.ml.predict import Predictor

    s0 = res.per_image[0]
    model = Predictor.load(
        tmp_path / "cv" / saved["fold_runs"][s0.fold]["run_dir"] / "model.keras", cache=False
    )
    photo = entries[s0.source, s0.image].path
    stored = load_map(tmp_path / "cv" / s0.map_path)
    own = model.predict(photo).probabilities
    model.scales = (1.0, 2.0)
    asked = model.predict(photo).probabilities
    assert np.abs(stored - asked).max() <= 1 / 255 + 1e-6 < np.abs(stored - own).max()
    dices = [r["dice"] for r in saved["per_image"]]
    assert dices == sorted(dices)  # worst first
    assert saved["mean_dice"] == pytest.approx(np.mean([s.dice for s in res.per_image]))


def test_crossval_cli_runs_one_fold_and_refuses_bad_folds(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from test_train import _write_via_dataset
    from viaseg.core.cli import main

    ds = _write_via_dataset(tmp_path / "ds", 6)
    out = tmp_path / "cv"
    args = ["crossval", str(ds), "--out", str(out), "--folds", "3", "--only-folds", "1"]
    args += [
        "--size",
        "32",
        "--encoder",
        "xception",
        "--base-width",
        "8",
        "--epochs",
        "1",
        "--batch-size",
        "4",
    ]
    args += ["--json", "--quiet", "--no-tta", "--tta-scales", "1"]
    rc = main(args)
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["fold"] for r in res["fold_runs"]] == [1]
    assert res["n_images"] == 2 and all(r["fold"] == 1 for r in res["per_image"])
    assert main(["crossval", str(ds), "--out", str(out), "--folds", "3", "--only-folds", "5"]) == 2
    assert "fold 5 does not exist" in capsys.readouterr().err
    many = tmp_path / "cv20"  # more folds than photos: a traceback before, and an empty folder left behind
    assert main(["crossval", str(ds), "--out", str(many), "--folds", "20", "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert "6 annotated images cannot be divided into 20 folds: use --folds 6 or fewer" in err
    assert "Traceback" not in err and not many.exists()

    # the other two folds run apart (another day, another machine), then joined into one result
    rc = main(
        ["crossval", str(ds), "--out", str(tmp_path / "cv02"), *args[4:6], "--only-folds", "0,2", *args[8:]]
    )
    assert rc == 0
    part = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "crossval",
                "--merge",
                str(out),
                str(tmp_path / "cv02"),
                "--out",
                str(tmp_path / "all"),
                "--json",
            ]
        )
        == 0
    )
    merged = json.loads(capsys.readouterr().out)
    assert [r["fold"] for r in merged["fold_runs"]] == [0, 1, 2]
    assert sorted(r["image"] for r in merged["per_image"]) == sorted(
        e.name for e in (ds / "train").iterdir() if e.suffix != ".json"
    )
    rows = merged["per_image"]
    assert merged["n_images"] == 6 and merged["mean_dice"] == pytest.approx(
        np.mean([r["dice"] for r in rows])
    )
    assert {r["image"]: r["dice"] for r in rows} == {
        r["image"]: r["dice"] for r in res["per_image"] + part["per_image"]
    }
    for r in rows:  # each map still found, from the merged folder
        assert load_map(tmp_path / "all" / r["map_path"]).shape == (48, 48)
    assert json.loads((tmp_path / "all" / "crossval.json").read_text())["n_images"] == 6
    # a fold in two inputs, a dataset with --merge, a folder without results: refused, naming the problem
    assert main(["crossval", "--merge", str(out), str(out), "--out", str(tmp_path / "x")]) == 2
    assert "fold 1 is also in" in capsys.readouterr().err
    assert main(["crossval", str(ds), "--merge", str(out), "--out", str(tmp_path / "x")]) == 2
    assert "give no DATASET" in capsys.readouterr().err
    assert main(["crossval", "--merge", str(ds), "--out", str(tmp_path / "x")]) == 2
    assert "crossval.json" in capsys.readouterr().err
    assert main(["crossval", "--merge", str(out), str(tmp_path / "cv02"), "--out", str(out)]) == 2
    assert "an input of the merge" in capsys.readouterr().err
    assert [r["fold"] for r in json.loads((out / "crossval.json").read_text())["fold_runs"]] == [1]  # kept
    assert main(["crossval", "--out", str(tmp_path / "x")]) == 2
    assert "at least one DATASET" in capsys.readouterr().err
