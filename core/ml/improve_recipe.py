"""*Improve model* fine-tunes a model the way it was trained: its input size, batch, rate, loss, augmentation.

The training form describes a *new* run; the model it improves may have been trained with other settings (an
earlier session's form, the command line, another preset). Fine-tuned with the form's instead, a model trained
at 384 px came back a 256-px model (its predictions coarser), and one trained with the research preset's Dice
loss and no augmentation was fine-tuned with BCE + Dice and every augmentation. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .modelio import read_meta
from .presets import LOSSES, Augment, TrainConfig

# what of a model's recorded training config its fine-tuning keeps (the rest — data, time, output — is the
# fine-tuning's own); the network itself (encoder, width, norm) is kept by ``train`` for any start model
RECIPE = (
    "preset",
    "size",
    "crop",
    "sharp_crops",
    "resize",
    "batch_size",
    "learning_rate",
    "decoder_lr_mult",
    "loss",
    "bn_momentum",
    "dropout",
    "encoder_freeze",
    "augment",
    "tta",
    "tta_scales",
    "include_empty",
    "balance_sources",
)
# how the message names a field (the others: their name, spaced)
_SAID = {
    "size": "image size",
    "augment": "augmentation",
    "tta": "mirror averaging",
    "tta_scales": "sizes averaged",
}


def _said(name: str, model: Any, form: Any) -> str:
    what = _SAID.get(name, name.replace("_", " "))
    if isinstance(model, Augment) or isinstance(form, Augment):
        return f"{what} as the model was trained"
    fmt = (lambda v: f"{v:g}") if isinstance(model, float) else str
    return f"{what} {fmt(model)} instead of {fmt(form)}"


def _value(name: str, raw: Any, now: Any) -> Any:
    """``raw`` (from the model's JSON) as ``TrainConfig`` holds field ``name``; ``now`` when it does not fit."""
    if name == "augment":
        if not isinstance(raw, dict):
            return now
        known = {f.name for f in dataclasses.fields(Augment)}
        try:
            return Augment(**{k: v for k, v in raw.items() if k in known})
        except TypeError:
            return now
    if name == "tta_scales":
        return tuple(raw) if isinstance(raw, (list, tuple)) and raw else now
    if name == "loss":
        return raw if raw in LOSSES else now
    if name == "crop":
        return raw if raw is None or (isinstance(raw, int) and raw > 0) else now
    if isinstance(now, bool):
        return raw if isinstance(raw, bool) else now
    if isinstance(now, (int, float)) and not isinstance(now, bool):
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0
        if name in ("dropout",):
            ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 <= raw < 1
        return type(now)(raw) if ok else now
    if isinstance(now, str):
        return raw if isinstance(raw, str) and raw else now
    return raw if raw is not None else now


def follow_model_recipe(
    cfg: TrainConfig, keep: frozenset[str] | set[str] = frozenset()
) -> tuple[TrainConfig, str]:
    """``cfg`` (a fine-tuning of ``cfg.init_from``) with the start model's recorded recipe, except the fields in
    ``keep`` (what the user asked for: `viaseg train --init-from` with ``--size``...), and a sentence naming what
    of ``cfg`` that replaced ("" when nothing did, or the model recorded no config: then ``cfg`` as it is).
    Raises ``ModelError`` (naming the file) for a file that is no model."""
    if not cfg.init_from:
        return cfg, ""
    src = read_meta(cfg.init_from).get("config")
    if not isinstance(src, dict):
        return cfg, ""
    changes = {}
    for name in RECIPE:
        if name not in src or name in keep:
            continue
        now = getattr(cfg, name)
        v = _value(name, src[name], now)
        if v != now:
            changes[name] = v
    if not changes:
        return cfg, ""
    said = [_said(k, changes[k], getattr(cfg, k)) for k in RECIPE if k in changes]
    out = dataclasses.replace(cfg, **changes)
    return out, "fine-tuned with the model's own training settings: " + ", ".join(said)
