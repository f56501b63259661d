"""Benchmark imageio.read_image on a synthetic 12-MP JPEG: full decode vs reduced decode for max_side.
Prints JSON. Run: .venv/bin/python tests/perf/bench_imageio.py"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from viaseg.core.imaging.imageio import image_size, read_image


def _ms(fn, reps):
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return round((time.perf_counter() - t) / reps * 1000, 2)


def main():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "12mp.jpg"
        cv2.imwrite(str(p), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        res = {
            "jpeg_12mp_bytes": p.stat().st_size,
            "read_image_12mp_full_ms": _ms(lambda: read_image(p), 5),
            "read_image_12mp_max_side_512_ms": _ms(lambda: read_image(p, max_side=512), 10),
            "read_image_12mp_max_side_1024_ms": _ms(lambda: read_image(p, max_side=1024), 10),
            "cv2_imread_12mp_ms": _ms(lambda: cv2.imread(str(p)), 5),
            "image_size_12mp_ms": _ms(lambda: image_size(p), 200),
            "shape_max_side_512": list(read_image(p, max_side=512).shape),
        }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
