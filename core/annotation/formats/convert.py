"""``viaseg convert IN OUT [--to via1|via2|via2-project|via3|csv|coco|labelme]`` and the COCO export.

IN is a VIA file (JSON or CSV), a COCO file, a labelme JSON file or a folder of them (read by
:func:`viaseg.core.annotation.formats.foreign.load_input`); for ``--to labelme`` OUT is a folder that gets one labelme JSON per
image (:mod:`viaseg.core.annotation.formats.labelme_io`). With no ``--to`` the input is written back in its own format (for a VIA
file a lossless round trip: the way to normalise or check a file).

``coco`` writes an MS-COCO instance file with polygon segmentations and *real* polygon areas
(shoelace, unlike VIA's bbox area): rects as their 4 corners, circles/ellipses as 72-gons; polylines and points
are not areas and are reported as skipped. Categories come from the class attribute (``--class-attr``, else a
radio/dropdown region attribute, else ``class``/``name``/``label``/``category``/``type``), or a single
``damage`` category; with a guessed attribute, a region without a value of it is in the ``damage`` category
too (with ``--class-attr`` it is skipped). Image width/height come from the image file (EXIF-rotated), else
from ``file_attributes`` width/height, else the image is skipped with a message.

:func:`convert_input` writes nothing when the result would lose every image or every region the input has,
and never writes another format over its own input file; what it skipped is counted in its result.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...base.errors import ImageReadError, ViaSaveError
from ...base.fsutil import atomic_write
from ..project import Project
from ..project import class_attribute as class_of
from . import via3
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
    unlabelled = 0
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
            if cname is None and class_attr is None:  # guessed attribute: an unlabelled region is damage
                cname, unlabelled = DEFAULT_CATEGORY, unlabelled + 1
            if cname is None:
                msgs.append(f"{im.filename}: region {i} skipped: no '{attr}' value")
                continue
            cid = categories.setdefault(cname, len(categories) + 1)
            annotations.append(_annotation(len(annotations) + 1, image_id, cid, flat))
    if unlabelled:
        msgs.append(
            f"note: {unlabelled} region(s) without a '{attr}' value are in the category '{DEFAULT_CATEGORY}'"
        )
    if not categories:
        categories[DEFAULT_CATEGORY] = 1
    return _coco_file(images, annotations, categories, attr)


@dataclass
class Converted:
    """What :func:`convert_input` read and wrote. The project's images and regions that are not in the output,
    and the things the reader could not load (``unread``), are each described in the messages."""

    project: Project
    kind: str  # the input's format (a VIA format name, ``coco`` or ``labelme``)
    fmt: str  # the output's
    images: int  # written
    regions: int  # written
    unread: int = 0  # messages of the reader: each names something of the input it did not load

    @property
    def skipped_images(self) -> int:
        return len(self.project.images) - self.images

    @property
    def skipped_regions(self) -> int:
        return self.project.region_count - self.regions

    @property
    def skipped(self) -> int:
        return self.skipped_images + self.skipped_regions + self.unread


def convert(
    src: str | Path,
    dst: str | Path,
    to: str | None = None,
    class_attr: str | None = None,
    messages: list[str] | None = None,
) -> Project:
    """Read ``src`` and write ``dst`` (atomically, keeping ``dst.bak`` if it existed) in ``to``."""
    return convert_input(src, dst, to, class_attr, messages).project


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _refuse_loss(c: Converted, src, dst) -> None:
    """``ViaSaveError`` when the output would hold none of the input's images, or none of its regions."""
    n_images, n_regions = len(c.project.images), c.project.region_count
    if n_images and not c.images:
        lost = f"every image of {src} ({n_images})"
    elif n_regions and not c.regions:
        lost = f"every region of {src} ({n_regions})"
    elif not n_images and c.skipped:
        lost = f"everything in {src}"
    else:
        return
    raise ViaSaveError(f"{dst}: not written: the {c.fmt} output would lose {lost}; see the messages above")


def convert_input(
    src: str | Path,
    dst: str | Path,
    to: str | None = None,
    class_attr: str | None = None,
    messages: list[str] | None = None,
) -> Converted:
    """:func:`convert`, returning what was read and written. ``dst`` is written only when it keeps some of the
    input's images and regions (else ``ViaSaveError``, nothing written); an existing ``dst`` is first copied to
    ``dst.bak`` (every time). ``dst`` may be ``src`` itself only when written in the input's own format."""
    from .foreign import load_input

    msgs = messages if messages is not None else []
    before = len(msgs)
    project, kind = load_input(src, msgs, class_attr)
    read_skips = len(msgs) - before  # every message of a reader names something it did not load
    fmt = to or kind
    if fmt not in TARGETS:
        raise ValueError(f"unknown target format {fmt!r}")
    if fmt == kind == "via3" and via3.not_loaded(project):
        read_skips -= 1  # written back as it was read
    if fmt != kind and _same_file(src, dst):
        raise ViaSaveError(
            f"{dst}: not written: it is the input file ({kind}); writing it as {fmt} would replace it. "
            "Choose another output file"
        )
    if fmt == "labelme":
        from .labelme_write import labelme_documents, write_labelme

        docs = labelme_documents(project, dst, class_attr, messages=msgs)
        n_images, n_regions = len(docs), sum(len(d["shapes"]) for _, d in docs)
    else:
        try:
            if fmt == "coco":
                value = to_coco(project, class_attr, messages=msgs)
                n_images, n_regions = len(value["images"]), len(value["annotations"])
                text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            else:
                text = dumps_via(project, fmt, dst)
                n_images, n_regions = len(project.images), project.region_count
            data = text.encode("utf-8")
        except (ValueError, TypeError, RecursionError) as exc:
            raise ViaSaveError(f"{dst}: cannot write {src} as {fmt}: {exc}") from exc
    result = Converted(project, kind, fmt, n_images, n_regions, read_skips)
    _refuse_loss(result, src, dst)
    if fmt == "labelme":
        write_labelme(docs, fresh_backup=True)
        return result
    try:
        atomic_write(dst, data, fresh_backup=True)
    except OSError as exc:
        raise ViaSaveError(f"{dst}: cannot save ({exc.strerror or exc})") from exc
    return result
