"""Click to segment (core.assist): regions from clicks, a box, the model's map and the photo; polygons at a
detail; the NoC click protocol. Synthetic photos with known shapes, and real car-damage photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from viaseg.core.assist import protocol
from viaseg.core.assist import segment as assist
from viaseg.core.assist.segment import Click, Segmenter


def _scene(w=400, h=300, centre=(220, 150), radius=60, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), (90, 110, 130), np.float32) + rng.normal(0, 8, (h, w, 3))
    gt = np.zeros((h, w), np.uint8)
    cv2.circle(gt, centre, radius, 1, -1)
    img[gt > 0] = (200, 60, 50)
    img = cv2.GaussianBlur(img.clip(0, 255).astype(np.uint8), (5, 5), 0)
    return img, gt > 0


def _map(gt, size=(128, 96), blur=15):
    m = cv2.GaussianBlur(gt.astype(np.float32), (0, 0), blur)
    return cv2.resize(m, size, interpolation=cv2.INTER_AREA)


def test_click_protocol_on_a_known_disc_reaches_iou_09_in_two_clicks():
    img, gt = _scene()
    h, w = gt.shape
    for seg in (Segmenter((w, h), _map(gt), img), Segmenter((w, h), None, img)):
        ious = protocol.click_protocol(seg, gt, max_clicks=5)
        assert protocol.clicks_to(ious, 0.9, 5) <= 2, ious


def test_protocol_clicks_go_to_the_centre_of_the_largest_error():
    gt = np.zeros((100, 100), bool)
    gt[20:80, 20:80] = True
    x, y = protocol.first_click(gt)
    assert abs(x - 50) < 2 and abs(y - 50) < 2
    pred = gt.copy()
    pred[20:80, 20:40] = False  # a missed band on the left
    nx, ny, positive = protocol.next_click(gt, pred)
    assert positive and 20 <= nx <= 40 and 20 <= ny <= 80
    pred = gt.copy()
    pred[0:10, :] = True  # a false band above
    assert protocol.next_click(gt, pred)[2] is False
    assert protocol.next_click(gt, gt) is None


def test_empty_map_and_background_click_give_no_region_and_a_message():
    img, gt = _scene()
    h, w = gt.shape
    empty = Segmenter((w, h), np.zeros((60, 80), np.float32), None)
    res = empty.segment([Click(200, 150)])
    assert res.region is None and "no damage" in res.message
    res = Segmenter((w, h), _map(gt), None).segment([Click(20, 20)])
    assert res.region is None and res.message
    res = Segmenter((w, h), _map(gt), None).segment([])
    assert res.region is None and "Click" in res.message


def test_negative_click_cuts_the_region():
    img, gt = _scene()
    h, w = gt.shape
    seg = Segmenter((w, h), _map(gt), img)
    whole = seg.segment([Click(220, 150)]).region
    cut = seg.segment([Click(220, 150), Click(265, 150, False)]).region
    assert cut is not None and cut.area() < 0.9 * whole.area()
    assert not cut.full((w, h))[150, 270]  # the negative side is gone


def test_a_fit_that_moves_the_maps_region_far_keeps_the_maps_outline(monkeypatch):
    """GrabCut may snap a region the map found to the photo's edges, not replace it: a fit far from the map's
    region (IoU under REFINE_AGREE) is dropped, a near one is taken."""
    img, gt = _scene()
    h, w = gt.shape
    rough = Segmenter((w, h), _map(gt), img).segment([Click(220, 150)], refine=False).region
    assert rough is not None and rough.source == "map"
    moved = assist.RegionMask(
        rough.mask, rough.x0 + 0.5 * (rough.bbox()[2] - rough.bbox()[0]), rough.y0, rough.scale
    )
    snapped = assist.RegionMask(
        cv2.erode(rough.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0, rough.x0, rough.y0, rough.scale
    )
    for fit, kept in ((moved, rough), (snapped, snapped)):
        monkeypatch.setattr(Segmenter, "_refine", lambda self, region, *a, fit=fit: fit)
        res = Segmenter((w, h), _map(gt), img).segment([Click(220, 150)])
        assert res.region is not None
        assert np.array_equal(res.region.full((w, h)), kept.full((w, h)))
        assert res.region.source == ("map" if kept is rough else "map+edges")


def test_box_without_a_model_gives_the_object():
    img, gt = _scene()
    h, w = gt.shape
    res = Segmenter((w, h), None, img).segment([], box=(150, 80, 290, 220))
    assert res.region is not None
    assert protocol.mask_iou(res.region.full((w, h)), gt) > 0.85


def test_map_region_is_clipped_to_the_box_and_a_box_alone_takes_the_map_inside_it():
    img, gt = _scene()
    h, w = gt.shape
    seg = Segmenter((w, h), _map(gt, blur=4), None)
    res = seg.segment([Click(220, 150)], box=(150, 80, 220, 220))
    full = res.region.full((w, h))
    assert full[150, 180] and not full[150, 260]
    res = seg.segment([], box=(0, 0, 400, 300))
    assert protocol.mask_iou(res.region.full((w, h)), gt) > 0.85


def test_faint_damage_is_found_with_a_threshold_chosen_for_the_click():
    img, gt = _scene()
    h, w = gt.shape
    faint = _map(gt, blur=4) * 0.35  # the model is unsure everywhere: nothing above 0.5
    res = Segmenter((w, h), faint, None, threshold=0.5).segment([Click(220, 150)])
    assert res.region is not None and protocol.mask_iou(res.region.full((w, h)), gt) > 0.8


def test_polygon_detail_levels_and_default_keep_iou_095():
    img, gt = _scene()
    h, w = gt.shape
    region = Segmenter((w, h), _map(gt), img).segment([Click(220, 150)]).region
    counts = [len(assist.polygon(region, i)) for i in range(len(assist.LEVELS))]
    assert counts[0] > 100 and counts[-1] <= 8
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))  # coarser levels never add vertices
    level = assist.default_level(region)
    poly = assist.polygon(region, level)
    assert 4 <= len(poly) < counts[0] / 4
    drawn = np.zeros((h, w), np.uint8)
    cv2.fillPoly(drawn, [np.round(poly).astype(np.int32)], 1)
    assert protocol.mask_iou(drawn > 0, region.full((w, h))) > 0.9
    shape = assist.polygon_shape(poly)
    assert shape["name"] == "polygon" and len(shape["all_points_x"]) == len(shape["all_points_y"]) >= 3


def test_parts_splits_a_region_in_pieces_largest_first_and_drops_specks():
    m = np.zeros((100, 200), np.uint8)
    cv2.circle(m, (40, 50), 20, 1, -1)  # the larger piece
    cv2.circle(m, (150, 50), 10, 1, -1)
    m[95, 195] = 1  # a speck
    region = assist.RegionMask(m > 0, x0=10.0, y0=5.0, scale=2.0)
    pieces = assist.parts(region)
    assert len(pieces) == 2 and pieces[0].area() > pieces[1].area()
    full = region.full((420, 210))
    assert np.array_equal(pieces[0].full((420, 210)) | pieces[1].full((420, 210)), full & ~_speck(full))
    x0, _, x1, _ = pieces[1].bbox()
    assert x0 < 10 + 150 * 2 < x1  # each piece where it was
    one = assist.RegionMask(m[:, :100] > 0, 0.0, 0.0, 1.0)
    assert assist.parts(one) == [one]
    assert assist.parts(assist.RegionMask(np.zeros((5, 5), bool), 0.0, 0.0, 1.0)) == []


def _speck(full: np.ndarray) -> np.ndarray:
    n, lab, stats, _ = cv2.connectedComponentsWithStats(full.astype(np.uint8), connectivity=8)
    small = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] < 50]
    return np.isin(lab, small)


def test_region_mask_full_maps_the_crop_back_to_its_place():
    m = np.zeros((10, 10), bool)
    m[2:8, 2:8] = True
    r = assist.RegionMask(m, x0=100, y0=50, scale=4.0)
    full = r.full((200, 120))
    rows, cols = np.nonzero(full)
    assert cols.min() == pytest.approx(108, abs=2) and cols.max() == pytest.approx(131, abs=2)
    assert rows.min() == pytest.approx(58, abs=2) and rows.max() == pytest.approx(81, abs=2)
    assert r.area() == pytest.approx(36 * 16)


def largest_regions(car_damage, n: int):
    """(photo, mask of its largest region) for the first ``n`` photos of car-damage/val."""
    from viaseg.core.annotation.dataset import load_dataset
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.imaging.imageio import read_image

    for entry in list(load_dataset(car_damage).split("val").entries)[:n]:
        img = read_image(entry.path)
        h, w = img.shape[:2]
        region = max(entry.regions, key=lambda r: rasterize([r], (w, h)).sum())
        yield img, rasterize([region], (w, h)) > 0


def test_real_photos(car_damage):
    """On car-damage/val photos: a box alone (no model) and one click on a map that roughly covers a labelled
    region (its blurred mask at 1/8 resolution, as a model's coarse map would) both find that region; the
    preview (map alone) keeps such a map's region, the click's GrabCut refinement may move its outline."""
    box_ious, click_ious, preview_ious = [], [], []
    for img, gt in largest_regions(car_damage, 4):
        h, w = img.shape[:2]
        ys, xs = np.nonzero(gt)
        plain = Segmenter((w, h), None, img)
        res = plain.segment([], box=(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        box_ious.append(protocol.mask_iou(res.region.full((w, h)), gt) if res.region else 0.0)
        coarse = cv2.resize(
            cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 4), (w // 8, h // 8), interpolation=cv2.INTER_AREA
        )
        seg = Segmenter((w, h), coarse, img)
        click_ious.append(protocol.click_protocol(seg, gt, max_clicks=1)[0])
        preview_ious.append(protocol.click_protocol(seg, gt, max_clicks=1, refine=False)[0])
    assert np.mean(box_ious) > 0.4, box_ious
    assert np.mean(preview_ious) > 0.8, preview_ious
    assert np.mean(click_ious) > 0.3, click_ious


def test_a_given_first_region_is_what_the_first_click_finds_and_later_clicks_correct_it():
    img, gt = _scene()
    h, w = gt.shape
    seg = Segmenter((w, h), _map(gt), img)
    c = Click(220, 150)
    own = seg.segment([c]).region
    given = np.zeros((h, w), bool)
    given[100:200, 150:290] = True  # a box around the disc, as another finder (the click network) might give
    seg.give_first_region(c, assist.RegionMask(given, 0.0, 0.0, 1.0, "click network"))
    assert seg.has_first_region(c)
    res = seg.segment([c])
    assert res.region.source == "click network" and (res.region.full((w, h)) == given).all()
    # a negative click in its corner takes that corner away and keeps the rest
    cut = seg.segment([c, Click(155, 105, False)]).region.full((w, h))
    assert not cut[105, 155] and cut[150, 220] and cut.sum() < given.sum()
    # previews (refine=False) see the same region
    assert (seg.segment([c], refine=False).region.full((w, h)) == given).all()
    # only the first click: the same point as a later click is not replaced
    other = Click(60, 60)
    assert seg.segment([other]).region is None or not seg.segment([other]).region.full((w, h))[150, 220]
    # forgetting it gives the click its own region again; an empty region is not taken
    seg.give_first_region(c, None)
    assert not seg.has_first_region(c)
    assert (seg.segment([c]).region.full((w, h)) == own.full((w, h))).all()
    seg.give_first_region(c, assist.RegionMask(np.zeros((4, 4), bool), 0.0, 0.0, 1.0, "click network"))
    assert not seg.has_first_region(c)


def test_the_refinement_iou_never_builds_photo_sized_masks_and_is_exact_up_to_a_megapixel(monkeypatch):
    """Choosing between the map's region and its fit compared two full-resolution masks: 1.4 s on the GUI thread
    for a 40-MP photo. The IoU is taken on the regions' boxes only (every pixel up to ``IOU_PIXELS``): the same
    value as on full masks for the photos of the benchmarks, close to it on a huge photo."""
    rng = np.random.default_rng(3)

    def region(x0, y0, scale, shape=(40, 50)):
        return assist.RegionMask(rng.random(shape) < 0.6, x0, y0, scale)

    def full_iou(a, b, size):
        fa, fb = a.full(size), b.full(size)
        return (fa & fb).sum() / (fa | fb).sum()

    for size, a, b in (
        ((400, 300), region(-3.2, 10.7, 2.5), region(20.1, -5.0, 1.7)),
        ((1024, 768), region(500.3, 300.1, 6.1), region(450.0, 280.0, 7.3)),
        ((90, 70), region(60.0, 50.0, 1.3), region(-10.0, -10.0, 0.7)),  # reaching past the photo's edges
    ):
        assert assist._iou(a, b, size) == full_iou(a, b, size)
    big = (7746, 5164)  # 40 MP
    a, b = region(1000.0, 800.0, 60.0), region(1500.0, 1100.0, 50.0)
    expected = full_iou(a, b, big)
    monkeypatch.setattr(assist.RegionMask, "full", lambda *_: pytest.fail("a photo-sized mask was built"))
    assert assist._iou(a, b, big) == pytest.approx(expected, abs=0.01)


def test_polygons_stay_inside_the_photo_and_flat_ones_are_not_usable():
    """A mask's cells can be larger than a thin photo (1 x 4000 px): its outline reached x = -10..10."""
    thin = assist.RegionMask(np.pad(np.ones((3, 3), bool), 1), -20.0, 1950.0, 10.0)
    pts = assist.polygon(thin, 0)
    assert pts[:, 0].min() < 0 and pts[:, 0].max() > 1  # the outline reaches outside the 1-px-wide photo
    shape = assist.polygon_shape(pts, (1, 4000))
    assert min(shape["all_points_x"]) >= 0 and max(shape["all_points_x"]) <= 1
    assert 1950 <= min(shape["all_points_y"]) and max(shape["all_points_y"]) <= 4000
    assert assist.usable(shape) and assist.shape_area(shape) > 0
    flat = {"name": "polygon", "all_points_x": [0, 0, 0, 0], "all_points_y": [3, 10, 20, 5]}
    assert assist.shape_area(flat) == 0 and not assist.usable(flat)
    assert not assist.usable({"name": "polygon", "all_points_x": [0, 5], "all_points_y": [0, 5]})
    # each level's shape is the polygon_shape of its polygon (what the detail control compares a region with)
    disc = np.zeros((60, 60), np.uint8)
    cv2.circle(disc, (30, 30), 25, 1, -1)
    r = assist.RegionMask(disc > 0, 10.0, 10.0, 0.37)  # finer than the photo: rounding merges vertices
    shapes = assist.level_shapes(r, (100, 100))
    assert len(shapes) == len(assist.LEVELS)
    for i in (0, 3, len(assist.LEVELS) - 1):
        assert shapes[i] == assist.polygon_shape(assist.polygon(r, i), (100, 100))
    assert len(shapes[0]["all_points_x"]) < len(assist.polygon(r, 0))
