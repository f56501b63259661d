"""Evaluation: Dice/IoU math, agreement picture, evaluate() on a generated dataset, the evaluate CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from viaseg.core.ml.evaluate import (
    FN_COLOR,
    FP_COLOR,
    TP_COLOR,
    EvalError,
    ImageScore,
    agreement_image,
    dice_iou,
)

# ------------------------------------------------------------------------------------------ pure functions


def test_dice_iou_against_hand_computed_masks():
    t = np.zeros((8, 8), bool)
    p = np.zeros((8, 8), bool)
    t[0:4, 0:4] = True  # 16 px
    p[2:6, 0:4] = True  # 16 px, 8 shared
    dice, iou = dice_iou(t, p)
    assert dice == pytest.approx(2 * 8 / 32)
    assert iou == pytest.approx(8 / 24)
    # uint8 0/255 masks mean the same
    assert dice_iou(t.astype(np.uint8) * 255, p.astype(np.uint8)) == pytest.approx((0.5, 1 / 3))
    assert dice_iou(t, t) == (1.0, 1.0)
    assert dice_iou(t, ~t) == (0.0, 0.0)


def test_empty_truth_and_empty_prediction_score_one():
    z = np.zeros((5, 7), np.uint8)
    assert dice_iou(z, z) == (1.0, 1.0)
    one = z.copy()
    one[2, 3] = 1
    assert dice_iou(z, one) == (0.0, 0.0)  # predicting something where nothing is annotated
    assert dice_iou(one, z) == (0.0, 0.0)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        dice_iou(np.zeros((4, 4)), np.zeros((4, 5)))


def test_agreement_image_colours():
    t = np.array([[1, 1, 0, 0]], bool)
    p = np.array([[1, 0, 1, 0]], bool)
    img = agreement_image(t, p, alpha=200)
    assert img.shape == (1, 4, 4) and img.dtype == np.uint8
    assert tuple(img[0, 0]) == (*TP_COLOR, 200)
    assert tuple(img[0, 1]) == (*FN_COLOR, 200)
    assert tuple(img[0, 2]) == (*FP_COLOR, 200)
    assert img[0, 3, 3] == 0  # true negative: transparent


# ------------------------------------------------------------------------------------------ evaluate()

keras = pytest.importorskip("keras")

SIZE = 32


def brightness_model():
    inp = keras.Input((SIZE, SIZE, 3))
    out = keras.layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.Constant(10.0 / 3.0),
        bias_initializer=keras.initializers.Constant(-5.0),
    )(inp)
    return keras.Model(inp, out)


def rect_region(x0, y0, x1, y1):
    return {
        "shape_attributes": {
            "name": "polygon",
            "all_points_x": [x0, x1, x1, x0],
            "all_points_y": [y0, y0, y1, y1],
        },
        "region_attributes": {"class": "damage"},
    }


@pytest.fixture
def dataset(tmp_path):
    """val split: 'good' (white square, annotated there), 'empty' (black, no regions), 'wrong' (white square,
    annotated elsewhere), 'missed' (black, annotated); train split so the default split choice matters."""
    specs = {
        "good.png": ((11, 11, 30, 30), [(11, 11, 30, 30)]),  # off the 2-px grid: not perfect
        "empty.png": (None, []),
        "wrong.png": ((5, 5, 20, 20), [(40, 40, 59, 59)]),
        "missed.png": (None, [(30, 30, 50, 50)]),
    }
    root = tmp_path / "ds"
    for split in ("train", "val"):
        folder = root / split
        folder.mkdir(parents=True)
        meta = {}
        for name, (white, regions) in specs.items():
            img = np.zeros((64, 64, 3), np.uint8)
            if white:
                x0, y0, x1, y1 = white
                img[y0 : y1 + 1, x0 : x1 + 1] = 255
            cv2.imwrite(str(folder / name), img)
            size = (folder / name).stat().st_size
            meta[f"{name}{size}"] = {
                "filename": name,
                "size": size,
                "regions": [rect_region(*r) for r in regions],
                "file_attributes": {},
            }
        (folder / "via_region_data.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def model_file(tmp_path):
    from viaseg.core.ml.modelio import save_model

    return save_model(brightness_model(), tmp_path / "bright.keras", {"input_size": SIZE, "threshold": 0.5})


def test_evaluate_scores_worst_first_with_full_resolution_truth(dataset, model_file):
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.ml.evaluate import evaluate
    from viaseg.core.ml.predict import Predictor

    split = load_dataset(dataset).split("val")
    predictor = Predictor.load(model_file)
    seen = []
    res = evaluate(predictor, split, on_progress=lambda d, t, s: seen.append((d, t, s.image)))
    assert [d for d, _, _ in seen] == [1, 2, 3, 4] and all(t == 4 for _, t, _ in seen)
    by = {s.image: s for s in res.per_image}
    assert by["empty.png"].dice == 1.0 and by["empty.png"].iou == 1.0
    assert by["good.png"].dice > 0.9
    assert by["good.png"].true_pixels == 400  # 20x20 polygon rasterized at the full 64x64 size
    assert by["wrong.png"].dice == 0.0 and by["missed.png"].dice == 0.0
    assert by["missed.png"].pred_pixels == 0 and by["missed.png"].true_pixels == 21 * 21
    dices = [s.dice for s in res.per_image]
    assert dices == sorted(dices)
    assert res.per_image[-1].image == "empty.png"
    assert res.mean_dice == pytest.approx(np.mean(dices))
    inter = sum(s.intersection for s in res.per_image)
    total = sum(s.true_pixels + s.pred_pixels for s in res.per_image)
    assert res.global_dice == pytest.approx(2 * inter / total)
    assert res.threshold == 0.5 and res.split == "val"


def test_threshold_changes_the_scores_and_missing_images_are_errors(dataset, model_file):
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.ml.evaluate import evaluate
    from viaseg.core.ml.predict import Predictor

    split = load_dataset(dataset).split("val")
    (dataset / "val" / "good.png").unlink()
    predictor = Predictor.load(model_file)
    strict = evaluate(predictor, split, threshold=0.999)
    assert len(strict.errors) == 1 and strict.errors[0].image == "good.png"
    assert "no such file" in strict.errors[0].error
    assert strict.count == 3 and strict.threshold == 0.999
    # at 0.999 even the white square is not predicted: 'wrong' becomes empty vs. annotated still 0,
    # but no prediction pixels anywhere
    assert all(s.pred_pixels == 0 for s in strict.per_image)
    stopped = evaluate(predictor, split, should_stop=lambda: True)
    assert stopped.stopped and stopped.count == 0 and stopped.mean_dice is None


def test_evaluate_cli_json_schema_and_default_split(dataset, model_file, capsys):
    from viaseg.core.cli import main

    assert main(["evaluate", str(model_file), str(dataset), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("mean_dice", "global_dice", "mean_iou", "global_iou", "threshold", "per_image"):
        assert key in out
    assert out["split"] == "val"  # default split
    assert {tuple(sorted(r)) for r in out["per_image"]} == {
        ("dice", "image", "iou", "pred_pixels", "true_pixels")
    }
    assert [r["image"] for r in out["per_image"]][-1] == "empty.png"
    assert [r["dice"] for r in out["per_image"]] == sorted(r["dice"] for r in out["per_image"])
    assert out["threshold"] == 0.5

    assert main(["evaluate", str(model_file), f"{dataset}:train", "--threshold", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "split train" in text and "threshold 0.3" in text and "good.png" in text


def test_evaluate_cli_errors_are_messages(dataset, model_file, tmp_path, capsys):
    from viaseg.core.cli import main

    assert main(["evaluate", str(tmp_path / "none.keras"), str(dataset)]) == 2
    err = capsys.readouterr().err
    assert "none.keras: no such model file" in err and "Traceback" not in err
    assert main(["evaluate", str(model_file), f"{dataset}:nope"]) == 2
    assert "nope" in capsys.readouterr().err
    (dataset / "val" / "missed.png").write_bytes(b"garbage")
    assert main(["evaluate", str(model_file), str(dataset), "--json"]) == 1
    cap = capsys.readouterr()
    assert "missed.png" in cap.err and "Traceback" not in cap.err
    assert json.loads(cap.out)["errors"][0]["image"] == "missed.png"


def test_scores_serialise():
    s = ImageScore("a.jpg", None, 0.25, 1 / 7, 10, 6, 2)
    assert s.to_dict() == {
        "image": "a.jpg",
        "dice": 0.25,
        "iou": round(1 / 7, 6),
        "true_pixels": 10,
        "pred_pixels": 6,
    }
    assert EvalError("b.jpg", None, "broken").to_dict() == {"image": "b.jpg", "error": "broken"}


def test_threshold_sweep_matches_separate_evaluations(tmp_path, dataset, model_file):
    """The sweep's numbers (one forward pass) equal evaluating at each threshold separately."""
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.project import ImageEntry, Region
    from viaseg.core.ml.evaluate import SWEEP_THRESHOLDS, evaluate
    from viaseg.core.ml.predict import Predictor

    ramp = np.tile(np.linspace(0, 255, 80).astype(np.uint8)[None, :, None], (50, 1, 3))
    cv2.imwrite(str(tmp_path / "ramp.png"), ramp)
    shape = rect_region(40, 0, 79, 49)["shape_attributes"]
    entries = [ImageEntry("ramp", "ramp.png", None, [Region(shape)], base_dir=tmp_path)]
    entries += load_dataset(dataset).split("val").entries
    predictor = Predictor.load(model_file)
    calls = predictor.forward_calls
    res = evaluate(predictor, entries, sweep=True, batch_size=8)
    assert predictor.forward_calls == calls + 1
    sweep = {row["threshold"]: row for row in res.sweep}
    assert list(sweep) == list(SWEEP_THRESHOLDS)
    for t in (0.2, 0.5, 0.8):
        exact = evaluate(predictor, entries, threshold=t)
        assert sweep[t]["mean_dice"] == pytest.approx(exact.mean_dice, abs=2e-3)
        assert sweep[t]["global_dice"] == pytest.approx(exact.global_dice, abs=2e-3)
    assert len({row["mean_dice"] for row in res.sweep}) > 3  # the ramp makes the threshold matter
    assert res.best_threshold in SWEEP_THRESHOLDS
    assert sweep[res.best_threshold]["mean_dice"] == max(r["mean_dice"] for r in res.sweep)
    d = res.to_dict()
    assert d["best_threshold"] == res.best_threshold and len(d["sweep"]) == len(SWEEP_THRESHOLDS)
    assert "sweep" not in evaluate(predictor, entries[:1]).to_dict()


def test_evaluate_cli_can_leave_out_images_that_are_also_in_train(dataset, model_file, capsys):
    from viaseg.core.cli import main

    # the fixture's val images are byte copies of train's; re-encode one so only its pixels match
    val = dataset / "val"
    img = cv2.imread(str(val / "wrong.png"))
    cv2.imwrite(str(val / "wrong.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 0])
    cv2.imwrite(str(val / "good.png"), np.full((64, 64, 3), 7, np.uint8))  # new content: not a duplicate
    for spec in (str(dataset), f"{dataset}:val"):  # DATASET:val alone must still find train's copies
        assert main(["evaluate", str(model_file), spec, "--json", "--exclude-train-duplicates"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert sorted(out["excluded_train_duplicates"]) == ["empty.png", "missed.png", "wrong.png"]
        assert [r["image"] for r in out["per_image"]] == ["good.png"] and out["split"] == "val"
    assert main(["evaluate", str(model_file), str(dataset), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 4 and "excluded_train_duplicates" not in out


def test_evaluate_says_when_regions_cover_no_pixel_of_their_photo(dataset, model_file, capsys):
    """A photo whose regions all lie outside it has no damage to find: it was scored Dice 1 and counted in the
    mean without a word (viaseg check reports such regions as errors)."""
    from viaseg.core.cli import main

    via = dataset / "val" / "via_region_data.json"
    meta = json.loads(via.read_text())
    key = next(k for k, v in meta.items() if v["filename"] == "empty.png")
    meta[key]["regions"] = [rect_region(100, 100, 120, 120)]  # the photo is 64 x 64
    via.write_text(json.dumps(meta))
    assert main(["evaluate", str(model_file), str(dataset), "--json"]) == 0
    cap = capsys.readouterr()
    assert "1 image(s) have regions that cover no pixel of the photo" in cap.err and "empty.png" in cap.err
    assert main(["evaluate", str(model_file), f"{dataset}:train", "--json"]) == 0
    assert "cover no pixel" not in capsys.readouterr().err  # photos without regions are no news
