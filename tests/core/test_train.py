"""Training engine: events in order, run folder, should_stop, NaN handling, failures, mirrored strategy, CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")

from viaseg.core.annotation.project import ImageEntry, Region
from viaseg.core.ml import pipeline as P
from viaseg.core.ml import train_events as E
from viaseg.core.ml.pipeline import Augment
from viaseg.core.ml.train import preset, train


def make_images(folder: Path, n: int, size: int = 48, seed: int = 0, empty: int = 0) -> list[ImageEntry]:
    """``n`` PNGs: gray noise with a bright rectangle (the region); the last ``empty`` have no region."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        img = rng.integers(40, 90, (size, size, 3), dtype=np.uint8)
        regions = []
        if i < n - empty:
            x, y = int(rng.integers(2, size // 2)), int(rng.integers(2, size // 2))
            w, h = int(rng.integers(8, size // 2)), int(rng.integers(8, size // 2))
            img[y : y + h, x : x + w] = (230, 200, 60)
            xs, ys = [x, x + w - 1, x + w - 1, x], [y, y, y + h - 1, y + h - 1]
            regions = [Region({"name": "polygon", "all_points_x": xs, "all_points_y": ys}, {})]
        name = f"img{seed}_{i}.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        entries.append(ImageEntry(key=name, filename=name, regions=regions, base_dir=folder))
    return entries


def tiny(tmp_path: Path, **kw):
    tr = make_images(tmp_path / "train", kw.pop("n_train", 4), seed=1)
    va = make_images(tmp_path / "val", kw.pop("n_val", 2), seed=2)
    base = dict(
        dataset=tr,
        val=va,
        out_dir=tmp_path / "run",
        size=32,
        encoder="xception",  # the tiny network (the MobileNetV2 encoder has fixed widths)
        base_width=8,
        batch_size=2,
        epochs=2,
        sample_every=1,
        n_samples=2,
        augment=Augment(rotate=False),
        threads=None,
    )
    base.update(kw)
    return preset("default", **base)


def run(cfg, should_stop=None):
    events = []
    result = train(cfg, on_event=events.append, should_stop=should_stop)
    return result, events


def test_events_in_order_and_run_folder(tmp_path):
    tr = make_images(tmp_path / "train", 5, seed=1)
    (tmp_path / "train" / tr[4].filename).write_bytes(b"not an image")  # unreadable: skipped, named
    va = make_images(tmp_path / "val", 2, seed=2)
    (tmp_path / "val" / "copy.png").write_bytes((tmp_path / "train" / tr[1].filename).read_bytes())
    va.append(
        ImageEntry(key="copy.png", filename="copy.png", regions=tr[1].regions, base_dir=tmp_path / "val")
    )
    result, events = run(tiny(tmp_path, dataset=tr, val=va))
    assert result.ok, result.error
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "Started" and kinds[-1] == "Finished"
    assert kinds.count("EpochEnd") == 2
    # per epoch: batches (2 of them), then EpochEnd, then the samples
    assert kinds[1:-1] == ["BatchEnd", "BatchEnd", "EpochEnd", "SamplePredictions"] * 2
    started = events[0]
    assert (started.n_train, started.n_val, started.steps_per_epoch) == (4, 2, 2)
    assert started.excluded_duplicates == ["copy.png"]  # same bytes as a training image
    assert len(started.skipped) == 1 and tr[4].filename in started.skipped[0]
    ep = [e for e in events if isinstance(e, E.EpochEnd)][0]
    assert {"loss", "dice", "iou", "accuracy", "val_loss", "val_dice", "val_iou", "val_accuracy"} <= set(
        ep.metrics
    )
    sp = [e for e in events if isinstance(e, E.SamplePredictions)][0]
    assert sp.images.shape == (2, 32, 32, 3) and sp.images.dtype == np.uint8
    assert sp.true_masks.shape == sp.pred_masks.shape == (2, 32, 32)
    assert 0.0 <= sp.pred_masks.min() and sp.pred_masks.max() <= 1.0
    run_dir = tmp_path / "run"
    for name in (
        "config.json",
        "history.csv",
        "curves.png",
        "model.keras",
        "summary.json",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
    ):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["excluded_duplicates"] == ["copy.png"]
    for key in (
        "best_epoch",
        "val_dice",
        "val_iou",
        "epochs_run",
        "train_seconds",
        "images_per_second",
        "model_path",
        "params",
        "excluded_duplicates",
    ):
        assert key in summary, key
    assert summary["epochs_run"] == 2 and summary["n_val"] == 2
    assert len((run_dir / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    fin = events[-1]
    assert fin.model_path == result.model_path == run_dir / "model.keras"
    assert fin.best_metrics["val_dice"] == max(result.history["val_dice"])

    from viaseg.core.ml.modelio import load_model

    model, meta = load_model(result.model_path)
    assert meta["input_size"] == [32, 32] and meta["threshold"] == 0.5 and meta["class_names"] == ["damage"]
    assert meta["resize"] == "area" and "created" in meta and "viaseg_version" in meta
    assert meta["val_dice"] == pytest.approx(summary["val_dice"])
    assert model.output_shape == (None, 32, 32, 1)
    assert meta["tta"] is True  # the default preset predicts with mirror averaging


def test_tta_run_is_scored_with_tta_and_its_model_predicts_with_it(tmp_path):
    from viaseg.core.ml.evaluate import evaluate
    from viaseg.core.ml.predict import Predictor

    result, _ = run(tiny(tmp_path, tta=True, tta_scales=(1.0, 2.0), epochs=1, sample_every=0))
    assert result.ok, result.error
    pred = Predictor.load(result.model_path, cache=False)
    assert pred.meta["tta"] is True and pred.tta is True
    assert pred.meta["tta_scales"] == [1.0, 2.0] and pred.scale_sizes() == [(32, 32), (64, 64)]
    scores = evaluate(pred, make_images(tmp_path / "val", 2, seed=2))
    assert (
        scores.tta is True
        and scores.to_dict()["tta"] is True
        and scores.to_dict()["tta_scales"] == [1.0, 2.0]
    )
    assert json.loads((tmp_path / "run" / "config.json").read_text())["tta"] is True
    # the run's own scores are evaluate's: full resolution (48 px photos, a 32 px network), same numbers
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["evaluated_on"] == "val, full resolution"
    assert summary["val_dice"] == pytest.approx(scores.mean_dice, abs=1e-6)
    assert summary["val_global_dice"] == pytest.approx(scores.global_dice, abs=1e-6)
    assert summary["per_image_dice"] == pytest.approx({s.image: s.dice for s in scores.per_image}, abs=1e-6)


def test_run_is_scored_at_training_size_with_a_warning_when_full_resolution_fails(tmp_path, monkeypatch):
    import viaseg.core.ml.evaluate as ev

    def broken(*a, **k):
        raise OSError("disk went away")

    monkeypatch.setattr(ev, "evaluate", broken)
    result, _ = run(tiny(tmp_path, epochs=1, sample_every=0))
    assert result.ok, result.error
    s = result.summary
    assert s["evaluated_on"] == "val, 32 px" and set(s["per_image_dice"]) == {"img2_0.png", "img2_1.png"}
    assert 0.0 <= s["val_dice"] <= 1.0
    assert any("scored at the training size" in w and "disk went away" in w for w in s["warnings"])


def test_should_stop_stops_within_a_batch(tmp_path):
    seen = []

    def stop():
        return len(seen) >= 3

    # (batch size 2: TF 2.21's oneDNN CPU kernels abort on batch-1 training steps of this tiny model)
    cfg = tiny(tmp_path, n_train=16, batch_size=2, epochs=5, sample_every=0)
    result = train(cfg, on_event=seen_batches(seen), should_stop=stop)
    assert result.ok, result.error
    assert len(seen) == 3  # the 8-batch epoch ended right after the batch that saw the request
    assert result.reason == "stopped" and result.model_path.is_file()
    assert result.summary["epochs_run"] == 1


def seen_batches(seen):
    def on_event(ev):
        if isinstance(ev, E.BatchEnd):
            seen.append(ev)

    return on_event


def test_nan_fails_and_keeps_the_best_model(tmp_path, monkeypatch):
    real = P.train_dataset

    def poisoned(*args, **kwargs):
        ds = real(*args, **kwargs)
        # batches 0-1 (epoch 1) are clean, from batch 2 (epoch 2) on the images are NaN
        return ds.enumerate().map(lambda i, xy: (xy[0] + _nan_after(i, 2), xy[1]))

    monkeypatch.setattr(P, "train_dataset", poisoned)
    result, events = run(tiny(tmp_path, epochs=4))
    assert not result.ok
    assert isinstance(events[-1], E.Failed)
    assert "NaN" in events[-1].message and "epoch 2" in events[-1].message
    assert result.model_path is not None and result.model_path.is_file()
    assert str(result.model_path) in events[-1].message
    from viaseg.core.ml.modelio import load_model

    _, meta = load_model(result.model_path)
    assert meta["best_epoch"] == 1
    assert len([e for e in events if isinstance(e, E.EpochEnd)]) == 2


def _nan_after(i, n):
    import tensorflow as tf

    return tf.where(i >= n, tf.constant(np.nan, tf.float32), tf.constant(0.0, tf.float32))


def test_no_annotated_images_fails_cleanly(tmp_path):
    tr = make_images(tmp_path / "t", 3, empty=3)
    result, events = run(tiny(tmp_path, dataset=tr))
    assert not result.ok and "no annotated images" in result.error
    assert [type(e).__name__ for e in events] == ["Failed"]


def test_all_unreadable_fails_cleanly(tmp_path):
    tr = make_images(tmp_path / "t", 3)
    for e in tr:
        (tmp_path / "t" / e.filename).write_bytes(b"")
    result, events = run(tiny(tmp_path, dataset=tr, epochs=1))
    assert not result.ok and "no readable annotated image" in result.error
    assert tr[0].filename in result.error
    assert [type(e).__name__ for e in events] == ["Failed"]


def test_cli_train(tmp_path, capsys):
    _write_via_dataset(tmp_path / "ds", 6)  # no val split: a seeded split by image
    from viaseg.core.cli import main

    rc = main(
        [
            "train",
            str(tmp_path / "ds"),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "2",
            "--size",
            "32",
            "--encoder",
            "xception",
            "--base-width",
            "8",
            "--batch-size",
            "2",
            "--seed",
            "3",
            "--time-limit",
            "3600",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "val_dice" in out
    # the default preset's step budget, never under 40 passes over the photos (3 batches each here)
    assert "up to 2 epochs of 3 batches, at most 1000 steps (--max-steps)" in out
    assert "val hard Dice" in out and "(1 image, val, full resolution)" in out
    assert "training on 5 images, validating on 1 (seeded 20% of the training images (seed 3))" in out
    assert (tmp_path / "run" / "model.keras").is_file()
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["size"] == 32 and cfg["epochs"] == 2


MIRRORED = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[2])
    from test_train import tiny
    from pathlib import Path
    from viaseg.core.ml.train import train
    from viaseg.core.ml.train_plumbing import make_strategy
    res = train(tiny(Path(sys.argv[1]), strategy="mirrored", epochs=1, batch_size=4, sample_every=0, threads=1))
    print("ok", res.ok, res.error)
    print("threads", tf.config.threading.get_intra_op_parallelism_threads(), res.summary.get("warnings"))
    print("replicas", res.summary.get("replicas"), make_strategy("mirrored").num_replicas_in_sync)
    """
)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert "replicas 2 2" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert "ok True None" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    # threads are applied before TF runs an op (logical devices are configured, TF not yet initialized)
    assert "threads 1 []" in proc.stdout, proc.stdout
    assert (tmp_path / "run" / "model.keras").is_file()


def test_presets():
    r = preset("research")
    assert (r.size, r.resize, r.loss, r.learning_rate, r.batch_size, r.shuffle_buffer, r.epochs) == (
        128,
        "nearest",
        "dice",
        1e-3,
        8,
        100,
        100,
    )
    assert r.exclude_duplicates and not r.augment.any and r.bn_momentum == 0.99
    d = preset("default", size=128, seed=None)
    assert d.size == 128 and d.seed == 0 and d.augment.any and d.loss == "bce_dice"
    assert (d.tta, d.ema, d.patience) == (True, 0.0, 40) and (r.tta, r.ema) == (False, 0.0)
    assert (d.lr_schedule, r.lr_schedule) == ("auto", "constant")
    # the default starts from the shipped ImageNet encoder; the research recipe keeps its own network
    assert (d.encoder, d.learning_rate, r.encoder) == ("efficientnet_lite0", 3e-4, "xception")
    with pytest.raises(ValueError, match="unknown preset"):
        preset("fast")
    with pytest.raises(TypeError, match="no option"):
        preset("default", colour=1)
    assert json.loads(json.dumps(d.to_dict()))["augment"]["flip"] is True


def _write_via_dataset(folder: Path, n: int) -> Path:
    entries = make_images(folder / "train", n)
    via = {
        e.filename: {
            "filename": e.filename,
            "size": -1,
            "file_attributes": {},
            "regions": [{"shape_attributes": r.shape, "region_attributes": {}} for r in e.regions],
        }
        for e in entries
    }
    (folder / "train" / "via_region_data.json").write_text(json.dumps(via))
    return folder


def test_narrow_models_and_one_image_batches_train_with_onednn_on(tmp_path):
    # TF 2.21's oneDNN kernels abort the process (heap corruption, segfault) when training a strided 1x1
    # convolution on fewer than 16 input channels: the first encoder block's projection of a base-width-8 model
    # (it crashed at 64 px with batch 8 and at 32 px with batch 1). The U-Net subsamples and then applies a
    # plain 1x1 conv there. A fresh process, since a crash would take pytest with it
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from viaseg.core.ml import tfsetup, unet
        tfsetup.load_tf()
        for size, batch in ((64, 8), (32, 1)):
            model = unet.build_unet_xception(size, base_width=8, bn_momentum=0.5)
            unet.compile_model(model, "bce_dice")
            x = np.random.default_rng(0).random((batch, size, size, 3), dtype=np.float32)
            y = (x[..., :1] > 0.8).astype("float32")
            for _ in range(3):
                model.train_on_batch(x, y)
        print("trained")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}  # oneDNN on, as by default
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0 and "trained" in proc.stdout, (proc.returncode, proc.stderr[-3000:])


def test_the_projection_that_avoids_the_crash_computes_the_strided_conv():
    import keras
    from viaseg.core.ml import unet

    model = unet.build_unet_xception(64, base_width=8)
    # same parameter count as the strided conv (the subsampling has no weights): 3 projections of 1x1 convs
    proj = [lay for lay in model.layers if lay.name.startswith("proj_")][:3]
    assert [lay.kernel.shape for lay in proj] == [(1, 1, 8, 16), (1, 1, 16, 32), (1, 1, 32, 64)]
    assert proj[0].strides == (1, 1) and proj[1].strides == (2, 2)  # only where the channels are too few
    x = np.random.default_rng(1).random((2, 32, 32, 8)).astype("float32")
    sub = keras.layers.MaxPooling2D(1, strides=2, padding="same")(x)
    direct = keras.ops.conv(x, proj[0].kernel, strides=2, padding="same") + proj[0].bias
    np.testing.assert_allclose(np.asarray(proj[0](sub)), np.asarray(direct), rtol=1e-5, atol=1e-6)


def test_ema_run_keeps_the_averaged_weights_it_validated(tmp_path):
    from viaseg.core.ml import pipeline as P
    from viaseg.core.ml import unet
    from viaseg.core.ml.modelio import load_model

    cfg = tiny(tmp_path, ema=0.9, epochs=3, sample_every=0, patience=3)
    result, _ = run(cfg)
    assert result.ok, result.error
    assert json.loads((tmp_path / "run" / "config.json").read_text())["ema"] == 0.9
    # the saved model is the one whose validation Dice was best: the averaged weights of that epoch (had the
    # raw weights been kept, its Dice would not match what was logged for the best epoch)
    model, _ = load_model(result.model_path)
    unet.compile_model(model, "bce_dice")
    val = P.load_arrays(cfg.val, 32)
    scores = model.evaluate(P.eval_dataset(val, 2), return_dict=True, verbose=0)
    assert scores["dice"] == pytest.approx(result.best_metrics["val_dice"], abs=1e-4)
    with pytest.raises(ValueError, match="ema"):
        unet.compile_model(model, "bce_dice", ema=1.0)


def _logged_lrs(run_dir: Path) -> list[float]:
    import csv

    with open(run_dir / "history.csv", newline="") as f:
        return [float(row["learning_rate"]) for row in csv.DictReader(f)]


def test_cosine_schedule_anneals_over_the_epochs_or_over_the_time_limit(tmp_path):
    lr0 = 1e-3
    # no time limit: one cosine over the 4 epochs, logged per epoch in history.csv
    r1, _ = run(
        tiny(tmp_path / "a", epochs=4, sample_every=0, lr_schedule="cosine", learning_rate=lr0, patience=10)
    )
    assert r1.ok
    expected = [1e-5 + 0.5 * (lr0 - 1e-5) * (1 + np.cos(np.pi * e / 4)) for e in range(4)]
    assert _logged_lrs(r1.run_dir) == pytest.approx(expected, rel=1e-4)
    # a time limit far longer than the run: the cosine follows the clock, so the rate has hardly moved
    r2, _ = run(
        tiny(
            tmp_path / "b",
            epochs=4,
            sample_every=0,
            lr_schedule="cosine",
            learning_rate=lr0,
            patience=10,
            time_limit_s=3600,
        )
    )
    assert r2.ok and r2.summary["epochs_run"] == 4
    lrs = _logged_lrs(r2.run_dir)
    assert all(0.99 * lr0 < lr <= lr0 * (1 + 1e-6) for lr in lrs) and lrs == sorted(
        lrs, reverse=True
    )  # float32


def test_flat_cosine_keeps_the_full_rate_for_the_first_half_then_anneals(tmp_path):
    lr0 = 1e-3
    r, _ = run(
        tiny(tmp_path, epochs=6, sample_every=0, lr_schedule="flat_cosine", learning_rate=lr0, patience=10)
    )
    assert r.ok
    q = [max(0.0, e / 6 - 0.5) / 0.5 for e in range(6)]  # 0, 0, 0, 0, 1/3, 2/3
    expected = [1e-5 + 0.5 * (lr0 - 1e-5) * (1 + np.cos(np.pi * x)) for x in q]
    assert _logged_lrs(r.run_dir) == pytest.approx(expected, rel=1e-4)
    assert expected[:4] == pytest.approx([lr0] * 4) and expected[5] < expected[4] < lr0


def test_auto_schedule_anneals_over_a_time_limit_without_early_stopping_else_plateaus(tmp_path):
    import keras
    from viaseg.core.ml.presets import resolve_schedule
    from viaseg.core.ml.train import _make_callbacks

    def built(**kw):
        cfg = preset("default", **kw)
        cbs, _ = _make_callbacks(keras, cfg, tmp_path, None, None, {}, [0], None)
        kinds = {type(c).__name__: c for c in cbs}
        return resolve_schedule(cfg), kinds

    sched, cbs = built()  # no time limit: the rate halves on plateaus, early stopping after the patience
    assert sched == "plateau" and "ReduceLROnPlateau" in cbs and cbs["EarlyStopping"].patience == 40
    sched, cbs = built(time_limit_s=600)  # a time limit: flat, then the cosine over it, and all of it is used
    assert sched == "flat_cosine" and "LearningRateScheduler" in cbs and "ReduceLROnPlateau" not in cbs
    assert cbs["EarlyStopping"].patience > 10**5
    sched, cbs = built(time_limit_s=600, lr_schedule="plateau")  # an explicit schedule is kept
    assert sched == "plateau" and cbs["EarlyStopping"].patience == 40
    sched, cbs = built(lr_schedule="cosine")  # cosine over the epochs: early stopping as asked
    assert sched == "cosine" and cbs["EarlyStopping"].patience == 40
    # a run says which schedule it used
    r, _ = run(tiny(tmp_path / "run", epochs=1, sample_every=0, time_limit_s=3600))
    assert r.ok and r.summary["lr_schedule"] == "flat_cosine"
    assert json.loads((tmp_path / "run" / "run" / "config.json").read_text())["lr_schedule"] == "auto"


def test_plateau_schedule_logs_its_learning_rate(tmp_path):
    r, _ = run(tiny(tmp_path, epochs=2, sample_every=0, lr_schedule="plateau", learning_rate=2e-3))
    assert r.ok and _logged_lrs(r.run_dir)[0] == pytest.approx(2e-3)


def test_hard_dice_is_logged_and_is_what_the_kept_model_scores(tmp_path):
    import csv

    from viaseg.core.ml import unet
    from viaseg.core.ml.modelio import load_model

    cfg = tiny(tmp_path, epochs=4, sample_every=0, monitor="hard_dice", learning_rate=1e-2, patience=10)
    result, events = run(cfg)
    assert result.ok, result.error
    with open(result.run_dir / "history.csv", newline="") as f:
        logged = [float(row["val_hard_dice"]) for row in csv.DictReader(f)]
    assert len(logged) == 4 and logged == pytest.approx(result.history["val_hard_dice"])
    assert result.best_epoch == int(np.argmax(logged)) and result.summary["monitor"] == "val_hard_dice"
    assert all("val_hard_dice" in e.metrics for e in events if isinstance(e, E.EpochEnd))
    # the logged score is what the kept model really scores: per image, threshold 0.5, at the training size
    model, _ = load_model(result.model_path)
    val = P.load_arrays(cfg.val, 32)
    prob = model.predict(P.to_float_images(val.images), verbose=0)[..., 0]
    expected = unet.hard_dice_scores(val.masks, prob, 0.5)["mean_dice"]
    assert result.best_metrics["val_hard_dice"] == pytest.approx(expected, abs=1e-4)
    assert json.loads((result.run_dir / "config.json").read_text())["monitor"] == "hard_dice"


def test_unknown_monitor_fails_with_a_message(tmp_path):
    result, events = run(tiny(tmp_path, monitor="loss"))
    assert not result.ok and "unknown monitor 'loss'" in result.error
    assert isinstance(events[-1], E.Failed)


def test_the_monitor_option_decides_which_epoch_is_kept(tmp_path, monkeypatch):
    from viaseg.core.ml import unet

    # a "hard Dice" that is 1 - soft Dice: the hard monitor must keep the epoch whose val_dice is worst
    monkeypatch.setattr(unet, "hard_dice_coef", lambda t, p: 1.0 - unet.dice_coef(t, p))
    hard, _ = run(
        tiny(
            tmp_path / "hard", epochs=4, sample_every=0, monitor="hard_dice", patience=10, learning_rate=1e-2
        )
    )
    assert hard.ok, hard.error
    soft_scores = hard.history["val_dice"]
    assert hard.history["val_hard_dice"] == pytest.approx([1 - v for v in soft_scores], abs=1e-5)
    assert len(set(soft_scores)) == 4 and hard.best_epoch == int(np.argmin(soft_scores))
    assert hard.summary["monitor"] == "val_hard_dice"
    soft, _ = run(
        tiny(
            tmp_path / "soft", epochs=4, sample_every=0, monitor="soft_dice", patience=10, learning_rate=1e-2
        )
    )
    assert soft.ok and soft.summary["monitor"] == "val_dice"
    assert soft.best_epoch == int(np.argmax(soft.history["val_dice"]))


def test_init_from_starts_from_the_given_models_weights(tmp_path, monkeypatch):
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config
    from viaseg.core.ml import unet
    from viaseg.core.ml.modelio import load_model

    first, _ = run(tiny(tmp_path / "a", epochs=1, sample_every=0, seed=1))
    assert first.ok, first.error
    source = [w.copy() for w in load_model(first.model_path)[0].get_weights()]

    starts = []
    compile_model = unet.compile_model

    def spy(model, *a, **k):  # the weights the run starts training from
        starts.append([w.copy() for w in model.get_weights()])
        return compile_model(model, *a, **k)

    monkeypatch.setattr(unet, "compile_model", spy)
    # a different input size and seed: convolution weights do not depend on the size
    tuned, _ = run(
        tiny(tmp_path / "b", epochs=1, sample_every=0, seed=7, size=64, init_from=first.model_path)
    )
    fresh, _ = run(tiny(tmp_path / "c", epochs=1, sample_every=0, seed=7, size=64))
    assert tuned.ok and fresh.ok, (tuned.error, fresh.error)
    assert len(starts[0]) == len(source)
    for a, b in zip(starts[0], source, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(starts[1], source, strict=True))
    cfg = json.loads((tmp_path / "b" / "run" / "config.json").read_text())
    assert cfg["init_from"] == str(first.model_path)

    # the CLI passes it on
    args = build_parser().parse_args(["train", "ds", "--out", "r", "--init-from", "m.keras"])
    assert str(_config(args).init_from) == "m.keras"


def test_tta_scales_option_reaches_the_config_and_bad_values_are_refused(capsys):
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config

    args = build_parser().parse_args(["train", "ds", "--out", "r", "--tta-scales", "1,1.25"])
    assert _config(args).tta_scales == (1.0, 1.25)
    default = _config(build_parser().parse_args(["train", "ds", "--out", "r"]))
    assert default.tta_scales == (1.0, 1.25) and default.threshold == 0.5 and default.encoder_freeze == "none"
    with_threshold = build_parser().parse_args(["train", "ds", "--out", "r", "--threshold", "0.45"])
    assert _config(with_threshold).threshold == 0.45
    research = build_parser().parse_args(["train", "ds", "--out", "r", "--preset", "research"])
    assert _config(research).tta_scales == (1.0,) and _config(research).tta is False
    for cmd in (
        ["train", "ds", "--out", "r"],
        ["evaluate", "m.keras", "ds"],
        ["predict", "m.keras", "x.jpg", "--out", "o"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*cmd, "--tta-scales", "0.1,x"])
        assert "factors between 0.25 and 4" in capsys.readouterr().err


def test_init_from_keeps_the_starting_models_network_and_refuses_one_that_does_not_fit(tmp_path):
    from viaseg.core.ml import unet
    from viaseg.core.ml.modelio import save_model

    first, _ = run(tiny(tmp_path / "a", epochs=1, sample_every=0))
    assert first.ok, first.error
    # asking for another width: the starting model's network (width 8) is kept, and the run says so
    other, events = run(
        tiny(tmp_path / "b", epochs=1, sample_every=0, base_width=4, init_from=first.model_path)
    )
    assert other.ok, other.error
    note = f"starting from {first.model_path}: its network is kept: base width 8 (not 4)"
    assert note in events[0].notes and note in other.summary["warnings"]
    assert other.summary["params"] == first.summary["params"]
    assert json.loads((tmp_path / "b" / "run" / "config.json").read_text())["base_width"] == 8
    # a model whose metadata does not describe its network, and whose layers do not fit: a clear failure
    odd = save_model(unet.build_unet_xception(32, base_width=4), tmp_path / "odd.keras", {"input_size": 32})
    bad, events = run(tiny(tmp_path / "c", epochs=1, sample_every=0, init_from=odd))
    assert not bad.ok and isinstance(events[-1], E.Failed)
    assert str(odd) in bad.error and "base width 8" in bad.error and "does not match" in bad.error
    missing, _ = run(tiny(tmp_path / "d", epochs=1, sample_every=0, init_from=tmp_path / "nope.keras"))
    assert not missing.ok and "nope.keras: no such model file" in missing.error


def test_same_seed_without_a_time_limit_trains_bit_identically(tmp_path):
    """Runs are reproducible when nothing follows the clock (a time limit cuts at another epoch and paces
    the annealing schedules by elapsed time, so those runs are not)."""
    import keras

    def weights_and_history(out: str, seed: int):
        res, _ = run(tiny(tmp_path, out_dir=tmp_path / out, seed=seed, augment=Augment()))
        model = keras.saving.load_model(res.model_path, compile=False)
        return [w.copy() for w in model.get_weights()], res.history

    w1, h1 = weights_and_history("a", 3)
    w2, h2 = weights_and_history("b", 3)
    assert h1 == h2 and all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))
    w3, h3 = weights_and_history("c", 4)
    assert h3 != h1 and not all(np.array_equal(a, b) for a, b in zip(w1, w3, strict=True))


def test_keep_last_saves_the_final_weights_and_the_validation_chooses_nothing(tmp_path, monkeypatch):
    import keras
    import tensorflow as tf
    from viaseg.core.ml import train as train_mod
    from viaseg.core.ml import unet
    from viaseg.core.ml.modelio import load_model
    from viaseg.core.ml.presets import resolve_keep

    # a validation "hard Dice" that falls every epoch (1, 1/2, 1/3): "best" goes back to epoch 1
    score = tf.Variable(1.0)
    monkeypatch.setattr(unet, "hard_dice_coef", lambda t, p: score + 0.0 * tf.reduce_mean(p))
    per_epoch = []

    class Steer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            score.assign(1.0 / (epoch + 1))

        def on_epoch_end(self, epoch, logs=None):
            per_epoch.append([w.copy() for w in self.model.get_weights()])

    real = train_mod._make_callbacks
    monkeypatch.setattr(
        train_mod, "_make_callbacks", lambda *a, **k: (lambda r: ([Steer(), *r[0]], r[1]))(real(*a, **k))
    )

    def kept_weights(keep):
        per_epoch.clear()
        cfg = tiny(
            tmp_path / keep,
            epochs=3,
            sample_every=0,
            keep=keep,
            monitor="hard_dice",
            lr_schedule="cosine",
            learning_rate=1e-2,
            patience=10,
        )
        result, _ = run(cfg)
        assert result.ok, result.error
        return result, load_model(result.model_path)[0].get_weights(), list(per_epoch)

    best, saved, epochs = kept_weights("best")
    assert best.summary["kept"] == "best" and best.summary["best_epoch"] == 1
    for a, b in zip(saved, epochs[0], strict=True):
        np.testing.assert_array_equal(a, b)
    last, saved, epochs = kept_weights("last")
    assert last.summary["kept"] == "last" and last.summary["best_epoch"] == 3 == last.summary["epochs_run"]
    for a, b in zip(saved, epochs[-1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(epochs[0], epochs[-1], strict=True))
    # auto: last over an annealed time limit, best otherwise; plateau cannot keep the last weights
    assert resolve_keep(preset("default", time_limit_s=60)) == "last"
    assert resolve_keep(preset("default")) == "best"
    bad, _ = run(tiny(tmp_path / "bad", keep="last", lr_schedule="plateau"))
    assert not bad.ok and "plateau" in bad.error


def test_extra_sources_are_balanced_and_every_validation_set_is_reported(tmp_path):
    a = make_images(tmp_path / "a", 3, seed=21)
    b = make_images(tmp_path / "b", 6, seed=22)
    v1 = make_images(tmp_path / "v1", 2, seed=23)
    v2 = make_images(tmp_path / "v2", 3, seed=24)
    result, events = run(
        tiny(
            tmp_path, dataset=a, extra_train=[b], val=[v1, v2], epochs=1, sample_every=0, balance_sources=True
        )
    )
    assert result.ok, result.error
    s = result.summary
    assert s["balance_sources"] is True and sorted(s["sources"].values()) == [3, 6]
    assert [row["n_images"] for row in s["val_sets"]] == [2, 3]
    assert s["val_sets"][0]["mean_dice"] == pytest.approx(s["val_dice"])
    assert all(0.0 <= row["mean_dice"] <= 1.0 for row in s["val_sets"])
    assert events[0].n_train == 9 and events[0].n_val == 2  # the first set is the one validated on


def test_crop_training_predicts_whole_images_with_the_same_weights(tmp_path):
    from viaseg.core.ml.predict import Predictor

    result, events = run(tiny(tmp_path, size=48, crop=32, epochs=2, sample_every=1))
    assert result.ok, result.error
    sp = [e for e in events if isinstance(e, E.SamplePredictions)][0]
    assert sp.pred_masks.shape[1:] == (48, 48)  # validation sees whole images
    pred = Predictor.load(result.model_path, cache=False)
    assert pred.input_hw == (48, 48)
    out = pred.predict(tmp_path / "val" / "img2_0.png")
    assert out.shape == (48, 48) and 0.0 <= float(out.min()) <= float(out.max()) <= 1.0
    bad, _ = run(tiny(tmp_path / "bad", size=48, crop=40))
    assert not bad.ok and "multiple of 16" in bad.error


def test_sharp_crops_train_on_photos_decoded_larger_and_the_model_keeps_the_training_size(tmp_path):
    from viaseg.core.ml.predict import Predictor

    cfg = tiny(tmp_path, sharp_crops=True, epochs=2)
    assert cfg.source_size == 54  # 32 / 0.6
    result, events = run(cfg)
    assert result.ok, result.error
    sp = [e for e in events if isinstance(e, E.SamplePredictions)][0]
    assert sp.pred_masks.shape[1:] == (32, 32)  # validation at the training size
    pred = Predictor.load(result.model_path, cache=False)
    assert pred.input_hw == (32, 32)
    assert result.summary["val_dice"] is not None


# ------------------------------------------------------------------ precision and device (issue 20)


def test_mixed_float16_run_trains_on_a_cpu_and_its_model_loads_and_predicts(tmp_path):
    """A model trained with mixed_float16 (the GPU default) computes in float16 with float32 weights, a
    float32 head and loss scaling, and loads and predicts on a CPU-only machine like any other."""
    import keras
    from viaseg.core.ml.modelio import load_model
    from viaseg.core.ml.predict import Predictor

    result, events = run(tiny(tmp_path, precision="mixed_float16", epochs=2, lr_schedule="flat_cosine"))
    assert result.ok, result.error
    assert events[0].precision == "mixed_float16" and result.summary["precision"] == "mixed_float16"
    assert all(np.isfinite(v) for v in result.history["loss"])
    model, meta = load_model(result.model_path)
    assert meta["precision"] == "mixed_float16"
    computes = {layer.compute_dtype for layer in model.layers if layer.weights}
    assert "float16" in computes and model.get_layer("mask").compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights)  # float32 master weights
    from viaseg.core.ml import unet

    # training compiles it with loss scaling (float16 gradients underflow without it); float32 models without
    assert isinstance(unet.compile_model(model).optimizer, keras.optimizers.LossScaleOptimizer)
    plain = unet.compile_model(unet.build_unet_xception(32, base_width=8))
    assert not isinstance(plain.optimizer, keras.optimizers.LossScaleOptimizer)
    x = P.to_float_images(
        np.stack(
            [cv2.resize(cv2.imread(str(tmp_path / "val" / f"img2_{i}.png")), (32, 32)) for i in range(2)]
        )
    )
    out = model.predict(x, verbose=0)
    assert out.dtype == np.float32 and np.isfinite(out).all() and 0.0 <= out.min() <= out.max() <= 1.0
    probs = Predictor.load(result.model_path, cache=False).predict(tmp_path / "val" / "img2_0.png")
    assert probs.shape == (48, 48) and probs.dtype == np.float32 and np.isfinite(probs).all()
    # the run's own full-resolution score came through the same predictor
    assert 0.0 <= result.summary["val_dice"] <= 1.0


def test_precision_auto_is_float32_on_a_cpu_and_mixed_float16_on_a_gpu(monkeypatch):
    import tensorflow as tf
    from viaseg.core.ml.train_plumbing import resolve_precision

    assert preset("default").precision == "auto"
    assert (
        resolve_precision("float32") == "float32" and resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    )
    real = tf.config.list_physical_devices
    if real("GPU"):
        pytest.skip("this machine has a GPU")
    assert resolve_precision("auto") == "float32"
    fake = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: [fake] if kind == "GPU" else real(kind)
    )
    assert resolve_precision("auto") == "mixed_float16"


def test_describe_device_names_the_gpu_or_the_cpu_and_its_threads():
    from viaseg.core.ml.train_plumbing import cpu_model_name, describe_device, device_description

    assert describe_device(["NVIDIA H200"], "AMD EPYC", 16) == "GPU: NVIDIA H200"
    assert describe_device(["NVIDIA H200", "NVIDIA H200"], "x", 2) == "2 GPUs: NVIDIA H200"
    assert describe_device([], "AMD EPYC 7B13", 2) == "CPU (AMD EPYC 7B13, 2 threads)"
    assert describe_device([], "", 1) == "CPU (unknown model, 1 thread)"
    here = device_description(3)
    assert here.startswith("GPU: ") or here == f"CPU ({cpu_model_name()}, 3 threads)"


def test_the_device_is_in_the_started_event_the_summary_and_the_cli_output(tmp_path, capsys):
    from viaseg.core.cli.train_cmd import _Printer
    from viaseg.core.ml.train_plumbing import device_description

    result, events = run(tiny(tmp_path, epochs=1, sample_every=0))
    assert result.ok, result.error
    started = events[0]
    assert started.device == result.summary["device"] == device_description(None)
    assert result.summary["device"].startswith(("CPU (", "GPU: "))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["device"] == started.device
    _Printer(quiet=True)(started)
    assert f"device: {started.device}, {started.precision}" in capsys.readouterr().out


def test_tf_config_names_the_chief_and_bad_ones_are_refused():
    from viaseg.core.base.errors import DatasetError
    from viaseg.core.ml.train_plumbing import is_chief, read_tf_config

    def env(task, cluster=None):
        cluster = cluster or {"worker": ["a:1", "b:2"]}
        return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}

    assert is_chief({}) is True  # one machine: it writes its run folder
    assert is_chief(env({"type": "worker", "index": 0})) is True
    assert is_chief(env({"type": "worker", "index": 1})) is False
    with_chief = {"chief": ["c:0"], "worker": ["a:1"]}
    assert is_chief(env({"type": "chief", "index": 0}, with_chief)) is True
    assert is_chief(env({"type": "worker", "index": 0}, with_chief)) is False
    assert read_tf_config(env({"type": "worker", "index": 1}))["task"]["index"] == 1
    with pytest.raises(DatasetError, match="needs the TF_CONFIG"):
        read_tf_config({})
    with pytest.raises(DatasetError, match="not valid"):
        read_tf_config({"TF_CONFIG": "{not json"})
    with pytest.raises(DatasetError, match="not in its cluster"):
        read_tf_config(env({"type": "worker", "index": 2}))


def test_decoder_lr_mult_reaches_the_optimizer_and_is_refused_without_the_imagenet_encoder(tmp_path):
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config

    args = build_parser().parse_args(["train", "ds", "--out", "r", "--decoder-lr-mult", "3"])
    assert _config(args).decoder_lr_mult == 3.0
    assert _config(build_parser().parse_args(["train", "ds", "--out", "r"])).decoder_lr_mult == 1.0
    bad, _ = run(tiny(tmp_path / "bad", decoder_lr_mult=3.0))  # the tiny Xception-style network
    assert not bad.ok and "ImageNet encoder" in bad.error
    negative, _ = run(tiny(tmp_path / "neg", encoder="mobilenet_v2", decoder_lr_mult=-1.0))
    assert not negative.ok and "must be above 0" in negative.error
    result, _ = run(tiny(tmp_path / "ok", encoder="mobilenet_v2", decoder_lr_mult=3.0, epochs=1))
    assert result.ok, result.error
    cfg = json.loads((tmp_path / "ok" / "run" / "config.json").read_text())
    assert cfg["decoder_lr_mult"] == 3.0


# ------------------------------------------------------------------ ensembles (core/ml/ensemble.py)


def test_ensemble_trains_its_members_and_saves_their_average(tmp_path):
    """Two members, each in its own run folder with its own seed; the model file averages them exactly (the
    Predictor's probabilities are the mean of the members' own), its threshold is the mean of theirs, it is
    scored on the validation set as a run is, and it cannot be fine-tuned as one network."""
    from viaseg.core.ml.ensemble import ENSEMBLE_KEY
    from viaseg.core.ml.modelio import read_meta
    from viaseg.core.ml.predict import Predictor

    cfg = tiny(tmp_path, ensemble=2, epochs=2, seed=3)
    result, events = run(cfg)
    assert result.ok, result.error
    run_dir = tmp_path / "run"
    assert result.model_path == run_dir / "model.keras"
    members = [run_dir / f"member_{k}" / "model.keras" for k in (0, 1)]
    assert all(p.is_file() for p in members)
    seeds = [json.loads((run_dir / f"member_{k}" / "config.json").read_text())["seed"] for k in (0, 1)]
    assert seeds == [6, 7]  # seed * 2 + k: runs of other seeds share no member
    meta = read_meta(result.model_path)
    info = meta[ENSEMBLE_KEY]
    assert info["members"] == 2 and info["seeds"] == [6, 7]
    assert meta["threshold"] == pytest.approx(np.mean([read_meta(p)["threshold"] for p in members]))
    photo = tmp_path / "val" / "img2_0.png"
    whole = Predictor.load(result.model_path, cache=False)
    assert len(whole.members) == 2
    parts = [Predictor.load(p, cache=False).predict(photo).probabilities for p in members]
    np.testing.assert_allclose(whole.predict(photo).probabilities, np.mean(parts, 0), atol=1e-4)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["ensemble"]["members"] == 2 and 0.0 <= summary["val_dice"] <= 1.0
    assert summary["threshold"] == meta["threshold"] and "members' thresholds" in threshold_text(summary)
    assert summary["epochs_run"] == 4
    # one Finished, the ensemble's; each member's Started says which network it is
    from viaseg.core.ml.train_events import Failed, Finished, Started

    starts = [e for e in events if isinstance(e, Started)]
    assert [e.part for e in starts] == [(0, 2), (1, 2)] and "network 2 of 2" in starts[1].notes[-1]
    ends = [e for e in events if isinstance(e, (Finished, Failed))]
    assert len(ends) == 1 and isinstance(ends[0], Finished) and ends[-1] is events[-1]
    assert ends[0].run_dir == run_dir and ends[0].model_path == result.model_path
    # the CLI says which network trains and ends with the averaged model, not one network's best epoch
    import contextlib
    import io

    from viaseg.core.cli.train_cmd import _Printer

    out = io.StringIO()
    printer = _Printer(quiet=True, out=out, err=io.StringIO())
    with contextlib.redirect_stderr(io.StringIO()):
        for ev in events:
            printer(ev)
    text = out.getvalue()
    assert "note: network 2 of 2" in text and "2 networks averaged; model: " in text
    assert "best epoch" not in text
    # the members' epochs one after another, counted on
    with (run_dir / "history.csv").open() as fh:
        hist = list(csv.DictReader(fh))
    assert [(r["member"], r["epoch"]) for r in hist] == [("0", "0"), ("0", "1"), ("1", "2"), ("1", "3")]
    assert all(r["val_dice"] for r in hist)
    # a run folder like any other: its curves, its samples, its config (they were only in member_k/)
    assert (run_dir / "curves.png").stat().st_size > 0 and any((run_dir / "samples").iterdir())
    assert json.loads((run_dir / "config.json").read_text())["ensemble"] == 2
    again, _ = run(tiny(tmp_path / "ft", init_from=str(result.model_path), epochs=1))
    assert not again.ok and "ensemble" in again.error and "member_0" in again.error
    bad, _ = run(tiny(tmp_path / "zero", ensemble=0))
    assert not bad.ok and "ensemble 0" in bad.error


def threshold_text(summary: dict) -> str:
    from viaseg.core.ml.train_calibrate import threshold_line

    return threshold_line(summary)


def test_ensemble_option_reaches_the_config():
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config

    args = build_parser().parse_args(["train", "ds", "--out", "r", "--ensemble", "2", "--time-limit", "600"])
    cfg = _config(args)
    assert cfg.ensemble == 2 and cfg.time_limit_s == 600
    assert _config(build_parser().parse_args(["train", "ds", "--out", "r"])).ensemble == 1
    crossval = build_parser().parse_args(["crossval", "ds", "--out", "r", "--ensemble", "3"])
    assert _config(crossval).ensemble == 3


def test_a_step_budget_ends_the_run_and_its_rate_follows_the_steps_not_the_clock(tmp_path, monkeypatch):
    from viaseg.core.ml import train_budget

    monkeypatch.setattr(train_budget, "BUDGET_MIN_EPOCHS", 2)
    lr0 = 1e-3
    # 4 photos in batches of 2: 2 steps an epoch; 6 steps end the run in its third epoch although the time
    # limit would allow an hour, and the flat cosine follows the steps (the clock has hardly moved)
    r, _ = run(
        tiny(tmp_path / "a", epochs=50, sample_every=0, learning_rate=lr0, time_limit_s=3600, max_steps=6)
    )
    assert r.ok and r.summary["epochs_run"] == 3 and r.summary["stop_reason"] == "step_budget"
    q = [max(0.0, 2 * e / 6 - 0.5) / 0.5 for e in range(3)]  # steps done when each epoch begins
    expected = [1e-5 + 0.5 * (lr0 - 1e-5) * (1 + np.cos(np.pi * x)) for x in q]
    assert _logged_lrs(r.run_dir) == pytest.approx(expected, rel=1e-4) and expected[2] < 0.8 * lr0
    # the budget never stops a run before BUDGET_MIN_EPOCHS passes over its photos: 2 steps asked, 4 taken
    r, _ = run(tiny(tmp_path / "b", epochs=50, sample_every=0, time_limit_s=3600, max_steps=2))
    assert r.ok and r.summary["epochs_run"] == 2 and r.summary["stop_reason"] == "step_budget"
    # no budget (0): the time limit alone, as before
    r, _ = run(tiny(tmp_path / "c", epochs=3, sample_every=0, time_limit_s=3600, max_steps=0))
    assert r.ok and r.summary["epochs_run"] == 3 and r.summary["stop_reason"] != "step_budget"


def test_progress_is_the_furthest_of_the_time_and_the_steps():
    from types import SimpleNamespace

    from viaseg.core.ml.train_budget import budget_spent, progress, step_budget

    cfg = SimpleNamespace(time_limit_s=600.0, epochs=400, max_steps=1000)
    assert step_budget(cfg, 19) == 1000 and step_budget(cfg, 100) == 4000  # 40 passes over 800 photos
    state = {"t0": 0.0, "steps": 19, "batches": 250}
    assert progress(cfg, state, 13, elapsed=60.0) == pytest.approx(0.25)  # the steps are further along
    assert progress(cfg, state, 13, elapsed=300.0) == pytest.approx(0.5)  # the clock is
    assert not budget_spent(cfg, state) and budget_spent(cfg, {**state, "batches": 1000})
    cfg.max_steps = 0
    assert step_budget(cfg, 19) is None and progress(cfg, state, 13, elapsed=60.0) == pytest.approx(0.1)
    cfg.time_limit_s, cfg.max_steps = None, 1000
    assert step_budget(cfg, 19) is None  # the budget bounds a time-limited run; epochs bound the others
    assert progress(cfg, state, 100) == pytest.approx(0.25)  # no time limit: the epochs
    assert not budget_spent(cfg, {**state, "batches": 10**6})


def test_max_steps_option_reaches_the_config_and_the_default_preset_has_a_budget():
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config

    assert preset("default").max_steps == 1000 and preset("research").max_steps == 0
    args = build_parser().parse_args(["train", "ds", "--out", "r", "--max-steps", "0"])
    assert _config(args).max_steps == 0
    assert _config(build_parser().parse_args(["train", "ds", "--out", "r"])).max_steps == 1000
    crossval = build_parser().parse_args(["crossval", "ds", "--out", "r", "--max-steps", "500"])
    assert _config(crossval).max_steps == 500


def test_extra_data_that_repeats_the_dataset_trains_each_photo_once(tmp_path, caplog):
    """--extra naming the training dataset itself doubled every photo without a word."""
    from viaseg.core.ml.train_plumbing import resolve_data

    ds = _write_via_dataset(tmp_path / "ds", 4)
    cfg = preset("default", dataset=str(ds), extra_train=[str(ds / "train"), str(ds)])
    with caplog.at_level("WARNING", logger="viaseg.train"):
        data = resolve_data(cfg)
    every = data.train + data.val
    assert len(every) == 4 and len({e.path.resolve() for e in every}) == 4
    said = [r.getMessage() for r in caplog.records if "already in the training data" in r.getMessage()]
    assert len(said) == 2 and "4 of its 4 photos" in said[0], said


def test_a_project_of_unlabelled_photos_trains_on_the_extra_datasets(tmp_path, caplog):
    """The app says "draw the damage on a few photos (or add an annotated dataset under Also train on)"; doing
    the latter failed with "no annotated split to train on"."""
    from viaseg.core.base.errors import DatasetError
    from viaseg.core.ml.train_plumbing import resolve_data

    photos = tmp_path / "photos"
    make_images(photos, 3)  # photos only: no VIA file
    for f in photos.glob("*.json"):
        f.unlink()
    other = _write_via_dataset(tmp_path / "other", 5)
    cfg = preset("default", dataset=str(photos), extra_train=[str(other)])
    with caplog.at_level("WARNING", logger="viaseg.train"):
        data = resolve_data(cfg)
    every = data.train + data.val
    assert len(every) == 5 and all(str(e.path).startswith(str(other)) for e in every)
    assert "no annotated photos" in caplog.text
    with pytest.raises(DatasetError, match="no annotated split"):
        resolve_data(preset("default", dataset=str(photos)))  # without extras: as before


def test_a_validation_share_of_0_trains_on_every_photo(tmp_path):
    """--val-fraction 0 (the panel's Validation split 0) held out one photo all the same, and said '0%'."""
    from viaseg.core.ml.train_plumbing import resolve_data

    ds = _write_via_dataset(tmp_path / "ds", 6)
    data = resolve_data(preset("default", dataset=str(ds), val_fraction=0.0))
    assert len(data.train) == 6 and data.val == [] and "validation split 0" in data.val_source
    assert len(resolve_data(preset("default", dataset=str(ds), val_fraction=0.2)).val) >= 1


def test_an_ensemble_stopped_after_its_first_network_is_that_network(tmp_path):
    """A two-network run stopped during its first network saved a "1-network ensemble" that Improve model and
    --init-from refused as "an ensemble of several networks"; the model is now that network itself, marked as a
    stopped ensemble, and it can be fine-tuned."""
    from viaseg.core.ml.ensemble import ENSEMBLE_KEY, fine_tune_problem
    from viaseg.core.ml.modelio import read_meta
    from viaseg.core.ml.predict import Predictor

    result, _ = run(tiny(tmp_path, ensemble=2, epochs=2, seed=3), should_stop=lambda: True)
    assert result.ok, result.error
    meta = read_meta(result.model_path)
    assert ENSEMBLE_KEY not in meta and meta["stopped_ensemble"]["members"] == 1
    assert meta["stopped_ensemble"]["asked"] == 2
    assert fine_tune_problem(result.model_path) == ""
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert any("stopped after 1 of 2" in w for w in summary["warnings"])
    assert Predictor.load(result.model_path, cache=False).members == []  # one network, not an average
    again, _ = run(tiny(tmp_path / "ft", init_from=str(result.model_path), epochs=1))
    assert again.ok, again.error


def test_init_from_on_the_command_line_keeps_the_model_s_settings_unless_given(tmp_path, capsys):
    """`viaseg train --init-from MODEL` without --size fine-tuned a 384-px model at the preset's 256 px (and its
    loss, batch, augmentation): the settings not given are now the model's; those given win; a note says which."""
    import zipfile

    from viaseg.core.cli import build_parser
    from viaseg.core.cli.init_from import follow_init_model
    from viaseg.core.cli.train_cmd import _config
    from viaseg.core.ml.modelio import META_NAME

    model = tmp_path / "m.keras"
    with zipfile.ZipFile(model, "w") as z:
        z.writestr(
            META_NAME,
            json.dumps(
                {"config": {"size": 384, "batch_size": 2, "loss": "dice", "augment": {"flip": False}}}
            ),
        )
    args = build_parser().parse_args(
        ["train", "ds", "--out", "r", "--init-from", str(model), "--batch-size", "4"]
    )
    cfg = follow_init_model(_config(args), args)
    assert (cfg.size, cfg.batch_size, cfg.loss, cfg.augment.flip) == (384, 4, "dice", False)
    note = capsys.readouterr().err
    assert "image size 384 instead of 256" in note and "batch size" not in note
    args = build_parser().parse_args(
        ["train", "ds", "--out", "r", "--init-from", str(model), "--no-augment", "--size", "128"]
    )
    cfg = follow_init_model(_config(args), args)
    assert cfg.size == 128 and not cfg.augment.any and cfg.loss == "dice"
