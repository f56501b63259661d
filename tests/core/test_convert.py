"""viaseg convert: round trips, conversions through load_via, VIA 2 project validity, COCO via pycocotools."""

from __future__ import annotations

import json
import math

import pytest
from viaseg.core.annotation.formats.convert import coco_polygon, polygon_area, to_coco
from viaseg.core.annotation.formats.via_io import dumps_via, load_via, loads_via
from viaseg.core.annotation.formats.via_json import default_settings
from viaseg.core.annotation.project import ImageEntry, Project, Region
from viaseg.core.base.errors import ImageReadError
from viaseg.core.cli import main


def shapes(project):
    return [[r.shape for r in im.regions] for im in project.images]


def test_convert_without_to_is_a_lossless_round_trip(car_damage, tmp_path, capsys):
    src = car_damage / "train" / "via_region_data.json"
    out = tmp_path / "out.json"
    assert main(["convert", str(src), str(out)]) == 0
    assert out.read_bytes() == src.read_bytes()
    assert "via1 from via1 (52 images" in capsys.readouterr().out


@pytest.mark.parametrize("to", ["via1", "via2", "via2-project", "via3", "csv"])
def test_conversions_keep_geometry_and_attributes(via_fixtures, tmp_path, to):
    src = via_fixtures / "unit_test_annotation2.json"  # rect, circle, ellipse, point, polygon; quotes and '£'
    out = tmp_path / ("out.csv" if to == "csv" else "out.json")
    assert main(["convert", str(src), str(out), "--to", to]) == 0
    a, b = load_via(src), load_via(out)
    assert b.fmt == to
    assert shapes(b) == shapes(a)
    assert [[r.attributes for r in im.regions] for im in b.images] == [
        [r.attributes for r in im.regions] for im in a.images
    ]
    assert [im.file_attributes for im in b.images] == [im.file_attributes for im in a.images]
    assert [im.filename for im in b.images] == [im.filename for im in a.images]


def _same_key_shape(a, b, where="_via_settings"):
    """VIA 2.0.11's project_import_settings throws on nested keys it does not know."""
    assert isinstance(b, dict), where
    for k, v in b.items():
        assert k in a, f"{where}.{k} unknown to VIA"
        if isinstance(v, dict) and k != "filepath":
            _same_key_shape(a[k], v, f"{where}.{k}")


def assert_via2_project_loads(value: dict):
    """What VIA 2.0.11's project loader needs (docs/via-format.md §2.5) to show every image and region."""
    for k in ("_via_settings", "_via_img_metadata", "_via_attributes"):
        assert k in value and isinstance(value[k], dict)
    _same_key_shape(default_settings(), value["_via_settings"])
    meta = value["_via_img_metadata"]
    for key, entry in meta.items():
        assert {"filename", "size", "regions", "file_attributes"} <= set(entry), key
        assert isinstance(entry["regions"], list)
    ids = value["_via_image_id_list"]
    assert sorted(map(str, ids)) == sorted(meta) and len(ids) == len(meta)
    declared = value["_via_attributes"]
    for entry in meta.values():
        for r in entry["regions"]:
            assert set(r["region_attributes"]) <= set(declared["region"])


@pytest.mark.parametrize(
    "name",
    ["matilde_original_annotation.json", "unit_test_annotation1.csv", "extracted/via3_debug_project_4.json"],
)
def test_via2_project_output_has_what_via_needs(via_fixtures, tmp_path, name):
    out = tmp_path / "p.json"
    assert main(["convert", str(via_fixtures / name), str(out), "--to", "via2-project"]) == 0
    value = json.loads(out.read_text(encoding="utf-8"))
    assert list(value) == [
        "_via_settings",
        "_via_img_metadata",
        "_via_attributes",
        "_via_data_format_version",
        "_via_image_id_list",
    ]
    assert value["_via_settings"]["project"]["name"] == "p"
    assert_via2_project_loads(value)
    src = load_via(via_fixtures / name)
    back = load_via(out)
    assert len(back.images) == len(src.images) and shapes(back) == shapes(src)


def test_via2_project_edit_round_trip(via_fixtures, tmp_path):
    p = tmp_path / "p.json"
    main(
        [
            "convert",
            str(via_fixtures / "extracted" / "via2_basic_demo_annotations.json"),
            str(p),
            "--to",
            "via2-project",
        ]
    )
    proj = load_via(p)
    assert proj.fmt == "via2-project" and proj.attributes["region"]["name"] == {"type": "text"}
    proj.images[1].regions.pop()
    value = json.loads(main_dump(proj))
    assert_via2_project_loads(value)
    assert len(value["_via_img_metadata"]["wikimedia_death_of_socrates.jpg-1"]["regions"]) == 2


def main_dump(proj):
    from viaseg.core.annotation.formats.via_io import dumps_via

    return dumps_via(proj)


# ---------------------------------------------------------------------------------------------------- COCO


def test_shoelace_and_outlines():
    assert polygon_area([0, 4, 4, 0], [0, 0, 3, 3]) == 12.0
    assert polygon_area([0, 4, 0], [0, 0, 3]) == 6.0
    flat, _ = coco_polygon({"name": "rect", "x": 1, "y": 2, "width": 10, "height": 5})
    assert flat == [1, 2, 11, 2, 11, 7, 1, 7]
    flat, _ = coco_polygon({"name": "circle", "cx": 50, "cy": 50, "r": 10})
    assert len(flat) == 144
    assert polygon_area(flat[0::2], flat[1::2]) == pytest.approx(math.pi * 100, rel=0.002)
    assert coco_polygon({"name": "polygon", "all_points_x": [1, 2], "all_points_y": [1, 2]})[0] is None
    assert coco_polygon({"name": "polyline", "all_points_x": [1, 2, 3], "all_points_y": [1, 2, 1]})[0] is None


def test_coco_export_loads_in_pycocotools(car_damage, tmp_path, capsys):
    from pycocotools.coco import COCO

    src = car_damage / "train" / "via_region_data.json"
    out = tmp_path / "coco.json"
    assert main(["convert", str(src), str(out), "--to", "coco"]) == 1  # written, but images were skipped
    cap = capsys.readouterr()
    assert "test_pattern_qbist.jpg: image skipped" in cap.err  # the VIA demo entries have no image file
    assert "(49 images, 78 regions; skipped: 3 image(s), see above)" in cap.out
    coco = COCO(str(out))
    proj = load_via(src)
    present = [im for im in proj.images if im.path.exists()]
    assert len(coco.imgs) == len(present)
    assert len(coco.anns) == sum(len(im.regions) for im in present)
    assert [c["name"] for c in coco.cats.values()] == ["damage"]
    from PIL import Image

    for ann in list(coco.anns.values())[:10]:
        img = coco.imgs[ann["image_id"]]
        with Image.open(src.parent / img["file_name"]) as pil:
            assert (img["width"], img["height"]) == pil.size
        seg = ann["segmentation"][0]
        assert ann["area"] == pytest.approx(polygon_area(seg[0::2], seg[1::2]))
        x0, y0, w, h = ann["bbox"]
        assert ann["area"] < w * h  # real polygon area, not VIA's bbox area
        m = coco.annToMask(ann)
        assert m.shape == (img["height"], img["width"])
        assert abs(int(m.sum()) - ann["area"]) <= 0.05 * ann["area"] + 2 * (w + h)


def _no_image(path):
    raise ImageReadError(path, "no such file")


def test_coco_categories_sizes_and_skips(tmp_path):
    from pycocotools.coco import COCO

    proj = Project(
        images=[
            ImageEntry(
                key="a",
                filename="a.jpg",
                file_attributes={"width": "100", "height": 80},
                regions=[
                    Region(
                        shape={"name": "rect", "x": 0, "y": 0, "width": 10, "height": 20},
                        attributes={"kind": "dent"},
                    ),
                    Region(
                        shape={"name": "ellipse", "cx": 50, "cy": 40, "rx": 20, "ry": 10, "theta": 0.5},
                        attributes={"kind": "s"},
                    ),
                    Region(shape={"name": "point", "cx": 5, "cy": 5}, attributes={"kind": "dent"}),
                    Region(
                        shape={"name": "polygon", "all_points_x": [0, 9, 0], "all_points_y": [0, 0, 9]},
                        attributes={},
                    ),
                ],
            ),
            ImageEntry(key="b", filename="b.jpg", regions=[]),
        ]
    )
    proj.attributes = {
        "region": {"kind": {"type": "radio", "options": {"s": "scratch", "dent": "dent"}}},
        "file": {},
    }
    msgs: list[str] = []
    value = to_coco(proj, size_of=_no_image, messages=msgs)
    # the unlabelled polygon (region 3) is in the default category, not skipped: the attribute was guessed
    assert [c["name"] for c in value["categories"]] == ["scratch", "dent", "damage"]
    assert [(i["file_name"], i["width"], i["height"]) for i in value["images"]] == [("a.jpg", 100, 80)]
    anns = value["annotations"]
    assert [a["category_id"] for a in anns] == [2, 1, 3]
    assert anns[0]["area"] == 200.0 and anns[0]["bbox"] == [0, 0, 10, 20]
    assert anns[1]["area"] == pytest.approx(math.pi * 200, rel=0.003)
    assert any("region 2 skipped: a point is not an area" in m for m in msgs)
    assert any("1 region(s) without a 'kind' value are in the category 'damage'" in m for m in msgs)
    assert not any("region 3" in m for m in msgs)
    msgs = []  # a --class-attr given: a region without its value is skipped (and said)
    value = to_coco(proj, "kind", size_of=_no_image, messages=msgs)
    assert [a["category_id"] for a in value["annotations"]] == [2, 1]
    assert any("region 3 skipped: no 'kind' value" in m for m in msgs)
    assert any(m.startswith("b.jpg: image skipped") for m in msgs)
    p = tmp_path / "c.json"
    p.write_text(json.dumps(value))
    coco = COCO(str(p))
    assert coco.annToMask(coco.anns[1]).sum() == pytest.approx(200, abs=31)


def test_convert_errors_are_messages(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a":{"filename":"a","regions":"x"}}')
    assert main(["convert", str(bad), str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and '["a"].regions' in err
    assert not (tmp_path / "o.json").exists()
    assert main(["convert", str(tmp_path / "nope.csv"), str(tmp_path / "o.json")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_convert_overwrite_keeps_backup(via_fixtures, tmp_path):
    out = tmp_path / "o.json"
    out.write_text("old")
    assert main(["convert", str(via_fixtures / "unit_test_annotation2.json"), str(out), "--to", "via2"]) == 0
    assert (tmp_path / "o.json.bak").read_text() == "old"
    assert loads_via(out.read_text(encoding="utf-8")).fmt == "via2"


def test_one_rule_says_which_attribute_holds_the_class():
    from viaseg.core.annotation.project import Region, class_attribute

    def regions(*attrs):
        return [Region({"name": "rect"}, a) for a in attrs]

    dropdown = {"region": {"severity": {"type": "dropdown"}, "Class Name": {"type": "text"}}}
    # a dropdown the regions use wins over a conventional name
    assert class_attribute(dropdown, regions({"severity": "high", "Class Name": "dent"})) == "severity"
    # unused dropdown: the conventional name the regions use (any case) comes first
    assert class_attribute(dropdown, regions({"Class Name": "dent"})) == "Class Name"
    # nothing used yet (a new project): the dropdown defined
    assert class_attribute(dropdown, []) == "severity"
    assert class_attribute(None, regions({"note": "x", "label": "scratch"})) == "label"
    assert class_attribute(None, regions({"note": "x"})) == "note"  # the only attribute
    assert class_attribute(None, regions({"note": "x", "who": "me"})) is None  # nothing says
    assert (
        class_attribute({"region": "bad"}, regions({"note": "", "who": ""})) is None
    )  # empty values count for nothing


def test_convert_backs_up_the_version_it_replaces_every_time(via_fixtures, tmp_path, capsys):
    src = via_fixtures / "unit_test_annotation2.json"
    out = tmp_path / "o.json"
    out.write_text("first")
    assert main(["convert", str(src), str(out), "--to", "via2"]) == 0
    assert (tmp_path / "o.json.bak").read_text() == "first"
    out.write_text("edited")  # the user's work since: the next convert must not lose it
    assert main(["convert", str(src), str(out), "--to", "via2"]) == 0
    assert (tmp_path / "o.json.bak").read_text() == "edited"
    assert loads_via(out.read_text(encoding="utf-8")).fmt == "via2"


def test_convert_never_writes_another_format_over_its_input(via_fixtures, tmp_path, capsys):
    own = tmp_path / "mine.json"
    original = (via_fixtures / "unit_test_annotation2.json").read_bytes()
    own.write_bytes(original)
    for to in ("via2", "coco", "csv"):
        assert main(["convert", str(own), str(own), "--to", to]) == 2
        err = capsys.readouterr().err
        assert f"{own}: not written: it is the input file (via1); writing it as {to}" in err
        assert own.read_bytes() == original and not (tmp_path / "mine.json.bak").exists()
    assert main(["convert", str(own), str(own)]) == 0  # its own format: a round trip, the original kept
    assert (tmp_path / "mine.json.bak").read_bytes() == original


def _via_file(folder, regions_attrs, sized=(True, True)):
    """A VIA 2 file of two images (no photos; a width/height file attribute where ``sized``) with one rect each."""
    value = {}
    for i, has_size in enumerate(sized):
        value[f"im{i}.jpg-1"] = {
            "filename": f"im{i}.jpg",
            "size": -1,
            "regions": [
                {
                    "shape_attributes": {"name": "rect", "x": 1, "y": 1, "width": 5, "height": 5},
                    "region_attributes": regions_attrs,
                }
            ],
            "file_attributes": {"width": "64", "height": "48"} if has_size else {},
        }
    path = folder / "via.json"
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def test_convert_exit_status_says_what_was_skipped(tmp_path, capsys):
    src = _via_file(tmp_path, {"name": "dent"}, sized=(True, False))
    out = tmp_path / "coco.json"
    assert main(["convert", str(src), str(out), "--to", "coco"]) == 1  # written, one image skipped
    cap = capsys.readouterr()
    assert "im1.jpg: image skipped: its size is unknown" in cap.err
    assert "(1 images, 1 regions; skipped: 1 image(s), 1 region(s), see above)" in cap.out
    assert [im["file_name"] for im in json.loads(out.read_text())["images"]] == ["im0.jpg"]
    assert main(["convert", str(src), str(tmp_path / "v.json"), "--to", "via3"]) == 0
    assert "skipped" not in capsys.readouterr().out


def test_convert_writes_nothing_that_lost_every_image_or_region(tmp_path, capsys):
    src = _via_file(tmp_path, {"name": "dent"}, sized=(False, False))  # no photo, no size: no COCO image
    out = tmp_path / "coco.json"
    assert main(["convert", str(src), str(out), "--to", "coco"]) == 2
    err = capsys.readouterr().err
    assert "im0.jpg: image skipped" in err and "im1.jpg: image skipped" in err
    assert f"{out}: not written: the coco output would lose every image of {src} (2)" in err
    assert not out.exists()
    src = _via_file(tmp_path, {"name": "dent"})
    assert main(["convert", str(src), str(out), "--to", "coco", "--class-attr", "nosuch"]) == 2  # a typo
    err = capsys.readouterr().err
    assert "region 0 skipped: no 'nosuch' value" in err and "would lose every region" in err
    assert not out.exists()
    out.write_text("mine")  # an existing OUT is left as it was
    assert main(["convert", str(src), str(out), "--to", "coco", "--class-attr", "nosuch"]) == 2
    assert out.read_text() == "mine" and not (tmp_path / "coco.json.bak").exists()


def test_coco_export_puts_unlabelled_regions_in_the_default_category(via_fixtures, tmp_path, capsys):
    src = (
        via_fixtures / "unit_test_annotation2.json"
    )  # rect/circle/ellipse with {} attributes, a named polygon
    out = tmp_path / "coco.json"
    proj = load_via(src)
    for im in proj.images:
        im.file_attributes.update(width="2000", height="2000")
    sized = tmp_path / "sized.json"
    sized.write_text(dumps_via(proj, "via2"), encoding="utf-8")
    assert main(["convert", str(sized), str(out), "--to", "coco"]) == 1  # only the point is skipped
    cap = capsys.readouterr()
    assert "a point is not an area" in cap.err and "no 'name' value" not in cap.err
    value = json.loads(out.read_text())
    areas = sum(r.kind in ("rect", "circle", "ellipse", "polygon") for im in proj.images for r in im.regions)
    assert len(value["annotations"]) == areas
    assert "damage" in [c["name"] for c in value["categories"]]


def test_a_shape_written_as_another_kind_is_no_skip(tmp_path, capsys):
    src = _via_file(tmp_path, {"name": "dent"})
    value = json.loads(src.read_text())
    value["im0.jpg-1"]["regions"][0]["shape_attributes"] = {
        "name": "ellipse",
        "cx": 9,
        "cy": 9,
        "rx": 4,
        "ry": 2,
    }
    src.write_text(json.dumps(value))
    assert main(["convert", str(src), str(tmp_path / "lm"), "--to", "labelme"]) == 0
    cap = capsys.readouterr()
    assert "im0.jpg: region 0: written as a labelme polygon (ellipse as a polygon)" in cap.err
    assert "skipped" not in cap.out + cap.err and "(2 images, 2 regions)" in cap.out
