"""Applying a label check's suggestion: extra areas become regions, missed areas delete or clip the annotation;
each is one undo step that restores the very regions; a suggestion that no longer fits is refused."""

from __future__ import annotations

import numpy as np
import pytest
from viaseg.core.annotation.edits import EditError, History
from viaseg.core.annotation.project import ImageEntry, Region
from viaseg.core.annotation.raster import rasterize
from viaseg.core.checks.label_fix import fix_command

SIZE = (100, 80)


def poly(x0, y0, x1, y1, attrs=None) -> Region:
    return Region(
        {"name": "polygon", "all_points_x": [x0, x1, x1, x0], "all_points_y": [y0, y0, y1, y1]},
        dict(attrs or {"damage": "dent"}),
    )


def area(kind, x0, y0, x1, y1) -> dict:
    return {
        "kind": kind,
        "area": (x1 - x0) * (y1 - y0),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
    }


def mask(regions) -> np.ndarray:
    return rasterize(regions, SIZE) > 0


def state(entry):
    return [(id(r), repr(r.shape), repr(r.attributes)) for r in entry.regions]


def test_extra_adds_the_outline_as_a_region_with_the_attributes_in_one_undo_step():
    keep = poly(5, 5, 20, 20)
    e = ImageEntry(key="a", filename="a.png", regions=[keep])
    before = state(e)
    h = History()
    cmd = h.push(fix_command(e, area("extra", 50, 30, 80, 60), SIZE, {"damage": "scratch"}))
    assert len(e.regions) == 2 and e.regions[0] is keep and cmd.done
    new = e.regions[1]
    assert new.kind == "polygon" and new.attributes == {"damage": "scratch"}
    assert (mask([new]) ^ mask([poly(50, 30, 80, 60)])).sum() == 0
    h.undo()
    assert state(e) == before and not cmd.done
    assert len(h) == 1  # one step


def test_missed_over_a_whole_region_deletes_that_region_only():
    wrong, right = poly(10, 10, 30, 30), poly(50, 20, 90, 70)
    e = ImageEntry(key="a", filename="a.png", regions=[wrong, right])
    before = state(e)
    h = History()
    h.push(fix_command(e, area("missed", 9, 9, 31, 31), SIZE))
    assert e.regions == [right] and e.regions[0] is right
    h.undo()
    assert state(e) == before


def test_missed_over_part_of_a_region_clips_it_keeping_its_attributes():
    r = poly(10, 10, 70, 50, {"damage": "rust"})
    other = poly(80, 60, 95, 75)
    e = ImageEntry(key="a", filename="a.png", regions=[r, other])
    before = state(e)
    h = History()
    cmd = h.push(fix_command(e, area("missed", 40, 0, 99, 55), SIZE))
    assert "clip" in cmd.text
    assert e.regions[-1] is other and r not in e.regions
    (clipped,) = e.regions[:-1]
    assert clipped.attributes == {"damage": "rust"} and clipped.attributes is not r.attributes
    want = mask([r]) & ~mask([poly(40, 0, 99, 55)])
    got = mask([clipped])
    assert (got ^ want).sum() <= 0.05 * want.sum()  # traced again: the outline within a pixel
    assert not (got & mask([poly(41, 0, 99, 55)])).any()  # nothing left inside the area
    h.undo()
    assert state(e) == before


def test_a_missed_band_through_a_region_splits_it_in_two():
    e = ImageEntry(key="a", filename="a.png", regions=[poly(10, 10, 90, 40)])
    fix = fix_command(e, area("missed", 40, 0, 60, 79), SIZE)
    fix.do()
    assert len(e.regions) == 2 and all(r.attributes == {"damage": "dent"} for r in e.regions)
    fix.undo()
    assert len(e.regions) == 1


def test_a_suggestion_that_no_longer_fits_is_refused():
    e = ImageEntry(key="a", filename="a.png", regions=[poly(10, 10, 30, 30)])
    with pytest.raises(EditError, match="no region there"):
        fix_command(e, area("missed", 60, 40, 80, 60), SIZE)  # the region was deleted since
    with pytest.raises(EditError, match="annotated already"):
        fix_command(e, area("extra", 10, 10, 30, 30), SIZE)  # someone annotated it since
    with pytest.raises(EditError):
        fix_command(e, {"kind": "extra", "polygon": [[1, 1]]}, SIZE)
    with pytest.raises(EditError):
        fix_command(e, area("odd", 1, 1, 5, 5), SIZE)
