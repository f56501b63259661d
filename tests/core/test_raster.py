"""raster: regions -> masks (exactly fillPoly at full size, scaled geometry otherwise) and masks -> polygons."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from viaseg.core.annotation.project import Region
from viaseg.core.annotation.raster import (
    class_mapper,
    mask_to_polygons,
    mask_to_regions,
    merge_regions,
    rasterize,
    rasterize_report,
    shape_polygon,
)
from viaseg.core.imaging.imageio import image_size


def poly(xs, ys) -> dict:
    return {"name": "polygon", "all_points_x": list(xs), "all_points_y": list(ys)}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def _load_regions(json_path: Path) -> list[tuple[Path, list[Region]]]:
    """(image path, regions) of a VIA 2 file; via_io when available, plain json otherwise."""
    try:
        from viaseg.core.annotation.formats.via_io import load_via
    except ImportError:
        load_via = None
    if load_via is not None:
        project = load_via(json_path)
        return [(im.path, im.regions) for im in project.images]
    data = json.loads(json_path.read_text())
    out = []
    for entry in data.values():
        regs = entry["regions"]
        regs = list(regs.values()) if isinstance(regs, dict) else regs
        out.append(
            (
                json_path.parent / entry["filename"],
                [Region(r["shape_attributes"], r.get("region_attributes", {})) for r in regs],
            )
        )
    return out


def test_equals_fillpoly_on_every_car_damage_image(car_damage):
    checked = 0
    for split in ("train", "val"):
        for path, regions in _load_regions(car_damage / split / "via_region_data.json"):
            if not regions:
                continue  # (three train entries list images that are not in the folder, none has regions)
            w, h = image_size(path)
            ref = np.zeros((h, w), np.uint8)
            for r in regions:
                pts = np.array([r.shape["all_points_x"], r.shape["all_points_y"]], dtype=np.float64).T
                cv2.fillPoly(ref, [pts.astype(np.int32)], 1)
            got = rasterize(regions, (w, h))
            assert got.shape == (h, w) and got.dtype == np.uint8
            assert np.array_equal(got, ref), path
            checked += 1
    assert checked >= 60


def test_scaled_geometry_close_to_resized_mask(car_damage):
    n = 0
    for path, regions in _load_regions(car_damage / "val" / "via_region_data.json"):
        if not regions:
            continue
        w, h = image_size(path)
        full = rasterize(regions, (w, h))
        if full.sum() < 2000:
            continue  # tiny regions: a few pixels at 128 px make IoU meaningless
        small = rasterize(regions, (w, h), out_size=(128, 128))
        assert small.shape == (128, 128)
        resized = cv2.resize(full, (128, 128), interpolation=cv2.INTER_AREA)  # fraction covered per pixel
        assert iou(small, resized.astype(np.float32) >= 0.5) > 0.9, path
        n += 1
    assert n >= 5


def test_scaling_maps_pixel_centres():
    # a 10x10 block at (10..19) of a 40x40 image is exactly the 5x5 block (5..9) at half size
    r = poly([10, 19, 19, 10], [10, 10, 19, 19])
    m = rasterize([r], (40, 40), (20, 20))
    want = np.zeros((20, 20), np.uint8)
    want[5:10, 5:10] = 1
    assert np.array_equal(m, want)
    up = rasterize([r], (40, 40), (80, 40))  # anisotropic: width doubles
    assert up.shape == (40, 80)
    ys, xs = np.nonzero(up)
    # upscaling keeps fillPoly's half-*output*-pixel margin (documented): within a pixel of 20..39
    assert abs(xs.min() - 20) <= 1 and abs(xs.max() - 39) <= 1 and (ys.min(), ys.max()) == (10, 19)
    # shrinking by a whole factor is exactly the area-resized full-size mask
    rng = np.random.default_rng(3)
    for _ in range(5):
        xs_, ys_ = rng.integers(0, 400, 7), rng.integers(0, 300, 7)
        full = rasterize([poly(xs_, ys_)], (400, 300))
        want = cv2.resize(full * np.uint8(255), (100, 75), interpolation=cv2.INTER_AREA) >= 128
        assert np.array_equal(rasterize([poly(xs_, ys_)], (400, 300), (100, 75)), want)


def test_rect_circle_ellipse():
    rect = {"name": "rect", "x": 2, "y": 3, "width": 5, "height": 4}
    m = rasterize([rect], (20, 20))
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (2, 7, 3, 7)  # corner points filled inclusively
    circ = {"name": "circle", "cx": 50, "cy": 40, "r": 20}
    m = rasterize([circ], (100, 100))
    yy, xx = np.mgrid[:100, :100]
    ref = np.hypot(xx - 50, yy - 40) <= 20.5  # fillPoly convention: boundary pixels included
    assert iou(m, ref) > 0.97
    half = rasterize([circ], (100, 100), (50, 50))
    assert abs(int(half.sum()) * 4 - int(m.sum())) < 0.05 * m.sum()


@pytest.mark.parametrize("theta", [0.0, 0.5, math.pi / 2, -1.0, 2.5])
def test_rotated_ellipse_matches_cv2(theta):
    e = {"name": "ellipse", "cx": 60.0, "cy": 50.0, "rx": 40.0, "ry": 12.0, "theta": theta}
    m = rasterize([e], (120, 100))
    ref = np.zeros((100, 120), np.uint8)
    # cv2.ellipse's angle turns the x axis towards +y (clockwise on screen), as the canvas ellipse() does
    cv2.ellipse(ref, ((60.0, 50.0), (80.0, 24.0), math.degrees(theta)), 1, -1)
    assert iou(m, ref) > 0.95


def test_ellipse_theta_direction():
    # theta = +45 degrees: the long axis runs from top-left to bottom-right on screen (y grows downwards)
    e = {"name": "ellipse", "cx": 50, "cy": 50, "rx": 40, "ry": 5, "theta": math.pi / 4}
    m = rasterize([e], (100, 100))
    assert m[75, 75] == 1 and m[25, 25] == 1
    assert m[25, 75] == 0 and m[75, 25] == 0
    no_theta = {"name": "ellipse", "cx": 50, "cy": 50, "rx": 40, "ry": 5}  # VIA < 2.0.8: no theta
    m = rasterize([no_theta], (100, 100))
    assert m[50, 88] == 1 and m[88, 50] == 0


def test_non_areas_and_bad_geometry_are_reported_not_drawn():
    good = poly([1, 8, 8], [1, 1, 8])
    regions = [
        good,
        {"name": "polyline", "all_points_x": [0, 9], "all_points_y": [0, 9]},
        {"name": "point", "cx": 3, "cy": 3},
        poly([0, 5], [0, 5]),
        poly([0, 5, float("nan")], [0, 5, 2]),
        poly([0, 5, 3], [0, 5]),
        {"name": "circle", "cx": 5, "cy": 5, "r": float("inf")},
        {"name": "rect", "x": "a", "y": 0, "width": 3, "height": 3},
        {"name": "blob"},
        poly([0, 1e12, 0], [0, 0, 1e12]),
    ]
    mask, skipped = rasterize_report(regions, (10, 10))
    ref = np.zeros((10, 10), np.uint8)
    cv2.fillPoly(ref, [np.array([[1, 1], [8, 1], [8, 8]], np.int32)], 1)
    assert np.array_equal(mask, ref)
    assert [s.index for s in skipped] == list(range(1, 10))
    reasons = {s.index: s.reason for s in skipped}
    assert "not an area" in reasons[1] and "not an area" in reasons[2]
    assert "3" in reasons[3] and "finite" in reasons[4] and "finite" in reasons[6]
    assert "out of range" in reasons[9]
    assert skipped[0].kind == "polyline" and "polyline" in str(skipped[0])
    assert np.array_equal(rasterize(regions, (10, 10)), ref)


def test_region_objects_via_dicts_and_classes():
    scratch = Region(poly([0, 9, 9, 0], [0, 0, 4, 4]), {"class": "scratch"})
    dent = Region(poly([0, 4, 4, 0], [0, 0, 9, 9]), {"class": "dent"})
    other = Region(poly([6, 9, 9, 6], [6, 6, 9, 9]), {"class": "rust"})
    binary = rasterize([scratch, dent, other], (10, 10))
    assert (
        binary.max() == 1
        and binary[2, 2] == 1
        and binary[8, 8] == 1
        and binary[7, 6] == 1
        and binary[5, 5] == 0
    )
    m, skipped = rasterize_report(
        [scratch, dent, other], (10, 10), class_of=class_mapper("class", ["scratch", "dent"])
    )
    assert m[2, 7] == 1 and m[2, 2] == 2 and m[8, 2] == 2  # later regions drawn on top
    assert m[8, 8] == 0 and [s.index for s in skipped] == [2]
    via = {"shape_attributes": poly([0, 9, 9], [0, 0, 9]), "region_attributes": {"class": {"dent": True}}}
    m = rasterize([via], (10, 10), class_of=class_mapper("class", {"dent": 7}))
    assert m.max() == 7


def test_shape_polygon():
    assert shape_polygon({"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4}).tolist() == [
        [1, 2],
        [4, 2],
        [4, 6],
        [1, 6],
    ]
    c = shape_polygon({"name": "circle", "cx": 10, "cy": 20, "r": 5})
    assert c.shape == (72, 2) and np.allclose(np.hypot(c[:, 0] - 10, c[:, 1] - 20), 5)
    e = shape_polygon({"name": "ellipse", "cx": 0, "cy": 0, "rx": 4, "ry": 2, "theta": math.pi / 2}, n=8)
    assert e.shape == (8, 2) and np.allclose(e[0], [0, 4])  # angle 0 point rotated onto +y
    p = shape_polygon(Region(poly([1, 2, 3], [4, 5, 6])))
    assert p.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert shape_polygon({"name": "polyline", "all_points_x": [1, 2], "all_points_y": [1, 2]}) is None
    assert shape_polygon({"name": "point", "cx": 1, "cy": 1}) is None
    assert shape_polygon(poly([1, 2], [1, 2])) is None


def _blobs_with_holes(rng: np.random.Generator, h=160, w=200) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for _ in range(4):
        c = (int(rng.integers(30, w - 30)), int(rng.integers(30, h - 30)))
        axes = (int(rng.integers(12, 55)), int(rng.integers(12, 45)))
        cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    for _ in range(6):
        cv2.circle(
            m, (int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20))), int(rng.integers(3, 10)), 0, -1
        )
    return (cv2.GaussianBlur(m.astype(np.float32), (0, 0), 2.0) > 0.5).astype(np.uint8)


def _fill(polys, shape) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for p in polys:
        cv2.fillPoly(out, [p.astype(np.int32)], 1)
    return out


def test_mask_to_polygons_reproduces_random_blobs_with_holes():
    rng = np.random.default_rng(7)
    holes_seen = 0
    for _ in range(12):
        m = _blobs_with_holes(rng)
        _, hier = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        holes_seen += int((hier[0][:, 3] != -1).sum()) if hier is not None else 0
        polys = mask_to_polygons(m, tolerance=0, min_area=0)
        assert all(p.ndim == 2 and p.shape[1] == 2 and len(p) >= 3 for p in polys)
        assert iou(_fill(polys, m.shape), m) >= 0.99
        # the same polygons through rasterize (as VIA regions) give the same mask
        regs = [poly(p[:, 0].tolist(), p[:, 1].tolist()) for p in polys]
        assert np.array_equal(rasterize(regs, (m.shape[1], m.shape[0])), _fill(polys, m.shape))
        simplified = mask_to_polygons(m, tolerance=1.0, min_area=10)
        assert sum(len(p) for p in simplified) < sum(len(p) for p in polys)
        assert iou(_fill(simplified, m.shape), m) > 0.95
    assert holes_seen >= 5  # the generator really made holes


def test_hole_is_kept_in_single_polygon():
    m = np.zeros((60, 60), np.uint8)
    m[10:50, 10:50] = 1
    m[25:35, 25:35] = 0
    polys = mask_to_polygons(m, tolerance=0, min_area=0)
    assert len(polys) == 1
    back = _fill(polys, m.shape)
    assert back[30, 30] == 0 and back[12, 12] == 1
    assert iou(back, m) >= 0.99
    # a hole smaller than min_area is filled
    m2 = m.copy()
    m2[25:35, 25:35] = 1
    m2[30:32, 30:32] = 0
    assert _fill(mask_to_polygons(m2, tolerance=0, min_area=10), m.shape)[30, 30] == 1


def test_min_area_and_empty():
    m = np.zeros((40, 40), np.uint8)
    m[2:4, 2:4] = 1  # area of the pixel-centre polygon: 1
    m[10:30, 10:30] = 255
    assert len(mask_to_polygons(m, min_area=10)) == 1
    assert len(mask_to_polygons(m, tolerance=0, min_area=0)) == 2
    assert mask_to_polygons(np.zeros((5, 5), np.uint8)) == []


def test_real_masks_roundtrip(car_damage):
    n = 0
    for path, regions in _load_regions(car_damage / "val" / "via_region_data.json"):
        if not regions:
            continue
        w, h = image_size(path)
        m = rasterize(regions, (w, h))
        back = rasterize(mask_to_regions(m, tolerance=0, min_area=0), (w, h))
        assert iou(back, m) >= 0.99, path
        n += 1
    assert n >= 10


def test_mask_to_regions_shapes_and_classes():
    m = np.zeros((50, 50), np.uint8)
    m[5:20, 5:20] = 1
    m[30:45, 30:45] = 2
    regs = mask_to_regions(m, attributes={"class": "dent"})
    assert len(regs) == 2
    for r in regs:
        assert r.shape["name"] == "polygon" and r.attributes == {"class": "dent"}
        assert all(isinstance(v, int) for v in r.shape["all_points_x"] + r.shape["all_points_y"])
        assert len(r.shape["all_points_x"]) >= 3
    regs[0].attributes["x"] = 1
    assert "x" not in regs[1].attributes  # each region has its own attributes dict
    per_class = mask_to_regions(m, classes={1: {"class": "scratch"}, 2: {"class": "dent"}})
    assert sorted(r.attributes["class"] for r in per_class) == ["dent", "scratch"]
    back = rasterize(per_class, (50, 50), class_of=class_mapper("class", ["scratch", "dent"]))
    assert np.array_equal(back, m)


_junk = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(
    shapes=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["polygon", "polyline", "bogus"]),
                    "all_points_x": st.one_of(st.lists(_junk, max_size=6), _junk),
                    "all_points_y": st.one_of(st.lists(_junk, max_size=6), _junk),
                }
            ),
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["rect", "circle", "ellipse", "point"]),
                    "x": _junk,
                    "y": _junk,
                    "width": _junk,
                    "height": _junk,
                    "cx": _junk,
                    "cy": _junk,
                    "r": _junk,
                    "rx": _junk,
                    "ry": _junk,
                    "theta": _junk,
                }
            ),
        ),
        max_size=4,
    ),
    out=st.sampled_from([None, (7, 5), (64, 48)]),
)
def test_any_geometry_is_drawn_or_reported(shapes, out):
    mask, skipped = rasterize_report(shapes, (32, 24), out)
    assert mask.dtype == np.uint8 and mask.shape == ((24, 32) if out is None else (out[1], out[0]))
    assert set(np.unique(mask)) <= {0, 1}
    assert len({s.index for s in skipped}) == len(skipped) <= len(shapes)
    for s in skipped:
        assert s.reason


@pytest.mark.parametrize(
    "shape",
    [
        {
            "name": "ellipse",
            "cx": 0,
            "cy": 0,
            "rx": 0,
            "ry": 5.722234971514057e307,
            "theta": 0,
        },  # found by hypothesis
        {"name": "ellipse", "cx": 0, "cy": 0, "rx": 5e307, "ry": 5e307, "theta": 0.7},
        {"name": "circle", "cx": 1, "cy": 1, "r": 1e308},
    ],
)
def test_absurd_radius_is_reported_not_a_crash(shape):
    mask, skipped = rasterize_report([shape], (32, 24), (7, 5))
    assert not mask.any() and len(skipped) == 1 and "out of range" in skipped[0].reason


def test_merge_regions_joins_each_new_region_to_the_region_it_overlaps_most():
    dent = Region(shape=poly([10, 40, 40, 10], [10, 10, 40, 40]), attributes={"damage": "dent"})
    scratch = Region(shape={"name": "circle", "cx": 70, "cy": 25, "r": 10}, attributes={"damage": "scratch"})
    pt = Region(shape={"name": "point", "cx": 5, "cy": 5})
    # mostly over the dent, a little over the scratch: it joins the dent only
    over = Region(shape=poly([30, 62, 62, 30], [15, 15, 35, 35]))
    alone = Region(shape=poly([10, 20, 20, 10], [60, 60, 70, 70]))
    out, merged, appended = merge_regions([dent, pt, scratch], [over, alone], tolerance=0, min_area=1)
    assert (merged, appended) == (1, 1)
    assert len(out) == 4 and out[1] is pt and out[2] is scratch and out[3] is alone
    assert out[0].attributes == {"damage": "dent"} and out[0].attributes is not dent.attributes
    want = rasterize([dent, over], (100, 80))
    assert np.array_equal(rasterize([out[0]], (100, 80)), want)
    # nothing to merge with: everything is appended, the old regions untouched
    out, merged, appended = merge_regions([pt], [alone])
    assert out == [pt, alone] and (merged, appended) == (0, 1)


def test_a_bool_mask_gives_the_same_polygons_as_its_bytes():
    """mask_to_polygons / mask_to_regions take a bool mask as it is (no copies of a 48-MP map); the polygons
    are those of the same mask as 0/1 or 0/255 bytes, a non-contiguous slice included."""
    from viaseg.core.annotation.raster import mask_to_polygons, mask_to_regions

    rng = np.random.default_rng(3)
    for _ in range(10):
        m = rng.random((50, 70)) > 0.6
        m[10:30, 20:50] = True
        want = [p.tolist() for p in mask_to_polygons(m.astype(np.uint8) * 255, 0.5, 4)]
        assert [p.tolist() for p in mask_to_polygons(m, 0.5, 4)] == want
        sliced = np.asfortranarray(m)[:, ::1]
        assert [p.tolist() for p in mask_to_polygons(sliced, 0.5, 4)] == want
        assert [r.shape for r in mask_to_regions(m)] == [r.shape for r in mask_to_regions(m.astype(np.uint8))]
