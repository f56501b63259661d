"""Checks of parsed VIA values: numbers and coordinate lists, shapes (``shape_attributes``), objects and
attribute schemas. Each raises ``ViaFormatError`` naming the file, the JSON path and the problem."""

from __future__ import annotations

import math
from typing import Any

from ...base.errors import ViaFormatError
from . import via_common  # its orjson (None when missing, or set so by the tests)
from .via_common import key_path, show

# coordinates beyond this are not pixels of any real image; rejecting them keeps float math finite downstream
MAX_COORD = 1e9

# shape name -> (scalar keys, list keys); optional scalar keys separately
SHAPE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rect": (("x", "y", "width", "height"), ()),
    "circle": (("cx", "cy", "r"), ()),
    "ellipse": (("cx", "cy", "rx", "ry"), ()),
    "point": (("cx", "cy"), ()),
    "polygon": ((), ("all_points_x", "all_points_y")),
    "polyline": ((), ("all_points_x", "all_points_y")),
}
OPTIONAL_KEYS: dict[str, tuple[str, ...]] = {"ellipse": ("theta",)}


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_number(v: Any, where: str, path) -> None:
    if not is_number(v):
        raise ViaFormatError(path, where, f"expected a number, got {show(v)}")
    try:
        ok = math.isfinite(v) and abs(v) <= MAX_COORD
    except OverflowError:
        ok = False
    if not ok:
        raise ViaFormatError(path, where, f"number {show(v)} is out of range (more than {MAX_COORD:g})")


_NUM_TYPES = {int, float}


def check_number_list(v: Any, where: str, path) -> None:
    # fast path in C (map/set/min/max): a 50-point polygon costs ~2 us; parse_json already refused NaN/inf
    if type(v) is list and set(map(type, v)) <= _NUM_TYPES:
        try:
            if not v or (min(v) >= -MAX_COORD and max(v) <= MAX_COORD):
                return
        except (TypeError, OverflowError):
            pass
    if not isinstance(v, list) or not all(is_number(x) for x in v):
        raise ViaFormatError(path, where, f"expected a list of numbers, got {show(v)}")
    for i, x in enumerate(v):
        check_number(x, f"{where}[{i}]", path)


# orjson's text of ints: digits, "-", and the "," "[" "]" of the lists; any other value has another byte
# (true/false/null, the quotes of a string, the "." or "e" of a float, "{"). Digits become "0", the rest "x".
_INT_TEXT = bytes(b if b in b",-[]" else 0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))


def _all_small_ints(lists: list) -> bool:
    """True if each of ``lists`` is a list of ints (no bool) of at most 9 digits, so within ``MAX_COORD``;
    False says nothing. About 4x faster than ``check_number_list`` on each: one orjson dump of all of them,
    one ``translate`` and three byte searches, all in C."""
    orjson = via_common.orjson
    if orjson is None or set(map(type, lists)) != {list}:  # (orjson writes a tuple as a list too)
        return False
    try:
        text = orjson.dumps(lists)
    except Exception:  # orjson.JSONEncodeError: an int beyond 64 bits, a lone surrogate, an unknown type...
        return False
    text = text.translate(_INT_TEXT)
    return b"x" not in text and b"0000000000" not in text and text.count(b"[") == len(lists) + 1


def first_bad_number_list(lists: list) -> int:
    """Index of the first of ``lists`` that ``check_number_list`` refuses, -1 if none: the same verdicts, for
    a whole file's polygon coordinates at once (``check_number_list`` on the one found gives the message)."""
    if not lists or _all_small_ints(lists):
        return -1
    for i, v in enumerate(lists):
        try:
            check_number_list(v, "", None)
        except ViaFormatError:
            return i
    return -1


def number_ok(v: Any) -> bool:
    """``check_number`` would accept ``v`` (the common case decided without a call)."""
    t = type(v)
    if (t is int or t is float) and -MAX_COORD <= v <= MAX_COORD:
        return True
    try:
        check_number(v, "", None)
    except ViaFormatError:
        return False
    return True


def check_shape(shape: Any, where: str, path) -> None:
    """Validate a VIA2-style ``shape_attributes`` dict. Unknown shape names are accepted as they are;
    degenerate geometry (2-point polygons, zero sizes) is accepted too: dataset checks report it."""
    if not isinstance(shape, dict):
        raise ViaFormatError(path, where, f"expected an object, got {show(shape)}")
    name = shape.get("name")
    if not isinstance(name, str) or name not in SHAPE_KEYS:
        return
    scalars, lists = SHAPE_KEYS[name]
    for k in scalars:
        if k not in shape:
            raise ViaFormatError(path, where, f"{name} without '{k}'")
        if not number_ok(shape[k]):
            check_number(shape[k], f"{where}.{k}", path)
    for k in OPTIONAL_KEYS.get(name, ()):
        if k in shape and not number_ok(shape[k]):
            check_number(shape[k], f"{where}.{k}", path)
    for k in lists:
        if k not in shape:
            raise ViaFormatError(path, where, f"{name} without '{k}'")
        check_number_list(shape[k], f"{where}.{k}", path)
    if lists:
        nx, ny = len(shape[lists[0]]), len(shape[lists[1]])
        if nx != ny:
            raise ViaFormatError(path, where, f"{lists[0]} has {nx} values but {lists[1]} has {ny}")


def check_dict(v: Any, where: str, path, what: str = "an object") -> dict:
    if not isinstance(v, dict):
        raise ViaFormatError(path, where, f"expected {what}, got {show(v)}")
    return v


def check_attributes_schema(attrs: Any, where: str, path) -> None:
    """A VIA2 ``_via_attributes`` object: {"region": {id: def}, "file": {id: def}}."""
    check_dict(attrs, where, path)
    for level in ("region", "file"):
        if level not in attrs:
            continue
        defs = check_dict(attrs[level], f"{where}.{level}", path)
        for aid, d in defs.items():
            w = key_path(f"{where}.{level}", aid)
            check_dict(d, w, path, "an attribute definition object")
            if "type" in d and not isinstance(d["type"], str):
                raise ViaFormatError(path, f"{w}.type", f"expected a string, got {show(d['type'])}")
            for k in ("options", "default_options"):
                if k in d:
                    check_dict(d[k], f"{w}.{k}", path)
