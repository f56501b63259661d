"""The network a ``TrainConfig`` asks for (its ``encoder`` and widths), built in one place for training and the
benchmarks."""

from __future__ import annotations


def build_network(cfg, input_size, precision: str = "float32", pretrained: bool = True):
    """The U-Net of ``cfg`` at ``input_size`` (int, ``(h, w)`` or ``None``: any size). ``pretrained``: the
    MobileNetV2 encoder starts from its shipped ImageNet weights (no effect on the Xception-style network)."""
    if cfg.encoder == "mobilenet_v2":
        from .unet_mobilenet import build_unet_mobilenet

        return build_unet_mobilenet(
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
