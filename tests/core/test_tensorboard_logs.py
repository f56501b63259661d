"""Every run folder holds TensorBoard logs (issue 19): per-epoch scalars with the learning rate, and the sample
predictions as images, so `tensorboard --logdir RUNS` compares runs."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")


def read_events(folder):
    import tensorflow as tf

    tags, images = {}, 0
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        for ev in tf.compat.v1.train.summary_iterator(str(path)):
            for v in ev.summary.value:
                tags.setdefault(v.tag, []).append(ev.step)
                if v.metadata.plugin_data.plugin_name == "images" or v.HasField("image"):
                    images += 1
    return tags, images


def test_a_run_writes_scalars_rate_and_sample_images(tmp_path):
    from test_train import tiny
    from viaseg.core.ml.train import train

    cfg = tiny(tmp_path, epochs=2, lr_schedule="constant", sample_every=1)
    res = train(cfg)
    assert res.ok, res.error
    tags, images = read_events(res.run_dir / "tensorboard")
    assert {"epoch_loss", "epoch_dice", "epoch_learning_rate"} <= set(tags), sorted(tags)
    assert sorted(tags["epoch_loss"]) == [0, 0, 1, 1]  # train and validation, each epoch
    assert sorted(tags["epoch_learning_rate"]) == [0, 1]
    sample_tags = [t for t in tags if t.startswith("samples")]
    assert len(sample_tags) == 1 and sorted(tags[sample_tags[0]]) == [1, 2]
    assert images == 2
