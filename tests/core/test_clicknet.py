"""The click network (core.ml.clicknet) shipped with viaseg: its weights load, a click on a real damage photo
finds that damage, and its region goes into core.assist as the first click's region."""

from __future__ import annotations

import numpy as np
import pytest
from test_assist import largest_regions
from viaseg.core.assist import protocol
from viaseg.core.assist.segment import Click, RegionMask, Segmenter


@pytest.fixture(scope="module")
def net():
    from viaseg.core.ml.clicknet import ClickNet

    return ClickNet.load()


def test_a_click_on_real_damage_finds_it_and_corrections_apply(car_damage, net):
    """car-damage/val photos, which the shipped network never trained on: one click at the point of a
    labelled region farthest from its boundary (the NoC protocol's first click)."""
    ious = []
    for img, gt in largest_regions(car_damage, 4):
        h, w = img.shape[:2]
        x, y = protocol.first_click(gt)
        found = net.first_region(img, (w, h), x, y)
        assert found.mask.dtype == bool and found.mask.shape == (512, 512)
        region = RegionMask(found.mask, found.x0, found.y0, found.scale, "click network")
        full = region.full((w, h))
        ious.append(protocol.mask_iou(full, gt))
        # core.assist takes it as the first click's region; a negative click in it then takes its part away
        seg = Segmenter((w, h), None, img)
        seg.give_first_region(Click(x, y), region)
        assert seg.segment([Click(x, y)]).region is region
        if full.any():
            ys, xs = np.nonzero(full & ~gt) if (full & ~gt).any() else np.nonzero(full)
            neg = Click(float(xs[len(xs) // 2]) + 0.5, float(ys[len(ys) // 2]) + 0.5, False)
            after = seg.segment([Click(x, y), neg]).region
            assert after is None or after.full((w, h)).sum() < full.sum()
    assert np.mean(ious) > 0.35, ious  # 0.48 measured here


def test_the_reduced_photo_gives_the_same_region_as_the_full_one(car_damage, net):
    from viaseg.core.ml.clicknet import work_image

    img, gt = next(largest_regions(car_damage, 1))
    h, w = img.shape[:2]
    x, y = protocol.first_click(gt)
    a = net.first_region(img, (w, h), x, y)
    b = net.first_region(work_image(img), (w, h), x, y)
    assert (a.x0, a.y0, a.scale) == pytest.approx((b.x0, b.y0, b.scale))
    assert (a.mask == b.mask).mean() > 0.99


def test_weights_that_do_not_fit_name_the_file(tmp_path):
    import keras
    from viaseg.core.ml import clicknet

    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip")
    model = clicknet.build()
    with pytest.raises(ValueError, match="broken.npz"):
        clicknet.load_weights(model, bad)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense_x")])
    saved = clicknet.save_weights(other, tmp_path / "other.npz", "a different network")
    with pytest.raises(ValueError, match="other.npz"):
        clicknet.load_weights(model, saved)
    with pytest.raises(ValueError, match="missing"):
        clicknet.ClickNet.load(tmp_path / "absent.npz")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")  # np.load raised EOFError, which the app did not expect
    with pytest.raises(ValueError, match="empty.npz"):
        clicknet.load_weights(model, empty)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, **{"a": np.zeros(2)})  # "invalid literal for int()" named no file
    with pytest.raises(ValueError, match="foreign.npz: not a click network weights file"):
        clicknet.load_weights(model, foreign)
    assert clicknet.weights_problem(foreign) == "it holds no layer weights"
    assert clicknet.weights_problem(empty) == "an empty file" and clicknet.weights_problem(saved) is None


def test_the_experiments_efficientnet_encoder_starts_from_its_imagenet_weights_and_fits_no_shipped_file():
    import numpy as np
    from viaseg.core.ml import clicknet, unet_effnet

    model = clicknet.build(64, encoder="efficientnet_lite0")
    assert model.output_shape == (None, 64, 64, 1)
    stored = unet_effnet.imagenet_weights()
    np.testing.assert_array_equal(
        model.get_layer("eff_b7_project").get_weights()[0], stored["eff_b7_project"][0]
    )
    with pytest.raises(ValueError, match="clicknet_nomap.npz"):  # the shipped weights are MobileNetV2's
        clicknet.load_weights(model, clicknet.WEIGHTS)


def test_viaseg_clicknet_fine_tunes_the_shipped_weights_on_a_projects_polygons(car_damage, tmp_path, capsys):
    import json

    from viaseg.core.cli import main
    from viaseg.core.ml import clicknet

    out = tmp_path / "mine.npz"
    assert main(["clicknet", f"{car_damage}:val", "--out", str(out), "--steps", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["steps"] == 2 and res["photos"] >= 12 and res["regions"] >= res["photos"]
    assert res["left_out"] == []
    # a weights file the app loads, started from the shipped weights and moved by the two steps
    with np.load(out) as mine, np.load(clicknet.WEIGHTS) as shipped:
        assert "fine-tuned" in str(mine["__about__"])
        assert set(mine.files) == set(shipped.files)
        moved = [k for k in shipped.files if k != "__about__" and not np.array_equal(mine[k], shipped[k])]
        close = np.allclose(
            mine["Conv1/0"].astype(np.float32), shipped["Conv1/0"].astype(np.float32), atol=0.05
        )
    assert moved and close
    net = clicknet.ClickNet.load(out)
    img, gt = next(largest_regions(car_damage, 1))
    h, w = img.shape[:2]
    x, y = protocol.first_click(gt)
    assert net.first_region(img, (w, h), x, y).mask.any()


def test_viaseg_clicknet_says_when_there_is_nothing_to_learn(tmp_path, capsys):
    import cv2
    from viaseg.core.cli import main

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    assert main(["clicknet", str(folder), "--out", str(tmp_path / "x.npz"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "no annotated region" in err and str(folder) in err
    assert not (tmp_path / "x.npz").exists()


def test_viaseg_clicknet_refuses_outputs_and_starts_it_cannot_use_before_training(tmp_path, capsys):
    """--out a photo or an annotation file was replaced by the weights (exit 0); --from a text or empty file
    ended in a traceback."""
    import cv2
    from viaseg.core.cli import main

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    photo = (folder / "a.jpg").read_bytes()
    (tmp_path / "notes.npz").write_text("mine")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.keras").write_text("not weights")
    cases = [
        (["--out", str(folder / "a.jpg")], "ending in .npz"),
        (["--out", str(tmp_path / "notes.npz")], "not a weights file"),
        (["--out", str(tmp_path / "nowhere" / "x.npz")], "does not exist"),
        (["--out", str(tmp_path / "x.npz"), "--from", str(tmp_path / "empty.npz")], "an empty file"),
        (["--out", str(tmp_path / "x.npz"), "--from", str(tmp_path / "text.keras")], "not a click network"),
        (["--out", str(tmp_path / "x.npz"), "--from", str(tmp_path / "absent.npz")], "no such weights file"),
    ]
    for extra, words in cases:
        assert main(["clicknet", str(folder), "--steps", "1", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (extra, err)
    assert (folder / "a.jpg").read_bytes() == photo
    assert (tmp_path / "notes.npz").read_text() == "mine"
    assert not (tmp_path / "x.npz").exists()
