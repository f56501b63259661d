"""Improve model (issue 18): fine-tune the active model on the current annotations, judge it against the old
one on held-out photos, activate the better; the run folder records what it trained on."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from ml_helpers import TINY, make_model, make_project, tiny_settings
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.ml import loop
from viaseg.gui.improve_ui import verdict_html
from viaseg.gui.training_panel import TrainingPanel


@pytest.fixture
def trained(qtbot, tmp_path):
    """A panel whose active model sits in a run folder that recorded what it trained on (the project's train
    split as it is now), as every run writes it."""
    data = {"ds": load_dataset(make_project(tmp_path / "proj", n_train=6, n_val=3, size=40))}
    panel = TrainingPanel(
        data_provider=lambda: data["ds"], runs_root=tmp_path / "runs", config_overrides=dict(TINY)
    )
    qtbot.addWidget(panel)
    tiny_settings(panel, epochs=1)
    assert not panel.improve.button.isEnabled()  # nothing to improve yet
    run = tmp_path / "runs" / "first"
    run.mkdir(parents=True)
    model = make_model(run / "model.keras")
    record = loop.trained_on(data["ds"].splits["train"].entries)
    (run / "summary.json").write_text(json.dumps({"trained_on": record, "model_path": "model.keras"}))
    panel.set_active_model(str(model))
    assert panel.improve.button.isEnabled()
    return panel, data


def edit_one(data) -> str:
    ds = copy.deepcopy(data["ds"])
    e = ds.splits["train"].entries[0]
    e.regions[0].shape["all_points_x"][0] += 2
    data["ds"] = ds
    return e.filename


def test_improve_fine_tunes_judges_and_keeps_the_better_model(qtbot, trained):
    panel, data = trained
    first = panel.active_model
    edited = edit_one(data)
    activated = []
    panel.model_activated.connect(activated.append)
    with qtbot.waitSignal(panel.training_finished, timeout=300000):
        assert panel.start_improve()
    assert panel.last_error is None, panel.last_error
    cmp = panel.last_improve
    assert cmp["changed"] == [edited]  # only the edited photo is new to the model
    assert cmp["held_out_source"] == "the project's validation split" and cmp["fair"]
    # the old model's score is the one `viaseg evaluate` gives on the same held-out photos
    held = [e for e in data["ds"].splits["val"].entries if e.filename in cmp["held_out"]]
    assert len(held) == 3
    assert cmp["old_mean_dice"] == pytest.approx(loop.score_model(first, held)["mean_dice"])
    assert cmp["keep"] == loop.decide(cmp["old_mean_dice"], cmp["new_mean_dice"])
    new_model = cmp["new_model"]
    run_dir = Path(new_model).parent
    assert json.loads((run_dir / "improve.json").read_text()) == cmp
    record = json.loads((run_dir / "summary.json").read_text())["trained_on"]
    assert record[edited] == loop.region_hash(data["ds"].splits["train"].entries[0])
    assert json.loads((run_dir / "config.json").read_text())["init_from"] == first
    expect_active = new_model if cmp["keep"] == "new" else first
    assert panel.active_model == expect_active
    assert activated == ([new_model] if cmp["keep"] == "new" else [])
    assert panel.improve.button.isEnabled() and panel.start_btn.isEnabled()
    assert "Fine-tuned for 1 epoch(s)." in panel.result_label.text()  # tiny_settings: 1 epoch
    # one edited photo is too few to choose a threshold on: the new model keeps the previous one's, and says so
    assert cmp["new_threshold"] == cmp["old_threshold"] == loop._threshold_of(first)
    assert "the starting model's" in cmp["threshold_how"]
    assert (
        f"New model's threshold {cmp['old_threshold']:.2f}: the starting model's" in panel.result_label.text()
    )

    # both verdicts, with the scores forced: the better model becomes (or stays) active, and the link switches
    result = panel.last_improve_result
    for old_score, new_score, keep in ((0.2, 0.7, "new"), (0.7, 0.2, "old")):
        panel.set_active_model(first, announce=False)
        result.comparison = dict(
            cmp, old_mean_dice=old_score, new_mean_dice=new_score, keep=loop.decide(old_score, new_score)
        )
        panel._improve_done(result)
        text = panel.result_label.text()
        assert f"previous {old_score:.3f}" in text and f"new {new_score:.3f}" in text
        assert "the previous model's: 0.50" in verdict_html(dict(cmp, new_threshold=0.25), keep)
        if keep == "new":
            assert panel.active_model == new_model and "Improved model is active" in text
        else:
            assert panel.active_model == first and "previous model stays active" in text
        assert panel.use_other_model()
        assert panel.active_model == (first if keep == "new" else new_model)
        assert panel.use_other_model()
        assert panel.active_model == (new_model if keep == "new" else first)


def test_improve_without_a_model_is_a_message(qtbot, tmp_path):
    panel = TrainingPanel(data_provider=lambda: None, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    assert not panel.start_improve()
    assert "no active model" in panel.message.text()


def test_improve_on_a_project_without_regions_says_so_at_once(qtbot, tmp_path):
    """No training process is started only to fail: the panel says what to do, and no run folder is made."""
    ds = load_dataset(make_project(tmp_path / "proj", n_train=3, n_val=2, size=40))
    for sp in ds.splits.values():
        for e in sp.entries:
            e.regions.clear()
    panel = TrainingPanel(data_provider=lambda: ds, runs_root=tmp_path / "runs", config_overrides=dict(TINY))
    qtbot.addWidget(panel)
    panel.set_active_model(str(make_model(tmp_path / "m" / "model.keras")))
    assert not panel.start_improve()
    assert "no annotated regions" in panel.message.text() and "Label a few photos" in panel.message.text()
    assert panel.thread is None and not (tmp_path / "runs").exists()


def test_stopping_says_so_while_it_stops_and_after_an_improve(qtbot, tmp_path):
    """Start while a run was stopping said "already in progress; stop it first"; a stopped Improve said
    "Improve model finished."."""
    from types import SimpleNamespace

    panel = TrainingPanel(data_provider=lambda: None, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    panel.thread = SimpleNamespace(isRunning=lambda: True, stop=lambda: None)
    assert not panel.start() and "already in progress" in panel.message.text()
    panel.stop()
    assert not panel.start() and panel.message.text() == "The run is stopping; start again when it has ended."
    panel.thread = None
    result = SimpleNamespace(
        ok=True,
        error="",
        comparison={"keep": "old", "old_mean_dice": 0.5, "new_mean_dice": 0.4},
        summary={},
        model_path=None,
    )
    panel._improve_done(result)
    assert panel.message.text().startswith("Improve model stopped early")
    panel.stop_asked = False
    panel._improve_done(result)
    assert panel.message.text() == "Improve model finished."


def test_improve_fine_tunes_with_the_model_s_own_settings_not_the_form_s(qtbot, tmp_path):
    """The form describes a new run: a model trained at 48 px with batch 2 and Dice loss, improved while the form
    said 32 px, batch 4, BCE + Dice, came back a 32-px model trained another way. Its own recipe is kept, and the
    run's start message says what of the form was not used."""
    import keras
    from viaseg.core.ml.modelio import read_meta, save_model
    from viaseg.core.ml.presets import Augment
    from viaseg.core.ml.unet import build_unet_xception

    ds = load_dataset(make_project(tmp_path / "proj", n_train=4, n_val=2, size=40))
    panel = TrainingPanel(data_provider=lambda: ds, runs_root=tmp_path / "runs", config_overrides=dict(TINY))
    qtbot.addWidget(panel)
    tiny_settings(panel, epochs=1)  # the form: 32 px, batch 4, no augmentation
    keras.utils.set_random_seed(0)
    own = {
        "size": 48,
        "batch_size": 2,
        "loss": "dice",
        "learning_rate": 2e-4,
        "augment": {"flip": True, "rotate": False, "scale_crop": False, "color": False},
    }
    model = save_model(
        build_unet_xception(input_size=48, base_width=4),
        tmp_path / "m" / "model.keras",
        {"input_size": 48, "threshold": 0.5, "config": own},
    )
    assert panel.set_active_model(str(model))
    starts = []
    with qtbot.waitSignal(panel.training_finished, timeout=300000):
        assert panel.start_improve()
        qtbot.waitUntil(lambda: "Training on" in panel.message.text(), timeout=120000)
        starts.append(panel.message.text())
    assert panel.last_error is None, panel.last_error
    run_dir = Path(panel.last_improve["new_model"]).parent
    used = json.loads((run_dir / "config.json").read_text())
    assert (used["size"], used["batch_size"], used["loss"], used["learning_rate"]) == (48, 2, "dice", 2e-4)
    assert used["augment"] == dict(vars(Augment(flip=True, rotate=False, scale_crop=False, color=False)))
    assert read_meta(panel.last_improve["new_model"])["input_size"] == [48, 48]
    assert "image size 48 instead of 32" in starts[0] and "batch size 2 instead of 4" in starts[0]
    assert "loss dice instead of bce_dice" in starts[0]


def test_a_model_made_active_while_improve_ran_stays_active(qtbot, tmp_path):
    """Improve started from model A; the user made model B active meanwhile. The verdict said "The previous model
    stays active" while B was, or made the improved model active over the user's choice. B stays; both A and
    the new model are a link away."""
    import zipfile
    from types import SimpleNamespace

    from viaseg.core.ml.modelio import META_NAME

    def model(name: str) -> str:
        (tmp_path / name).mkdir()
        path = tmp_path / name / "model.keras"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(META_NAME, json.dumps({"threshold": 0.5}))
        return str(path)

    a, b, new = model("a"), model("b"), model("new")
    panel = TrainingPanel(data_provider=lambda: None, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    assert panel.set_active_model(a)
    panel._improving = a  # as start_improve leaves it while the run goes on
    assert panel.set_active_model(b)
    cmp = {"keep": "new", "old_mean_dice": 0.4, "new_mean_dice": 0.6, "old_model": a, "new_model": new}
    result = SimpleNamespace(ok=True, error="", comparison=cmp, summary={"epochs_run": 5}, model_path=new)
    panel._improve_done(result)
    text = panel.result_label.text()
    assert panel.active_model == b
    assert "<b>b stays active</b>" in text and "previous 0.400" in text and "new 0.600" in text
    assert "viaseg:use-new" in text and "viaseg:use-old" in text
    panel._link("viaseg:use-new")
    assert panel.active_model == new and "Improved model is active" in panel.result_label.text()
    panel._link("viaseg:use-other")
    assert panel.active_model == a and "previous model stays active" in panel.result_label.text()
    # without a change meanwhile, the verdict activates the better one as before
    panel._improving = a
    panel._improve_done(result)
    assert panel.active_model == new
