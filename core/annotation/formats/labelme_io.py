"""labelme JSON files (one per image) <-> viaseg projects.

Reading (labelme 3.x to 5.x files): each shape becomes VIA regions --

============  ===================================================================================
polygon       polygon (the points as written)
rectangle     rect (``x``/``y`` the smaller corner; from the bounding box of the points)
circle        circle (``cx``/``cy`` the first point, ``r`` the distance to the second)
point         point
line          polyline
linestrip     polyline
mask          polygon(s) of the base64 PNG's pixels placed at the first point (holes bridged)
============  ===================================================================================

``label`` goes to the class attribute (``name`` unless told otherwise), a ``group_id`` that is not null to
``group_id`` (text, as VIA attributes are), non-empty ``flags`` and ``description`` to attributes of the same
names; the image-level ``flags`` to the file attribute ``flags``. A shape type this module does not know is
skipped and reported in ``messages``. ``imagePath`` is relative to the JSON file; when it is not there but an
image of its base name is (labelme's own fallback), that one is used. An embedded ``imageData`` is not
written out: a missing image keeps its file name and gets ``width``/``height`` file attributes from
``imageWidth``/``imageHeight`` (see :mod:`viaseg.core.annotation.formats.foreign`); that the embedded image
is not used is said in ``messages``.

Writing (:func:`to_labelme`): one labelme 5 JSON per image (``imageData`` null, ``imagePath`` relative to the
JSON file), written atomically. rect/circle/point/polyline become rectangle/circle/point/linestrip, ellipses
72-point polygons; attributes other than the class, ``group_id``, ``flags`` and ``description`` have no place
in labelme and are listed in ``messages``.

Malformed input raises only ``ViaFormatError`` (file, JSON path, problem).
"""

from __future__ import annotations

import base64
import binascii
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...base.errors import ViaFormatError
from ..project import ImageEntry, Project, Region, natural_sort_key
from .foreign import (
    CLASS_ATTR,
    MAX_MASK_PIXELS,
    foreign_project,
    image_entry,
    mask_shapes,
    parse_file,
    read_file,
)
from .labelme_write import labelme_document, to_labelme  # the writer, re-exported here
from .via_common import show
from .via_values import check_dict, check_number, check_shape

SHAPE_TYPES = ("polygon", "rectangle", "circle", "point", "line", "linestrip", "mask")
_PNG_SIG = b"\x89PNG\r\n\x1a\n"

__all__ = [
    "SHAPE_TYPES",
    "is_labelme",
    "labelme_document",
    "labelme_entry",
    "labelme_project",
    "load_labelme_entry",
    "load_labelme_file",
    "load_labelme_folder",
    "loads_labelme",
    "sniff",
    "to_labelme",
]


def sniff(data: bytes) -> bool:
    """A cheap hint that ``data`` is a labelme file (its ``shapes`` key near the top): only decides which
    parser goes first, never what the file is."""
    head = data[:4096]
    return b'"shapes"' in head and b'"imagePath"' in data


def is_labelme(value: Any) -> bool:
    """A parsed JSON value that is a labelme file (well formed or not: the reader says what is wrong)."""
    if not isinstance(value, dict):
        return False
    if "shapes" in value:
        return "imagePath" in value or "version" in value
    return "imagePath" in value and ("imageData" in value or "version" in value)  # shapes missing


# --------------------------------------------------------------------------------------------------- shapes


def _points(v: Any, where: str, path) -> list[tuple[Any, Any]]:
    if not isinstance(v, list) or not v:
        raise ViaFormatError(path, where, f"expected a non-empty list of [x, y] points, got {show(v)}")
    out = []
    for i, p in enumerate(v):
        if not isinstance(p, list) or len(p) != 2:
            raise ViaFormatError(path, f"{where}[{i}]", f"expected an [x, y] pair, got {show(p)}")
        check_number(p[0], f"{where}[{i}][0]", path)
        check_number(p[1], f"{where}[{i}][1]", path)
        out.append((p[0], p[1]))
    return out


def _need(pts: list, n: int, kind: str, where: str, path, at_least: bool = False) -> None:
    wrong = len(pts) < n if at_least else len(pts) != n
    if wrong:
        many = f"at least {n}" if at_least else str(n)
        raise ViaFormatError(path, f"{where}.points", f"a {kind} needs {many} point(s), got {len(pts)}")


def _geometry(kind: str, pts: list, where: str, path) -> dict | None:
    """The VIA shape of a labelme shape (``mask`` excepted); None for a type this module does not know."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if kind == "polygon":
        return {"name": "polygon", "all_points_x": xs, "all_points_y": ys}
    if kind in ("line", "linestrip"):
        return {"name": "polyline", "all_points_x": xs, "all_points_y": ys}
    if kind == "rectangle":
        _need(pts, 2, kind, where, path, at_least=True)
        x0, y0 = min(xs), min(ys)
        return {"name": "rect", "x": x0, "y": y0, "width": max(xs) - x0, "height": max(ys) - y0}
    if kind == "circle":
        _need(pts, 2, kind, where, path)
        r = math.hypot(float(xs[1]) - float(xs[0]), float(ys[1]) - float(ys[0]))
        return {"name": "circle", "cx": xs[0], "cy": ys[0], "r": r}
    if kind == "point":
        _need(pts, 1, kind, where, path)
        return {"name": "point", "cx": xs[0], "cy": ys[0]}
    return None


def _decode_mask(text: Any, where: str, path) -> np.ndarray:
    import cv2

    if not isinstance(text, str) or not text:
        raise ViaFormatError(path, where, f"a mask shape needs its base64 PNG, got {show(text)}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ViaFormatError(path, where, "not base64 text") from None
    if raw.startswith(_PNG_SIG) and len(raw) >= 24:  # the size is in the header: refuse before decoding
        w, h = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
        if w * h > MAX_MASK_PIXELS:
            raise ViaFormatError(path, where, f"mask of {w}x{h} pixels is too large")
    try:
        mask = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        mask = None
    if mask is None or mask.ndim not in (2, 3) or mask.size == 0 or mask.size > MAX_MASK_PIXELS * 4:
        raise ViaFormatError(path, where, "the mask is not a readable PNG image")
    return mask.max(axis=2) if mask.ndim == 3 else mask


def _mask_polygons(s: dict, pts: list, where: str, path) -> list[dict]:
    _need(pts, 2, "mask", where, path)
    mask = _decode_mask(s.get("mask"), f"{where}.mask", path)
    # the PNG covers the box from the first point on, as labelme places it (int() of the corner)
    x0 = math.floor(min(float(pts[0][0]), float(pts[1][0])))
    y0 = math.floor(min(float(pts[0][1]), float(pts[1][1])))
    return mask_shapes(mask, x0, y0)


def _attributes(s: dict, where: str, path, class_attr: str) -> dict:
    label = s.get("label")
    if label is not None and not isinstance(label, str):
        raise ViaFormatError(path, f"{where}.label", f"expected a string, got {show(label)}")
    attrs: dict = {}
    if label:
        attrs[class_attr] = label
    gid = s.get("group_id")
    if gid is not None:
        if isinstance(gid, bool) or not isinstance(gid, (int, str)):
            raise ViaFormatError(path, f"{where}.group_id", f"expected an integer or null, got {show(gid)}")
        attrs["group_id"] = str(gid)
    flags = s.get("flags")
    if flags is not None:
        check_dict(flags, f"{where}.flags", path)
        if flags:
            attrs["flags"] = dict(flags)
    desc = s.get("description")
    if desc is not None and not isinstance(desc, str):
        raise ViaFormatError(path, f"{where}.description", f"expected a string or null, got {show(desc)}")
    if desc:
        attrs["description"] = desc
    return attrs


def _shape_regions(s: Any, where: str, path, class_attr: str, messages: list[str]) -> list[Region]:
    check_dict(s, where, path, "a shape object")
    kind = s.get("shape_type")
    if kind is None:
        kind = "polygon"  # labelme 3 wrote no shape_type; labelme itself reads that as a polygon
    if not isinstance(kind, str):
        raise ViaFormatError(path, f"{where}.shape_type", f"expected a string, got {show(kind)}")
    attrs = _attributes(s, where, path, class_attr)
    pts = _points(s.get("points"), f"{where}.points", path)
    if kind == "mask":
        shapes = _mask_polygons(s, pts, where, path)
    else:
        shape = _geometry(kind, pts, where, path)
        if shape is None:
            messages.append(
                f"{path}: {where}: shape type {kind!r} skipped (viaseg reads {', '.join(SHAPE_TYPES)})"
            )
            return []
        shapes = [shape]
    for shape in shapes:
        check_shape(shape, where, path)  # e.g. a radius beyond what VIA files may hold
    return [Region(shape=shape, attributes=dict(attrs)) for shape in shapes]


# --------------------------------------------------------------------------------------------------- files


def _image_name(data: dict, path, base_dir: Path | None) -> str:
    name = data.get("imagePath")
    if not isinstance(name, str) or not name.strip():
        raise ViaFormatError(path, "imagePath", f"expected the image's file name, got {show(name)}")
    name = name.replace("\\", "/")  # labelme on Windows writes backslashes; they are separators there
    if base_dir is not None and not (base_dir / name).is_file():
        fallback = Path(name).name  # what labelme itself tries next: the base name next to the JSON file
        if fallback and (base_dir / fallback).is_file():
            return fallback
    return name


def _size_field(data: dict, key: str, path) -> int | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ViaFormatError(path, key, f"expected a positive integer or null, got {show(v)}")
    return v


def labelme_entry(
    data: Any, path, messages: list[str] | None = None, class_attr: str | None = None
) -> ImageEntry:
    """The image entry of a parsed labelme file (``path`` names it in errors; images resolve next to it)."""
    msgs = messages if messages is not None else []
    attr = class_attr or CLASS_ATTR
    check_dict(data, "(top level)", path, "a labelme object")
    shapes = data.get("shapes")
    if "shapes" not in data:
        raise ViaFormatError(
            path, "shapes", 'the labelme file has no "shapes" list (labelme writes one, maybe empty)'
        )
    if not isinstance(shapes, list):
        raise ViaFormatError(path, "shapes", f"expected a list of shapes, got {show(shapes)}")
    base_dir = Path(path).parent if path is not None else None
    name = _image_name(data, path, base_dir)
    w, h = _size_field(data, "imageWidth", path), _size_field(data, "imageHeight", path)
    image_data = data.get("imageData")
    if image_data is not None and not isinstance(image_data, str):
        raise ViaFormatError(path, "imageData", f"expected base64 text or null, got {show(image_data)}")
    flags = data.get("flags")
    if flags is not None:
        check_dict(flags, "flags", path)
    regions: list[Region] = []
    for i, s in enumerate(shapes):
        regions.extend(_shape_regions(s, f"shapes[{i}]", path, attr, msgs))
    entry = image_entry(name, base_dir, w, h)
    if image_data and entry.size == -1:
        msgs.append(
            f"{path}: imagePath: the image {entry.path} does not exist, and the image embedded in this labelme "
            "file (imageData) is not used (viaseg reads images from files): put the image file there"
        )
    if flags:
        entry.file_attributes["flags"] = dict(flags)
    entry.regions = regions
    return entry


def labelme_project(
    data: Any, path, messages: list[str] | None = None, class_attr: str | None = None
) -> Project:
    """A one-image project from a parsed labelme file."""
    return foreign_project([labelme_entry(data, path, messages, class_attr)])


def loads_labelme(
    data: bytes | str, path=None, messages: list[str] | None = None, class_attr: str | None = None
) -> Project:
    """A one-image project from the content of a labelme file."""
    return labelme_project(parse_file(data, path), path, messages, class_attr)


def load_labelme_entry(
    path: str | Path, messages: list[str] | None = None, class_attr: str | None = None
) -> ImageEntry:
    p = Path(path)
    return labelme_entry(parse_file(read_file(p), p), p, messages, class_attr)


def load_labelme_file(
    path: str | Path, messages: list[str] | None = None, class_attr: str | None = None
) -> Project:
    """A one-image project from a labelme JSON file."""
    return foreign_project([load_labelme_entry(path, messages, class_attr)])


def labelme_files(folder: Path) -> list[Path]:
    """The ``*.json`` files directly in ``folder`` (hidden ones left out), in natural order."""
    try:
        files = [
            p
            for p in Path(folder).iterdir()
            if p.suffix.lower() == ".json" and not p.name.startswith(".") and p.is_file()
        ]
    except OSError as exc:
        raise ViaFormatError(folder, "", f"cannot list folder: {exc.strerror or exc}") from None
    return sorted(files, key=lambda p: natural_sort_key(p.name))


NOT_LABELME = "not a labelme file (no 'shapes'/'imagePath'), in a folder of labelme files"


def left_out(path: Path, exc: ViaFormatError) -> str:
    """The message of a file of a labelme folder that is left out for ``exc`` (an error of any reader): what
    is wrong with it as a labelme file."""
    if exc.where.startswith(("line ", "byte ")) or exc.problem.startswith(("cannot read", "file is larger")):
        why = str(exc)  # not JSON at all, or not readable
    else:
        try:
            labelme = is_labelme(parse_file(read_file(path), path))
        except ViaFormatError as again:
            labelme, exc = True, again
        why = str(exc) if labelme else f"{path}: {NOT_LABELME}"
    return f"{why}; the file is left out"


def load_labelme_folder(
    folder: str | Path, messages: list[str] | None = None, class_attr: str | None = None
) -> Project:
    """One project of every labelme file in ``folder`` (one image each, in natural file order). Every
    ``*.json`` there should be a labelme file: one that cannot be read as one is left out and named in
    ``messages`` (without ``messages`` its ``ViaFormatError`` is raised), never silently; when none can be
    read, the first one's error is raised."""
    folder = Path(folder)
    files = labelme_files(folder)
    if not files:
        raise ViaFormatError(folder, "", "no labelme JSON files in this folder")
    images = []
    failures: list[ViaFormatError] = []
    for p in files:
        notes: list[str] = []
        try:
            value = parse_file(read_file(p), p)
            if not is_labelme(value):
                raise ViaFormatError(p, "", NOT_LABELME)
            images.append(labelme_entry(value, p, notes, class_attr))
        except ViaFormatError as exc:
            if messages is None:
                raise
            failures.append(exc)
            notes = [f"{exc}; the file is left out"]  # (its labelme error already)
        if messages is not None:
            messages.extend(notes)
    if not images:
        raise failures[0]
    return foreign_project(images)
