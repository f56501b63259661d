"""Experiment (twenty-sixth session, issue 16's time to quality): train on each batch's two halves as two
independent branches of one graph, which TensorFlow's two inter-op threads run at once (half the cores per op).

One network call on a small batch leaves most of a 2-core CPU idle; the app's prediction got 1.5x faster by
running a photo and its mirror image as two branches (``Predictor._function``'s ``halves``). For training the
same split made a step of the default network 0.487 -> 0.428 s through ``model.fit``, but it changes the recipe:
each half's batch norms see 4 photos instead of 8 (and update their moving statistics twice a step). This runs
``viaseg crossval`` with the split patched into the network it builds, so the two can be compared out of fold:

    python tests/perf/exp_split_batch.py [--split] ../shared/datasets/car-damage \\
        ../shared/datasets/car-damage-extra-split/train --out CV --only-folds 0 --time-limit 600 --seed 0 --json

(without ``--split``: the default recipe with TensorFlow's default thread pools, the baseline to compare with,
run the same hour). Nothing here changes viaseg itself.
"""

from __future__ import annotations

import os
import sys


def install_halves(model) -> None:
    """``model`` called for training runs each half of its batch as its own branch (its outputs joined again);
    called for inference it runs the whole batch as before. The saved model is unchanged (its config is the
    graph's, not this call)."""
    import tensorflow as tf

    whole = model.call

    def call(inputs, training=None, mask=None, **kwargs):
        if not training:
            return whole(inputs, training=training, mask=mask, **kwargs)
        h = tf.shape(inputs)[0] // 2
        return tf.concat(
            [
                whole(inputs[:h], training=training, mask=mask, **kwargs),
                whole(inputs[h:], training=training, mask=mask, **kwargs),
            ],
            0,
        )

    model.call = call


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = "--split" in argv
    if split:
        argv.remove("--split")
        from viaseg.core.ml import networks, tfsetup

        tf = tfsetup.load_tf()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        tf.config.threading.set_inter_op_parallelism_threads(2)
        tf.config.threading.set_intra_op_parallelism_threads(max(1, cores // 2))
        built = networks.build_network

        def build_network(cfg, input_size, **kwargs):
            model = built(cfg, input_size, **kwargs)
            if int(getattr(cfg, "batch_size", 0) or 0) >= 2:  # a batch of 1 has no halves
                install_halves(model)
            return model

        networks.build_network = build_network
    from viaseg.core.cli import main as cli_main

    return cli_main(["crossval", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
