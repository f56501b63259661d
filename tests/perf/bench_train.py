"""Benchmark: epoch time of the research project's input pipeline vs viaseg's, same model, same images.

research: every epoch decodes each image from disk with cv2 inside a Python generator, builds its mask at full
          size with cv2.fillPoly, resizes both (nearest) to 128 px, /255; no cache, no prefetch.
viaseg:   decode + resize + rasterize once (pipeline.load_arrays), then from_tensor_slices -> cache -> shuffle
          -> batch -> prefetch.
Both train the research U-Net (2,058,401 parameters) at 128 px, batch 8 on car-damage/train (49 images).
The first epoch (graph tracing) is not timed; the median of the next ``--epochs`` is.

    python tests/perf/bench_train.py --json            # {"research_epoch_s", "viaseg_epoch_s", "speedup", ...}

Both run float32 under the same TensorFlow settings (``viaseg.core.tfsetup``); ``*_input_epoch_s`` are the
seconds to draw one epoch of batches with no model, i.e. what each input pipeline costs on its own.
    python tests/perf/bench_train.py --peak-rss --json # peak RSS of a 256-px training run (2 epochs)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared")) / "datasets" / "car-damage"


def _entries():
    from viaseg.core.dataset import load_dataset

    split = load_dataset(DATA).split("train")
    return [e for e in split.entries if e.path.is_file()]


def _research_dataset(entries, size=128, batch=8):
    import cv2
    import numpy as np
    import tensorflow as tf

    def gen():
        for e in entries:
            img = cv2.cvtColor(cv2.imread(str(e.path)), cv2.COLOR_BGR2RGB)
            mask = np.zeros(img.shape[:2], np.uint8)
            for r in e.regions:
                pts = np.array(list(zip(r.shape["all_points_x"], r.shape["all_points_y"], strict=True)), np.int32)
                cv2.fillPoly(mask, [pts], 1)
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST).astype(np.float32) / 255.0
            mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST).astype(np.float32)[..., None]
            yield img, mask

    sig = (tf.TensorSpec((size, size, 3), tf.float32), tf.TensorSpec((size, size, 1), tf.float32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig).shuffle(100, seed=0).batch(batch)
    # no prefetch, as in the research code: tf.data would otherwise inject one after the batch on its own
    opts = tf.data.Options()
    opts.experimental_optimization.inject_prefetch = False
    return ds.with_options(opts)


def _input_epoch_s(ds, steps=None) -> float:
    """Seconds to draw one epoch of batches from ``ds`` with no model: the input pipeline's own cost."""
    it = iter(ds)
    t0 = time.perf_counter()
    n = 0
    for _ in it:
        n += 1
        if steps is not None and n >= steps:
            break
    return time.perf_counter() - t0


def _time_epochs(model, ds, epochs, steps=None):
    import keras

    times = []

    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(ds, epochs=epochs + 1, steps_per_epoch=steps, callbacks=[T()], verbose=0)
    return statistics.median(times[1:])


def bench(epochs: int) -> dict:
    import keras
    from viaseg.core import pipeline as P
    from viaseg.core import tfsetup, unet

    tfsetup.load_tf()  # the TF settings viaseg trains with (oneDNN kernels, no remapper), for both pipelines
    entries = _entries()
    keras.utils.set_random_seed(0)
    research_ds = _research_dataset(entries)
    research_input_s = _input_epoch_s(research_ds)
    research_model = unet.compile_model(unet.build_unet_xception(128), "dice")
    research_s = _time_epochs(research_model, research_ds, epochs)

    t0 = time.perf_counter()
    arrays = P.load_arrays(entries, 128, resize="nearest")
    decode_s = time.perf_counter() - t0
    ds = P.train_dataset(arrays, 8, seed=0, augment=P.Augment.off(), shuffle_buffer=100)
    steps = P.steps_per_epoch(len(arrays), 8)
    viaseg_input_s = _input_epoch_s(ds, steps)
    viaseg_model = unet.compile_model(unet.build_unet_xception(128), "dice")
    viaseg_s = _time_epochs(viaseg_model, ds, epochs, steps=steps)
    return {
        "images": len(arrays),
        "research_epoch_s": round(research_s, 3),
        "viaseg_epoch_s": round(viaseg_s, 3),
        "speedup": round(research_s / viaseg_s, 2),
        "images_per_second": round(len(arrays) / viaseg_s, 1),
        "research_input_epoch_s": round(research_input_s, 3),  # drawing one epoch, no model
        "viaseg_input_epoch_s": round(viaseg_input_s, 3),
        "viaseg_one_time_decode_s": round(decode_s, 3),
        "epochs_timed": epochs,
    }


def peak_rss(size: int, epochs: int) -> dict:
    import tempfile

    from viaseg.core.train import preset, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = preset("default", dataset=str(DATA), out_dir=tmp, size=size, epochs=epochs, sample_every=1)
        t0 = time.perf_counter()
        result = train(cfg)
        secs = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"size": size, "epochs": epochs, "ok": result.ok, "peak_rss_mb": round(rss_mb, 1), "seconds": round(secs, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per pipeline (after one warm-up)")
    ap.add_argument("--peak-rss", action="store_true", help="measure peak RSS of a 256-px training run instead")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    if not DATA.exists():
        print(json.dumps({"skipped": f"{DATA} not found"}))
        return 0
    out = peak_rss(args.size, 2) if args.peak_rss else bench(args.epochs)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
