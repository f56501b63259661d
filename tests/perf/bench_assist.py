"""Benchmark: click to segment, measured the way interactive segmentation is (NoC, as for RITM and SAM).

    python tests/perf/bench_assist.py --json [--model MODEL] [--dataset DATASET:split]
                                      [--exclude-train-duplicates] [--max-clicks 20] [--compare-edges]

For every ground-truth region of the split: the first click goes to the point inside the region farthest from
its boundary; each next click to the centre of the largest error area (the error pixel farthest from the error
area's edge), positive in a missed area, negative in a false one, up to ``--max-clicks``. After each click the
tool's region (``core.assist``, what Enter would accept) is compared with that region's mask at full
resolution. The map is the model's probability map as the app computes it (``core.predict.interactive``).

Prints ``noc80``, ``noc85`` (mean clicks to reach IoU 0.80 / 0.85; ``max_clicks`` when never), ``iou_at_1``,
``iou_at_3`` (mean IoU after 1 / 3 clicks), ``noc80_no_model`` (the same protocol without a map),
``iou_box_no_model`` (one drag of the region's bounding box, no map), ``manual_clicks_median`` (vertices per
ground-truth polygon: the clicks drawing it by hand costs), ``preview_ms_p50_12mp`` (hover preview on a
12-megapixel photo whose map is cached; ``preview_correction_ms_p50_12mp``: the same once a first click is
taken, the cursor's click correcting that region), ``clicknet_ms_p50_12mp`` (the click network's two looks for a
first click on a 12-megapixel photo; ``clicknet_reduce_ms_12mp``: reducing that photo, once per photo),
``regions`` and the settings. ``clicknet``: the first click's region comes from the click network, as in the app
(``--no-clicknet``: without it). Regions smaller than 16 px are left out
(counted in ``skipped_tiny``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def at(ious: list[float], k: int) -> float:
    return ious[min(k, len(ious)) - 1]


def preview_ms(prob_small: np.ndarray, rng: np.random.Generator, n: int = 60) -> tuple[float, float, float]:
    """(p50 ms of one hover preview, ms to prepare the photo, p50 ms of a correction's hover preview once a
    first click is taken) on a 12 MP photo whose map is cached."""
    from viaseg.core.assist.segment import Click, Segmenter, _outline

    w, h = 4000, 3000
    prob = cv2.resize(prob_small, (w, h), interpolation=cv2.INTER_LINEAR)
    t0 = time.perf_counter()
    seg = Segmenter((w, h), prob, None)
    prep = (time.perf_counter() - t0) * 1000
    ys, xs = np.nonzero(prob > 0.3)
    pts = list(zip(xs, ys, strict=True)) if len(xs) else [(w / 2, h / 2)]
    times = []
    for i in range(n):
        x, y = pts[int(rng.integers(len(pts)))] if i % 2 == 0 else (rng.uniform(0, w), rng.uniform(0, h))
        t = time.perf_counter()
        res = seg.segment([Click(float(x), float(y))], refine=False)
        if res.region is not None:
            _outline(res.region.mask)
        times.append((time.perf_counter() - t) * 1000)
    # a correction's preview: one click taken (the region found at the map's surest point), the cursor where a
    # click would change it: outside the region for a positive click, inside for a negative one (elsewhere a
    # preview returns the region as it is)
    top = np.unravel_index(int(np.argmax(prob)), prob.shape)
    first = Click(float(top[1]), float(top[0]))
    taken = seg.segment([first], refine=False).region
    assert taken is not None
    inside = taken.full((w, h))
    ins, outs = np.flatnonzero(inside), np.flatnonzero(~inside)
    corr = []
    for i in range(n):
        k = int((outs if i % 2 == 0 else ins)[int(rng.integers(len(outs if i % 2 == 0 else ins)))])
        y, x = divmod(k, w)
        t = time.perf_counter()
        res = seg.segment([first, Click(float(x), float(y), i % 2 == 0)], refine=False)
        if res.region is not None:
            _outline(res.region.mask)
        corr.append((time.perf_counter() - t) * 1000)
    return statistics.median(times[5:]), prep, statistics.median(corr[5:])


def clicknet_ms(net, photo: np.ndarray, rng: np.random.Generator, n: int = 12) -> dict:
    """The click network's time for a first click on a 12-megapixel photo (``photo`` enlarged to 4000 x 3000):
    the photo's reduction, once per photo (the app's worker keeps it), and the network's two looks, p50."""
    from viaseg.core.ml.clicknet import work_image

    big = cv2.resize(photo, (4000, 3000), interpolation=cv2.INTER_LINEAR)
    t = time.perf_counter()
    small = work_image(big)
    reduce_ms = (time.perf_counter() - t) * 1000
    times = []
    for _ in range(n):
        x, y = rng.uniform(500, 3500), rng.uniform(500, 2500)
        t = time.perf_counter()
        net.first_region(small, (4000, 3000), x, y)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "clicknet_ms_p50_12mp": round(statistics.median(times[2:]), 1),
        "clicknet_reduce_ms_12mp": round(reduce_ms, 1),
    }


class _WithNet:
    """A Segmenter whose first click's region comes from the click network, as the app's AI region tool does
    (``gui/assist_tool.py``: it asks ``core.ml.clicknet`` for the first positive click's region and gives it to
    the Segmenter)."""

    def __init__(self, seg, net, image: np.ndarray):
        self.seg, self.net, self.image = seg, net, image
        self.asked: set = set()

    def segment(self, clicks, box=None, refine=None):
        from viaseg.core.assist.mask import RegionMask

        first = next((c for c in clicks if c.positive), None)
        if box is None and first is not None and first not in self.asked:
            self.asked.add(first)
            fr = self.net.first_region(self.image, self.seg.size_wh, first.x, first.y)
            if fr.mask.any():
                self.seg.give_first_region(
                    first, RegionMask(fr.mask, fr.x0, fr.y0, fr.scale, "click network")
                )
        return self.seg.segment(clicks, box, refine)

    def __getattr__(self, name):
        return getattr(self.seg, name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default=str(SHARED / "datasets" / "car-damage") + ":val")
    ap.add_argument("--model", help="viaseg .keras model (without: only the no-model numbers)")
    ap.add_argument("--exclude-train-duplicates", action="store_true")
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument(
        "--compare-edges",
        action="store_true",
        help="also run the protocol with map regions fitted to the photo's edges (GrabCut), "
        "which the tool does not do by default (noc80_map_edges)",
    )
    ap.add_argument("--limit", type=int, default=0, help="only N images, spread over the set (a quick look)")
    ap.add_argument(
        "--oof",
        metavar="CROSSVAL_DIR",
        nargs="+",
        help="use the out-of-fold maps of `viaseg crossval` runs (several: folds run apart, e.g. with "
        "--only-folds) instead of a model: measures on training photos with maps of models that never saw "
        "them (how design choices are made)",
    )
    ap.add_argument(
        "--no-clicknet",
        action="store_true",
        help="without the click network (the first click's region from the map, or the photo's colours and "
        "edges): the tool as it was before the network shipped",
    )
    ap.add_argument(
        "--clicknet",
        metavar="NPZ",
        help="the click network's weights (default: those shipped with viaseg; `viaseg clicknet` writes others)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from viaseg.core.annotation.dataset import load_dataset, parse_spec
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.assist.protocol import click_protocol, mask_iou
    from viaseg.core.assist.protocol import clicks_to as noc
    from viaseg.core.assist.segment import Segmenter
    from viaseg.core.imaging.imageio import read_image
    from viaseg.core.ml.evaluate import choose_split, train_duplicates

    oof_maps: dict[str, Path] = {}
    excluded = []
    if args.oof:
        datasets: dict[str, object] = {}
        entries = []
        rows_of = []
        for d in args.oof:
            report = json.loads((Path(d) / "crossval.json").read_text())
            rows_of += [(Path(d), row) for row in report["per_image"]]
        for cv_dir, row in rows_of:
            if not row.get("map_path"):
                continue
            root, split_name = row["source"].rsplit(":", 1)
            if root not in datasets:
                datasets[root] = load_dataset(root)
            entry = next(
                (e for e in datasets[root].split(split_name).entries if e.filename == row["image"]), None
            )
            if entry is not None:
                entries.append(entry)
                oof_maps[str(entry.path)] = cv_dir / row["map_path"]
        entries.sort(key=lambda e: str(e.path))
    else:
        root, split_name = parse_spec(args.dataset)
        ds = load_dataset(root)
        split = choose_split(ds, split_name)
        entries = list(split.entries)
    if args.exclude_train_duplicates and not args.oof:
        dup = {e.key for e in train_duplicates(ds, split)}
        excluded = [e.filename for e in entries if e.key in dup]
        entries = [e for e in entries if e.key not in dup]
    if args.limit and len(entries) > args.limit:
        step = len(entries) / args.limit
        entries = [entries[int(i * step)] for i in range(args.limit)]
    predictor = None
    if args.model:
        from viaseg.core.ml.predict import Predictor, interactive

        predictor = interactive(Predictor.load(args.model))
    net = None
    if not args.no_clicknet:
        from viaseg.core.ml.clicknet import ClickNet

        net = ClickNet.load(args.clicknet) if args.clicknet else ClickNet.load()
    mc = args.max_clicks
    rows: dict[str, list] = {k: [] for k in ("model", "map_edges", "no_model", "box", "vertices", "source")}
    skipped_tiny, missing = 0, []
    rng = np.random.default_rng(0)
    prob_for_preview = None
    photo_for_net = None
    t_start = time.perf_counter()
    for entry in entries:
        if not Path(entry.path).is_file():
            missing.append(entry.filename)
            continue
        img = read_image(entry.path)
        h, w = img.shape[:2]
        if photo_for_net is None:
            photo_for_net = img
        prob = None
        thr = 0.5
        if oof_maps:
            prob = cv2.imread(str(oof_maps[str(entry.path)]), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        elif predictor is not None:
            prob = np.asarray(predictor.predict(str(entry.path)).probabilities, dtype=np.float32)
            thr = float(predictor.threshold)
        if prob is not None:
            if prob_for_preview is None and prob.max() > 0.5:
                prob_for_preview = cv2.resize(prob, (512, 384), interpolation=cv2.INTER_AREA)
        seg_model = Segmenter((w, h), prob, img, threshold=thr) if prob is not None else None
        seg_plain = Segmenter((w, h), None, img)
        if net is not None:  # as the app: the first click's region from the click network
            seg_model = _WithNet(seg_model, net, img) if seg_model is not None else None
            seg_plain = _WithNet(seg_plain, net, img)
        for region in entry.regions:
            gt = rasterize([region], (w, h)) > 0
            if gt.sum() < 16:
                skipped_tiny += 1
                continue
            if region.kind == "polygon":
                rows["vertices"].append(len(region.points()))
            if seg_model is not None:
                rows["model"].append(click_protocol(seg_model, gt, mc, 0.85))
                if args.compare_edges:
                    rows["map_edges"].append(click_protocol(seg_model, gt, mc, 0.85, refine=True))
            rows["no_model"].append(click_protocol(seg_plain, gt, mc, 0.80))
            rows["source"].append(Path(entry.path).parent.parent.name)
            ys, xs = np.nonzero(gt)
            res = seg_plain.segment([], box=(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
            rows["box"].append(mask_iou(gt, res.region.full((w, h))) if res.region is not None else 0.0)
        print(f"{entry.filename}: {len(entry.regions)} regions", file=sys.stderr)

    def mean(v):
        return round(float(np.mean(v)), 3) if v else None

    out = {
        "dataset": args.dataset if not args.oof else "out-of-fold: " + " ".join(args.oof),
        "model": args.model,
        "images": len(entries) - len(missing),
        "excluded_train_duplicates": excluded,
        "missing_images": missing,
        "regions": len(rows["no_model"]),
        "skipped_tiny": skipped_tiny,
        "max_clicks": mc,
        "clicknet": (args.clicknet or "shipped") if net is not None else False,
    }
    if rows["model"]:
        out.update(
            {
                "noc80": mean([noc(r, 0.80, mc) for r in rows["model"]]),
                "noc85": mean([noc(r, 0.85, mc) for r in rows["model"]]),
                "iou_at_1": mean([at(r, 1) for r in rows["model"]]),
                "iou_at_3": mean([at(r, 3) for r in rows["model"]]),
                "reached80_share": mean([float(max(r) >= 0.8) for r in rows["model"]]),
            }
        )
    if rows["map_edges"]:
        out.update(
            {
                "noc80_map_edges": mean([noc(r, 0.80, mc) for r in rows["map_edges"]]),
                "iou_at_1_map_edges": mean([at(r, 1) for r in rows["map_edges"]]),
            }
        )
    out.update(
        {
            "noc80_no_model": mean([noc(r, 0.80, mc) for r in rows["no_model"]]),
            "iou_at_1_no_model": mean([at(r, 1) for r in rows["no_model"]]),
            "iou_box_no_model": mean(rows["box"]),
            "manual_clicks_median": float(np.median(rows["vertices"])) if rows["vertices"] else None,
        }
    )
    sources = sorted(set(rows["source"]))
    if len(sources) > 1:  # out of fold over several datasets: each one's numbers too
        out["by_source"] = {
            src: {
                key: mean(
                    [noc(r, 0.80, mc) for r, s in zip(rows[k], rows["source"], strict=True) if s == src]
                )
                for key, k in (("noc80", "model"), ("noc80_no_model", "no_model"))
                if rows[k]
            }
            | {"regions": rows["source"].count(src)}
            for src in sources
        }
    if prob_for_preview is None:  # no model: a synthetic map with a few blobs
        prob_for_preview = np.zeros((384, 512), np.float32)
        for cx, cy, r in ((100, 100, 40), (300, 200, 70), (420, 300, 30)):
            cv2.circle(prob_for_preview, (cx, cy), r, 1.0, -1)
        prob_for_preview = cv2.GaussianBlur(prob_for_preview, (31, 31), 10)
    if net is not None and photo_for_net is not None:
        out.update(clicknet_ms(net, photo_for_net, rng))
    p50, prep, p50_corr = preview_ms(prob_for_preview, rng)
    out["preview_ms_p50_12mp"] = round(p50, 2)
    out["preview_correction_ms_p50_12mp"] = round(p50_corr, 2)
    out["preview_prepare_ms_12mp"] = round(prep, 1)
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
