"""Experiment: corrections guided by the click network's probabilities, chosen out of fold (docs/RESULTS.md,
twenty-fourth session).

The tool's corrections (``core.assist.edit.apply``) push the outline through each later click by a Gaussian bump
of the signed distance, whatever the photo shows there. Here the bump is scaled per pixel by how sure the click
network's first region was there (its last window's probabilities, resampled onto the correction grid; 0.5
outside the window): a positive click pushes further where the network saw damage, less where it did not, and
a negative click the other way round. Each fold's no-map network on its fold's photos, no map, the NoC protocol:

    python tests/perf/exp_clicknet_guided.py --oof CV_F0 CV_F1234 --nets 0=NET_0.keras 1=NET_1.keras --json
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

# name -> (low, high): the bump's factor where the network's probability is 0 and 1 (linear between); None =
# the tool as shipped
VARIANTS = {
    "as shipped": None,
    "0.5..1.5": (0.5, 1.5),
    "0.25..1.75": (0.25, 1.75),
    "0..2": (0.0, 2.0),
}


def prob_on_grid(probs: np.ndarray, x0: float, y0: float, scale: float, size_wh) -> np.ndarray:
    """The network's window probabilities on the correction grid of a photo of ``size_wh`` (0.5 outside)."""
    from viaseg.core.assist import edit

    g, (gh, gw) = edit.grid_for(size_wh)
    m = np.float32(
        [[g / scale, 0, (0.5 * g - x0) / scale - 0.5], [0, g / scale, (0.5 * g - y0) / scale - 0.5]]
    )
    return cv2.warpAffine(
        probs.astype(np.float32),
        m,
        (gw, gh),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.5,
    )


GUIDE: dict = {"p": None, "span": None}


def guided_apply(state, click, positives):
    """``core.assist.edit.apply`` with its push scaled by the network's probability (``GUIDE``), normalized to
    1 at the click (the outline still moves through it)."""
    p, span = GUIDE["p"], GUIDE["span"]
    if p is None or span is None or p.shape != state.mask.shape:
        return ORIGINAL_APPLY(state, click, positives)
    from viaseg.core.assist.edit import cell

    r, c = cell(click, state.scale, state.mask.shape)[2:]
    lo, hi = span
    f = lo + (hi - lo) * (p if click.positive else 1.0 - p)
    return ORIGINAL_APPLY(state, click, positives, push_scale=f / max(1e-3, float(f[r, c])))


ORIGINAL_APPLY = None


def main(argv=None) -> int:
    global ORIGINAL_APPLY
    import exp_clicknet as E

    args = E.variant_args(__doc__, VARIANTS, argv)
    import keras
    import viaseg.core.ml.fast_layers  # noqa: F401  (the networks' layers)
    from viaseg.core.assist import edit
    from viaseg.core.assist.mask import RegionMask
    from viaseg.core.assist.protocol import click_protocol, first_click
    from viaseg.core.assist.segment import Segmenter
    from viaseg.core.ml import clicknet as C

    ORIGINAL_APPLY = edit.apply
    edit.apply = guided_apply

    photos = E.load_photos(args.oof, no_map=True)
    rows: dict[str, list] = {}
    styles: dict[str, list] = {}
    for spec in args.nets:
        fold, path = spec.split("=", 1)
        net = C.ClickNet(keras.models.load_model(path, compile=False))
        for d, img, (w, h), gt in E.fold_regions(photos, int(fold)):
            fx, fy = first_click(gt)
            fp = net.first_probs(img, (w, h), fx, fy)
            pg = prob_on_grid(fp.mask, fp.x0, fp.y0, fp.scale, (w, h))
            for name in args.only or list(VARIANTS):
                GUIDE["p"], GUIDE["span"] = pg, VARIANTS[name]
                seg = Segmenter((w, h), None, img)
                mask = fp.mask >= 0.5
                if mask.any():
                    seg.give_first_region(
                        edit.Click(fx, fy, True),
                        RegionMask(mask, fp.x0, fp.y0, fp.scale, "click network"),
                    )
                rows.setdefault(name, []).append(click_protocol(seg, gt, 20, 0.85))
                styles.setdefault(name, []).append(d["style"])
        print(fold, "done", file=sys.stderr)
    out = E.variant_table(rows, styles)
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
