"""viaseg.core.checks.checks / check_geometry: every problem kind, the car-damage findings, CLI exit codes and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.annotation.project import ImageEntry, Region
from viaseg.core.checks.check_geometry import analyze_shapes
from viaseg.core.checks.checks import FILE_KINDS, KINDS, REGION_KINDS, check_dataset, check_entry
from viaseg.core.cli import main

SQUARE = ([10, 30, 30, 10], [10, 10, 30, 30])


def poly(xs, ys, **attrs) -> dict:
    return {
        "shape_attributes": {"name": "polygon", "all_points_x": list(xs), "all_points_y": list(ys)},
        "region_attributes": attrs or {"name": "damage"},
    }


def image(path: Path, seed: int = 0, w: int = 64, h: int = 48) -> Path:
    """A tiny noise image (distinct per seed) written with cv2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


def via(folder: Path, entries: dict[str, list[dict]], sizes: dict[str, int] | None = None) -> Path:
    """VIA 2 file in ``folder``; ``size`` is the real byte size of the file unless overridden."""
    data = {}
    for name, regions in entries.items():
        p = folder / name
        size = (sizes or {}).get(name, p.stat().st_size if p.exists() else 1234)
        data[f"{name}{size}"] = {"filename": name, "size": size, "regions": regions, "file_attributes": {}}
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "via_region_data.json"
    out.write_text(json.dumps(data))
    return out


def kinds(report) -> list[tuple[str, str | None, str | None, int | None]]:
    return [(p.kind, p.split, p.image, p.region) for p in report.problems]


def of_kind(report, kind):
    return [p for p in report.problems if p.kind == kind]


# --------------------------------------------------------------------------------------------- car-damage


def test_car_damage_findings(car_damage):
    report = check_dataset(load_dataset(car_damage), decode=True)
    assert report.images == 52 + 15 + 2 and report.regions == 78 + 19
    missing = of_kind(report, "missing_file")
    assert {(p.split, p.image) for p in missing} == {
        ("train", "test_pattern_qbist.jpg"),
        ("train", "a_swan_swimming_in_geneve_lake.jpg"),
        ("train", "sinus_test_pattern.jpg"),
    }
    assert all(p.severity == "error" for p in missing)

    leaks = [p for p in of_kind(report, "duplicate_image") if p.severity == "error"]
    pairs = set()
    for p in leaks:
        assert p.split == "val" and "identical file" in p.message
        other = next(n for n in ("image58.jpg", "image15.jpg", "image63.jpg") if f"train/{n}" in p.message)
        pairs.add((other, p.image))
    assert len(leaks) == 3
    assert pairs == {
        ("image58.jpg", "image80.jpg"),
        ("image15.jpg", "image65.jpg"),
        ("image63.jpg", "image78.jpg"),
    }
    # decoding also finds a resized copy inside train (image46 is image50 at 259x194): a warning, not a leak
    within = [
        (p.split, p.image, p.severity) for p in of_kind(report, "duplicate_image") if p.severity != "error"
    ]
    assert within == [("train", "image46.jpeg", "warning")]
    assert "visually identical" in of_kind(report, "duplicate_image")[0].message
    assert "train/image50.jpg" in of_kind(report, "duplicate_image")[0].message

    conflicts = of_kind(report, "conflicting_duplicate")
    assert [(p.split, p.image) for p in conflicts] == [("val", "image80.jpg")]
    assert "3 regions" in conflicts[0].message and "4 in train/image58.jpg" in conflicts[0].message

    mism = of_kind(report, "attribute_mismatch")
    assert len(mism) == 1 and mism[0].split == "val"
    assert "'name'" in mism[0].message and "'Class Name'" in mism[0].message
    assert report.exit_code == 1
    # the unlabeled test split is checked too (readable, no duplicates), and nothing else is an error
    assert {p.kind for p in report.problems if p.severity == "error"} == {"missing_file", "duplicate_image"}


# --------------------------------------------------------------------------------------------- each kind


def test_file_level_kinds(tmp_path):
    d = tmp_path / "ds" / "train"
    image(d / "a.png", 1)
    image(d / "b.png", 2)
    image(d / "extra.png", 3)
    (d / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    via(
        d,
        {"a.png": [poly(*SQUARE)], "b.png": [], "bad.jpg": [poly(*SQUARE)], "gone.png": [poly(*SQUARE)]},
        sizes={"a.png": 999},
    )
    calls = []
    report = check_dataset(load_dataset(tmp_path / "ds"), progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [p.kind for p in report.for_image("train", "gone.png1234")] == ["missing_file"]
    got = kinds(report)
    assert ("size_mismatch", "train", "a.png", None) in got
    assert ("unannotated_image", "train", "b.png", None) in got
    assert ("unreadable_image", "train", "bad.jpg", None) in got
    assert ("missing_file", "train", "gone.png", None) in got
    assert ("unlisted_image", "train", "extra.png", None) in got
    assert "999" in of_kind(report, "size_mismatch")[0].message
    sev = {p.kind: p.severity for p in report.problems}
    assert sev["missing_file"] == sev["unreadable_image"] == "error"
    assert sev["unannotated_image"] == sev["unlisted_image"] == "info"
    # size -1 means unknown: no size_mismatch
    via(d, {"a.png": [poly(*SQUARE)]}, sizes={"a.png": -1})
    assert not of_kind(check_dataset(load_dataset(tmp_path / "ds")), "size_mismatch")


def test_region_kinds(tmp_path):
    d = tmp_path / "s"
    image(d / "a.png", 1, w=64, h=48)
    regions = [
        poly(*SQUARE),  # 0 fine
        poly([1, 5], [1, 5]),  # 1 two points
        poly([0, 5, 10], [0, 5, 10]),  # 2 collinear: zero area
        poly([10, 30, 30, 10], [10, 30, 10, 30]),  # 3 bow tie
        poly([50, 70, 70, 50], [10, 10, 20, 20]),  # 4 partly outside (w=64)
        poly([100, 120, 120], [100, 100, 120]),  # 5 entirely outside
        {
            "shape_attributes": {"name": "polyline", "all_points_x": [1, 2], "all_points_y": [1, 2]},
            "region_attributes": {},
        },  # 6 not an area
        {
            "shape_attributes": {"name": "rect", "x": 5, "y": 5, "width": 0, "height": 9},
            "region_attributes": {},
        },  # 7 zero-size rect
    ]
    via(d, {"a.png": regions})
    report = check_dataset(load_dataset(d))
    by_region = {}
    for p in report.problems:
        by_region.setdefault(p.region, set()).add(p.kind)
    assert 0 not in by_region
    assert by_region[1] == {"degenerate_region"}
    assert by_region[2] == {"degenerate_region"}
    assert by_region[3] == {"self_intersection"}
    assert by_region[4] == {"out_of_bounds"}
    assert by_region[5] == {"out_of_bounds"}
    assert by_region[6] == {"unsupported_shape"}
    assert by_region[7] == {"degenerate_region"}
    oob = {p.region: p.severity for p in of_kind(report, "out_of_bounds")}
    assert oob == {4: "warning", 5: "error"}
    assert "(20, 20)" in of_kind(report, "self_intersection")[0].message  # where the edges cross
    assert [p.region for p in report.problems] == sorted(p.region for p in report.problems)


def test_a_region_written_twice_is_a_warning(tmp_path):
    """A CSV row written twice (or a paste done twice) gave an image a copy of a region: counted twice, never
    said. Same outline with other attributes, or a moved copy (Ctrl+D), is no repeat."""
    d = tmp_path / "s"
    image(d / "a.png", 1, w=64, h=48)
    square = poly(*SQUARE)
    other = poly(*SQUARE)
    other["region_attributes"] = {"name": "scratch"}
    moved = poly([x + 10 for x in SQUARE[0]], SQUARE[1])
    via(d, {"a.png": [square, other, json.loads(json.dumps(square)), moved, json.loads(json.dumps(square))]})
    report = check_dataset(load_dataset(d))
    rep = of_kind(report, "repeated_region")
    assert [(p.region, p.severity) for p in rep] == [(2, "warning"), (4, "warning")]
    assert "exact copy of region 0" in rep[0].message
    entry = load_dataset(d).splits["s"].entries[0]
    assert [p.region for p in check_entry("s", entry, (64, 48)) if p.kind == "repeated_region"] == [2, 4]
    assert "repeated_region" in REGION_KINDS  # re-checked after every edit in the app


def test_duplicates_across_and_within_splits(tmp_path):
    root = tmp_path / "ds"
    image(root / "train" / "a.png", 1)
    image(root / "train" / "a_copy.png", 1)  # same bytes, same split
    image(root / "val" / "v.png", 1)  # same bytes, other split: leak
    image(root / "val" / "w.png", 2)
    image(root / "test" / "t.png", 2)  # unlabeled test image equal to a val image
    via(root / "train", {"a.png": [poly(*SQUARE)], "a_copy.png": [poly(*SQUARE)]})
    via(root / "val", {"v.png": [poly(*SQUARE)], "w.png": [poly(*SQUARE)]})
    report = check_dataset(load_dataset(root))
    dups = {(p.split, p.image): p for p in of_kind(report, "duplicate_image")}
    assert set(dups) == {("train", "a_copy.png"), ("val", "v.png"), ("test", "t.png")}
    assert dups["train", "a_copy.png"].severity == "warning"
    assert dups["val", "v.png"].severity == "error" and "train/a.png" in dups["val", "v.png"].message
    assert dups["test", "t.png"].severity == "error" and "val/w.png" in dups["test", "t.png"].message
    assert not of_kind(report, "conflicting_duplicate")  # same regions everywhere


def test_reencoded_copy_needs_decoding(tmp_path):
    root = tmp_path / "ds"
    image(root / "train" / "a.png", 7)
    img = cv2.imread(str(root / "train" / "a.png"))
    (root / "val").mkdir(parents=True)
    assert cv2.imwrite(str(root / "val" / "a.bmp"), img)  # lossless re-encode: other bytes, same pixels
    via(root / "train", {"a.png": [poly(*SQUARE)]})
    via(root / "val", {"a.bmp": [poly(*SQUARE)]})
    decoded = check_dataset(load_dataset(root), decode=True)
    assert [(p.split, p.image) for p in of_kind(decoded, "duplicate_image")] == [("val", "a.bmp")]
    assert "re-encoded" in of_kind(decoded, "duplicate_image")[0].message
    assert not of_kind(check_dataset(load_dataset(root), decode=False), "duplicate_image")


def smooth(path: Path, shift: int = 0, w: int = 160, h: int = 120, quality: int | None = None) -> Path:
    """A smooth picture (gradient + disc) that survives lossy re-encoding; ``shift`` moves the disc."""
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], axis=2).astype(np.uint8)
    cv2.circle(img, (w // 3 + shift, h // 2), h // 4, (250, 250, 250), -1)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality else []
    assert cv2.imwrite(str(path), img, params)
    return path


def test_lossy_and_resized_copies_are_found_when_decoding(tmp_path):
    root = tmp_path / "ds"
    smooth(root / "train" / "a.png")
    smooth(root / "train" / "other.png", shift=60)  # a different picture: not a copy
    smooth(root / "val" / "a.jpg", quality=70)  # lossy re-encode
    big = cv2.imread(str(root / "train" / "a.png"))
    (root / "test").mkdir()
    assert cv2.imwrite(
        str(root / "test" / "a_small.jpg"), cv2.resize(big, (80, 60), interpolation=cv2.INTER_AREA)
    )
    via(root / "train", {"a.png": [poly(*SQUARE)], "other.png": [poly(*SQUARE)]})
    via(root / "val", {"a.jpg": [poly([100, 140, 140], [10, 10, 60])]})  # same count, somewhere else
    report = check_dataset(load_dataset(root))
    dups = {(p.split, p.image): p for p in of_kind(report, "duplicate_image")}
    assert set(dups) == {("val", "a.jpg"), ("test", "a_small.jpg")}
    assert all(p.severity == "error" and "train/a.png" in p.message for p in dups.values())
    assert [(p.split, p.image) for p in of_kind(report, "conflicting_duplicate")] == [("val", "a.jpg")]
    assert not of_kind(check_dataset(load_dataset(root), decode=False), "duplicate_image")


def test_resized_copy_with_scaled_regions_agrees(tmp_path):
    root = tmp_path / "ds"
    smooth(root / "train" / "a.png", w=160, h=120)
    big = cv2.imread(str(root / "train" / "a.png"))
    (root / "val").mkdir()
    assert cv2.imwrite(str(root / "val" / "a.png"), cv2.resize(big, (80, 60), interpolation=cv2.INTER_AREA))
    via(root / "train", {"a.png": [poly([20, 60, 60, 20], [20, 20, 60, 60])]})
    via(root / "val", {"a.png": [poly([10, 30, 30, 10], [10, 10, 30, 30])]})  # the same square at half size
    report = check_dataset(load_dataset(root))
    assert [(p.split, p.image) for p in of_kind(report, "duplicate_image")] == [("val", "a.png")]
    assert not of_kind(report, "conflicting_duplicate")


def test_conflicting_duplicate_by_count_and_by_geometry(tmp_path):
    root = tmp_path / "ds"
    for s in ("train", "val", "test"):
        image(root / s / "a.png", 5)
        image(root / s / "b.png", 6)
    via(root / "train", {"a.png": [poly(*SQUARE)], "b.png": [poly(*SQUARE)]})
    via(
        root / "val",
        {
            "a.png": [poly(*SQUARE), poly([40, 50, 50], [5, 5, 15])],
            "b.png": [poly([35, 60, 60, 35], [20, 20, 45, 45])],
        },
    )  # same count, elsewhere
    via(
        root / "test",
        {
            "a.png": [poly([11, 31, 31, 10], [10, 11, 30, 31])],  # nearly the same: agrees
            "b.png": [poly(*SQUARE, name="scratch")],
        },
    )  # other label
    report = check_dataset(load_dataset(root))
    conf = {(p.split, p.image): p.message for p in of_kind(report, "conflicting_duplicate")}
    assert set(conf) == {("val", "a.png"), ("val", "b.png"), ("test", "b.png")}
    assert "2 regions here but 1" in conf["val", "a.png"]
    assert "IoU" in conf["val", "b.png"]
    assert "label" in conf["test", "b.png"]


def test_attribute_mismatch(tmp_path):
    root = tmp_path / "ds"
    image(root / "train" / "a.png", 1)
    image(root / "val" / "b.png", 2)
    via(root / "train", {"a.png": [poly(*SQUARE, name="dent")]})
    via(root / "val", {"b.png": [poly(*SQUARE, **{"Class Name": "dent"})]})
    report = check_dataset(load_dataset(root))
    mism = of_kind(report, "attribute_mismatch")
    assert len(mism) == 1 and mism[0].split == "val" and mism[0].image is None
    assert "'name'" in mism[0].message and "'Class Name'" in mism[0].message and "dent" in mism[0].message
    via(root / "val", {"b.png": [poly(*SQUARE, name="scratch")]})
    assert not of_kind(check_dataset(load_dataset(root)), "attribute_mismatch")
    # one file mixing two names for the same role (merged exports)
    via(
        root / "val",
        {
            "b.png": [
                poly(*SQUARE, name="dent"),
                poly(*SQUARE, **{"Class Name": "dent"}),
                poly(*SQUARE, name="dent", severity="high"),
            ]
        },
    )
    mism = [p.message for p in of_kind(check_dataset(load_dataset(root)), "attribute_mismatch")]
    assert len(mism) == 2
    assert any(
        "'Class Name'" in m and "'name'" in m and "same values (dent)" in m and "1 region" in m for m in mism
    )
    assert any("also uses 'Class Name', 'severity'" in m for m in mism)


def test_clean_dataset_has_no_problems_and_order_is_stable(tmp_path):
    root = tmp_path / "ds"
    for i, s in enumerate(("train", "val")):
        image(root / s / "a.png", 10 + i)
        via(root / s, {"a.png": [poly(*SQUARE)]})
    assert check_dataset(load_dataset(root)).problems == []
    image(root / "train" / "b.png", 3)
    via(
        root / "train",
        {"a.png": [poly([1, 5], [1, 5])], "zz.png": [], "b.png": [poly([0, 99, 99], [0, 0, 9])]},
    )
    one = check_dataset(load_dataset(root)).to_json()
    two = check_dataset(load_dataset(root)).to_json()
    assert one == two
    assert [(p["image"], p["kind"]) for p in one["problems"]] == [
        ("a.png", "degenerate_region"),
        ("zz.png", "missing_file"),
        ("b.png", "out_of_bounds"),
    ]


# --------------------------------------------------------------------------------------------- check_entry


def test_check_entry_after_edits(tmp_path):
    p = image(tmp_path / "a.png", 1, w=64, h=48)
    entry = ImageEntry(key="a.png", filename="a.png", size=p.stat().st_size, base_dir=tmp_path)
    assert [q.kind for q in check_entry("train", entry)] == ["unannotated_image"]
    region = Region(
        shape={"name": "polygon", "all_points_x": [10, 30, 30, 10], "all_points_y": [10, 10, 30, 30]}
    )
    entry.regions.append(region)
    assert check_entry("train", entry) == []
    region.shape["all_points_y"] = [10, 30, 10, 30]  # drag two vertices across: a bow tie
    probs = check_entry("train", entry, image_size=(64, 48))
    assert [(q.kind, q.region, q.split, q.image) for q in probs] == [
        ("self_intersection", 0, "train", "a.png")
    ]
    region.shape["all_points_x"] = [10, 30, 300, 10]
    region.shape["all_points_y"] = [10, 10, 30, 30]
    assert [q.kind for q in check_entry("train", entry, image_size=(64, 48))] == ["out_of_bounds"]
    assert check_entry("train", entry, image_size=(400, 48)) == []
    gone = ImageEntry(key="x.png", filename="x.png", base_dir=tmp_path, regions=[region])
    assert [q.kind for q in check_entry("val", gone)] == ["missing_file"]
    assert check_entry("val", gone, image_size=(400, 400)) == []  # size given: no file access
    assert REGION_KINDS | FILE_KINDS < set(KINDS) and not REGION_KINDS & FILE_KINDS


# --------------------------------------------------------------------------------------------- geometry


def _brute_force_simple(pts) -> bool:
    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (v > 0) - (v < 0)

    def on(p, a, b):
        return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])

    n = len(pts)
    edges = [(pts[i], pts[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        a, b, c = pts[i - 1], pts[i], pts[(i + 1) % n]
        ux, uy, vx, vy = b[0] - a[0], b[1] - a[1], c[0] - b[0], c[1] - b[1]
        if ux * vy - uy * vx == 0 and ux * vx + uy * vy < 0:
            return False
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            (a1, b1), (a2, b2) = edges[i], edges[j]
            d1, d2, d3, d4 = orient(a1, b1, a2), orient(a1, b1, b2), orient(a2, b2, a1), orient(a2, b2, b1)
            if d1 * d2 < 0 and d3 * d4 < 0:
                return False
            if (
                (d1 == 0 and on(a2, a1, b1))
                or (d2 == 0 and on(b2, a1, b1))
                or (d3 == 0 and on(a1, a2, b2))
                or (d4 == 0 and on(b1, a2, b2))
            ):
                return False
    return True


def test_self_intersection_matches_brute_force():
    rng = np.random.default_rng(0)
    shapes, truth = [], []
    for t in range(400):
        n = int(rng.integers(4, 12))
        if t % 2:  # random points on a small grid: many crossings and touches
            pts = [tuple(int(v) for v in p) for p in rng.integers(0, 10, (n, 2))]
        else:  # star-shaped outlines, some of them broken by rounding
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = rng.uniform(3, 40, n)
            pts = [
                (round(50 + q * np.cos(a)), round(50 + q * np.sin(a))) for a, q in zip(ang, r, strict=True)
            ]
        dedup = [p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]]
        while len(dedup) > 1 and dedup[-1] == dedup[0]:
            dedup.pop()
        shapes.append(
            {"name": "polygon", "all_points_x": [p[0] for p in pts], "all_points_y": [p[1] for p in pts]}
        )
        truth.append(dedup)
    _, issues = analyze_shapes(shapes)
    checked = simple = 0
    for i, pts in enumerate(truth):
        found = {x.kind for x in issues.get(i, [])}
        if "degenerate_region" in found:
            continue
        checked += 1
        simple += _brute_force_simple(pts)
        assert ("self_intersection" not in found) == _brute_force_simple(pts), pts
    assert checked > 300 and 50 < simple < checked - 50  # both outcomes well represented


def test_geometry_handles_bad_numbers_and_other_shapes():
    bbox, issues = analyze_shapes(
        [
            {"name": "polygon", "all_points_x": [0, "a", 3], "all_points_y": [0, 1, 3]},
            {"name": "polygon", "all_points_x": [0, 1], "all_points_y": [0, 1, 3]},
            {"name": "ellipse", "cx": 10, "cy": 10, "rx": 5, "ry": 2, "theta": np.pi / 2},
            {"name": "circle", "cx": 10, "cy": 10, "r": float("nan")},
            {"name": "blob"},
            {
                "name": "polygon",
                "all_points_x": [0, 10, 10, 0, 0],
                "all_points_y": [0, 0, 10, 10, 0],
            },  # VIA1 closed
        ]
    )
    assert [x.severity for x in issues[0]] == ["error"] and issues[0][0].kind == "degenerate_region"
    assert issues[1][0].kind == "degenerate_region"
    assert 2 not in issues and np.allclose(bbox[2], [8, 5, 12, 15])  # rotated 90 degrees
    assert issues[3][0].kind == "degenerate_region"
    assert issues[4][0].kind == "unsupported_shape"
    assert 5 not in issues


# --------------------------------------------------------------------------------------------- command line


def test_cli_exit_codes_and_json(tmp_path, capsys):
    root = tmp_path / "ds"
    image(root / "train" / "a.png", 1)
    via(root / "train", {"a.png": [poly(*SQUARE)]})
    assert main(["check", str(root)]) == 0
    assert "no problems found" in capsys.readouterr().out

    via(root / "train", {"a.png": [poly(*SQUARE)], "gone.png": [poly([1, 5], [1, 5])]})
    assert main(["check", str(root), "--json", "--no-decode"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"images", "regions", "problems"}
    assert data["images"] == 2 and data["regions"] == 2
    assert all(
        set(p) == {"kind", "severity", "split", "image", "region", "message"} for p in data["problems"]
    )
    assert [(p["kind"], p["severity"], p["split"], p["image"], p["region"]) for p in data["problems"]] == [
        ("missing_file", "error", "train", "gone.png", None),
        ("degenerate_region", "warning", "train", "gone.png", 0),
    ]

    assert main(["check", str(root)]) == 1
    text = capsys.readouterr().out
    assert "missing_file: 1 (1 error)" in text and "delete the entry" in text

    assert main(["check", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (root / "train" / "via_region_data.json").write_text("{broken")
    assert main(["check", f"{root}:train"]) == 2
    assert "via_region_data.json" in capsys.readouterr().err


def test_missing_image_url_and_negative_coordinates(tmp_path):
    d = tmp_path / "s"
    via(
        d,
        {
            "https://example.org/a.jpg": [poly([-5, 10, 10], [0, 0, 10])],
            "b.jpg": [poly([-5, 10, 10], [0, 0, 9])],
        },
    )
    report = check_dataset(load_dataset(d))
    missing = {p.image: p.message for p in of_kind(report, "missing_file")}
    assert (
        "URL" in missing["https://example.org/a.jpg"] and "download" in missing["https://example.org/a.jpg"]
    )
    assert "does not exist" in missing["b.jpg"]
    oob = of_kind(report, "out_of_bounds")  # size unknown: negative coordinates are still outside any image
    assert len(oob) == 2 and all("negative" in p.message and "nan" not in p.message for p in oob)


def test_file_cache_reads_only_new_or_changed_files_and_reports_the_same(tmp_path, monkeypatch):
    import os

    from viaseg.core.checks.checks import FileCache
    from viaseg.core.imaging import imageio

    root = tmp_path / "ds"
    image(root / "train" / "a.png", 1)
    image(root / "train" / "b.png", 2)
    image(root / "val" / "v.png", 1)  # a copy of a.png: a leak
    (root / "val" / "bad.jpg").write_bytes(b"not a jpeg")
    via(root / "train", {"a.png": [poly(*SQUARE)], "b.png": [poly(*SQUARE)]}, sizes={"b.png": 5})
    via(root / "val", {"v.png": [poly(*SQUARE)], "bad.jpg": [poly(*SQUARE)]})
    reads: list[str] = []
    real_read = imageio.read_image
    monkeypatch.setattr(
        imageio, "read_image", lambda p, *a, **k: reads.append(Path(p).name) or real_read(p, *a, **k)
    )

    cache = FileCache()
    first = check_dataset(load_dataset(root), file_cache=cache)
    assert (
        sorted(reads) == ["a.png", "b.png", "bad.jpg", "v.png"] and len(cache) == 3
    )  # the bad file is not kept
    reads.clear()
    again = check_dataset(load_dataset(root), file_cache=cache)
    assert reads == ["bad.jpg"]  # only the file that failed is read again
    assert kinds(again) == kinds(first) and [p.message for p in again.problems] == [
        p.message for p in first.problems
    ]
    assert {"size_mismatch", "duplicate_image", "unreadable_image"} <= {p.kind for p in again.problems}

    # a replaced file (new content, new modification time) is read again and its new content counts
    image(root / "val" / "v.png", 3)
    st = os.stat(root / "val" / "v.png")
    os.utime(root / "val" / "v.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    reads.clear()
    changed = check_dataset(load_dataset(root), file_cache=cache)
    assert sorted(reads) == ["bad.jpg", "v.png"]
    assert not of_kind(changed, "duplicate_image")
    # without the cache the same problems are found
    assert kinds(changed) == kinds(check_dataset(load_dataset(root)))


def test_a_shape_name_that_is_not_text_is_reported_not_a_crash():
    """A region whose shape name is a list passed the reader and crashed the check (TypeError: unhashable)."""
    from viaseg.core.annotation.project import ImageEntry, Region
    from viaseg.core.checks.checks import check_entry

    for bad in ([1, 2], {"a": 1}, 3, None):
        entry = ImageEntry(
            key="a.jpg",
            filename="a.jpg",
            regions=[Region({"name": bad, "all_points_x": [1, 5, 5], "all_points_y": [1, 1, 5]}, {})],
        )
        problems = check_entry("train", entry, image_size=(10, 10))
        assert [p.kind for p in problems] == ["unsupported_shape"], bad
        assert ("unknown shape" in problems[0].message) == (bad is not None)


def test_check_refuses_a_file_that_names_an_image_twice(tmp_path, capsys):
    region = {"shape_attributes": {"name": "rect", "x": 1, "y": 1, "width": 4, "height": 4}}
    first = json.dumps({"filename": "a.jpg", "size": -1, "regions": [region, region], "file_attributes": {}})
    later = json.dumps({"filename": "a.jpg", "size": -1, "regions": [], "file_attributes": {}})
    via = tmp_path / "via_region_data.json"
    via.write_text(f'{{"a.jpg-1": {first}, "a.jpg-1": {later}}}', encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 2  # not "0 regions, no problems": the 2 regions are not lost
    err = capsys.readouterr().err
    assert str(via) in err and '["a.jpg-1"]: this key appears 2 times' in err and "2 region(s)" in err


def test_check_lists_what_the_readers_left_out_as_errors(tmp_path, capsys):
    folder = tmp_path / "ds" / "train"
    folder.mkdir(parents=True)
    doc = {"version": "5.5.0", "flags": {}, "imagePath": "a.png", "imageData": None}
    shape = {"label": "dent", "points": [[1, 1], [9, 1], [9, 9]], "shape_type": "polygon"}
    (folder / "a.json").write_text(json.dumps({**doc, "shapes": [shape, {**shape, "shape_type": "cube"}]}))
    (folder / "b.json").write_text('{"version": "5.5.0", "shapes": [')  # truncated
    image(folder / "a.png", 1)
    assert main(["check", str(tmp_path / "ds"), "--json"]) == 1  # the good file is still checked
    data = json.loads(capsys.readouterr().out)
    assert data["images"] == 1 and data["regions"] == 1
    left = [p for p in data["problems"] if p["kind"] == "not_loaded"]
    assert [(p["severity"], p["split"]) for p in left] == [("error", "train")] * 2
    assert "a.json: shapes[1]: shape type 'cube' skipped" in left[0]["message"]
    assert "b.json: line 1 column" in left[1]["message"] and "the file is left out" in left[1]["message"]


def test_a_polygon_without_points_reads_as_a_sentence():
    _, issues = analyze_shapes([{"name": "polygon", "all_points_x": [], "all_points_y": []}])
    assert [(i.kind, i.message) for i in issues[0]] == [
        ("degenerate_region", "polygon has no points; delete it")
    ]
