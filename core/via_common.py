"""Shared pieces of the VIA readers/writers: safe JSON parsing, shape validation, error locations.

Everything here raises ``ViaFormatError`` only. JSON is parsed strictly: ``NaN``/``Infinity`` (which Python's
``json`` accepts by default), numbers that overflow to infinity, integers too long to convert and nesting too
deep for the parser are all reported as format errors naming the file and the position.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .errors import ViaFormatError

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
OPTIONAL_KEYS = {"ellipse": ("theta",)}


def key_path(prefix: str, key: str) -> str:
    """``prefix["key"]`` with the key JSON-quoted (file names may contain dots and brackets)."""
    return f"{prefix}[{json.dumps(key, ensure_ascii=False)}]"


def show(value: Any, limit: int = 40) -> str:
    """A short JSON-ish rendering of a value for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if isinstance(value, dict):
        return f"an object {text}"
    if isinstance(value, list):
        return f"a list {text}"
    return text


class _BadConstant(ValueError):
    pass


def _reject_constant(name: str):
    raise _BadConstant(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _BadConstant(f"number {text[:30]} is too large")
    return value


def decode_text(data: bytes | str, path: str | Path | None) -> str:
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ViaFormatError(path, f"byte {exc.start}", "not UTF-8 text (VIA writes UTF-8)") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def parse_json(text: str, path: str | Path | None) -> Any:
    """``json.loads`` that raises only ``ViaFormatError`` and refuses NaN/Infinity/overflowing numbers."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except json.JSONDecodeError as exc:
        raise ViaFormatError(path, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}") from None
    except _BadConstant as exc:
        raise ViaFormatError(path, "", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ViaFormatError(path, "", "invalid JSON: nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. int longer than sys.get_int_max_str_digits
        raise ViaFormatError(path, "", f"invalid JSON: {str(exc)[:120]}") from None


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
        check_number(shape[k], f"{where}.{k}", path)
    for k in OPTIONAL_KEYS.get(name, ()):
        if k in shape:
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


def derive_attributes(images) -> dict:
    """``_via_attributes``-shaped dict from the attribute names seen (VIA registers them as text)."""
    region: dict = {}
    file: dict = {}
    for im in images:
        for k in im.file_attributes:
            file.setdefault(k, {"type": "text"})
        for r in im.regions:
            if isinstance(r.attributes, dict):
                for k in r.attributes:
                    region.setdefault(k, {"type": "text"})
    return {"region": region, "file": file}


_INDENT_RE = re.compile(r"\{\s*?\n([ \t]+)\S")


def detect_style(text: str) -> dict:
    """How a JSON file was formatted, so a save can reproduce it (VIA itself writes compact one-liners)."""
    head = text[:20000]
    m = _INDENT_RE.match(head.lstrip("\ufeff"))
    indent: Any = None
    if m:
        ws = m.group(1)
        indent = ws if "\t" in ws else len(ws)
    if indent is not None:
        separators = (",", ": ")
    else:
        item = ", " if re.search(r'[\]}"\de], "', head) else ","
        key = ": " if re.search(r'": ["\d\[{tfn-]', head) else ":"
        separators = (item, key)
    ensure_ascii = text.isascii() and "\\u" in text
    return {
        "indent": indent,
        "separators": separators,
        "ensure_ascii": ensure_ascii,
        "newline": text.endswith("\n"),
    }


VIA_STYLE = {"indent": None, "separators": (",", ":"), "ensure_ascii": False, "newline": False}


def dump_json(value: Any, style: dict | None = None) -> str:
    st = style or VIA_STYLE
    text = json.dumps(
        value, ensure_ascii=st["ensure_ascii"], indent=st["indent"], separators=st["separators"], allow_nan=False
    )
    if not st["ensure_ascii"] and not utf8_ok(text):  # lone surrogates ("\ud800" in the file): keep them escaped
        text = json.dumps(value, ensure_ascii=True, indent=st["indent"], separators=st["separators"], allow_nan=False)
    return text + "\n" if st["newline"] else text


def utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
