"""U-Net model, losses and metrics: parameter count, numerics, save/load with safe_mode."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from viaseg.core.ml import unet  # noqa: E402
from viaseg.core.ml.modelio import load_model, save_model  # noqa: E402


def test_default_model_has_research_parameter_count():
    model = unet.build_unet_xception()
    assert model.count_params() == 2_058_401
    assert model.input_shape == (None, 128, 128, 3)
    assert model.output_shape == (None, 128, 128, 1)


def test_options_change_the_model():
    tiny = unet.build_unet_xception(64, base_width=8)
    assert tiny.output_shape == (None, 64, 64, 1)
    assert tiny.count_params() < 200_000
    gn = unet.build_unet_xception(32, base_width=8, norm="group")
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in gn.layers)
    assert any(isinstance(layer, keras.layers.GroupNormalization) for layer in gn.layers)
    bn = unet.build_unet_xception(32, base_width=8, bn_momentum=0.1)
    moms = {layer.momentum for layer in bn.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert moms == {0.1}
    drop = unet.build_unet_xception(32, base_width=8, dropout=0.2)
    assert drop.count_params() == unet.build_unet_xception(32, base_width=8).count_params()
    assert any(isinstance(layer, keras.layers.SpatialDropout2D) for layer in drop.layers)


@pytest.mark.parametrize("bad", [0, 100, (64, 40)])
def test_bad_input_size_is_refused(bad):
    with pytest.raises(ValueError, match="multiple of 16"):
        unet.build_unet_xception(bad, base_width=8)


def _pair():
    t = np.zeros((2, 8, 8, 1), "float32")
    t[0, :4, :4] = 1.0  # 16 of 64 pixels
    p = np.zeros_like(t)
    p[0, :4, :8] = 1.0  # 32 pixels, 16 overlapping
    return t, p


def test_dice_loss_numerics():
    t, p = _pair()
    loss = np.asarray(unet.dice_loss(t, p))
    # image 0: 1 - (2*16+1)/(16+32+1); image 1: both empty -> 0
    np.testing.assert_allclose(loss, [1 - 33 / 49, 0.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(unet.dice_coef(t, p)), [33 / 49, 1.0], rtol=1e-6)


def test_bce_and_combined_loss_numerics():
    t = np.array([[[[1.0], [0.0]]]], "float32")
    p = np.array([[[[0.8], [0.4]]]], "float32")
    expected = -(np.log(0.8) + np.log(0.6)) / 2
    np.testing.assert_allclose(np.asarray(unet.bce_loss(t, p)), [expected], rtol=1e-5)
    combo = np.asarray(unet.bce_dice_loss(t, p))
    dice = 1 - (2 * 0.8 + 1) / (1 + 1.2 + 1)
    np.testing.assert_allclose(combo, [expected + dice], rtol=1e-5)


def test_focal_tversky_is_zero_for_perfect_and_larger_for_misses():
    t, _ = _pair()
    assert np.allclose(np.asarray(unet.focal_tversky_loss(t, t)), 0.0, atol=1e-6)
    miss = np.asarray(unet.focal_tversky_loss(t, np.zeros_like(t)))
    extra = np.asarray(unet.focal_tversky_loss(np.zeros_like(t), t))
    assert miss[0] > 0.5
    # false negatives (alpha=0.7) weigh more than false positives (beta=0.3)
    assert miss[0] > extra[0] > 0


def _lovasz_reference(t, logit):
    """Berman et al.'s Lovász hinge, one image at a time, in numpy."""
    out = []
    for ti, li in zip(t.reshape(len(t), -1), logit.reshape(len(t), -1), strict=True):
        err = 1 - li * (2 * ti - 1)
        order = np.argsort(-err, kind="stable")
        g = ti[order]
        jac = 1 - (g.sum() - np.cumsum(g)) / (g.sum() + np.cumsum(1 - g))
        jac[1:] = jac[1:] - jac[:-1]
        out.append(np.dot(np.maximum(err[order], 0), jac))
    return np.array(out)


def test_lovasz_hinge_matches_the_reference_and_is_zero_only_when_the_hard_mask_is_right():
    rng = np.random.default_rng(0)
    t = (rng.random((3, 8, 8, 1)) > 0.6).astype("float32")
    t[2] = 0  # an image without damage
    logit = rng.normal(size=t.shape).astype("float32")
    p = 1 / (1 + np.exp(-logit))
    got = np.asarray(unet.lovasz_hinge_loss(t, p))
    np.testing.assert_allclose(got, _lovasz_reference(t, logit), rtol=1e-4)
    sure = np.where(t > 0, 0.99, 0.01).astype("float32")  # every pixel right by a margin: no loss
    np.testing.assert_allclose(np.asarray(unet.lovasz_hinge_loss(t, sure)), 0.0, atol=1e-6)
    wrong = np.where(t > 0, 0.01, 0.99).astype("float32")
    assert (np.asarray(unet.lovasz_hinge_loss(t, wrong)) > 1.0).all()
    combo = np.asarray(unet.get_loss("bce_lovasz")(t, p))
    np.testing.assert_allclose(combo, np.asarray(unet.bce_loss(t, p)) + got, rtol=1e-5)


def test_iou_and_hard_dice():
    t, p = _pair()
    np.testing.assert_allclose(np.asarray(unet.iou_coef(t, p)), [0.5, 1.0])
    scores = unet.hard_dice_scores(t[..., 0], p[..., 0])
    np.testing.assert_allclose(scores["per_image_dice"], [32 / 48, 1.0])
    assert scores["mean_dice"] == pytest.approx((32 / 48 + 1) / 2)
    assert scores["global_dice"] == pytest.approx(32 / 48)
    assert scores["global_iou"] == pytest.approx(0.5)
    # the Keras metric gives the same per-image hard Dice as the numpy scorer (empty vs empty: 1)
    np.testing.assert_allclose(np.asarray(unet.hard_dice_coef(t, p)), scores["per_image_dice"], rtol=1e-6)
    metric = unet.HardDice()
    metric.update_state(t, p)
    assert float(metric.result()) == pytest.approx(scores["mean_dice"])


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss"):
        unet.get_loss("hinge")


def test_save_load_round_trip_with_safe_mode(tmp_path):
    model = unet.compile_model(
        unet.build_unet_xception(32, base_width=8, norm="group", dropout=0.1), "bce_dice"
    )
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    y = (x[..., :1] > 0.5).astype("float32")
    model.fit(x, y, epochs=1, verbose=0)
    meta = {"input_size": [32, 32], "threshold": 0.5, "class_names": ["damage"]}
    path = save_model(model, tmp_path / "m.keras", meta)
    loaded, meta2 = load_model(path)
    assert meta2 == meta
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    # full compile config (custom loss + metrics) also deserializes in safe mode
    again = keras.saving.load_model(path, safe_mode=True)
    assert again.loss is unet.bce_dice_loss or getattr(again.loss, "__name__", "") == "bce_dice_loss"


def test_bfloat16_model_same_parameters_float32_output(tmp_path):
    m = unet.build_unet_xception(precision="mixed_bfloat16")
    assert m.count_params() == 2_058_401
    small = unet.compile_model(unet.build_unet_xception(32, base_width=8, precision="mixed_bfloat16"))
    x = np.random.default_rng(1).random((2, 32, 32, 3)).astype("float32")
    small.fit(x, (x[..., :1] > 0.5).astype("float32"), epochs=1, verbose=0)
    out = small.predict(x, verbose=0)
    assert out.dtype == np.float32
    path = save_model(small, tmp_path / "bf.keras", {"input_size": [32, 32]})
    loaded, _ = load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), out, atol=1e-2)
    with pytest.raises(ValueError, match="precision"):
        unet.build_unet_xception(32, base_width=8, precision="float16")


def test_decoder_lr_mult_scales_only_the_layers_outside_the_encoder(tmp_path):
    """Adam's first step moves every weight by about the learning rate (m / sqrt(v) = the gradient's sign):
    with ``decoder_lr_mult`` 4, the layers not named as the encoder's move 4x as far, the encoder's as before;
    the model still saves and loads."""

    def build():
        keras.utils.set_random_seed(0)
        inp = keras.Input((6,))
        h = keras.layers.Dense(5, name="enc_dense")(inp)
        out = keras.layers.Dense(1, activation="sigmoid", name="dec_dense")(h)
        return keras.Model(inp, out)

    x = np.random.default_rng(0).random((16, 6)).astype("float32")
    y = (x[:, :1] > 0.5).astype("float32")
    steps = {}
    for mult in (1.0, 4.0):
        model = build()
        before = {w.path: keras.ops.convert_to_numpy(w) for w in model.trainable_weights}
        unet.compile_model(
            model, "bce", learning_rate=1e-3, decoder_lr_mult=mult, encoder_layers={"enc_dense"}
        )
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        steps[mult] = {
            p: float(np.median(np.abs(keras.ops.convert_to_numpy(w) - before[p])))
            for p, w in ((w.path, w) for w in model.trainable_weights)
        }
    enc = [p for p in steps[1.0] if p.startswith("enc_dense/")]
    dec = [p for p in steps[1.0] if p.startswith("dec_dense/")]
    assert enc and dec
    for p in enc:
        assert steps[4.0][p] == pytest.approx(steps[1.0][p], rel=0.05)
    for p in dec:
        assert steps[4.0][p] == pytest.approx(4 * steps[1.0][p], rel=0.05)
    assert isinstance(model.optimizer, unet.LayerScaledAdam)
    path = save_model(model, tmp_path / "m.keras", {"input_size": [6]})
    loaded, _ = load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="decoder_lr_mult"):
        unet.compile_model(build(), "bce", decoder_lr_mult=0.0)
