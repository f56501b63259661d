"""Crash-recovery journal: write, find after a 'crash', restore edits, discard; state dir from the env."""

from __future__ import annotations

import json

import pytest
from viaseg.core.annotation import edits, journal
from viaseg.core.annotation.formats.via_io import load_via
from viaseg.core.base.errors import ViaFormatError

VIA2 = {
    "a.jpg10": {
        "filename": "a.jpg",
        "size": 10,
        "regions": [
            {
                "shape_attributes": {
                    "name": "polygon",
                    "all_points_x": [1, 20, 20],
                    "all_points_y": [1, 1, 20],
                },
                "region_attributes": {"damage": "dent"},
            }
        ],
        "file_attributes": {},
    }
}


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("VIASEG_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_state_dir_from_env(state):
    assert journal.state_dir() == state
    assert journal.recovery_path("/x/y.json").parent == state / "recovery"
    assert journal.recovery_path("/x/y.json") != journal.recovery_path("/x/z.json")


def test_journal_restores_unsaved_edits_after_crash(state, tmp_path):
    src = tmp_path / "proj" / "via.json"
    src.parent.mkdir()
    src.write_text(json.dumps(VIA2))
    project = load_via(src)
    reg = project.images[0].regions[0]
    edits.move_vertex(reg, 1, 33, 44).do()
    edits.SetRegionAttribute(reg, "damage", "scratch").do()
    assert journal.find_recovery(src) is None
    written = journal.write_recovery(src, [project])
    assert written.is_file() and written.parent == state / "recovery"
    del project  # "crash": only the original file and the journal remain

    rec = journal.find_recovery(src)
    assert rec is not None and "via.json" in rec.describe()
    restored = rec.files[0].load()
    assert restored.path == src.resolve()
    r = restored.images[0].regions[0]
    assert r.shape["all_points_x"] == [1, 33, 20] and r.shape["all_points_y"] == [1, 44, 20]
    assert r.attributes == {"damage": "scratch"}
    assert restored.fmt == "via2"
    # the original file was never touched by journaling
    assert json.loads(src.read_text()) == VIA2

    assert journal.discard_recovery(src) is True
    assert journal.find_recovery(src) is None
    assert journal.discard_recovery(src) is False


def test_corrupt_journal_is_a_typed_error(state, tmp_path):
    src = tmp_path / "v.json"
    path = journal.recovery_path(src)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ViaFormatError, match="recovery"):
        journal.find_recovery(src)
