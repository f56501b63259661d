"""Experiment (twenty-seventh session, issue 16): CutMix across the training photos, out of fold.

The default recipe's errors on whole cars are about how far a damage extends (docs/RESULTS.md, "Where the
whole-car errors are"), and every recipe change since the seventeenth session moved fold 0 by less than its
run-to-run spread. CutMix (Yun et al. 2019; for segmentation French et al. 2020) is a regularizer of a different
kind: with probability ``P`` a training photo gets a rectangle (side uniform in 0..1 of the photo's, anywhere)
cut from the next photo of its batch, the mask with it, so the network sees damage out of its usual context and
the two styles side by side in one picture. This runs ``viaseg crossval`` with that patched into the training
batches (``core.ml.pipeline.train_dataset``), to compare with the default run the same hour out of fold:

    python tests/perf/exp_cutmix.py [--cutmix P] ../shared/datasets/car-damage \\
        ../shared/datasets/car-damage-extra-split/train --out CV --only-folds 0 --time-limit 600 --seed 0 --json

Nothing here changes viaseg itself.
"""

from __future__ import annotations

import sys


def cutmix(ds, seed: int, p: float):
    """``ds`` (batches of ``(image, mask)``) with CutMix applied to each photo with probability ``p``: a
    rectangle of the batch's next photo (and of its mask) pasted in. Deterministic in ``seed``."""
    import tensorflow as tf

    seeds = tf.data.Dataset.random(seed=seed + 7).batch(2)

    def mix(batch, s):
        x, m = batch
        b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        u = tf.random.stateless_uniform([b, 4], seed=s)
        side = u[:, 1]  # the rectangle's side, a share of the photo's
        cy, cx = u[:, 2], u[:, 3]
        yy = (tf.cast(tf.range(h), tf.float32) + 0.5) / tf.cast(h, tf.float32)
        xx = (tf.cast(tf.range(w), tf.float32) + 0.5) / tf.cast(w, tf.float32)
        in_y = tf.abs(yy[None, :] - cy[:, None]) < side[:, None] / 2  # (b, h)
        in_x = tf.abs(xx[None, :] - cx[:, None]) < side[:, None] / 2  # (b, w)
        box = in_y[:, :, None] & in_x[:, None, :] & (u[:, 0] < p)[:, None, None]
        box = box[..., None]
        x2, m2 = tf.roll(x, 1, axis=0), tf.roll(m, 1, axis=0)
        return tf.where(box, x2, x), tf.where(box, m2, m)

    return tf.data.Dataset.zip((ds, seeds)).map(mix, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = 0.5
    if "--cutmix" in argv:
        i = argv.index("--cutmix")
        p = float(argv[i + 1])
        del argv[i : i + 2]
    from viaseg.core.ml import pipeline

    made = pipeline.train_dataset

    def train_dataset(arrays, batch_size=8, seed=0, *args, **kwargs):
        return cutmix(made(arrays, batch_size, seed, *args, **kwargs), seed, p)

    pipeline.train_dataset = train_dataset
    from viaseg.core.cli import main as cli_main

    return cli_main(["crossval", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
