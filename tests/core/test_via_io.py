"""VIA reading/writing: lossless round trips on every real fixture, edits, atomic saves, typed errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from json_helpers import same_json
from viaseg.core.annotation.formats.via_io import dumps_via, load_via, loads_via, save_via
from viaseg.core.annotation.project import ImageEntry, Region
from viaseg.core.base import fsutil
from viaseg.core.base.errors import ViaFormatError, ViaSaveError

ROUND_TRIP = {
    # file (relative to via-fixtures) -> expected format
    "unit_test_annotation2.json": "via1",
    "unit_test_annotation1.csv": "csv",
    "sample_img5_region_data.json": "via1",
    "sherlock_ep01_tracks_FRCNN.json": "via2",
    "sherlock_ep01_tracks_FRCNN.csv": "csv",
    "matilde_original_annotation.json": "via2",
    "matilde_original_annotation.csv": "csv",
    "extracted/via1_demo_region_data.json": "via1",
    "extracted/via2_basic_demo_annotations.json": "via2",
    "extracted/via2_basic_demo_annotations.csv": "csv",
    "extracted/via2_face_demo_annotations.json": "via2",
    "extracted/via2_face_demo_annotations.csv": "csv",
    "extracted/via2_wikimedia_demo_annotations.csv": "csv",
    "extracted/via3_debug_project_0.json": "via3",
    "extracted/via3_debug_project_1.json": "via3",
    "extracted/via3_debug_project_2.json": "via3",
    "extracted/via3_debug_project_3.json": "via3",
    "extracted/via3_debug_project_4.json": "via3",
}
NOT_ANNOTATIONS = {
    "coco_2017_snippet.json": "COCO",
    "sherlock_attributes.json": "attribute definition",
    "extracted/via2_basic_demo_attributes.json": "attribute definition",
    "extracted/via2_face_demo_attributes.json": "attribute definition",
    "sample_attributes1.csv": "not a VIA CSV",
    "sample_img5_region_data.csv": "legacy VIA 0.1b",
}


def read_text(p: Path) -> str:
    with open(p, encoding="utf-8", newline="") as fh:
        return fh.read()


def check_round_trip(p: Path, fmt: str):
    proj = load_via(p)
    assert proj.fmt == fmt
    src = read_text(p)
    out = dumps_via(proj)
    if fmt == "csv":
        assert out == src  # CSV is text: must be byte-identical (row order, region ids, line endings)
    else:
        same_json(json.loads(out), json.loads(src))
    return proj, src, out


@pytest.mark.parametrize("name,fmt", sorted(ROUND_TRIP.items()))
def test_fixture_round_trip(via_fixtures, name, fmt):
    proj, _, _ = check_round_trip(via_fixtures / name, fmt)
    if fmt != "via3":
        assert proj.images, "every annotation fixture has images"


@pytest.mark.parametrize("name,needle", sorted(NOT_ANNOTATIONS.items()))
def test_non_annotation_files_are_typed_errors(via_fixtures, name, needle):
    with pytest.raises(ViaFormatError) as ei:
        load_via(via_fixtures / name)
    assert needle in str(ei.value)
    assert str(via_fixtures / name) in str(ei.value)


@pytest.mark.parametrize("sub", ["train", "val"])
def test_car_damage_round_trip_byte_identical(car_damage, sub):
    p = car_damage / sub / "via_region_data.json"
    proj, src, out = check_round_trip(p, "via1")
    assert out == src  # indentation of the file is reproduced too
    # entries whose image is missing on disk are kept (the three VIA demo images in train)
    if sub == "train":
        missing = [im for im in proj.images if not im.path.exists()]
        assert {im.filename for im in missing} >= {"test_pattern_qbist.jpg", "sinus_test_pattern.jpg"}


def test_car_damage_extra_round_trip(car_damage_extra):
    proj, src, out = check_round_trip(car_damage_extra / "via_region_data.json", "via1")
    assert out == src
    assert proj.region_count > 100


def test_regions_share_the_file_dicts(via_fixtures):
    proj = load_via(via_fixtures / "extracted" / "via2_basic_demo_annotations.json")
    im = proj.images[0]
    assert im.key == "adutta_swan.jpg-1" and im.size == -1
    assert im.regions[0].shape is proj.raw["adutta_swan.jpg-1"]["regions"][0]["shape_attributes"]
    assert im.regions[0].attributes["image_quality"] == {"good_illumination": True}
    assert proj.attributes["region"]["name"] == {"type": "text"}
    assert "caption" in proj.attributes["file"]


def test_move_one_vertex_changes_exactly_that_value(car_damage):
    p = car_damage / "train" / "via_region_data.json"
    before = json.loads(read_text(p))
    proj = load_via(p)
    im = next(im for im in proj.images if im.regions)
    im.regions[0].shape["all_points_x"][2] += 7
    after = json.loads(dumps_via(proj))
    pts = after[im.key]["regions"]["0"]["shape_attributes"]["all_points_x"]
    assert pts[2] == before[im.key]["regions"]["0"]["shape_attributes"]["all_points_x"][2] + 7
    pts[2] -= 7
    same_json(after, before)


def test_add_and_delete_regions_rebuild_containers(via_fixtures):
    proj = load_via(via_fixtures / "unit_test_annotation2.json")  # VIA1: regions keyed "0".."7"
    im = proj.images[0]
    n = len(im.regions)
    del im.regions[1]
    im.regions.append(Region(shape={"name": "point", "cx": 1, "cy": 2}, attributes={"name": "new"}))
    out = json.loads(dumps_via(proj))
    regions = out[im.key]["regions"]
    assert list(regions) == [str(i) for i in range(n)]
    assert regions[str(n - 1)] == {
        "shape_attributes": {"name": "point", "cx": 1, "cy": 2},
        "region_attributes": {"name": "new"},
    }
    # VIA2 export of the same project: regions become lists, V1-only keys go
    v2 = json.loads(dumps_via(proj, "via2"))
    assert isinstance(v2[im.key]["regions"], list) and "fileref" not in v2[im.key]
    back = loads_via(dumps_via(proj, "via2"))
    assert [r.shape for r in back.images[0].regions] == [r.shape for r in im.regions]


def test_new_image_entry_and_duplicate_keys():
    proj = loads_via(
        '{"a.jpg10":{"filename":"a.jpg","size":10,"regions":[],"file_attributes":{}}}', fmt="via2"
    )
    proj.images.append(ImageEntry(key="b.jpg20", filename="b.jpg", size=20))
    proj.images.append(ImageEntry(key="a.jpg10", filename="a.jpg", size=10))  # same image added twice
    out = json.loads(dumps_via(proj))
    assert list(out) == ["a.jpg10", "b.jpg20", "a.jpg10~2"]
    assert out["b.jpg20"] == {"filename": "b.jpg", "size": 20, "regions": [], "file_attributes": {}}


def test_mixed_and_missing_keys_stay_as_they_were():
    text = (
        '{"x.pngundefined":{"filename":"x.png","regions":[{"shape_attributes":{"name":"rect","x":-11,"y":0,'
        '"width":5.5,"height":3}}]},"y.png7":{"filename":"y.png","size":"7","extra":[1,{"k":null}]}}'
    )
    proj = loads_via(text)
    assert proj.images[0].size is None and proj.images[1].size == "7"
    assert proj.images[1].regions == [] and proj.images[1].file_attributes == {}
    assert dumps_via(proj) == text
    proj.images[1].file_attributes["caption"] = "hi"
    assert json.loads(dumps_via(proj))["y.png7"]["file_attributes"] == {"caption": "hi"}


def test_two_point_polygon_is_loadable():
    proj = loads_via(
        '{"a":{"filename":"a","size":1,"regions":[{"shape_attributes":{"name":"polygon",'
        '"all_points_x":[1,2],"all_points_y":[3,4]},"region_attributes":{}}],"file_attributes":{}}}'
    )
    assert proj.images[0].regions[0].points() == [(1, 3), (2, 4)]


BAD = [
    (
        '{"a":{"filename":"a","regions":[{},{},{"shape_attributes":{"name":"polygon","all_points_x":"12",'
        '"all_points_y":[1]}}]}}',
        '["a"].regions[2].shape_attributes.all_points_x',
        'expected a list of numbers, got "12"',
    ),
    (
        '{"a":{"filename":"a","regions":{"0":{"shape_attributes":{"name":"rect","x":1,"y":2,"width":3}}}}}',
        '["a"].regions["0"].shape_attributes',
        "rect without 'height'",
    ),
    (
        '{"a":{"filename":"a","regions":[{"shape_attributes":{"name":"circle","cx":1,"cy":2,"r":true}}]}}',
        '["a"].regions[0].shape_attributes.r',
        "expected a number, got true",
    ),
    (
        '{"a":{"filename":"a","regions":[{"shape_attributes":{"name":"point","cx":NaN,"cy":2}}]}}',
        "",
        "NaN is not valid JSON",
    ),
    (
        '{"a":{"filename":"a","regions":[{"shape_attributes":{"name":"point","cx":1e999,"cy":2}}]}}',
        "",
        "too large",
    ),
    (
        '{"a":{"filename":"a","regions":[{"shape_attributes":{"name":"point","cx":1e12,"cy":2}}]}}',
        '["a"].regions[0].shape_attributes.cx',
        "out of range",
    ),
    (
        '{"a":{"filename":"a","regions":[{"shape_attributes":{"name":"point","cx":'
        + "9" * 5000
        + ',"cy":2}}]}}',
        "",
        "invalid JSON",
    ),
    (
        '{"a":{"filename":"a","regions":[' + "[" * 500 + "]" * 500 + "]}}",
        '["a"].regions[0]',
        "expected a region object",
    ),
    ('{"a":{"filename":"a","regions":[' + "[" * 100000 + "]" * 100000 + "]}}", "", "nested too deeply"),
    ("[" * 200000, "", "invalid JSON"),
    ('{"a":{"filename":"a","regions":"none"}}', '["a"].regions', 'expected a list or an object, got "none"'),
    ('{"a":{"size":3}}', '["a"]', "without 'filename'"),
    ('{"a":{"filename":"a","file_attributes":[]}}', '["a"].file_attributes', "expected an object"),
    (
        '{"a":{"filename":"a","regions":[{"shape_attributes":{"name":"polyline","all_points_x":[1,2],'
        '"all_points_y":[1]}}]}}',
        '["a"].regions[0].shape_attributes',
        "has 2 values but all_points_y has 1",
    ),
    ('{"a":{"filename":"a",', "line 1 column 22", "invalid JSON"),
    ("[1,2]", "(top level)", "expected a JSON object"),
    (
        '{"_via_settings":{},"_via_attributes":{},"_via_img_metadata":{"k":{"filename":"a","size":1,"regions":[],'
        '"file_attributes":{}}},"_via_image_id_list":["k","zz"]}',
        "_via_image_id_list[1]",
        "has no entry",
    ),
    (
        '{"_via_settings":{},"_via_attributes":{"region":[]},"_via_img_metadata":{}}',
        "_via_attributes.region",
        "expected an object",
    ),
]


@pytest.mark.parametrize("text,where,problem", BAD)
def test_bad_inputs_give_typed_errors_with_json_paths(tmp_path, text, where, problem):
    p = tmp_path / "bad.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ViaFormatError) as ei:
        load_via(p)
    err = ei.value
    assert err.path == str(p)
    assert err.where == where or err.where.startswith(where), (err.where, str(err))
    assert problem in err.problem, str(err)


def test_bad_csv_rows(tmp_path):
    head = "filename,file_size,file_attributes,region_count,region_id,region_shape_attributes,region_attributes\n"
    p = tmp_path / "a.csv"
    p.write_text(head + 'a.jpg,1,"{}",1,0,"{""name"":""rect""}"\n', encoding="utf-8")
    with pytest.raises(ViaFormatError, match="line 2: expected 7 comma-separated fields, got 6"):
        load_via(p)
    p.write_text(head + 'a.jpg,1,"{}",1,0,"{""name"":""rect"",""x"":1}","{}"', encoding="utf-8")
    with pytest.raises(ViaFormatError, match="rect without 'y'"):
        load_via(p)
    p.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ViaFormatError, match="not UTF-8"):
        load_via(p)
    with pytest.raises(ViaFormatError, match="cannot read file"):
        load_via(tmp_path / "missing.json")


def test_csv_edit_and_conversion(via_fixtures):
    proj = load_via(via_fixtures / "unit_test_annotation1.csv")
    proj.images[0].regions[0].shape["cx"] = 999
    lines = dumps_via(proj).split("\n")
    assert '""cx"":999' in lines[1] and lines[0].startswith("#filename")
    as_json = loads_via(dumps_via(proj, "via2"))
    assert as_json.images[0].regions[0].shape["cx"] == 999
    assert as_json.images[0].size == "129855"  # CSV sizes are strings, as in VIA


# ------------------------------------------------------------------------------------------------ saving


def _project_file(tmp_path: Path) -> Path:
    p = tmp_path / "via_region_data.json"
    p.write_text(
        '{"a.jpg3":{"filename":"a.jpg","size":3,"regions":[],"file_attributes":{}}}', encoding="utf-8"
    )
    return p


def test_atomic_save_keeps_one_backup(tmp_path):
    p = _project_file(tmp_path)
    original = p.read_bytes()
    proj = load_via(p)
    proj.images[0].file_attributes["k"] = "v1"
    save_via(proj)
    bak = tmp_path / "via_region_data.json.bak"
    assert bak.read_bytes() == original
    assert json.loads(p.read_text())["a.jpg3"]["file_attributes"] == {"k": "v1"}
    proj.images[0].file_attributes["k"] = "v2"
    save_via(proj)
    assert bak.read_bytes() == original  # the first backup is never overwritten
    assert load_via(p).images[0].file_attributes == {"k": "v2"}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["via_region_data.json", "via_region_data.json.bak"]
    new = tmp_path / "other.json"
    save_via(proj, new)
    assert not (tmp_path / "other.json.bak").exists()  # a new file has nothing to back up


def test_failed_save_raises_and_keeps_original(tmp_path, monkeypatch):
    p = _project_file(tmp_path)
    original = p.read_bytes()
    proj = load_via(p)
    proj.images[0].regions.append(Region(shape={"name": "point", "cx": 1, "cy": 1}))
    os.chmod(tmp_path, stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(tmp_path, os.W_OK):  # root ignores permissions: make the OS refusal happen ourselves

            def refuse(*a, **k):
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(fsutil.tempfile, "mkstemp", refuse)
        with pytest.raises(ViaSaveError) as ei:
            save_via(proj)
    finally:
        os.chmod(tmp_path, stat.S_IRWXU)
    assert str(p) in str(ei.value) and "Permission denied" in str(ei.value)
    assert p.read_bytes() == original
    assert len(proj.images[0].regions) == 1  # memory untouched
    assert [x.name for x in tmp_path.iterdir()] == ["via_region_data.json"]


def test_failed_write_midway_leaves_no_temp_file(tmp_path, monkeypatch):
    p = _project_file(tmp_path)
    original = p.read_bytes()
    proj = load_via(p)
    proj.images[0].file_attributes["x"] = "y"

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", boom)
    with pytest.raises(ViaSaveError, match="No space left"):
        save_via(proj)
    assert p.read_bytes() == original
    assert sorted(x.name for x in tmp_path.iterdir()) == ["via_region_data.json", "via_region_data.json.bak"]


def test_unencodable_value_is_a_save_error(tmp_path):
    p = _project_file(tmp_path)
    proj = load_via(p)
    proj.images[0].regions.append(Region(shape={"name": "point", "cx": float("nan"), "cy": 1}))
    with pytest.raises(ViaSaveError, match="cannot encode"):
        save_via(proj)
    assert json.loads(p.read_text())["a.jpg3"]["regions"] == []


# ------------------------------------------------------------------------------------------------ VIA 3


def test_via3_regions_in_memory_and_edits(via_fixtures):
    p = via_fixtures / "extracted" / "via3_debug_project_4.json"
    src = json.loads(read_text(p))
    proj = load_via(p)
    swan = proj.images[0]
    assert swan.filename == "adutta_swan.jpg"
    assert swan.path == p.parent / "../../data/sample_img" / "adutta_swan.jpg"  # loc 3: loc_prefix + src
    assert swan.regions[0].shape == {
        "name": "rect",
        "x": 104.553,
        "y": 119.393,
        "width": 319.056,
        "height": 154.469,
    }
    assert swan.regions[0].attributes == {"name": "0"}  # attribute id "1" -> its name
    assert swan.file_attributes == {"Caption": "A white swan in Geneva lake."}
    assert proj.attributes["region"]["name"]["options"] == {"0": "Swan", "1": "Human", "2": "Unknown"}
    swan.regions[0].shape["x"] = 100
    swan.regions.append(
        Region(
            shape={"name": "polygon", "all_points_x": [1, 5, 3], "all_points_y": [1, 1, 4]},
            attributes={"name": "1", "damage": "dent"},
        )
    )
    out = json.loads(dumps_via(proj))
    assert out["metadata"]["1_rozl5hQT"]["xy"] == [2, 100, 119.393, 319.056, 154.469]
    new = [m for k, m in out["metadata"].items() if k not in src["metadata"]]
    assert len(new) == 1 and new[0]["xy"] == [7, 1, 1, 5, 1, 3, 4] and new[0]["vid"] == "1"
    damage_id = next(k for k, a in out["attribute"].items() if a["aname"] == "damage")
    assert new[0]["av"] == {"1": "1", damage_id: "dent"}
    back = loads_via(json.dumps(out))
    assert [r.shape for r in back.images[0].regions] == [r.shape for r in swan.regions]
    del swan.regions[0]
    out = json.loads(dumps_via(proj))
    assert "1_rozl5hQT" not in out["metadata"] and "1_n8iiCJ6Y" in out["metadata"]


def test_via3_conversions_keep_geometry(via_fixtures):
    proj = load_via(via_fixtures / "extracted" / "via2_basic_demo_annotations.json")
    v3 = loads_via(dumps_via(proj, "via3"))
    assert v3.fmt == "via3"
    assert [im.filename for im in v3.images] == [im.filename for im in proj.images]
    for a, b in zip(proj.images, v3.images, strict=True):
        assert [r.shape for r in a.regions] == [r.shape for r in b.regions]
        assert [r.attributes for r in a.regions] == [r.attributes for r in b.regions]
        assert a.file_attributes == b.file_attributes


# ------------------------------------------------------------------------------------------------ VIA 2 projects


def test_minimal_and_coco_imported_projects_round_trip():
    minimal = (
        '{"_via_settings":{},"_via_attributes":{},"_via_img_metadata":{"k1":{"filename":"a.jpg","size":"5",'
        '"regions":[],"file_attributes":{}}}}'
    )
    proj = loads_via(minimal)
    assert proj.fmt == "via2-project" and proj.attributes == {"region": {}, "file": {}}
    assert dumps_via(proj) == minimal  # no id list or attributes invented for an untouched file
    coco_imported = {
        "_via_settings": {
            "ui": {"annotation_editor_height": "25"},
            "core": {"buffer_size": "18"},
            "project": {"name": "p"},
        },
        "_via_img_metadata": {
            "37777": {
                "filename": "http://x/37777.jpg",
                "size": -1,
                "regions": [
                    {
                        "shape_attributes": {
                            "name": "polygon",
                            "all_points_x": [1.5, 9.25, 4.0],
                            "all_points_y": [2.0, 3.0, 7.125],
                        },
                        "region_attributes": {"category": "1"},
                    }
                ],
                "file_attributes": {"width": 640, "height": 427},
            },
            "397133": {"filename": "b.jpg", "size": -1, "regions": [], "file_attributes": {}},
        },
        "_via_attributes": {
            "region": {
                "category": {
                    "type": "radio",
                    "description": "",
                    "options": {"1": "person"},
                    "default_options": {},
                }
            },
            "file": {},
        },
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": [397133, 37777],  # ints, in VIA's display order
    }
    text = json.dumps(coco_imported, separators=(",", ":"))
    proj = loads_via(text)
    assert proj.attributes is proj.raw["_via_attributes"]
    assert dumps_via(proj) == text
    proj.images.append(ImageEntry(key="new.jpg10", filename="new.jpg", size=10))
    out = json.loads(dumps_via(proj))
    assert out["_via_image_id_list"] == ["37777", "397133", "new.jpg10"]
    assert out["_via_img_metadata"]["new.jpg10"] == {
        "filename": "new.jpg",
        "size": 10,
        "regions": [],
        "file_attributes": {},
    }


@pytest.mark.parametrize("fmt", ["via1", "via2", "via2-project", "via3", "csv"])
def test_brand_new_project_saves_and_loads_in_every_format(tmp_path, fmt):
    from viaseg.core.annotation.project import Project

    proj = Project(
        fmt=fmt,
        images=[
            ImageEntry(
                key="a.jpg100",
                filename="a.jpg",
                size=100,
                regions=[
                    Region(
                        shape={"name": "polygon", "all_points_x": [1, 9, 4], "all_points_y": [2, 3, 7]},
                        attributes={"name": "damage"},
                    ),
                    Region(
                        shape={"name": "ellipse", "cx": 5, "cy": 6, "rx": 3, "ry": 2},
                        attributes={"name": "dent"},
                    ),
                ],
                file_attributes={"caption": "x"},
            ),
            ImageEntry(key="sub/b.png7", filename="sub/b.png", size=7),
        ],
    )
    path = tmp_path / ("new.csv" if fmt == "csv" else "new.json")
    save_via(proj, path)
    back = load_via(path)
    assert back.fmt == fmt
    assert [im.filename for im in back.images] == ["a.jpg", "sub/b.png"]
    assert [r.shape for r in back.images[0].regions] == [r.shape for r in proj.images[0].regions]
    assert [r.attributes for r in back.images[0].regions] == [{"name": "damage"}, {"name": "dent"}]
    assert back.images[0].file_attributes == {"caption": "x"}
    assert back.images[1].path == tmp_path / "sub" / "b.png"
    if fmt != "via3":
        assert [im.key for im in back.images] == ["a.jpg100", "sub/b.png7"]


def test_new_entry_for_an_added_image(tmp_path):
    from viaseg.core.annotation.formats.via_common import image_key
    from viaseg.core.annotation.formats.via_io import new_entry

    p = _project_file(tmp_path)
    (tmp_path / "imgs").mkdir()
    img = tmp_path / "imgs" / "c.jpg"
    img.write_bytes(b"x" * 42)
    proj = load_via(p)
    im = new_entry(proj, img)
    assert (im.key, im.filename, im.size) == ("imgs/c.jpg42", "imgs/c.jpg", 42)
    assert im.path == img
    proj.images.append(im)
    save_via(proj)
    assert load_via(p).images[1].path == img
    assert image_key("a.jpg", None) == "a.jpg" and image_key("a.jpg", "12") == "a.jpg12"


def test_detect_format(via_fixtures):
    from viaseg.core.annotation.formats.via_io import detect_format

    for name, fmt in ROUND_TRIP.items():
        assert detect_format((via_fixtures / name).read_bytes(), name) == fmt


def test_via3_attribute_definition_edits_are_saved(via_fixtures):
    proj = load_via(via_fixtures / "extracted" / "via3_debug_project_4.json")
    proj.attributes["region"]["name"]["options"]["3"] = "Car"
    proj.attributes["region"]["damage"] = {
        "type": "dropdown",
        "description": "kind",
        "options": {"d": "dent", "s": "scratch"},
        "default_options": {"d": True},
    }
    out = json.loads(dumps_via(proj))
    assert out["attribute"]["1"]["options"] == {"0": "Swan", "1": "Human", "2": "Unknown", "3": "Car"}
    assert (
        out["attribute"]["1"]["anchor_id"] == "FILE1_Z0_XY1"
        and out["attribute"]["1"]["desc"] == "Name of Object"
    )
    assert out["attribute"]["3"] == {
        "aname": "damage",
        "anchor_id": "FILE1_Z0_XY1",
        "type": 4,
        "desc": "kind",
        "options": {"d": "dent", "s": "scratch"},
        "default_option_id": "d",
    }
    assert loads_via(json.dumps(out)).attributes["region"]["damage"]["options"] == {
        "d": "dent",
        "s": "scratch",
    }


def test_regions_as_json_text_round_trip_and_the_forms_a_person_pastes():
    from viaseg.core.annotation.formats.via_json import regions_from_json, regions_to_json

    regions = [
        Region({"name": "polygon", "all_points_x": [1, 5, 5], "all_points_y": [1, 1, 6]}, {"name": "dent"}),
        Region({"name": "ellipse", "cx": 4, "cy": 5, "rx": 2.5, "ry": 1, "theta": 0.3}, {}),
    ]
    back = regions_from_json(regions_to_json(regions))
    assert [(r.shape, r.attributes, r.raw) for r in back] == [(r.shape, r.attributes, None) for r in regions]
    one = {"shape_attributes": {"name": "point", "cx": 3, "cy": 4}, "region_attributes": {"a": "b"}}
    for form in (
        [one],
        {"7": one},
        one,
        {"filename": "x.jpg", "regions": [one]},
    ):  # VIA 2, VIA 1, one, an entry
        (r,) = regions_from_json(json.dumps(form))
        assert r.shape == one["shape_attributes"] and r.attributes == {"a": "b"}
        assert r.shape is not one["shape_attributes"]
    for bad, where in (
        ("[1]", "[0]"),
        (
            '{"0": {"shape_attributes": {"name": "polygon", "all_points_x": [1, null],'
            ' "all_points_y": [1, 2]}}}',
            "all_points_x",
        ),
        ("3", "top level"),
        ("[{", ""),
    ):
        with pytest.raises(ViaFormatError) as exc:
            regions_from_json(bad, source="clipboard")
        assert str(exc.value).startswith("clipboard") and where in str(exc.value)


def test_a_via3_project_of_videos_is_refused_not_read_as_empty(via_fixtures, tmp_path, capsys):
    from viaseg.core.cli import main

    video = via_fixtures / "extracted" / "via3_debug_project_2.json"  # 3 videos, 15 annotations
    assert main(["check", str(video)]) == 2
    err = capsys.readouterr().err
    assert f"{video}: file: VIA 3 project with video/audio files (3 files, 15 regions): not supported" in err
    assert main(["convert", str(video), str(tmp_path / "o.json"), "--to", "via2"]) == 2
    assert "not supported" in capsys.readouterr().err and not (tmp_path / "o.json").exists()
    assert load_via(video).images == []  # load_via itself still reads it (a lossless VIA 3 round trip)


def test_a_via3_project_of_images_and_videos_says_what_it_did_not_load(tmp_path, capsys):
    from viaseg.core.annotation.formats.foreign import load_input
    from viaseg.core.cli import main

    value = {
        "project": {"pid": "__VIA_PROJECT_ID__", "vid_list": ["1", "2"]},
        "config": {},
        "attribute": {},
        "file": {
            "1": {"fid": "1", "fname": "a.jpg", "type": 2, "loc": 1, "src": ""},
            "2": {"fid": "2", "fname": "b.mp4", "type": 4, "loc": 1, "src": ""},
        },
        "view": {"1": {"fid_list": ["1"]}, "2": {"fid_list": ["2"]}},
        "metadata": {
            "m1": {"vid": "1", "flg": 0, "z": [], "xy": [2, 1, 1, 5, 5], "av": {}},
            "m2": {"vid": "2", "flg": 0, "z": [1.5], "xy": [2, 1, 1, 5, 5], "av": {}},
        },
    }
    src = tmp_path / "mixed.json"
    src.write_text(json.dumps(value), encoding="utf-8")
    messages: list[str] = []
    project, kind = load_input(src, messages)
    assert (
        kind == "via3" and [im.filename for im in project.images] == ["a.jpg"] and project.region_count == 1
    )
    assert messages == [
        f"{src}: not loaded: 1 video/audio file(s) and 1 annotation(s) of video/audio or of views of several "
        "files (viaseg reads annotations of images)"
    ]
    assert main(["convert", str(src), str(tmp_path / "o.json"), "--to", "via2"]) == 1  # the video is left out
    assert "not loaded: 1 video/audio file(s)" in capsys.readouterr().err
    assert main(["convert", str(src), str(tmp_path / "o3.json")]) == 0  # VIA 3 keeps it all
    assert json.loads((tmp_path / "o3.json").read_text())["metadata"]["m2"] == value["metadata"]["m2"]
