"""viaseg.core.annotation.dataset: layouts, split specs, choice of the VIA file, unlabeled splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from viaseg.core.annotation.dataset import load_dataset, parse_spec
from viaseg.core.base.errors import DatasetError, ViaFormatError


def write_via(path: Path, images: dict[str, int]) -> Path:
    """A VIA 2 annotations file: ``{filename: number_of_square_regions}``."""
    data = {}
    for name, nreg in images.items():
        regions = [
            {
                "shape_attributes": {
                    "name": "polygon",
                    "all_points_x": [1 + i, 5 + i, 5 + i],
                    "all_points_y": [1, 1, 6],
                },
                "region_attributes": {"name": "damage"},
            }
            for i in range(nreg)
        ]
        data[f"{name}-1"] = {"filename": name, "size": -1, "regions": regions, "file_attributes": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def touch_images(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"not decoded by the dataset loader")


def test_car_damage_layout(car_damage):
    ds = load_dataset(car_damage)
    assert list(ds.splits) == ["train", "val", "test"]
    train, val, test = ds.splits["train"], ds.splits["val"], ds.splits["test"]
    assert train.labeled and val.labeled and not test.labeled
    assert len(train.entries) == 52 and len(val.entries) == 15
    assert train.image_dir == car_damage / "train"
    assert [e.key for e in test.entries] == ["test1.jpg", "test2.jpg"]
    assert all(e.regions == [] and e.path.is_file() for e in test.entries)
    assert train.entries[3].path == car_damage / "train" / "image67.jpg"
    assert sum(1 for _ in ds.entries()) == 52 + 15 + 2
    assert {s for s, _ in ds.entries("val")} == {"val"}
    assert train.unlisted_images() == [] and val.unlisted_images() == []


def test_split_spec_loads_only_that_split(car_damage):
    ds = load_dataset(f"{car_damage}:val")
    assert list(ds.splits) == ["val"]
    assert len(ds.splits["val"].entries) == 15
    ds = load_dataset(f"{car_damage}:test")
    assert list(ds.splits) == ["test"] and not ds.splits["test"].labeled


def test_unknown_split_names_the_available_ones(car_damage):
    with pytest.raises(DatasetError, match="train, val, test"):
        load_dataset(f"{car_damage}:nope")


def test_via_file_as_dataset_is_named_after_its_folder(tmp_path):
    f = write_via(tmp_path / "train" / "anno.json", {"a.jpg": 2})
    ds = load_dataset(str(f))
    assert list(ds.splits) == ["train"]
    assert ds.splits["train"].entries[0].path == tmp_path / "train" / "a.jpg"
    assert ds.region_count == 2


def test_folder_holding_via_file_is_one_split(tmp_path):
    write_via(tmp_path / "proj" / "via_region_data.json", {"a.jpg": 1, "b.jpg": 0})
    touch_images(tmp_path / "proj", "a.jpg", "b.jpg", "c.png")
    ds = load_dataset(tmp_path / "proj")
    assert list(ds.splits) == ["proj"]
    sp = ds.splits["proj"]
    assert [e.filename for e in sp.entries] == ["a.jpg", "b.jpg"]
    assert [p.name for p in sp.unlisted_images()] == ["c.png"]


def test_split_order_and_unlabeled_split(tmp_path):
    write_via(tmp_path / "val" / "via_region_data.json", {"v.jpg": 1})
    write_via(tmp_path / "train" / "via_region_data.json", {"t.jpg": 1})
    touch_images(tmp_path / "test", "img10.jpg", "img2.jpg")
    (tmp_path / "notes").mkdir()  # no images, no VIA file: not a split
    touch_images(tmp_path / "extra", "e.png")
    ds = load_dataset(tmp_path)
    assert list(ds.splits) == ["train", "val", "test", "extra"]
    assert [e.key for e in ds.splits["test"].entries] == ["img2.jpg", "img10.jpg"]


def test_preferred_via_file_wins(tmp_path):
    write_via(tmp_path / "s" / "via_region_data.json", {"a.jpg": 1})
    write_via(tmp_path / "s" / "other.json", {"b.jpg": 1})
    ds = load_dataset(tmp_path / "s")
    assert [e.filename for e in ds.splits["s"].entries] == ["a.jpg"]


def test_single_other_json_is_used_and_non_via_json_ignored(tmp_path):
    write_via(tmp_path / "s" / "export_json.json", {"a.jpg": 1})
    (tmp_path / "s" / "notes.json").write_text("[1, 2]")
    ds = load_dataset(tmp_path / "s")
    assert [e.filename for e in ds.splits["s"].entries] == ["a.jpg"]


def test_several_via_files_is_an_error_naming_them(tmp_path):
    write_via(tmp_path / "s" / "one.json", {"a.jpg": 1})
    write_via(tmp_path / "s" / "two.json", {"b.jpg": 1})
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path / "s")
    assert "one.json" in str(err.value) and "two.json" in str(err.value)


def test_broken_via_file_is_reported_not_taken_for_unlabeled(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "via_region_data.json").write_text("{not json")
    touch_images(tmp_path / "s", "a.jpg")
    with pytest.raises(ViaFormatError) as err:
        load_dataset(tmp_path / "s")
    assert "via_region_data.json" in str(err.value)


def test_only_unparseable_jsons_raise(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.json").write_text("[1, 2]")
    (tmp_path / "s" / "b.json").write_text("{bad")
    with pytest.raises(DatasetError, match="a.json"):
        load_dataset(tmp_path / "s")


def test_folder_of_images_only(tmp_path):
    touch_images(tmp_path / "photos", "x.jpg", "y.JPG", "readme.txt")
    ds = load_dataset(tmp_path / "photos")
    assert list(ds.splits) == ["photos"]
    assert [e.key for e in ds.splits["photos"].entries] == ["x.jpg", "y.JPG"]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset"):
        load_dataset(tmp_path)


def test_parse_spec(tmp_path):
    assert parse_spec(str(tmp_path)) == (tmp_path, None)
    assert parse_spec(f"{tmp_path}:val") == (tmp_path, "val")
    odd = tmp_path / "a:b"  # a path that contains ':' and exists as a whole is a path
    odd.mkdir()
    assert parse_spec(str(odd)) == (odd, None)
    assert parse_spec(f"{odd}:train") == (odd, "train")
    with pytest.raises(DatasetError, match="no such file"):
        parse_spec(str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="no such file"):
        parse_spec(f"{tmp_path / 'missing'}:val")


def test_non_via_file_is_rejected(tmp_path):
    f = tmp_path / "x.jpg"
    f.write_bytes(b"x")
    with pytest.raises(DatasetError, match="not a VIA file"):
        load_dataset(f)
