"""Benchmark: load / save / check a large VIA 2 project, and rasterize one image's regions.

    python tests/perf/bench_dataset.py --json

Generates (seeded, in a temp dir) a VIA 2 *project* file of 10,000 images and 50,000 polygons of 1 to 200
vertices (hand-drawn-like outlines: jittered angles, smooth radius, elongated, half of them bent so that they are not
star-shaped, integer coordinates; ~1% of them are made to cross themselves), then measures, best of ``--repeat`` runs:

* ``load_s``: ``via_io.load_via`` of the file (~47 MB of JSON); ``json_loads_s`` is plain ``json.loads`` of
  the same file, the floor for any reader built on the standard library, and ``orjson_loads_s`` plain
  ``orjson.loads``, the floor for ``load_via``'s fast path (each timing includes freeing the previous run's
  value: ~0.15 s of the load here);
* ``save_s``: ``via_io.save_via`` of the loaded project to a new file (atomic write + fsync);
* ``check_s``: the per-region checks of all 50,000 polygons as ``check_dataset`` runs them
  (degenerate, self-intersection, out-of-bounds against a 1024x768 image size), without touching image
  files: the images are not generated, so ``check_dataset`` itself would only add 10,000 ``missing_file``
  reports. That end-to-end number (stat of 10,000 absent files + the same geometry) is ``check_dataset_s``;
* ``rasterize_per_image_ms``: ``raster.rasterize`` of 10 polygons into a 1024x768 mask, mean of 200 calls.

Targets (2-core machine): load <= 1 s, save <= 1 s, check <= 2 s, rasterize <= 2 ms.

``--only-load`` measures the loads alone (the other timings are then ``null``), to iterate on the reader.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.annotation.formats.via_io import load_via, save_via
from viaseg.core.annotation.raster import rasterize
from viaseg.core.checks.checks import _geometry_problems, check_dataset

W, H = 1024, 768


def outline(rng: np.random.Generator, n: int, cross: bool) -> tuple[list[int], list[int]]:
    """A hand-drawn-like closed outline of ``n`` integer vertices; about half are bent (banana-shaped
    scratches), which are not star-shaped and take the exact crossing test instead of the fast one."""
    base = max(12.0, n * 3.0 / (2 * math.pi)) * rng.uniform(1.0, 2.5)
    k = np.arange(n)
    ang = (k + rng.uniform(-0.3, 0.3, n)) * (2 * math.pi / n)
    phase = rng.uniform(0, 2 * math.pi, 3)
    r = base * (
        1
        + 0.15 * np.sin(2 * ang + phase[0])
        + 0.1 * np.sin(3 * ang + phase[1])
        + 0.05 * np.sin(5 * ang + phase[2])
    )
    px, py = r * np.cos(ang), 0.35 * r * np.sin(ang)  # elongated, like most damage outlines
    if rng.random() < 0.5:  # bend it
        py = py - 0.8 * px * px / base
    rot = rng.uniform(0, math.pi)
    c, s = math.cos(rot), math.sin(rot)
    px, py = c * px - s * py, s * px + c * py
    cx = rng.uniform(1 - px.min(), W - 1 - px.max())  # keep the outline inside the image
    cy = rng.uniform(1 - py.min(), H - 1 - py.max())
    xs = np.round(cx + px).astype(int)
    ys = np.round(cy + py).astype(int)
    if cross and n >= 6:
        i = n // 3
        xs[i], xs[i + n // 3] = xs[i + n // 3], xs[i]
        ys[i], ys[i + n // 3] = ys[i + n // 3], ys[i]
    return xs.tolist(), ys.tolist()


def make_project(path: Path, images: int = 10_000, polygons: int = 50_000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    owner = np.sort(rng.integers(0, images, polygons))
    counts = np.bincount(owner, minlength=images)
    meta = {}
    order = []
    for i in range(images):
        name = f"img{i:05d}.jpg"
        size = int(rng.integers(20_000, 900_000))
        regions = []
        for _ in range(counts[i]):
            n = int(rng.integers(1, 201))
            xs, ys = outline(rng, n, cross=rng.random() < 0.01)
            regions.append(
                {
                    "shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
                    "region_attributes": {"name": "damage"},
                }
            )
        key = f"{name}{size}"
        meta[key] = {"filename": name, "size": size, "regions": regions, "file_attributes": {}}
        order.append(key)
    project = {
        "_via_settings": {
            "ui": {},
            "core": {"buffer_size": 18, "filepath": {}, "default_filepath": ""},
            "project": {"name": "bench"},
        },
        "_via_img_metadata": meta,
        "_via_attributes": {
            "region": {"name": {"type": "text", "description": "", "default_value": ""}},
            "file": {},
        },
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": order,
    }
    path.write_text(json.dumps(project, separators=(",", ":")))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--polygons", type=int, default=50_000)
    ap.add_argument("--only-load", action="store_true", help="time the loads only (others: null)")
    args = ap.parse_args(argv)
    try:
        import orjson
    except ImportError:
        orjson = None
    with tempfile.TemporaryDirectory(prefix="viaseg-bench-") as tmp:
        src = Path(tmp) / "train" / "project.json"
        src.parent.mkdir()
        t = time.perf_counter()
        make_project(src, args.images, args.polygons)
        gen_s = time.perf_counter() - t
        file_mb = round(src.stat().st_size / 1e6, 1)
        project = load_via(src)
        load_s = best(lambda: load_via(src), args.repeat)
        json_s = best(lambda: json.loads(src.read_text(encoding="utf-8")), args.repeat)
        orjson_s = best(lambda: orjson.loads(src.read_bytes()), args.repeat) if orjson is not None else None
        save_s = check_s = check_dataset_s = raster_ms = report = None
        kinds: dict[str, int] = {}
        if not args.only_load:
            out = Path(tmp) / "saved.json"
            save_s = best(lambda: save_via(project, out), args.repeat)

            dataset = load_dataset(src)
            items = [(s, e, (W, H)) for s, e in dataset.entries()]
            found = {}
            check_s = best(lambda: found.update(_geometry_problems(items)), args.repeat)

            def full():
                nonlocal report
                report = check_dataset(dataset, decode=False)

            check_dataset_s = best(full, 1)
            for p in report.problems:
                kinds[p.kind] = kinds.get(p.kind, 0) + 1

            rng = np.random.default_rng(1)
            regions = [
                {
                    "shape_attributes": dict(
                        zip(
                            ("name", "all_points_x", "all_points_y"),
                            ("polygon", *outline(rng, int(rng.integers(20, 120)), False)),
                            strict=True,
                        )
                    )
                }
                for _ in range(10)
            ]
            rasterize(regions, (W, H))
            reps = 200
            t = time.perf_counter()
            for _ in range(reps):
                mask = rasterize(regions, (W, H))
            raster_ms = (time.perf_counter() - t) / reps * 1000
            assert mask.shape == (H, W) and mask.any()

    def r3(x):
        return None if x is None else round(x, 3)

    result = {
        "load_s": r3(load_s),
        "save_s": r3(save_s),
        "check_s": r3(check_s),
        "rasterize_per_image_ms": r3(raster_ms),
        "check_dataset_s": r3(check_dataset_s),
        "json_loads_s": r3(json_s),
        "orjson_loads_s": r3(orjson_s),
        "images": report.images if report is not None else len(project.images),
        "regions": report.regions if report is not None else project.region_count,
        "problems_by_kind": kinds,
        "file_mb": file_mb,
        "generate_s": round(gen_s, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>24}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
