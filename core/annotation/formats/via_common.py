"""Shared pieces of the VIA readers/writers: safe JSON parsing, error locations, output style (the checks of
parsed values are in :mod:`.via_values`).

Everything here raises ``ViaFormatError`` only. JSON is parsed strictly: ``NaN``/``Infinity`` (which Python's
``json`` accepts by default), numbers that overflow to infinity, integers too long to convert and nesting too
deep for the parser are all reported as format errors naming the file and the position.

``parse_json`` tries ``orjson`` first (~1.5x faster on a big project) and keeps the standard library parser as
the reference: whatever orjson refuses (NaN, numbers overflowing to infinity, lone surrogate escapes such as
``"\\ud800"``, nesting deeper than 1024...) is parsed again by the stdlib code, which accepts it or reports it
exactly as before; a text where orjson could *silently* differ from it (an integer beyond 64 bits, which orjson
turns into a float; nesting deeper than ``FAST_MAX_DEPTH``, which the stdlib parser may refuse) goes to the
stdlib parser too.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import re
from pathlib import Path
from typing import Any

from ...base.errors import ViaFormatError

try:
    import orjson
except ImportError:  # pragma: no cover - a declared dependency; the stdlib parser alone gives the same values
    orjson = None  # type: ignore[assignment]  # optional dependency: None marks it missing


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


# 19 digits in a row: the shortest integer orjson may turn into a float (it keeps ints exact within
# [-2**63, 2**64 - 1], i.e. up to 18 digits always). A float with such a long run of digits (or a file name,
# a base64 blob...) is sent to the stdlib parser too: slower, never wrong.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_STR = re.compile(r"[0-9]{19}")
_WORD_SCAN_MIN = 1 << 18  # below this the regex is cheap enough (~1 ms); above it, 8 bytes at a time


def has_long_digit_run(raw: bytes | memoryview) -> bool:
    """True if ``raw`` holds 19 or more ASCII digits in a row."""
    n = len(raw)
    if n < _WORD_SCAN_MIN:
        return _LONG_DIGITS.search(raw) is not None
    import numpy as np  # a 47 MB file in ~10 ms instead of ~0.5 s for the regex

    words = np.frombuffer(raw, dtype=np.uint64, count=n // 8)
    hi, three, six = (
        np.uint64(0xF0F0F0F0F0F0F0F0),
        np.uint64(0x3030303030303030),
        np.uint64(0x0606060606060606),
    )
    # a run of 19 digits covers at least one whole aligned 8-byte word (a run of 15 always does): find the
    # words made of digits only (every byte 0x30..0x3F, and still so after adding 6: 0x30..0x39), then look
    # at the bytes around each one with the regex
    cand = np.flatnonzero((words & hi) == three)
    if cand.size:
        cand = cand[((words[cand] + six) & hi) == three]
    for i in cand.tolist():
        start = i * 8
        if _LONG_DIGITS.search(raw[max(0, start - 11) : start + 19]) is not None:
            return True
    return _LONG_DIGITS.search(raw[max(0, n - 32) :]) is not None  # the last bytes, outside whole words


# orjson parses 1024 levels of nesting; the stdlib parser as many as the recursion limit leaves (~995 at the top
# of a program on CPython 3.11, fewer deeper in the stack), and a value that deep breaks json.dumps and repr
# later. A text nested deeper than this goes to the stdlib parser, which accepts or refuses it as it always did.
FAST_MAX_DEPTH = 256
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"')))


def nesting_depth(raw: bytes | memoryview) -> int:
    """How deep arrays and objects nest in a *valid* JSON text (brackets inside strings do not count)."""
    raw = bytes(raw) if isinstance(raw, memoryview) else raw
    if b"\\" in raw:  # drop escaped backslashes, then escaped quotes (left to right, as JSON pairs them)
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = raw.translate(
        None, _NOT_STRUCTURE
    )  # only [ ] { } and the quotes are left: ~1/30 of a VIA file
    if not structure.strip(b'"'):
        return 0
    import numpy as np

    a = np.frombuffer(structure, dtype=np.uint8)
    in_string = (np.cumsum(a == 0x22, dtype=np.int64) & 1).astype(
        bool
    )  # from an opening quote to its closing one
    step = ((a == 0x5B) | (a == 0x7B)).astype(np.int8) - ((a == 0x5D) | (a == 0x7D)).astype(np.int8)
    step[in_string] = 0
    return int(np.cumsum(step, dtype=np.int64).max())


_NOT_FAST = object()


def _parse_fast(text: str, raw: bytes | memoryview | None) -> Any:
    """orjson's value of the text, or ``_NOT_FAST`` where the stdlib parser must decide."""
    if raw is None:
        if len(text) < _WORD_SCAN_MIN:
            if _LONG_DIGITS_STR.search(text) is not None:
                return _NOT_FAST
            if text.count("[") + text.count("{") <= FAST_MAX_DEPTH:  # so it cannot nest deeper
                try:
                    return orjson.loads(text)
                except Exception:
                    return _NOT_FAST
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in the str itself: orjson refuses it anyway
            return _NOT_FAST
    if has_long_digit_run(raw):
        return _NOT_FAST
    try:
        value = orjson.loads(raw)
    except Exception:  # JSONDecodeError (NaN, 1e999, "\\ud800", depth > 1024, bad syntax), MemoryError...
        return _NOT_FAST
    if nesting_depth(raw) > FAST_MAX_DEPTH:
        return _NOT_FAST
    return value


def parse_json(text: str, path: str | Path | None, raw: bytes | memoryview | None = None) -> Any:
    """``json.loads`` that raises only ``ViaFormatError`` and refuses NaN/Infinity/overflowing numbers.

    ``raw``, when given, is the UTF-8 encoding of ``text`` (the bytes it was decoded from, without a BOM):
    it spares an encode of a big file for the fast path. The value is the same either way."""
    if orjson is not None:
        value = _parse_fast(text, raw)
        if value is not _NOT_FAST:
            return value
    return parse_json_stdlib(text, path)


def parse_json_stdlib(text: str, path: str | Path | None, object_pairs_hook: Any = None) -> Any:
    """The reference parser of ``parse_json`` (the standard library's, made strict); its errors are the ones
    ``parse_json`` reports, its values the ones the fast path must reproduce. ``object_pairs_hook``: json's."""
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            object_pairs_hook=object_pairs_hook,
        )
    except json.JSONDecodeError as exc:
        raise ViaFormatError(
            path, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}"
        ) from None
    except _BadConstant as exc:
        raise ViaFormatError(path, "", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ViaFormatError(path, "", "invalid JSON: nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. int longer than sys.get_int_max_str_digits
        raise ViaFormatError(path, "", f"invalid JSON: {str(exc)[:120]}") from None


@contextlib.contextmanager
def gc_paused(big: bool = False):
    """The cyclic garbage collector off while a file's value is built and read: a JSON value holds no cycles,
    and on a big project the collector would walk the millions of new objects again and again.

    ``big``: also move the objects made meanwhile to the oldest generation at the end (``gc.freeze()`` then
    ``gc.unfreeze()``, two list splices) instead of letting the next young collections walk them all once
    more (~0.2 s for a 47 MB project, then again in the middle generation). The only effect on other objects
    (also moved): a cycle that became garbage shortly before is reclaimed at the next full collection instead
    of a young one. Skipped when the program itself keeps objects frozen (``gc.get_freeze_count()``)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if big and hasattr(gc, "freeze") and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


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
    # (a backslash is found by memchr: ~10x faster than the two-character search on a big file without one)
    ensure_ascii = text.isascii() and "\\" in text and "\\u" in text
    return {
        "indent": indent,
        "separators": separators,
        "ensure_ascii": ensure_ascii,
        "newline": text.endswith("\n"),
    }


VIA_STYLE: dict[str, Any] = {
    "indent": None,
    "separators": (",", ":"),
    "ensure_ascii": False,
    "newline": False,
}


def _dump_fast(value: Any) -> str | None:
    """orjson's text of ``value`` in VIA's compact style (what ``json.dumps`` with ``separators=(",", ":")``,
    ``ensure_ascii=False`` writes, to the same JSON value), or None where ``json.dumps`` must decide: orjson
    refuses the value (a lone surrogate, an int beyond 64 bits, a non-string key...) or its text holds ``null``,
    which is also what orjson writes for NaN and infinity (``json.dumps(allow_nan=False)`` refuses those)."""
    if orjson is None:
        return None
    try:
        out = orjson.dumps(value)
    except Exception:  # orjson.JSONEncodeError
        return None
    if b"null" in out:
        return None
    return out.decode("utf-8")


def dump_json(value: Any, style: dict | None = None) -> str:
    st = style or VIA_STYLE
    if st["indent"] is None and tuple(st["separators"]) == (",", ":") and not st["ensure_ascii"]:
        text = _dump_fast(value)  # ~10x faster than json.dumps on a big project
        if text is not None:
            return text + "\n" if st["newline"] else text
    text = json.dumps(
        value,
        ensure_ascii=st["ensure_ascii"],
        indent=st["indent"],
        separators=st["separators"],
        allow_nan=False,
    )
    if not st["ensure_ascii"] and not utf8_ok(
        text
    ):  # lone surrogates ("\ud800" in the file): keep them escaped
        text = json.dumps(
            value, ensure_ascii=True, indent=st["indent"], separators=st["separators"], allow_nan=False
        )
    return text + "\n" if st["newline"] else text


def utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ------------------------------------------------------------------------------- VIA 1 closed polygons


def closes_polygons(images) -> bool:
    """True when most polygons read from the file (regions with ``raw``) repeat their first vertex at the end,
    as VIA 1 writes them: new and edited polygons are then written the same way (:func:`closed_shape`)."""
    from ..edit_regions import has_closing_duplicate

    closed = opened = 0
    for im in images:
        for r in im.regions:
            shape = r.shape
            if r.raw is None or not isinstance(shape, dict) or shape.get("name") != "polygon":
                continue
            xs = shape.get("all_points_x")
            if not isinstance(xs, list) or len(xs) < 3:
                continue
            if has_closing_duplicate(shape):
                closed += 1
            else:
                opened += 1
    return closed > opened


def closed_shape(shape: dict) -> dict:
    """``shape`` as written to a file whose polygons repeat their first vertex: a polygon without that closing
    vertex gets a copy with it appended (the region's own dict is never changed); anything else as it is."""
    from ..edit_regions import has_closing_duplicate

    if not isinstance(shape, dict) or shape.get("name") != "polygon" or has_closing_duplicate(shape):
        return shape
    xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys) or len(xs) < 3:
        return shape
    return {**shape, "all_points_x": [*xs, xs[0]], "all_points_y": [*ys, ys[0]]}


def image_key(filename: str, size) -> str:
    """VIA's metadata key for a new image: ``filename + size`` (``filename`` alone when the size is unknown).
    Keys of entries read from a file are kept as given, never recomputed."""
    return f"{filename}{'' if size is None else size}"
