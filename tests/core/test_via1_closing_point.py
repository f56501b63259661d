"""VIA 1 files repeat a polygon's first vertex at its end; polygons added to such a file are written the same way,
and everything untouched stays byte for byte as it was (issue 21)."""

from __future__ import annotations

import json
import shutil

import pytest
from viaseg.core.annotation import edits
from viaseg.core.annotation.formats.via_io import load_via, save_via
from viaseg.core.annotation.project import Region


def _regions_text(data: dict) -> dict:
    """Each region's JSON text (key order and int/float as in the file), by (image key, region id)."""
    out = {}
    for key, entry in data.items():
        regions = entry.get("regions") or {}
        items = regions.items() if isinstance(regions, dict) else enumerate(regions)
        for rid, r in items:
            out[(key, str(rid))] = json.dumps(r, ensure_ascii=False)
    return out


@pytest.mark.parametrize("name", ["extracted/via1_demo_region_data.json", "unit_test_annotation2.json"])
def test_a_polygon_added_to_a_via1_file_repeats_its_first_point(via_fixtures, tmp_path, name):
    path = tmp_path / "via1.json"
    shutil.copy(via_fixtures / name, path)
    original = path.read_bytes()
    before = _regions_text(json.loads(original))
    project = load_via(path)
    assert project.fmt == "via1"
    entry = project.images[0]
    new = Region(
        shape={"name": "polygon", "all_points_x": [10, 60, 40], "all_points_y": [5, 8, 50]}, attributes={}
    )
    cmd = edits.AddRegions(entry, [new])
    cmd.do()
    save_via(project, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    regions = data[entry.key]["regions"]
    written = list(regions.values())[-1]["shape_attributes"]
    assert written["all_points_x"] == [10, 60, 40, 10] and written["all_points_y"] == [5, 8, 50, 5]
    assert new.shape["all_points_x"] == [10, 60, 40]  # the region in memory is not changed by a save
    after = _regions_text(data)
    assert len(after) == len(before) + 1
    assert all(after[k] == text for k, text in before.items())  # every old region as it was, text for text
    # and with the polygon taken out again, the file is the original, byte for byte
    cmd.undo()
    save_via(project, path)
    assert path.read_bytes() == original


def test_the_via1_csv_closes_new_polygons_and_a_via2_file_does_not(via_fixtures, tmp_path):
    csv = tmp_path / "via1.csv"
    shutil.copy(via_fixtures / "unit_test_annotation1.csv", csv)
    project = load_via(csv)
    new = Region(shape={"name": "polygon", "all_points_x": [1, 9, 5], "all_points_y": [1, 1, 7]})
    project.images[0].regions.append(new)
    save_via(project, csv)
    assert '""all_points_x"":[1,9,5,1]' in csv.read_text(encoding="utf-8")
    # VIA 2 writes polygons open: a new one stays open there
    via2 = tmp_path / "via2.json"
    via2.write_text(
        json.dumps(
            {
                "a.jpg1": {
                    "filename": "a.jpg",
                    "size": 1,
                    "file_attributes": {},
                    "regions": [
                        {
                            "shape_attributes": {
                                "name": "polygon",
                                "all_points_x": [0, 5, 5],
                                "all_points_y": [0, 0, 5],
                            },
                            "region_attributes": {},
                        }
                    ],
                }
            }
        )
    )
    project = load_via(via2)
    project.images[0].regions.append(
        Region(shape={"name": "polygon", "all_points_x": [1, 9, 5], "all_points_y": [1, 1, 7]})
    )
    save_via(project, via2)
    regions = json.loads(via2.read_text())["a.jpg1"]["regions"]
    assert regions[1]["shape_attributes"]["all_points_x"] == [1, 9, 5]
