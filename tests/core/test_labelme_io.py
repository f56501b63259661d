"""labelme import/export: conformance on files labelme wrote, the round trip through VIA, the dataset and
convert entry points, and property-based: mutated labelme files raise only viaseg's typed errors."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mutation_helpers import LABELME, byte_mutations, type_swaps
from viaseg.core.annotation.dataset import load_dataset
from viaseg.core.annotation.formats.convert import to_coco
from viaseg.core.annotation.formats.foreign import load_input
from viaseg.core.annotation.formats.labelme_io import (
    labelme_document,
    load_labelme_file,
    load_labelme_folder,
    loads_labelme,
    to_labelme,
)
from viaseg.core.annotation.formats.via_io import dumps_via, loads_via
from viaseg.core.annotation.project import ImageEntry, Project, Region
from viaseg.core.annotation.raster import rasterize
from viaseg.core.base.errors import ImageReadError, ViaFormatError, ViasegError
from viaseg.core.cli import main

INSTANCES = LABELME / "instance_segmentation"
PRIMITIVES = LABELME / "primitives" / "primitives.json"


@pytest.fixture
def labelme_dir() -> Path:
    if not LABELME.exists():
        pytest.skip(
            f"shared data not available: {LABELME} is missing (tests read ../shared next to the checkout)"
        )
    return LABELME


def shapes_of(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["shapes"]


def write_labelme(path: Path, shapes: list[dict], image: str = "a.jpg", **extra) -> Path:
    doc = {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image,
        "imageData": None,
        "imageHeight": 40,
        "imageWidth": 60,
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def no_image(path):
    raise ImageReadError(path, "missing")


def poly(label="dent", pts=((1, 1), (20, 1), (20, 15)), **kw) -> dict:
    return {
        "label": label,
        "points": [list(p) for p in pts],
        "group_id": None,
        "description": "",
        "shape_type": "polygon",
        "flags": {},
        **kw,
    }


# ------------------------------------------------------------------------------------------ conformance


def test_every_primitive_shape_is_read(labelme_dir):
    msgs: list[str] = []
    project = load_labelme_file(PRIMITIVES, msgs)
    assert msgs == [] and project.path is None and project.fmt == "via2"
    (im,) = project.images
    assert im.filename == "primitives.jpg" and im.path.is_file() and im.file_attributes == {}
    labels = [s["label"] for s in shapes_of(PRIMITIVES)]
    assert [r.attributes["name"] for r in im.regions] == labels  # the mask here is one component
    by_label = {r.attributes["name"]: r.shape for r in reversed(im.regions)}  # the first of a label wins
    assert by_label["rectangle"] == {"name": "rect", "x": 32.0, "y": 35.0, "width": 100.0, "height": 100.0}
    assert im.regions[2].shape == {"name": "rect", "x": 391.0, "y": 33.0, "width": 151.0, "height": 102.0}
    circle = by_label["circle"]
    assert (circle["cx"], circle["cy"]) == (195.0, 84.0) and circle["r"] == pytest.approx(math.hypot(30, 41))
    assert by_label["point"] == {"name": "point", "cx": 345.0, "cy": 174.0}
    assert by_label["line"]["name"] == "polyline" and len(by_label["line"]["all_points_x"]) == 2
    strip = by_label["line_strip"]
    assert strip["name"] == "polyline" and strip["all_points_y"][2] == 275.46296296296293
    assert by_label["polygon"]["all_points_x"] == [69.0, 45.0, 173.0, 198.0]


def test_mask_shape_becomes_polygons_with_the_same_pixels(labelme_dir):
    shape = next(s for s in shapes_of(PRIMITIVES) if s["shape_type"] == "mask")
    mask = cv2.imdecode(np.frombuffer(base64.b64decode(shape["mask"]), np.uint8), cv2.IMREAD_UNCHANGED) > 0
    regions = [
        r for r in load_labelme_file(PRIMITIVES).images[0].regions if r.attributes["name"] == "octagon"
    ]
    assert regions and all(r.kind == "polygon" for r in regions)
    x0, y0 = (math.floor(v) for v in shape["points"][0])  # the PNG's top-left pixel, as labelme places it
    drawn = rasterize(regions, (560, 450))
    assert drawn.sum() == mask.sum()
    assert np.array_equal(drawn[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] > 0, mask)


def test_instance_segmentation_labels_and_group_ids(labelme_dir):
    project = load_labelme_folder(INSTANCES)
    files = sorted(INSTANCES.glob("*.json"))
    assert [im.filename for im in project.images] == [f.with_suffix(".jpg").name for f in files]
    for im, f in zip(project.images, files, strict=True):
        shapes = shapes_of(f)
        assert im.path == f.with_suffix(".jpg") and im.path.is_file()
        assert im.key == f"{im.filename}{im.path.stat().st_size}"
        assert [r.attributes["name"] for r in im.regions] == [s["label"] for s in shapes]
        assert [r.attributes.get("group_id") for r in im.regions] == [
            None if s["group_id"] is None else str(s["group_id"]) for s in shapes
        ]
        assert [r.points() for r in im.regions] == [[tuple(p) for p in s["points"]] for s in shapes]
    assert project.attributes["region"] == {"name": {"type": "text"}, "group_id": {"type": "text"}}


def test_labelme_to_via_to_labelme_keeps_points_labels_and_groups(labelme_dir, tmp_path):
    project = load_labelme_folder(INSTANCES)
    again = loads_via(
        dumps_via(project, "via2"), path=INSTANCES / "via.json"
    )  # in memory: nothing written there
    written = to_labelme(again, tmp_path / "out")
    assert [p.name for p in written] == sorted(p.name for p in INSTANCES.glob("*.json"))
    for out in written:
        src = json.loads((INSTANCES / out.name).read_text(encoding="utf-8"))
        doc = json.loads(out.read_text(encoding="utf-8"))
        assert list(doc) == [
            "version",
            "flags",
            "shapes",
            "imagePath",
            "imageData",
            "imageHeight",
            "imageWidth",
        ]
        assert (out.parent / doc["imagePath"]).resolve() == (INSTANCES / src["imagePath"]).resolve()
        assert (doc["imageWidth"], doc["imageHeight"]) == (src["imageWidth"], src["imageHeight"])
        assert doc["imageData"] is None
        keep = ("label", "points", "group_id", "shape_type")
        assert [{k: s[k] for k in keep} for s in doc["shapes"]] == [
            {k: s[k] for k in keep} for s in src["shapes"]
        ]


def test_primitives_map_back_to_labelme_shapes(labelme_dir, tmp_path):
    project = load_labelme_file(PRIMITIVES)
    (out,) = to_labelme(project, tmp_path)
    shapes = json.loads(out.read_text(encoding="utf-8"))["shapes"]
    assert [s["shape_type"] for s in shapes] == [
        "rectangle",
        "circle",
        "rectangle",
        "polygon",
        "linestrip",
        "point",
        "linestrip",
        "polygon",
    ]
    src = shapes_of(PRIMITIVES)
    for i in (0, 2, 3, 5, 6):  # rectangles (corners in order), polygon, point, linestrip: the points as read
        assert shapes[i]["points"] == src[i]["points"]
    (c, p), ((sc, sp)) = shapes[1]["points"], src[1]["points"]
    assert c == sc and math.dist(c, p) == pytest.approx(math.dist(sc, sp))
    assert all(len(s["points"]) == 2 for s in shapes if s["shape_type"] in ("rectangle", "circle"))


def test_image_missing_keeps_name_and_size_from_the_file(tmp_path):
    f = write_labelme(
        tmp_path / "x.json", [poly()], image="gone.jpg", imageData=base64.b64encode(b"jpeg").decode()
    )
    (im,) = load_labelme_file(f).images
    assert im.filename == "gone.jpg" and im.size == -1 and im.key == "gone.jpg-1"
    assert im.file_attributes == {"width": "60", "height": "40"}
    coco = to_coco(Project(images=[im]), size_of=no_image)  # the size from the file attributes
    assert coco["images"][0]["width"] == 60


def test_windows_image_path_falls_back_to_the_base_name(tmp_path):
    (tmp_path / "img.jpg").write_bytes(b"x")
    f = write_labelme(tmp_path / "img.json", [poly()], image="C:\\photos\\img.jpg")
    assert load_labelme_file(f).images[0].filename == "img.jpg"


def test_attributes_flags_description_and_unknown_shapes(tmp_path):
    shapes = [
        poly(group_id=3, flags={"occluded": True}, description="see note"),
        poly(label="", shape_type=None),
        {"label": "ai", "points": [[1, 2]], "shape_type": "mystery"},
    ]
    f = write_labelme(tmp_path / "a.json", shapes, flags={"blurry": True})
    msgs: list[str] = []
    (im,) = load_labelme_file(f, msgs, class_attr="type").images
    assert [r.attributes for r in im.regions] == [
        {"type": "dent", "group_id": "3", "flags": {"occluded": True}, "description": "see note"},
        {},
    ]
    assert im.file_attributes == {
        "flags": {"blurry": True},
        "width": "60",
        "height": "40",
    }  # a.jpg is missing
    assert len(msgs) == 1 and "'mystery' skipped" in msgs[0] and str(f) in msgs[0]
    doc = labelme_document(im, tmp_path, "type", size_of=lambda p: (60, 40))
    assert doc["flags"] == {"blurry": True}
    assert doc["shapes"][0] | {"points": None} == {
        "label": "dent",
        "points": None,
        "group_id": 3,
        "description": "see note",
        "shape_type": "polygon",
        "flags": {"occluded": True},
    }


@pytest.mark.parametrize(
    "shapes, where",
    [
        ("nope", "shapes"),
        ([{"label": 1, "points": [[1, 2]]}], "shapes[0].label"),
        ([poly(pts=[(1, "2")])], "shapes[0].points[0][1]"),
        ([poly(pts=[(1, 2, 3)])], "shapes[0].points[0]"),
        ([poly(shape_type="circle", pts=[(1, 2)])], "shapes[0].points"),
        ([poly(group_id=1.5)], "shapes[0].group_id"),
        ([poly(shape_type="mask", pts=[(1, 2), (3, 4)], mask="!!")], "shapes[0].mask"),
        ([poly(shape_type="rectangle", pts=[(0, 0), (2e9, 1)])], "shapes[0]"),
    ],
)
def test_malformed_files_raise_typed_errors_naming_file_and_place(tmp_path, shapes, where):
    f = write_labelme(tmp_path / "bad.json", shapes)
    with pytest.raises(ViaFormatError) as err:
        load_input(f)
    assert err.value.path == str(f) and err.value.where.startswith(where)


def test_folder_with_a_stray_non_labelme_json_is_an_error(tmp_path):
    write_labelme(tmp_path / "a.json", [poly()])
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(ViaFormatError, match="b.json"):
        load_labelme_folder(tmp_path)  # no messages to name it in: refused, never silently left out


def test_a_labelme_file_without_shapes_says_so(tmp_path, capsys):
    f = tmp_path / "noshapes.json"
    doc = {"version": "4.0.0", "flags": {}, "imagePath": "a.jpg", "imageData": None, "imageHeight": 3}
    f.write_text(json.dumps(doc))
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert f'{f}: shapes: the labelme file has no "shapes" list' in err and "image entry" not in err


def _folder_with_bad_files(tmp_path) -> Path:
    write_labelme(tmp_path / "a.json", [poly()], image="a.jpg")
    write_labelme(tmp_path / "c.json", [poly(), poly()], image="c.jpg")
    good = (tmp_path / "c.json").read_text(encoding="utf-8")
    (tmp_path / "b_broken.json").write_text(good[:60], encoding="utf-8")  # truncated
    (tmp_path / "d_other.json").write_text('{"foo": 1}', encoding="utf-8")
    return tmp_path


def test_bad_files_of_a_labelme_folder_are_left_out_and_named(tmp_path):
    folder = _folder_with_bad_files(tmp_path)
    msgs: list[str] = []
    project = load_labelme_folder(folder, msgs)
    assert [im.filename for im in project.images] == ["a.jpg", "c.jpg"] and project.region_count == 3
    assert len(msgs) == 2
    assert msgs[0].startswith(f"{folder / 'b_broken.json'}: line ") and "invalid JSON" in msgs[0]
    assert (
        msgs[1] == f"{folder / 'd_other.json'}: not a labelme file (no 'shapes'/'imagePath'), in a folder of "
        "labelme files; the file is left out"
    )
    for name in ("a.json", "c.json"):
        (folder / name).unlink()
    with pytest.raises(
        ViaFormatError, match="b_broken.json"
    ):  # nothing readable: an error, not an empty project
        load_labelme_folder(folder, [])


def test_a_dataset_and_convert_go_on_without_the_bad_labelme_files(tmp_path, capsys):
    folder = _folder_with_bad_files(tmp_path / "train")
    ds = load_dataset(tmp_path)
    train = ds.splits["train"]
    assert [e.filename for e in train.entries] == ["a.jpg", "c.jpg"] and train.region_count == 3
    assert len(train.warnings) == 2
    assert "b_broken.json: line " in train.warnings[0] and train.warnings[0].endswith(
        "; the file is left out"
    )
    assert train.warnings[1].startswith(f"{folder / 'd_other.json'}: not a labelme file")
    assert main(["convert", str(folder), str(tmp_path / "o.json"), "--to", "via2"]) == 1
    cap = capsys.readouterr()
    assert "b_broken.json" in cap.err and "d_other.json" in cap.err and "2 item(s) not read" in cap.out
    assert len(loads_via((tmp_path / "o.json").read_text(encoding="utf-8")).images) == 2


def test_training_data_says_which_labelme_files_it_leaves_out(tmp_path, caplog):
    from viaseg.core.ml.train_plumbing import _as_dataset

    _folder_with_bad_files(tmp_path / "train")
    with caplog.at_level("WARNING", logger="viaseg.train"):
        ds = _as_dataset(str(tmp_path))
    assert len(ds.splits["train"].entries) == 2
    said = [r.getMessage() for r in caplog.records if r.name == "viaseg.train"]
    assert len(said) == 2 and all(m.startswith("not trained on: ") for m in said), said
    assert "b_broken.json" in said[0] and "d_other.json" in said[1]


# ------------------------------------------------------------------------------------------ entry points


def test_labelme_folder_opens_as_a_one_split_dataset(labelme_dir):
    ds = load_dataset(INSTANCES)
    assert list(ds.splits) == ["instance_segmentation"]
    sp = ds.splits["instance_segmentation"]
    assert sp.labeled and sp.project.path is None and sp.image_dir == INSTANCES
    assert len(sp.entries) == 3 and sp.region_count == 18 and sp.unlisted_images() == []


def test_labelme_split_folders_next_to_a_via_split(tmp_path):
    write_labelme(tmp_path / "train" / "a.json", [poly(), poly()], image="a.jpg")
    write_labelme(tmp_path / "train" / "b.json", [poly()], image="b.jpg")
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "via_region_data.json").write_text(
        json.dumps({"v.jpg-1": {"filename": "v.jpg", "size": -1, "regions": [], "file_attributes": {}}})
    )
    ds = load_dataset(tmp_path)
    assert list(ds.splits) == ["train", "val"]
    train = ds.splits["train"]
    assert [e.filename for e in train.entries] == ["a.jpg", "b.jpg"] and train.region_count == 3
    assert train.project.path is None and ds.splits["val"].project.path is not None
    assert [e.path for e in train.entries] == [tmp_path / "train" / "a.jpg", tmp_path / "train" / "b.jpg"]
    assert list(load_dataset(f"{tmp_path}:train").splits) == ["train"]
    assert load_dataset(tmp_path / "train" / "b.json").region_count == 1  # one labelme file


def test_via_file_wins_over_labelme_files(tmp_path):
    write_labelme(tmp_path / "s" / "a.json", [poly()])
    (tmp_path / "s" / "via_region_data.json").write_text("{}")
    assert load_dataset(tmp_path / "s").splits["s"].project.path == tmp_path / "s" / "via_region_data.json"


def test_cli_convert_labelme_folder_and_via_file_to_labelme(labelme_dir, tmp_path, capsys):
    assert main(["convert", str(INSTANCES), str(tmp_path / "lm"), "--to", "labelme"]) == 0
    assert "labelme from labelme (3 images, 18 regions" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "lm").iterdir()) == sorted(
        p.name for p in INSTANCES.glob("*.json")
    )
    via = tmp_path / "via.json"
    assert main(["convert", str(INSTANCES), str(via), "--to", "via2"]) == 0
    out = tmp_path / "back"
    assert main(["convert", str(via), str(out), "--to", "labelme"]) == 0
    assert "labelme from via2" in capsys.readouterr().out
    doc = json.loads((out / "2011_000003.json").read_text(encoding="utf-8"))
    assert (out / doc["imagePath"]).resolve() == (via.parent / "2011_000003.jpg").resolve()  # where via2 says
    assert [s["label"] for s in doc["shapes"]] == [
        s["label"] for s in shapes_of(INSTANCES / "2011_000003.json")
    ]


def test_to_labelme_names_attributes_it_cannot_write_and_keeps_a_backup(tmp_path):
    ims = [
        ImageEntry(
            key=k,
            filename=f"d/{n}",
            base_dir=tmp_path,
            file_attributes={"width": 9, "height": 9},
            regions=[
                Region(
                    {"name": "ellipse", "cx": 4, "cy": 4, "rx": 3, "ry": 2},
                    {"class": "dent", "severity": "2"},
                ),
                Region({"name": "polygon", "all_points_x": [1, 2], "all_points_y": [1, 2]}),
            ],
        )
        for k, n in (("1", "a.jpg"), ("2", "A.png"))
    ]
    msgs: list[str] = []
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.json").write_text("mine")
    files = to_labelme(Project(images=ims), tmp_path / "out", size_of=no_image, messages=msgs)
    assert [p.name for p in files] == ["a.json", "A~2.json"]
    assert (tmp_path / "out" / "a.json.bak").read_text() == "mine"
    doc = json.loads(files[0].read_text(encoding="utf-8"))
    assert doc["shapes"][0]["label"] == "dent" and len(doc["shapes"][0]["points"]) == 72
    assert doc["imagePath"] == "../d/a.jpg" and doc["imageWidth"] == 9
    assert any("severity" in m for m in msgs) and sum("region 1 skipped" in m for m in msgs) == 2


# ------------------------------------------------------------------------------------------ property-based


def _corpus() -> dict[str, bytes]:
    files = sorted(INSTANCES.glob("*.json")) + [PRIMITIVES] if LABELME.exists() else []
    return {p.name: p.read_bytes() for p in files}


CORPUS = _corpus()
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def check_reader(name: str, data: bytes) -> None:
    """The property: a typed error naming the file, or a project VIA files can hold and labelme can get back."""
    path = f"/fuzz/{name}"
    try:
        project = loads_labelme(data, path=path, messages=[])
    except ViasegError as exc:
        event("rejected")
        assert str(exc).startswith(path)
        return
    event("accepted")
    again = loads_via(dumps_via(project, "via2"), path="/fuzz/via.json", fmt="via2")
    assert [[r.shape for r in im.regions] for im in again.images] == [
        [r.shape for r in im.regions] for im in project.images
    ]
    for im in project.images:
        json.dumps(
            labelme_document(im, Path("/fuzz/out"), "name", size_of=lambda p: (64, 48)), allow_nan=False
        )


@pytest.mark.skipif(not CORPUS, reason=f"shared data not available: {LABELME} is missing")
@FUZZ
@given(st.one_of(byte_mutations(CORPUS), type_swaps(CORPUS)) if CORPUS else st.nothing())
def test_mutated_labelme_files_raise_only_typed_errors(case):
    check_reader(*case)


def test_an_embedded_image_whose_file_is_gone_is_named_as_such(tmp_path, capsys):
    png = base64.b64encode(cv2.imencode(".png", np.zeros((40, 60, 3), np.uint8))[1].tobytes()).decode()
    f = write_labelme(tmp_path / "a.json", [poly()], image="gone.jpg", imageData=png)
    msgs: list[str] = []
    (im,) = load_input(f, msgs)[0].images
    assert im.file_attributes == {"width": "60", "height": "40"}
    assert msgs == [
        f"{f}: imagePath: the image {tmp_path / 'gone.jpg'} does not exist, and the image embedded in this "
        "labelme file (imageData) is not used (viaseg reads images from files): put the image file there"
    ]
    assert main(["check", str(f), "--no-decode"]) == 1
    out = capsys.readouterr().out
    assert "VIA file" not in out and "listed in the annotation file (VIA, labelme or COCO)" in out
    assert "(imageData) is not used" in out
    write_labelme(tmp_path / "b.json", [poly()], image="b.jpg", imageData=png)
    (tmp_path / "b.jpg").write_bytes(b"x")
    msgs.clear()
    load_input(tmp_path / "b.json", msgs)
    assert msgs == []  # the image is there: the embedded copy is not needed
