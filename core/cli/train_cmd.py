"""``viaseg train DATASET --out RUN_DIR``: train a U-Net, one line per epoch, Ctrl-C stops cleanly.

TensorFlow is imported only when the command runs (``viaseg check`` never pays for it).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time

from .argtypes import (
    jitter,
    momentum,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    scale_range,
    share,
)
from .init_from import follow_init_model
from .outputs import check_run_dir


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a U-Net on a dataset",
        description="Train a U-Net on DATASET (a folder with train/val splits, a VIA file, or DIR:split). "
        "Writes the run folder: model.keras, history.csv, curves.png, samples/, summary.json. "
        "Ctrl-C stops after the current batch and keeps the best model.",
    )
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write (a new or empty one)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="train into a RUN_DIR that holds an earlier run (its model and files are replaced)",
    )
    p.add_argument(
        "--val",
        action="append",
        default=[],
        metavar="DATASET",
        help="validation data (default: the dataset's val split, else a seeded 20%% of the images); "
        "repeatable: the first is validated on while training, every one is scored and reported "
        "separately in summary.json",
    )
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from this viaseg model's weights (fine-tune an earlier run's model.keras) "
        "instead of random ones; the run keeps that model's network (its base width and norm) and, unless "
        "given here, its size, batch, rate, loss and augmentation",
    )
    add_recipe_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def add_recipe_options(p) -> None:
    """The options that make a training recipe (shared by ``viaseg train`` and ``viaseg crossval``)."""
    from ..ml.presets import PRESETS

    p.add_argument("--preset", choices=PRESETS, default="default")
    p.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="DATASET",
        help="more training data (repeatable); a dataset folder with its own val split adds that "
        "split as a further, separately reported validation set",
    )
    p.add_argument(
        "--balance",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw each training source (DATASET and each --extra) equally often, not each image "
        "(default: the preset's choice; the default preset draws every photo equally often)",
    )
    _add_schedule_options(p)
    _add_network_options(p)
    _add_input_options(p)
    _add_stopping_options(p)
    _add_tta_options(p)


def _add_schedule_options(p) -> None:
    """How long and how fast the run learns, and which weights it keeps."""
    from ..ml.presets import KEEP, LR_SCHEDULES

    p.add_argument(
        "--keep",
        choices=KEEP,
        help="the weights saved: best = the best validation epoch's, last = the final ones, auto = "
        "last when the rate anneals over a --time-limit, else best (default: the preset's)",
    )
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float, help="learning rate")
    p.add_argument(
        "--decoder-lr-mult",
        type=positive_float,
        metavar="X",
        help="with the MobileNetV2 encoder: the layers outside it (the decoder) learn at X times --lr "
        "(default 1: one rate)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="plateau: halve on a val Dice plateau; cosine: anneal to 1e-5 over the --time-limit when "
        "given (the run then uses all of it: no early stopping), else over the epochs; flat_cosine: the "
        "full rate for the first half, then that cosine over the second; auto (the default preset's): "
        "flat_cosine with a --time-limit, else plateau",
    )
    p.add_argument(
        "--ema",
        type=momentum,
        metavar="MOMENTUM",
        help="keep, evaluate and save an exponential moving average of the weights with this momentum "
        "(e.g. 0.99; default 0 = off)",
    )


def _add_network_options(p) -> None:
    """The network, its inputs and their augmentation."""
    from ..ml.presets import ENCODER_FREEZE, ENCODERS, LOSSES, NORMS, PRECISIONS

    p.add_argument("--size", type=positive_int, help="training size in pixels (a multiple of 16)")
    p.add_argument(
        "--crop",
        type=non_negative_int,
        metavar="PX",
        help="train on random PX x PX windows of the --size images (a multiple of 16; about "
        "(PX/size)^2 of the compute per step) and validate / predict on whole images; 0 = whole images",
    )
    p.add_argument("--loss", choices=LOSSES)
    p.add_argument("--bn-momentum", type=momentum)
    p.add_argument("--norm", choices=NORMS)
    p.add_argument(
        "--base-width", type=positive_int, help="U-Net base width (32 = the research model; 8 = tiny)"
    )
    p.add_argument(
        "--encoder",
        choices=ENCODERS,
        help="xception: the research project's encoder, trained from random weights | mobilenet_v2: an "
        "ImageNet-trained MobileNetV2 | efficientnet_lite0: an ImageNet-trained EfficientNet-Lite0 (both "
        "shipped with viaseg, no download)",
    )
    p.add_argument(
        "--encoder-freeze",
        choices=ENCODER_FREEZE,
        help="with the MobileNetV2 encoder: none (all of it learns) | bn (its batch norms keep ImageNet's "
        "statistics) | early (its layers at 1/2..1/8 of the size, batch norms included, keep their weights: "
        "faster steps)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto (default): mixed_float16 where TensorFlow sees a GPU (float16 compute, float32 "
        "weights, loss and sigmoid head), float32 on a CPU | float32 | mixed_float16 | mixed_bfloat16 "
        "(on this project's CPUs bfloat16 was no faster than float32: docs/RESULTS.md)",
    )
    p.add_argument(
        "--threshold",
        type=probability,
        help="the probability above which a pixel is damage, stored with the model (predict, evaluate and the "
        "app use it; each can still override it); default: the preset's, or the calibrated one (--calibrate). "
        "Giving one switches calibration off",
    )
    p.add_argument(
        "--calibrate",
        type=share,
        metavar="SHARE",
        help="keep this share of the annotated training photos out of the first 3/4 of the run, choose the "
        "threshold on them (best mean Dice per image, 0.1-0.7), then train on them too; 0 = off "
        "(default: the preset's; the default preset: 0.2, the research preset: off)",
    )


def _add_input_options(p) -> None:
    """How training photos are reduced and augmented."""
    p.add_argument("--resize", choices=["area", "bilinear", "nearest"])
    p.add_argument("--no-augment", action="store_true", help="switch every augmentation off")
    p.add_argument(
        "--sharp-crops",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="decode the training photos at the size divided by the smallest crop scale (at most twice the "
        "size), so that scale crops are cut from real pixels, not enlarged (default: the preset's)",
    )
    p.add_argument(
        "--scale",
        type=scale_range,
        metavar="MIN,MAX",
        help="random crops of MIN..MAX of the photo's side, resized to the training size (over 1 zooms out, "
        "the photo smaller with black around it); default: the preset's 0.6,1",
    )
    p.add_argument(
        "--colour-jitter",
        type=jitter,
        metavar="B,C,S[,H]",
        help="brightness, contrast and saturation jitter (and hue: a share of the colour circle) of the "
        "training photos; default: the preset's 0.15,0.2,0.2,0",
    )
    p.add_argument(
        "--blur",
        type=non_negative_float,
        metavar="SIGMA",
        help="blur each training photo by a Gaussian of sigma uniform in 0..SIGMA pixels of the training size "
        "(default: the preset's 0, none)",
    )


def _add_stopping_options(p) -> None:
    """When training stops, and the machine it runs on."""
    from ..ml.presets import MONITORS, STRATEGIES

    p.add_argument("--patience", type=positive_int, help="early-stopping patience in epochs")
    p.add_argument(
        "--monitor",
        choices=MONITORS,
        help="the validation score that picks the best epoch: hard_dice = mean per-image Dice of the "
        "thresholded prediction (what 'viaseg evaluate' reports), soft_dice = its soft version; "
        "default: the preset's choice",
    )
    p.add_argument(
        "--time-limit", type=positive_float, metavar="SECONDS", help="stop after this much training time"
    )
    p.add_argument(
        "--max-steps",
        type=non_negative_int,
        metavar="N",
        help="with --time-limit, also stop after N training steps (or 40 passes over the photos, if more), "
        "the rate schedule following whichever of the time and the steps is further along; 0: time alone "
        "(default: the preset's; the default preset's 1000 steps take about 6 minutes on a 2-core CPU)",
    )
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument("--threads", type=positive_int, help="TensorFlow threads")
    p.add_argument(
        "--ensemble",
        type=positive_int,
        metavar="K",
        help="train K networks one after another, each for 1/K of --time-limit with its own seed, and save "
        "their average as the model (RUN/member_k/ holds each; prediction costs K networks); default 1",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="default: one device; mirrored: every GPU of this machine; multiworker: several machines "
        "(tf.distribute.MultiWorkerMirroredStrategy), each running this same command with its own "
        "TF_CONFIG; the chief (task index 0) writes the run folder, the others nothing (docs/gpu.md)",
    )
    p.add_argument("--cache-dir", help="keep decoded images here, keyed by file content (faster re-runs)")


def _add_tta_options(p) -> None:
    """How the saved model averages at prediction."""
    from .predict_cmd import parse_scales

    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the saved model averages each image with its mirror image at prediction "
        "(and the run is scored that way); default: the preset's choice",
    )
    p.add_argument(
        "--tta-scales",
        type=parse_scales,
        default=None,
        metavar="S,S,...",
        help="at prediction the saved model averages the network on the image resized by each of these "
        "factors (1 = its own size), e.g. 1,1.25 (2.6x the compute of 1 alone); the app runs it once, at their "
        "mean; default: the preset's choice (1,1.25)",
    )


def _config(args):
    from ..ml.pipeline import Augment
    from ..ml.presets import preset

    vals = list(getattr(args, "val", None) or [])
    cfg = preset(
        args.preset,
        dataset=getattr(args, "dataset", None),
        out_dir=args.out,
        val=vals[0] if len(vals) == 1 else (vals or None),
        extra_train=list(args.extra) or None,
        balance_sources=args.balance,
        keep=args.keep,
        init_from=getattr(args, "init_from", None),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        decoder_lr_mult=getattr(args, "decoder_lr_mult", None),
        lr_schedule=args.lr_schedule,
        ema=args.ema,
        size=args.size,
        crop=args.crop,
        sharp_crops=getattr(args, "sharp_crops", None),
        loss=args.loss,
        bn_momentum=args.bn_momentum,
        norm=args.norm,
        base_width=args.base_width,
        encoder=args.encoder,
        encoder_freeze=args.encoder_freeze,
        threshold=args.threshold,
        precision=args.precision,
        resize=args.resize,
        patience=args.patience,
        monitor=args.monitor,
        time_limit_s=args.time_limit,
        max_steps=getattr(args, "max_steps", None),
        seed=args.seed,
        threads=args.threads,
        ensemble=getattr(args, "ensemble", None),
        strategy=args.strategy,
        cache_dir=args.cache_dir,
        tta=args.tta,
        tta_scales=args.tta_scales,
    )
    if args.no_augment:
        cfg.augment = Augment.off()
    elif getattr(args, "scale", None) is not None:
        lo, hi = args.scale
        cfg.augment = dataclasses.replace(cfg.augment, scale_crop=True, min_scale=lo, max_scale=hi)
    if not args.no_augment and getattr(args, "colour_jitter", None) is not None:
        b, c, sat, *h = args.colour_jitter
        cfg.augment = dataclasses.replace(
            cfg.augment, color=True, brightness=b, contrast=c, saturation=sat, hue=h[0] if h else 0.0
        )
    if not args.no_augment and getattr(args, "blur", None) is not None:
        cfg.augment = dataclasses.replace(cfg.augment, color=True, blur=args.blur)
    if getattr(args, "calibrate", None) is not None:
        cfg.calibrate = args.calibrate
    elif args.threshold is not None:
        cfg.calibrate = 0.0  # the user chose the threshold
    return cfg


def _fmt(metrics: dict) -> str:
    keys = [
        "loss",
        "dice",
        "iou",
        "accuracy",
        "val_loss",
        "val_dice",
        "val_hard_dice",
        "val_iou",
        "val_accuracy",
    ]
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)


class _Printer:
    def __init__(self, quiet: bool, out=None, err=None):
        # streams looked up per call, not bound at import (a replaced sys.stdout would be a closed file later)
        self.quiet, self.out, self.err = quiet, out or sys.stdout, err or sys.stderr
        self.bar_shown = False
        self.part: tuple[int, int] | None = None  # (k, n) while an ensemble's network k of n trains

    def _clear_bar(self):
        if self.bar_shown:
            self.err.write("\r" + " " * 70 + "\r")
            self.err.flush()
            self.bar_shown = False

    def __call__(self, ev) -> None:
        from ..ml import train_events as E

        if isinstance(ev, E.Started):
            self.part = getattr(ev, "part", None)
            budget = getattr(ev, "step_budget", None)
            print(
                f"training on {ev.n_train} images, validating on {ev.n_val} ({ev.val_source}); "
                f"up to {ev.epochs} epochs of {ev.steps_per_epoch} batches"
                + (f", at most {budget} steps (--max-steps)" if budget else "")
                + f" -> {ev.run_dir}",
                file=self.out,
            )
            device = getattr(ev, "device", "")
            if device:
                precision = getattr(ev, "precision", "")
                print(f"device: {device}" + (f", {precision}" if precision else ""), file=self.out)
            for s in ev.skipped:
                print(f"warning: skipped {s}", file=self.out)
            for note in ev.notes:
                print(f"note: {note}", file=self.out)
            if ev.excluded_duplicates:
                print(
                    "left out of validation (also in training): " + ", ".join(ev.excluded_duplicates),
                    file=self.out,
                )
        elif isinstance(ev, E.BatchEnd) and not self.quiet and self.err.isatty():
            n = max(ev.steps, 1)
            done = int(20 * (ev.step + 1) / n)
            self.err.write(
                f"\repoch {ev.epoch + 1} [{'#' * done}{'.' * (20 - done)}] "
                f"{ev.step + 1}/{n} loss {ev.loss:.4f}"
            )
            self.err.flush()
            self.bar_shown = True
        elif isinstance(ev, E.EpochEnd):
            self._clear_bar()
            print(
                f"epoch {ev.epoch + 1}/{ev.epochs}  {ev.seconds:5.1f}s  {_fmt(ev.metrics)}",
                file=self.out,
                flush=True,
            )
        elif isinstance(ev, E.Finished) and self.part:
            self._clear_bar()  # an ensemble: no one epoch of it is "best"
            print(
                f"done ({ev.reason}): {self.part[1]} networks averaged; model: {ev.model_path}", file=self.out
            )
        elif isinstance(ev, E.Finished):
            self._clear_bar()
            m = ev.best_metrics
            hard = f", val_hard_dice {m['val_hard_dice']:.4f}" if "val_hard_dice" in m else ""
            print(
                f"done ({ev.reason}): best epoch {ev.best_epoch + 1}, val_dice "
                f"{m.get('val_dice', m.get('dice', float('nan'))):.4f}{hard}; model: {ev.model_path}",
                file=self.out,
            )
        elif isinstance(ev, E.Failed):
            self._clear_bar()
            print(f"viaseg train: error: {ev.message}", file=self.err)


def run(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    from ..ml.train import train
    from ..ml.train_calibrate import threshold_line

    check_run_dir(args)
    cfg = _config(args)
    if cfg.init_from:
        cfg = follow_init_model(cfg, args)
    stop = {"asked": 0.0}

    def on_sigint(signum, frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = time.time()
        print("\nstopping after this batch (Ctrl-C again to abort without saving)...", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = train(cfg, on_event=_Printer(args.quiet), should_stop=lambda: bool(stop["asked"]))
    finally:
        signal.signal(signal.SIGINT, old)
    if not result.ok:
        return 1
    s = result.summary
    print(
        f"val hard Dice: mean {s['val_dice']:.4f}, global {s['val_global_dice']:.4f}; IoU mean "
        f"{s['val_iou']:.4f}, global {s['val_global_iou']:.4f} ({s['n_val']} image{'' if s['n_val'] == 1 else 's'}, {s['evaluated_on']})"
    )
    print(threshold_line(s))
    for row in s.get("val_sets", [])[1:]:

        def f(v):
            return "n/a" if v is None else f"{v:.4f}"

        print(
            f"  {row['name']}: mean Dice {f(row['mean_dice'])}, global {f(row['global_dice'])} "
            f"({row['n_images']} images)"
        )
    return 0
