"""VIA 1.x / 2.x annotation JSON and VIA 2.x project files: reader and writer.

The reader shares the parsed dicts with the in-memory objects (``Region.shape`` *is* the file's
``shape_attributes`` dict...), and the writer never mutates them: it rebuilds only the containers (entry dicts,
``regions``) as shallow copies of the originals, so a save with no edit reproduces the same JSON value, key
order and unknown keys included, and a failed save leaves memory as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...base.errors import ViaFormatError
from ..project import ImageEntry, Project, Region
from .via_common import closed_shape, closes_polygons, derive_attributes, image_key, key_path, show
from .via_values import (
    OPTIONAL_KEYS,
    SHAPE_KEYS,
    check_attributes_schema,
    check_dict,
    check_number_list,
    check_shape,
    first_bad_number_list,
    number_ok,
)

V1_ONLY_KEYS = ("fileref", "base64_img_data", "base64_data")
JSON_FAMILY = ("via1", "via2", "via2-project")
VIA_DATA_FORMAT_VERSION = "2.0.10"


def default_settings(name: str = "via_project") -> dict:
    """``_via_settings`` exactly as VIA 2.0.11 creates it (``_via_init``), so its loader accepts every key."""
    return {
        "ui": {
            "annotation_editor_height": 25,
            "annotation_editor_fontsize": 0.8,
            "leftsidebar_width": 18,
            "image_grid": {
                "img_height": 80,
                "rshape_fill": "none",
                "rshape_fill_opacity": 0.3,
                "rshape_stroke": "yellow",
                "rshape_stroke_width": 2,
                "show_region_shape": True,
                "show_image_policy": "all",
            },
            "image": {
                "region_label": "__via_region_id__",
                "region_color": "__via_default_region_color__",
                "region_label_font": "10px Sans",
                "on_image_annotation_editor_placement": "NEAR_REGION",
            },
        },
        "core": {"buffer_size": 18, "filepath": {}, "default_filepath": ""},
        "project": {"name": name},
    }


# --------------------------------------------------------------------------------------------------- reading


def _read_region(r: Any, where: str, path) -> Region:
    check_dict(r, where, path, "a region object")
    shape = r.get("shape_attributes")
    if shape is None and "shape_attributes" not in r:
        shape = {}
    check_shape(shape, f"{where}.shape_attributes", path)
    attrs = r.get("region_attributes")
    if attrs is None and "region_attributes" not in r:
        attrs = {}
    check_dict(attrs, f"{where}.region_attributes", path)
    return Region(shape=shape, attributes=attrs, raw=r)


def _read_region_fast(r: Any, pending: list) -> Region | None:
    """``_read_region`` of the common region, without building its JSON path: an object whose shape and
    attributes are objects, the shape unknown or of valid numbers; the coordinate lists of a polygon/polyline
    (of equal lengths) are appended to ``pending``, left for ``read_entries`` to check all at once. ``None``:
    anything else, for ``_read_region`` to read (it accepts it or reports the problem)."""
    if type(r) is not dict:
        return None
    shape = r.get("shape_attributes")
    attrs = r.get("region_attributes")
    if type(shape) is not dict or type(attrs) is not dict:
        return None
    name = shape.get("name")
    if isinstance(name, str) and (spec := SHAPE_KEYS.get(name)) is not None:
        scalars, lists = spec
        for k in scalars:
            if k not in shape or not number_ok(shape[k]):
                return None
        for k in OPTIONAL_KEYS.get(name, ()):
            if k in shape and not number_ok(shape[k]):
                return None
        if lists:
            xs = shape.get(lists[0])
            ys = shape.get(lists[1])
            if type(xs) is not list or type(ys) is not list or len(xs) != len(ys):
                return None
            pending.append(xs)
            pending.append(ys)
    return Region(shape=shape, attributes=attrs, raw=r)


def _region_where(prefix: str, key: str, rid: int | str) -> str:
    w = key_path(prefix, key)
    return key_path(f"{w}.regions", rid) if isinstance(rid, str) else f"{w}.regions[{rid}]"


def _bad_filename(entry: dict, key: str, prefix: str, path) -> ViaFormatError:
    w = key_path(prefix, key)
    if "filename" not in entry:
        return ViaFormatError(path, w, "image entry without 'filename'")
    return ViaFormatError(path, f"{w}.filename", f"expected a string, got {show(entry.get('filename'))}")


def _read_regions(
    entry: dict, key: str, prefix: str, path, pending: list, owners: list[tuple[str, int | str]]
) -> list[Region]:
    """The regions of one image entry (a list, or an object keyed by region id in VIA1); the number lists of
    its polygons/polylines go to ``pending`` (their region in ``owners``) for ``read_entries`` to check."""
    regions_raw = entry.get("regions")
    regions: list[Region] = []
    if isinstance(regions_raw, (list, dict)):
        items = enumerate(regions_raw) if isinstance(regions_raw, list) else regions_raw.items()
        for rid, r in items:
            n = len(pending)
            region = _read_region_fast(r, pending)
            if region is None:
                region = _read_region(r, _region_where(prefix, key, rid), path)
            elif len(pending) != n:
                owners.append((key, rid))
            regions.append(region)
    elif regions_raw is not None or "regions" in entry:
        raise ViaFormatError(
            path,
            f"{key_path(prefix, key)}.regions",
            f"expected a list or an object, got {show(regions_raw)}",
        )
    return regions


def _check_pending(pending: list[list], owners: list[tuple[str, int | str]], prefix: str, path) -> None:
    """Report the first non-numeric value of the deferred polygon/polyline number lists."""
    bad = first_bad_number_list(pending)
    if bad >= 0:
        key, rid = owners[bad // 2]
        k = "all_points_y" if bad % 2 else "all_points_x"
        check_number_list(pending[bad], f"{_region_where(prefix, key, rid)}.shape_attributes.{k}", path)
        raise AssertionError(
            "check_number_list accepted what first_bad_number_list refused"
        )  # pragma: no cover


def read_entries(meta: Any, path, base_dir: Path | None, prefix: str = "") -> list[ImageEntry]:
    """Image entries of a VIA1/VIA2 metadata object (``{key: {filename, size, regions, file_attributes}}``).

    The first problem in file order is reported, as a check of each value in turn would; but the JSON paths of
    the messages are built only for a problem, and the numbers of all polygons are checked in one go at the end
    (or before reporting a later problem), which makes the checks of a big project several times faster."""
    check_dict(meta, prefix or "(top level)", path, "an object keyed by image id")
    images: list[ImageEntry] = []
    pending: list[list] = []  # all_points_x, all_points_y of each deferred polygon/polyline, in file order
    owners: list[tuple[str, int | str]] = []  # (entry key, region index or id) of each pair in `pending`
    error: ViaFormatError | None = None
    try:
        for key, entry in meta.items():
            if not isinstance(entry, dict):
                check_dict(entry, key_path(prefix, key), path, "an image entry object")
            filename = entry.get("filename")
            if not isinstance(filename, str):
                raise _bad_filename(entry, key, prefix, path)
            regions = _read_regions(entry, key, prefix, path, pending, owners)
            fa = entry.get("file_attributes")
            if fa is None and "file_attributes" not in entry:
                fa = {}
            if not isinstance(fa, dict):
                check_dict(fa, f"{key_path(prefix, key)}.file_attributes", path)
            images.append(
                ImageEntry(
                    key=key,
                    filename=filename,
                    size=entry.get("size"),
                    regions=regions,
                    file_attributes=fa,
                    raw=entry,
                    base_dir=base_dir,
                )
            )
    except ViaFormatError as exc:
        error = exc  # reported after any earlier problem among the deferred polygons
    _check_pending(pending, owners, prefix, path)
    if error is not None:
        raise error
    return images


def guess_annotation_fmt(meta: dict) -> str:
    """``via1`` if regions are objects ("0","1"...) or V1-only keys appear, else ``via2``."""
    v1_keys = False
    for entry in meta.values():
        if not isinstance(entry, dict):
            continue
        regions = entry.get("regions")
        if isinstance(regions, dict) and regions:
            return "via1"
        if isinstance(regions, list) and regions:
            return "via2"
        if any(k in entry for k in V1_ONLY_KEYS):
            v1_keys = True
    return "via1" if v1_keys else "via2"


def read_annotations(data: dict, path, base_dir: Path | None, fmt: str | None = None) -> Project:
    images = read_entries(data, path, base_dir)
    fmt = fmt or guess_annotation_fmt(data)
    return Project(images=images, fmt=fmt, path=None, attributes=derive_attributes(images), raw=data)


def read_project(data: dict, path, base_dir: Path | None) -> Project:
    if "_via_settings" in data:
        check_dict(data["_via_settings"], "_via_settings", path)
    images = read_entries(data["_via_img_metadata"], path, base_dir, "_via_img_metadata")
    attrs_raw = data.get("_via_attributes")
    if attrs_raw is None:
        attributes = derive_attributes(images)
    else:
        check_attributes_schema(attrs_raw, "_via_attributes", path)
        if isinstance(attrs_raw.get("region"), dict) and isinstance(attrs_raw.get("file"), dict):
            attributes = attrs_raw
        else:  # e.g. the minimal `{}` VIA accepts: give callers both levels, write the original back if unused
            attributes = {
                "region": dict(attrs_raw.get("region", {})),
                "file": dict(attrs_raw.get("file", {})),
            }
    ids = data.get("_via_image_id_list")
    if ids is not None:
        if not isinstance(ids, list):
            raise ViaFormatError(path, "_via_image_id_list", f"expected a list, got {show(ids)}")
        keys = set(data["_via_img_metadata"])
        for i, k in enumerate(ids):
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise ViaFormatError(path, f"_via_image_id_list[{i}]", f"expected an image id, got {show(k)}")
            if str(k) not in keys:
                raise ViaFormatError(
                    path, f"_via_image_id_list[{i}]", f"id {show(k)} has no entry in _via_img_metadata"
                )
    return Project(images=images, fmt="via2-project", path=None, attributes=attributes, raw=data)


# --------------------------------------------------------------------------------------------------- writing


def _region_out(r: Region, reuse_raw: bool, close: bool = False) -> dict:
    raw = r.raw if reuse_raw and isinstance(r.raw, dict) else None
    if (
        raw is not None
        and raw.get("shape_attributes") is r.shape
        and raw.get("region_attributes") is r.attributes
    ):
        return raw  # untouched region: the very dict that was read (as it was, closed or not)
    out = dict(raw) if raw is not None else {}
    if raw is None or "shape_attributes" in raw or r.shape:
        out["shape_attributes"] = closed_shape(r.shape) if close else r.shape
    if raw is None or "region_attributes" in raw or r.attributes:
        out["region_attributes"] = r.attributes
    return out


def _regions_out(im: ImageEntry, container: str, reuse_raw: bool, close: bool = False) -> Any:
    raw_regions = im.raw.get("regions") if reuse_raw and isinstance(im.raw, dict) else None
    items = [_region_out(r, reuse_raw, close) for r in im.regions]
    if container == "list":
        if isinstance(raw_regions, list) and len(raw_regions) == len(items):
            if all(a is b for a, b in zip(raw_regions, items, strict=False)):
                return raw_regions
        return items
    keys = [str(i) for i in range(len(items))]
    if isinstance(raw_regions, dict) and len(raw_regions) == len(items):
        if all(r.raw is v for r, v in zip(im.regions, raw_regions.values(), strict=False)):
            keys = list(raw_regions)  # same regions in the same order: keep the file's own ids
            if all(a is b for a, b in zip(raw_regions.values(), items, strict=False)):
                return raw_regions
    return dict(zip(keys, items, strict=False))


def _entry_out(im: ImageEntry, fmt: str, src_fmt: str, close: bool = False) -> dict:
    raw = im.raw if src_fmt in JSON_FAMILY and isinstance(im.raw, dict) else None
    reuse = raw is not None
    if fmt == "via2-project":
        container = "list"
    elif fmt == src_fmt and raw is not None and isinstance(raw.get("regions"), (list, dict)):
        container = "list" if isinstance(raw["regions"], list) else "dict"
    else:
        container = "dict" if fmt == "via1" else "list"
    regions = _regions_out(im, container, reuse, close)
    size = im.size
    if raw is not None:
        out = dict(raw)
        if fmt != "via1" and src_fmt == "via1":
            for k in V1_ONLY_KEYS:
                out.pop(k, None)
        if out.get("filename") != im.filename:
            out["filename"] = im.filename
        if "size" in raw or size is not None:
            if raw.get("size") != size or type(raw.get("size")) is not type(size):
                out["size"] = size
        if "regions" in raw or regions:
            out["regions"] = regions
        if "file_attributes" in raw or im.file_attributes:
            out["file_attributes"] = im.file_attributes
        if fmt == "via2-project":  # VIA 2's project loader drops entries lacking any of these four
            out.setdefault("size", -1 if size is None else size)
            out.setdefault("regions", regions)
            out.setdefault("file_attributes", im.file_attributes)
        if (
            len(out) == len(raw)
            and all(k in raw and out[k] is raw[k] for k in out)
            and list(out) == list(raw)
        ):
            return raw  # untouched entry
        return out
    if size is None:
        size = -1
    if fmt == "via1":
        return {
            "fileref": "",
            "size": size,
            "filename": im.filename,
            "base64_img_data": "",
            "file_attributes": im.file_attributes,
            "regions": regions,
        }
    return {"filename": im.filename, "size": size, "regions": regions, "file_attributes": im.file_attributes}


def unique_keys(images: list[ImageEntry]) -> list[str]:
    """Metadata keys for writing: the entry keys as given; a repeated key gets a ``~2``, ``~3``... suffix so no
    entry is silently lost (a JSON object cannot hold the same key twice)."""
    seen: set[str] = set()
    keys = []
    for im in images:
        key = str(im.key) if im.key is not None else image_key(im.filename, im.size)
        if key in seen:
            n = 2
            while f"{key}~{n}" in seen:
                n += 1
            key = f"{key}~{n}"
        seen.add(key)
        keys.append(key)
    return keys


def build_metadata(project: Project, fmt: str) -> dict:
    src = project.fmt
    if src == fmt and isinstance(project.raw, dict):
        raw_meta = project.raw.get("_via_img_metadata") if src == "via2-project" else project.raw
    else:
        raw_meta = None
    keys = unique_keys(project.images)
    close = closes_polygons(
        project.images
    )  # the file's polygons repeat their first vertex (VIA 1): new ones too
    out = {k: _entry_out(im, fmt, src, close) for k, im in zip(keys, project.images, strict=False)}
    if isinstance(raw_meta, dict) and len(raw_meta) == len(out):
        if all(a == b and raw_meta[a] is out[b] for a, b in zip(raw_meta, out, strict=False)):
            return raw_meta
    return out


def build_annotations(project: Project, fmt: str) -> dict:
    return build_metadata(project, fmt)


def build_project_file(project: Project, name: str = "via_project") -> dict:
    meta = build_metadata(project, "via2-project")
    raw = project.raw if project.fmt == "via2-project" and isinstance(project.raw, dict) else None
    if raw is None:
        return {
            "_via_settings": default_settings(name),
            "_via_img_metadata": meta,
            "_via_attributes": _attributes_out(project),
            "_via_data_format_version": VIA_DATA_FORMAT_VERSION,
            "_via_image_id_list": list(meta),
        }
    out = dict(raw)
    out["_via_img_metadata"] = meta
    raw_attrs = raw.get("_via_attributes")
    if project.attributes is not raw_attrs:
        if not (isinstance(raw_attrs, dict) and project.attributes == {"region": {}, "file": {}}):
            out["_via_attributes"] = _attributes_out(project)
    ids = raw.get("_via_image_id_list")
    if "_via_image_id_list" not in raw:
        pass  # VIA before 2.0.10 did not write it; its loader then uses the metadata order
    elif isinstance(ids, list) and len(ids) == len(meta) and sorted(map(str, ids)) == sorted(meta):
        pass  # the file's own order (and int ids after a COCO import) stays
    else:
        out["_via_image_id_list"] = list(meta)
    return out


def _attributes_out(project: Project) -> dict:
    attrs = project.attributes if isinstance(project.attributes, dict) else {}
    derived = derive_attributes(project.images)
    out = {"region": dict(attrs.get("region") or {}), "file": dict(attrs.get("file") or {})}
    for level in ("region", "file"):  # VIA registers undeclared ones as text on load anyway; be explicit
        for k, v in derived[level].items():
            out[level].setdefault(k, v)
    if out == attrs:
        return attrs
    return out


# ------------------------------------------------------------------------------- regions as JSON text


def regions_to_json(regions: list[Region]) -> str:
    """Regions as VIA 2 region objects (``[{"shape_attributes": ..., "region_attributes": ...}]``) in JSON
    text: what the app puts on the clipboard, readable by :func:`regions_from_json` and by a person."""
    import json

    return json.dumps([{"shape_attributes": r.shape, "region_attributes": r.attributes} for r in regions])


def regions_from_json(text: str, source: str = "clipboard") -> list[Region]:
    """New regions from JSON text holding VIA region objects: a list of them (VIA 2), an object keyed by region
    id (VIA 1), one region object, or an image entry with ``regions``. Raises ``ViaFormatError`` naming
    ``source`` and the place of the first problem."""
    from .via_common import parse_json

    data = parse_json(text, source)
    if isinstance(data, dict) and "regions" in data and "shape_attributes" not in data:
        data = data["regions"]
    if isinstance(data, dict) and "shape_attributes" in data:
        data = [data]
    if isinstance(data, dict):
        items = [(key_path("", str(k)), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(f"[{i}]", v) for i, v in enumerate(data)]
    else:
        raise ViaFormatError(source, "(top level)", f"expected a list of regions, got {show(data)}")
    return [_read_region(r, where, source).clone() for where, r in items]
