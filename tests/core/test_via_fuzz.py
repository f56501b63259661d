"""Property-based: whatever bytes come in, the VIA reader returns a project or raises ViaFormatError — never
another exception, never a hang — and whatever it accepts, the writer writes back as the same JSON value."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from viaseg.core.annotation.formats.via_common import decode_text
from viaseg.core.annotation.formats.via_io import dumps_via, loads_via
from viaseg.core.base.errors import ViaFormatError

SHARED = Path(os.environ.get("VIASEG_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
FIXTURES = SHARED / "via-fixtures"  # same places as the conftest fixtures (collected at import time here)
CAR_DAMAGE = SHARED / "datasets" / "car-damage"
CAR_DAMAGE_EXTRA = SHARED / "datasets" / "car-damage-extra"
SMALL_LIMIT = 100_000  # bigger files are fuzzed by type swaps only (a byte mutation re-parses the whole file)


def _corpus() -> dict[str, bytes]:
    files: list[Path] = []
    if FIXTURES.exists():
        files += sorted(FIXTURES.glob("*.json")) + sorted(FIXTURES.glob("*.csv"))
        files += sorted((FIXTURES / "extracted").glob("*"))
    for p in (
        CAR_DAMAGE / "train" / "via_region_data.json",
        CAR_DAMAGE / "val" / "via_region_data.json",
        CAR_DAMAGE_EXTRA / "via_region_data.json",
    ):
        if p.exists():
            files.append(p)
    return {p.name: p.read_bytes() for p in files}


CORPUS = _corpus()
SMALL = sorted(k for k, v in CORPUS.items() if len(v) <= SMALL_LIMIT)
JSON_FILES = sorted(k for k in CORPUS if k.endswith(".json"))
pytestmark = pytest.mark.skipif(not CORPUS, reason=f"shared data not available: {FIXTURES} is missing")

SCALE = int(os.environ.get("VIASEG_FUZZ_SCALE", "1"))  # e.g. 20 for a long hunt; 1 keeps the suite ~10 s
FUZZ = settings(
    max_examples=150 * SCALE, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def check(data: bytes | str, name: str) -> None:
    """The property: typed error, or a project whose save is the same JSON value (and reloads)."""
    try:
        project = loads_via(data, path=f"/fuzz/{name}")
    except ViaFormatError as exc:
        event("rejected")
        assert exc.path == f"/fuzz/{name}"
        assert str(exc).startswith(f"/fuzz/{name}: ")
        return
    event(f"accepted as {project.fmt}")
    snapshot = _snapshot(project)
    out = dumps_via(project)
    again = loads_via(out, path=f"/fuzz/{name}", fmt=project.fmt)
    assert len(again.images) == len(project.images)
    assert [[r.shape for r in im.regions] for im in again.images] == [
        [r.shape for r in im.regions] for im in project.images
    ]
    if project.fmt != "csv":
        text = decode_text(data, name)
        assert json.loads(out) == json.loads(text)
    for fmt in ("via2", "via2-project", "via3", "csv"):  # conversions never crash on accepted input
        try:
            converted = dumps_via(project, fmt)
        except ValueError as exc:  # e.g. an unknown shape VIA3 cannot hold
            assert fmt == "via3" and "VIA 3 has no shape" in str(exc)
            continue
        loads_via(converted, path="/fuzz/converted", fmt=fmt)
    assert _snapshot(project) == snapshot  # writers never mutate the project
    _checks_and_coco_accept(project)
    assert _snapshot(project) == snapshot  # nor do the checks and the COCO export


def _checks_and_coco_accept(project) -> None:
    """What the reader accepts, the dataset checks and the COCO export take without an exception (the checks
    report bad shapes as problems; the export skips them with a reason)."""
    from viaseg.core.annotation.formats.convert import to_coco
    from viaseg.core.checks.checks import check_entry

    for im in project.images[:50]:
        for p in check_entry("train", im, image_size=(640, 480)):
            assert p.message
    to_coco(project, size_of=lambda im: (640, 480))


def _snapshot(project) -> str:
    return json.dumps(
        [
            project.raw,
            project.attributes,
            [
                (
                    im.key,
                    im.filename,
                    im.size,
                    im.file_attributes,
                    [(r.shape, r.attributes, r.raw) for r in im.regions],
                )
                for im in project.images
            ],
        ]
    )


@st.composite
def byte_mutations(draw):
    name = draw(st.sampled_from(SMALL))
    data = bytearray(CORPUS[name])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup", "digit", "digit"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(
                st.sampled_from(
                    [
                        b"[",
                        b"{",
                        b'"',
                        b",",
                        b"NaN",
                        b"1e999",
                        b"-",
                        b"\\u",
                        b"\x00",
                        b"9" * 40,
                        b"\xff",
                        b"\r\n",
                        b"]",
                        b"}",
                    ]
                )
                | st.binary(max_size=8)
            )
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[i:]
        elif op == "digit":  # keeps the JSON valid more often: reaches the shape and attribute checks
            digits = [k for k in range(i, min(len(data), i + 400)) if 48 <= data[k] <= 57]
            if digits:
                data[draw(st.sampled_from(digits))] = draw(st.sampled_from(b"0123456789.-eE"))
        elif op == "dup":
            j = draw(st.integers(i, min(len(data), i + 200)))
            data[j:j] = data[i:j]
    return name, bytes(data)


@settings(FUZZ, max_examples=400 * SCALE)
@given(byte_mutations())
def test_byte_mutations(case):
    check(case[1], case[0])


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "",
            "12",
            "polygon",
            "rect",
            "circle",
            "ellipse",
            "point",
            "polyline",
            "undefined",
            "\ud800",
            "0",
            "-1",
        ]
    ),
    st.text(max_size=5),
    st.just([]),
    st.just({}),
    st.just([1, "2", None]),
    st.just({"name": "polygon"}),
    st.just([[[[[[[[[[[[]]]]]]]]]]]]),
    st.just({"all_points_x": [1, 2], "all_points_y": [1]}),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just("__HUGE__"),
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


PARSED = {k: json.loads(decode_text(CORPUS[k], k)) for k in JSON_FILES}
PATHS = {k: [p for p in _paths(v) if len(p) <= 8][:5000] for k, v in PARSED.items()}


def _set(tree, path, value):
    if not path:
        return value
    node = tree
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return tree


@st.composite
def tree_mutations(draw):
    name = draw(st.sampled_from(JSON_FILES))
    tree = json.loads(json.dumps(PARSED[name]))  # fresh copy
    for _ in range(draw(st.integers(1, 3))):
        paths = PATHS[name]
        path = draw(st.sampled_from(paths))
        try:
            tree = _set(tree, path, copy.deepcopy(draw(JUNK)))
        except (KeyError, IndexError, TypeError):  # an earlier swap removed the way there
            continue
    text = json.dumps(tree, ensure_ascii=False)  # NaN/Infinity written as VIA never would
    return name, text.replace('"__HUGE__"', "9" * 5000)  # an int beyond Python's str->int limit


@FUZZ
@given(tree_mutations())
def test_type_swaps(case):
    check(case[1], case[0])


@settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.text(max_size=300), st.sampled_from(["x.json", "x.csv"]))
def test_arbitrary_text(text, name):
    check(text, name)
    check(
        "filename,file_size,file_attributes,region_count,region_id,region_shape_attributes,"
        "region_attributes\n" + text,
        name,
    )
