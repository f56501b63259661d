"""Benchmark: how fast the default model trains on this machine, against what the CPU could do.

python tests/perf/bench_train.py --json
    {"epoch_s", "images_per_second", "forward_gflop_per_image", "gflops_per_s", "peak_gflops_per_s_fp32",
     "amx_used", ...}: the default preset's model and input pipeline (augmentations on) on the documented
    training data (car-damage/train + car-damage-extra-split/train, 149 photos); the median of
    ``--epochs`` epochs after one warm-up epoch. Training costs about 3x the forward pass (forward, and the
    backward pass for the activations and for the weights), so gflops_per_s = 3 x forward GFLOP x images/s.
    peak_gflops_per_s_fp32 is the CPU's theoretical float32 peak (cores x clock x FMA lanes x 2);
    amx_used: whether oneDNN ran any kernel on AMX (ONEDNN_VERBOSE of two training steps in a child).
python tests/perf/bench_train.py --time-to-dice --json [--time-limit 600]
    the documented command's recipe; every other epoch both validation sets are scored at the training size
    (hard Dice per image, no test-time averaging: the probe's own time is taken off the clock) and the
    training seconds at which each first reaches 0.50 mean Dice are printed, at 0.5 and (scored again at
    the end) at the threshold the run chose, which is the one its model is used at.
python tests/perf/bench_train.py --peak-rss --json  # peak RSS of a 256-px training run (2 epochs)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared")) / "datasets"
DATA = SHARED / "car-damage"
EXTRA = SHARED / "car-damage-extra-split" / "train"
VALS = {
    "car-damage:val": SHARED / "car-damage",
    "car-damage-extra-split:val": SHARED / "car-damage-extra-split",
}


def _cpu() -> dict:
    """Cores, clock (GHz) and float32 FMA lanes per core and cycle, from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        info = ""
    flags = set(re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split()) if "flags" in info else set()
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)]
    cores = len(os.sched_getaffinity(0))
    # two FMA units per core on current x86 server cores; 16 float32 lanes with AVX-512, 8 with AVX2
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fma = 2 if "fma" in flags else 1
    ghz = max(mhz) / 1000 if mhz else 0.0
    return {
        "cores": cores,
        "ghz": round(ghz, 3),
        "flops_per_cycle": lanes * fma * 2,
        "amx_cpu": "amx_bf16" in flags,
        "isa": "avx512" if lanes == 16 else "avx2" if lanes == 8 else "sse",
    }


def forward_gflop(cfg) -> float:
    """GFLOP of one forward pass of the model ``cfg`` builds (TensorFlow's profiler on the traced graph)."""
    import tensorflow as tf
    from viaseg.core.ml.networks import build_network

    model = build_network(cfg, cfg.size, pretrained=False)  # the preset's network (weights do not matter)
    fn = tf.function(lambda x: model(x, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec([1, cfg.size, cfg.size, 3], tf.float32)).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    prof = tf.compat.v1.profiler.profile(graph=graph, options=opts)
    return prof.total_float_ops / 1e9


def _amx_used(size: int) -> bool | None:
    """Two training steps of the default model in a child process with ONEDNN_VERBOSE=1: any AMX kernel?"""
    code = (
        "import numpy as np\nfrom viaseg.core.ml import tfsetup, unet\ntfsetup.load_tf()\n"
        "from viaseg.core.ml.networks import build_network\nfrom viaseg.core.ml.presets import preset\n"
        f"m = unet.compile_model(build_network(preset('default'), {size}), 'bce_dice')\n"
        f"x = np.random.rand(4, {size}, {size}, 3).astype('float32'); y = (x[..., :1] > 0.5).astype('float32')\n"
        "m.fit(x, y, batch_size=4, epochs=2, verbose=0)\n"
    )
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2")
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout + out.stderr
    if "onednn_verbose" not in text and "dnnl_verbose" not in text:
        return None  # oneDNN said nothing: cannot tell
    return amx_in_verbose(text)


def amx_in_verbose(text: str) -> bool:
    """Whether a oneDNN verbose log ran a primitive on AMX: an ``exec`` line whose implementation names it
    (``brg...:avx512_core_amx``). The ``info`` header names the CPU's ISA, AMX included, whatever runs."""
    for line in text.splitlines():
        fields = line.lower().split(",")
        if len(fields) > 5 and fields[0] in ("onednn_verbose", "dnnl_verbose") and "exec" in fields[1:4]:
            if any("amx" in f for f in fields[4:8]):
                return True
    return False


def _entries():
    from viaseg.core.annotation.dataset import load_dataset

    out = []
    for spec in (DATA, EXTRA):
        ds = load_dataset(spec)
        split = ds.splits.get("train") or next(iter(ds.splits.values()))
        out.append([e for e in split.entries if e.path.is_file()])
    return out


def bench(epochs: int) -> dict:
    import keras
    from viaseg.core.ml import pipeline as P
    from viaseg.core.ml import tfsetup, unet
    from viaseg.core.ml.networks import build_network
    from viaseg.core.ml.presets import preset

    tf = tfsetup.load_tf()
    cfg = preset("default")
    parts = []
    t0 = time.perf_counter()
    for k, entries in enumerate(_entries()):
        a = P.load_arrays(entries, cfg.size, resize=cfg.resize)
        a.sources = [k] * len(a)
        parts.append(a)
    arrays = P.Arrays.concat(parts)
    decode_s = time.perf_counter() - t0
    keras.utils.set_random_seed(0)
    ds = P.train_dataset(arrays, cfg.batch_size, seed=0, augment=cfg.augment, balance=cfg.balance_sources)
    steps = P.steps_per_epoch(len(arrays), cfg.batch_size)
    # the default preset's network (the ImageNet MobileNetV2 U-Net since the fifteenth session; this timed
    # the Xception-style network until the seventeenth)
    model = unet.compile_model(build_network(cfg, cfg.size), cfg.loss, learning_rate=cfg.learning_rate)
    times = []

    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(ds, epochs=epochs + 1, steps_per_epoch=steps, callbacks=[T()], verbose=0)
    epoch_s = statistics.median(times[1:])
    t0 = time.perf_counter()
    n = 0
    for _ in ds.take(steps):
        n += 1
    input_s = time.perf_counter() - t0
    ips = steps * cfg.batch_size / epoch_s
    gflop = forward_gflop(cfg)
    cpu = _cpu()
    peak = cpu["cores"] * cpu["ghz"] * cpu["flops_per_cycle"]
    achieved = 3 * gflop * ips
    return {
        "images": len(arrays),
        "size": cfg.size,
        "batch_size": cfg.batch_size,
        "epoch_s": round(epoch_s, 3),
        "images_per_second": round(ips, 2),
        "input_pipeline_epoch_s": round(input_s, 3),  # drawing one epoch of augmented batches, no model
        "one_time_decode_s": round(decode_s, 3),
        "forward_gflop_per_image": round(gflop, 3),
        "gflops_per_s": round(achieved, 1),
        "peak_gflops_per_s_fp32": round(peak, 1),
        "share_of_peak": round(achieved / peak, 3) if peak else None,
        "cpu": cpu,
        "amx_used": _amx_used(cfg.size),
        "tf_version": tf.__version__,
        "epochs_timed": epochs,
    }


def time_to_dice(time_limit: float, seed: int, target: float = 0.5, every: int = 2) -> dict:
    """Train the documented recipe; return the training seconds at which each validation set first reaches
    ``target`` mean hard Dice (training size, no test-time averaging; the probe's time is not counted)."""
    import tempfile

    import keras
    import numpy as np
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.checks.check_copies import copies_of
    from viaseg.core.ml import pipeline as P
    from viaseg.core.ml import unet
    from viaseg.core.ml.train import preset, train

    sets = {}
    for name, root in VALS.items():
        val_entries = load_dataset(root).splits["val"].entries
        arr = P.load_arrays(val_entries, 256)
        copies = {
            val_entries[i].filename for i in copies_of([e for es in _entries() for e in es], val_entries)
        }
        dup = {
            i for i, n in enumerate(arr.names) if n in copies
        }  # copies of training photos left out, as evaluate does
        sets[name] = arr.subset(i for i in range(len(arr)) if i not in dup)
    clock = {"t0": None, "probe": 0.0}
    reached: dict[str, float | None] = dict.fromkeys(sets)
    curve: list[dict] = []
    kept: list[tuple[dict, str, np.ndarray]] = []

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            clock["t0"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % every:
                return
            t = time.perf_counter()
            row = {"epoch": epoch + 1, "train_s": round(t - clock["t0"] - clock["probe"], 1)}
            for name, arr in sets.items():
                probs = self.model.predict(P.to_float_images(arr.images), verbose=0)[..., 0]
                score = unet.hard_dice_scores(arr.masks, probs, 0.5)["mean_dice"]
                row[name] = round(float(score), 4)
                if reached[name] is None and score >= target:
                    reached[name] = row["train_s"]
                kept.append((row, name, probs.astype(np.float16)))  # scored again at the run's threshold
            curve.append(row)
            clock["probe"] += time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        cfg = preset(
            "default",
            dataset=str(DATA),
            extra_train=[str(EXTRA)],
            out_dir=tmp,
            seed=seed,
            time_limit_s=time_limit,
            sample_every=0,
        )
        result = train(cfg, callbacks=[Probe()])
    # the threshold the run chose (late in the run, on its held-out fifth) is the one its model is used at;
    # the probes' maps scored at it say when the saved model's way of reading them first reached the target
    chosen = float((result.summary or {}).get("threshold") or 0.5)
    at_chosen: dict[str, float | None] = dict.fromkeys(sets)
    for row, name, probs in kept:
        score = float(unet.hard_dice_scores(sets[name].masks, probs.astype(np.float32), chosen)["mean_dice"])
        row[f"{name}_at_threshold"] = round(score, 4)
        if at_chosen[name] is None and score >= target:
            at_chosen[name] = row["train_s"]
    return {
        "time_limit_s": time_limit,
        "seed": seed,
        "ok": result.ok,
        "target": target,
        "seconds_to_target": reached,
        "threshold": chosen,
        "seconds_to_target_at_threshold": at_chosen,
        "epochs": (result.summary or {}).get("epochs_run"),
        "train_seconds": (result.summary or {}).get("train_seconds"),
        "curve": curve,
        "note": "mean hard Dice per image at the training size, no test-time averaging; seconds_to_target at "
        "0.5, seconds_to_target_at_threshold at the threshold the run chose",
    }


def peak_rss(size: int, epochs: int) -> dict:
    import tempfile

    from viaseg.core.ml.train import preset, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = preset("default", dataset=str(DATA), out_dir=tmp, size=size, epochs=epochs, sample_every=1)
        t0 = time.perf_counter()
        result = train(cfg)
        secs = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "size": size,
        "epochs": epochs,
        "ok": result.ok,
        "peak_rss_mb": round(rss_mb, 1),
        "seconds": round(secs, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    ap.add_argument(
        "--peak-rss", action="store_true", help="measure peak RSS of a 256-px training run instead"
    )
    ap.add_argument(
        "--time-to-dice",
        action="store_true",
        help="train the documented recipe and report when each val set first reaches 0.50",
    )
    ap.add_argument("--time-limit", type=float, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    if not DATA.exists() or not EXTRA.exists():
        print(json.dumps({"skipped": f"{DATA} or {EXTRA} not found"}))
        return 0
    if args.peak_rss:
        out = peak_rss(args.size, 2)
    elif args.time_to_dice:
        out = time_to_dice(args.time_limit, args.seed)
    else:
        out = bench(args.epochs)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
