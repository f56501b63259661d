"""Exported models against Keras: mean Dice at full resolution, file size, export time and speed per format.

Exports MODEL as TFLite float32 / float16 / dynamic-range int8 and ONNX (``--variants``; ``savedmodel`` too on
request) into a temporary folder (or ``--out-dir``), then scores every variant and viaseg's Keras predictor on
the same labeled photos exactly as ``viaseg evaluate`` does: the photo decoded and resized to the input size as
:class:`~viaseg.core.ml.predict.Predictor` does, the map resized back to the photo's full resolution, one hard Dice
per image (:func:`viaseg.core.ml.evaluate.score_entry`), averaged over images; ``global_dice`` pools the pixel
counts (:func:`viaseg.core.ml.evaluate.pixel_counts`).

    python tests/perf/bench_export.py --json --model runs/NAME/model.keras \\
        [--dataset ../shared/datasets/car-damage:val] [--limit N] [--tta model|flip|none] [--variants ...]

``--json`` prints one JSON object: ``{"model", "dataset", "images", "tta", "threshold", "keras": {...},
"variants": {"tflite-fp32": {"mean_dice", "dice_change", "global_dice", "max_abs_diff", "size_bytes",
"export_s", "network_ms", "total_ms", "photo_2mp_ms"}, ...}}``. ``dice_change`` is the variant's mean Dice minus Keras';
``max_abs_diff`` the largest probability difference from Keras at full resolution over all images;
``network_ms`` the median time of one input-size image through the runtime (Keras: the predictor's network
call), ``total_ms`` the median of decode + resize + network + full-resolution map per photo, ``photo_2mp_ms``
the same on a generated 2-megapixel JPEG (1632x1224; the dataset's photos are smaller).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = str(ROOT.parent / "shared" / "datasets" / "car-damage") + ":val"
# name -> (format, quantize, file name)
VARIANTS = {
    "tflite-fp32": ("tflite", "none", "model_fp32.tflite"),
    "tflite-fp16": ("tflite", "float16", "model_fp16.tflite"),
    "tflite-int8": ("tflite", "int8", "model_int8.tflite"),
    "onnx": ("onnx", "none", "model.onnx"),
    "savedmodel": ("savedmodel", "none", "savedmodel"),
}


def median_ms(xs: list[float]) -> float | None:
    return round(statistics.median(xs) * 1000, 2) if xs else None


def photo_2mp(folder: Path) -> Path:
    """A generated 2-megapixel JPEG (1632x1224, bench_predict_many's photo) in ``folder``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_predict_many import make_photo

    path = folder / "photo_2mp.jpg"
    make_photo(path, seed=0)
    return path


def photo_ms(predict_full, photo: Path, runs: int = 5) -> float | None:
    """Median end-to-end time of ``predict_full`` on one photo file (decode, resize, network, full-resolution
    map), after one warm call."""

    class _Entry:
        path = photo

    predict_full(_Entry)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        predict_full(_Entry)
        times.append(time.perf_counter() - t0)
    return median_ms(times)


def entries_of(spec: str, limit: int | None):
    from viaseg.core.annotation.dataset import load_dataset, parse_spec
    from viaseg.core.ml.evaluate import choose_split

    root, split = parse_spec(spec)
    sp = choose_split(load_dataset(root), split)
    entries = list(sp.entries)
    return (entries[:limit] if limit else entries), sp.name


def score(entries, predictor, predict_full, network) -> dict:
    """Per-image Dice of ``predict_full(entry) -> full-resolution map`` and timings; ``network()`` times one
    input-size forward pass."""
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.ml.evaluate import pixel_counts, score_entry, scores_of_counts

    dices, totals, maps = [], [], []
    pooled = np.zeros(3, np.int64)
    thr = predictor.threshold
    if entries:
        predict_full(entries[0])  # warm: tracing, first-call allocations
    for entry in entries:
        t0 = time.perf_counter()
        prob = predict_full(entry)
        totals.append(time.perf_counter() - t0)
        dices.append(score_entry(entry, prob, thr)[0])
        h, w = prob.shape
        pooled += pixel_counts(rasterize(entry.regions, (w, h)), prob > thr)
        maps.append(prob)
    network()  # warm
    net = []
    for _ in range(5):
        t0 = time.perf_counter()
        network()
        net.append(time.perf_counter() - t0)
    return {
        "mean_dice": round(float(np.mean(dices)), 6) if dices else None,
        "global_dice": round(scores_of_counts(*(int(v) for v in pooled))[0], 6),
        "network_ms": median_ms(net),
        "total_ms": median_ms(totals),
        "_maps": maps,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--model", required=True, help="viaseg .keras model")
    ap.add_argument(
        "--dataset", default=DEFAULT_DATASET, help="labeled DATASET[:split] (default car-damage:val)"
    )
    ap.add_argument("--limit", type=int, default=None, help="score only the first N images (smoke runs)")
    ap.add_argument(
        "--tta",
        choices=("model", "flip", "none"),
        default="model",
        help="averages in the exported graph and the Keras reference (default: the model's)",
    )
    ap.add_argument(
        "--variants",
        default="tflite-fp32,tflite-fp16,tflite-int8,onnx",
        help=f"comma-separated, of {', '.join(VARIANTS)}",
    )
    ap.add_argument("--out-dir", default=None, help="keep the exports here (default: a temporary folder)")
    args = ap.parse_args(argv)

    from viaseg.core.ml import export as ex

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    entries, split = entries_of(args.dataset, args.limit)
    predictor = ex._predictor(Path(args.model), args.tta)
    sample, _ = ex.network_input(predictor, entries[0].path)

    keras = score(
        entries,
        predictor,
        lambda e: predictor.predict(e.path),
        lambda: predictor.predict_inputs(sample[None]),
    )
    ref_maps = keras.pop("_maps")
    photo_dir = Path(tempfile.mkdtemp(prefix="bench_export_photo-"))
    photo = photo_2mp(photo_dir)
    keras["photo_2mp_ms"] = photo_ms(lambda e: predictor.predict(e.path), photo)
    out = {
        "model": str(args.model),
        "dataset": args.dataset,
        "split": split,
        "images": len(entries),
        "tta": args.tta,
        "threshold": predictor.threshold,
        "input_size": list(predictor.input_hw),
        "keras": keras,
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_export-") as tmp:
        out_dir = Path(args.out_dir or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            fmt, quantize, fname = VARIANTS[name]
            res = ex.export_model(args.model, out_dir / fname, fmt, quantize, tta=args.tta, check=False)
            run = ex.load_runner(fmt, res.path)

            def full(entry, run=run):
                x, size = ex.network_input(predictor, entry.path)
                return ex.full_resolution(predictor, run(x[None])[0], size)

            row = score(entries, predictor, full, lambda run=run: run(sample[None]))
            maps = row.pop("_maps")
            row["max_abs_diff"] = float(
                f"{max(float(np.abs(a - b).max()) for a, b in zip(maps, ref_maps, strict=True)):.3g}"
            )
            row["dice_change"] = (
                round(row["mean_dice"] - keras["mean_dice"], 6) if keras["mean_dice"] is not None else None
            )
            row["size_bytes"] = res.size_bytes
            row["export_s"] = round(res.seconds, 2)
            row["photo_2mp_ms"] = photo_ms(full, photo)
            out["variants"][name] = row
            if not args.json:
                print(
                    f"{name:12s} dice {row['mean_dice']:.4f} ({row['dice_change']:+.4f})  "
                    f"{row['size_bytes'] / 1e6:7.2f} MB  net {row['network_ms']} ms  total {row['total_ms']} ms  "
                    f"2 MP {row['photo_2mp_ms']} ms  export {row['export_s']} s",
                    file=sys.stderr,
                )
    shutil.rmtree(photo_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"keras        dice {keras['mean_dice']:.4f}  net {keras['network_ms']} ms  total {keras['total_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
