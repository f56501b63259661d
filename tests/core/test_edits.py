"""Pure editing logic: commands do/undo, int preservation, history merge/clean tracking (no Qt)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from viaseg.core.annotation import edits
from viaseg.core.annotation.edits import EditError, History
from viaseg.core.annotation.project import ImageEntry, Region


def poly(xs, ys, **attrs) -> Region:
    return Region(
        shape={"name": "polygon", "all_points_x": list(xs), "all_points_y": list(ys)}, attributes=attrs
    )


def entry(*regions) -> ImageEntry:
    return ImageEntry(key="a.jpg1", filename="a.jpg", regions=list(regions))


def test_move_vertex_rounds_int_shapes_and_undo_restores():
    r = poly([0, 10, 10], [0, 0, 10])
    before = copy.deepcopy(r.shape)
    cmd = edits.move_vertex(r, 1, 12.4, 3.6)
    cmd.do()
    assert r.shape["all_points_x"] == [0, 12, 10]
    assert r.shape["all_points_y"] == [0, 4, 10]
    assert all(type(v) is int for v in r.shape["all_points_x"] + r.shape["all_points_y"])
    cmd.undo()
    assert r.shape == before


def test_move_vertex_keeps_floats_when_shape_has_floats():
    r = poly([0.5, 10, 10], [0, 0, 10])
    edits.move_vertex(r, 2, 7.25, 8.75).do()
    assert r.shape["all_points_x"][2] == 7.25 and r.shape["all_points_y"][2] == 8.75


def test_shape_dict_identity_and_unknown_keys_survive():
    r = poly([0, 10, 10], [0, 0, 10])
    r.shape["extra"] = "keep"
    shape_obj = r.shape
    edits.move_vertex(r, 0, 1, 1).do()
    assert r.shape is shape_obj and r.shape["extra"] == "keep"
    assert list(r.shape) == ["name", "all_points_x", "all_points_y", "extra"]


def test_closing_duplicate_follows_vertex_zero():
    r = poly([0, 10, 10, 0], [0, 0, 10, 0])  # VIA1 style: first vertex repeated at the end
    assert edits.logical_points(r.shape) == [(0, 0), (10, 0), (10, 10)]
    edits.move_vertex(r, 0, 2, 3).do()
    assert r.shape["all_points_x"] == [2, 10, 10, 2] and r.shape["all_points_y"] == [3, 0, 10, 3]
    edits.insert_vertex(r, 3, 1, 8).do()
    assert r.shape["all_points_x"] == [2, 10, 10, 1, 2]


def test_insert_and_delete_vertex():
    r = poly([0, 10, 10], [0, 0, 10])
    ins = edits.insert_vertex(r, 3, 0, 10)
    ins.do()
    assert edits.logical_points(r.shape) == [(0, 0), (10, 0), (10, 10), (0, 10)]
    dele = edits.delete_vertex(r, 1)
    dele.do()
    assert edits.logical_points(r.shape) == [(0, 0), (10, 10), (0, 10)]
    with pytest.raises(EditError, match="at least 3"):
        edits.delete_vertex(r, 0)
    dele.undo()
    ins.undo()
    assert edits.logical_points(r.shape) == [(0, 0), (10, 0), (10, 10)]


def test_vertex_edit_on_rect_is_refused():
    r = Region(shape={"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4})
    with pytest.raises(EditError):
        edits.move_vertex(r, 0, 1, 1)


def test_move_region_all_shapes():
    p = poly([0, 10, 10], [0, 0, 10])
    rect = Region(shape={"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4})
    circ = Region(shape={"name": "circle", "cx": 5.5, "cy": 5, "r": 2})
    for reg in (p, rect, circ):
        edits.move_region(reg, 2.6, -1).do()
    assert p.shape["all_points_x"] == [3, 13, 13] and p.shape["all_points_y"] == [-1, -1, 9]
    assert (rect.shape["x"], rect.shape["y"], rect.shape["width"]) == (4, 1, 3)
    assert circ.shape["cx"] == pytest.approx(8.1) and circ.shape["cy"] == 4


def test_resize_rect_circle_ellipse():
    rect = Region(shape={"name": "rect", "x": 10, "y": 10, "width": 20, "height": 10})
    edits.resize_shape(rect, "br", 40.2, 35).do()
    assert rect.shape == {"name": "rect", "x": 10, "y": 10, "width": 30, "height": 25}
    edits.resize_shape(rect, "tl", 50, 50).do()  # dragged past the opposite corner: normalised
    assert rect.shape["x"] == 40 and rect.shape["width"] == 10 and rect.shape["y"] == 35
    circ = Region(shape={"name": "circle", "cx": 0, "cy": 0, "r": 2})
    edits.resize_shape(circ, "r", 3, 4).do()
    assert circ.shape["r"] == 5
    ell = Region(shape={"name": "ellipse", "cx": 0.0, "cy": 0.0, "rx": 2.0, "ry": 1.0})
    names = [h[0] for h in edits.handles(ell.shape)]
    assert names == ["rx", "ry"]
    edits.resize_shape(ell, "ry", 0, 7.5).do()
    assert ell.shape["ry"] == 7.5 and ell.shape["rx"] == 2.0
    with pytest.raises(EditError):
        edits.resize_shape(ell, "tl", 0, 0)


def test_add_delete_regions_restore_order():
    a, b, c = poly([0, 1, 1], [0, 0, 1]), poly([5, 6, 6], [0, 0, 1]), poly([9, 8, 8], [0, 0, 1])
    e = entry(a, b, c)
    d = edits.DeleteRegions(e, [a, c])
    d.do()
    assert e.regions == [b]
    d.undo()
    assert e.regions == [a, b, c]
    new = poly([1, 2, 2], [1, 1, 2])
    add = edits.AddRegions(e, [new], index=1)
    add.do()
    assert e.regions == [a, new, b, c]
    add.undo()
    assert e.regions == [a, b, c]
    with pytest.raises(EditError):
        edits.DeleteRegions(e, [new])


def test_set_attributes_and_removal():
    r = poly([0, 1, 1], [0, 0, 1], damage="dent")
    e = entry(r)
    c1 = edits.SetRegionAttribute(r, "damage", "scratch", entry=e)
    c1.do()
    assert r.attributes == {"damage": "scratch"}
    c2 = edits.SetRegionAttribute(r, "new", {"a": True})
    c2.do()
    c2.undo()
    assert "new" not in r.attributes
    c1.undo()
    assert r.attributes == {"damage": "dent"}
    f = edits.SetFileAttribute(e, "weather", "rain")
    f.do()
    assert e.file_attributes == {"weather": "rain"}
    f.undo()
    assert e.file_attributes == {}


def test_history_merges_a_drag_into_one_step():
    r = poly([0, 10, 10], [0, 0, 10])
    e = entry(r)
    h = History()
    for x in range(1, 6):
        h.push(edits.move_vertex(r, 0, x, x, entry=e, merge_key=("drag", 1)))
    h.end_drag()
    h.push(edits.move_vertex(r, 0, 20, 20, entry=e, merge_key=("drag", 1)))  # same key, new drag
    assert len(h) == 2
    assert h.undo().entry is e
    assert edits.logical_points(r.shape)[0] == (5, 5)
    h.undo()
    assert edits.logical_points(r.shape)[0] == (0, 0)
    assert h.undo() is None
    h.redo()
    h.redo()
    assert edits.logical_points(r.shape)[0] == (20, 20)
    assert h.redo() is None


def test_history_clean_tracking_and_dirty_entries_across_images():
    r1, r2 = poly([0, 10, 10], [0, 0, 10]), poly([0, 10, 10], [0, 0, 10])
    e1, e2 = entry(r1), ImageEntry(key="b", filename="b.jpg", regions=[r2])
    h = History()
    assert h.is_clean()
    h.push(edits.move_vertex(r1, 0, 1, 1, entry=e1))
    h.push(edits.move_vertex(r2, 0, 1, 1, entry=e2))
    assert not h.is_clean()
    assert {id(x) for x in h.dirty_entries()} == {id(e1), id(e2)}
    h.set_clean()
    assert h.is_clean() and h.dirty_entries() == []
    h.undo()  # undo past the save point: dirty again, only e2
    assert not h.is_clean() and h.dirty_entries() == [e2]
    h.redo()
    assert h.is_clean()
    h.undo()
    h.push(edits.move_vertex(r1, 1, 3, 3, entry=e1))  # new branch: saved state no longer reachable
    assert not h.is_clean()
    assert {id(x) for x in h.dirty_entries()} == {id(e1), id(e2)}
    h.undo()
    assert not h.is_clean()  # content equals the save, but the history cannot know the branch is gone
    assert e2 in h.dirty_entries()


def test_merge_does_not_swallow_the_saved_step():
    r = poly([0, 10, 10], [0, 0, 10])
    h = History()
    h.push(edits.move_vertex(r, 0, 1, 1, merge_key="k"))
    h.set_clean()
    h.push(edits.move_vertex(r, 0, 2, 2, merge_key="k"))
    assert not h.is_clean()
    h.undo()
    assert h.is_clean() and edits.logical_points(r.shape)[0] == (1, 1)


def _snapshot(e: ImageEntry):
    return copy.deepcopy([(r.shape, r.attributes) for r in e.regions]), copy.deepcopy(e.file_attributes)


def test_random_edit_sequences_undo_to_every_earlier_state():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(
        st.tuples(
            st.sampled_from(["move", "insert", "delete_v", "add", "del_r", "attr", "undo", "redo", "drag"]),
            st.integers(0, 50),
            st.integers(-5, 60),
            st.integers(-5, 60),
        ),
        max_size=40,
    )

    @settings(max_examples=60, deadline=None)
    @given(ops)
    def run(seq):
        e = entry(poly([0, 10, 10, 0], [0, 0, 10, 10], c="a"), poly([20, 30, 30], [20, 20, 30]))
        h = History()
        states = [_snapshot(e)]  # states[i] = content after i applied commands
        for op, i, x, y in seq:
            regs = e.regions
            try:
                if op == "undo":
                    if h.undo() is not None:
                        assert _snapshot(e) == states[h.index]
                    continue
                if op == "redo":
                    if h.redo() is not None:
                        assert _snapshot(e) == states[h.index]
                    continue
                if not regs and op != "add":
                    continue
                r = regs[i % len(regs)] if regs else None
                n = len(edits.logical_points(r.shape)) if r else 0
                if op == "move":
                    cmd = edits.move_vertex(r, i % n, x, y, entry=e)
                elif op == "drag":
                    for k in range(3):
                        h.push(edits.move_vertex(r, i % n, x + k, y, entry=e, merge_key=("d", i)))
                    h.end_drag()
                    del states[h.index :]
                    states.append(_snapshot(e))
                    continue
                elif op == "insert":
                    cmd = edits.insert_vertex(r, i % (n + 1), x, y, entry=e)
                elif op == "delete_v":
                    cmd = edits.delete_vertex(r, i % n, entry=e)
                elif op == "add":
                    cmd = edits.AddRegions(e, [poly([x, x + 5, x], [y, y, y + 5])])
                elif op == "del_r":
                    cmd = edits.DeleteRegions(e, [r])
                else:
                    cmd = edits.SetRegionAttribute(r, "c", str(x), entry=e)
            except EditError:
                continue
            h.push(cmd)
            del states[h.index :]  # states[:index] still describe the history; redo branch is gone
            states.append(_snapshot(e))
            assert len(states) == h.index + 1
        while h.undo() is not None:
            assert _snapshot(e) == states[h.index]
        assert _snapshot(e) == states[0] and h.is_clean()

    run()


def test_remove_and_add_image_keep_both_lists_of_a_split_in_step():
    a, b, c = (ImageEntry(key=n, filename=n, size=1) for n in ("a", "b", "c"))
    split_entries, project_images = [a, b, c], [a, b, c]
    h = edits.History()
    h.push(edits.RemoveImage(b, [split_entries, project_images, split_entries]))  # a list named twice: once
    assert split_entries == [a, c] and project_images == [a, c]
    h.undo()
    assert split_entries == [a, b, c] and project_images == [a, b, c]  # back where it was
    shared = [a, b]  # a split whose entries are its project's images (one list)
    h.push(edits.AddImage(c, [shared, shared]))
    assert shared == [a, b, c]
    h.undo()
    assert shared == [a, b]
    assert edits.RemoveImage.changes_images and not edits.AddRegions.changes_images
    with pytest.raises(edits.EditError, match="c is not an image"):
        edits.RemoveImage(c, [shared])


def _imported(tmp_path, content: bytes):
    """A photo outside the split, imported into an empty split folder: (source, folder, entry, images, history)."""
    src = tmp_path / "outside" / "p.jpg"
    src.parent.mkdir(parents=True)
    src.write_bytes(content)
    folder = tmp_path / "split"
    folder.mkdir()
    e = ImageEntry(key=f"p.jpg{len(content)}", filename="p.jpg", size=len(content), base_dir=folder)
    images: list = []
    h = edits.History()
    h.push(edits.ImportImage(e, [images], src))
    return src, folder, e, images, h


def test_import_image_copies_the_photo_in_and_its_undo_takes_the_copy_out(tmp_path):
    src, folder, e, images, h = _imported(tmp_path, b"photo bytes")
    assert images == [e] and (folder / "p.jpg").read_bytes() == b"photo bytes"
    h.undo()
    assert images == [] and list(folder.iterdir()) == []  # the folder is as it was before the import
    assert len(list(edits.aside_root.iterdir())) == 1  # the copy waits in one private folder
    src.unlink()  # redo does not need the source any more: the undone copy was kept aside
    h.redo()
    assert images == [e] and (folder / "p.jpg").read_bytes() == b"photo bytes"
    assert list(edits.aside_root.iterdir()) == []  # redo took the copy back and left no empty folder behind
    # a copy changed on disk after the import is the user's file now: undo leaves it where it is
    (folder / "p.jpg").write_bytes(b"edited by hand")
    h.undo()
    assert images == [] and (folder / "p.jpg").read_bytes() == b"edited by hand"


def test_an_import_saved_into_the_via_file_keeps_its_photo_when_undone(tmp_path):
    """Import, Save, Undo, then Discard: the undo moved the copy aside and the discard dropped it, so the saved
    VIA file named a photo that was gone. Once saved, an undo takes the image out of the split and leaves the
    photo in the folder (as removing an image does); redo puts it back."""
    _src, folder, e, images, h = _imported(tmp_path, b"photo bytes")
    h.set_clean()  # what a save does
    h.undo()
    assert images == [] and (folder / "p.jpg").read_bytes() == b"photo bytes"
    h.clear()  # the app closed with Discard: every command discarded
    assert (folder / "p.jpg").read_bytes() == b"photo bytes"
    _src, folder2, e2, images2, h2 = _imported(tmp_path / "again", b"more bytes")
    h2.set_clean()
    h2.undo()
    h2.redo()
    assert images2 == [e2] and (folder2 / "p.jpg").read_bytes() == b"more bytes"


def test_import_image_refuses_to_overwrite_and_names_the_file(tmp_path):
    _src, folder, _e, images, h = _imported(tmp_path, b"new")
    h.undo()
    (folder / "p.jpg").write_bytes(b"someone else's photo")  # the name was taken while the import was undone
    with pytest.raises(EditError, match="p.jpg already exists"):
        h.redo()
    assert images == [] and (folder / "p.jpg").read_bytes() == b"someone else's photo" and h.can_redo()
    missing = ImageEntry(key="q.jpg1", filename="q.jpg", size=1, base_dir=folder)
    with pytest.raises(EditError, match="cannot copy .*q.jpg into"):
        h.push(edits.ImportImage(missing, [images], tmp_path / "q.jpg"))
    assert images == [] and not (folder / "q.jpg").exists()


def test_an_undone_import_that_can_no_longer_be_redone_releases_its_copy(tmp_path):
    _src, folder, e, images, h = _imported(tmp_path, b"photo")
    h.undo()
    aside = h._stack[0]._aside
    assert aside is not None and aside.read_bytes() == b"photo" and not (folder / "p.jpg").exists()
    h.push(
        edits.AddImage(ImageEntry(key="q", filename="q.jpg"), [images])
    )  # a new edit drops the redo branch
    assert not aside.exists() and not aside.parent.exists()
    _src2, _folder2, _e2, _images2, h2 = _imported(tmp_path / "two", b"photo")
    h2.undo()
    aside2 = h2._stack[0]._aside
    h2.clear()  # a closed or reopened project
    assert not aside2.parent.exists()


def test_sweep_deletes_the_copies_of_undone_imports_whose_process_is_gone(tmp_path):
    _src, _folder, _e, _images, h = _imported(tmp_path, b"photo")
    h.undo()
    mine = h._stack[0]._aside.parent
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # a process id that no longer runs: an app killed while its import was undone
    orphan = edits.aside_root / f"{edits.UNDONE_IMPORT_PREFIX}{finished.pid}-x1y2"
    orphan.mkdir()
    (orphan / "p.jpg").write_bytes(b"left behind")
    unrelated = edits.aside_root / f"{edits.UNDONE_IMPORT_PREFIX}no-pid"  # not a name viaseg makes
    unrelated.mkdir()
    assert edits.sweep_undone_imports() == [orphan]
    assert not orphan.exists() and mine.exists() and unrelated.exists()
    h.redo()  # this process's undone import is still redoable
    assert (tmp_path / "split" / "p.jpg").read_bytes() == b"photo"


def test_define_attribute_reaches_via2_project_and_via3_files_and_undo_restores(via_fixtures):
    from viaseg.core.annotation.formats.via_io import dumps_via, load_via, loads_via
    from viaseg.core.annotation.project import Project

    v3 = load_via(via_fixtures / "extracted" / "via3_debug_project_4.json")
    v2 = Project(images=[entry(poly([0, 10, 10], [0, 0, 10]))], fmt="via2-project")
    before = [dumps_via(p) for p in (v3, v2)]
    target = v2.images[0].regions[0].attributes
    cmd = edits.DefineAttribute(
        [v3, v2],
        "region",
        "severity",
        "dropdown",
        ["minor", " major", "minor"],
        target=target,
        entry=v2.images[0],
    )
    cmd.do()
    assert target == {"severity": ""} and v2.images[0] in cmd.entries()
    for p in (v3, v2):
        d = loads_via(dumps_via(p)).attributes["region"]["severity"]
        assert d["type"] == "dropdown" and list(d["options"]) == ["minor", "major"]
    cmd.undo()
    assert [dumps_via(p) for p in (v3, v2)] == before and target == {}
    with pytest.raises(EditError, match="already"):
        edits.DefineAttribute([v3], "region", "name", "text")  # the file's own attribute
    with pytest.raises(EditError, match="option"):
        edits.DefineAttribute([v3], "region", "x", "checkbox", [" "])
    with pytest.raises(EditError, match="type"):
        edits.DefineAttribute([v3], "region", "x", "image", ["a"])
