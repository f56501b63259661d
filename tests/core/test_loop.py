"""Improve model / Label next (core.loop): what a run trained on, what changed since, held-out choice,
the keep-the-better decision, a real fine-tuning run judged against its starting model, the uncertainty score."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from viaseg.core.annotation.project import ImageEntry, Region
from viaseg.core.ml import loop


def entry(name: str, xs=(1, 9, 9), ys=(1, 1, 9), attrs=None) -> ImageEntry:
    shape = {"name": "polygon", "all_points_x": list(xs), "all_points_y": list(ys)}
    return ImageEntry(key=name, filename=name, regions=[Region(shape, dict(attrs or {}))])


def test_region_hash_changes_with_geometry_and_attributes_only():
    a = entry("a.png")
    same = entry("a.png")
    assert loop.region_hash(a) == loop.region_hash(same)
    moved = entry("a.png", xs=(1, 9, 10))
    relabelled = entry("a.png", attrs={"name": "scratch"})
    assert len({loop.region_hash(a), loop.region_hash(moved), loop.region_hash(relabelled)}) == 3
    empty = ImageEntry(key="e", filename="e.png", regions=[])
    assert loop.region_hash(empty) != loop.region_hash(a)


def test_changed_since_lists_new_and_edited_annotated_images():
    old = [entry("a.png"), entry("b.png")]
    record = loop.trained_on(old)
    now = [
        entry("a.png"),
        entry("b.png", xs=(2, 9, 9)),
        entry("c.png"),
        ImageEntry(key="d", filename="d.png", regions=[]),
    ]
    assert [e.filename for e in loop.changed_since(now, record)] == ["b.png", "c.png"]
    assert loop.changed_since(now, None) == []  # a model that recorded nothing: nothing is called changed


def test_plan_prefers_the_validation_split_then_images_the_old_model_never_saw():
    train = [entry(f"{i}.png") for i in range(10)]
    record = loop.trained_on(train[:5])
    val = [entry("v.png")]
    p = loop.plan(train, val, record)
    assert p.held_out == val and p.fair and len(p.train) == 10
    assert p.changed == [f"{i}.png" for i in range(5, 10)]
    p = loop.plan(train, None, record, fraction=0.4, seed=1)
    held = {e.filename for e in p.held_out}
    assert len(held) == 2 and held <= {f"{i}.png" for i in range(5, 10)} and p.fair
    assert not held & {e.filename for e in p.train}  # judged images do not fine-tune
    assert not held & set(p.changed)
    p = loop.plan(train, None, loop.trained_on(train))  # the old model saw everything: said to be unfair
    assert p.held_out and not p.fair


def test_learn_problem_says_when_there_is_nothing_to_learn_from(tmp_path):
    bare = [
        ImageEntry(key="a", filename="a.png", regions=[]),
        ImageEntry(key="b", filename="b.png", regions=[]),
    ]
    said = loop.learn_problem(bare)
    assert "no annotated regions" in said and "Improve model" in said
    assert "Also train on" in loop.learn_problem(bare, "train")
    assert loop.learn_problem([*bare, entry("c.png")]) is None
    broken = tmp_path / "via_region_data.json"
    broken.write_text("{")
    said = loop.learn_problem(str(broken))
    assert said.startswith("Cannot improve the model:") and "via_region_data.json" in said
    assert loop.learn_problem(str(broken), "train").startswith("Cannot start training:")


def test_decide_keeps_the_better_model():
    assert loop.decide(0.5, 0.6) == "new"
    assert loop.decide(0.5, 0.5) == "new"  # not worse
    assert loop.decide(0.6, 0.5) == "old"
    assert loop.decide(None, 0.1) == "new"
    assert loop.decide(0.1, None) == "old"


def test_uncertainty_ranks_a_half_believed_photo_first():
    sure = np.zeros((40, 40), np.float32)
    sure[5:20, 5:20] = 0.98
    doubt = np.zeros((40, 40), np.float32)
    doubt[5:30, 5:30] = 0.5
    empty = np.zeros((40, 40), np.float32)
    scores = {
        "sure": loop.uncertainty(sure),
        "doubt": loop.uncertainty(doubt),
        "empty": loop.uncertainty(empty),
    }
    assert loop.rank_uncertain(scores) == ["doubt", "sure", "empty"]
    assert scores["empty"] == 0.0 and 0 < scores["doubt"] <= 1


def test_view_disagreement_ranks_a_photo_whose_answer_changes_with_a_flip_first():
    steady = np.zeros((40, 40), np.float32)
    steady[5:30, 10:30] = 0.5  # unsure, but the same both ways
    mirrored_steady = steady.copy()
    fickle = np.zeros((40, 40), np.float32)
    fickle[5:20, 5:20] = 0.9  # damage seen on one side only
    mirrored_fickle = np.zeros((40, 40), np.float32)
    mirrored_fickle[20:35, 20:35] = 0.9
    scores = {
        "steady": loop.view_disagreement(steady, mirrored_steady),
        "fickle": loop.view_disagreement(fickle, mirrored_fickle),
        "empty": loop.view_disagreement(np.zeros((40, 40)), np.full((40, 40), 0.01)),  # both under the floor
    }
    assert loop.rank_uncertain(scores)[0] == "fickle"
    assert scores["steady"] == 0.0 and scores["empty"] == 0.0 and 0 < scores["fickle"] <= 1
    assert loop.view_disagreement(fickle, mirrored_fickle) == pytest.approx(2 * 225 * 0.9 / 1600)
    with pytest.raises(ValueError):
        loop.view_disagreement(steady, steady[:20])


def unit(*v) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def test_rank_diverse_spreads_a_batch_over_unlike_photos():
    # four near copies of one hard scene (a), two of another (b), one unsure photo of a third kind (c)
    emb = {f"a{i}": unit(1, 0.01 * i, 0) for i in range(4)}
    emb |= {"b0": unit(0, 1, 0), "b1": unit(0.02, 1, 0), "c": unit(0, 0, 1)}
    scores = {"a0": 0.9, "a1": 0.89, "a2": 0.88, "a3": 0.87, "b0": 0.6, "b1": 0.55, "c": 0.5}
    assert loop.rank_uncertain(scores)[:3] == ["a0", "a1", "a2"]  # uncertainty alone: one scene thrice
    order = loop.rank_diverse(scores, emb, top=1.0)
    assert order[0] == "a0" and set(order[:3]) == {"a0", "b0", "c"}
    assert sorted(order) == sorted(scores)
    # photos like the labelled ones come later: with scene b labelled, its unsure photos lose their place
    order = loop.rank_diverse(scores, emb, labelled=np.stack([unit(0, 1, 0)]), top=1.0)
    assert order[:2] == ["a0", "c"] and order.index("b0") > order.index("a1")


def test_rank_diverse_keeps_the_uncertain_share_first_and_unreadable_photos_last():
    emb = {"sure": unit(0, 0, 1), "unsure1": unit(1, 0, 0), "unsure2": unit(1, 0.05, 0), "gone": None}
    scores = {"sure": 0.05, "unsure1": 0.9, "unsure2": 0.8, "gone": -1.0}
    # with top=0.5 the two unsure photos come first even though the sure one is far from both
    assert loop.rank_diverse(scores, emb, top=0.5) == ["unsure1", "unsure2", "sure", "gone"]
    assert loop.rank_diverse(scores, emb, top=1.0)[:2] == ["unsure1", "sure"]
    assert loop.rank_diverse({"x": 0.3}, {"x": None}) == ["x"]


def test_rank_typical_takes_the_typical_photo_of_each_uncovered_kind_first():
    # five photos of one common kind (a, around a centre), two of a rarer kind (b), one odd photo (c)
    emb = {f"a{i}": unit(1, 0, 0, 0.05 * (i - 2)) for i in range(5)}
    emb |= {"b0": unit(0, 1, 0, 0), "b1": unit(0, 1, 0.05, 0), "c": unit(0, 0.2, 1, 0)}
    order = loop.rank_typical(emb)
    assert order[0] == "a2"  # the middle of the largest group, not an edge of it
    assert order[1] in ("b0", "b1")  # then the next kind
    assert order.index("c") < order.index("a0")  # the odd photo before near copies of a covered kind
    assert sorted(order) == sorted(emb)
    # with kind a labelled already, the first photo is of another kind
    assert loop.rank_typical(emb, labelled=np.stack([unit(1, 0, 0, 0)]))[0] in ("b0", "b1")
    # ties by the scores (uncertainty), unreadable photos last
    tie = {"x": unit(1, 0, 0), "y": unit(1, 0, 0), "gone": None}
    assert loop.rank_typical(tie, scores={"x": 0.1, "y": 0.5, "gone": 0.9}) == ["y", "x", "gone"]
    assert loop.rank_typical({"g": None}) == ["g"]
    # weighted by doubt: the model is sure of kind a and unsure of kind b, so kind b is stood for first
    doubt = {n: (0.05 if n.startswith("a") else 0.5) for n in emb}
    assert loop.rank_typical(emb, scores=doubt)[0] == "a2"
    assert loop.rank_typical(emb, scores=doubt, weighted=True)[0] in ("b0", "b1")


def test_photo_embeddings_are_unit_vectors_alike_for_alike_photos(tmp_path):
    pytest.importorskip("tensorflow")
    import cv2
    from test_train import tiny
    from viaseg.core.ml.predict import Predictor
    from viaseg.core.ml.train import train

    res = train(tiny(tmp_path, epochs=1))
    assert res.ok, res.error
    pred = Predictor.load(res.model_path, cache=False)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    paths = {"a": tmp_path / "a.png", "a_copy": tmp_path / "a_copy.png", "flat": tmp_path / "flat.png"}
    cv2.imwrite(str(paths["a"]), a)
    cv2.imwrite(str(paths["a_copy"]), a)
    cv2.imwrite(str(paths["flat"]), np.full((96, 128, 3), 200, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    emb = loop.photo_embeddings(pred, [*paths.values(), tmp_path / "broken.jpg"])
    assert emb[str(tmp_path / "broken.jpg")] is None
    vecs = {k: emb[str(p)] for k, p in paths.items()}
    assert all(
        v is not None and v.ndim == 1 and np.linalg.norm(v) == pytest.approx(1, abs=1e-5)
        for v in vecs.values()
    )
    assert float(vecs["a"] @ vecs["a_copy"]) == pytest.approx(1, abs=1e-5)
    assert float(vecs["a"] @ vecs["flat"]) < float(vecs["a"] @ vecs["a_copy"]) - 1e-4


def test_improve_job_fine_tunes_records_and_judges_against_the_old_model(tmp_path):
    pytest.importorskip("tensorflow")
    from test_train import make_images, tiny
    from viaseg.core.ml.train import train

    first = tiny(tmp_path, epochs=2)
    present = list(first.dataset)
    gone = copy.deepcopy(present[0])  # listed in the project, its file missing: skipped, so not trained on
    gone.key = gone.filename = "gone.png"
    first.dataset = [*present, gone]
    res = train(first)
    assert res.ok, res.error
    summary = json.loads((res.run_dir / "summary.json").read_text())
    assert set(summary["trained_on"]) == {e.filename for e in present}
    assert loop.read_trained_on(res.model_path) == summary["trained_on"]

    more = make_images(tmp_path / "more", 3, seed=5)
    data = present + more
    edited = copy.deepcopy(data[0])
    edited.regions[0].shape["all_points_x"][0] += 1
    data[0] = edited
    cfg = tiny(
        tmp_path,
        dataset=data,
        val=None,
        epochs=1,
        out_dir=tmp_path / "improve",
        init_from=str(res.model_path),
    )
    job = loop.ImproveJob(cfg, emphasis=3)
    tcfg, p, record = job.prepare()
    assert record == summary["trained_on"]
    assert set(p.changed) | {e.filename for e in p.held_out} == {edited.filename} | {e.filename for e in more}
    assert p.fair and all(e.filename in {m.filename for m in more} for e in p.held_out)
    assert len(tcfg.extra_train) == 2 and all(len(x) == len(p.changed) for x in tcfg.extra_train)
    from viaseg.core.ml.train_plumbing import resolve_data

    trains = resolve_data(tcfg).train  # the copies are the weight: the extra data's de-duplication keeps them
    for name in p.changed:
        assert sum(e.filename == name for e in trains) == 3, name

    out = job.run()
    assert out.ok, out.error
    cmp = json.loads((out.run_dir / "improve.json").read_text())
    assert cmp == out.comparison
    assert cmp["held_out"] == [e.filename for e in p.held_out]
    old = loop.score_model(res.model_path, p.held_out)
    assert cmp["old_mean_dice"] == pytest.approx(old["mean_dice"])
    assert cmp["keep"] == loop.decide(cmp["old_mean_dice"], cmp["new_mean_dice"])
    # the improve run records what it trained on: the held-out photo is not in it
    rec = json.loads((out.run_dir / "summary.json").read_text())["trained_on"]
    assert not set(cmp["held_out"]) & set(rec) and edited.filename in rec


def test_improve_job_without_a_model_is_a_message(tmp_path):
    cfg = type("C", (), {"init_from": None})()
    out = loop.ImproveJob(cfg).run()
    assert not out.ok and "no model to improve" in out.error


def test_the_time_limit_does_not_cut_a_run_before_min_epochs(tmp_path):
    pytest.importorskip("tensorflow")
    from test_train import tiny
    from viaseg.core.ml.train import train

    res = train(tiny(tmp_path, epochs=6, time_limit_s=1e-6, min_epochs=2, lr_schedule="cosine"))
    assert res.ok, res.error
    # two whole epochs, then the limit stops the third after its first batch
    assert res.summary["stop_reason"] == "time_limit" and res.summary["epochs_run"] == 3
    res = train(tiny(tmp_path, epochs=6, time_limit_s=1e-6, lr_schedule="cosine", out_dir=tmp_path / "r2"))
    assert res.summary["epochs_run"] == 1  # without it: the first batch


def test_follow_model_recipe_takes_the_model_s_recorded_settings(tmp_path):
    """What *Improve model* fine-tunes with: the start model's recorded size, batch, rate, loss and augmentation;
    values that do not fit a field (an old or damaged file) leave the form's; a model without a config changes
    nothing."""
    import zipfile

    from viaseg.core.ml.improve_recipe import follow_model_recipe
    from viaseg.core.ml.modelio import META_NAME
    from viaseg.core.ml.presets import Augment, preset

    def model(meta: dict):
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.keras"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(META_NAME, json.dumps(meta))
        return path

    form = preset("default", size=256, batch_size=8, learning_rate=3e-4)
    own = {"size": 384, "batch_size": 4, "learning_rate": 1e-4, "loss": "dice", "augment": {"flip": False}}
    form.init_from = model({"config": own})
    cfg, note = follow_model_recipe(form)
    assert (cfg.size, cfg.batch_size, cfg.learning_rate, cfg.loss) == (384, 4, 1e-4, "dice")
    assert cfg.augment == Augment(flip=False) and cfg.dataset is form.dataset
    assert "image size 384 instead of 256" in note and "learning rate 0.0001 instead of 0.0003" in note
    assert "augmentation as the model was trained" in note
    form.init_from = model({"config": {"size": "big", "batch_size": -2, "loss": "unknown", "augment": [1]}})
    assert follow_model_recipe(form) == (form, "")
    form.init_from = model({"threshold": 0.5})
    assert follow_model_recipe(form) == (form, "")
