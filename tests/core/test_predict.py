"""Predictor: full-resolution probabilities, re-thresholding without the network, files, batches, tiles."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from viaseg.core.base.errors import ImageReadError, ModelError  # noqa: E402
from viaseg.core.ml.modelio import save_model  # noqa: E402
from viaseg.core.ml.predict import Prediction, Predictor, _starts, _tile_weight  # noqa: E402

SIZE = 32


def brightness_model(size: int = SIZE) -> keras.Model:
    """prob = sigmoid(10 * mean(rgb01) - 5): white -> 0.99, black -> 0.007, mid-gray -> 0.5."""
    inp = keras.Input((size, size, 3))
    out = keras.layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.Constant(10.0 / 3.0),
        bias_initializer=keras.initializers.Constant(-5.0),
    )(inp)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(brightness_model(), {"input_size": SIZE, "threshold": 0.5, "resize": "area"})


def half_white(w: int = 400, h: int = 300) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = 255
    return img


def test_probabilities_have_full_image_size_and_follow_the_image(predictor):
    pred = predictor.predict(half_white(400, 300))
    assert isinstance(pred, Prediction) and isinstance(pred, np.ndarray)
    assert pred.shape == (300, 400) and pred.dtype == np.float32
    assert pred[:, :180].min() > 0.9 and pred[:, 220:].max() < 0.1
    mask = pred.mask()
    assert mask.dtype == bool and mask.shape == (300, 400)
    # the boundary is where the image's is, to within one network pixel (400/32 = 12.5 px)
    cols = np.flatnonzero(~mask[150])
    assert abs(cols[0] - 200) <= 13


def test_probabilities_are_resized_bilinearly_not_nearest(predictor):
    ramp = np.tile(np.linspace(0, 255, SIZE).astype(np.uint8)[None, :, None], (SIZE, 1, 3))
    big = cv2.resize(ramp, (SIZE * 10, SIZE * 10), interpolation=cv2.INTER_NEAREST)
    pred = predictor.predict(big)
    row = pred[SIZE * 5]
    # a nearest upscale would give 32 plateaus; bilinear interpolates between network pixels
    assert len(np.unique(np.round(row, 5))) > 3 * SIZE
    assert np.all(np.diff(row) >= -1e-6)  # monotone like the ramp


def test_threshold_change_needs_no_forward_pass(predictor):
    gray = np.tile(np.linspace(0, 255, 256).astype(np.uint8)[None, :, None], (64, 1, 3))
    before = predictor.forward_calls
    pred = predictor.predict(gray)
    assert predictor.forward_calls == before + 1
    low, high = pred.mask(0.2), pred.mask(0.8)
    default = pred.mask()
    assert predictor.forward_calls == before + 1
    assert low.sum() > default.sum() > high.sum() > 0
    assert np.array_equal(pred.mask_u8(0.2) == 255, low)
    assert set(np.unique(pred.mask_u8())) == {0, 255}


def test_prediction_behaves_as_a_plain_array_where_it_is_not_a_map():
    p = Prediction(np.linspace(0, 1, 12).reshape(3, 4), threshold=0.3, source="x.jpg")
    assert type(p > 0.5) is np.ndarray and type(p.max()) is np.float32
    assert type(p.mask()) is np.ndarray and p.mask().sum() == np.count_nonzero(p.probabilities > 0.3)
    crop = p[1:, 1:]
    assert isinstance(crop, Prediction) and crop.threshold == 0.3 and crop.source == "x.jpg"
    import pickle

    back = pickle.loads(pickle.dumps(p))
    assert np.array_equal(back, p) and back.threshold == 0.3 and back.source == "x.jpg"


def test_prediction_from_file_equals_size_and_reports_source(predictor, tmp_path):
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(half_white(1200, 900), cv2.COLOR_RGB2BGR))
    pred = predictor.predict(path)
    assert pred.shape == (900, 1200)
    assert pred.source == str(path)
    assert pred[:, :500].mean() > 0.9 and pred[:, 700:].mean() < 0.1


def shift_model(size: int = SIZE) -> keras.Model:
    """prob(x) = sigmoid(10 * mean(rgb01 at x - 1) - 5): a network that is not mirror-symmetric."""
    inp = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(1, (1, 3), padding="same", activation="sigmoid")
    model = keras.Model(inp, conv(inp))
    kernel = np.zeros((1, 3, 3, 1), np.float32)
    kernel[0, 0, :, 0] = 10.0 / 3.0  # 'same' padding: kernel column 0 looks at x - 1
    conv.set_weights([kernel, np.array([-5.0], np.float32)])
    return model


def test_tta_averages_the_image_and_its_mirror_in_one_network_call():
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[:, 10] = 255  # one white column
    p = Predictor(shift_model(), {"input_size": SIZE, "resize": "area"})
    assert p.tta is False
    plain = p.predict(img)
    assert plain[5, 11] > 0.99 and plain[5, 9] < 0.01  # the network sees the column one pixel to its left
    p.tta = True
    calls = p.forward_calls
    avg = p.predict(img)
    assert p.forward_calls == calls + 1  # image and mirror go through the network as one batch
    # mirrored, the column is seen at x - 1 of the mirror = x + 1 here: both neighbours get half of each
    assert avg[5, 11] == pytest.approx(0.5, abs=0.01) and avg[5, 9] == pytest.approx(0.5, abs=0.01)
    assert avg[5, 20] < 0.01
    # TTA makes the prediction mirror-equivariant
    np.testing.assert_allclose(p.predict(img[:, ::-1])[:, ::-1], avg, atol=1e-6)
    # the model's metadata switches it on
    assert Predictor(shift_model(), {"input_size": SIZE, "tta": True}).tta is True


def test_the_mirror_half_runs_as_its_own_branch_with_the_same_probabilities():
    """With tta the batch's two halves (images, then their mirror images) run as two branches of one graph
    (so TensorFlow's inter-op threads take them at once): the same numbers as one call on the whole batch, for
    a single network and for an ensemble of two."""
    from viaseg.core.ml.ensemble import ENSEMBLE_KEY, combine

    rng = np.random.default_rng(0)
    x = rng.random((6, SIZE, SIZE, 3), dtype=np.float32)  # 3 images and 3 "mirrors"
    for model, meta in (
        (shift_model(), {}),
        (combine([shift_model(), brightness_model()]), {ENSEMBLE_KEY: {"members": 2}}),
    ):
        p = Predictor(model, {"input_size": SIZE, "tta": True, **meta})
        whole = np.asarray(p._function((SIZE, SIZE), halves=False)(x))
        split = np.asarray(p._function((SIZE, SIZE), halves=True)(x))
        assert whole.shape == split.shape == (6, SIZE, SIZE, 1)
        np.testing.assert_allclose(split, whole, atol=1e-6)
        assert (((SIZE, SIZE), True, False) in p._fns) and (((SIZE, SIZE), False, False) in p._fns)


def test_the_app_runs_an_ensembles_members_one_view_each():
    """``interactive``: an ensemble of two runs one member on the photo and the other on its mirror image (the
    compute of one network with the mirror average), while batch prediction averages both members on both."""
    from viaseg.core.ml.ensemble import ENSEMBLE_KEY, combine
    from viaseg.core.ml.predict import interactive

    img = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    meta = {"input_size": SIZE, "resize": "area", "tta": True, ENSEMBLE_KEY: {"members": 2}}
    a, b = shift_model(), brightness_model()
    batch = Predictor(combine([a, b]), meta)
    app = interactive(Predictor(combine([a, b]), meta))
    assert app.members_per_view and not batch.members_per_view
    x = img.astype(np.float32)[None] / 255.0

    def net(m, v):
        return np.asarray(m(v, training=False))[0, ..., 0]

    want_app = 0.5 * (net(a, x) + net(b, x[:, :, ::-1])[:, ::-1])
    want_batch = 0.25 * (
        net(a, x) + net(b, x) + net(a, x[:, :, ::-1])[:, ::-1] + net(b, x[:, :, ::-1])[:, ::-1]
    )
    np.testing.assert_allclose(app.predict(img), want_app, atol=1e-5)
    np.testing.assert_allclose(batch.predict(img), want_batch, atol=1e-5)
    assert np.abs(want_app - want_batch).max() > 0.05  # the two members differ: the test can tell them apart
    # a single network is unaffected: the photo and its mirror both go through it
    one = interactive(Predictor(shift_model(), {"input_size": SIZE, "resize": "area", "tta": True}))
    np.testing.assert_allclose(one.predict(img), Predictor(shift_model(), one.meta).predict(img), atol=1e-6)


def test_predict_inputs_scores_input_size_arrays_as_predict_does():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    p = Predictor(shift_model(), {"input_size": SIZE, "resize": "area"})
    for tta in (False, True):
        p.tta = tta
        calls = p.forward_calls
        probs = p.predict_inputs(imgs, batch_size=2)
        assert probs.shape == (5, SIZE, SIZE) and probs.dtype == np.float32
        assert p.forward_calls == calls + 3  # batches of 2, 2, 1
        for img, prob in zip(imgs, probs, strict=True):
            np.testing.assert_allclose(prob, p.predict(img), atol=1e-5)
    assert p.predict_inputs(imgs[:0]).shape == (0, SIZE, SIZE)
    with pytest.raises(ValueError, match="32 x 32 x 3"):
        p.predict_inputs(np.zeros((1, 16, 16, 3), np.uint8))


def test_tta_scales_average_the_network_on_the_resized_input():
    from viaseg.core.ml.unet import build_unet_xception

    rng = np.random.default_rng(1)
    model = build_unet_xception(64, base_width=4)
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    meta = {"input_size": 64, "resize": "area", "tta": True}
    one = Predictor(model, meta)
    assert one.scales == (1.0,) and one.scale_sizes() == [(64, 64)]
    p = Predictor(model, {**meta, "tta_scales": [0.5, 1.0, 1.5]})
    assert p.scale_sizes() == [(64, 64), (32, 32), (96, 96)]  # multiples of 32, the model's own first
    # exactly the sizes asked for: without 1 the model's own size is not run
    assert Predictor(model, {**meta, "tta_scales": [1.5]}).scale_sizes() == [(96, 96)]
    calls = p.forward_calls
    got = p.predict(img)
    assert p.forward_calls == calls + 1 and got.shape == (50, 70)
    # what it must equal: the mirror-averaged network at each size (the same weights), resized back, averaged
    x = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    maps = []
    for size in (64, 32, 96):
        net = build_unet_xception(size, base_width=4)
        net.set_weights(model.get_weights())
        xs = cv2.resize(x, (size, size), interpolation=cv2.INTER_LINEAR) if size != 64 else x
        batch = np.stack([xs, xs[:, ::-1]])
        out = np.asarray(net(batch, training=False))[..., 0]
        prob = 0.5 * (out[0] + out[1][:, ::-1])
        maps.append(cv2.resize(prob, (64, 64), interpolation=cv2.INTER_LINEAR) if size != 64 else prob)
    want = cv2.resize(np.mean(maps, axis=0), (70, 50), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(got - one.predict(img)).max() > 1e-4  # the other scales changed the answer
    x_u8 = (x * 255).round().astype(np.uint8)  # the resized image itself: predict_inputs skips the resize
    np.testing.assert_allclose(p.predict_inputs(x_u8[None])[0], np.mean(maps, axis=0), atol=2e-5)
    for bad in ([0.1], "big", []):
        with pytest.raises(ModelError, match="tta_scales"):
            Predictor(model, {**meta, "tta_scales": bad})


def test_interactive_runs_once_at_the_mean_of_the_averaged_sizes():
    from viaseg.core.ml.predict import interactive
    from viaseg.core.ml.unet import build_unet_xception

    rng = np.random.default_rng(2)
    model = build_unet_xception(64, base_width=4)
    img = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    p = interactive(
        Predictor(model, {"input_size": 64, "resize": "area", "tta": True, "tta_scales": [1.0, 2.0]})
    )
    assert p.scales == (1.5,) and p.scale_sizes() == [(96, 96)] and p.tta
    got = p.predict(img)
    # one pass of the (mirror-averaged) network at 96 px, resized to the model's 64 and then to the photo
    net = build_unet_xception(96, base_width=4)
    net.set_weights(model.get_weights())
    x = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = cv2.resize(x, (96, 96), interpolation=cv2.INTER_LINEAR)
    out = np.asarray(net(np.stack([x, x[:, ::-1]]), training=False))[..., 0]
    prob = cv2.resize(0.5 * (out[0] + out[1][:, ::-1]), (64, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(got, cv2.resize(prob, (70, 50), interpolation=cv2.INTER_LINEAR), atol=2e-5)
    plain = interactive(Predictor(model, {"input_size": 64, "resize": "area", "tta": True}))
    assert plain.scales == (1.0,) and plain.scale_sizes() == [(64, 64)]


def test_reduced_decode_keeps_both_sides_at_least_the_input(predictor):
    # a 2000x100 strip: decoding at 1/8 would leave 12 px of height for a 32 px input
    side = predictor._max_side((2000, 100))
    assert side >= 2000 * SIZE / 100
    assert predictor._max_side((20, 10)) == 20
    # otherwise the same request as the training pipeline (2 x input size), so both see the same pixels
    assert predictor._max_side((4000, 3000)) == 2 * SIZE
    nearest = Predictor(predictor.model, {"input_size": SIZE, "resize": "nearest"})
    assert nearest._max_side((4000, 3000)) == 4000  # 'nearest' models were trained on full decodes


def test_unreadable_file_raises_image_read_error(predictor, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        predictor.predict(bad)


def test_input_scale_metadata_is_honoured(predictor):
    img = np.full((40, 40, 3), 128, np.uint8)  # 0.502 after /255: prob ~0.5; raw 128 would saturate
    raw = Predictor(predictor.model, {"input_size": SIZE, "input_scale": "rgb"}).predict(img)
    unit = Predictor(predictor.model, {"input_size": SIZE, "input_scale": "rgb/255"}).predict(img)
    assert abs(float(unit.mean()) - 0.5) < 0.05 and raw.min() > 0.99
    with pytest.raises(ModelError, match="input_scale"):
        Predictor(predictor.model, {"input_size": SIZE, "input_scale": "weird"})


def test_bad_array_is_refused(predictor):
    with pytest.raises(ValueError, match="HxW"):
        predictor.predict(np.zeros((5, 5, 7), np.uint8))


def test_predict_many_keeps_order_and_reports_bad_files(predictor, tmp_path):
    paths = []
    for i, (w, h) in enumerate([(120, 80), (64, 200), (33, 33)]):
        p = tmp_path / f"im{i}.png"
        img = np.full((h, w, 3), 255 if i % 2 == 0 else 0, np.uint8)
        cv2.imwrite(str(p), img)
        paths.append(p)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    paths.insert(1, bad)
    before = predictor.forward_calls
    items = list(predictor.predict_many(paths, batch_size=2))
    assert [it.path for it in items] == paths
    assert predictor.forward_calls == before + 2  # two batches
    assert not items[1].ok and "bad.jpg" in str(items[1].error) and "empty" in str(items[1].error)
    shapes = [it.prediction.shape for it in items if it.ok]
    assert shapes == [(80, 120), (200, 64), (33, 33)]
    assert items[0].prediction.mean() > 0.9 and items[2].prediction.mean() < 0.1
    # same numbers as one-at-a-time
    assert np.allclose(items[3].prediction, predictor.predict(paths[3]), atol=1e-5)


def test_tiled_prediction_covers_the_image(predictor, tmp_path):
    img = half_white(300, 130)
    pred = predictor.predict_tiled(img, downscale=2.0, overlap=0.25)
    assert pred.shape == (130, 300)
    assert pred[:, :130].min() > 0.9 and pred[:, 170:].max() < 0.1
    # smaller than one tile after downscaling: padded, still full size
    small = predictor.predict(half_white(40, 20), tile_downscale=4.0)
    assert small.shape == (20, 40)
    assert small[:, :15].mean() > 0.9


def test_tiles_cover_every_pixel_and_blend_weights_are_positive():
    for total in (32, 33, 100, 257):
        starts = _starts(total, 32, 0.25)
        covered = np.zeros(max(total, 32), bool)
        for s in starts:
            covered[s : s + 32] = True
        assert covered[:total].all() and starts[-1] + 32 >= total
    w = _tile_weight(32, 32, 0.25)
    assert w.min() > 0 and w[16, 16] == 1.0 and w[0, 0] < w[16, 16]


def test_concurrent_calls_are_safe(predictor):
    imgs = [np.full((50 + i, 70, 3), 40 * i, np.uint8) for i in range(4)]
    expected = [predictor.predict(im) for im in imgs]
    results: dict[int, np.ndarray] = {}

    def work(i):
        results[i] = predictor.predict(imgs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert np.allclose(results[i], expected[i])


def test_load_saved_unet_once_and_predict(tmp_path):
    from viaseg.core.ml.unet import build_unet_xception

    model = build_unet_xception(SIZE, base_width=4)
    path = save_model(
        model, tmp_path / "m.keras", {"input_size": SIZE, "threshold": 0.3, "class_names": ["damage"]}
    )
    p = Predictor.load(path)
    assert Predictor.load(path) is p  # cached: loads once
    assert p.threshold == 0.3 and p.input_hw == (SIZE, SIZE) and p.foreground_name == "damage"
    pred = p.predict(np.random.default_rng(0).integers(0, 255, (45, 61, 3), dtype=np.uint8))
    assert pred.shape == (45, 61) and 0.0 <= pred.min() and pred.max() <= 1.0
    assert pred.threshold == 0.3


def test_load_cache_keeps_only_recent_models(tmp_path):
    paths = [save_model(brightness_model(), tmp_path / f"m{i}.keras", {"input_size": SIZE}) for i in range(3)]
    first = Predictor.load(paths[0])
    Predictor.load(paths[1])
    Predictor.load(paths[2])
    assert len(Predictor._cache) <= Predictor.CACHE_SIZE
    assert Predictor.load(paths[0]) is not first  # evicted, loaded again
    assert Predictor.load(paths[0], cache=False) is not Predictor.load(paths[0])


def test_metadata_that_contradicts_the_network_is_a_model_error():
    with pytest.raises(ModelError, match="metadata says input 64x64x3 but the network takes 32x32x3"):
        Predictor(brightness_model(), {"input_size": 64})


def test_a_damaged_models_metadata_is_a_model_error_naming_it(tmp_path):
    """A threshold of "abc" or a metadata list ended in tracebacks; a threshold of 5 was taken, so every mask
    came out empty."""
    import zipfile

    for bad in ({"threshold": 5}, {"threshold": "abc"}, {"threshold": None}):
        with pytest.raises(ModelError, match="threshold .* is not between 0 and 1"):
            Predictor(brightness_model(), bad, path="m.keras")
    listed = tmp_path / "listed.keras"
    with zipfile.ZipFile(listed, "w") as zf:
        zf.writestr("viaseg_meta.json", "[1, 2]")
    with pytest.raises(ModelError, match="listed.keras: its viaseg_meta.json is not a JSON object"):
        Predictor.load(listed)


def test_missing_or_bad_model_file_gives_model_error(tmp_path):
    with pytest.raises(ModelError, match="nope.keras: no such model file"):
        Predictor.load(tmp_path / "nope.keras")
    junk = tmp_path / "junk.keras"
    junk.write_text("hello")
    with pytest.raises(ModelError, match="junk.keras"):
        Predictor.load(junk)


def test_briefly_trained_model_predicts_a_trivial_pattern(tmp_path):
    """A small conv net trained for a few hundred steps on 'bright square on noise' finds the square in a
    bigger photo at full resolution."""
    rng = np.random.default_rng(1)

    def sample(h, w):
        img = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.float32)
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        hh, ww = rng.integers(h // 5, h // 2), rng.integers(w // 5, w // 2)
        img[y : y + hh, x : x + ww] = rng.integers(170, 255, (hh, ww, 3), dtype=np.uint8)
        mask[y : y + hh, x : x + ww] = 1
        return img, mask

    pairs = [sample(SIZE, SIZE) for _ in range(256)]
    x = np.stack([p[0] for p in pairs]).astype(np.float32) / 255.0
    y = np.stack([p[1] for p in pairs])[..., None]
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    out = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(h)
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    path = save_model(model, tmp_path / "trained.keras", {"input_size": SIZE})
    p = Predictor.load(Path(path))
    img, truth = sample(240, 320)
    pred = p.predict(img)
    assert pred.shape == (240, 320)
    m = pred.mask()
    dice = 2 * (m & (truth > 0)).sum() / (m.sum() + truth.sum())
    assert dice > 0.8


# ------------------------------------------------------------------------------------------ predict CLI


@pytest.fixture
def cli_inputs(tmp_path):
    """A brightness model file and a folder of two photos with white squares (+ one loose image)."""
    model = save_model(
        brightness_model(), tmp_path / "bright.keras", {"input_size": SIZE, "class_names": ["dent"]}
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, (w, h) in {"a.jpg": (320, 240), "b.png": (150, 200)}.items():
        img = np.zeros((h, w, 3), np.uint8)
        img[h // 4 : h // 2, w // 4 : w // 2] = 255
        cv2.imwrite(str(photos / name), img)
    loose = tmp_path / "loose.png"
    cv2.imwrite(str(loose), half_white(90, 60)[:, :, ::-1])
    return model, photos, loose


def test_predict_cli_writes_full_size_masks_overlays_and_a_via_file(cli_inputs, tmp_path, capsys):
    from viaseg.core.annotation.formats.via_io import load_via
    from viaseg.core.cli import main

    model, photos, loose = cli_inputs
    out = tmp_path / "out"
    assert main(["predict", str(model), str(photos), str(loose), "--out", str(out)]) == 0
    assert "3 image(s) predicted" in capsys.readouterr().out
    for stem, (w, h) in {"a": (320, 240), "b": (150, 200), "loose": (90, 60)}.items():
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (h, w) and set(np.unique(mask)) == {0, 255}
        overlay = cv2.imread(str(out / f"{stem}_overlay.jpg"))
        assert overlay.shape == (h, w, 3)
    a_mask = cv2.imread(str(out / "a_mask.png"), cv2.IMREAD_UNCHANGED) > 0
    assert a_mask[60:120, 80:160].mean() > 0.9 and a_mask[150:, 200:].sum() == 0
    project = load_via(out / "via_region_data.json")
    assert len(project.images) == 3
    by_name = {Path(e.filename).name: e for e in project.images}
    a = by_name["a.jpg"]
    assert a.filename == "../photos/a.jpg"  # relative to the output folder, nothing copied
    assert a.path.resolve() == (photos / "a.jpg").resolve()
    assert a.size == (photos / "a.jpg").stat().st_size and a.key == f"{a.filename}{a.size}"
    assert len(a.regions) == 1 and a.regions[0].kind == "polygon"
    assert a.regions[0].attributes == {"class": "dent"}
    xs, ys = a.regions[0].shape["all_points_x"], a.regions[0].shape["all_points_y"]
    assert 70 <= min(xs) <= 90 and 150 <= max(xs) <= 170 and 50 <= min(ys) <= 70 and 110 <= max(ys) <= 130
    assert not (out / "photos").exists() and not list(out.glob("*.jpg.*"))
    # `viaseg check` of the output names nothing it wrote as an unlisted photo (it named every mask and overlay);
    # a photo put there by hand still is
    from viaseg.core.annotation.dataset import load_dataset

    assert next(iter(load_dataset(out).splits.values())).unlisted_images() == []
    cv2.imwrite(str(out / "stray.png"), np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in next(iter(load_dataset(out).splits.values())).unlisted_images()] == ["stray.png"]


def test_predict_cli_threshold_and_tiles(cli_inputs, tmp_path):
    from viaseg.core.cli import main

    model, photos, loose = cli_inputs
    lo, hi = tmp_path / "lo", tmp_path / "hi"
    assert (
        main(["predict", str(model), str(loose), "--out", str(lo), "--threshold", "0.01", "--no-overlay"])
        == 0
    )
    assert main(["predict", str(model), str(loose), "--out", str(hi), "--tile-downscale", "1.5"]) == 0
    m_lo = cv2.imread(str(lo / "loose_mask.png"), cv2.IMREAD_UNCHANGED)
    m_hi = cv2.imread(str(hi / "loose_mask.png"), cv2.IMREAD_UNCHANGED)
    assert (m_lo > 0).sum() > (m_hi > 0).sum() > 0
    # a VIA file already in the output folder may be someone's annotations: not replaced without --overwrite
    before = (lo / "via_region_data.json").read_bytes()
    assert main(["predict", str(model), str(photos), "--out", str(lo)]) == 2
    assert (lo / "via_region_data.json").read_bytes() == before
    assert main(["predict", str(model), str(photos), "--out", str(lo), "--overwrite"]) == 0
    assert (lo / "via_region_data.json").read_bytes() != before
    assert (lo / "via_region_data.json.bak").read_bytes() == before
    assert not (lo / "loose_overlay.jpg").exists() and (hi / "loose_overlay.jpg").exists()


def test_predict_cli_unreadable_image_warns_and_exits_1(cli_inputs, tmp_path, capsys):
    from viaseg.core.cli import main

    model, photos, _ = cli_inputs
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    assert main(["predict", str(model), str(photos), str(tmp_path / "missing.jpg"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "missing.jpg" in err and "Traceback" not in err
    assert (out / "a_mask.png").exists() and (out / "b_mask.png").exists()
    assert not (out / "broken_mask.png").exists()


def test_predict_cli_missing_model_is_a_clear_error(cli_inputs, tmp_path, capsys):
    from viaseg.core.cli import main

    _, photos, _ = cli_inputs
    assert main(["predict", str(tmp_path / "gone.keras"), str(photos), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "gone.keras: no such model file" in err and "Traceback" not in err


def test_output_names_are_unique_and_progress_bar_draws(tmp_path):
    import io

    from viaseg.core.cli.predict_cmd import ProgressBar, relative_filename, unique_stems

    assert unique_stems([Path("x/a.jpg"), Path("y/a.png"), Path("y/A.jpg"), Path("b.jpg")]) == [
        "a",
        "a-2",
        "A-3",
        "b",
    ]
    assert relative_filename(tmp_path / "i" / "p.jpg", tmp_path / "i") == "p.jpg"
    assert relative_filename(tmp_path / "i" / "p.jpg", tmp_path / "o") == "../i/p.jpg"
    buf = io.StringIO()
    bar = ProgressBar(4, "predicting", stream=buf, enabled=True)
    for i in range(1, 5):
        bar.update(i)
    bar.message("warning: x")
    bar.close()
    text = buf.getvalue()
    assert "4/4" in text and "warning: x\n" in text and "[" + "#" * 30 + "]" in text
    quiet = io.StringIO()
    ProgressBar(4, stream=quiet).update(2)  # not a terminal: no bar
    assert quiet.getvalue() == ""


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    import struct

    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHI", 0x0112, 3, 1) + struct.pack(">HH", orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_rotated_photo_is_predicted_as_displayed(predictor, tmp_path):
    """VIA polygons are drawn on the photo as a browser shows it (EXIF applied): so is the prediction."""
    stored = np.zeros((200, 300, 3), np.uint8)
    stored[:, :150] = 255  # white left half as stored; orientation 6 (rotate 90 cw) shows it on top
    ok, buf = cv2.imencode(".jpg", stored)
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_with_exif_orientation(buf.tobytes(), 6))
    pred = predictor.predict(path)
    assert pred.shape == (300, 200)
    assert pred[:130].mean() > 0.9 and pred[170:].mean() < 0.1
    (item,) = predictor.predict_many([path])
    assert item.prediction.shape == (300, 200)


def test_real_dataset_predict_and_evaluate(car_damage, tmp_path, capsys):
    """The car-damage val split: evaluate scores every image with truth rasterized at full size (checked
    against cv2.fillPoly of the VIA polygons), and predict writes a VIA file viaseg reads back."""
    import json

    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.formats.via_io import load_via
    from viaseg.core.cli import main
    from viaseg.core.imaging.imageio import image_size
    from viaseg.core.ml.unet import build_unet_xception

    model = save_model(build_unet_xception(SIZE, base_width=4), tmp_path / "m.keras", {"input_size": SIZE})
    assert main(["evaluate", str(model), str(car_damage), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    split = load_dataset(car_damage).split("val")
    assert out["split"] == "val" and out["count"] == len(split.entries) and not out["errors"]
    by = {r["image"]: r for r in out["per_image"]}
    for e in split.entries[:3]:
        w, h = image_size(e.path)
        truth = np.zeros((h, w), np.uint8)
        for r in e.regions:
            pts = np.column_stack([r.shape["all_points_x"], r.shape["all_points_y"]]).astype(np.int32)
            cv2.fillPoly(truth, [pts], 1)
        assert by[e.filename]["true_pixels"] == int(truth.sum())

    few = [str(e.path) for e in split.entries[:2]]
    assert main(["predict", str(model), *few, "--out", str(tmp_path / "pred")]) == 0
    project = load_via(tmp_path / "pred" / "via_region_data.json")
    assert [e.path.resolve() for e in project.images] == [Path(f).resolve() for f in few]
    for e in project.images:
        w, h = image_size(e.path)
        mask = cv2.imread(str(tmp_path / "pred" / f"{Path(e.filename).stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (h, w)


def test_the_apps_thread_pools_are_set_once_before_tensorflow_runs():
    """``tfsetup.interactive_threads`` (the app's): two inter-op threads for the photo and mirror branches, half
    the cores per op; a second call changes nothing and says so (None)."""
    import os
    import subprocess
    import sys

    code = (
        "from viaseg.core.ml import tfsetup; import tensorflow as tf; "
        "print(tfsetup.interactive_threads(), tfsetup.interactive_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads(), "
        "tf.config.threading.get_intra_op_parallelism_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    intra = max(1, (cores or 1) // 2)
    assert out.stdout.strip().splitlines()[-1] == f"(2, {intra}) None 2 {intra}", out.stdout
