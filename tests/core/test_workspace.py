"""The open document without Qt: callbacks in order, undo to clean, first edit of an unlabeled folder, save,
and snapshots that later edits do not reach."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from viaseg.core.annotation import edits
from viaseg.core.annotation.project import Region
from viaseg.core.annotation.workspace import Workspace


def _photo(path: Path) -> None:
    cv2.imwrite(str(path), np.full((20, 30, 3), 90, np.uint8))


def _via(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _photo(folder / "a.png")
    size = (folder / "a.png").stat().st_size
    region = {
        "shape_attributes": {"name": "rect", "x": 2, "y": 3, "width": 5, "height": 4},
        "region_attributes": {"name": "damage"},
    }
    data = {f"a.png{size}": {"filename": "a.png", "size": size, "regions": [region], "file_attributes": {}}}
    path = folder / "via_region_data.json"
    path.write_text(json.dumps(data))
    return path


def _recording() -> tuple[Workspace, list]:
    ws = Workspace()
    calls: list = []
    ws.on_opened = lambda: calls.append("opened")
    ws.on_changed = lambda e: calls.append(("changed", e.filename if e is not None else None))
    ws.on_dirty_changed = lambda d: calls.append(("dirty", d))
    ws.on_rows_changed = lambda: calls.append("rows")
    return ws, calls


def test_workspace_needs_no_qt():
    import subprocess

    code = (
        "import sys; import viaseg.core.annotation.workspace as w; w.Workspace(); "
        "sys.exit(1 if any(m.split('.')[0] in ('PySide6', 'shiboken6', 'tensorflow') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_edit_undo_save_report_through_callbacks(tmp_path):
    via = _via(tmp_path / "p")
    ws, calls = _recording()
    ws.open(via)
    assert calls == ["opened", ("dirty", False)]
    entry = ws.rows[0].entry
    calls.clear()
    ws.push(edits.DeleteRegions(entry, [entry.regions[0]]))
    assert calls == [("changed", "a.png"), ("dirty", True)] and entry.regions == [] and ws.is_dirty()
    assert "*" in ws.display_title()
    calls.clear()
    ws.undo()
    assert calls == [("changed", "a.png"), ("dirty", False)] and len(entry.regions) == 1
    ws.redo()
    assert ws.is_dirty()
    assert ws.save() == [] and not ws.is_dirty()
    saved = json.loads(via.read_text())
    assert next(iter(saved.values()))["regions"] == []
    assert (via.parent / "via_region_data.json.bak").exists()  # the first overwrite keeps the original


def test_first_edit_of_an_unlabeled_folder_gives_it_a_via_file_and_undo_takes_it_away(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "b.png")
    ws, calls = _recording()
    ws.open(folder)
    sp = next(iter(ws.dataset.splits.values()))
    assert sp.project is None
    entry = ws.rows[0].entry
    region = Region({"name": "rect", "x": 1, "y": 1, "width": 4, "height": 4}, {})
    calls.clear()
    ws.push(edits.AddRegions(entry, [region]))
    assert sp.project is not None and calls[0] == "rows"  # the split became labeled: rows re-indexed first
    ws.undo()
    assert sp.project is None and not ws.is_dirty()
    ws.redo()
    assert ws.save() == []
    assert (folder / "via_region_data.json").exists()


def test_a_snapshot_is_not_reached_by_later_edits(tmp_path):
    ws, _ = _recording()
    ws.open(_via(tmp_path / "p"))
    entry = ws.rows[0].entry
    snap = ws.snapshot()
    copy_entry = next(iter(snap.splits.values())).entries[0]
    assert copy_entry is not entry and copy_entry.regions[0].shape == entry.regions[0].shape
    entry.regions[0].shape["width"] = 9  # edits change shapes in place
    ws.push(edits.DeleteRegions(entry, [entry.regions[0]]))
    assert len(copy_entry.regions) == 1 and copy_entry.regions[0].shape["width"] == 5
    sp = next(iter(snap.splits.values()))
    assert sp.project.images[0] is copy_entry  # the project and the split list the same copied entry
    assert Workspace().snapshot() is None
