"""Benchmark raster.rasterize: prints JSON (ms per mask). Run: .venv/bin/python tests/perf/bench_raster.py"""

from __future__ import annotations

import json
import math
import time

import numpy as np
from viaseg.core.annotation.raster import mask_to_polygons, rasterize


def _regions(rng, w, h, n=10, vertices=40):
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
        r = rng.uniform(0.02, 0.1) * w
        t = np.linspace(0, 2 * math.pi, vertices, endpoint=False)
        rad = r * (1 + 0.3 * rng.uniform(-1, 1, vertices))
        xs, ys = np.round(cx + rad * np.cos(t)).astype(int), np.round(cy + rad * np.sin(t)).astype(int)
        out.append({"name": "polygon", "all_points_x": xs.tolist(), "all_points_y": ys.tolist()})
    return out


def _ms(fn, reps):
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return round((time.perf_counter() - t) / reps * 1000, 3)


def main():
    rng = np.random.default_rng(0)
    r1 = _regions(rng, 1024, 768)
    r12 = _regions(rng, 4000, 3000)
    mask = rasterize(r1, (1024, 768))
    res = {
        "rasterize_per_image_ms": _ms(lambda: rasterize(r1, (1024, 768)), 300),
        "rasterize_1024x768_to_256_ms": _ms(lambda: rasterize(r1, (1024, 768), (256, 256)), 300),
        "rasterize_12mp_to_256_ms": _ms(lambda: rasterize(r12, (4000, 3000), (256, 256)), 100),
        "rasterize_12mp_to_512_ms": _ms(lambda: rasterize(r12, (4000, 3000), (512, 512)), 50),
        "mask_to_polygons_1024x768_ms": _ms(lambda: mask_to_polygons(mask), 100),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
