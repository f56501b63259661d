"""The faster layers compute what their Keras parents compute, with the same weights, in training and inference."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from viaseg.core.ml import tfsetup  # noqa: E402
from viaseg.core.ml.fast_layers import FusedBatchNormalization, SingleMapConv2D  # noqa: E402

tf = tfsetup.load_tf()


def _pair(fast, plain, shape, rng):
    x = rng.normal(1.5, 2.0, shape).astype("float32")
    fast.build(shape)
    plain.build(shape)
    plain.set_weights([rng.normal(0, 1, w.shape).astype("float32") for w in plain.get_weights()])
    fast.set_weights(plain.get_weights())
    return tf.constant(x)


def _grads(layer, x, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * tf.sin(y))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])]


def test_fused_batch_norm_matches_keras_in_training_and_inference():
    rng = np.random.default_rng(0)
    fast = FusedBatchNormalization(momentum=0.9)
    plain = keras.layers.BatchNormalization(momentum=0.9)
    x = _pair(fast, plain, (3, 5, 7, 4), rng)
    for training in (True, False):
        y_fast, g_fast = _grads(fast, x, training)
        y_plain, g_plain = _grads(plain, x, training)
        np.testing.assert_allclose(y_fast, y_plain, rtol=1e-4, atol=1e-4)
        for a, b in zip(g_fast, g_plain, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    # the moving statistics after one training call: biased variance, as Keras keeps it
    for a, b in zip(fast.non_trainable_weights, plain.non_trainable_weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(fast.moving_variance.numpy(), 1.0)  # they did move


def test_single_map_conv_matches_conv2d_and_keeps_its_kernel_shape():
    rng = np.random.default_rng(1)
    fast = SingleMapConv2D(1, 3, padding="same", activation="sigmoid")
    plain = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")
    x = _pair(fast, plain, (2, 9, 11, 6), rng)
    assert fast.kernel.shape == plain.kernel.shape == (3, 3, 6, 1)
    y_fast, g_fast = _grads(fast, x, True)
    y_plain, g_plain = _grads(plain, x, True)
    np.testing.assert_allclose(y_fast, y_plain, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_fast, g_plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # a kernel that is not symmetric: a flipped or transposed use of it would differ
    assert not np.allclose(fast.kernel.numpy(), fast.kernel.numpy()[::-1, ::-1])


def test_fast_layers_round_trip_through_a_saved_model(tmp_path):
    from viaseg.core.ml import unet
    from viaseg.core.ml.modelio import load_model, save_model

    model = unet.build_unet_xception(32, base_width=16)
    assert any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
    assert isinstance(model.get_layer("mask"), SingleMapConv2D)
    x = np.random.default_rng(2).random((1, 32, 32, 3)).astype("float32")
    path = save_model(model, tmp_path / "m.keras", {})
    loaded, _ = load_model(path)
    assert isinstance(loaded.get_layer("mask"), SingleMapConv2D)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
