"""The U-Net with the ImageNet-trained MobileNetV2 encoder: its shipped weights, shapes, training, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from viaseg.core.ml import unet_mobilenet as um  # noqa: E402
from viaseg.core.ml.modelio import load_model, save_model  # noqa: E402


def test_the_shipped_weights_fill_every_encoder_layer_exactly():
    about = um.describe_weights()
    assert about["sha1"] and "nsfwjs" in about["source"] and "block_16_project_BN" in about["layers"]
    model = um.build_unet_mobilenet(64)
    stored = um.imagenet_weights()
    # 17 blocks: Conv1 + bn + 16 x (expand, BN) + 17 x (depthwise, BN, project, BN) = 2 + 32 + 68 layers
    assert len(stored) == 102
    for name, ws in stored.items():
        got = model.get_layer(name).get_weights()
        assert len(got) == len(ws)
        for g, w in zip(got, ws, strict=True):
            np.testing.assert_array_equal(g, w)
    # the values are the stored 8-bit codes through each tensor's min and scale
    with np.load(um.WEIGHTS) as z:
        q, lo, step = (
            z["block_5_expand/kernel"],
            float(z["block_5_expand/kernel:min"]),
            float(z["block_5_expand/kernel:scale"]),
        )
    np.testing.assert_allclose(
        stored["block_5_expand"][0], lo + q.astype(np.float32) * step, rtol=0, atol=1e-7
    )
    # batch-norm variances are never negative (a few dead channels store 0; epsilon 1e-3 keeps them finite),
    # and the first layer's filters are not all alike (trained, not an initializer's)
    variances = np.concatenate([ws[3] for ws in stored.values() if len(ws) == 4])
    assert variances.min() >= 0 and (variances > 0).mean() > 0.99
    k = stored["Conv1"][0].reshape(-1, 32)
    k = k[:, k.std(axis=0) > 0]  # a few filters are dead (constant) in ImageNet's MobileNetV2
    assert k.shape[1] >= 16 and np.abs(np.corrcoef(k.T)[np.triu_indices(k.shape[1], 1)]).mean() < 0.5


def test_the_stored_statistics_belong_to_the_stored_kernels():
    """Each projection's stored batch-norm mean is what its kernel gives on an image (per channel, correlation
    about 0.9 on the demo photos): kernels, statistics and layer names were read and matched right. A shuffled
    kernel loses that."""
    import cv2

    photo = sorted((Path(__file__).resolve().parents[2] / "data" / "demo" / "test").glob("*.jpg"))[0]
    img = cv2.resize(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB), (224, 224))
    x = img.astype(np.float32)[None] / 255.0
    model = um.build_unet_mobilenet(224)

    def agreement(name):
        conv = keras.Model(model.input, model.get_layer(name).output).predict(x, verbose=0)
        means = conv.reshape(-1, conv.shape[-1]).mean(axis=0)
        return float(np.corrcoef(means, model.get_layer(name + "_BN").get_weights()[2])[0, 1])

    assert agreement("block_6_project") > 0.8 and agreement("block_10_project") > 0.8
    layer = model.get_layer("block_6_project")
    w = layer.get_weights()[0]
    layer.set_weights([np.random.default_rng(0).permutation(w.reshape(-1)).reshape(w.shape)])
    assert agreement("block_6_project") < 0.5


def test_shapes_sizes_and_save_load(tmp_path):
    model = um.build_unet_mobilenet(96, pretrained=False)
    assert model.output_shape == (None, 96, 96, 1)
    anysize = um.build_unet_mobilenet(None, pretrained=False)
    assert anysize.predict(np.zeros((1, 64, 128, 3), np.float32), verbose=0).shape == (1, 64, 128, 1)
    with pytest.raises(ValueError, match="multiple of 32"):
        um.build_unet_mobilenet(80)
    path = save_model(model, tmp_path / "m.keras", {"input_size": 96})
    loaded, _meta = load_model(path)
    x = np.random.default_rng(1).random((2, 96, 96, 3), np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_a_run_with_the_mobilenet_encoder_trains_saves_and_is_followed_by_init_from(tmp_path):
    from test_train import run, tiny

    first, _ = run(tiny(tmp_path / "a", size=64, epochs=1, sample_every=0, encoder="mobilenet_v2"))
    assert first.ok, first.error
    assert first.summary["params"] > 2_000_000
    cfg = json.loads((tmp_path / "a" / "run" / "config.json").read_text())
    assert cfg["encoder"] == "mobilenet_v2"
    # fine-tuning it keeps its network even when the config asks for the other encoder
    second, events = run(
        tiny(
            tmp_path / "b", size=64, epochs=1, sample_every=0, encoder="xception", init_from=first.model_path
        )
    )
    assert second.ok, second.error
    assert "encoder mobilenet_v2 (not xception)" in events[0].notes[0]
    assert second.summary["params"] == first.summary["params"]
    bad, _ = run(tiny(tmp_path / "c", size=48, epochs=1, sample_every=0, encoder="mobilenet_v2"))
    assert not bad.ok and "multiples of 32" in bad.error


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_the_mobilenet_unet_exports_and_its_runtime_agrees_with_keras(tmp_path, fmt):
    """Its layers (ReLU6, depthwise convolutions, the -1..1 rescaling, bilinear upsampling) convert: the export's
    own check runs it in its runtime on test images and compares with Keras, averages included."""
    from viaseg.core.ml import export as ex

    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        pytest.importorskip("onnxruntime")
    meta = {"input_size": [64, 64], "threshold": 0.5, "tta": True, "tta_scales": [0.5, 1.0, 1.5]}
    path = save_model(um.build_unet_mobilenet(64), tmp_path / "m.keras", meta)
    res = ex.export_model(path, tmp_path / ("m.tflite" if fmt == "tflite" else "m.onnx"), fmt)
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4


def test_encoder_freeze_keeps_imagenet_batch_norms_and_early_weights_through_training():
    from viaseg.core.ml.networks import build_network, freeze_encoder
    from viaseg.core.ml.presets import preset

    x = np.random.default_rng(0).random((4, 64, 64, 3)).astype("float32")
    y = (np.random.default_rng(1).random((4, 64, 64, 1)) > 0.7).astype("float32")
    counts = {}
    for how in ("none", "bn", "early"):
        model = build_network(preset("default", encoder="mobilenet_v2", encoder_freeze=how), 64)
        counts[how] = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="binary_crossentropy")
        model.train_on_batch(x, y)
        moved = {
            layer.name
            for layer in model.layers
            if any(
                not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights(), strict=True)
            )
        }
        assert {"block_12_expand", "dec0_conv", "dec0_bn"} <= moved  # the decoder and late encoder learn
        if how == "none":
            assert {"bn_Conv1", "Conv1", "block_16_project_BN"} <= moved  # everything learns
        if how == "bn":
            # frozen batch norms run in inference mode: ImageNet's statistics and scales stay as shipped
            assert not {"bn_Conv1", "block_3_expand_BN", "block_16_project_BN"} & moved
            assert {"Conv1", "block_2_expand"} <= moved
        if how == "early":
            early = {"Conv1", "bn_Conv1", "expanded_conv_depthwise", "block_2_expand", "block_3_expand_BN"}
            assert not (early | {"block_5_project", "block_5_project_BN"}) & moved
            assert {"block_6_expand", "block_6_expand_BN", "block_16_project_BN"} <= moved
    assert counts["none"] > counts["bn"] > counts["early"]
    with pytest.raises(ValueError, match="encoder_freeze"):
        freeze_encoder(build_network(preset("default", encoder="mobilenet_v2"), 64), "all")


def test_folding_batch_norms_gives_the_same_predictions_as_the_trained_network(tmp_path):
    from viaseg.core.ml.inference_graph import fold_batch_norms
    from viaseg.core.ml.predict import Predictor
    from viaseg.core.ml.unet import build_unet_xception

    rng = np.random.default_rng(0)
    x = rng.random((2, 64, 96, 3)).astype("float32")
    for model, expect in ((um.build_unet_mobilenet(None), 60), (build_unet_xception(None, base_width=8), 1)):
        for layer in model.layers:  # statistics a training run could leave, not the identity
            if hasattr(layer, "moving_mean"):
                layer.moving_mean.assign(rng.normal(0, 0.2, layer.moving_mean.shape))
                layer.moving_variance.assign(rng.uniform(0.3, 2.0, layer.moving_variance.shape))
        folded, n = fold_batch_norms(model)
        assert n >= expect
        assert not any(type(layer).__name__.endswith("BatchNormalization") for layer in folded.layers[:10])
        a = model(x, training=False).numpy()
        b = folded(x, training=False).numpy()
        assert np.abs(a - b).max() < 2e-4 and a.std() > 1e-3
    # the Predictor runs the folded copy and gives the saved network's maps
    model = um.build_unet_mobilenet(64)
    path = save_model(model, tmp_path / "m.keras", {"input_size": 64})
    pred = Predictor.load(path, cache=False)
    img = (rng.random((80, 120, 3)) * 255).astype(np.uint8)
    got = pred.predict(img)
    assert pred.folded_batch_norms == 60
    pred.fold_batch_norms = False
    pred._fns.clear()
    want = pred.predict(img)
    assert np.abs(got - want).max() < 2e-4
