"""Data pipeline: decode once, masks at training size, scaling once, joint augmentation, determinism,
duplicates, unreadable images, disk cache, seeded split."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from viaseg.core.annotation.project import ImageEntry, Region
from viaseg.core.checks.check_copies import copies_of
from viaseg.core.ml import pipeline as P


def rect_region(x, y, w, h):
    return Region({"name": "rect", "x": x, "y": y, "width": w, "height": h}, {})


def write(folder, name, img):
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return name


def entry(folder, name, regions=()):
    return ImageEntry(key=name, filename=name, regions=list(regions), base_dir=folder)


@pytest.fixture
def marked(tmp_path):
    """4 images 64x48 (w x h): dark background, the region painted white (so image and mask must agree)."""
    rng = np.random.default_rng(0)
    entries = []
    for i in range(4):
        img = np.full((48, 64, 3), 20, np.uint8)
        x, y = int(rng.integers(0, 30)), int(rng.integers(0, 20))
        img[y : y + 20, x : x + 24] = 255
        name = write(tmp_path, f"m{i}.png", img)
        entries.append(entry(tmp_path, name, [rect_region(x, y, 23, 19)]))
    return entries


def test_masks_are_rasterized_at_training_size(marked):
    arr = P.load_arrays(marked, size=32)
    assert arr.images.shape == (4, 32, 32, 3) and arr.images.dtype == np.uint8
    assert arr.masks.shape == (4, 32, 32) and set(np.unique(arr.masks)) <= {0, 1}
    # the mask covers the white rectangle: white pixels (after resizing) are inside the mask
    for img, m in zip(arr.images, arr.masks, strict=True):
        white = img.mean(axis=-1) > 200
        assert white.any() and m[white].mean() > 0.95
        assert abs(int(m.sum()) - int((img.mean(axis=-1) > 137).sum())) <= 12


def test_scaled_to_unit_range_exactly_once(tmp_path):
    tf = pytest.importorskip("tensorflow")
    name = write(tmp_path, "white.png", np.full((40, 40, 3), 255, np.uint8))
    arr = P.load_arrays([entry(tmp_path, name, [rect_region(0, 0, 10, 10)])], size=32)
    for ds in (P.eval_dataset(arr, 1), P.train_dataset(arr, 1, augment=P.Augment.off()).take(1)):
        ((x, y),) = list(ds.as_numpy_iterator())
        assert x.dtype == np.float32 and x.min() == 1.0 and x.max() == 1.0
        assert y.shape == (1, 32, 32, 1) and y.max() == 1.0
    assert tf is not None


def test_augmentation_keeps_mask_aligned_and_is_deterministic(marked):
    pytest.importorskip("tensorflow")
    arr = P.load_arrays(marked, size=64)
    geo = P.Augment(flip=True, scale_crop=True, rotate=True, color=False, max_degrees=15)

    def take(seed, aug=geo, n=12):
        return [b for b in P.train_dataset(arr, 4, seed=seed, augment=aug).take(n // 4).as_numpy_iterator()]

    a, b, c = take(1), take(1), take(2)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c, strict=True))
    # geometry moved (not the identity) yet bright pixels and mask pixels still coincide
    originals = {arr.images[i].tobytes() for i in range(len(arr))}
    moved = 0
    for x, y in a:
        for img, m in zip(x, y[..., 0], strict=True):
            moved += np.round(img * 255).astype(np.uint8).tobytes() not in originals
            white = img.mean(axis=-1) > 0.8
            dark = img.mean(axis=-1) < 0.2
            assert m[white].mean() > 0.9, "mask lost the bright region"
            assert m[dark].mean() < 0.1, "mask on the dark background"
    assert moved >= 6


def test_flip_alone_mirrors_image_and_mask(marked):
    pytest.importorskip("tensorflow")
    arr = P.load_arrays(marked[:1], size=32)
    aug = P.Augment(flip=True, scale_crop=False, rotate=False, color=False)
    flips = 0
    for x, y in P.train_dataset(arr, 1, seed=3, augment=aug).take(10).as_numpy_iterator():
        img, m = np.round(x[0] * 255).astype(np.uint8), y[0, ..., 0].astype(np.uint8)
        if np.array_equal(img, arr.images[0]):
            np.testing.assert_array_equal(m, arr.masks[0])
        else:
            np.testing.assert_array_equal(img, arr.images[0][:, ::-1])
            np.testing.assert_array_equal(m, arr.masks[0][:, ::-1])
            flips += 1
    assert 0 < flips < 10


def test_color_jitter_changes_image_not_mask(marked):
    pytest.importorskip("tensorflow")
    arr = P.load_arrays(marked[:1], size=32)
    aug = P.Augment(flip=False, scale_crop=False, rotate=False, color=True)
    ((x, y),) = list(P.train_dataset(arr, 1, seed=0, augment=aug).take(1).as_numpy_iterator())
    assert not np.allclose(x[0], arr.images[0] / 255.0, atol=1e-3)
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y[0, ..., 0], arr.masks[0])


def test_blur_softens_edges_and_keeps_the_mean_and_hue_turns_colours():
    tf = pytest.importorskip("tensorflow")
    img = np.zeros((32, 32, 3), np.float32)
    img[:, 16:] = 1.0
    soft = P._blur(tf.constant(img), tf.constant(1.5), 1.5, 32).numpy()
    assert 0.05 < soft[5, 15, 0] < 0.5 < soft[5, 16, 0] < 0.95  # the step spread over its neighbours
    assert soft.mean() == pytest.approx(img.mean(), abs=1e-5)
    np.testing.assert_allclose(P._blur(tf.constant(img), tf.constant(0.0), 1.5, 32).numpy(), img, atol=1e-6)
    wide = P._blur(tf.constant(img), tf.constant(4.0), 4.0, 32).numpy()  # the kernel grows with the sigma
    assert wide[5, 11, 0] > soft[5, 11, 0] + 0.01 and wide.mean() == pytest.approx(img.mean(), abs=1e-5)
    assert (
        P._blur(tf.constant(img), tf.constant(50.0), 50.0, 32).shape == img.shape
    )  # at most the image's side
    red = np.zeros((8, 8, 3), np.float32)
    red[..., 0] = 0.9
    plain = P.Augment(flip=False, scale_crop=False, rotate=False, brightness=0, contrast=0, saturation=0)
    mask = tf.zeros((8, 8, 1))
    seeds = [tf.constant([s, 1], tf.int64) for s in range(8)]
    same = [P.make_augment_fn(plain, (8, 8))(tf.constant(red), mask, s)[0].numpy() for s in seeds]
    assert all(np.allclose(x, red) for x in same)
    # in the augmentation, with the rest of it (a rotated photo has no static shape there)
    blurred = dataclasses.replace(P.Augment(flip=False, scale_crop=False), blur=3.0)
    step = np.zeros((32, 32, 3), np.float32)
    step[:, 16:] = 1.0
    out = P.make_augment_fn(blurred, (32, 32))(tf.constant(step), tf.zeros((32, 32, 1)), seeds[1])[0].numpy()
    assert out.shape == (32, 32, 3) and 0.0 < out[16, 15].mean() < 1.0
    hued = dataclasses.replace(plain, hue=0.1)
    turned = [P.make_augment_fn(hued, (8, 8))(tf.constant(red), mask, s)[0].numpy() for s in seeds]
    assert max(float(np.abs(x - red).max()) for x in turned) > 0.05  # some red turned orange or pink
    assert all(np.allclose(x.max(-1), 0.9, atol=1e-3) for x in turned)  # the hue, not the value


def test_validation_copies_by_bytes_pixels_and_look(tmp_path, marked):
    train = P.load_arrays(marked, size=32)
    img = cv2.cvtColor(cv2.imread(str(marked[2].path)), cv2.COLOR_BGR2RGB)
    same_bytes = tmp_path / "v"
    same_bytes.mkdir()
    (same_bytes / "copy.png").write_bytes(marked[1].path.read_bytes())
    # same pixels, different file bytes (other PNG compression level)
    cv2.imwrite(
        str(same_bytes / "recoded.png"),
        cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_PNG_COMPRESSION, 0],
    )
    assert (same_bytes / "recoded.png").read_bytes() != marked[2].path.read_bytes()
    write(same_bytes, "other.png", np.full((48, 64, 3), 90, np.uint8))
    # resized (and re-encoded): a copy too, by the rule viaseg check reports leaks by
    small = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(
        str(same_bytes / "resized.jpg"),
        cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 95],
    )
    names = ("copy.png", "recoded.png", "other.png", "resized.jpg")
    val_entries = [entry(same_bytes, n) for n in names]
    assert len(train) == len(marked)
    dup = copies_of(marked, val_entries)
    assert [names[i] for i in dup] == ["copy.png", "recoded.png", "resized.jpg"]


def test_unreadable_and_empty_images(tmp_path, marked):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    name = write(tmp_path, "neg.png", np.zeros((20, 20, 3), np.uint8))
    entries = marked[:2] + [
        entry(tmp_path, "broken.jpg", [rect_region(0, 0, 4, 4)]),
        entry(tmp_path, "missing.png"),
        entry(tmp_path, name),
    ]
    warned = []
    arr = P.load_arrays(entries, size=32, on_warning=warned.append)
    assert arr.names == [marked[0].filename, marked[1].filename, "neg.png"]
    assert arr.masks[2].sum() == 0  # a negative: empty mask
    assert any("broken.jpg" in w for w in warned) and any(
        "missing.png" in w and "no such file" in w for w in warned
    )
    arr2 = P.load_arrays(entries, size=32, include_empty=False, on_warning=warned.append)
    assert "neg.png" not in arr2.names and len(arr2) == 2


def test_disk_cache_skips_decoding(tmp_path, marked, monkeypatch):
    cache = tmp_path / "cache"
    first = P.load_arrays(marked, size=32, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 4
    import viaseg.core.imaging.imageio as imageio

    def boom(*a, **k):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(imageio, "read_image", boom)
    second = P.load_arrays(marked, size=32, cache_dir=cache)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.masks, second.masks)
    assert first.pixel_hashes == second.pixel_hashes


def test_resize_modes(marked):
    near = P.load_arrays(marked[:1], size=32, resize="nearest").images[0]
    area = P.load_arrays(marked[:1], size=32, resize="area").images[0]
    assert set(np.unique(near)) <= {20, 255}  # nearest never invents values
    assert len(np.unique(area)) > 2  # area averages at the rectangle border
    with pytest.raises(ValueError, match="resize"):
        P.load_arrays(marked[:1], size=32, resize="cubic")


def test_seeded_split():
    items = list(range(10))
    a = P.split_entries(items, 0.2, seed=4)
    assert a == P.split_entries(items, 0.2, seed=4)
    assert len(a[1]) == 2 and sorted(a[0] + a[1]) == items
    assert P.split_entries(items, 0.2, seed=5) != a
    assert P.split_entries([1], 0.2) == ([1], [])


def _two_sources(n0: int, n1: int) -> P.Arrays:
    imgs = np.concatenate([np.zeros((n0, 8, 8, 3), np.uint8), np.full((n1, 8, 8, 3), 255, np.uint8)])
    masks = np.zeros((n0 + n1, 8, 8), np.uint8)
    names = [f"i{i}" for i in range(n0 + n1)]
    return P.Arrays(imgs, masks, names, names, names, [], [0] * n0 + [1] * n1)


def _share_of_source0(ds, batches: int) -> float:
    seen = np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in ds.take(batches)])
    return float((seen == 0).mean())


def test_balanced_sampling_draws_each_source_equally_often():
    pytest.importorskip("tensorflow")
    arrays = _two_sources(3, 30)
    assert P.source_weights(arrays, True) == {0: 0.5, 1: 0.5}
    assert P.source_weights(arrays, False) == pytest.approx({0: 3 / 33, 1: 30 / 33})
    balanced = P.train_dataset(arrays, 8, seed=1, augment=P.Augment.off(), balance=True)
    plain = P.train_dataset(arrays, 8, seed=1, augment=P.Augment.off(), balance=False)
    assert _share_of_source0(balanced, 60) == pytest.approx(0.5, abs=0.07)
    assert _share_of_source0(plain, 60) == pytest.approx(3 / 33, abs=0.04)
    # seeded: the same seed draws the same sequence
    again = P.train_dataset(arrays, 8, seed=1, augment=P.Augment.off(), balance=True)
    a = np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in balanced.take(5)])
    b = np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in again.take(5)])
    np.testing.assert_array_equal(a, b)


def test_sources_follow_rows_through_subset_and_concat():
    a = _two_sources(2, 3)
    assert a.subset([1, 3]).sources == [0, 1]
    both = P.Arrays.concat([a.subset([0]), a.subset([4])], tag_sources=True)
    assert both.sources == [0, 1] and both.names == ["i0", "i4"]
    kept = P.Arrays.concat([a.subset([0]), a.subset([4])])
    assert kept.sources == [0, 1]  # their own sources


def test_crops_are_windows_of_the_image_at_its_own_scale():
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    masks = (rng.random((2, 32, 32)) > 0.5).astype(np.uint8)
    arrays = P.Arrays(imgs, masks, ["a", "b"], ["a", "b"], ["a", "b"])
    ds = P.train_dataset(arrays, 4, seed=2, augment=P.Augment.off(), crop=16)
    x, y = next(iter(ds))
    assert x.shape == (4, 16, 16, 3) and y.shape == (4, 16, 16, 1)
    offsets = set()
    for img, m in zip(x.numpy(), y.numpy(), strict=True):
        found = [
            (k, i, j)
            for k in range(2)
            for i in range(17)
            for j in range(17)
            if np.array_equal(np.rint(img * 255).astype(np.uint8), imgs[k, i : i + 16, j : j + 16])
        ]
        assert len(found) == 1  # an exact window: same pixels, same scale
        k, i, j = found[0]
        np.testing.assert_array_equal(m[..., 0], masks[k, i : i + 16, j : j + 16])  # the mask's same window
        offsets.add((i, j))
    assert len(offsets) > 1  # random windows
    with pytest.raises(ValueError, match="crop"):
        P.train_dataset(arrays, 4, crop=48)


def test_scale_over_one_zooms_out_and_the_cli_sets_the_range():
    tf = pytest.importorskip("tensorflow")
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config

    image = np.ones((64, 64, 3), np.float32)
    mask = np.ones((64, 64, 1), np.float32)
    seed = tf.constant([1, 2], tf.int64)
    out = P.Augment(flip=False, rotate=False, color=False, min_scale=1.5, max_scale=1.5)
    img, m = P.make_augment_fn(out, (64, 64))(tf.constant(image), tf.constant(mask), seed)
    # the whole photo now covers (1/1.5)^2 of the frame, black (and no damage) around it
    assert abs(float(tf.reduce_mean(m)) - 1 / 1.5**2) < 0.03
    np.testing.assert_array_equal(img.numpy()[..., 0] > 0.5, m.numpy()[..., 0] > 0.5)
    same = P.Augment(flip=False, rotate=False, color=False, min_scale=1.0, max_scale=1.0)
    img, m = P.make_augment_fn(same, (64, 64))(tf.constant(image), tf.constant(mask), seed)
    assert float(tf.reduce_mean(m)) == 1.0

    parse = build_parser().parse_args
    cfg = _config(parse(["train", "ds", "--out", "r", "--scale", "0.4,1.4"]))
    assert (cfg.augment.min_scale, cfg.augment.max_scale) == (0.4, 1.4)
    default = _config(parse(["crossval", "ds", "--out", "r"]))
    assert (default.augment.min_scale, default.augment.max_scale) == (0.6, 1.0)
    for bad in ("1.2,0.8", "0.05,1", "x"):
        with pytest.raises(SystemExit):
            parse(["train", "ds", "--out", "r", "--scale", bad])


def test_colour_jitter_and_blur_options_reach_the_config():
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config

    parse = build_parser().parse_args
    default = _config(parse(["train", "ds", "--out", "r"])).augment
    assert (default.brightness, default.contrast, default.saturation, default.hue, default.blur) == (
        0.15,
        0.2,
        0.2,
        0.0,
        0.0,
    )
    cfg = _config(
        parse(["crossval", "ds", "--out", "r", "--colour-jitter", "0.25,0.3,0.3,0.05", "--blur", "1.5"])
    )
    a = cfg.augment
    assert (a.brightness, a.contrast, a.saturation, a.hue, a.blur) == (0.25, 0.3, 0.3, 0.05, 1.5)
    assert a.scale_crop and a.flip  # the rest as the preset has it
    a3 = _config(parse(["train", "ds", "--out", "r", "--colour-jitter", "0.1,0.1,0.1"])).augment
    assert (a3.brightness, a3.hue) == (0.1, 0.0)
    assert not _config(parse(["train", "ds", "--out", "r", "--no-augment", "--blur", "1"])).augment.any
    for bad in ("0.1,0.1", "0.1,0.1,0.1,0.7", "2,0,0", "x,y,z"):
        with pytest.raises(SystemExit):
            parse(["train", "ds", "--out", "r", "--colour-jitter", bad])


def test_sharp_crops_cut_real_pixels_and_reduce_them_to_the_training_size():
    pytest.importorskip("tensorflow")
    from viaseg.core.cli import build_parser
    from viaseg.core.cli.train_cmd import _config
    from viaseg.core.ml.presets import TrainConfig

    # a fine pattern (1-px stripes) on the left, a white damage rectangle on the right, at 2x the training size
    n, side, out = 4, 128, 64
    imgs = np.zeros((n, side, side, 3), np.uint8)
    imgs[:, :, :40, 0] = (np.arange(40) % 2 * 255).astype(np.uint8)[None, None, :]
    masks = np.zeros((n, side, side), np.uint8)
    imgs[:, 30:90, 70:110] = 255
    masks[:, 30:90, 70:110] = 1
    arrays = P.Arrays(imgs, masks, list("abcd"), list("abcd"), list("abcd"))
    crops = P.Augment(flip=False, rotate=False, color=False, min_scale=0.5, max_scale=0.5)
    x, y = next(iter(P.train_dataset(arrays, n, seed=3, augment=crops, out_size=out)))
    assert x.shape == (n, out, out, 3) and y.shape == (n, out, out, 1)
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}
    # a half-side crop of the 128-px photo is 64 px: taken at its own pixels, stripes and all
    found = 0
    for img, m in zip(x.numpy(), y.numpy(), strict=True):
        px = np.rint(img * 255).astype(np.uint8)
        for i in range(side - out + 1):
            for j in range(side - out + 1):
                if np.array_equal(px, imgs[0, i : i + out, j : j + out]):
                    np.testing.assert_array_equal(m[..., 0], masks[0, i : i + out, j : j + out])
                    found += 1
                    break
            else:
                continue
            break
    assert found == n
    # the whole photo at the training size: area-reduced (the stripes average out to grey, no aliasing)
    whole = P.Augment(flip=False, rotate=False, color=False, min_scale=1.0, max_scale=1.0)
    x, y = next(iter(P.train_dataset(arrays, n, seed=3, augment=whole, out_size=out)))
    stripes = x.numpy()[0, :, 2:18, 0]
    assert abs(float(stripes.mean()) - 0.5) < 0.05 and float(stripes.std()) < 0.1
    assert abs(float(y.numpy()[0].mean()) - masks[0].mean()) < 0.02
    # training-size copies (a run without validation photos scores on them)
    small = arrays.resized(out)
    assert small.images.shape == (n, out, out, 3) and small.masks.shape == (n, out, out)
    assert small.names == arrays.names and arrays.resized(side) is arrays
    assert abs(float(small.masks.mean()) - float(masks.mean())) < 0.01
    # only scale crops that cut in, no crop windows
    with pytest.raises(ValueError, match="cut in"):
        P.train_dataset(arrays, n, augment=P.Augment(max_scale=1.2), out_size=out)
    with pytest.raises(ValueError, match="cut in"):
        P.train_dataset(arrays, n, augment=crops, out_size=out, crop=32)

    # the config's source size, and the CLI's switch
    assert TrainConfig(size=256).source_size == 256  # off: as before
    assert TrainConfig(size=256, sharp_crops=True).source_size == 427  # 256 / 0.6
    low = P.Augment(min_scale=0.3)
    assert TrainConfig(size=256, sharp_crops=True, augment=low).source_size == 512  # at most twice
    assert TrainConfig(size=256, sharp_crops=True, crop=128).source_size == 256
    assert TrainConfig(size=256, sharp_crops=True, augment=P.Augment(max_scale=1.4)).source_size == 256
    assert TrainConfig(size=256, sharp_crops=True, augment=P.Augment.off()).source_size == 256
    parse = build_parser().parse_args
    assert _config(parse(["train", "ds", "--out", "r", "--sharp-crops"])).sharp_crops is True
    assert _config(parse(["crossval", "ds", "--out", "r", "--no-sharp-crops"])).sharp_crops is False
