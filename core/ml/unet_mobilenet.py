"""U-Net whose encoder is an ImageNet-trained MobileNetV2 (width 1.0), for small training sets.

The encoder is Keras' MobileNetV2 (``keras.applications``: same layers, same names, so its weights load by
name), built here with viaseg's fused batch norm; its ImageNet weights ship with viaseg
(``weights/mobilenet_v2_imagenet.npz``, made by ``scripts/fetch_mobilenet_v2.py``; where they come from is
written there), so training needs no download. The decoder takes the encoder's features at 1/32, 1/16, 1/8, 1/4
and 1/2 of the input size, each skip reduced by a 1x1 convolution before it is joined, and ends in one
probability map at the input size. Inputs are RGB scaled to 0..1 like every viaseg model; the network rescales
to MobileNetV2's -1..1 itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .fast_layers import FusedBatchNormalization, SingleMapConv2D

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mobilenet_v2_imagenet.npz"
ENCODER_NAME = "mobilenet_v2"
# (expansion, output channels, stride) of blocks 0..16 (keras.applications.MobileNetV2, width 1.0)
_BLOCKS = [(1, 16, 1)]
_BLOCKS += [(6, 24, 2), (6, 24, 1)]
_BLOCKS += [(6, 32, 2), (6, 32, 1), (6, 32, 1)]
_BLOCKS += [(6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1)]
_BLOCKS += [(6, 96, 1), (6, 96, 1), (6, 96, 1)]
_BLOCKS += [(6, 160, 2), (6, 160, 1), (6, 160, 1), (6, 320, 1)]
# encoder features the decoder joins, finest first (1/2, 1/4, 1/8, 1/16), and the 1x1 widths they are reduced to
SKIPS: tuple[tuple[str, int], ...] = (("block_1_expand_relu", 16), ("block_3_expand_relu", 32))
SKIPS += (("block_6_expand_relu", 48), ("block_13_expand_relu", 64))
DECODER = (96, 64, 32, 16)  # widths at 1/16, 1/8, 1/4, 1/2


def build_unet_mobilenet(
    input_size: int | tuple[int, int] | None = 256,
    num_classes: int = 1,
    bn_momentum: float = 0.99,
    dropout: float = 0.0,
    precision: str = "float32",
    pretrained: bool = True,
    name: str = "unet_mobilenet_v2",
) -> keras.Model:
    """The U-Net; ``input_size`` a multiple of 32 (int, ``(h, w)``) or ``None`` (any multiple of 32).
    ``pretrained``: start the encoder from the ImageNet weights (else random, as any other layer)."""
    inputs, bn, relu6, dt = network_input(input_size, dropout, precision, bn_momentum)
    x = layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1", dtype=dt)(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="Conv1", dtype=dt)(x)
    x = relu6(bn(x, "bn_Conv1"), "Conv1_relu")
    x, features = mobilenet_blocks(x, bn, relu6, dt)
    outputs = unet_decoder(x, features, SKIPS, bn, dt, dropout, num_classes)
    model = keras.Model(inputs, outputs, name=name)
    if pretrained:
        load_imagenet_weights(model)
    return model


def network_input(input_size, dropout: float, precision: str, bn_momentum: float):
    """The checked input (a multiple of 32, or ``None``: any), and the batch-norm / ReLU6 makers and dtype
    policy the ImageNet-encoder U-Nets share: ``(inputs, bn, relu6, dt)``."""
    h: int | None = None
    w: int | None = None
    if input_size is not None:
        h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise ValueError(f"input size must be a positive multiple of 32 for this network, got {h}x{w}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError("dropout must be in [0, 1)")
    dt = None if precision == "float32" else keras.DTypePolicy(precision)

    def bn(x, layer_name):
        return FusedBatchNormalization(momentum=bn_momentum, epsilon=1e-3, name=layer_name, dtype=dt)(x)

    def relu6(x, layer_name):
        return layers.ReLU(6.0, name=layer_name, dtype=dt)(x)

    return keras.Input(shape=(h, w, 3), name="image"), bn, relu6, dt


def unet_decoder(x, features, skips, bn, dt, dropout: float, num_classes: int):
    """The decoder of the ImageNet-encoder U-Nets: from the encoder's output at 1/32 up to 1/2, joining each
    of ``skips`` (``(feature name, 1x1 width)``, finest first) reduced, then one probability map at full size."""
    x = layers.Conv2D(128, 1, use_bias=False, name="dec_top", dtype=dt)(x)
    x = layers.ReLU(name="dec_top_relu", dtype=dt)(bn(x, "dec_top_bn"))
    for i, ((skip_name, skip_width), width) in enumerate(zip(reversed(skips), DECODER, strict=True)):
        skip = layers.Conv2D(skip_width, 1, use_bias=False, name=f"dec{i}_skip", dtype=dt)(
            features[skip_name]
        )
        skip = layers.ReLU(name=f"dec{i}_skip_relu", dtype=dt)(bn(skip, f"dec{i}_skip_bn"))
        x = layers.UpSampling2D(2, name=f"dec{i}_up", dtype=dt)(x)
        x = layers.Concatenate(name=f"dec{i}_cat", dtype=dt)([x, skip])
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"dec{i}_conv", dtype=dt)(x)
        x = layers.ReLU(name=f"dec{i}_relu", dtype=dt)(bn(x, f"dec{i}_bn"))
        if dropout:
            x = layers.SpatialDropout2D(dropout, name=f"dec{i}_dropout", dtype=dt)(x)
    x = layers.UpSampling2D(2, interpolation="bilinear", name="dec_full_up", dtype=dt)(x)
    return SingleMapConv2D(
        num_classes, 3, activation="sigmoid", padding="same", dtype="float32", name="mask"
    )(x)


def mobilenet_blocks(x, bn, relu6, dt=None):
    """MobileNetV2's blocks 0..16 (Keras' layer names, so the ImageNet weights load by name) on the stem's
    output ``x``; returns the last block's output and the ``*_expand_relu`` features the decoder joins.
    ``bn(x, name)`` / ``relu6(x, name)`` make the batch norms and activations."""
    features = {}
    for block_id, (expansion, filters, stride) in enumerate(_BLOCKS):
        block_in = x
        if block_id:
            prefix = f"block_{block_id}_"
            x = layers.Conv2D(expansion * x.shape[-1], 1, use_bias=False, name=prefix + "expand", dtype=dt)(x)
            x = relu6(bn(x, prefix + "expand_BN"), prefix + "expand_relu")
            features[prefix + "expand_relu"] = x
        else:
            prefix = "expanded_conv_"
        # "same" padding at stride 2 on even sizes pads bottom/right by one: Keras' ZeroPadding2D + "valid"
        x = layers.DepthwiseConv2D(
            3, strides=stride, padding="same", use_bias=False, name=prefix + "depthwise", dtype=dt
        )(x)
        x = relu6(bn(x, prefix + "depthwise_BN"), prefix + "depthwise_relu")
        x = layers.Conv2D(filters, 1, use_bias=False, name=prefix + "project", dtype=dt)(x)
        x = bn(x, prefix + "project_BN")
        if stride == 1 and block_in.shape[-1] == filters:
            x = layers.Add(name=prefix + "add", dtype=dt)([block_in, x])
    return x, features


def imagenet_weights(path: Path = WEIGHTS) -> dict[str, list[np.ndarray]]:
    """The stored encoder weights, dequantized: layer name -> its weights in Keras' order."""
    order = {
        "kernel": 0,
        "depthwise_kernel": 0,
        "gamma": 0,
        "beta": 1,
        "moving_mean": 2,
        "moving_variance": 3,
    }
    with np.load(path) as z:
        out: dict[str, dict[int, np.ndarray]] = {}
        for key in z.files:
            if key.startswith("__") or ":" in key:
                continue
            layer, var = key.split("/")
            value = float(z[key + ":min"]) + z[key].astype(np.float32) * float(z[key + ":scale"])
            out.setdefault(layer, {})[order[var]] = value
    return {layer: [ws[i] for i in sorted(ws)] for layer, ws in out.items()}


def encoder_layer_names(path: Path = WEIGHTS) -> set[str]:
    """The names of the encoder's layers that carry stored weights."""
    with np.load(path) as z:
        return {key.split("/")[0] for key in z.files if not key.startswith("__") and ":" not in key}


def describe_weights(path: Path = WEIGHTS) -> dict:
    with np.load(path) as z:
        return json.loads(str(z["__about__"]))


def load_imagenet_weights(model: keras.Model, path: Path = WEIGHTS) -> int:
    """Set every encoder layer of ``model`` found in the stored weights; returns how many layers were set.
    Raises ``ValueError`` naming the file when a layer's shapes do not match."""
    return set_named_weights(model, imagenet_weights(path), path)


def set_named_weights(model: keras.Model, weights: dict[str, list[np.ndarray]], path: Path) -> int:
    """Set each layer of ``model`` named in ``weights`` (read from ``path``); ``ValueError`` naming the file when
    shapes differ or a stored layer is not in the network. Returns how many layers were set."""
    n = 0
    for layer in model.layers:
        ws = weights.get(layer.name)
        if ws is None:
            continue
        want = [tuple(v.shape) for v in layer.weights]
        if want != [w.shape for w in ws]:
            raise ValueError(
                f"{path}: layer {layer.name} has shapes {want}, the file {[w.shape for w in ws]}"
            )
        layer.set_weights(ws)
        n += 1
    if n != len(weights):
        raise ValueError(f"{path}: {len(weights) - n} of its layers are not in the network")
    return n
