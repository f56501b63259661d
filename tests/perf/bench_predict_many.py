"""Streaming ``viaseg predict`` over many photos: throughput, memory, and the time a finished run takes to resume.

    python tests/perf/bench_predict_many.py --json [--count 10000] [--model MODEL] [--batch-size 8] [--workers N]

1. Generates ``--count`` 2-MP JPEGs (1632x1224, smooth random colours and a few blobs) into a cache folder under
   /tmp (``--cache``; reused between runs, only missing photos are made).
2. Runs ``viaseg predict MODEL @LIST --out DIR`` as a subprocess (the photos given as a list file) while sampling
   its resident memory every 0.2 s (psutil when installed, else /proc/PID/status) and counting the lines of its
   journal (``predictions.jsonl``) to know how many photos are done.
3. Runs it again with ``--resume`` over the finished folder (every photo skipped): ``resume_skip_s``.
4. In this process: the model's forward throughput alone — batches of 8 photos already decoded and resized to
   the network input (what the Predictor feeds the network), through ``Predictor.predict_inputs`` with the
   model's own mirror / multi-scale averaging.

Without ``--model`` the model is the ``default`` preset's architecture (core/ml/presets.py, core/ml/unet.py), untrained,
with the preset's prediction settings (mirror and 5/4-size averaging), so the speed is realistic; its threshold
is set to the 97th percentile of its output on two photos, so masks hold a few blobs like real predictions
rather than noise.

Prints one JSON object (``--json``): ``photos_per_s`` (steady state: from the first finished photo to the end),
``peak_rss_mb``, ``rss_mb_at_1000`` (null under 1000 photos), ``rss_mb_at_end``, ``resume_skip_s``,
``forward_photos_per_s_bs8``, ``count``, and context. Targets (issue 20): peak RSS < 2 GB and flat from 1,000 to
10,000 photos; photos/s within 20 % of the forward throughput; resume over 10,000 done photos < 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np

W, H = 1632, 1224  # 2 MP


def make_photo(path: Path, seed: int) -> None:
    """A smooth random photo-like JPEG (no fine noise: JPEG size and decode time like a real 2-MP photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (H // 96 + 2, W // 96 + 2, 3), dtype=np.uint8)
    img = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        c = (int(rng.integers(0, W)), int(rng.integers(0, H)))
        r = int(rng.integers(W // 40, W // 8))
        cv2.circle(img, c, r, tuple(int(v) for v in rng.integers(0, 255, 3)), -1, cv2.LINE_AA)
    tmp = path.with_name(f".{path.name}.tmp.jpg")
    cv2.imwrite(str(tmp), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    os.replace(tmp, path)


def photo_set(cache: Path, count: int) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    paths = [cache / f"p{i:06d}.jpg" for i in range(count)]
    have = set(os.listdir(cache))
    missing = [(p, i) for i, p in enumerate(paths) if p.name not in have]
    if missing:
        print(f"generating {len(missing)} photos in {cache} ...", file=sys.stderr)
        with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda a: make_photo(*a), missing))
    return paths


def default_model(path: Path, photos: list[Path]) -> dict:
    """The default preset's network, untrained, saved with the preset's prediction metadata."""
    from viaseg.core.ml.modelio import save_model
    from viaseg.core.ml.networks import build_network
    from viaseg.core.ml.predict import Predictor
    from viaseg.core.ml.presets import preset

    cfg = preset("default")
    model = build_network(cfg, cfg.size, pretrained=False)
    meta = {
        "input_size": [cfg.size, cfg.size],
        "threshold": 0.5,
        "tta": bool(cfg.tta),
        "tta_scales": [float(s) for s in cfg.tta_scales],
        "class_names": list(cfg.class_names),
        "resize": cfg.resize,
        "input_scale": "rgb/255",
    }
    probe = Predictor(model, meta)
    probs = np.concatenate([probe.predict(p).ravel()[::7] for p in photos[:2]])
    meta["threshold"] = float(min(0.99, max(0.01, np.percentile(probs, 97))))
    save_model(model, path, meta)
    return {
        "preset": "default",
        "input_size": cfg.size,
        "base_width": cfg.base_width,
        "tta": cfg.tta,
        "tta_scales": list(cfg.tta_scales),
        "params": int(model.count_params()),
        "threshold": meta["threshold"],
    }


def rss_reader(pid: int):
    try:
        import psutil

        proc = psutil.Process(pid)

        def read() -> float | None:
            try:
                return proc.memory_info().rss / 2**20
            except psutil.Error:
                return None

        return read
    except ImportError:
        status = f"/proc/{pid}/status"

        def read() -> float | None:
            try:
                with open(status) as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1]) / 1024
            except OSError:
                return None
            return None

        return read


class LineCounter:
    """Lines of a growing file, read incrementally."""

    def __init__(self, path: Path):
        self.path, self.offset, self.lines = path, 0, 0

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return self.lines
        self.offset += len(data)
        self.lines += data.count(b"\n")
        return self.lines


def run_predict(model: Path, list_file: Path, out: Path, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "viaseg.core.cli",
        "predict",
        str(model),
        f"@{list_file}",
        "--out",
        str(out),
        *extra,
    ]
    journal = LineCounter(out / "predictions.jsonl")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    read_rss = rss_reader(proc.pid)
    peak = 0.0
    last = None
    at_1000 = None
    first = None  # (time, lines) when the first photo was done
    while proc.poll() is None:
        rss = read_rss()
        if rss is not None:
            peak, last = max(peak, rss), rss
        n = journal.poll()
        if n and first is None:
            first = (time.perf_counter(), n)
        if at_1000 is None and n >= 1000 and rss is not None:
            at_1000 = rss
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    t_end = time.perf_counter()
    n = journal.poll()
    if proc.returncode != 0:
        raise SystemExit(f"viaseg predict failed ({proc.returncode}):\n{stderr[-3000:]}")
    rate = None
    if first is not None and n > first[1] and t_end > first[0]:
        rate = (n - first[1]) / (t_end - first[0])
    return {
        "wall_s": t_end - t0,
        "peak_rss_mb": peak,
        "rss_mb_at_1000": at_1000,
        "rss_mb_at_end": last,
        "lines": n,
        "photos_per_s": rate,
        "stdout": stdout.strip(),
    }


def forward_rate(model: Path, photo: Path, batch: int = 8, seconds: float = 10.0) -> float:
    """Photos/s of the network alone on ``batch`` preloaded inputs, as the streaming predict feeds it."""
    from viaseg.core.ml.predict import _INTERP, Predictor

    p = Predictor.load(model)
    img, _, _ = p._load(photo)
    h, w = p.input_hw
    x = cv2.resize(img, (w, h), interpolation=_INTERP[p.resize])
    xb = np.stack([x] * batch)
    p.predict_inputs(xb, batch_size=batch)  # trace
    runs, t0 = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - t0 < seconds:
        p.predict_inputs(xb, batch_size=batch)
        runs += 1
    return runs * batch / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--count", type=int, default=10000, help="photos (default 10000)")
    ap.add_argument(
        "--model", type=Path, default=None, help="a viaseg .keras model (default: untrained default)"
    )
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "viaseg-bench-predict-many")
    ap.add_argument("--keep", action="store_true", help="keep the output folder (printed)")
    args = ap.parse_args(argv)

    photos = photo_set(args.cache / "photos_2mp", args.count)
    work = Path(tempfile.mkdtemp(prefix="viaseg-predict-many-"))
    try:
        model_info: dict = {"path": str(args.model)} if args.model else {}
        model = args.model
        if model is None:
            model = args.cache / "default_untrained.keras"
            info_file = args.cache / "default_untrained.json"
            if model.exists() and info_file.exists():
                model_info = json.loads(info_file.read_text())
            else:
                model_info = default_model(model, photos)
                info_file.write_text(json.dumps(model_info))
        list_file = work / "photos.txt"
        list_file.write_text("".join(f"{p}\n" for p in photos))
        out = work / "out"
        extra = ["--batch-size", str(args.batch_size)]
        if args.workers:
            extra += ["--workers", str(args.workers)]
        full = run_predict(model, list_file, out, extra)
        if full["lines"] != args.count:
            raise SystemExit(f"expected {args.count} journal lines, got {full['lines']}")
        resume = run_predict(model, list_file, out, [*extra, "--resume"])
        via = out / "via_region_data.json"
        data = json.loads(via.read_text())
        if len(data) != args.count:
            raise SystemExit(f"expected {args.count} images in {via}, got {len(data)}")
        regions = sum(len(e["regions"]) for e in data.values())
        fwd = forward_rate(model, photos[0], batch=8)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    def r(v, nd=1):
        return None if v is None else round(v, nd)

    result = {
        "photos_per_s": r(full["photos_per_s"], 2),
        "peak_rss_mb": r(full["peak_rss_mb"]),
        "rss_mb_at_1000": r(full["rss_mb_at_1000"]),
        "rss_mb_at_end": r(full["rss_mb_at_end"]),
        "resume_skip_s": r(resume["wall_s"], 2),
        "forward_photos_per_s_bs8": r(fwd, 2),
        "count": args.count,
        "ratio_to_forward": r(full["photos_per_s"] / fwd, 3) if full["photos_per_s"] else None,
        "wall_s": r(full["wall_s"]),
        "resume_peak_rss_mb": r(resume["peak_rss_mb"]),
        "regions_per_photo": round(regions / args.count, 2),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "model": model_info,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "targets": {"peak_rss_mb": 2048, "ratio_to_forward": 0.8, "resume_skip_s": 10},
    }
    if args.keep:
        result["out"] = str(out)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
