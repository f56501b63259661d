"""Experiment: the click network's inference settings, chosen out of fold (docs/RESULTS.md, twenty-third session).

Each fold's network (``exp_clicknet.py --fold F --no-map --out NET_F.keras``, trained without fold F) runs the
app's way (``core.ml.clicknet.ClickNet.first_region`` for the first click, then ``core.assist``'s corrections,
no map) on fold F's photos with the NoC protocol, for each setting variant:

    python tests/perf/exp_clicknet_settings.py --oof CV_F0 CV_F1234 --nets 0=NET_0.keras 1=NET_1.keras --json
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
    "out 256": {"OUT": 256},
    "window 1.5x": {"ZOOM": 1.5},
    "window 2.5x": {"ZOOM": 2.5},
    "threshold 0.4": {"thr": 0.4},
    "flip averaged": {"flip": True},
    "three looks": {"LOOKS": 3},
    "net adds at positive clicks outside": {"net_parts": True},
    "push width cap 0.6": {"WIDTH_CAP": 0.6},
    "push width cap 1.5": {"WIDTH_CAP": 1.5},
    # the corrections' other settings (core.assist.edit), chosen in the twentieth session on the map's regions,
    # tried again after the network's first regions (twenty-fourth session)
    "push gain 1.5": {"edit": {"EDIT_GAIN": 1.5}},
    "push gain 2.5": {"edit": {"EDIT_GAIN": 2.5}},
    "push widths 2, 1": {"edit": {"EDIT_WIDTHS": (2.0, 1.0)}},
    "push widths 1, 0.7": {"edit": {"EDIT_WIDTHS": (1.0, 0.7)}},
    "kept discs 0.3": {"edit": {"KEEP": 0.3}},
    "kept discs 0.7": {"edit": {"KEEP": 0.7}},
    # a positive click outside the region asks the network as for a first click there: its region's part holding
    # the click is added when it does not touch the region ("separate", as the map's parts are), or always
    "net first-click parts, separate": {"first_parts": "separate"},
    "net first-click parts, always": {"first_parts": "always"},
}


def main(argv=None) -> int:
    import exp_clicknet as E

    args = E.variant_args(__doc__, VARIANTS, argv)
    import keras
    import viaseg.core.ml.fast_layers  # noqa: F401  (the networks' layers)
    from viaseg.core.assist.mask import RegionMask
    from viaseg.core.assist.protocol import click_protocol, clicks_to
    from viaseg.core.assist.segment import Segmenter
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
            self.seg.clicks_so_far = clicks
            f = clicks[0]
            if f not in self.asked:
                self.asked.add(f)
                fr = self.net.first_region(self.img, self.seg.size_wh, f.x, f.y, self.thr)
                if fr.mask.any():
                    self.seg.give_first_region(
                        f, RegionMask(fr.mask, fr.x0, fr.y0, fr.scale, "click network")
                    )
            return self.seg.segment(clicks, box, refine)

    def positive_outside(state, c):
        """(row, col) on the correction grid of a positive click outside the region, else None."""
        from viaseg.core.assist import edit

        r, col = edit.cell(c, state.scale, state.mask.shape)[2:]
        return (r, col) if c.positive and not state.mask[r, col] else None

    class NetParts(Segmenter):
        """A positive click outside the region: the network, run as trained for corrections (the window
        around the region and the click, the region as previous mask, every click), adds its region's part
        holding the click (instead of the tool's push)."""

        net: C.ClickNet
        work: np.ndarray
        clicks_so_far: list

        def _separate_part(self, state, c):
            from viaseg.core.assist import edit

            if positive_outside(state, c) is None:
                return None
            g = state.scale
            gh, gw = state.mask.shape
            img = self.work
            h, w = img.shape[:2]
            s = w / float(self.size_wh[0])
            # the region on the work image
            cur = cv2.resize(
                state.mask.astype(np.uint8),
                (round(gw * g * s), round(gh * g * s)),
                interpolation=cv2.INTER_NEAREST,
            )[:h, :w]
            cur = np.pad(cur, ((0, max(0, h - cur.shape[0])), (0, max(0, w - cur.shape[1]))))
            x0, y0, x1, y1 = C.bbox(cur) if cur.any() else (c.x * s, c.y * s, c.x * s + 1, c.y * s + 1)
            x0, y0 = min(x0, c.x * s), min(y0, c.y * s)
            x1, y1 = max(x1, c.x * s), max(y1, c.y * s)
            win = C.zoom_window((x0, y0, x1, y1), w, h, 1.5)
            k = C.S / win[2]
            upto = self.clicks_so_far[: self.clicks_so_far.index(c) + 1]
            cw = [((q.x * s - win[0]) * k, (q.y * s - win[1]) * k, q.positive) for q in upto]
            prev = C.warp(cur, win, cv2.INTER_NEAREST).astype(np.float32)
            gd = C.guide_of(np.zeros((C.S, C.S), np.float32), prev, cw)
            out = self.net._run(C.warp(img, win), gd) >= 0.5
            full = C.unwarp(out, win, (h, w)).astype(np.uint8)
            grid = cv2.resize(full, (gw, gh), interpolation=cv2.INTER_NEAREST) > 0
            _, lab = cv2.connectedComponents(grid.astype(np.uint8))
            r, col = edit.cell(c, g, (gh, gw))[2:]
            if not lab[r, col]:
                return None
            return lab == lab[r, col]

    class FirstParts(Segmenter):
        """A positive click outside the region: the network's first-click region at that click (its part
        holding the click, on the correction grid) is added as a part (``mode`` "separate": only when it does
        not touch the region)."""

        net: C.ClickNet
        photo: np.ndarray
        mode: str

        def _separate_part(self, state, c):
            from viaseg.core.assist import edit

            at = positive_outside(state, c)
            if at is None:
                return None
            r, col = at
            fr = self.net.first_region(self.photo, self.size_wh, c.x, c.y)
            if not fr.mask.any():
                return None
            part = edit.start(RegionMask(fr.mask, fr.x0, fr.y0, fr.scale, "click network"), self.size_wh).mask
            _, lab = cv2.connectedComponents(part.astype(np.uint8))
            if not lab[r, col]:
                return None
            part = lab == lab[r, col]
            near = cv2.dilate(state.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            if self.mode == "separate" and (part & near).any():
                return None
            return part

    photos = E.load_photos(args.oof, no_map=True)
    from viaseg.core.assist import edit

    defaults = (C.OUT, C.ZOOM, C.LOOKS)
    cap = edit.WIDTH_CAP
    edit_defaults = {k: getattr(edit, k) for k in ("EDIT_GAIN", "EDIT_WIDTHS", "KEEP")}
    rows: dict[str, list] = {}
    for spec in args.nets:
        fold, path = spec.split("=", 1)
        model = keras.models.load_model(path, compile=False)
        for name in args.only or list(VARIANTS):
            v = VARIANTS[name]
            C.OUT, C.ZOOM, C.LOOKS = (
                v.get(k, d) for k, d in zip(("OUT", "ZOOM", "LOOKS"), defaults, strict=True)
            )
            edit.WIDTH_CAP = v.get("WIDTH_CAP", cap)
            for k, val in {**edit_defaults, **v.get("edit", {})}.items():
                setattr(edit, k, val)
            net = (FlipNet if v.get("flip") else C.ClickNet)(model)
            for _, img, (w, h), gt in E.fold_regions(photos, int(fold)):
                if v.get("first_parts"):
                    base = FirstParts((w, h), None, img)
                    base.net, base.photo, base.mode = net, img, v["first_parts"]
                elif v.get("net_parts"):
                    base = NetParts((w, h), None, img)
                    base.net, base.work = net, C.work_image(img)
                else:
                    base = Segmenter((w, h), None, img)
                seg = WithNet(base, net, img, v.get("thr", 0.5))
                rows.setdefault(name, []).append(click_protocol(seg, gt, 20, 0.85))
            print(fold, name, file=sys.stderr)
    C.OUT, C.ZOOM, C.LOOKS = defaults
    edit.WIDTH_CAP = cap
    for k, val in edit_defaults.items():
        setattr(edit, k, val)
    out = {
        name: {
            "noc80": round(float(np.mean([clicks_to(r, 0.8) for r in rs])), 3),
            "per_region": [clicks_to(r, 0.8) for r in rs],
            "iou_at_1": round(float(np.mean([r[0] for r in rs])), 3),
            "regions": len(rs),
        }
        for name, rs in rows.items()
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
