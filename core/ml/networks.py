"""The network a ``TrainConfig`` asks for (its ``encoder`` and widths), built in one place for training and the
benchmarks."""

from __future__ import annotations


def build_network(cfg, input_size, precision: str = "float32", pretrained: bool = True):
    """The U-Net of ``cfg`` at ``input_size`` (int, ``(h, w)`` or ``None``: any size). ``pretrained``: the
    MobileNetV2 encoder starts from its shipped ImageNet weights (no effect on the Xception-style network)."""
    if cfg.encoder == "mobilenet_v2":
        from .unet_mobilenet import build_unet_mobilenet

        model = build_unet_mobilenet(
            input_size,
            bn_momentum=cfg.bn_momentum,
            dropout=cfg.dropout,
            precision=precision,
            pretrained=pretrained,
        )
        freeze_encoder(model, getattr(cfg, "encoder_freeze", "none"))
        return model
    if cfg.encoder == "efficientnet_lite0":
        from .unet_effnet import build_unet_effnet

        return build_unet_effnet(
            input_size,
            bn_momentum=cfg.bn_momentum,
            dropout=cfg.dropout,
            precision=precision,
            pretrained=pretrained,
        )
    from .unet import build_unet_xception

    return build_unet_xception(
        input_size,
        base_width=cfg.base_width,
        bn_momentum=cfg.bn_momentum,
        norm=cfg.norm,
        dropout=cfg.dropout,
        precision=precision,
    )


# the MobileNetV2 encoder's layers at 1/2, 1/4 and 1/8 of the input size (block 6 goes down to 1/16)
_EARLY_PREFIXES = ("Conv1", "bn_Conv1", "expanded_conv_") + tuple(f"block_{i}_" for i in range(1, 6))


def freeze_encoder(model, how: str) -> int:
    """Keep part of the MobileNetV2 encoder of ``model`` as trained (``how``: one of ``ENCODER_FREEZE``):
    ``bn`` its batch norms (Keras runs a frozen batch norm in inference mode: ImageNet's statistics); ``early``
    its layers at 1/2..1/8 of the size, batch norms included (no backward pass through them: faster steps).
    Returns how many layers were frozen."""
    from .presets import ENCODER_FREEZE

    if how not in ENCODER_FREEZE:
        raise ValueError(f"encoder_freeze must be one of {ENCODER_FREEZE}, got {how!r}")
    if how == "none":
        return 0
    import keras

    from .unet_mobilenet import encoder_layer_names

    encoder = encoder_layer_names()
    n = 0
    for layer in model.layers:
        if layer.name not in encoder:
            continue
        if (how == "bn" and isinstance(layer, keras.layers.BatchNormalization)) or (
            how == "early" and layer.name.startswith(_EARLY_PREFIXES)
        ):
            layer.trainable = False
            n += 1
    return n
