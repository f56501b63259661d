"""Threshold calibration (core/ml/train_calibrate.py): which photos are kept out, how the threshold is chosen,
that kept-out photos are not drawn before the calibration point, and a real run storing what it chose."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from test_train import make_images, run, tiny
from viaseg.core.ml import pipeline as P
from viaseg.core.ml.train_calibrate import MIN_HELD, RANGE, choose_held, choose_threshold


def _masks(n_annotated: int, n_empty: int = 0) -> np.ndarray:
    m = np.zeros((n_annotated + n_empty, 8, 8), np.uint8)
    m[:n_annotated, 2:5, 2:5] = 1
    return m


def test_held_photos_are_annotated_drawn_per_source_and_seeded():
    masks = _masks(40, n_empty=10)
    sources = [0] * 20 + [1] * 20 + [0] * 10  # the empty ones are source 0
    held = choose_held(masks, sources, 0.2, seed=3)
    assert held is not None and held.dtype == bool
    assert held[:20].sum() == 4 and held[20:40].sum() == 4  # a fifth of each source's annotated photos
    assert not held[40:].any()  # never an image without damage: it cannot score a threshold
    assert np.array_equal(held, choose_held(masks, sources, 0.2, seed=3))
    assert not np.array_equal(held, choose_held(masks, sources, 0.2, seed=4))


def test_too_few_photos_or_share_off_means_no_calibration():
    assert choose_held(_masks(24), [], 0.2, seed=0) is not None  # 5 of 24: enough
    assert choose_held(_masks(MIN_HELD * 5 - 3), [], 0.2, seed=0) is None  # 4 of 22: too few
    assert choose_held(_masks(100), [], 0.0, seed=0) is None
    # a source with one annotated photo keeps it for training
    held = choose_held(_masks(31), [0] * 30 + [1], 0.5, seed=0)
    assert held is not None and not held[30]


def _sweep(values: dict[float, float]) -> list[dict]:
    ts = [round(0.05 * k, 2) for k in range(1, 20)]
    return [{"threshold": t, "mean_dice": values.get(t, 0.3)} for t in ts]


def test_threshold_is_the_smoothed_best_inside_the_range():
    # a broad optimum around 0.25 wins over a single spike at 0.6
    sweep = _sweep({0.2: 0.55, 0.25: 0.58, 0.3: 0.56, 0.6: 0.62})
    assert choose_threshold(sweep) == 0.25
    # the best outside the range is not taken: the nearest allowed one is
    sweep = _sweep({0.05: 0.9, 0.1: 0.5})
    assert choose_threshold(sweep) == RANGE[0]
    sweep = _sweep({0.9: 0.9, 0.85: 0.9, 0.8: 0.9, 0.75: 0.9, 0.7: 0.9})
    assert choose_threshold(sweep) == RANGE[1]
    # a flat curve: the threshold nearest 0.5
    assert choose_threshold(_sweep({})) == 0.5


def test_kept_out_rows_are_drawn_only_once_released():
    import tensorflow as tf

    n = 6
    imgs = np.zeros((n, 16, 16, 3), np.uint8)
    masks = np.zeros((n, 16, 16), np.uint8)
    for i in range(n):
        imgs[i] = 10 * i
        masks[i, :4, :4] = 1
    arrays = P.Arrays(imgs, masks, [str(i) for i in range(n)], [""] * n, [""] * n)
    release = tf.Variable(False, trainable=False)
    held = np.array([True, True, False, False, False, False])
    it = iter(P.train_dataset(arrays, 2, 0, P.Augment.off(), held=held, release=release))

    def drawn(batches: int) -> set[int]:
        out: set[int] = set()
        for _ in range(batches):
            x, _ = next(it)
            out |= set(np.rint(x.numpy()[:, 0, 0, 0] * 255 / 10).astype(int).tolist())
        return out

    assert drawn(20) == {2, 3, 4, 5}
    release.assign(True)
    drawn(4)  # batches prefetched before the release
    assert drawn(30) == set(range(n))


def test_a_run_calibrates_its_threshold_and_saves_it(tmp_path):
    from viaseg.core.ml.modelio import read_meta

    tr = make_images(tmp_path / "train", 26, seed=5)
    cfg = tiny(tmp_path, dataset=tr, epochs=4, calibrate=0.2)
    result, _ = run(cfg)
    assert result.ok, result.error
    summary = json.loads((result.run_dir / "summary.json").read_text())
    cal = summary["threshold_calibration"]
    assert cal["n_images"] == 5 and len(cal["images"]) == 5
    assert set(cal["images"]) <= {e.filename for e in tr}
    assert cal["at_epoch"] == 3  # the first epoch end at 3/4 of the 4 epochs
    assert RANGE[0] <= cal["threshold"] <= RANGE[1]
    assert cal["threshold"] == choose_threshold(cal["sweep"])
    assert summary["threshold"] == cal["threshold"] == read_meta(result.model_path)["threshold"]


def test_without_enough_photos_the_preset_threshold_stays_and_the_summary_says_why(tmp_path):
    from viaseg.core.ml.modelio import read_meta

    result, _ = run(tiny(tmp_path, calibrate=0.2, threshold=0.45))  # 4 training photos
    assert result.ok, result.error
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["threshold"] == 0.45 == read_meta(result.model_path)["threshold"]
    assert "too few" in summary["threshold_calibration"]["skipped"]
    # a fine-tuning with no new photos named does not calibrate: it keeps the threshold of the model it starts from
    tuned, _ = run(tiny(tmp_path, out_dir=tmp_path / "tuned", calibrate=0.2, init_from=result.model_path))
    assert tuned.ok, tuned.error
    assert read_meta(tuned.model_path)["threshold"] == 0.45
    assert (
        "fine-tuning"
        in json.loads((tuned.run_dir / "summary.json").read_text())["threshold_calibration"]["skipped"]
    )


def test_cli_calibrate_option_and_a_given_threshold_switch_it(capsys):
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config

    parse = build_parser().parse_args
    assert _config(parse(["train", "ds", "--out", "r"])).calibrate == 0.2  # the default preset
    assert _config(parse(["train", "ds", "--out", "r", "--preset", "research"])).calibrate == 0.0
    assert _config(parse(["train", "ds", "--out", "r", "--calibrate", "0.3"])).calibrate == 0.3
    given = _config(parse(["train", "ds", "--out", "r", "--threshold", "0.4"]))
    assert given.calibrate == 0.0 and given.threshold == 0.4
    assert _config(parse(["crossval", "ds", "--out", "r", "--calibrate", "0"])).calibrate == 0.0
    for bad in ("1", "-0.1", "half"):
        with pytest.raises(SystemExit):
            parse(["train", "ds", "--out", "r", "--calibrate", bad])
        assert "--calibrate" in capsys.readouterr().err


def test_improve_chooses_among_its_new_photos_and_keeps_out_every_copy():
    names = [f"old{i}.png" for i in range(20)] + [f"new{i}.png" for i in range(10)]
    # Improve model draws its new photos 3x, as further sources
    names += [f"new{i}.png" for i in range(10)] * 2
    sources = [0] * 30 + [1] * 10 + [2] * 10
    masks = _masks(len(names))
    new = [f"new{i}.png" for i in range(10)]
    held = choose_held(masks, sources, 0.5, seed=1, names=names, only=new)
    assert held is not None
    chosen = {n for n, h in zip(names, held, strict=True) if h}
    assert len(chosen) == 5 and chosen <= set(new)  # half of the new photos, never one it trained on before
    assert all(h == (n in chosen) for n, h in zip(names, held, strict=True))  # every copy of a chosen photo
    assert np.array_equal(held, choose_held(masks, sources, 0.5, seed=1, names=names, only=new))
    # too few new photos to keep MIN_HELD of them out: no calibration (the starting model's threshold)
    assert choose_held(masks, sources, 0.5, seed=1, names=names, only=new[: 2 * MIN_HELD - 2]) is None
    with pytest.raises(ValueError):
        choose_held(masks, sources, 0.5, seed=1, only=new)


def test_improve_model_calibrates_on_half_of_its_new_photos(tmp_path):
    from test_train import make_images
    from viaseg.core.ml import loop
    from viaseg.core.ml.modelio import read_meta
    from viaseg.core.ml.train_calibrate import IMPROVE_SHARE

    first, _ = run(tiny(tmp_path, epochs=1, calibrate=0.2, threshold=0.45))  # 4 photos: not calibrated
    assert first.ok, first.error
    assert read_meta(first.model_path)["threshold"] == 0.45
    new = make_images(tmp_path / "new", 10, seed=7)
    old = tiny(tmp_path).dataset
    cfg = tiny(
        tmp_path,
        dataset=old + new,
        epochs=2,
        out_dir=tmp_path / "improve",
        init_from=str(first.model_path),
        calibrate=0.2,
        threshold=0.45,
    )
    job = loop.ImproveJob(cfg, emphasis=3)
    tcfg, p, _ = job.prepare()
    assert tcfg.calibrate == IMPROVE_SHARE and set(tcfg.calibrate_on) == {e.filename for e in new}
    out = job.run()
    assert out.ok, out.error
    summary = json.loads((out.run_dir / "summary.json").read_text())
    cal = summary["threshold_calibration"]
    assert cal["n_images"] == 5 and set(cal["images"]) <= {e.filename for e in new}
    assert cal["at_epoch"] == 1  # half of the 2-epoch budget
    assert summary["threshold"] == cal["threshold"] == read_meta(out.model_path)["threshold"]
    assert cal["threshold"] == choose_threshold(cal["sweep"])
    # the verdict says how the new threshold was set, next to the old one
    assert out.comparison["new_threshold"] == cal["threshold"] and out.comparison["old_threshold"] == 0.45
    assert out.comparison["threshold_how"].startswith(f"threshold {cal['threshold']:.2f}: calibrated on 5 ")
