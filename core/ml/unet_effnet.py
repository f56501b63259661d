"""U-Net whose encoder is an ImageNet-trained EfficientNet-Lite0 (``--encoder efficientnet_lite0``).

EfficientNet-Lite0 (Tan & Le; the "lite" variant for mobile CPUs: ReLU6, no squeeze-and-excitation, 75.1 %
ImageNet top-1 against MobileNetV2's 71.8 % for 1.4x its operations) in the layout of
``core/ml/unet_mobilenet.py``: the decoder joins the expansion features of the first block of each next stage at
1/2, 1/4, 1/8 and 1/16 of the input size, reduced by 1x1 convolutions, and ends in one probability map. Inputs
are RGB scaled to 0..1; the network rescales to -1..1 ((x - 127) / 128, as EfficientNet-Lite was trained).
The encoder's weights load by layer name from ``weights/efficientnet_lite0_imagenet.npz`` (where they come from:
``scripts/fetch_efficientnet_lite0.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .unet_mobilenet import network_input, set_named_weights, unet_decoder

WEIGHTS = Path(__file__).resolve().parent / "weights" / "efficientnet_lite0_imagenet.npz"
ENCODER_NAME = "efficientnet_lite0"
# (repeats, kernel, stride, expansion, output channels) of the seven stages (efficientnet_lite_builder.py)
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
)
STAGES += ((3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
# encoder features the decoder joins, finest first (1/2, 1/4, 1/8, 1/16), and the 1x1 widths they are reduced to
SKIPS: tuple[tuple[str, int], ...] = (("eff_b1_expand_relu", 16), ("eff_b3_expand_relu", 32))
SKIPS += (("eff_b5_expand_relu", 48), ("eff_b11_expand_relu", 64))


def build_unet_effnet(
    input_size: int | tuple[int, int] | None = 256,
    num_classes: int = 1,
    bn_momentum: float = 0.99,
    dropout: float = 0.0,
    precision: str = "float32",
    pretrained: bool = True,
    name: str = "unet_efficientnet_lite0",
) -> keras.Model:
    """The U-Net; ``input_size`` a multiple of 32 (int, ``(h, w)``) or ``None`` (any multiple of 32).
    ``pretrained``: start the encoder from the ImageNet weights (else random, as any other layer)."""
    inputs, bn, relu6, dt = network_input(input_size, dropout, precision, bn_momentum)
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="to_minus1_1", dtype=dt)(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="eff_stem", dtype=dt)(x)
    x = relu6(bn(x, "eff_stem_bn"), "eff_stem_relu")
    x, features = effnet_blocks(x, bn, relu6, dt)
    outputs = unet_decoder(x, features, SKIPS, bn, dt, dropout, num_classes)
    model = keras.Model(inputs, outputs, name=name)
    if pretrained:
        load_imagenet_weights(model)
    return model


def effnet_blocks(x, bn, relu6, dt=None):
    """EfficientNet-Lite0's 16 blocks on the stem's output ``x``; returns the last block's output and the
    ``*_expand_relu`` features."""
    features = {}
    block = 0
    for repeats, kernel, stride, expansion, filters in STAGES:
        for r in range(repeats):
            block_in, prefix = x, f"eff_b{block}_"
            if expansion != 1:
                x = layers.Conv2D(
                    expansion * x.shape[-1], 1, use_bias=False, name=prefix + "expand", dtype=dt
                )(x)
                x = relu6(bn(x, prefix + "expand_bn"), prefix + "expand_relu")
                features[prefix + "expand_relu"] = x
            s = stride if r == 0 else 1
            x = layers.DepthwiseConv2D(
                kernel, strides=s, padding="same", use_bias=False, name=prefix + "depthwise", dtype=dt
            )(x)
            x = relu6(bn(x, prefix + "depthwise_bn"), prefix + "depthwise_relu")
            x = layers.Conv2D(filters, 1, use_bias=False, name=prefix + "project", dtype=dt)(x)
            x = bn(x, prefix + "project_bn")
            if s == 1 and block_in.shape[-1] == filters:
                x = layers.Add(name=prefix + "add", dtype=dt)([block_in, x])
            block += 1
    return x, features


def imagenet_weights(path: Path = WEIGHTS) -> dict[str, list[np.ndarray]]:
    """The stored encoder weights: layer name -> its weights in Keras' order (stored as float16)."""
    with np.load(path) as z:
        out: dict[str, dict[int, np.ndarray]] = {}
        for key in z.files:
            if key.startswith("__"):
                continue
            layer, index = key.split("/")
            out.setdefault(layer, {})[int(index)] = z[key].astype(np.float32)
    return {layer: [ws[i] for i in sorted(ws)] for layer, ws in out.items()}


def encoder_layer_names(path: Path = WEIGHTS) -> set[str]:
    with np.load(path) as z:
        return {key.split("/")[0] for key in z.files if not key.startswith("__")}


def describe_weights(path: Path = WEIGHTS) -> dict:
    with np.load(path) as z:
        return json.loads(str(z["__about__"]))


def load_imagenet_weights(model: keras.Model, path: Path = WEIGHTS) -> int:
    """Set every encoder layer of ``model`` found in the stored weights; returns how many layers were set.
    Raises ``ValueError`` naming the file when a layer's shapes do not match or the file is missing."""
    if not path.is_file():
        raise ValueError(f"{path}: the EfficientNet-Lite0 ImageNet weights are missing")
    return set_named_weights(model, imagenet_weights(path), path)
