"""Experiment (not a feature): a click-conditioned network for click to segment, measured against the tool.

Issue 17 asks whether a small network that takes the clicks as input (as RITM does) beats the map-and-edges
tool of ``core.assist``. This trains one on the photos of some cross-validation folds and runs the NoC
protocol (``core.assist.protocol``) on the held-out fold's regions, three ways, on the same regions and the
same out-of-fold maps:

- ``tool``: ``core.assist.Segmenter`` as the app runs it (the map's blob at the first click, GrabCut, local
  corrections);
- ``net``: the network alone: the first click on the whole photo, then a square window 2x the region found
  ("zoom-in"), each click re-run with the previous mask as input;
- ``net_first``: the network's region for the first click, then the tool's local corrections.

The network: the U-Net of ``core/ml/unet_mobilenet.py`` (ImageNet MobileNetV2 encoder) with a second input of
four guide channels (the out-of-fold map, the previous mask, positive and negative click discs), added after
the first convolution and joined at every decoder level; trained with simulated clicks (a first click inside
the region, corrections in a plausible earlier mask's largest errors, and after 100 steps the network's own
predictions half of the time, as RITM trains). Its map channel must be out of fold on training photos too (a
model's map of photos it trained on is nearly perfect), hence the cross-validation folders.

    python tests/perf/exp_clicknet.py --oof CV_F0 CV_F1234 --fold 0 --seconds 900 --out NET.keras --json

``CV_*``: ``viaseg crossval ../shared/datasets/car-damage ../shared/datasets/car-damage-extra-split/train
--out CV --time-limit 600 --calibrate 0.2 --seed 0`` (folds may be run apart with ``--only-folds``).
``--fold -1 --no-map --measure-on DATASET:SPLIT ...``: trained on every fold's photos, measured on other
photos (the validation sets; ``--exclude-train-duplicates`` as for ``bench_assist.py``). ``--seconds 0``
with an existing ``--out`` only measures; ``--no-map`` trains and measures without any map (the network then
has the photo and the clicks; the tool its colour-and-edge path).
``--export NPZ`` stores the weights as viaseg ships them (``core/ml/weights/clicknet_nomap.npz``: the
``--fold -1 --no-map --steps 1280`` network of docs/RESULTS.md). Results: docs/RESULTS.md (twenty-second and
twenty-third sessions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# the network, its inputs and windows are core's (core/ml/clicknet.py): the app runs what this trains
from viaseg.core.ml.clicknet import (  # noqa: E402
    S,
    bbox,
    build,
    full_window,
    guide_of,
    unwarp,
    warp,
    zoom_window,
)
from viaseg.core.ml.clicknet_train import batch, photo_from_entry  # noqa: E402  (simulated clicks)


def bce_dice(y, p):
    """The loss the measured runs used (a clipped log); building the network into viaseg, use
    ``core.ml.unet.bce_dice_loss`` instead (Keras' cross-entropy keeps its gradient where a prediction
    saturates)."""
    import keras.ops as K

    p = K.clip(p, 1e-6, 1 - 1e-6)
    bce = -K.mean(y * K.log(p) + (1 - y) * K.log(1 - p))
    inter = K.sum(y * p, axis=(1, 2, 3))
    return bce + K.mean(1 - (2 * inter + 1) / (K.sum(y + p, axis=(1, 2, 3)) + 1))


# ------------------------------------------------------------------------------------------------ training data
def _photo(entry, style: str, fold: int, prob: np.ndarray | None) -> dict:
    """One photo as training and measuring use it (core's: at most clicknet.WORK_SIDE a side, its map (None: empty) and
    each region's mask at that size), with its style and fold."""
    return photo_from_entry(entry, prob, style=style, fold=fold)


def load_photos(oof_dirs: list[str], no_map: bool = False) -> list[dict]:
    from viaseg.core.annotation.dataset import load_dataset

    rows = []
    for d in oof_dirs:
        report = json.loads((Path(d) / "crossval.json").read_text())
        rows += [(Path(d), r) for r in report["per_image"] if r.get("map_path")]
    datasets: dict = {}
    out = []
    for cv_dir, r in rows:
        root, split = r["source"].rsplit(":", 1)
        if root not in datasets:
            datasets[root] = load_dataset(root)
        entry = next(e for e in datasets[root].split(split).entries if e.filename == r["image"])
        prob = None if no_map else cv2.imread(str(cv_dir / r["map_path"]), cv2.IMREAD_GRAYSCALE)
        out.append(_photo(entry, "whole cars" if "extra" in root else "close-ups", r["fold"], prob))
    return out


def variant_args(doc: str, variants: dict, argv=None) -> argparse.Namespace:
    """The arguments of the out-of-fold variant experiments (``exp_clicknet_settings/fuse/guided.py``)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--oof", nargs="+", required=True, metavar="CROSSVAL_DIR")
    ap.add_argument("--nets", nargs="+", required=True, metavar="FOLD=NET.keras")
    ap.add_argument("--only", nargs="*", choices=list(variants), help="these variants only")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


def fold_regions(photos: list[dict], fold: int):
    """``(photo, image, (w, h), region mask)`` for every region of at least 16 pixels of ``fold``'s photos, the
    image and the mask at the photo's full resolution (the NoC protocol's)."""
    from viaseg.core.imaging.imageio import read_image

    for d in photos:
        if d["fold"] != fold:
            continue
        img = read_image(d["path"])
        h, w = img.shape[:2]
        for g in d["regs"]:
            gt = cv2.resize(g.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            if gt.sum() >= 16:
                yield d, img, (w, h), gt


def variant_table(rows: dict[str, list], styles: dict[str, list]) -> dict:
    """The variant experiments' result: for each variant (its per-region IoU curves ``rows[name]`` and each
    region's photo style ``styles[name]``) clicks to IoU 0.80, paired against the first variant, regions never
    reaching it, IoU after 3 clicks, clicks per style."""
    from viaseg.core.assist.protocol import clicks_to

    out = {}
    base = None
    for name, rs in rows.items():
        n80 = np.array([clicks_to(r, 0.8) for r in rs], float)
        base = n80 if base is None else base
        st = np.array(styles[name])
        diff = n80 - base
        out[name] = {
            "noc80": round(float(n80.mean()), 3),
            "paired_vs_first": [
                round(float(diff.mean()), 3),
                round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 3),
            ],
            "never": int((n80 >= 20).sum()),
            "iou_at_3": round(float(np.mean([r[min(2, len(r) - 1)] for r in rs])), 3),
            "noc80_close_ups": round(float(n80[st == "close-ups"].mean()), 3),
            "noc80_whole_cars": round(float(n80[st == "whole cars"].mean()), 3),
            "regions": len(rs),
        }
    return out


def split_photos(spec: str, exclude_train_duplicates: bool) -> list[dict]:
    """The photos of ``DATASET:split`` with their regions and no map (``--measure-on``)."""
    from viaseg.core.annotation.dataset import load_dataset, parse_spec
    from viaseg.core.ml.evaluate import choose_split, train_duplicates

    root, split_name = parse_spec(spec)
    ds = load_dataset(root)
    split = choose_split(ds, split_name)
    dup = {e.key for e in train_duplicates(ds, split)} if exclude_train_duplicates else set()
    out = []
    for entry in split.entries:
        if entry.key in dup or not Path(entry.path).is_file():
            continue
        out.append(_photo(entry, spec, -2, None))
    return out


def train(
    photos: list[dict],
    out: str,
    seconds: float,
    seed: int = 0,
    lr: float = 5e-4,
    batch_size: int = 8,
    steps: int | None = None,
    first_only: bool = False,
    encoder: str = "mobilenet_v2",
):
    import keras
    import tensorflow as tf

    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(encoder=encoder)
    sched = keras.optimizers.schedules.CosineDecay(lr, int(seconds / 0.55), alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=bce_dice)
    items = [(i, j) for i, d in enumerate(photos) for j in range(len(d["regs"]))]
    t0, k, losses = time.time(), 0, []
    while (k < steps) if steps else (time.time() - t0 < seconds):
        x, g, y = batch(photos, items, batch_size, rng, None if first_only or k <= 100 else model, first_only)
        losses.append(float(model.train_on_batch([x, g], y)))
        k += 1
        if k % 100 == 0:
            print(f"step {k}, {time.time() - t0:.0f} s, loss {np.mean(losses[-100:]):.4f}", file=sys.stderr)
    model.save(out)
    return model, k


# ------------------------------------------------------------------------------------------------ measuring
class NetSegmenter:
    """The network behind the protocol's ``segment(clicks)`` (what ``core.assist.Segmenter`` offers)."""

    def __init__(self, model, photo: dict, zoom: float = 2.0):
        self.model, self.d, self.zoom, self.cache = model, photo, zoom, {}
        self.s = photo["img"].shape[1] / photo["full_wh"][0]

    def _run(self, win, clicks, prev):
        d = self.d
        k = S / win[2]
        cw = [((c.x * self.s - win[0]) * k, (c.y * self.s - win[1]) * k, c.positive) for c in clicks]
        prev_w = (
            np.zeros((S, S), np.float32)
            if prev is None
            else warp(prev.astype(np.uint8), win, cv2.INTER_NEAREST)
        )
        g = guide_of(warp(d["prob"], win).astype(np.float32) / 255, prev_w.astype(np.float32), cw)
        x = warp(d["img"], win).astype(np.float32) / 255
        return self.model.predict_on_batch([x[None], g[None]])[0, ..., 0] >= 0.5

    def segment(self, clicks, box=None, refine=None):
        from viaseg.core.assist.mask import RegionMask, Result

        key = tuple(clicks)
        if key in self.cache:
            return self.cache[key]
        h, w = self.d["img"].shape[:2]
        if len(clicks) == 1:
            whole = full_window(w, h)
            prev = unwarp(self._run(whole, clicks, None), whole, (h, w))
            cx, cy = min(int(clicks[0].x * self.s), w - 1), min(int(clicks[0].y * self.s), h - 1)
            _, lab = cv2.connectedComponents(prev.astype(np.uint8))
            if lab[cy, cx]:
                bb = bbox(lab == lab[cy, cx])
            else:
                bb = bbox(prev) if prev.any() else (cx - 10, cy - 10, cx + 10, cy + 10)
            win = zoom_window(bb, w, h, self.zoom)
        else:
            before = self.segment(clicks[:-1])
            win, prev = before.window, before.small
            x0, y0, side = win
            c = clicks[-1]
            if not (x0 < c.x * self.s < x0 + side and y0 < c.y * self.s < y0 + side):  # widen
                xs, ys = [q.x * self.s for q in clicks], [q.y * self.s for q in clicks]
                bb = bbox(prev) if prev.any() else (min(xs), min(ys), max(xs), max(ys))
                bb = (min(bb[0], *xs), min(bb[1], *ys), max(bb[2], *xs), max(bb[3], *ys))
                win = zoom_window(bb, w, h, 1.5)
        mw = self._run(win, clicks, prev)
        region = (
            RegionMask(mw, win[0] / self.s, win[1] / self.s, win[2] / S / self.s, "net") if mw.any() else None
        )
        res = Result(region, "")
        res.window, res.small = win, unwarp(mw, win, (h, w))  # type: ignore[attr-defined]
        self.cache[key] = res
        return res


def measure(model, photos: list[dict], no_map: bool = False) -> dict:
    from viaseg.core.assist.protocol import click_protocol, clicks_to
    from viaseg.core.assist.segment import Segmenter
    from viaseg.core.imaging.imageio import read_image

    class NetFirst(Segmenter):
        """The tool, its first click's region from the network."""

        def _first(self, click, refine, committed=False):
            key = ("net", click)
            if key not in self._first_cache:
                r = self.net.segment([click])
                self._first_cache[key] = (
                    r if r.region is not None else super()._first(click, refine, committed)
                )
            return self._first_cache[key]

    curves: dict[str, list] = {"tool": [], "net": [], "net_first": []}
    styles = []
    for d in photos:
        img = read_image(d["path"])
        h, w = img.shape[:2]
        prob = cv2.resize(d["prob"], (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
        tool_map = None if no_map else prob  # no map: the tool's colour-and-edge path
        net = NetSegmenter(model, d)
        first = NetFirst((w, h), tool_map, img)
        first.net = net  # type: ignore[attr-defined]
        for g in d["regs"]:
            gt = cv2.resize(g.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            if gt.sum() < 16:
                continue
            curves["tool"].append(click_protocol(Segmenter((w, h), tool_map, img), gt, 20, 0.85))
            curves["net"].append(click_protocol(net, gt, 20, 0.85))
            curves["net_first"].append(click_protocol(first, gt, 20, 0.85))
            styles.append(d["style"])
        print(d["name"], file=sys.stderr)
    out: dict = {"regions": len(styles)}
    for name, rows in curves.items():
        noc = np.array([clicks_to(r, 0.80) for r in rows])
        out[name] = {
            "noc80": round(float(noc.mean()), 2),
            "noc85": round(float(np.mean([clicks_to(r, 0.85) for r in rows])), 2),
            "iou_at_1": round(float(np.mean([r[0] for r in rows])), 3),
            "iou_at_3": round(float(np.mean([r[min(2, len(r) - 1)] for r in rows])), 3),
            "noc80_by_style": {
                s: round(float(noc[[t == s for t in styles]].mean()), 2) for s in sorted(set(styles))
            },
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--oof", nargs="+", required=True, metavar="CROSSVAL_DIR")
    ap.add_argument(
        "--fold",
        type=int,
        default=0,
        help="measured on this fold, trained on the others (-1: trained on all)",
    )
    ap.add_argument(
        "--steps",
        type=int,
        help="stop after this many steps instead of --seconds (the rate still follows --seconds' schedule), "
        "so the network does not depend on the machine's load",
    )
    ap.add_argument(
        "--measure-on",
        nargs="+",
        metavar="DATASET:SPLIT",
        help="measure on these splits instead of the fold (with --no-map only: their photos have no "
        "out-of-fold maps)",
    )
    ap.add_argument("--exclude-train-duplicates", action="store_true", help="with --measure-on")
    ap.add_argument("--seconds", type=float, default=900.0, help="training time (0: measure --out)")
    ap.add_argument("--out", required=True, help="the network's .keras file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-map", action="store_true", help="train and measure without a model's map")
    ap.add_argument(
        "--first-only",
        action="store_true",
        help="train for the app's use only: one positive click, on the whole photo or a zoom window with a "
        "coarse earlier mask (no correction clicks)",
    )
    ap.add_argument(
        "--export",
        metavar="NPZ",
        help="also store the network's weights for viaseg (core/ml/weights/clicknet_nomap.npz is this, from "
        "the command of docs/RESULTS.md)",
    )
    ap.add_argument(
        "--encoder",
        default="mobilenet_v2",
        choices=["mobilenet_v2", "efficientnet_lite0"],
        help="the network's ImageNet encoder (the shipped network's: mobilenet_v2)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.measure_on and not args.no_map:
        ap.error("--measure-on needs --no-map")
    photos = load_photos(args.oof, args.no_map)
    train_set = [d for d in photos if d["fold"] != args.fold]
    test_set = [d for d in photos if d["fold"] == args.fold]
    steps = 0
    if args.seconds > 0:
        model, steps = train(
            train_set,
            args.out,
            args.seconds,
            args.seed,
            steps=args.steps,
            first_only=args.first_only,
            encoder=args.encoder,
        )
    else:
        import keras
        import viaseg.core.ml.fast_layers  # noqa: F401  (registers the network's layers for loading)

        model = keras.models.load_model(args.out, compile=False)
    if args.export:
        from viaseg.core.ml.clicknet import save_weights

        cmd = "python tests/perf/exp_clicknet.py " + " ".join(argv if argv is not None else sys.argv[1:])
        save_weights(model, args.export, f"click network ({'no map' if args.no_map else 'map'}): {cmd}")
    result = {
        "no_map": args.no_map,
        "fold": args.fold,
        "train_photos": len(train_set),
        "seconds": args.seconds,
        "steps": steps,
    }
    if args.measure_on:
        for spec in args.measure_on:
            result[spec] = measure(model, split_photos(spec, args.exclude_train_duplicates), True)
    else:
        result |= measure(model, test_set, args.no_map)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
