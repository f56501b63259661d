"""Experiment: the shape of a positive correction's push, chosen out of fold (docs/RESULTS.md, twenty-seventh
session).

The tool's push (``core.assist.edit.apply``) is round: a positive click at distance ``d`` outside the region
bulges the outline out by a Gaussian as wide as ``d`` (at most the region's radius). Where a long thin damage
(a scratch along a bumper) is missed at its far end, the protocol's click lies on the strip's middle line far
from the region, and a round bulge that wide spills over the paint on both sides. The variants here shape the
push as a *finger*: as long as before along the line from the region's nearest point to the click, and across
it only as wide as the region is thick where it is nearest to the click (its largest inside distance within
``REACH`` x ``d`` of that point, times ``SCALE``): a thin region is continued thin, a round one as before.

Each fold's click network (``exp_clicknet.py --fold F --no-map --out NET_F.keras``, trained without fold F) gives
the first click's region, the app's way; the corrections then run with each variant, no map; NoC protocol on
fold F's photos:

    python tests/perf/exp_push_shape.py --oof FOLDS_DIR --nets 0=NET_0.keras --json

``FOLDS_DIR``: ``tests/perf/make_folds.py`` (the fold list of ``viaseg crossval``, no training needed here).
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
    "finger, thickness x1": {"finger": (1.0, 1.0)},
    "finger, thickness x1.5": {"finger": (1.5, 1.0)},
    "finger, thickness x0.7": {"finger": (0.7, 1.0)},
    "finger, thickness x1, reach 0.5": {"finger": (1.0, 0.5)},
}


def finger_apply(edit, scale: float, reach: float):
    """``edit.apply`` with a positive click outside the region pushing a finger (see the module's text)."""
    shipped = edit.apply

    def apply(state, click, positives, push_scale=None):
        g = state.scale
        gh, gw = state.mask.shape
        cx, cy, r, c = edit.cell(click, g, (gh, gw))
        if not click.positive or state.mask[r, c] or not state.mask.any():
            return shipped(state, click, positives, push_scale)
        ys, xs = np.nonzero(state.mask)
        k = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
        qx, qy = float(xs[k]), float(ys[k])
        d = float(np.hypot(qx - cx, qy - cy)) + 0.5
        inside = cv2.distanceTransform(np.pad(state.mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        rr = max(1.0, reach * d)
        y0, y1 = max(0, int(qy - rr)), min(gh, int(qy + rr) + 1)
        x0, x1 = max(0, int(qx - rr)), min(gw, int(qx + rr) + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        near = (xx - qx) ** 2 + (yy - qy) ** 2 <= rr**2
        thick = float(inside[y0:y1, x0:x1][near].max())  # the region's half-thickness near q
        ux, uy = (cx - qx) / d, (cy - qy) / d
        # the push as shipped, but the Gaussian's across-width narrowed to the region's thickness there
        radius = float(np.sqrt(state.mask.sum() / np.pi)) + 0.5
        wd = min(d, edit.WIDTH_CAP * radius)
        across = min(1.0, max(1.0, scale * thick) / max(wd, 1e-6))
        if across >= 1.0:
            return shipped(state, click, positives, push_scale)
        # work on a copy of the shipped apply with an anisotropic d2 (the code path of edit.apply)
        out = state.copy()
        phi = edit.signed_distance(state.mask)
        reach_px = int(np.ceil(4.0 * max(edit.EDIT_WIDTHS) * wd + edit.KEEP * wd + 2))
        r0, r1, c0, c1 = (
            max(0, r - reach_px),
            min(gh, r + reach_px + 1),
            max(0, c - reach_px),
            min(gw, c + reach_px + 1),
        )
        yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        a = (xx - cx) * ux + (yy - cy) * uy
        b = -(xx - cx) * uy + (yy - cy) * ux
        d2 = a**2 + (b / across) ** 2  # across distances count 1/across times more
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= (edit.KEEP * wd * across + 1.0) ** 2
        kin, kout = out.keep_in[r0:r1, c0:c1], out.keep_out[r0:r1, c0:c1]
        kin |= disc
        kout &= ~disc
        kept = max(1.0, float(kin.sum() + kout.sum()))
        win = phi[r0:r1, c0:c1]
        best = None
        for kk in edit.EDIT_WIDTHS:
            bump = (edit.EDIT_GAIN * d) * np.exp(-d2 / (2.0 * (kk * wd) ** 2))
            m = (win - bump) < 0
            undone = float((~m & kin).sum() + (m & kout).sum()) / kept
            best = (m | kin) & ~kout
            if undone <= edit.TOLERANCE:
                break
        out.mask[r0:r1, c0:c1] = best
        out.mask |= out.keep_in
        out.mask &= ~out.keep_out
        return edit._keep_clicked(out, positives)

    return apply


def main(argv=None) -> int:
    import exp_clicknet as E
    from bench_assist import _WithNet as WithNet  # the first click's region from the network, as the app

    args = E.variant_args(__doc__, VARIANTS, argv)
    import keras
    import viaseg.core.ml.fast_layers  # noqa: F401  (the networks' layers)
    from viaseg.core.assist import edit
    from viaseg.core.assist.protocol import click_protocol
    from viaseg.core.assist.segment import Segmenter
    from viaseg.core.ml import clicknet as C

    photos = E.load_photos(args.oof, no_map=True)
    shipped = edit.apply
    rows: dict[str, list] = {}
    styles: dict[str, list] = {}
    try:
        for spec in args.nets:
            fold, path = spec.split("=", 1)
            net = C.ClickNet(keras.models.load_model(path, compile=False))
            for name in args.only or list(VARIANTS):
                v = VARIANTS[name]
                edit.apply = shipped  # (each finger falls back to the shipped push, not to the previous one)
                if "finger" in v:
                    edit.apply = finger_apply(edit, *v["finger"])
                for d, img, (w, h), gt in E.fold_regions(photos, int(fold)):
                    seg = WithNet(Segmenter((w, h), None, img), net, img)
                    rows.setdefault(name, []).append(click_protocol(seg, gt, 20, 0.85))
                    styles.setdefault(name, []).append(d["style"])
                print(fold, name, file=sys.stderr)
    finally:
        edit.apply = shipped
    out = E.variant_table(rows, styles)
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
