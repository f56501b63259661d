"""Training data: a dataset split -> numpy arrays (decoded once) -> ``tf.data`` pipelines.

Stage 1 (numpy, :func:`load_arrays`): each image is decoded once (EXIF orientation applied, RGB, by
``imageio.read_image``), resized to the training size with ``area`` / ``bilinear`` / ``nearest`` interpolation
and kept as ``uint8``; its mask is rasterized *directly at the training size* from the region geometry (never a
full-size mask resized). Decoding runs on a thread pool (OpenCV releases the GIL). With ``cache_dir``, the
resized image is stored on disk keyed by the SHA-256 of the file's bytes, so a second run skips decoding.
Unreadable images are skipped with a warning naming the file; images without regions are negatives (empty
mask) unless ``include_empty=False``.

Stage 2 (TensorFlow, :func:`train_dataset` / :func:`eval_dataset`): ``from_tensor_slices -> cache -> shuffle
-> repeat -> augment -> batch -> prefetch``. Pixels are scaled to [0, 1] exactly once, in the map after the
cache (arrays stay ``uint8`` in memory). Augmentations act jointly on image and mask and are each switchable.
Every random draw is a *stateless* op seeded from a seeded ``Dataset.random`` stream, so a run is repeatable
under its seed.

Validation hygiene: training leaves validation copies of training images out of its metrics by the one copy
rule (``checks.check_copies.copies_of``) and reports them. :func:`split_entries` makes a seeded train/val split by image when a dataset has no ``val`` split.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..annotation.project import ImageEntry
from ..base.errors import ImageReadError
from .presets import Augment

log = logging.getLogger("viaseg.pipeline")

RESIZE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
CACHE_VERSION = 1


@dataclass
class Arrays:
    """Decoded, resized images and their masks, one row per usable image."""

    images: np.ndarray  # N x H x W x 3 uint8
    masks: np.ndarray  # N x H x W uint8 (0/1)
    names: list[str] = field(default_factory=list)
    file_hashes: list[str] = field(default_factory=list)
    pixel_hashes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    # which training source (dataset) each row came from, 0 = the main dataset; empty = all from one source
    sources: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, keep: Iterable[int]) -> Arrays:
        keep = list(keep)
        return Arrays(
            self.images[keep],
            self.masks[keep],
            [self.names[i] for i in keep],
            [self.file_hashes[i] for i in keep],
            [self.pixel_hashes[i] for i in keep],
            list(self.skipped),
            [self.sources[i] for i in keep] if self.sources else [],
        )

    def source_of(self, i: int) -> int:
        return self.sources[i] if self.sources else 0

    @staticmethod
    def empty(size) -> Arrays:
        h, w = _size2(size)
        return Arrays(np.zeros((0, h, w, 3), np.uint8), np.zeros((0, h, w), np.uint8))

    def resized(self, size) -> Arrays:
        """The same rows at ``size`` (images area-resized, masks nearest); itself when already that size."""
        h, w = _size2(size)
        if self.images.shape[1:3] == (h, w):
            return self
        images = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in self.images])
        masks = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in self.masks])
        return dataclasses.replace(self, images=images.reshape(-1, h, w, 3), masks=masks.reshape(-1, h, w))

    @staticmethod
    def concat(parts: list[Arrays], tag_sources: bool = False) -> Arrays:
        """Rows of ``parts`` in order; ``tag_sources``: row sources are the index of the part they came from."""
        skipped = [s for p in parts for s in p.skipped]
        tagged = [(k, p) for k, p in enumerate(parts) if len(p)]
        if not tagged:
            raise ValueError("nothing to concatenate")
        if tag_sources:
            sources = [k for k, p in tagged for _ in range(len(p))]
        else:
            sources = (
                [p.source_of(i) for _, p in tagged for i in range(len(p))]
                if any(p.sources for _, p in tagged)
                else []
            )
        return Arrays(
            np.concatenate([p.images for _, p in tagged]),
            np.concatenate([p.masks for _, p in tagged]),
            [n for _, p in tagged for n in p.names],
            [h for _, p in tagged for h in p.file_hashes],
            [h for _, p in tagged for h in p.pixel_hashes],
            skipped,
            sources,
        )


def _size2(size) -> tuple[int, int]:
    """``size`` (int or (h, w)) -> (h, w)."""
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _decode(path: Path, data: bytes, hw: tuple[int, int], resize: str, cache_dir: Path | None):
    """-> (resized uint8 image, pixel hash, (src_w, src_h)). Uses / fills the disk cache."""
    from ..imaging.imageio import read_image

    fhash = hashlib.sha256(data).hexdigest()
    cfile = None
    if cache_dir is not None:
        cfile = cache_dir / f"{fhash[:40]}-{hw[0]}x{hw[1]}-{resize}-v{CACHE_VERSION}.npz"
        if cfile.exists():
            try:
                with np.load(cfile) as z:
                    return z["image"], str(z["pixel_hash"]), tuple(int(v) for v in z["src_size"])
            except Exception as exc:  # a bad cache file is rebuilt, never fatal
                log.warning("%s: ignoring unreadable cache file (%s)", cfile, exc)
    # For the research-faithful 'nearest' mode decode at full size; otherwise let libjpeg decode reduced.
    max_side = None if resize == "nearest" else 2 * max(hw)
    full = read_image(path) if max_side is None else None
    if full is not None:
        img, src = full, (full.shape[1], full.shape[0])
    else:
        from ..imaging.imageio import image_size

        src = image_size(path)
        img = read_image(path, max_side=max_side)
    phash = hashlib.sha256(np.ascontiguousarray(img).tobytes() + str(img.shape).encode()).hexdigest()
    small = cv2.resize(img, (hw[1], hw[0]), interpolation=RESIZE_MODES[resize])
    if cfile is not None:
        try:
            assert cache_dir is not None  # cfile lies in it
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cfile.with_name(f".tmp-{os.getpid()}-{cfile.name}")
            with open(tmp, "wb") as f:
                np.savez(f, image=small, pixel_hash=np.str_(phash), src_size=np.array(src))
            os.replace(tmp, cfile)
        except OSError as exc:
            log.warning("%s: cannot write cache (%s)", cache_dir, exc)
    return small, phash, src


def load_arrays(
    entries: Iterable[ImageEntry],
    size=128,
    resize: str = "area",
    include_empty: bool = True,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Arrays:
    """Decode and resize every entry's image once, rasterize its mask at ``size`` (int or (h, w)).

    Entries whose image cannot be read are skipped; each skip is passed to ``on_warning`` (and logged) as
    ``"<file>: <problem>"`` and listed in ``Arrays.skipped``. Entries without regions become empty masks,
    or are left out (and listed as skipped) with ``include_empty=False``.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    hw = _size2(size)
    cache = Path(cache_dir) if cache_dir is not None else None
    entries = list(entries)
    skipped: list[tuple[str, str]] = []

    def warn(name: str, reason: str) -> None:
        skipped.append((name, reason))
        msg = f"{name}: {reason}"
        if on_warning is not None:
            on_warning(msg)
        else:
            log.warning("skipping %s", msg)

    todo = []
    for e in entries:
        if not e.regions and not include_empty:
            warn(str(e.path), "no regions (left out: negatives excluded by option)")
        else:
            todo.append(e)
    n_threads = max(1, threads or min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(n_threads) as pool:
        results = list(pool.map(functools.partial(_load_entry, hw=hw, resize=resize, cache=cache), todo))
    imgs, masks, names, fh, ph = [], [], [], [], []
    for e, res in zip(todo, results, strict=True):
        if isinstance(res, Exception):
            warn(str(e.path), getattr(res, "problem", str(res)))
            continue
        imgs.append(res[0])
        masks.append(res[1])
        names.append(e.filename)
        fh.append(res[2])
        ph.append(res[3])
    images = np.stack(imgs) if imgs else np.zeros((0, *hw, 3), np.uint8)
    mask_arr = np.stack(masks) if masks else np.zeros((0, *hw), np.uint8)
    return Arrays(images, mask_arr, names, fh, ph, skipped)


def _load_entry(entry: ImageEntry, hw: tuple[int, int], resize: str, cache: Path | None):
    """One entry's ``(image, mask, file hash, pixel hash)``, or the ``ImageReadError`` saying why not."""
    from ..annotation.raster import rasterize

    path = entry.path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ImageReadError(path, "no such file")
    except OSError as exc:
        return ImageReadError(path, f"cannot read file ({exc.strerror or exc})")
    try:
        img, phash, src = _decode(path, data, hw, resize, cache)
    except ImageReadError as exc:
        return exc
    mask = rasterize(entry.regions, src_size=src, out_size=(hw[1], hw[0]))
    return img, (mask > 0).astype(np.uint8), hashlib.sha256(data).hexdigest(), phash


def split_entries(entries: list, val_fraction: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """A seeded split by image: ``(train, val)``; at least one image in each when there are two or more."""
    entries = list(entries)
    order = list(range(len(entries)))
    random.Random(seed).shuffle(order)
    if len(entries) < 2:
        return entries, []
    n_val = min(len(entries) - 1, max(1, round(len(entries) * val_fraction)))
    val_idx = set(order[:n_val])
    return [e for i, e in enumerate(entries) if i not in val_idx], [
        e for i, e in enumerate(entries) if i in val_idx
    ]


# ------------------------------------------------------------------------------------------- TensorFlow part


def _to_float(image, mask):
    import tensorflow as tf

    # the single place pixels are scaled: uint8 0..255 -> float32 0..1
    return tf.cast(image, tf.float32) / 255.0, tf.cast(mask, tf.float32)[..., None]


def _rotation_transform(angle, h, w):
    import tensorflow as tf

    c, s = tf.cos(angle), tf.sin(angle)
    cx, cy = (tf.cast(w, tf.float32) - 1) / 2, (tf.cast(h, tf.float32) - 1) / 2
    # output (x, y) samples input (c*(x-cx) - s*(y-cy) + cx, s*(x-cx) + c*(y-cy) + cy)
    return tf.stack([c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, 0.0, 0.0])[None]


def _blur(image, sigma, max_sigma: float, side: int):
    """``image`` (H x W x 3 float, ``side`` = min(H, W)) blurred by a Gaussian of ``sigma`` pixels (a tensor, at
    most ``max_sigma``; near 0: unchanged), borders reflected."""
    import tensorflow as tf

    # the kernel reaches 3 sigma (less than the image's side: reflected borders need that)
    r = max(1, min(int(np.ceil(3.0 * max_sigma)), side - 1))
    x = tf.range(-r, r + 1, dtype=tf.float32)
    k = tf.exp(-(x**2) / (2.0 * tf.maximum(sigma, 1e-3) ** 2))
    k = k / tf.reduce_sum(k)
    kx = tf.tile(tf.reshape(k, [1, 2 * r + 1, 1, 1]), [1, 1, 3, 1])
    ky = tf.reshape(kx, [2 * r + 1, 1, 3, 1])
    out = tf.pad(image[None], [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    out = tf.nn.depthwise_conv2d(out, kx, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(out, ky, [1, 1, 1, 1], "VALID")[0]


def make_augment_fn(aug: Augment, hw: tuple[int, int], crop: int | None = None):
    """``fn(image float HxWx3, mask float HxWx1, seed int64[2]) -> (image, mask)``, stateless. With ``crop``
    the result is a random ``crop`` x ``crop`` window of the augmented image (at the same pixel scale)."""
    import tensorflow as tf

    h, w = hw

    def fn(image, mask, seed):
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
        if aug.flip:
            flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
            image = tf.where(flip, tf.image.flip_left_right(image), image)
            mask = tf.where(flip, tf.image.flip_left_right(mask), mask)
        if aug.scale_crop and (aug.min_scale < 1.0 or aug.max_scale > 1.0):
            s = tf.random.stateless_uniform([], seeds[1], aug.min_scale, max(aug.min_scale, aug.max_scale))
            off = tf.random.stateless_uniform([2], seeds[2], 0.0, 1.0) * (1.0 - s)
            box = tf.stack([off[0], off[1], off[0] + s, off[1] + s])[None]
            idx = tf.zeros([1], tf.int32)
            image = tf.image.crop_and_resize(image[None], box, idx, [h, w], method="bilinear")[0]
            mask = tf.image.crop_and_resize(mask[None], box, idx, [h, w], method="nearest")[0]
        if aug.rotate and aug.max_degrees > 0:
            rad = aug.max_degrees * np.pi / 180.0
            angle = tf.random.stateless_uniform([], seeds[3], -rad, rad)
            t = _rotation_transform(angle, h, w)
            for_img = dict(output_shape=[h, w], fill_value=0.0, fill_mode="REFLECT")
            image = tf.raw_ops.ImageProjectiveTransformV3(
                images=image[None], transforms=t, interpolation="BILINEAR", **for_img
            )[0]
            mask = tf.raw_ops.ImageProjectiveTransformV3(
                images=mask[None], transforms=t, interpolation="NEAREST", **for_img
            )[0]
        if aug.color:
            if aug.brightness:
                image = tf.image.stateless_random_brightness(image, aug.brightness, seeds[4])
            if aug.contrast:
                image = tf.image.stateless_random_contrast(
                    image, 1 - aug.contrast, 1 + aug.contrast, seeds[5]
                )
            if aug.saturation:
                image = tf.image.stateless_random_saturation(
                    image, 1 - aug.saturation, 1 + aug.saturation, seeds[6]
                )
            if aug.hue or aug.blur:  # seeds of their own: the other draws stay as they were without them
                more = tf.random.experimental.stateless_split(seeds[6], 3)
                if aug.hue:
                    image = tf.image.stateless_random_hue(image, min(0.5, aug.hue), more[1])
                if aug.blur:
                    sigma = tf.random.stateless_uniform([], more[2], 0.0, aug.blur)
                    image = _blur(image, sigma, aug.blur, min(h, w))
            image = tf.clip_by_value(image, 0.0, 1.0)
        if crop:
            off = tf.random.stateless_uniform([2], seeds[7], 0.0, 1.0)
            y0 = tf.cast(off[0] * (h - crop + 1), tf.int32)
            x0 = tf.cast(off[1] * (w - crop + 1), tf.int32)
            image = image[y0 : y0 + crop, x0 : x0 + crop]
            mask = mask[y0 : y0 + crop, x0 : x0 + crop]
            image.set_shape([crop, crop, 3])
            mask.set_shape([crop, crop, 1])
            return image, mask
        image.set_shape([h, w, 3])
        mask.set_shape([h, w, 1])
        return image, mask

    return fn


def make_sharp_crop_fn(aug: Augment, hw: tuple[int, int], src_hw: tuple[int, int]):
    """``fn(image uint8 HxWx3, mask uint8 HxW, seed int64[2]) -> (image, mask)`` at ``hw``, stateless: a random
    square crop of ``aug.min_scale..aug.max_scale`` (<= 1) of the side of a photo decoded at ``src_hw`` (larger
    than ``hw``), reduced to ``hw`` by area averaging (as the prediction's ``cv2.INTER_AREA``), its mask by
    nearest pixels: the crop keeps the photo's own detail where enlarging a crop of a ``hw`` photo blurs it
    (``TrainConfig.sharp_crops``)."""
    import tensorflow as tf

    if not (aug.scale_crop and aug.max_scale <= 1.0):
        raise ValueError("sharp crops need scale crops that cut in (max scale <= 1)")
    h, w = hw
    sh, sw = src_hw

    def fn(image, mask, seed):
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        s = tf.random.stateless_uniform([], seeds[0], aug.min_scale, max(aug.min_scale, aug.max_scale))
        off = tf.random.stateless_uniform([2], seeds[1], 0.0, 1.0) * (1.0 - s)
        ch = tf.clip_by_value(tf.cast(tf.round(s * sh), tf.int32), 1, sh)
        cw = tf.clip_by_value(tf.cast(tf.round(s * sw), tf.int32), 1, sw)
        y0 = tf.minimum(tf.cast(off[0] * sh, tf.int32), sh - ch)
        x0 = tf.minimum(tf.cast(off[1] * sw, tf.int32), sw - cw)
        small = tf.image.resize(image[y0 : y0 + ch, x0 : x0 + cw], [h, w], method="area")
        image = tf.cast(tf.clip_by_value(tf.round(small), 0.0, 255.0), tf.uint8)
        mask = tf.image.resize(mask[y0 : y0 + ch, x0 : x0 + cw, None], [h, w], method="nearest")[..., 0]
        image.set_shape([h, w, 3])
        mask.set_shape([h, w])
        return image, mask

    return fn


def source_weights(arrays: Arrays, balance: bool) -> dict[int, float]:
    """Sampling weight of each training source: equal per source when ``balance`` (a 49-photo dataset is
    drawn as often as a 100-photo one), else proportional to its number of images (plain shuffling)."""
    counts: dict[int, int] = {}
    for i in range(len(arrays)):
        counts[arrays.source_of(i)] = counts.get(arrays.source_of(i), 0) + 1
    if not balance:
        return {k: n / len(arrays) for k, n in counts.items()}
    return {k: 1.0 / len(counts) for k in counts}


def train_dataset(
    arrays: Arrays,
    batch_size: int = 8,
    seed: int = 0,
    augment: Augment | None = None,
    shuffle_buffer: int | None = None,
    balance: bool = False,
    crop: int | None = None,
    out_size=None,
    held: np.ndarray | None = None,
    release=None,
):
    """Infinite training ``tf.data.Dataset`` of ``(image float32 [0,1], mask float32 0/1 HxWx1)`` batches.

    ``held`` (bool per row) with ``release`` (a boolean ``tf.Variable``): the held rows are drawn only once
    ``release`` is true (threshold calibration keeps them out of the first part of a run: train_calibrate).

    Use ``steps_per_epoch = steps_per_epoch(len(arrays), batch_size)`` with ``model.fit``. Order and
    augmentation are a function of ``seed`` only. ``crop``: each image is a random ``crop``-pixel square window
    of the (augmented) image, at the same scale. ``out_size`` (int or (h, w); None: the arrays' size): the
    size of the batches' images when the arrays are larger (``TrainConfig.sharp_crops``): each scale crop is
    cut from the arrays' pixels and reduced to it. ``balance`` with rows from several sources
    (``arrays.sources``): each source is shuffled on its own and every image is drawn from a source chosen
    with equal probability (``tf.data.Dataset.sample_from_datasets``).
    """
    import tensorflow as tf

    if not len(arrays):
        raise ValueError("no training images")
    augment = augment if augment is not None else Augment()
    src_hw = (int(arrays.images.shape[1]), int(arrays.images.shape[2]))
    hw = src_hw if out_size is None else _size2(out_size)
    if hw != src_hw and (crop or not (augment.scale_crop and augment.max_scale <= 1.0)):
        raise ValueError(
            f"training images of {src_hw[0]}x{src_hw[1]} for {hw[0]}x{hw[1]} batches need scale crops "
            "that cut in (max scale <= 1) and no crop windows"
        )
    ds = _shuffled_rows(arrays, seed, shuffle_buffer, balance, held, release)
    if hw != src_hw:  # the scale crop first, on the large uint8 photo: every later step works on small ones
        cut = make_sharp_crop_fn(augment, hw, src_hw)
        seeds = tf.data.Dataset.random(seed=seed + 1).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: cut(pair[0], pair[1], s), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        augment = dataclasses.replace(augment, scale_crop=False)
    ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if crop and not 16 <= crop <= min(int(hw[0]), int(hw[1])):
        raise ValueError(f"crop must be between 16 and the image size {hw[0]}x{hw[1]}, got {crop}")
    if augment.any or crop:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        fn = make_augment_fn(augment, (int(hw[0]), int(hw[1])), crop)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: fn(pair[0], pair[1], s), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _shuffled_rows(arrays: Arrays, seed: int, shuffle_buffer: int | None, balance: bool, held, release):
    """The training rows ``(image uint8, mask)``, shuffled and repeated for ever: one stream, or with
    ``balance`` one per source drawn with :func:`source_weights`; ``held`` rows only once ``release`` is true."""
    import tensorflow as tf

    weights = source_weights(arrays, balance)
    hold = np.zeros(len(arrays), bool) if held is None or release is None else np.asarray(held, bool)

    def gated(ds):
        """(image, mask, held) rows -> (image, mask), the held ones only once ``release`` is true."""
        if hold.any():
            ds = ds.filter(lambda image, mask, h: tf.logical_or(tf.logical_not(h), release.read_value()))
        return ds.map(lambda image, mask, h: (image, mask))

    if balance and len(weights) > 1:
        parts = []
        for k in sorted(weights):
            idx = [i for i in range(len(arrays)) if arrays.source_of(i) == k]
            part = tf.data.Dataset.from_tensor_slices(
                (arrays.images[idx], arrays.masks[idx], hold[idx])
            ).cache()
            buffer = min(shuffle_buffer or len(idx), len(idx))
            parts.append(
                gated(
                    part.shuffle(buffer, seed=seed + 7919 * (k + 1), reshuffle_each_iteration=True).repeat()
                )
            )
        return tf.data.Dataset.sample_from_datasets(parts, [weights[k] for k in sorted(weights)], seed=seed)
    buffer = shuffle_buffer or len(arrays)
    ds = tf.data.Dataset.from_tensor_slices((arrays.images, arrays.masks, hold)).cache()
    return gated(ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat())


def eval_dataset(arrays: Arrays, batch_size: int = 8):
    """Finite, ordered ``tf.data.Dataset`` of batches for validation / prediction (no augmentation)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((arrays.images, arrays.masks)).cache()
    ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, -(-n // batch_size))


def to_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 [0, 1] for ``model.predict`` outside tf.data."""
    return images.astype(np.float32) / 255.0
