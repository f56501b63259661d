"""Reading MS-COCO instance files into viaseg projects (the export is :func:`viaseg.core.annotation.formats.convert.to_coco`).

Each annotation becomes regions of its image, each with the category's name in the class attribute (``name``;
for a file viaseg's own ``to_coco`` wrote, the attribute it took the categories from, which it records as
their ``supercategory``):

* polygon segmentation: one VIA polygon per COCO polygon, vertices exactly as written (a COCO annotation's
  polygons are a union, as pycocotools reads them; VIA regions of one class rasterize to the same union);
* RLE (``iscrowd`` 1), uncompressed (``counts`` a list) or compressed (``counts`` a string): decoded here, no
  pycocotools needed, then traced into VIA polygons by :func:`viaseg.core.annotation.raster.mask_to_polygons` (holes
  bridged, only collinear vertices dropped: they fill back to the same pixels);
* no segmentation but a ``bbox`` (a detection file): a VIA rect.

An annotation that gives several regions marks them with ``group_id`` = its id (labelme's way of saying "one
object"); crowd regions get ``iscrowd`` = ``"1"``. Images keep COCO's order and ``file_name`` (relative to the
COCO file's folder), and their ``width``/``height`` as file attributes (as VIA 2's COCO import does). Malformed input raises only ``ViaFormatError`` (file, JSON path, problem).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...base.errors import ViaFormatError
from ..project import ImageEntry, Project, Region
from .foreign import (
    CLASS_ATTR,
    MAX_MASK_PIXELS,
    foreign_project,
    image_entry,
    mask_shapes,
    parse_file,
    read_file,
)
from .via_common import show
from .via_values import check_dict, check_number, check_shape

VIASEG_EXPORT = "exported by viaseg"  # to_coco's info.description

__all__ = ["decode_rle", "is_coco", "coco_project", "load_coco", "loads_coco"]


def is_coco(value: Any) -> bool:
    """A parsed JSON value that is a COCO file (well formed or not: the reader says what is wrong): it has at
    least two of the lists ``images``, ``annotations``, ``categories``."""
    return isinstance(value, dict) and sum(k in value for k in ("images", "annotations", "categories")) >= 2


def _check_id(v: Any, where: str, path) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ViaFormatError(path, where, f"expected an id (integer or string), got {show(v)}")


def _list(v: Any, where: str, path, what: str) -> list:
    if not isinstance(v, list):
        raise ViaFormatError(path, where, f"expected a list of {what}, got {show(v)}")
    return v


# --------------------------------------------------------------------------------------------------- RLE


def _string_counts(s: str, where: str, path) -> list[int]:
    """Run lengths of compressed RLE: pycocotools' ``rleFrString`` (6-bit groups from character 48, the
    high bit continuing, a sign bit in the last group, each count after the second a delta from the one two
    before)."""
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ViaFormatError(path, where, "compressed RLE ends in the middle of a number")
            c = ord(s[p]) - 48
            if not 0 <= c < 64 or k > 12:  # 13 groups of 5 bits: beyond pycocotools' 64-bit counts
                raise ViaFormatError(path, where, f"not compressed RLE at character {p}: {s[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_rle(rle: Any, where: str = "segmentation", path=None) -> np.ndarray:
    """The ``HxW`` uint8 0/1 mask of a COCO RLE (``{"size": [h, w], "counts": [...] or "..."}``);
    ``ViaFormatError`` for anything pycocotools would not decode to the same mask."""
    check_dict(rle, where, path, "an RLE object")
    size = rle.get("size")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in size)
    ):
        raise ViaFormatError(path, f"{where}.size", f"expected [height, width], got {show(size)}")
    h, w = size
    if h * w > MAX_MASK_PIXELS:
        raise ViaFormatError(path, f"{where}.size", f"a mask of {w}x{h} pixels is too large")
    counts = rle.get("counts")
    if isinstance(counts, str):
        counts = _string_counts(counts, f"{where}.counts", path)
    elif isinstance(counts, list):
        for i, c in enumerate(counts):
            if isinstance(c, bool) or not isinstance(c, int):
                raise ViaFormatError(path, f"{where}.counts[{i}]", f"expected a run length, got {show(c)}")
    else:
        raise ViaFormatError(path, f"{where}.counts", f"expected a list or a string, got {show(counts)}")
    if any(c < 0 for c in counts):
        raise ViaFormatError(path, f"{where}.counts", "negative run length")
    total = sum(counts)
    if total != h * w:
        raise ViaFormatError(
            path, f"{where}.counts", f"run lengths add up to {total}, not {h} x {w} = {h * w}"
        )
    values = np.zeros(len(counts), np.uint8)
    values[1::2] = 1  # runs alternate, starting with background
    flat = np.repeat(values, np.asarray(counts, dtype=np.int64))
    return np.ascontiguousarray(flat.reshape(w, h).T)  # column-major, as pycocotools stores it


# --------------------------------------------------------------------------------------------------- shapes


def _polygon_shapes(seg: list, where: str, path, messages: list[str]) -> list[dict]:
    shapes = []
    for j, poly in enumerate(seg):
        w = f"{where}[{j}]"
        _list(poly, w, path, "coordinates [x1, y1, x2, y2, ...]")
        for k, v in enumerate(poly):
            check_number(v, f"{w}[{k}]", path)
        if len(poly) % 2:
            raise ViaFormatError(path, w, f"odd number of coordinates ({len(poly)})")
        if len(poly) < 6:
            messages.append(f"{path}: {w}: polygon with {len(poly) // 2} point(s) skipped")
            continue
        shapes.append({"name": "polygon", "all_points_x": poly[0::2], "all_points_y": poly[1::2]})
    return shapes


def _bbox_shapes(a: dict, where: str, path) -> list[dict]:
    bbox = a.get("bbox")
    if bbox is None:
        return []
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise ViaFormatError(path, f"{where}.bbox", f"expected [x, y, width, height], got {show(bbox)}")
    for k, v in enumerate(bbox):
        check_number(v, f"{where}.bbox[{k}]", path)
    x, y, w, h = bbox
    return [{"name": "rect", "x": x, "y": y, "width": w, "height": h}] if w > 0 and h > 0 else []


def _annotation_shapes(a: dict, where: str, path, messages: list[str]) -> list[dict]:
    seg = a.get("segmentation")
    if isinstance(seg, dict):
        shapes = mask_shapes(decode_rle(seg, f"{where}.segmentation", path))
    elif isinstance(seg, list) and seg:
        shapes = _polygon_shapes(seg, f"{where}.segmentation", path, messages)
    elif seg is None or seg == []:
        shapes = _bbox_shapes(a, where, path)
    else:
        raise ViaFormatError(
            path, f"{where}.segmentation", f"expected a list of polygons or an RLE object, got {show(seg)}"
        )
    for s in shapes:
        check_shape(s, where, path)
    return shapes


def _annotation_regions(
    a: dict, where: str, path, cats: dict, attr: str, messages: list[str]
) -> list[Region]:
    attrs: dict = {}
    if a.get("category_id") is not None:
        cid = a["category_id"]
        _check_id(cid, f"{where}.category_id", path)
        if cid not in cats:
            raise ViaFormatError(path, f"{where}.category_id", f"no category has id {show(cid)}")
        attrs[attr] = cats[cid]
    crowd = a.get("iscrowd", 0)
    if crowd is not None and (not isinstance(crowd, (int, bool)) or crowd not in (0, 1)):
        raise ViaFormatError(path, f"{where}.iscrowd", f"expected 0 or 1, got {show(crowd)}")
    shapes = _annotation_shapes(a, where, path, messages)
    if not shapes:
        messages.append(f"{path}: {where}: no region (empty segmentation and no bbox)")
        return []
    if crowd:
        attrs["iscrowd"] = "1"
    ann_id = a.get("id")
    if len(shapes) > 1 and isinstance(ann_id, (int, str)) and not isinstance(ann_id, bool):
        attrs["group_id"] = str(ann_id)
    return [Region(shape=s, attributes=dict(attrs)) for s in shapes]


# --------------------------------------------------------------------------------------------------- file


def _categories(data: dict, path) -> dict:
    cats: dict = {}
    raw = data.get("categories")
    for i, c in enumerate(_list(raw, "categories", path, "categories") if raw is not None else []):
        check_dict(c, f"categories[{i}]", path, "a category object")
        _check_id(c.get("id"), f"categories[{i}].id", path)
        name = c.get("name")
        if not isinstance(name, str):
            raise ViaFormatError(path, f"categories[{i}].name", f"expected a string, got {show(name)}")
        if c["id"] in cats:
            raise ViaFormatError(path, f"categories[{i}].id", f"category id {show(c['id'])} appears twice")
        cats[c["id"]] = name
    return cats


def _class_attr_of(data: dict) -> str:
    """``to_coco`` records the attribute it took categories from as their supercategory: read it back there."""
    from .convert import DEFAULT_CATEGORY

    info = data.get("info")
    if not isinstance(info, dict) or info.get("description") != VIASEG_EXPORT:
        return CLASS_ATTR
    sups = {
        s
        for c in data.get("categories") or []
        if isinstance(c, dict) and isinstance(s := c.get("supercategory"), str)
    }
    sup = sups.pop() if len(sups) == 1 else ""
    return sup if sup.strip() and sup != DEFAULT_CATEGORY else CLASS_ATTR


def _dimension(im: dict, key: str, where: str, path) -> int | None:
    v = im.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ViaFormatError(path, f"{where}.{key}", f"expected a positive integer, got {show(v)}")
    return v


def _images(data: dict, path, base_dir: Path | None) -> tuple[list[ImageEntry], dict]:
    images: list[ImageEntry] = []
    by_id: dict = {}
    if "images" not in data:
        raise ViaFormatError(
            path, "images", 'the COCO file has no "images" list (annotations refer to its images)'
        )
    for i, im in enumerate(_list(data.get("images"), "images", path, "images")):
        where = f"images[{i}]"
        check_dict(im, where, path, "an image object")
        _check_id(im.get("id"), f"{where}.id", path)
        if im["id"] in by_id:
            raise ViaFormatError(path, f"{where}.id", f"image id {show(im['id'])} appears twice")
        name = im.get("file_name")
        if not isinstance(name, str) or not name.strip():
            raise ViaFormatError(
                path, f"{where}.file_name", f"expected the image's file name, got {show(name)}"
            )
        w, h = _dimension(im, "width", where, path), _dimension(im, "height", where, path)
        entry = image_entry(name, base_dir, w, h, keep_size=True)
        by_id[im["id"]] = entry
        images.append(entry)
    return images, by_id


def coco_project(
    data: Any, path, messages: list[str] | None = None, class_attr: str | None = None
) -> Project:
    """The project of a parsed COCO file (``path`` names it in errors; image names resolve next to it)."""
    msgs = messages if messages is not None else []
    check_dict(data, "(top level)", path, "a COCO object")
    base_dir = Path(path).parent if path is not None else None
    cats = _categories(data, path)
    attr = class_attr or _class_attr_of(data)
    images, by_id = _images(data, path, base_dir)
    for i, a in enumerate(_list(data.get("annotations"), "annotations", path, "annotations")):
        where = f"annotations[{i}]"
        check_dict(a, where, path, "an annotation object")
        iid = a.get("image_id")
        _check_id(iid, f"{where}.image_id", path)
        if iid not in by_id:
            raise ViaFormatError(path, f"{where}.image_id", f"no image has id {show(iid)}")
        by_id[iid].regions.extend(_annotation_regions(a, where, path, cats, attr, msgs))
    return foreign_project(images)


def loads_coco(
    data: bytes | str, path=None, messages: list[str] | None = None, class_attr: str | None = None
) -> Project:
    """The project of a COCO file's content."""
    return coco_project(parse_file(data, path), path, messages, class_attr)


def load_coco(path: str | Path, messages: list[str] | None = None, class_attr: str | None = None) -> Project:
    """Read a COCO instance file. Raises ``ViaFormatError`` naming it (and the JSON path) and nothing else."""
    p = Path(path)
    return loads_coco(read_file(p), p, messages, class_attr)
