"""Experiment: the click network's first region fused with the model's map, chosen out of fold (docs/RESULTS.md,
twenty-fourth session).

With a model, the app takes the first click's region from the click network alone and uses the model's map only
where the network finds nothing and for the corrections. Here the network's probabilities in its last window
are averaged with the map there (the map rescaled so that its fold model's calibrated threshold lands on 0.5),
weight ``a`` on the network, and cut at 0.5; only the parts that overlap the network's own region (else the part
under the click) are kept. Each fold's no-map network (``exp_clicknet.py --fold F --no-map``, trained without
fold F) on fold F's photos, the out-of-fold maps of the 600-s cross-validation, the NoC protocol, the tool's
corrections with the map as the app runs them:

    python tests/perf/exp_clicknet_fuse.py --oof CV_F0 CV_F1234 --nets 0=NET_0.keras 1=NET_1.keras --json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2
import numpy as np

VARIANTS = {
    "map only (no network)": None,
    "network, then the map's tool (the app)": 1.0,
    "fused a=0.7": 0.7,
    "fused a=0.5": 0.5,
}


def map_in_window(prob_u8: np.ndarray, full_wh, x0: float, y0: float, scale: float, side: int) -> np.ndarray:
    """The map (uint8, any size covering the photo) sampled on the window's ``side`` x ``side`` grid (0..1)."""
    mh, mw = prob_u8.shape[:2]
    kx, ky = mw / full_wh[0], mh / full_wh[1]
    m = np.float32(
        [[scale * kx, 0, (x0 + 0.5 * scale) * kx - 0.5], [0, scale * ky, (y0 + 0.5 * scale) * ky - 0.5]]
    )
    out = cv2.warpAffine(
        prob_u8.astype(np.float32) / 255.0,
        m,
        (side, side),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )
    return out


def fuse(p_net: np.ndarray, m: np.ndarray, thr: float, a: float, click_rc) -> np.ndarray:
    """The fused mask: ``a`` x the network + (1 - a) x the map rescaled to put ``thr`` at 0.5, cut at 0.5, the
    parts overlapping the network's region kept (else the part under the click)."""
    mm = np.where(m < thr, 0.5 * m / thr, 0.5 + 0.5 * (m - thr) / max(1e-6, 1 - thr))
    f = (a * p_net + (1 - a) * mm) >= 0.5
    n, lab = cv2.connectedComponents(f.astype(np.uint8))
    own = p_net >= 0.5
    keep = np.unique(lab[own & f])
    keep = keep[keep > 0]
    if keep.size == 0:
        r, c = click_rc
        if 0 <= r < f.shape[0] and 0 <= c < f.shape[1] and lab[r, c]:
            keep = np.array([lab[r, c]])
        else:
            return own
    return np.isin(lab, keep)


def main(argv=None) -> int:
    import exp_clicknet as E

    args = E.variant_args(__doc__, VARIANTS, argv)
    import keras
    import viaseg.core.ml.fast_layers  # noqa: F401  (the networks' layers)
    from viaseg.core.assist.mask import RegionMask
    from viaseg.core.assist.protocol import click_protocol, clicks_to
    from viaseg.core.assist.segment import Segmenter
    from viaseg.core.ml import clicknet as C

    thresholds = {}
    for d in args.oof:
        for f in Path(d).glob("fold_*/summary.json"):
            thresholds[int(f.parent.name.split("_")[1])] = float(json.loads(f.read_text())["threshold"])

    class WithNet:
        def __init__(self, seg, net, img, prob, thr, a):
            self.seg, self.net, self.img, self.prob, self.thr, self.a = seg, net, img, prob, thr, a
            self.asked = set()

        def segment(self, clicks, box=None, refine=None):
            f = clicks[0]
            if self.a is not None and f not in self.asked:
                self.asked.add(f)
                fp = self.net.first_probs(self.img, self.seg.size_wh, f.x, f.y)
                if self.a >= 1.0:
                    mask = fp.mask >= 0.5
                else:
                    m = map_in_window(self.prob, self.seg.size_wh, fp.x0, fp.y0, fp.scale, fp.mask.shape[0])
                    rc = (int((f.y - fp.y0) / fp.scale), int((f.x - fp.x0) / fp.scale))
                    mask = fuse(fp.mask, m, self.thr, self.a, rc)
                if mask.any():
                    self.seg.give_first_region(f, RegionMask(mask, fp.x0, fp.y0, fp.scale, "click network"))
            return self.seg.segment(clicks, box, refine)

    photos = E.load_photos(args.oof)
    rows: dict[str, list] = {}
    styles: dict[str, list] = {}
    for spec in args.nets:
        fold, path = spec.split("=", 1)
        thr = thresholds[int(fold)]
        net = C.ClickNet(keras.models.load_model(path, compile=False))
        for d, img, (w, h), gt in E.fold_regions(photos, int(fold)):
            for name in args.only or list(VARIANTS):
                seg = WithNet(
                    Segmenter((w, h), d["prob"].astype(np.float32) / 255.0, img, thr),
                    net,
                    img,
                    d["prob"],
                    thr,
                    VARIANTS[name],
                )
                rows.setdefault(name, []).append(click_protocol(seg, gt, 20, 0.85))
                styles.setdefault(name, []).append(d["style"])
        print(fold, "done", file=sys.stderr)
    out = {}
    for name, rs in rows.items():
        n80 = np.array([clicks_to(r, 0.8) for r in rs], float)
        st = np.array(styles[name])
        out[name] = {
            "noc80": round(float(n80.mean()), 3),
            "iou_at_1": round(float(np.mean([r[0] for r in rs])), 3),
            "iou_at_3": round(float(np.mean([r[min(2, len(r) - 1)] for r in rs])), 3),
            "noc80_close_ups": round(float(n80[st == "close-ups"].mean()), 3),
            "noc80_whole_cars": round(float(n80[st == "whole cars"].mean()), 3),
            "regions": len(rs),
            "per_region": [int(v) for v in n80],
        }
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
