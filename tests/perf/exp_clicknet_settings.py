"""Experiment: the click network's inference settings, chosen out of fold (docs/RESULTS.md, twenty-third session).

Each fold's network (``exp_clicknet.py --fold F --no-map --out NET_F.keras``, trained without fold F) runs the
app's way (``core.ml.clicknet.ClickNet.first_region`` for the first click, then ``core.assist``'s corrections,
no map) on fold F's photos with the NoC protocol, for each setting variant:

    python tests/perf/exp_clicknet_settings.py --oof CV_F0 CV_F1234 --nets 0=NET_0.keras 1=NET_1.keras --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2
import numpy as np

VARIANTS = {
    "as shipped": {},
    "out 256": {"OUT": 256},
    "window 1.5x": {"ZOOM": 1.5},
    "window 2.5x": {"ZOOM": 2.5},
    "threshold 0.4": {"thr": 0.4},
    "flip averaged": {"flip": True},
    "three looks": {"LOOKS": 3},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--oof", nargs="+", required=True, metavar="CROSSVAL_DIR")
    ap.add_argument("--nets", nargs="+", required=True, metavar="FOLD=NET.keras")
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS), help="these variants only")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import exp_clicknet as E
    import keras
    import viaseg.core.ml.fast_layers  # noqa: F401  (the networks' layers)
    from viaseg.core.assist.mask import RegionMask
    from viaseg.core.assist.protocol import click_protocol, clicks_to
    from viaseg.core.assist.segment import Segmenter
    from viaseg.core.imaging.imageio import read_image
    from viaseg.core.ml import clicknet as C

    class FlipNet(C.ClickNet):
        def _run(self, img_w, guide):
            a = super()._run(img_w, guide)
            b = super()._run(img_w[:, ::-1].copy(), guide[:, ::-1].copy())[:, ::-1]
            return (a + b) / 2

    class WithNet:
        def __init__(self, seg, net, img, thr):
            self.seg, self.net, self.img, self.thr, self.asked = seg, net, img, thr, set()

        def segment(self, clicks, box=None, refine=None):
            f = clicks[0]
            if f not in self.asked:
                self.asked.add(f)
                fr = self.net.first_region(self.img, self.seg.size_wh, f.x, f.y, self.thr)
                if fr.mask.any():
                    self.seg.give_first_region(
                        f, RegionMask(fr.mask, fr.x0, fr.y0, fr.scale, "click network")
                    )
            return self.seg.segment(clicks, box, refine)

    photos = E.load_photos(args.oof, no_map=True)
    defaults = (C.OUT, C.ZOOM, C.LOOKS)
    rows: dict[str, list] = {}
    for spec in args.nets:
        fold, path = spec.split("=", 1)
        model = keras.models.load_model(path, compile=False)
        test = [d for d in photos if d["fold"] == int(fold)]
        for name in args.only or list(VARIANTS):
            v = VARIANTS[name]
            C.OUT, C.ZOOM, C.LOOKS = (
                v.get(k, d) for k, d in zip(("OUT", "ZOOM", "LOOKS"), defaults, strict=True)
            )
            net = (FlipNet if v.get("flip") else C.ClickNet)(model)
            for d in test:
                img = read_image(d["path"])
                h, w = img.shape[:2]
                for g in d["regs"]:
                    gt = cv2.resize(g.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
                    if gt.sum() >= 16:
                        seg = WithNet(Segmenter((w, h), None, img), net, img, v.get("thr", 0.5))
                        rows.setdefault(name, []).append(click_protocol(seg, gt, 20, 0.85))
            print(fold, name, file=sys.stderr)
    C.OUT, C.ZOOM, C.LOOKS = defaults
    out = {
        name: {
            "noc80": round(float(np.mean([clicks_to(r, 0.8) for r in rs])), 3),
            "iou_at_1": round(float(np.mean([r[0] for r in rs])), 3),
            "regions": len(rs),
        }
        for name, rs in rows.items()
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
