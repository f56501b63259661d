"""End-to-end single-image prediction latency: decode + preprocess + forward + full-size probability map.

Builds the default-size U-Net Xception (128 px input, untrained weights: timing only), writes two synthetic
textured JPEGs (4000x3000 = 12 MP and 1632x1224 = 2 MP) to a temp folder, warms up, then times
``Predictor.predict(path)`` per image. Targets: p50 <= 150 ms (12 MP) and <= 50 ms (2 MP).

    python tests/perf/bench_predict.py [--json] [--runs 20] [--input-size 128]

With ``--json`` prints one JSON object: {"p50_ms_12mp", "p50_ms_2mp", ...stage breakdown...}; ``*_tta`` are the
same with mirror averaging on (``Predictor.tta``). ``*_default`` time what a model of the ``default`` preset
does in the app (``core.predict.interactive``): 256-px input run at 9/8 (288 px, ``app_scale``), width 16, the
image and its mirror image in one network call; ``*_default_own_size`` the same at 256 px (the app until the
twenty-first session). ``*_default_batch``: as ``viaseg predict`` / ``evaluate`` run it, the mirror image and the
preset's other sizes (``tta_scales``: 5/4) averaged too (4 images through the network per photo).
TensorFlow runs with the app's thread pools (``core.ml.tfsetup.interactive_threads``).
``*_default_ensemble2`` (``--ensemble K``, default 2; 1 skips it): the app's way with K default networks averaged
(*Networks averaged*, ``viaseg train --ensemble K``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np


def textured_jpeg(path: Path, w: int, h: int, seed: int = 0) -> Path:
    """A photo-like JPEG: smooth colour gradients, blobs and fine noise (so the entropy decoder has work)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 100 + 2, w // 100 + 2, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    for _ in range(40):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        r = int(rng.integers(w // 60, w // 10))
        color = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.circle(img, c, r, color, -1)
    img += rng.integers(-20, 21, (h, w, 1), dtype=np.int16)
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def p50(xs: list[float]) -> float:
    return round(statistics.median(xs), 2)


def bench(predictor, path: Path, runs: int) -> dict:
    from viaseg.core.imaging.imageio import image_size, read_image

    for _ in range(3):
        predictor.predict(path)
    total, cpu, decode, forward, upscale = [], [], [], [], []
    size = image_size(path)
    for _ in range(runs):
        c0 = time.process_time()
        t0 = time.perf_counter()
        pred = predictor.predict(path)
        total.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert pred.shape == (size[1], size[0]) and pred.dtype == np.float32
    # stage breakdown (separate runs, same code path pieces)
    for _ in range(max(5, runs // 2)):
        t0 = time.perf_counter()
        img = read_image(path, max_side=predictor._max_side(size))
        t1 = time.perf_counter()
        prob = predictor._forward(predictor._to_input(img)[None])[0]
        t2 = time.perf_counter()
        predictor._upscale(prob, size)
        t3 = time.perf_counter()
        decode.append((t1 - t0) * 1000)
        forward.append((t2 - t1) * 1000)
        upscale.append((t3 - t2) * 1000)
    return {
        "p50_ms": p50(total),
        "min_ms": round(min(total), 2),
        "cpu_p50_ms": p50(cpu),  # CPU time of the process (all threads): less sensitive to a busy machine
        "decode_p50_ms": p50(decode),
        "preprocess_forward_p50_ms": p50(forward),
        "upscale_p50_ms": p50(upscale),
        "decoded_shape": list(img.shape[:2]),
    }


def throughput(predictor, paths: list[Path]) -> dict:
    """Images per second over many 2-MP files: one-by-one predict() vs predict_many() (tf.data, batches)."""
    list(predictor.predict_many(paths[:2], batch_size=8))  # warm-up (traces the batch shape)
    t0 = time.perf_counter()
    for p in paths:
        predictor.predict(p)
    t1 = time.perf_counter()
    n = sum(1 for it in predictor.predict_many(paths, batch_size=8) if it.ok)
    t2 = time.perf_counter()
    assert n == len(paths)
    return {
        "images": len(paths),
        "sequential_img_per_s": round(len(paths) / (t1 - t0), 1),
        "predict_many_img_per_s": round(len(paths) / (t2 - t1), 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument(
        "--ensemble",
        type=int,
        default=2,
        help="also time the default preset's model averaged over K networks",
    )
    args = ap.parse_args(argv)

    from viaseg.core.ml import tfsetup

    threads = tfsetup.interactive_threads()  # the app's thread pools (it predicts one photo at a time)
    import tensorflow as tf
    from viaseg.core.ml.predict import Predictor
    from viaseg.core.ml.unet import build_unet_xception

    model = build_unet_xception(args.input_size)
    predictor = Predictor(model, {"input_size": args.input_size, "threshold": 0.5, "resize": "area"})
    predictor.warmup()
    with tempfile.TemporaryDirectory() as tmp:
        big = textured_jpeg(Path(tmp) / "12mp.jpg", 4000, 3000, seed=1)
        mid = textured_jpeg(Path(tmp) / "2mp.jpg", 1632, 1224, seed=2)
        r12 = bench(predictor, big, args.runs)
        r2 = bench(predictor, mid, args.runs)
        many = throughput(
            predictor, [textured_jpeg(Path(tmp) / f"m{i}.jpg", 1632, 1224, seed=10 + i) for i in range(16)]
        )
        predictor.tta = True  # the mirror image in the same network call
        r12_tta = bench(predictor, big, args.runs)
        r2_tta = bench(predictor, mid, args.runs)
        from viaseg.core.ml.networks import build_network
        from viaseg.core.ml.presets import preset

        cfg = preset("default")
        default = Predictor(
            build_network(cfg, cfg.size, pretrained=False),
            {
                "input_size": cfg.size,
                "threshold": 0.5,
                "resize": cfg.resize,
                "tta": cfg.tta,
                "tta_scales": list(cfg.tta_scales),
            },
        )
        default.warmup()
        r12_batch = bench(default, big, args.runs)
        r2_batch = bench(default, mid, args.runs)
        from viaseg.core.ml.predict import interactive

        interactive(default).warmup()
        r12_default = bench(default, big, args.runs)
        r2_default = bench(default, mid, args.runs)
        app_scale = default.scales[0]
        default.scales = (1.0,)  # the app before the twenty-first session: one pass at the network's own size
        default.warmup()
        r12_own = bench(default, big, args.runs)
        r2_own = bench(default, mid, args.runs)
        ens = {}
        if args.ensemble > 1:  # Networks averaged (--ensemble K) as the app runs it: K networks at 9/8
            from viaseg.core.ml.ensemble import ENSEMBLE_KEY, combine

            nets = [build_network(cfg, cfg.size, pretrained=False) for _ in range(args.ensemble)]
            meta = dict(default.meta, **{ENSEMBLE_KEY: {"members": args.ensemble}})
            several = interactive(Predictor(combine(nets), meta))
            several.warmup()
            ens = {
                f"p50_ms_12mp_default_ensemble{args.ensemble}": bench(several, big, args.runs)["p50_ms"],
                f"p50_ms_2mp_default_ensemble{args.ensemble}": bench(several, mid, args.runs)["p50_ms"],
            }
    out = {
        "p50_ms_12mp": r12["p50_ms"],
        "p50_ms_2mp": r2["p50_ms"],
        "targets_ms": {"12mp": 150, "2mp": 50},
        "p50_ms_12mp_tta": r12_tta["p50_ms"],
        "p50_ms_2mp_tta": r2_tta["p50_ms"],
        "p50_ms_12mp_default": r12_default["p50_ms"],
        "p50_ms_2mp_default": r2_default["p50_ms"],
        "p50_ms_12mp_default_own_size": r12_own["p50_ms"],
        "p50_ms_2mp_default_own_size": r2_own["p50_ms"],
        "app_scale": app_scale,
        **ens,
        "p50_ms_12mp_default_batch": r12_batch["p50_ms"],
        "p50_ms_2mp_default_batch": r2_batch["p50_ms"],
        "default_preset": {
            "input_size": cfg.size,
            "encoder": cfg.encoder,
            "base_width": cfg.base_width,
            "tta": cfg.tta,
            "tta_scales": list(cfg.tta_scales),
        },
        "detail_12mp": r12,
        "detail_2mp": r2,
        "throughput_2mp": many,
        "input_size": args.input_size,
        "params": int(model.count_params()),
        "runs": args.runs,
        "cpu_count": os.cpu_count(),
        "tf_threads_inter_intra": list(threads) if threads else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"12 MP: p50 {out['p50_ms_12mp']} ms (target 150)   2 MP: p50 {out['p50_ms_2mp']} ms (target 50)"
        )
        print(json.dumps({"12mp": r12, "2mp": r2}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
