"""Training configuration and its presets (no TensorFlow import here)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Augment:
    """Which augmentations run (each switchable) and how strong they are."""

    flip: bool = True  # horizontal flip, p=0.5
    # random square crop of min_scale..max_scale of the side, resized back; a side over 1 zooms out (the photo
    # smaller, black around it)
    scale_crop: bool = True
    rotate: bool = True  # uniform in +-max_degrees, reflected borders
    color: bool = True  # brightness / contrast / saturation (/ hue) jitter and blur (image only)
    min_scale: float = 0.6
    max_scale: float = 1.0
    max_degrees: float = 10.0
    brightness: float = 0.15
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0  # hue shift up to this share of the colour circle either way (0: none)
    # a Gaussian blur of sigma uniform in 0..blur pixels of the training size (0: none): photos of other
    # cameras, sharper or softer than the training ones
    blur: float = 0.0

    @classmethod
    def off(cls) -> Augment:
        return cls(flip=False, scale_crop=False, rotate=False, color=False)

    @property
    def any(self) -> bool:
        return self.flip or self.scale_crop or self.rotate or self.color


PRESETS = ("default", "research")
# the names unet.get_loss knows (the first: the form's)
LOSSES = ("bce_dice", "dice", "bce", "focal_tversky", "bce_lovasz")
NORMS = ("batch", "group")
# what of an ImageNet-trained encoder stays as trained: "none" (everything learns), "bn" (its batch norms keep
# ImageNet's statistics and scales: inference mode), "early" (its layers at 1/2..1/8 of the size, batch norms
# included: no backward pass through the high-resolution layers). No effect on the Xception-style encoder
ENCODER_FREEZE = ("none", "bn", "early")
# the U-Net's encoder: "xception" (the research project's, random start) or "mobilenet_v2" (ImageNet-trained,
# shipped with viaseg: core/ml/unet_mobilenet.py) or "efficientnet_lite0" (ImageNet-trained, shipped:
# core/ml/unet_effnet.py)
ENCODERS = ("xception", "mobilenet_v2", "efficientnet_lite0")
STRATEGIES = ("default", "mirrored", "multiworker")
LR_SCHEDULES = ("auto", "constant", "plateau", "cosine", "flat_cosine")
ANNEALING = ("cosine", "flat_cosine")  # over a time limit these use all of it: no early stopping
MONITORS = ("soft_dice", "hard_dice")
KEEP = ("best", "last", "auto")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # auto: resolve_precision


@dataclass
class TrainConfig:
    """Everything a run needs. ``dataset`` is a path or ``DIR:split`` spec, or an in-memory ``Dataset``,
    ``Split``, ``Project`` or list of ``ImageEntry`` (the GUI's unsaved edits). ``val`` optionally gives the
    validation data the same way; otherwise the dataset's ``val`` split, else a seeded split by image.
    ``extra_train`` adds more training data (each item: path / Dataset / Split / Project / entries)."""

    dataset: Any = None
    out_dir: str | Path | None = None
    val: Any = None
    extra_train: list = field(default_factory=list)
    # draw each training source (the dataset, each extra) equally often instead of each image equally often
    balance_sources: bool = False
    train_split: str = "train"
    val_split: str = "val"
    val_fraction: float = 0.2

    preset: str = "default"
    size: int = 256
    # train on random crop x crop windows of the size-px images (same pixel scale; a multiple of 16) and
    # validate / predict on the whole size-px image with the same weights: each step costs about
    # (crop / size)^2 of a whole-image step. None: whole images
    crop: int | None = None
    # decode the training photos larger than ``size`` (``size / augment.min_scale``, at most twice ``size``), so
    # that a scale crop is cut from real pixels and reduced to ``size`` instead of enlarged from a ``size``-px
    # photo (blurred, with blocky masks): the crops then look like the photo predicted at full resolution
    sharp_crops: bool = False
    resize: str = "area"  # area | bilinear | nearest
    include_empty: bool = True  # images without regions are negatives
    exclude_duplicates: bool = True  # validation images whose content is in train are left out
    cache_dir: str | Path | None = None  # on-disk decode cache keyed by file content hash

    # start from this viaseg model's weights (fine-tuning: e.g. a model of an earlier run, or one trained on
    # more data) instead of random ones; the run keeps that model's network (base width and norm from its
    # metadata, with a note when they differ from this config's)
    init_from: str | Path | None = None
    encoder: str = (
        "xception"  # one of ENCODERS (mobilenet_v2: fixed widths, batch norm; base_width/norm unused)
    )
    encoder_freeze: str = "none"  # one of ENCODER_FREEZE
    base_width: int = 32
    norm: str = "batch"  # batch | group
    bn_momentum: float = 0.5  # low momentum: moving stats follow the fast-changing weights of a small set
    dropout: float = 0.0
    # auto: mixed_float16 where TensorFlow sees a GPU (tensor cores; loss and sigmoid head stay float32), float32
    # on a CPU; or float32 | mixed_float16 | mixed_bfloat16 (on a CPU no faster here: docs/RESULTS.md)
    precision: str = "auto"

    loss: str = "bce_dice"
    learning_rate: float = 1e-3
    # with the ImageNet encoder: every layer outside it (the decoder, learning from scratch) takes steps this
    # many times the learning rate (1: one rate for all)
    decoder_lr_mult: float = 1.0
    ema: float = 0.0  # > 0: evaluate and keep an exponential moving average of the weights (this momentum)
    lr_schedule: str = "plateau"
    batch_size: int = 8
    epochs: int = 100
    patience: int = 15  # early stopping on the monitored validation score
    # what picks the best epoch (early stopping, checkpoint, plateau): "soft_dice" = val_dice (mean soft Dice
    # per image), "hard_dice" = val_hard_dice (mean per-image Dice of the prediction thresholded at 0.5, as
    # `viaseg evaluate` scores, but at the training size and without mirror averaging)
    monitor: str = "soft_dice"
    # which weights the run saves: "best" = the epoch with the best monitored validation score; "last" = the
    # final weights (the validation images then choose nothing, so their scores are unbiased); "auto" = last
    # when the learning rate anneals over a time limit (the rate ends near zero), else best
    keep: str = "best"
    shuffle_buffer: int | None = None  # None: the whole training set
    augment: Augment = field(default_factory=Augment)
    seed: int = 0

    # > 1: train this many members one after another, each for 1/ensemble of the time limit with its own seed,
    # and save their average as the model (core/ml/ensemble.py; prediction costs this many networks)
    ensemble: int = 1
    threads: int | None = None  # TF intra-op threads (inter-op = 2); set before TF runs anything
    # default (one device) | mirrored (every GPU of this machine) | multiworker (several machines, TF_CONFIG)
    strategy: str = "default"
    time_limit_s: float | None = None  # stop (keeping the best model) after this much training time
    # the time limit stops a run only after this many epochs (Improve model: a fine-tuning cut after one or two
    # steps scored far below its starting model on the demo, 0.70 -> 0.00; four epochs were back to 0.70)
    min_epochs: int = 0
    # > 0, with a time limit: the run also ends after this many training steps (or BUDGET_MIN_EPOCHS passes
    # over its photos, if more: core/ml/train_budget.py), and its rate schedule and calibration follow
    # whichever of the time and the steps is further along: a fast machine (or a GPU) trains the recipe as
    # long as it was chosen at, not as long as the clock allows. 0: the time limit alone
    max_steps: int = 0
    sample_every: int = 5  # SamplePredictions every N epochs (0: never)
    n_samples: int = 4
    threshold: float = 0.5
    # > 0: keep this share of the annotated training photos out of the first 3/4 of the run, then choose the
    # threshold on them as `viaseg evaluate` scores (train_calibrate) and train on them for the rest; the
    # threshold above is kept when the run cannot calibrate (too few photos, fine-tuning). 0: off
    calibrate: float = 0.0
    # fine-tuning (Improve model): calibrate only on these training photos (file names: those new or edited since
    # the starting model), ``calibrate`` of them kept out until half the budget; None: no calibration when
    # fine-tuning (the starting model's threshold)
    calibrate_on: list[str] | None = None
    tta: bool = False  # predictions (and the run's own scores) average the image and its mirror image
    # ... and the network's output on the image resized by these factors (multiples of 32; (1.0,) = off)
    tta_scales: tuple = (1.0,)
    class_names: list[str] = field(default_factory=lambda: ["damage"])

    @property
    def source_size(self) -> int:
        """The side the training photos are decoded at (``size`` unless ``sharp_crops`` applies: scale crops
        that only cut in, no ``crop`` windows)."""
        a = self.augment
        if (
            not self.sharp_crops
            or self.crop
            or not a.scale_crop
            or not a.min_scale < 1.0
            or a.max_scale > 1.0
        ):
            return int(self.size)
        return int(min(2 * self.size, math.ceil(self.size / a.min_scale)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (in-memory data is described, not dumped)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "dataset" or (f.name == "val" and not isinstance(v, (list, tuple))):
                v = describe_data(v)
            elif f.name in ("extra_train", "val"):
                v = [describe_data(x) for x in v]
            elif isinstance(v, Augment):
                v = dataclasses.asdict(v)
            elif isinstance(v, Path):
                v = str(v)
            out[f.name] = v
        return out


def resolve_schedule(cfg: TrainConfig) -> str:
    """The learning-rate schedule a run uses: ``auto`` is ``flat_cosine`` when the run has a time limit (the
    rate can follow the clock), else ``plateau``."""
    if cfg.lr_schedule == "auto":
        return "flat_cosine" if cfg.time_limit_s else "plateau"
    return cfg.lr_schedule


def resolve_keep(cfg: TrainConfig) -> str:
    """``best`` or ``last`` (see ``TrainConfig.keep``)."""
    if cfg.keep == "auto":
        return "last" if resolve_schedule(cfg) in ANNEALING and cfg.time_limit_s else "best"
    return cfg.keep


def describe_data(data: Any) -> Any:
    if data is None or isinstance(data, (str, int, float)):
        return data
    if isinstance(data, Path):
        return str(data)
    if isinstance(data, list):
        return f"<in-memory: {len(data)} images>"
    name = type(data).__name__
    root = getattr(data, "root", None) or getattr(data, "image_dir", None) or getattr(data, "path", None)
    return f"<in-memory {name}{': ' + str(root) if root else ''}>"


def preset(name: str = "default", **overrides) -> TrainConfig:
    """A ``TrainConfig`` for preset ``name`` with ``overrides`` applied (``None`` values are ignored).

    ``research``: the research project's recipe (128 px, nearest resize, Dice loss, Adam 1e-3, batch 8,
    shuffle buffer 100, BatchNorm momentum 0.99, no augmentation, up to 100 epochs) with its bugs fixed:
    pixels scaled once, early stopping on validation Dice, duplicates left out of validation.

    ``default``: the best recipe measured on car-damage (see docs/RESULTS.md).
    """
    if name == "research":
        cfg = _research_preset()
    elif name == "default":
        cfg = _default_preset()
    else:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for k, v in overrides.items():
        if k not in fields:
            raise TypeError(f"TrainConfig has no option {k!r}")
        if v is not None:
            setattr(cfg, k, v)
    return cfg


def _research_preset() -> TrainConfig:
    return TrainConfig(
        preset="research",
        size=128,
        resize="nearest",
        loss="dice",
        learning_rate=1e-3,
        lr_schedule="constant",
        batch_size=8,
        shuffle_buffer=100,
        epochs=100,
        patience=10,
        bn_momentum=0.99,
        precision="float32",
        augment=Augment.off(),
    )


def _default_preset() -> TrainConfig:
    # 256 px keeps small dents visible; base width 16 (~515k parameters) runs about twice the epochs of
    # the research width in the same time and scored higher on car-damage val. Patience 40 over up to
    # 400 epochs: with patience 15 runs stopped at ~4 of their 10 minutes, still improving; mirror
    # averaging (tta) added 0.02 mean Dice on car-damage val. The weights' moving average (--ema 0.99) gave
    # about the same car-damage mean over 3 seeds (0.588 vs 0.581, less spread) but lagged the fast-learning
    # 3-minute demo run (mean Dice 0.76 vs 0.87), so it stays an option (docs/RESULTS.md)
    # lr_schedule "auto": with a time limit, the full rate for half of it, then a cosine down to 1e-5 over
    # the rest, and no early stopping (mean Dice on car-damage val over seeds 0-3, 10 minutes: flat_cosine
    # 0.600, cosine 0.592, plateau 0.574; demo 0.843 in 150 s); without one, plateau as before
    # prediction averages the image, its mirror and both at other sizes (fifteenth session: 7/8 and 9/8, +0.010
    # mean Dice on 47 held-out training photos, 5-fold, 31 up / 12 down; +0.008 on val over 10 seeds)
    # every training photo is drawn equally often, whatever dataset it comes from: drawing each dataset
    # equally often (--balance) scored 0.407 against 0.450 out of fold (fold 0 of 5 of the 149 photos of
    # car-damage + car-damage-extra-split/train, 10 minutes; whole cars 0.333 vs 0.414, close-ups 0.556
    # vs 0.521). keep "auto": a run annealed over a time limit saves its final weights, so its validation
    # images choose nothing and the scores it reports are not picked on them (docs/RESULTS.md)
    # encoder: the ImageNet-trained MobileNetV2 (shipped with viaseg) at a 3e-4 rate: out-of-fold mean Dice
    # 0.492 against 0.436 for the Xception-style encoder from scratch (fold 0 of the 149 photos, 600 s, seed 0;
    # paired +0.056, s.e. 0.043, better on 19 photos, worse on 10; global Dice 0.562 vs 0.466; both styles up);
    # at 1e-3 it scored 0.466 (docs/RESULTS.md)
    # sixteenth session (docs/RESULTS.md): tta_scales 1 and 5/4 instead of 7/8, 1, 9/8: the scale crops of
    # training show damage up to 1/0.6 larger than a whole photo does (a train/test scale gap): +0.011 mean Dice
    # out of fold on all 149 photos (5 folds, 120 s) and +0.014 / +0.024 (fold 0, 600 s, two recipes), at 2.5x
    # instead of 3x the compute. Tried and not adopted: --encoder-freeze early (47 epochs in 600 s instead of
    # 33; out of fold even, 0.506 vs 0.492 and 0.439 vs 0.452, but on the validation sets 0.565 / 0.394 against
    # 0.601 / 0.469); bn (0.409 out of fold); a 0.3 threshold (better out of fold after 10 minutes, worse after
    # 2: the threshold stays 0.5, `--threshold` sets it per run and the app's slider per photo)
    # seventeenth session (docs/RESULTS.md): each run calibrates its threshold on a fifth of its annotated
    # photos kept out of training for the first 3/4 of the run (train_calibrate). Out of fold the best fixed
    # threshold depends on the data and the budget: 0.1-0.2 after 600 s (fold 0; +0.07 over 0.5), 0.3 after
    # 120 s (5 folds; +0.030, s.e. 0.010; 0.15 there -0.008), while the demo model is best at 0.65 and loses
    # 0.08 at 0.2; in sample the best is 0.45 (the model has learnt those photos), so no fixed value and no
    # in-sample choice fits them all
    # twenty-eighth session (docs/RESULTS.md): the encoder is the ImageNet-trained EfficientNet-Lite0 (shipped
    # with viaseg) instead of MobileNetV2: out of fold 0.629 against 0.559 (fold 0, paired +0.070, s.e. 0.033)
    # and 0.545 against 0.469 (fold 1, +0.077, s.e. 0.033), both styles up on both folds, the epochs as fast
    # (66-67 in 600 s); the MobileNetV2 encoder stays (--encoder mobilenet_v2)
    # thirty-fifth session (docs/RESULTS.md): a step budget of 1000 (max_steps; about what 600 s bought on the
    # 2-core Xeon the recipe was chosen on): on a 2-core AMD EPYC 600 s bought 1600 steps a fold; out of fold
    # (5 folds) 1000 steps scored 0.565 against 0.562 (paired +0.003, s.e. 0.010; global 0.619 / 0.610): the
    # same quality in 37 % less time, and the same recipe on any machine
    return TrainConfig(
        preset="default",
        encoder="efficientnet_lite0",
        learning_rate=3e-4,
        base_width=16,
        epochs=400,
        patience=40,
        tta=True,
        tta_scales=(1.0, 1.25),
        lr_schedule="auto",
        balance_sources=False,
        keep="auto",
        calibrate=0.2,
        max_steps=1000,
    )
