"""Writing labelme files: one labelme 5 JSON per image of a project (see :mod:`viaseg.core.annotation.formats.labelme_io`).

Each file is what labelme's own ``LabelFile.save`` writes (``version``, ``flags``, ``shapes``, ``imagePath``,
``imageData`` null, ``imageHeight``, ``imageWidth``; two-space indent, UTF-8), so labelme opens it and finds
the image through ``imagePath``, relative to the JSON file. Rectangles and circles get exactly the two points
labelme's canvas expects; shapes labelme cannot draw (a polygon of fewer than 3 points, an empty polyline)
are skipped and reported.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...base.errors import ViaSaveError
from ...base.fsutil import atomic_write
from ..project import ImageEntry, Project
from .convert import DEFAULT_CATEGORY, _dims, _value_name, class_attribute
from .via_values import is_number

LABELME_VERSION = "5.5.0"
KEPT_ATTRIBUTES = ("group_id", "flags", "description")  # what a labelme shape holds besides its label


def _num(shape: dict, key: str):
    v: Any = shape.get(key)  # any JSON value
    if not is_number(v) or not math.isfinite(v):
        raise ValueError(key)
    return v


def _xy_points(shape: dict) -> list[list]:
    xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise ValueError("points")
    if not all(is_number(v) and math.isfinite(v) for v in xs + ys):
        raise ValueError("points")
    return [[x, y] for x, y in zip(xs, ys, strict=True)]


def labelme_geometry(shape: Any) -> tuple[str | None, list, str]:
    """``(shape_type, points, note)`` of a VIA shape, or ``(None, [], reason)`` when labelme cannot hold it.
    ``note`` says when the shape changed kind (an ellipse becomes a polygon)."""
    kind = shape.get("name") if isinstance(shape, dict) else None
    try:
        if kind in ("polygon", "polyline"):
            pts = _xy_points(shape)
            if len(pts) < (3 if kind == "polygon" else 1):
                return None, [], f"{kind} with {len(pts)} point(s); labelme cannot draw it"
            return ("polygon" if kind == "polygon" else "linestrip"), pts, ""
        if kind == "rect":
            x, y, w, h = (_num(shape, k) for k in ("x", "y", "width", "height"))
            (x0, x1), (y0, y1) = sorted((x, x + w)), sorted((y, y + h))
            return "rectangle", [[x0, y0], [x1, y1]], ""
        if kind == "circle":
            cx, cy, r = _num(shape, "cx"), _num(shape, "cy"), _num(shape, "r")
            return "circle", [[cx, cy], [cx + abs(r), cy]], ""
        if kind == "point":
            return "point", [[_num(shape, "cx"), _num(shape, "cy")]], ""
        if kind == "ellipse":
            from ..raster import shape_polygon

            poly = shape_polygon(shape, n=72)
            if poly is None:
                raise ValueError("ellipse")
            return (
                "polygon",
                [[round(float(x), 3), round(float(y), 3)] for x, y in poly],
                "ellipse as a polygon",
            )
    except (ValueError, TypeError, OverflowError):
        return None, [], f"invalid {kind}"
    return None, [], f"unknown shape {kind!r}"


def _group_id(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v.strip())
    return None


def _shape_out(region, attr: str | None, options: dict, dropped: set[str]) -> tuple[dict | None, str]:
    kind, points, why = labelme_geometry(region.shape)
    if kind is None:
        return None, why
    a = region.attributes if isinstance(region.attributes, dict) else {}
    label = DEFAULT_CATEGORY if attr is None else (_value_name(a.get(attr), options) or "")
    flags = a.get("flags")
    desc = a.get("description")
    for k, v in a.items():
        if k != attr and (
            k not in KEPT_ATTRIBUTES
            or (k == "flags" and not isinstance(v, dict))
            or (k == "description" and not isinstance(v, str))
        ):
            dropped.add(k)
    shape = {
        "label": label,
        "points": points,
        "group_id": _group_id(a.get("group_id")),
        "description": desc if isinstance(desc, str) else "",
        "shape_type": kind,
        "flags": {str(k): bool(v) for k, v in flags.items()} if isinstance(flags, dict) else {},
    }
    return shape, why


def image_path_from(entry: ImageEntry, out_dir: Path) -> str:
    """``entry``'s image as a path relative to ``out_dir`` (labelme's ``imagePath``), ``/``-separated."""
    if "://" in entry.filename:
        return entry.filename
    src = os.path.abspath(entry.path)
    try:
        rel = os.path.relpath(src, os.path.abspath(out_dir))
    except ValueError:  # another drive (Windows): only an absolute path can name it
        rel = src
    return Path(rel).as_posix()


def labelme_document(
    entry: ImageEntry,
    out_dir: Path,
    attr: str | None,
    options: dict | None = None,
    size_of: Callable | None = None,
    messages: list[str] | None = None,
    dropped: set[str] | None = None,
) -> dict:
    """The labelme file of one image, to be written in ``out_dir``. Skipped regions go to ``messages``,
    names of attributes labelme cannot hold to ``dropped``."""
    if size_of is None:
        from ...imaging.imageio import image_size as size_of
    msgs = messages if messages is not None else []
    dropped = dropped if dropped is not None else set()
    shapes = []
    for i, r in enumerate(entry.regions):
        shape, why = _shape_out(r, attr, options or {}, dropped)
        if shape is None:
            msgs.append(f"{entry.filename}: region {i} skipped: {why}")
            continue
        if why:
            msgs.append(f"{entry.filename}: region {i}: written as a labelme {shape['shape_type']} ({why})")
        shapes.append(shape)
    dims, why = _dims(entry, size_of)
    if dims is None:
        msgs.append(f"{entry.filename}: imageWidth/imageHeight written as null: the size is unknown ({why})")
    flags = entry.file_attributes.get("flags") if isinstance(entry.file_attributes, dict) else None
    return {
        "version": LABELME_VERSION,
        "flags": {str(k): bool(v) for k, v in flags.items()} if isinstance(flags, dict) else {},
        "shapes": shapes,
        "imagePath": image_path_from(entry, out_dir),
        "imageData": None,
        "imageHeight": dims[1] if dims else None,
        "imageWidth": dims[0] if dims else None,
    }


def json_names(images: list[ImageEntry]) -> list[str]:
    """A JSON file name per image: the image's stem (where labelme looks for it), ``~2``... when two images
    share a stem (compared without case: the file systems of Windows and macOS ignore it)."""
    seen: set[str] = set()
    names = []
    for im in images:
        stem = Path(im.filename.replace("\\", "/").rstrip("/")).stem.lstrip(".") or "image"
        name, n = f"{stem}.json", 2
        while name.casefold() in seen:
            name, n = f"{stem}~{n}.json", n + 1
        seen.add(name.casefold())
        names.append(name)
    return names


def labelme_documents(
    project: Project,
    out_folder: str | Path,
    class_attr: str | None = None,
    size_of: Callable | None = None,
    messages: list[str] | None = None,
) -> list[tuple[Path, dict]]:
    """The labelme file (target path, content) of each image of ``project``, to be written in ``out_folder``;
    writes nothing. Skipped regions and the attributes labelme cannot hold go to ``messages``."""
    msgs = messages if messages is not None else []
    out = Path(out_folder)
    attr = class_attr if class_attr is not None else class_attribute(project)
    d = ((project.attributes or {}).get("region") or {}).get(attr) if attr else None
    options = d.get("options") if isinstance(d, dict) and isinstance(d.get("options"), dict) else {}
    dropped: set[str] = set()
    docs = [
        (out / name, labelme_document(im, out, attr, options, size_of, msgs, dropped))
        for im, name in zip(project.images, json_names(project.images), strict=True)
    ]
    if dropped:
        msgs.append(
            "region attributes not written (a labelme shape has no place for them): "
            + ", ".join(sorted(map(str, dropped)))
        )
    return docs


def write_labelme(docs: list[tuple[Path, dict]], fresh_backup: bool = False) -> list[Path]:
    """Write the files of :func:`labelme_documents` (their folder created if needed), each atomically; an
    existing file is first kept as ``NAME.bak`` (see :func:`viaseg.core.base.fsutil.atomic_write`)."""
    written = []
    for target, doc in docs:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ViaSaveError(f"{target.parent}: cannot create the folder ({exc.strerror or exc})") from exc
        try:
            data = json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False).encode("utf-8")
            atomic_write(target, data, fresh_backup=fresh_backup)
        except (ValueError, TypeError) as exc:
            raise ViaSaveError(f"{target}: cannot write {doc.get('imagePath')} as labelme: {exc}") from exc
        except OSError as exc:
            raise ViaSaveError(f"{target}: cannot save ({exc.strerror or exc})") from exc
        written.append(target)
    return written


def to_labelme(
    project: Project,
    out_folder: str | Path,
    class_attr: str | None = None,
    size_of: Callable | None = None,
    messages: list[str] | None = None,
) -> list[Path]:
    """Write one labelme JSON per image of ``project`` into ``out_folder`` (created if needed); returns the
    files. An existing file is replaced atomically and first kept as ``NAME.bak``. Raises ``ViaSaveError``."""
    out = Path(out_folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViaSaveError(f"{out}: cannot create the folder ({exc.strerror or exc})") from exc
    return write_labelme(labelme_documents(project, out, class_attr, size_of, messages))
