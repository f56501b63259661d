"""``viaseg convert IN OUT [--to via1|via2|via2-project|via3|csv|coco|labelme]`` and the COCO export.

IN is a VIA file (JSON or CSV), a COCO file, a labelme JSON file or a folder of them (read by
:func:`viaseg.core.annotation.formats.foreign.load_input`); for ``--to labelme`` OUT is a folder that gets one labelme JSON per
image (:mod:`viaseg.core.annotation.formats.labelme_io`). With no ``--to`` the input is written back in its own format (for a VIA
file a lossless round trip: the way to normalise or check a file).

``coco`` writes an MS-COCO instance file with polygon segmentations and *real* polygon areas
(shoelace, unlike VIA's bbox area): rects as their 4 corners, circles/ellipses as 72-gons; polylines and points
are not areas and are reported as skipped. Categories come from the class attribute (``--class-attr``, else a
radio/dropdown region attribute, else ``class``/``name``/``label``/``category``/``type``), or a single
``damage`` category. Image width/height come from the image file (EXIF-rotated), else from
``file_attributes`` width/height, else the image is skipped with a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ...base.errors import ImageReadError, ViaSaveError
from ...base.fsutil import atomic_write
from ..project import Project
from ..project import class_attribute as class_of
from .via_io import FORMATS, dumps_via

TARGETS = (*FORMATS, "coco", "labelme")
DEFAULT_CATEGORY = "damage"


def polygon_area(xs: list[float], ys: list[float]) -> float:
    """Shoelace area of a simple polygon (absolute value; the closing edge is implicit)."""
    n = len(xs)
    s = 0.0
    for i in range(n):
        j = (i + 1) % n
        s += float(xs[i]) * float(ys[j]) - float(xs[j]) * float(ys[i])
    return abs(s) / 2.0


def coco_polygon(shape: dict) -> tuple[list[float] | None, str]:
    """Flat ``[x1, y1, x2, y2, ...]`` outline of an area shape, or ``(None, reason)``."""
    kind = shape.get("name")
    if kind == "polygon":
        xs, ys = shape.get("all_points_x") or [], shape.get("all_points_y") or []
        if len(xs) < 3 or len(xs) != len(ys):
            return None, f"polygon with {min(len(xs), len(ys))} point(s); COCO needs at least 3"
        return [v for p in zip(xs, ys, strict=True) for v in p], ""
    if kind in ("rect", "circle", "ellipse"):
        from ..raster import shape_polygon

        pts = shape_polygon(shape, n=72)
        if pts is None:
            return None, f"invalid {kind}"
        return [round(float(v), 3) for v in pts.reshape(-1)], ""
    if kind in ("polyline", "point"):
        return None, f"a {kind} is not an area"
    return None, f"unknown shape {kind!r}"


def class_attribute(project: Project) -> str | None:
    """The region attribute that names a region's class in ``project`` (:func:`project.class_attribute`), or
    None (then everything is one category)."""
    return class_of(project.attributes, (r for im in project.images for r in im.regions))


def _value_name(value, options: dict) -> str | None:
    if isinstance(value, dict):  # checkbox: first checked option
        value = next((k for k, on in value.items() if on), None)
    if value is None or value == "":
        return None
    value = str(value)
    return str(options.get(value, value)) if options else value


def _dims(im, size_of) -> tuple[tuple[int, int] | None, str]:
    try:
        w, h = size_of(im.path)
        return (int(w), int(h)), ""
    except ImageReadError as exc:
        why = exc.problem
    fa = im.file_attributes
    try:
        w, h = int(float(fa["width"])), int(float(fa["height"]))
        if w > 0 and h > 0:
            return (w, h), ""
    except (KeyError, TypeError, ValueError, OverflowError):
        pass
    return None, why


def _class_options(project: Project, attr: str | None) -> tuple[dict, dict[str, int]]:
    """The options of the class attribute (value -> name), and the categories they give, in option order."""
    d = ((project.attributes or {}).get("region") or {}).get(attr) if attr else None
    options = o if isinstance(d, dict) and isinstance(o := d.get("options"), dict) else {}
    categories: dict[str, int] = {}
    if attr and options:
        for desc in options.values():
            categories.setdefault(str(desc), len(categories) + 1)
    return options, categories


def _annotation(ann_id: int, image_id: int, category_id: int, flat: list[float]) -> dict:
    xs, ys = flat[0::2], flat[1::2]
    x0, y0 = min(xs), min(ys)
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": [flat],
        "area": polygon_area(xs, ys),
        "bbox": [x0, y0, max(xs) - x0, max(ys) - y0],
        "iscrowd": 0,
    }


def _coco_file(
    images: list[dict], annotations: list[dict], categories: dict[str, int], attr: str | None
) -> dict:
    return {
        "info": {
            "description": "exported by viaseg",
            "version": "1.0",
            "year": 0,
            "contributor": "",
            "url": "",
            "date_created": "",
        },
        "licenses": [{"id": 0, "name": "Unknown License", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": cid, "name": n, "supercategory": attr or DEFAULT_CATEGORY} for n, cid in categories.items()
        ],
    }


def to_coco(
    project: Project,
    class_attr: str | None = None,
    size_of: Callable | None = None,
    messages: list[str] | None = None,
) -> dict:
    """The COCO dict of ``project``. Skipped images/regions are described in ``messages``."""
    if size_of is None:
        from ...imaging.imageio import image_size as size_of
    msgs = messages if messages is not None else []
    attr = class_attr if class_attr is not None else class_attribute(project)
    options, categories = _class_options(project, attr)
    images: list[dict] = []
    annotations: list[dict] = []
    for im in project.images:
        dims, why = _dims(im, size_of)
        if dims is None:
            msgs.append(
                f"{im.filename}: image skipped: its size is unknown ({im.path}: {why}; "
                "no width/height file attributes)"
            )
            continue
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "width": dims[0],
                "height": dims[1],
                "file_name": im.filename,
                "license": 0,
                "date_captured": "",
            }
        )
        for i, r in enumerate(im.regions):
            flat, why = coco_polygon(r.shape)
            if flat is None:
                msgs.append(f"{im.filename}: region {i} skipped: {why}")
                continue
            cname = _value_name(r.attributes.get(attr), options) if attr else DEFAULT_CATEGORY
            if cname is None:
                msgs.append(f"{im.filename}: region {i} skipped: no '{attr}' value")
                continue
            cid = categories.setdefault(cname, len(categories) + 1)
            annotations.append(_annotation(len(annotations) + 1, image_id, cid, flat))
    if not categories:
        categories[DEFAULT_CATEGORY] = 1
    return _coco_file(images, annotations, categories, attr)


def convert(
    src: str | Path,
    dst: str | Path,
    to: str | None = None,
    class_attr: str | None = None,
    messages: list[str] | None = None,
) -> Project:
    """Read ``src`` and write ``dst`` (atomically, keeping ``dst.bak`` if it existed) in ``to``."""
    return convert_input(src, dst, to, class_attr, messages)[0]


def convert_input(
    src: str | Path,
    dst: str | Path,
    to: str | None = None,
    class_attr: str | None = None,
    messages: list[str] | None = None,
) -> tuple[Project, str]:
    """:func:`convert`, also returning the format ``src`` was read in (a VIA format, ``coco`` or ``labelme``)."""
    from .foreign import load_input

    project, kind = load_input(src, messages, class_attr)
    fmt = to or kind
    if fmt not in TARGETS:
        raise ValueError(f"unknown target format {fmt!r}")
    if fmt == "labelme":
        from .labelme_io import to_labelme

        to_labelme(project, dst, class_attr, messages=messages)
        return project, kind
    try:
        if fmt == "coco":
            text = json.dumps(
                to_coco(project, class_attr, messages=messages),
                ensure_ascii=False,
                separators=(",", ":"),
                allow_nan=False,
            )
        else:
            text = dumps_via(project, fmt, dst)
        data = text.encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        raise ViaSaveError(f"{dst}: cannot write {src} as {fmt}: {exc}") from exc
    try:
        atomic_write(dst, data)
    except OSError as exc:
        raise ViaSaveError(f"{dst}: cannot save ({exc.strerror or exc})") from exc
    return project, kind
