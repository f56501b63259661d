"""COCO import: conformance on labelme2coco's file (pycocotools' areas as the judge), RLE (compressed and not,
holes), what viaseg's own to_coco writes, the dataset and convert entry points, and property-based: mutated
COCO files raise only viaseg's typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mutation_helpers import LABELME, SHARED, byte_mutations, rle_counts, rle_string, type_swaps
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.annotation.formats.coco_io import decode_rle, load_coco, loads_coco
from viaseg.core.annotation.formats.convert import to_coco
from viaseg.core.annotation.formats.labelme_io import load_labelme_folder
from viaseg.core.annotation.formats.via_io import dumps_via, load_via, loads_via
from viaseg.core.annotation.project import ImageEntry, Project, Region
from viaseg.core.annotation.raster import rasterize
from viaseg.core.base.errors import ViaFormatError, ViasegError
from viaseg.core.cli import main

COCO = LABELME / "coco" / "annotations.json"
SNIPPET = SHARED / "via-fixtures" / "coco_2017_snippet.json"


@pytest.fixture
def coco_file() -> Path:
    if not COCO.exists():
        pytest.skip(
            f"shared data not available: {COCO} is missing (tests read ../shared next to the checkout)"
        )
    return COCO


def mask_util():
    return pytest.importorskip("pycocotools.mask", reason="pycocotools (a test extra) judges the areas")


def regions_by_annotation(data: dict, project) -> list[tuple[dict, list[Region], tuple[int, int]]]:
    """Each annotation with the regions it became (they follow in annotation order within an image)."""
    entries = {im["id"]: e for im, e in zip(data["images"], project.images, strict=True)}
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    taken = {i: 0 for i in entries}
    out = []
    for a in data["annotations"]:
        seg = a["segmentation"]
        n = len(seg) if isinstance(seg, list) else len(entries[a["image_id"]].regions) - taken[a["image_id"]]
        start = taken[a["image_id"]]
        out.append((a, entries[a["image_id"]].regions[start : start + n], sizes[a["image_id"]]))
        taken[a["image_id"]] += n
    return out


def outline_pixels(regions) -> float:
    """How many pixels a line drawing of the outlines sets: max(|dx|, |dy|) + 1 per edge."""
    return sum(
        max(abs(q[0] - p[0]), abs(q[1] - p[1])) + 1
        for r in regions
        for p, q in zip(r.points(), r.points()[1:] + r.points()[:1], strict=True)
    )


# ------------------------------------------------------------------------------------------ conformance


@pytest.mark.parametrize("name", ["labelme2coco", "coco_2017_snippet"])
def test_polygon_annotations_keep_their_vertices_and_area(coco_file, name):
    mu = mask_util()
    path = COCO if name == "labelme2coco" else SNIPPET
    if not path.exists():
        pytest.skip(f"shared data not available: {path} is missing")
    data = json.loads(path.read_text(encoding="utf-8"))
    project = load_coco(path)
    assert project.path is None and len(project.images) == len(data["images"])
    cats = {c["id"]: c["name"] for c in data["categories"]}
    for a, regions, (w, h) in regions_by_annotation(data, project):
        assert [r.attributes["name"] for r in regions] == [cats[a["category_id"]]] * len(a["segmentation"])
        assert [[v for p in r.points() for v in p] for r in regions] == a["segmentation"]
        judge = float(mu.area(mu.merge(mu.frPyObjects(a["segmentation"], h, w))))
        again = [[v for p in r.points() for v in p] for r in regions]
        assert float(mu.area(mu.merge(mu.frPyObjects(again, h, w)))) == judge
        # cv2.fillPoly (raster.py's convention) also sets every pixel of the outline, about half of them
        # outside what pycocotools counts (pixel centres inside): small objects gain far more than 1 %
        drawn = int(rasterize(regions, (w, h)).sum())
        assert judge * 0.99 <= drawn <= judge * 1.01 + outline_pixels(regions) / 2, a["id"]


def test_labelme2coco_groups_and_images(coco_file):
    project = load_coco(COCO)
    assert [im.filename for im in project.images] == [
        "JPEGImages/2011_000003.jpg",
        "JPEGImages/2011_000025.jpg",
        "JPEGImages/2011_000006.jpg",
    ]
    assert all(im.path.is_file() for im in project.images)
    sizes = [(im["width"], im["height"]) for im in json.loads(COCO.read_text())["images"]]
    assert [(im.file_attributes["width"], im.file_attributes["height"]) for im in project.images] == [
        (str(w), str(h)) for w, h in sizes
    ]  # kept although the photos are there: a VIA file made from it knows them wherever it goes
    first = project.images[0].regions
    assert [r.attributes for r in first] == [
        {"name": "person"},
        {"name": "person", "group_id": "1"},
        {"name": "person", "group_id": "1"},
        {"name": "bottle"},
    ]


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_masks_become_polygons_within_one_percent(coco_file, compressed):
    mu = mask_util()
    data = json.loads(COCO.read_text(encoding="utf-8"))
    for a in data["annotations"]:  # the same objects as crowd RLE, as pycocotools encodes them
        im = next(i for i in data["images"] if i["id"] == a["image_id"])
        w, h = im["width"], im["height"]
        rle = mu.merge(mu.frPyObjects(a["segmentation"], h, w))
        counts = rle["counts"].decode("ascii") if compressed else rle_counts(mu.decode(rle))
        a.update(segmentation={"size": [h, w], "counts": counts}, iscrowd=1)
        doc = {"images": [im], "categories": data["categories"], "annotations": [a]}
        (entry,) = loads_coco(json.dumps(doc), path=COCO).images
        judge = float(mu.area(rle))
        assert np.array_equal(decode_rle(a["segmentation"]), mu.decode(rle))
        assert entry.regions and all(
            r.attributes["iscrowd"] == "1" and r.kind == "polygon" for r in entry.regions
        )
        drawn = rasterize(entry.regions, (w, h))
        assert abs(int(drawn.sum()) - judge) <= 0.01 * judge, a["id"]


def test_rle_encoding_matches_pycocotools():
    mu = mask_util()
    rng = np.random.default_rng(7)
    for _ in range(20):
        m = (rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.random()).astype(np.uint8)
        rle = mu.encode(np.asfortranarray(m))
        assert rle_string(rle_counts(m)) == rle["counts"].decode("ascii")
        assert np.array_equal(decode_rle({"size": list(m.shape), "counts": rle["counts"].decode()}), m)


def test_mask_with_a_hole_and_an_island_is_bridged():
    m = np.zeros((120, 160), np.uint8)
    cv2.circle(m, (80, 60), 50, 1, -1)
    cv2.circle(m, (80, 60), 25, 0, -1)
    cv2.circle(m, (80, 60), 8, 1, -1)
    doc = {
        "images": [{"id": 1, "file_name": "ring.png", "width": 160, "height": 120}],
        "categories": [{"id": 3, "name": "dent"}],
        "annotations": [
            {
                "id": 9,
                "image_id": 1,
                "category_id": 3,
                "iscrowd": 1,
                "segmentation": {"size": [120, 160], "counts": rle_string(rle_counts(m))},
            }
        ],
    }
    (im,) = loads_coco(json.dumps(doc), path="/data/coco.json").images
    assert len(im.regions) == 2 and {r.attributes["group_id"] for r in im.regions} == {"9"}
    drawn = rasterize(im.regions, (160, 120))
    assert drawn[60, 80 + 16] == 0 and drawn[60, 80] == 1  # the hole stays open, the island is there
    assert abs(int(drawn.sum()) - int(m.sum())) <= 0.01 * m.sum()
    assert im.file_attributes == {"width": "160", "height": "120"} and im.path == Path("/data/ring.png")


def test_bbox_only_annotation_becomes_a_rect():
    doc = {
        "images": [{"id": "a", "file_name": "a.jpg"}],
        "categories": [],
        "annotations": [{"image_id": "a", "bbox": [1, 2, 30, 40]}, {"image_id": "a", "segmentation": []}],
    }
    msgs: list[str] = []
    (im,) = loads_coco(json.dumps(doc), path="c.json", messages=msgs).images
    assert [(r.shape, r.attributes) for r in im.regions] == [
        ({"name": "rect", "x": 1, "y": 2, "width": 30, "height": 40}, {})
    ]
    assert len(msgs) == 1 and "annotations[1]" in msgs[0]


def test_what_to_coco_writes_reads_back(coco_file, tmp_path):
    source = load_labelme_folder(LABELME / "instance_segmentation")
    target = tmp_path / "coco.json"
    target.write_text(json.dumps(to_coco(source)), encoding="utf-8")
    back = load_coco(target)
    assert [im.filename for im in back.images] == [im.filename for im in source.images]
    for a, b in zip(source.images, back.images, strict=True):
        assert [r.shape for r in b.regions] == [r.shape for r in a.regions]
        assert [r.attributes["name"] for r in b.regions] == [r.attributes["name"] for r in a.regions]


def test_to_coco_class_attribute_comes_back_under_its_own_name(tmp_path):
    shape = {"name": "polygon", "all_points_x": [1, 9, 9], "all_points_y": [1, 1, 7]}
    im = ImageEntry(
        key="k",
        filename="a.jpg",
        file_attributes={"width": "10", "height": "10"},
        regions=[Region(dict(shape), {"type": "1"}), Region(dict(shape), {"type": "2"})],
    )
    project = Project(
        images=[im],
        attributes={
            "region": {"type": {"type": "radio", "options": {"1": "scratch", "2": "dent"}}},
            "file": {},
        },
    )
    coco = to_coco(project, size_of=lambda p: (10, 10))
    back = loads_coco(json.dumps(coco), path=tmp_path / "c.json")
    assert [r.attributes for r in back.images[0].regions] == [{"type": "scratch"}, {"type": "dent"}]
    assert [r.shape for r in back.images[0].regions] == [shape, shape]


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda d: d["annotations"][0].update(image_id=99), "annotations[0].image_id"),
        (lambda d: d["annotations"][0].update(category_id=99), "annotations[0].category_id"),
        (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]), "annotations[0].segmentation[0]"),
        (
            lambda d: d["annotations"][0].update(segmentation={"size": [2, 2], "counts": [1, 2]}),
            "annotations[0].segmentation.counts",
        ),
        (
            lambda d: d["annotations"][0].update(segmentation={"size": [2, 2], "counts": "0~"}),
            "annotations[0].segmentation.counts",
        ),
        (lambda d: d["images"][0].update(id=[1]), "images[0].id"),
        (lambda d: d.update(categories={}), "categories"),
    ],
)
def test_malformed_files_raise_typed_errors_naming_file_and_place(tmp_path, change, where):
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 3, 0, 3, 3]]}],
    }
    change(doc)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(ViaFormatError) as err:
        load_coco(f)
    assert err.value.path == str(f) and err.value.where == where


def test_coco_sizes_survive_a_via_file_written_away_from_the_photos(coco_file, tmp_path, capsys):
    via = tmp_path / "elsewhere" / "via.json"
    via.parent.mkdir()
    assert main(["convert", str(COCO), str(via), "--to", "via2"]) == 0
    back = tmp_path / "back.json"
    assert main(["convert", str(via), str(back), "--to", "coco"]) == 0  # no photo next to via.json
    assert "skipped" not in capsys.readouterr().err
    original = json.loads(COCO.read_text())
    again = json.loads(back.read_text())
    assert [(i["file_name"], i["width"], i["height"]) for i in again["images"]] == [
        (i["file_name"], i["width"], i["height"]) for i in original["images"]
    ]
    assert len(again["annotations"]) == 16


def test_a_coco_file_without_images_says_so(tmp_path, capsys):
    doc = {
        "info": {"year": 2020},
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 3, 0, 3, 3]]}],
    }
    f = tmp_path / "noimages.json"
    f.write_text(json.dumps(doc))
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert f'{f}: images: the COCO file has no "images" list' in err and "filename" not in err


# ------------------------------------------------------------------------------------------ entry points


def test_load_via_still_refuses_coco(coco_file):
    with pytest.raises(ViaFormatError, match="this is a COCO file"):
        load_via(COCO)


def test_coco_file_and_folder_open_as_datasets(coco_file):
    ds = load_dataset(COCO)
    assert list(ds.splits) == ["coco"]
    sp = ds.splits["coco"]
    assert sp.labeled and sp.project.path is None and sp.region_count == 16
    assert all(e.path.is_file() for e in sp.entries)
    assert load_dataset(COCO.parent).splits["coco"].region_count == 16  # the folder holding it


def test_cli_convert_coco_to_via2_and_labelme(coco_file, tmp_path, capsys):
    out = tmp_path / "via.json"
    assert main(["convert", str(COCO), str(out), "--to", "via2"]) == 0
    assert "via2 from coco (3 images, 16 regions" in capsys.readouterr().out
    via = load_via(out)
    assert via.fmt == "via2" and via.region_count == 16
    assert via.images[0].regions[0].attributes == {"name": "person"}
    assert main(["convert", str(COCO), str(tmp_path / "lm"), "--to", "labelme"]) == 0
    doc = json.loads((tmp_path / "lm" / "2011_000003.json").read_text(encoding="utf-8"))
    assert (tmp_path / "lm" / doc["imagePath"]).resolve() == (
        COCO.parent / "JPEGImages/2011_000003.jpg"
    ).resolve()
    assert [s["group_id"] for s in doc["shapes"]] == [None, 1, 1, None]
    assert main(["convert", str(tmp_path / "lm"), str(tmp_path / "again.json"), "--to", "coco"]) == 0
    assert (
        json.loads((tmp_path / "again.json").read_text())["annotations"][1]["segmentation"]
        == json.loads(COCO.read_text())["annotations"][1]["segmentation"][:1]
    )


def test_cli_reports_a_broken_coco_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"image_id": 1}], "categories": []}))
    assert main(["convert", str(bad), str(tmp_path / "out.json"), "--to", "via2"]) == 2
    assert "annotations[0].image_id" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ property-based


def _corpus() -> dict[str, bytes]:
    files = [p for p in (COCO, SNIPPET) if p.exists()]
    corpus = {p.name: p.read_bytes() for p in files}
    m = np.zeros((12, 16), np.uint8)
    m[2:9, 3:12] = 1
    m[4:6, 6:8] = 0
    corpus["rle.json"] = json.dumps(
        {  # RLE of both kinds (the shared files have polygons only)
            "images": [{"id": 1, "file_name": "a.jpg", "width": 16, "height": 12}],
            "categories": [{"id": 1, "name": "dent", "supercategory": "type"}],
            "info": {"description": "exported by viaseg"},
            "annotations": [
                {
                    "id": 1,
                    "image_id": 1,
                    "category_id": 1,
                    "iscrowd": 1,
                    "segmentation": {"size": [12, 16], "counts": rle_string(rle_counts(m))},
                },
                {
                    "id": 2,
                    "image_id": 1,
                    "category_id": 1,
                    "iscrowd": 1,
                    "segmentation": {"size": [12, 16], "counts": rle_counts(m)},
                    "bbox": [3, 2, 9, 7],
                },
            ],
        }
    ).encode()
    return corpus


CORPUS = _corpus()
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FUZZ
@given(st.one_of(byte_mutations(CORPUS), type_swaps(CORPUS)))
def test_mutated_coco_files_raise_only_typed_errors(case):
    name, data = case
    path = f"/fuzz/{name}"
    try:
        project = loads_coco(data, path=path, messages=[])
    except ViasegError as exc:
        event("rejected")
        assert str(exc).startswith(path)
        return
    event("accepted")
    again = loads_via(dumps_via(project, "via2"), path="/fuzz/via.json", fmt="via2")
    assert [[r.shape for r in im.regions] for im in again.images] == [
        [r.shape for r in im.regions] for im in project.images
    ]
    to_coco(project, size_of=lambda p: (64, 48))


def test_coco_to_coco_says_it_is_written_afresh(coco_file, tmp_path, capsys):
    """COCO -> COCO renumbered ids and split multi-polygon objects without a word (a VIA round trip is
    lossless; this one is not)."""
    from viaseg.core.cli import main

    out = tmp_path / "again.json"
    assert main(["convert", str(coco_file), str(out)]) in (0, 1)
    err = capsys.readouterr().err
    assert "coco is written afresh" in err and "ids are numbered anew" in err
    assert json.loads(out.read_text(encoding="utf-8"))["annotations"]
    assert main(["convert", str(coco_file), str(tmp_path / "v.json"), "--to", "via2"]) in (0, 1)
    assert "written afresh" not in capsys.readouterr().err
