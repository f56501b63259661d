"""VIA 1.x / 2.x CSV export: reader and writer (docs/via-format.md §3).

One row per region (or one ``…,0,0,"{}","{}"`` row for an image without regions); the three JSON columns are
CSV-quoted JSON. ``size`` stays the string it was in the file (as VIA does); the key is ``filename + size``.
``Project.raw`` of a CSV project holds only its layout (header variant, line ending, trailing newline) so a save
reproduces the file; region_count/region_id are recomputed.
"""

from __future__ import annotations

import csv
import json
import re
from math import inf
from pathlib import Path

from ...base.errors import ViaFormatError
from ..project import ImageEntry, Project, Region
from .via_common import closed_shape, closes_polygons, derive_attributes, parse_json, show, utf8_ok
from .via_values import check_dict, check_shape

HEADER_V2 = (
    "filename,file_size,file_attributes,region_count,region_id,region_shape_attributes,region_attributes"
)
HEADER_V1 = "#" + HEADER_V2
FIELD_LIMIT = 1 << 28
_LINE_RE = re.compile(r"\r\n|\r|\n")
_LEGACY_RE = re.compile(r"^\w+=")


def _json_column(text: str, what: str, where: str, path) -> dict:
    t = text.strip()
    if not t.startswith("{"):
        if t == "" or _LEGACY_RE.match(t):
            raise ViaFormatError(
                path,
                where,
                f"{what} is {show(t)}: this is the legacy VIA 0.1b key=value CSV, which is not "
                "supported (open it in VIA 1 or 2 and export it again)",
            )
        raise ViaFormatError(path, where, f"{what}: expected a JSON object, got {show(t)}")
    try:
        value = parse_json(t, path)
    except ViaFormatError as exc:
        raise ViaFormatError(path, where, f"{what}: {exc.problem}") from None
    return check_dict(value, f"{where} {what}", path)


def _header(lines: list[str], path) -> str:
    header = lines[0].strip()
    if header not in (HEADER_V1, HEADER_V2):
        raise ViaFormatError(
            path,
            "line 1",
            f"not a VIA CSV export: the first line must be {show(HEADER_V2, 200)} "
            f"(or the same with a leading '#'), got {show(lines[0], 80)}",
        )
    return header


def _layout(text: str, lines: list[str], header: str) -> dict:
    """What a save needs to write the file back as it was: header variant, line ending, trailing newline."""
    newline = "\r\n" if "\r\n" in text else ("\r" if "\r" in text and "\n" not in text else "\n")
    return {
        "header": header,
        "newline": newline,
        "trailing_newline": bool(lines[-1] == "" and len(lines) > 1),
    }


def read_csv(text: str, path, base_dir: Path | None) -> Project:
    lines = _LINE_RE.split(text)
    header = _header(lines, path)
    if csv.field_size_limit() < FIELD_LIMIT:  # a long polygon is one field; the default limit is 128 KiB
        csv.field_size_limit(FIELD_LIMIT)
    by_key: dict[str, ImageEntry] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            fields = next(csv.reader([line], strict=True))
        except (csv.Error, StopIteration) as exc:
            raise ViaFormatError(path, where, f"malformed CSV row: {exc}") from None
        if len(fields) != 7:
            raise ViaFormatError(
                path,
                where,
                f"expected 7 comma-separated fields, got {len(fields)} (a filename with a comma "
                "or a quote breaks VIA's CSV)",
            )
        filename, size, fa_text, count, rid, shape_text, attrs_text = fields
        fa = _json_column(fa_text, "file_attributes", where, path)
        shape = _json_column(shape_text, "region_shape_attributes", where, path)
        check_shape(shape, f"{where} region_shape_attributes", path)
        attrs = _json_column(attrs_text, "region_attributes", where, path)
        key = filename + size
        im = by_key.get(key)
        if im is None:
            im = by_key[key] = ImageEntry(
                key=key,
                filename=filename,
                size=size,
                regions=[],
                file_attributes=fa,
                raw={"csv_regions": 0, "row": n},
                base_dir=base_dir,
            )
        elif fa is not im.file_attributes:
            im.file_attributes.update(fa)  # VIA copies file attributes row by row
        if (
            shape or attrs
        ):  # VIA drops a region whose two dicts are empty (the row of an image with no regions)
            # keep the file's own region_count/region_id (scripts write odd ones) for a lossless save
            im.regions.append(
                Region(shape=shape, attributes=attrs, raw={"region_count": count, "region_id": rid, "row": n})
            )
            assert im.raw is not None  # every entry of by_key was made above, with its raw dict
            im.raw["csv_regions"] += 1
    images = list(by_key.values())
    layout = _layout(text, lines, header)
    return Project(images=images, fmt="csv", path=None, attributes=derive_attributes(images), raw=layout)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _raw_field(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if any(c in text for c in ',"\r\n'):
        return _quote(text)  # VIA would write it raw and break the row; quoting keeps it readable
    return text


def _js(value) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text if utf8_ok(text) else json.dumps(value, separators=(",", ":"), allow_nan=False)


def dumps_csv(project: Project) -> str:
    layout = project.raw if project.fmt == "csv" and isinstance(project.raw, dict) else {}
    header = layout.get("header", HEADER_V2)
    newline = layout.get("newline", "\n")
    rows: list[tuple[float, int, int, str]] = []  # (original line, image, region, text)
    close = project.fmt == "csv" and closes_polygons(
        project.images
    )  # VIA 1 style: new polygons repeat vertex 0
    for k, im in enumerate(project.images):
        anchor = im.raw.get("row", inf) if project.fmt == "csv" and isinstance(im.raw, dict) else inf
        fn = _raw_field(im.filename)
        size = _raw_field(-1 if im.size is None else im.size)
        fa = _quote(_js(im.file_attributes))
        n = len(im.regions)
        if n == 0:
            rows.append((anchor, k, 0, f'{fn},{size},{fa},0,0,"{{}}","{{}}"'))
        same = (
            project.fmt == "csv"
            and isinstance(im.raw, dict)
            and im.raw.get("csv_regions") == n
            and all(isinstance(r.raw, dict) and "region_id" in r.raw for r in im.regions)
        )
        for i, r in enumerate(im.regions):
            raw = r.raw if same else None  # same: every region's raw is a dict
            count, rid = (raw["region_count"], raw["region_id"]) if raw is not None else (n, i)
            # unchanged images keep the file's row order (rows of one image need not be adjacent)
            where = raw["row"] if raw is not None else anchor
            shape = closed_shape(r.shape) if close and r.raw is None else r.shape
            rows.append(
                (
                    where,
                    k,
                    i,
                    f"{fn},{size},{fa},{count},{rid},{_quote(_js(shape))},{_quote(_js(r.attributes))}",
                )
            )
    rows.sort(key=lambda t: t[:3])
    text = newline.join([header] + [t[3] for t in rows])
    if layout.get("trailing_newline"):
        text += newline
    return text
