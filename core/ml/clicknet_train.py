"""Training the click network (:mod:`.clicknet`) on annotated photos: ``viaseg clicknet`` and
``tests/perf/exp_clicknet.py`` share it.

Simulated clicks, as RITM trains (Sofiiuk et al. 2022): a window of a photo (the whole photo squared, a quarter of
the time, else a window 1.4-3x a region's size around it, jittered), the region's mask there as the target, a
first click drawn towards its interior; 60 % of the time also a plausible earlier mask (the map near the region
at a random level, the region grown or shrunk, discs added or taken) and 1-3 clicks in its largest errors; after
100 steps, half the batches replace those with the network's own masks and the clicks they call for.
Horizontal flips. BCE + Dice, Adam with a cosine schedule, batch 8.

:func:`fine_tune` starts from the shipped weights (or any file of :func:`.clicknet.save_weights`) and trains on a
project's own polygons: how a user makes the click network learn a defect it was not trained on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .clicknet import (
    WEIGHTS,
    S,
    bbox,
    build,
    full_window,
    guide_of,
    load_weights,
    save_weights,
    warp,
    zoom_window,
)
from .clicknet import WORK_SIDE as WORK_SIDE

MIN_REGION_PX = 8  # regions smaller than this (at the work size) are not trained on


# ------------------------------------------------------------------------------------------------ photos
def photo_of(
    image: np.ndarray, regions_masks: list[np.ndarray], prob: np.ndarray | None = None, **extra
) -> dict:
    """One training photo: ``image`` (RGB uint8, at most ``WORK_SIDE`` a side), the masks of its regions at that
    size, the map (uint8 0-255, that size) or None (empty)."""
    h, w = image.shape[:2]
    return dict(
        img=image,
        prob=np.zeros((h, w), np.uint8) if prob is None else prob,
        regs=[m for m in regions_masks if m.sum() >= MIN_REGION_PX],
        **extra,
    )


def photo_from_entry(entry, prob: np.ndarray | None = None, **extra) -> dict:
    """A project image (``ImageEntry``) as a training photo, reduced to at most ``WORK_SIDE`` a side. Raises
    ``ImageReadError`` naming the file when it cannot be read."""
    from ..annotation.raster import rasterize
    from ..imaging.imageio import read_image

    img = read_image(entry.path)
    h, w = img.shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    wh = (max(1, round(w * s)), max(1, round(h * s)))
    regs = [rasterize([g], (w, h), wh) > 0 for g in entry.regions if g.kind in AREA_KINDS]
    small = cv2.resize(img, wh, interpolation=cv2.INTER_AREA) if s < 1 else img
    if prob is not None:
        prob = cv2.resize(prob, wh, interpolation=cv2.INTER_LINEAR)
    return photo_of(small, regs, prob, name=entry.filename, path=str(entry.path), full_wh=(w, h), **extra)


AREA_KINDS = ("polygon", "rect", "circle", "ellipse")


@dataclass
class LoadReport:
    photos: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one message per photo left out, naming it


def load_photos(specs: list[str], default_split: str = "train") -> LoadReport:
    """The annotated photos of ``DATASET[:split]`` specs (no split given: ``default_split`` when the dataset has
    it, else every labelled split). Unreadable photos are left out with a message naming each."""
    from ..annotation.dataset import load_dataset, parse_spec

    rep = LoadReport()
    for spec in specs:
        _, split = parse_spec(spec)
        ds = load_dataset(spec)
        if split is not None:
            splits = [ds.split(split)]
        elif default_split in ds.splits and ds.splits[default_split].labeled:
            splits = [ds.splits[default_split]]
        else:
            splits = [s for s in ds.splits.values() if s.labeled]
        for sp in splits:
            photos_of(sp.entries, rep)
    return rep


def photos_of(entries, rep: LoadReport | None = None) -> LoadReport:
    """The training photos of ``entries`` that hold a region, added to ``rep`` (a new one when None);
    unreadable photos are left out with a message naming each."""
    from ..base.errors import ViasegError

    rep = rep if rep is not None else LoadReport()
    for entry in entries:
        if not entry.regions:
            continue
        try:
            d = photo_from_entry(entry)
        except (ViasegError, OSError, ValueError) as exc:
            rep.problems.append(f"{entry.path}: left out ({exc})")
            continue
        if d["regs"]:
            rep.photos.append(d)
    return rep


# ------------------------------------------------------------------------------------------------ samples
def _dist(mask: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]


def error_click(gt: np.ndarray, pred: np.ndarray, rng: np.random.Generator):
    """A click near the centre of the largest error (the protocol's, with some noise for training)."""
    best = None
    for err, positive in ((gt & ~pred, True), (pred & ~gt, False)):
        if err.any():
            d = _dist(err)
            k = int(rng.choice(np.flatnonzero(d >= 0.7 * d.max())))
            if best is None or d.flat[k] > best[0]:
                r, c = divmod(k, d.shape[1])
                best = (float(d.flat[k]), c + 0.5, r + 0.5, positive)
    return None if best is None else best[1:]


# ------------------------------------------------------------------------------------------------ training
def _corrupt(g: np.ndarray, prob_w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible earlier mask of region ``g``: the map near it at some level, or ``g`` grown or shrunk; then
    a few discs added or taken near it."""
    if rng.random() < 0.5:
        near = cv2.dilate(g.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(rng.integers(5, 40)))
        m = (prob_w >= rng.uniform(0.1, 0.6)) & (near > 0)
    else:
        r = int(rng.integers(2, 20))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        m = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(g.astype(np.uint8), k) > 0
    ys, xs = np.nonzero(cv2.dilate(g.astype(np.uint8), np.ones((15, 15), np.uint8)))
    for _ in range(int(rng.integers(0, 3))):
        j = int(rng.integers(len(xs)))
        disc = np.zeros(g.shape, np.uint8)
        cv2.circle(disc, (int(xs[j]), int(ys[j])), int(rng.integers(6, 30)), 1, -1)
        m = (m | (disc > 0)) if rng.random() < 0.5 else (m & (disc == 0))
    return m


def sample(photos: list[dict], items, rng: np.random.Generator, first_only: bool = False):
    i, j = items[int(rng.integers(len(items)))]
    d = photos[i]
    h, w = d["img"].shape[:2]
    if rng.random() < 0.25:
        win = full_window(w, h)
    else:
        x0, y0, side = zoom_window(bbox(d["regs"][j]), w, h, rng.uniform(1.4, 3.0))
        win = (x0 + rng.uniform(-0.15, 0.15) * side, y0 + rng.uniform(-0.15, 0.15) * side, side)
    img = warp(d["img"], win)
    pw = warp(d["prob"], win).astype(np.float32) / 255
    g = warp(d["regs"][j].astype(np.uint8), win) > 0
    if rng.random() < 0.5:
        img, pw, g = img[:, ::-1].copy(), pw[:, ::-1].copy(), g[:, ::-1].copy()
    if g.sum() < 4:
        return None
    dist = _dist(g).ravel() ** 1.5
    r, c = divmod(int(rng.choice(dist.size, p=dist / dist.sum())), S)
    clicks = [(c + 0.5, r + 0.5, True)]
    prev = np.zeros((S, S), bool)
    if first_only:  # the app's first click: the whole photo with no mask, or a zoom window with a coarse one
        if win[2] < max(w, h) and rng.random() < 0.6:
            prev = _corrupt(g, pw, rng)
            f = int(rng.choice([1, 2, 4, 8]))
            if (
                f > 1
            ):  # as coarse as the first look's mask (the whole photo at 256 px, warped into the window)
                small = cv2.resize(prev.astype(np.uint8), (S // f, S // f), interpolation=cv2.INTER_AREA)
                prev = cv2.resize(small, (S, S), interpolation=cv2.INTER_NEAREST) > 0
    elif rng.random() >= 0.4:
        prev = _corrupt(g, pw, rng)
        for _ in range(int(rng.integers(1, 4))):
            nc = error_click(g, prev, rng)
            if nc is None:
                break
            clicks.append(nc)
    return [img.astype(np.float32) / 255, pw, prev.astype(np.float32), clicks, g]


def batch(photos, items, n: int, rng, model=None, first_only: bool = False):
    out: list[list] = []
    while len(out) < n:
        s = sample(photos, items, rng, first_only)
        if s is not None:
            out.append(s)
    if model is not None and rng.random() < 0.5:  # RITM's iterative training: the network's own masks
        for _ in range(int(rng.integers(1, 4))):
            pred = model.predict_on_batch(
                [np.stack([o[0] for o in out]), np.stack([guide_of(o[1], o[2], o[3]) for o in out])]
            )[..., 0]
            for o, p in zip(out, pred >= 0.5, strict=True):
                nc = error_click(o[4], p, rng)
                if nc is not None:
                    o[3], o[2] = [*o[3], nc], p.astype(np.float32)
    x = np.stack([o[0] for o in out])
    g = np.stack([guide_of(o[1], o[2], o[3]) for o in out])
    return x, g, np.stack([o[4] for o in out]).astype(np.float32)[..., None]


# ------------------------------------------------------------------------------------------------ training
@dataclass
class Progress:
    step: int
    steps: int | None
    seconds: float
    loss: float


def train(
    photos: list[dict],
    seconds: float = 600.0,
    steps: int | None = None,
    init_from: str | Path | None = None,
    lr: float = 5e-4,
    batch_size: int = 8,
    seed: int = 0,
    first_only: bool = False,
    schedule_steps: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
):
    """Train the click network on ``photos`` (:func:`photo_of` dicts) for ``seconds`` or ``steps``; returns
    (the Keras model, steps taken). ``init_from``: a weights file to start from (else the ImageNet encoder).
    The rate follows a cosine over ``schedule_steps`` (default: ``steps``, else ``seconds`` / 0.55 s)."""
    import keras
    import tensorflow as tf

    from .unet import bce_dice_loss

    items = [(i, j) for i, d in enumerate(photos) for j in range(len(d["regs"]))]
    if not items:
        raise ValueError("no annotated region to train the click network on")
    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)
    model = build()
    if init_from is not None:
        load_weights(model, init_from)
    total = schedule_steps or steps or max(1, int(seconds / 0.55))
    sched = keras.optimizers.schedules.CosineDecay(lr, total, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=bce_dice_loss)
    t0, k, losses = time.time(), 0, []
    while (k < steps) if steps else (time.time() - t0 < seconds):
        if should_stop is not None and should_stop():
            break
        own = None if first_only or k <= 100 else model
        x, g, y = batch(photos, items, batch_size, rng, own, first_only)
        losses.append(float(model.train_on_batch([x, g], y)))
        k += 1
        if on_progress is not None and (k % 20 == 0 or k == 1):
            on_progress(Progress(k, steps, time.time() - t0, float(np.mean(losses[-20:]))))
    return model, k


def fine_tune(
    photos: list[dict],
    out: str | Path,
    seconds: float = 300.0,
    steps: int | None = None,
    init_from: str | Path = WEIGHTS,
    lr: float = 1e-4,
    seed: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    about: str = "",
) -> tuple[Path, int]:
    """Train from ``init_from`` (the shipped weights) on ``photos`` at a lower rate and store the result in
    ``out`` (a weights file the app and :class:`.clicknet.ClickNet` load); returns (``out``, steps taken)."""
    model, k = train(
        photos,
        seconds=seconds,
        steps=steps,
        init_from=init_from,
        lr=lr,
        seed=seed,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    return save_weights(model, out, about or f"click network fine-tuned from {init_from}, {k} steps"), k


# ------------------------------------------------------------------------------------------------ the app's job
@dataclass
class ClickNetResult:
    path: str
    steps: int
    photos: int
    regions: int
    left_out: list[str] = field(default_factory=list)


@dataclass
class ClickNetJob:
    """Fine-tune the click network on ``entries`` (``ImageEntry`` objects with their regions, as the app holds
    them: unsaved edits included) into ``out``: what the app runs in its training process (``job.run`` is what
    ``gui.train_child`` calls). Progress as ``BatchEnd`` events (epoch 0, ``steps`` 0 when the budget is time)."""

    entries: list
    out: str
    seconds: float = 300.0
    steps: int | None = None
    init_from: str | None = None  # None: the shipped weights
    seed: int = 0

    def run(self, on_event: Callable | None = None, should_stop: Callable[[], bool] | None = None):
        from .train_events import BatchEnd

        rep = photos_of(self.entries)
        photos, problems = rep.photos, rep.problems
        if not photos:
            raise ValueError("no annotated region to train the click network on")

        def progress(p: Progress) -> None:
            if on_event is not None:
                on_event(BatchEnd(step=p.step - 1, epoch=0, loss=p.loss, dice=0.0, steps=p.steps or 0))

        out, k = fine_tune(
            photos,
            self.out,
            seconds=self.seconds,
            steps=self.steps,
            init_from=self.init_from or WEIGHTS,
            seed=self.seed,
            on_progress=progress,
            should_stop=should_stop,
            about=f"click network fine-tuned in the app on {len(photos)} photos from {self.init_from or WEIGHTS}",
        )
        return ClickNetResult(str(out), k, len(photos), sum(len(d["regs"]) for d in photos), problems)
