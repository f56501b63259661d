"""Experiment: later clicks first move the click network's threshold, then push (docs/RESULTS.md, thirty-sixth
session; not adopted).

The tool takes the click network's region at 0.5 and corrects every later click with a local push of the outline
(``core.assist.edit``). Many regions creep up 0.01-0.02 IoU a click because their outline is off all round. Here
a later click first tries to move the level at which the network's probabilities (``ClickNet.first_probs``) are
cut: a positive click outside the region lowers it to ``margin`` x the probability there, a negative click inside
raises it above the probability there, if the new level keeps every earlier click on its side and the area
changes at most ``cap``-fold. The first click the level cannot explain and every click after it are pushed as
the tool does (from the last level's region). NoC protocol, no map, the shipped click network:

    python tests/perf/exp_click_level.py ../shared/datasets/car-damage:train \
        ../shared/datasets/car-damage-extra-split/train:train --variants base,level,level_m8

The shipped network trained on these photos, so its probabilities there are in sample (sharper than on new
photos); the variants are compared on the same regions, paired (``paired``: mean extra clicks to IoU 0.80).
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
from bench_assist import _WithNet
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.annotation.raster import rasterize
from viaseg.core.assist.mask import RegionMask, Result
from viaseg.core.assist.protocol import click_protocol, clicks_to
from viaseg.core.assist.segment import Segmenter
from viaseg.core.imaging.imageio import read_image
from viaseg.core.ml.clicknet import ClickNet


class LevelNet:
    """A segmenter of one photo: the network's region at a level the clicks move, then the tool's pushes."""

    def __init__(self, image, size_wh, net, pmin=0.05, cap=3.0, margin=0.9, tmax=0.98):
        self.image, self.size_wh, self.net = image, size_wh, net
        self.pmin, self.cap, self.margin, self.tmax = pmin, cap, margin, tmax
        self.probs, self.segs = {}, {}

    def segment(self, clicks, box=None, refine=None):
        first = clicks[0]
        if first not in self.probs:
            self.probs[first] = self.net.first_probs(self.image, self.size_wh, first.x, first.y)
        fp = self.probs[first]
        P = fp.mask
        n = P.shape[0]

        def rc(c):
            col = int(round((c.x - fp.x0) / fp.scale - 0.5))
            row = int(round((c.y - fp.y0) / fp.scale - 0.5))
            return (row, col) if 0 <= row < n and 0 <= col < n else None

        def region_at(t, pos):
            m = (P >= t).astype(np.uint8)
            _, lab = cv2.connectedComponents(m)
            ids = {lab[p] for p in (rc(c) for c in pos) if p is not None and lab[p]}
            if not ids:
                return m > 0
            return np.isin(lab, list(ids))

        t, k, pos, neg = 0.5, 1, [first], []
        cur = region_at(t, pos)
        for c in clicks[1:]:
            p_ = rc(c)
            if p_ is None:
                break
            p = float(P[p_])
            if c.positive:
                if cur[p_] or p < self.pmin:
                    break
                t2 = p * self.margin
                new = region_at(t2, pos + [c])
                if (
                    any(new[q] for q in (rc(x) for x in neg) if q is not None)
                    or new.sum() > self.cap * cur.sum()
                ):
                    break
                pos.append(c)
            else:
                if not cur[p_]:
                    break
                t2 = min(self.tmax, 1 - (1 - p) * self.margin)
                if t2 <= p:
                    break
                new = region_at(t2, pos)
                if (
                    not all(new[q] for q in (rc(x) for x in pos) if q is not None)
                    or new.sum() * self.cap < cur.sum()
                    or not new.any()
                ):
                    break
                neg.append(c)
            t, cur, k = t2, new, k + 1
        region0 = RegionMask(cur, fp.x0, fp.y0, fp.scale, "click network")
        if not cur.any():
            return Result(None, "nothing")
        if k == len(clicks):
            return Result(region0, "level")
        key = (first, t, k)
        if key not in self.segs:
            s = Segmenter(self.size_wh, None, self.image)
            s.give_first_region(first, region0)
            self.segs[key] = s
        return self.segs[key].segment([first] + list(clicks[k:]), refine=refine)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--variants", default="base,level")
    ap.add_argument("--out")
    ap.add_argument("--exclude-train-duplicates", action="store_true")
    a = ap.parse_args()
    from viaseg.core.ml.evaluate import choose_split, train_duplicates

    net = ClickNet.load()
    variants = {
        "base": None,
        "level": dict(),
        "level_p02": dict(pmin=0.02),
        "level_cap2": dict(cap=2.0),
        "level_m8": dict(margin=0.8),
        "level_cap5": dict(cap=5.0),
        "level_m95": dict(margin=0.95),
    }
    use = a.variants.split(",")
    rows = {v: [] for v in use}
    src = []
    for spec in a.specs:
        root, split_name = spec.rsplit(":", 1)
        ds = load_dataset(root)
        split = choose_split(ds, split_name)
        entries = list(split.entries)
        if a.exclude_train_duplicates:
            dup = {e.key for e in train_duplicates(ds, split)}
            entries = [e for e in entries if e.key not in dup]
        if a.limit and len(entries) > a.limit:
            st = len(entries) / a.limit
            entries = [entries[int(i * st)] for i in range(a.limit)]
        for e in entries:
            if not Path(e.path).is_file():
                continue
            img = read_image(e.path)
            h, w = img.shape[:2]
            segs = {}
            for v in use:
                segs[v] = (
                    _WithNet(Segmenter((w, h), None, img), net, img)
                    if variants[v] is None
                    else LevelNet(img, (w, h), net, **variants[v])
                )
            for region in e.regions:
                gt = rasterize([region], (w, h)) > 0
                if gt.sum() < 16:
                    continue
                for v in use:
                    rows[v].append(click_protocol(segs[v], gt, 20, 0.80))
                src.append(root)
    out = {}
    for v in use:
        nocs = [clicks_to(r, 0.8) for r in rows[v]]
        out[v] = dict(
            noc80=round(float(np.mean(nocs)), 3),
            iou1=round(float(np.mean([r[0] for r in rows[v]])), 3),
            iou3=round(float(np.mean([r[min(2, len(r) - 1)] for r in rows[v]])), 3),
            never=sum(n == 20 for n in nocs),
        )
    if "base" in rows:
        b = np.array([clicks_to(r, 0.8) for r in rows["base"]])
        for v in use:
            d = np.array([clicks_to(r, 0.8) for r in rows[v]]) - b
            out[v]["paired"] = round(float(d.mean()), 3)
            out[v]["se"] = round(float(d.std(ddof=1) / np.sqrt(len(d))), 3)
    out["regions"] = len(src)
    print(json.dumps(out, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(dict(rows=rows, src=src)))


if __name__ == "__main__":
    main()
