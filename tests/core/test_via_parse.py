"""The fast JSON path (orjson) and the deferred polygon checks of the VIA reader give exactly what the reference
code gives: the stdlib parser (``parse_json_stdlib``) and ``check_number_list`` on each list in file order."""

from __future__ import annotations

import enum
import gc
import json
import os
import random
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_helpers import same_json
from viaseg.core.annotation.formats import via_common
from viaseg.core.annotation.formats.via_common import (
    FAST_MAX_DEPTH,
    decode_text,
    gc_paused,
    has_long_digit_run,
    nesting_depth,
    parse_json,
    parse_json_stdlib,
)
from viaseg.core.annotation.formats.via_io import dumps_via, load_via, loads_via
from viaseg.core.annotation.formats.via_values import check_number_list, first_bad_number_list
from viaseg.core.base.errors import ViaFormatError

SHARED = Path(os.environ.get("VIASEG_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
FIXTURES = SHARED / "via-fixtures"  # the places of the conftest fixtures
DATASETS = SHARED / "datasets"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def fast_value(text: str, raw: bytes | None = None):
    """The fast path's own answer (``None``: it passed the text on to the stdlib parser)."""
    value = via_common._parse_fast(text, raw)
    return None if value is via_common._NOT_FAST else value


def outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except ViaFormatError as exc:
        return "error", str(exc)


def assert_parsers_agree(text: str):
    """parse_json (with and without the raw bytes) and the stdlib parser: same value or same error."""
    ref = outcome(parse_json_stdlib, text, "/x.json")
    raw = None
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    for got in (outcome(parse_json, text, "/x.json"), outcome(parse_json, text, "/x.json", raw)):
        assert got[0] == ref[0], (text[:80], got, ref)
        if ref[0] == "ok":
            same_json(got[1], ref[1])
        else:
            assert got[1] == ref[1]
    return ref


# ------------------------------------------------------------------------------------- real files, both paths


def _json_files(root: Path) -> list[Path]:
    if not root.exists():
        pytest.skip(
            f"shared data not available: {root} is missing (tests read ../shared next to the checkout)"
        )
    files = sorted(root.rglob("*.json"))
    assert files, f"no JSON file under {root}"
    return files


def _compare_real_file(p: Path, monkeypatch):
    data = p.read_bytes()
    text = decode_text(data, p)
    raw = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    fast = fast_value(text, raw)
    assert fast is not None, f"{p}: the fast path gave up on a real file"
    ref = parse_json_stdlib(text, p)
    same_json(fast, ref)
    same_json(fast_value(text), ref)  # from the str alone (no bytes at hand)
    # the whole reader: same outcome with orjson as without it
    got = outcome(lambda: dumps_via(load_via(p)))
    with monkeypatch.context() as m:
        m.setattr(via_common, "orjson", None)
        want = outcome(lambda: dumps_via(load_via(p)))
    assert got == want, p


def test_fast_path_matches_stdlib_on_every_fixture(via_fixtures, monkeypatch):
    for p in _json_files(via_fixtures):
        _compare_real_file(p, monkeypatch)


def test_fast_path_matches_stdlib_on_every_dataset(monkeypatch):
    for p in _json_files(DATASETS):
        _compare_real_file(p, monkeypatch)


# ------------------------------------------------------------ what orjson accepts but must not decide alone


@pytest.mark.parametrize(
    "literal",
    [
        "123456789012345678901234567890",  # orjson: 1.2345678901234568e+29 (a float)
        "-9223372036854775809",
        "18446744073709551616",  # just outside 64 bits
        "1234567890123456789",  # 19 digits, inside: the stdlib decides anyway
        "9" * 400,  # beyond a double: orjson refuses it, the stdlib keeps the int
    ],
)
def test_integers_beyond_64_bits_stay_exact_ints(literal):
    text = (
        '{"a":{"filename":"a.jpg","size":'
        + literal
        + ',"regions":[],"file_attributes":{"n":'
        + literal
        + "}}}"
    )
    value = parse_json(text, "/x.json")
    assert type(value["a"]["size"]) is int and value["a"]["size"] == int(literal)
    assert_parsers_agree(text)
    proj = loads_via(text.encode(), "/x.json")  # and a save writes the very digits back
    assert proj.images[0].size == int(literal)
    assert json.loads(dumps_via(proj)) == json.loads(text)
    assert literal in dumps_via(proj)


def test_orjson_alone_would_turn_a_big_int_into_a_float():
    # why the digit-run check exists (if orjson ever keeps big ints exact, it can go)
    assert type(orjson.loads("123456789012345678901234567890")) is float
    assert fast_value('{"n":123456789012345678901234567890}') is None


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1E+400", "1.7976931348623159e308", "2e308"])
def test_numbers_overflowing_to_infinity_are_refused_as_before(literal, tmp_path):
    text = (
        '{"a":{"filename":"a","regions":[{"shape_attributes":{"name":"point","cx":' + literal + ',"cy":2}}]}}'
    )
    kind, msg = assert_parsers_agree(text)
    assert kind == "error" and f"number {literal} is too large" in msg
    p = tmp_path / "big.json"
    p.write_text(text)
    with pytest.raises(ViaFormatError, match="too large"):
        load_via(p)


@pytest.mark.parametrize(
    "text",
    [
        '["\\ud800"]',
        '["x\\udc00y"]',
        '["\\ud83d\\u0041"]',
        '["\\udc00\\ud800"]',  # lone surrogates: kept
        '["\\ud83d\\ude00"]',
        '["\\uD83D\\uDE00", "\\u00e9", "\\u0000", "\\/"]',  # pairs and escapes
        '{"a":1,"b":2,"a":3}',
        '{"b":1,"a":{"d":1,"c":2,"d":[3]}}',  # duplicate keys: last value, first place
        "[1, 1.0, -0, -0.0, 1E2, 1e-400, 0.1, 5e-324, 1.7976931348623157e308, 100000000000000000000.0]",
        "[true, false, null]",
        '"top"',
        "0",
        " \r\n\t[1]\n",
        "[NaN]",
        "[Infinity]",
        "[-Infinity]",  # refused
        "[1,]",
        '{"a":1,}',
        "[01]",
        "[.5]",
        "[1.]",
        '["\\x41"]',
        '["\\\'"]',
        '["\t"]',
        "\u00a0[1]",  # invalid
    ],
)
def test_edge_texts_parse_as_the_stdlib_parses_them(text):
    assert_parsers_agree(text)


def test_lone_surrogate_in_a_file_round_trips():
    text = '{"a":{"filename":"a.jpg","size":1,"regions":[],"file_attributes":{"note":"\\ud800 x"}}}'
    proj = loads_via(text.encode(), "/x.json")
    assert proj.images[0].file_attributes["note"] == "\ud800 x"
    out = dumps_via(proj)
    assert "\\ud800" in out and json.loads(out) == json.loads(text)


@pytest.mark.parametrize("depth", [FAST_MAX_DEPTH + 1, 600, 1010, 1024])
def test_nesting_orjson_accepts_but_the_stdlib_may_not_goes_to_the_stdlib(depth):
    deep = "[" * (depth - 5) + "]" * (depth - 5)  # under 5 levels: file, entry, regions, region, attributes
    text = (
        '{"a":{"filename":"a","size":1,"regions":[{"shape_attributes":{},"region_attributes":{"x":'
        + deep
        + '}}],"file_attributes":{}}}'
    )
    orjson.loads(text)  # orjson alone takes up to 1024 levels
    assert nesting_depth(text.encode()) == depth
    assert fast_value(text) is None and fast_value(text, text.encode()) is None
    kind, msg = assert_parsers_agree(text)
    try:
        json.loads(text)
    except RecursionError:  # beyond what the stdlib parser takes here (CPython 3.11: ~995 levels at most)
        assert kind == "error" and "nested too deeply" in msg
        with pytest.raises(ViaFormatError, match="nested too deeply"):
            loads_via(text.encode(), "/x.json")
    else:
        assert kind == "ok"


def test_nesting_up_to_the_limit_takes_the_fast_path():
    inner = FAST_MAX_DEPTH - 1
    text = '{"x":' + "[" * inner + "]" * inner + ', "s": "]]]]]]\\"]]"}'
    assert nesting_depth(text.encode()) == FAST_MAX_DEPTH
    assert fast_value(text) == json.loads(text)
    assert fast_value(text + " " * 300_000) == json.loads(text)  # big enough for the byte scans


def test_nesting_depth_ignores_brackets_in_strings():
    cases = {
        '"[[["': 0,
        "[]": 1,
        '{"a":[{"b":"]]]]"}]}': 3,
        '["\\\\", [[1]]]': 3,
        '["\\"[[", [1]]': 2,
        '{"\\\\\\"]]": [[[]]]}': 4,
        "[[],[[]],[]]": 3,
    }
    for text, depth in cases.items():
        assert nesting_depth(text.encode()) == depth, text
        assert nesting_depth(memoryview(b"x" + text.encode())[1:]) == depth


@pytest.mark.parametrize("size", [100, 300_000])
def test_long_digit_runs_are_found_at_every_alignment(size):
    base = bytearray(b'{"k":[' + b"1234567,-12," * (size // 12) + b"0]}")
    assert not has_long_digit_run(bytes(base))
    for run in (18, 19, 25):
        for pos in range(7, 7 + 17):  # every offset within an 8-byte word, and across word boundaries
            b = bytearray(base)
            b[pos - 1 : pos + run + 1] = b"," + b"9" * run + b","  # exactly `run` digits in a row
            assert has_long_digit_run(bytes(b)) == (run >= 19), (run, pos)
            assert has_long_digit_run(memoryview(bytes(b))) == (run >= 19)
    for tail in (0, 1, 3, 7):  # a run that ends at the very end, in the bytes after the last whole word
        b = bytes(base[: len(base) - tail]) + b"1" * 19
        assert has_long_digit_run(b)
        assert not has_long_digit_run(bytes(base[: len(base) - tail]) + b"1" * 18)


def test_random_floats_parse_to_the_same_double():
    rng = random.Random(7)
    values = [rng.uniform(-1e9, 1e9) for _ in range(2000)]
    values += [rng.random() * 10 ** rng.randint(-320, 300) for _ in range(2000)]
    texts = [repr(v) for v in values]
    texts += [
        f"{rng.randint(0, 10**17)}.{rng.randint(0, 10**17)}e{rng.randint(-340, 280)}" for _ in range(2000)
    ]
    texts += [f"{rng.randint(1, 9)}.{rng.randint(0, 10**16)}E+{rng.randint(0, 307)}" for _ in range(500)]
    texts += [
        "2.2250738585072011e-308",
        "2.2250738585072012e-308",
        "9007199254740993",
        "9007199254740993.0",
        "0.30000000000000004",
        "4.9406564584124654e-324",
        "2.4703282292062328e-324",
        "2.4703282292062327e-324",
        "1.7976931348623157e308",
        "123456789012345678",
    ]
    long_runs = [t for t in texts if re.search("[0-9]{19}", t)]  # e.g. 0.00046896559610083455: stdlib's
    text = "[" + ",".join(t for t in texts if t not in long_runs) + "]"
    assert fast_value(text) is not None  # orjson's own doubles, compared with float()'s
    assert_parsers_agree(text)
    assert 0 < len(long_runs) < 500
    assert_parsers_agree(
        "[1.00000000000000011102230246251565404236316680908203125," + ",".join(long_runs) + "]"
    )


JSONISH = st.lists(
    st.sampled_from(
        [
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            '"a"',
            '"b"',
            '""',
            '"\\ud800"',
            '"\\ud83d\\ude00"',
            '"\\u00e9"',
            '"\\""',
            '"\\\\"',
            " ",
            "\n",
            "0",
            "1",
            "-1",
            "1.0",
            "1e5",
            "1e999",
            "-0",
            "12345678901234567890",
            "true",
            "false",
            "null",
            "NaN",
            "Infinity",
            "1.5",
            "é",
            "\\",
            "\x00",
        ]
    ),
    max_size=40,
).map("".join)


@SETTINGS
@given(JSONISH)
def test_any_text_gives_the_stdlib_outcome(text):
    assert_parsers_agree(text)


@SETTINGS
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=6),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=3), kids, max_size=4),
        max_leaves=30,
    ),
    st.sampled_from([None, 1, "\t"]),
    st.booleans(),
)
def test_any_json_value_gives_the_stdlib_value(value, indent, ascii_only):
    assert_parsers_agree(json.dumps(value, indent=indent, ensure_ascii=ascii_only))


def test_without_orjson_the_stdlib_parser_is_used(monkeypatch):
    monkeypatch.setattr(via_common, "orjson", None)
    assert parse_json('{"n":1, "f":1.0}', None) == {"n": 1, "f": 1.0}
    with pytest.raises(ViaFormatError, match="NaN is not valid JSON"):
        parse_json("[NaN]", None)


# ------------------------------------------------------------------------ the deferred polygon number checks


class _Code(enum.IntEnum):
    A = 7


NUMBER_LISTS = [
    [],
    [1, 2, 3],
    [0, -1, 999_999_999, -999_999_999],
    [1_000_000_000, -1_000_000_000],
    [1_000_000_001],
    [-1_000_000_001],
    [1.5, 2],
    [1e9],
    [1e9 + 1],
    [True],
    [1, False],
    [None],
    ["1"],
    [[1]],
    [{}],
    [1, [2]],
    [2**64],
    [-(2**63) - 1],
    [10**30],
    [1e-300],
    [-0.0],
    [_Code.A],
    "12",
    None,
    {"a": 1},
    (1, 2),
]


def test_first_bad_number_list_agrees_with_check_number_list():
    def ok(v):
        try:
            check_number_list(v, "w", None)
        except ViaFormatError:
            return False
        return True

    rng = random.Random(3)
    for _ in range(3000):
        lists = [list(range(rng.randint(0, 5))) for _ in range(rng.randint(0, 6))]
        if rng.random() < 0.7:
            lists.insert(rng.randint(0, len(lists)), rng.choice(NUMBER_LISTS))
        if rng.random() < 0.3:
            lists.insert(rng.randint(0, len(lists)), rng.choice(NUMBER_LISTS))
        want = next((i for i, v in enumerate(lists) if not ok(v)), -1)
        assert first_bad_number_list(lists) == want, lists


def _project(regions: list, entries: int = 3) -> str:
    meta = {}
    for i in range(entries):
        meta[f"img{i}.jpg1"] = {
            "filename": f"img{i}.jpg",
            "size": 1,
            "regions": regions if i == 1 else [],
            "file_attributes": {},
        }
    return json.dumps(
        {"_via_settings": {}, "_via_img_metadata": meta, "_via_attributes": {"region": {}, "file": {}}}
    )


def _poly(xs, ys):
    return {
        "shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
        "region_attributes": {},
    }


@pytest.mark.parametrize(
    "bad,where,problem",
    [
        (
            _poly([1, 2, True], [1, 2, 3]),
            ".regions[2].shape_attributes.all_points_x",
            "expected a list of numbers",
        ),
        (_poly([1, 2, 3], [1, 2e12, 3]), ".regions[2].shape_attributes.all_points_y[1]", "out of range"),
        (
            _poly([1, 2, 3], [1, 2, "3"]),
            ".regions[2].shape_attributes.all_points_y",
            "expected a list of numbers",
        ),
        (
            _poly([1, 2], [1, 2, 3]),
            ".regions[2].shape_attributes",
            "all_points_x has 2 values but all_points_y has 3",
        ),
        (
            {
                "shape_attributes": {"name": "rect", "x": 1, "y": 2, "width": 3, "height": False},
                "region_attributes": {},
            },
            ".regions[2].shape_attributes.height",
            "expected a number, got false",
        ),
        (
            {"shape_attributes": {"name": "ellipse", "cx": 1, "cy": 2, "rx": 3, "ry": 4, "theta": "x"}},
            ".regions[2].shape_attributes.theta",
            'expected a number, got "x"',
        ),
        (
            {"shape_attributes": {"name": "polygon", "all_points_x": [1]}, "region_attributes": {}},
            ".regions[2].shape_attributes",
            "polygon without 'all_points_y'",
        ),
        (
            {"shape_attributes": [], "region_attributes": {}},
            ".regions[2].shape_attributes",
            "expected an object",
        ),
        (
            {"shape_attributes": {}, "region_attributes": []},
            ".regions[2].region_attributes",
            "expected an object",
        ),
    ],
)
def test_first_problem_in_file_order_is_reported(bad, where, problem, monkeypatch):
    good = _poly([1, 2, 3], [4, 5, 6])
    later_bad = _poly([1, 2], [1, None])
    text = _project([good, good, bad, later_bad])
    with pytest.raises(ViaFormatError) as ei:
        loads_via(text.encode(), "/x.json")
    assert ei.value.where == '_via_img_metadata["img1.jpg1"]' + where
    assert problem in ei.value.problem
    with monkeypatch.context() as m:  # the message is the reference code's, word for word
        m.setattr(via_common, "orjson", None)
        with pytest.raises(ViaFormatError) as ref:
            loads_via(text.encode(), "/x.json")
    assert str(ei.value) == str(ref.value)


def test_a_bad_polygon_before_a_later_structural_problem_is_the_one_reported():
    bad_numbers = _poly([1, 2, 3], [1, 2, 1e10])
    value = json.loads(_project([_poly([1], [2]), bad_numbers]))
    value["_via_img_metadata"]["img2.jpg1"]["file_attributes"] = []  # a problem in a later entry
    with pytest.raises(ViaFormatError) as ei:
        loads_via(json.dumps(value).encode(), "/x.json")
    assert ei.value.where == '_via_img_metadata["img1.jpg1"].regions[1].shape_attributes.all_points_y[2]'
    value["_via_img_metadata"]["img1.jpg1"]["regions"] = [_poly([1], [2])]  # without it: the later problem
    with pytest.raises(ViaFormatError) as ei:
        loads_via(json.dumps(value).encode(), "/x.json")
    assert ei.value.where == '_via_img_metadata["img2.jpg1"].file_attributes'


def test_regions_keyed_by_id_name_the_id_in_errors():
    text = (
        '{"a":{"filename":"a","regions":{"0":{"shape_attributes":{"name":"polygon","all_points_x":[1],'
        '"all_points_y":[1]}},"7":{"shape_attributes":{"name":"polyline","all_points_x":[1,2],'
        '"all_points_y":[1,true]}}}}}'
    )
    with pytest.raises(ViaFormatError) as ei:
        loads_via(text, "/x.json")
    assert ei.value.where == '["a"].regions["7"].shape_attributes.all_points_y'
    assert ei.value.problem == "expected a list of numbers, got a list [1, true]"


# -------------------------------------------------------------------------------------------- a big project


def _big_project(n_images: int = 400) -> dict:
    rng = random.Random(5)
    meta = {}
    for i in range(n_images):
        regions = []
        for _ in range(rng.randint(0, 6)):
            n = rng.randint(1, 120)
            regions.append(
                _poly([rng.randint(0, 4000) for _ in range(n)], [rng.randint(-50, 3000) for _ in range(n)])
            )
        if i % 50 == 7:
            regions.append(
                {
                    "shape_attributes": {"name": "rect", "x": 1.5, "y": 2, "width": 30, "height": 40},
                    "region_attributes": {"damage": "dent", "sure": True},
                }
            )
        meta[f"img{i:05d}.jpg{1000 + i}"] = {
            "filename": f"img{i:05d}.jpg",
            "size": 1000 + i,
            "regions": regions,
            "file_attributes": {"when": "2019-05-12"},
        }
    return {
        "_via_settings": {"ui": {"image": {"region_label": "__via_region_id__"}}, "core": {}, "project": {}},
        "_via_img_metadata": meta,
        "_via_attributes": {"region": {"damage": {"type": "text"}}, "file": {}},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(meta),
    }


def test_big_project_loads_alike_on_both_paths(tmp_path, monkeypatch):
    value = _big_project(600)
    p = tmp_path / "big.json"
    p.write_text(json.dumps(value, separators=(",", ":")))
    assert p.stat().st_size > 1 << 20  # past the byte-scan and GC thresholds
    proj = load_via(p)
    with monkeypatch.context() as m:
        m.setattr(via_common, "orjson", None)
        ref = load_via(p)
    same_json(proj.raw, ref.raw)
    same_json(json.loads(dumps_via(proj)), value)
    assert dumps_via(proj) == dumps_via(ref) == p.read_text()
    bom = tmp_path / "bom.json"  # the bytes after a BOM go to orjson as a memoryview
    bom.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    same_json(load_via(bom).raw, value)
    # one bad value anywhere among 100,000s: found, with the reference message
    meta = value["_via_img_metadata"]
    polys = [
        (k, j)
        for k in meta
        for j, r in enumerate(meta[k]["regions"])
        if r["shape_attributes"]["name"] == "polygon"
    ]
    for (k, j), axis, junk in [
        (polys[-1], "all_points_y", True),
        (polys[len(polys) // 2], "all_points_x", 1e10),
        (polys[3], "all_points_x", 10**20),
        (polys[9], "all_points_y", None),
        (polys[0], "all_points_x", 1_000_000_001),
        (polys[1], "all_points_y", 2.5),
    ]:
        bad = json.loads(json.dumps(value))
        bad["_via_img_metadata"][k]["regions"][j]["shape_attributes"][axis][-1] = junk
        p.write_text(json.dumps(bad))
        got = outcome(lambda: dumps_via(load_via(p)))
        with monkeypatch.context() as m:
            m.setattr(via_common, "orjson", None)
            want = outcome(lambda: dumps_via(load_via(p)))
        assert got == want
        if junk == 2.5:  # a float is a number: accepted
            assert got[0] == "ok"
            same_json(json.loads(got[1]), bad)
        else:
            assert got[0] == "error" and f'["{k}"].regions[{j}].shape_attributes.{axis}' in got[1]


def test_gc_paused_restores_the_collector_state():
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    with gc_paused(big=True):
        assert not gc.isenabled()
        junk = [[i] for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    del junk
    gc.disable()
    try:
        with gc_paused(big=True):
            pass
        assert not gc.isenabled()  # a program that turned it off keeps it off
    finally:
        gc.enable()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError
    assert gc.isenabled()


# ------------------------------------------------------------ writing: orjson for VIA's compact style


def test_compact_dump_takes_orjson_and_gives_the_same_json_value(monkeypatch):
    value = {
        "a.jpg12": {
            "filename": "a.jpg",
            "size": 12,
            "regions": [
                {
                    "shape_attributes": {
                        "name": "polygon",
                        "all_points_x": [1, 2.5, 1e-05, -0.0],
                        "all_points_y": [3, 4, 5, 6],
                    },
                    "region_attributes": {"name": 'dent \u00e9\u4e2d "q" \\ \n\t\x01'},
                }
            ],
            "file_attributes": {"ok": True},
        }
    }
    want = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def no_stdlib(*a, **k):
        raise AssertionError("json.dumps used for VIA's compact style")

    monkeypatch.setattr(via_common.json, "dumps", no_stdlib)
    got = via_common.dump_json(value)
    same_json(json.loads(got), json.loads(want))
    assert list(json.loads(got)["a.jpg12"]) == ["filename", "size", "regions", "file_attributes"]  # key order


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_infinity_in_a_project_is_still_refused_on_save(bad, tmp_path):
    from viaseg.core.annotation.formats.via_io import save_via
    from viaseg.core.base.errors import ViaSaveError

    p = loads_via(
        json.dumps(
            {
                "a.jpg1": {
                    "filename": "a.jpg",
                    "size": 1,
                    "regions": [
                        {"shape_attributes": {"name": "point", "cx": 1, "cy": 2}, "region_attributes": {}}
                    ],
                    "file_attributes": {},
                }
            },
            separators=(",", ":"),
        ),
        tmp_path / "v.json",
    )  # VIA's compact style: orjson
    p.images[0].regions[0].shape["cx"] = bad  # orjson alone would write null here
    with pytest.raises(ViaSaveError, match="cannot encode"):
        save_via(p, tmp_path / "v.json")
    assert not (tmp_path / "v.json").exists()


def test_values_orjson_cannot_write_fall_back_to_the_stdlib():
    value = {"k": [2**70, "\ud800"], 3: "int key"}
    text = via_common.dump_json(value)
    assert json.loads(text) == {"k": [2**70, "\ud800"], "3": "int key"}


# ------------------------------------------------------------------------------- keys written twice


def _entry(name: str, regions: int) -> str:
    region = '{"shape_attributes":{"name":"rect","x":1,"y":1,"width":4,"height":4},"region_attributes":{}}'
    return (
        f'{{"filename":"{name}","size":-1,"regions":[{",".join([region] * regions)}],"file_attributes":{{}}}}'
    )


@pytest.mark.parametrize("orjson_on", [True, False])
def test_an_image_key_written_twice_is_refused_naming_it(orjson_on, monkeypatch):
    if not orjson_on:
        monkeypatch.setattr(via_common, "orjson", None)
    text = f'{{"a.jpg-1":{_entry("a.jpg", 2)},"b.jpg-1":{_entry("b.jpg", 1)},"a.jpg-1":{_entry("a.jpg", 0)}}}'
    with pytest.raises(ViaFormatError) as err:
        loads_via(text, "/x/via.json")
    assert err.value.path == "/x/via.json" and err.value.where == '["a.jpg-1"]'
    assert "appears 2 times" in err.value.problem
    assert "the earlier entry of 'a.jpg' with 2 region(s) would be lost" in err.value.problem
    project = f'{{"_via_settings":{{}},"_via_img_metadata":{text},"_via_attributes":{{}}}}'
    with pytest.raises(ViaFormatError) as err:
        loads_via(project, "p.json")
    assert err.value.where == '_via_img_metadata["a.jpg-1"]'


def test_a_via3_file_or_region_written_twice_is_refused():
    file = '{"fid":"1","fname":"a.jpg","type":2,"loc":1,"src":"a.jpg"}'
    meta = '{"vid":"1","flg":0,"z":[],"xy":[2,1,1,4,4],"av":{}}'
    tables = '"config":{},"attribute":{},"view":{"1":{"fid_list":["1"]}}'
    twice_file = (
        f'{{"project":{{"vid_list":["1"]}},{tables},"file":{{"1":{file},"1":{file}}},"metadata":{{}}}}'
    )
    with pytest.raises(ViaFormatError) as err:
        loads_via(twice_file, "v3.json")
    assert err.value.where == 'file["1"]' and "the earlier file 'a.jpg'" in err.value.problem
    twice_region = f'{{"project":{{"vid_list":["1"]}},{tables},"file":{{"1":{file}}},"metadata":{{"m":{meta},"m":{meta}}}}}'
    with pytest.raises(ViaFormatError) as err:
        loads_via(twice_region, "v3.json")
    assert err.value.where == 'metadata["m"]' and 'view "1"' in err.value.problem
    once = f'{{"project":{{"vid_list":["1"]}},{tables},"file":{{"1":{file}}},"metadata":{{"m":{meta}}}}}'
    assert loads_via(once, "v3.json").region_count == 1


def test_filename_written_elsewhere_is_no_repeated_key():
    # "filename" as an attribute name and value: counted, re-parsed with every key kept, and accepted
    entry = _entry("a.jpg", 1).replace(
        '"region_attributes":{}', '"region_attributes":{"filename":"filename"}'
    )
    project = loads_via(f'{{"a.jpg-1":{entry},"b.jpg-1":{_entry("b.jpg", 1)}}}', "via.json")
    assert [im.filename for im in project.images] == ["a.jpg", "b.jpg"]
    assert project.images[0].regions[0].attributes == {"filename": "filename"}
    # a repeated key deeper down (an attribute) is JSON's ordinary last-wins, as before
    entry = _entry("a.jpg", 1).replace('"region_attributes":{}', '"region_attributes":{"k":"1","k":"2"}')
    assert loads_via(f'{{"a.jpg-1":{entry}}}', "via.json").images[0].regions[0].attributes == {"k": "2"}
