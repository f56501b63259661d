"""``viaseg train --init-from MODEL``: the settings not given on the command line are the model's own."""

from __future__ import annotations

import sys

from ..base.errors import ViasegError


def follow_init_model(cfg, args):
    """``--init-from MODEL``: the settings not given on the command line are the model's own (its size, batch,
    rate, loss, augmentation), not the preset's (a 384-px model fine-tuned without --size came back a 256-px
    one); said in a note. ``--preset`` is kept as given."""
    from ..ml.improve_recipe import follow_model_recipe

    given = {
        "size": args.size,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "loss": args.loss,
        "crop": args.crop,
        "sharp_crops": getattr(args, "sharp_crops", None),
        "resize": args.resize,
        "bn_momentum": args.bn_momentum,
        "decoder_lr_mult": getattr(args, "decoder_lr_mult", None),
        "encoder_freeze": args.encoder_freeze,
        "tta": args.tta,
        "tta_scales": args.tta_scales,
        "balance_sources": True if args.balance else None,
    }
    keep = {k for k, v in given.items() if v is not None} | {"preset"}
    if args.no_augment or any(getattr(args, k, None) is not None for k in ("scale", "colour_jitter", "blur")):
        keep.add("augment")
    try:
        cfg, note = follow_model_recipe(cfg, keep)
    except ViasegError:
        return cfg  # the run names the file and why it cannot start from it
    if note:
        print(f"note: --init-from: {note}", file=sys.stderr)
    return cfg
