"""Experiment: later clicks corrected by the click network near the click, the tool's push elsewhere (issue 17).

The app's later clicks push the region's outline through the click (``core.assist.edit.apply``): a smooth,
purely geometric bump that knows nothing of the photo, so an outline that should follow a dent's edge gets a
round bulge, and thin or ragged regions need click after click. The click network, asked again with every click
so far and the region as its previous mask (as it was trained, RITM-style), sees the photo's edges, but its own
corrections over the whole region were weaker than the push (twenty-second session). Here the network's answer
is taken only near the click (a disc of ``R`` x the click's distance to the outline), the push's everywhere
else, each click's kept discs as before; where the network leaves the clicked pixel on the wrong side, the push
alone. Out of fold as ``exp_clicknet_settings.py`` (each fold's no-map network on its held-out photos, no map):

    python tests/perf/exp_clicknet_local.py --oof CV_F0 CV_F1234 --nets 0=NET_0.keras 1=NET_1.keras --json
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
    "as shipped": {},
    "net within 1.5 d": {"R": 1.5},
    "net within 2.5 d": {"R": 2.5},
    "net within 4 d": {"R": 4.0},
    "net within 2.5 d, positive clicks only": {"R": 2.5, "positive_only": True},
}


def main(argv=None) -> int:
    import exp_clicknet as E

    args = E.variant_args(__doc__, VARIANTS, argv)
    import keras
    import viaseg.core.ml.fast_layers  # noqa: F401  (the networks' layers)
    from viaseg.core.assist import edit
    from viaseg.core.assist.protocol import click_protocol, clicks_to
    from viaseg.core.assist.segment import Segmenter
    from viaseg.core.ml import clicknet as C

    shipped_apply = edit.apply
    current: dict = {}

    def net_grid(state, click) -> np.ndarray | None:
        """The network's region (bool, on the state's grid), asked with every click so far up to ``click`` and
        the region as its previous mask, in a window around the region and the click."""
        seg = current["seg"]
        img = seg.work
        h, w = img.shape[:2]
        s = w / float(seg.size_wh[0])
        g = state.scale
        gh, gw = state.mask.shape
        cur = cv2.resize(
            state.mask.astype(np.uint8),
            (round(gw * g * s), round(gh * g * s)),
            interpolation=cv2.INTER_NEAREST,
        )[:h, :w]
        cur = np.pad(cur, ((0, max(0, h - cur.shape[0])), (0, max(0, w - cur.shape[1]))))
        x0, y0, x1, y1 = (
            C.bbox(cur) if cur.any() else (click.x * s, click.y * s, click.x * s + 1, click.y * s + 1)
        )
        x0, y0 = min(x0, click.x * s), min(y0, click.y * s)
        x1, y1 = max(x1, click.x * s), max(y1, click.y * s)
        win = C.zoom_window((x0, y0, x1, y1), w, h, 1.5)
        k = C.S / win[2]
        clicks = seg.clicks_so_far
        upto = clicks[: clicks.index(click) + 1] if click in clicks else [*clicks, click]
        cw = [((q.x * s - win[0]) * k, (q.y * s - win[1]) * k, q.positive) for q in upto]
        prev = C.warp(cur, win, cv2.INTER_NEAREST).astype(np.float32)
        gd = C.guide_of(np.zeros((C.S, C.S), np.float32), prev, cw)
        out = seg.net._run(C.warp(img, win), gd) >= 0.5
        full = C.unwarp(out, win, (h, w)).astype(np.uint8)
        return cv2.resize(full, (gw, gh), interpolation=cv2.INTER_NEAREST) > 0

    def local_apply(state, click, positives, push_scale=None):
        geo = shipped_apply(state, click, positives, push_scale)
        v = current["variant"]
        if geo is state or "R" not in v or (v.get("positive_only") and not click.positive):
            return geo
        cx, cy, r, c = edit.cell(click, state.scale, state.mask.shape)
        phi = edit.signed_distance(state.mask) if state.mask.any() else None
        d = abs(float(phi[r, c])) + 0.5 if phi is not None else 4.0
        net = net_grid(state, click)
        if net is None or bool(net[r, c]) != click.positive:
            return geo
        gh, gw = state.mask.shape
        yy, xx = np.ogrid[:gh, :gw]
        near = (xx - cx) ** 2 + (yy - cy) ** 2 <= (v["R"] * d) ** 2
        out = geo.copy()
        out.mask = np.where(near, net, geo.mask)
        out.mask |= out.keep_in
        out.mask &= ~out.keep_out
        return edit._keep_clicked(out, positives)

    from bench_assist import _WithNet

    class WithNet(_WithNet):
        """The benchmark's first click from the network, the clicks so far kept for ``net_grid``."""

        def segment(self, clicks, box=None, refine=None):
            self.seg.clicks_so_far = clicks
            return super().segment(clicks, box, refine)

    photos = E.load_photos(args.oof, no_map=True)
    rows: dict[str, list] = {}
    edit.apply = local_apply
    try:
        for spec in args.nets:
            fold, path = spec.split("=", 1)
            net = C.ClickNet(keras.models.load_model(path, compile=False))
            for name in args.only or list(VARIANTS):
                current["variant"] = VARIANTS[name]
                for _, img, (w, h), gt in E.fold_regions(photos, int(fold)):
                    base = Segmenter((w, h), None, img)
                    base.net, base.work = net, C.work_image(img)
                    current["seg"] = base
                    rows.setdefault(name, []).append(click_protocol(WithNet(base, net, img), gt, 20, 0.85))
                print(fold, name, file=sys.stderr)
    finally:
        edit.apply = shipped_apply
    out = {
        name: {
            "noc80": round(float(np.mean([clicks_to(r, 0.8) for r in rs])), 3),
            "per_region": [clicks_to(r, 0.8) for r in rs],
            "iou_at_1": round(float(np.mean([r[0] for r in rs])), 3),
            "iou_at_3": round(float(np.mean([r[min(2, len(r) - 1)] for r in rs])), 3),
            "regions": len(rs),
        }
        for name, rs in rows.items()
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
