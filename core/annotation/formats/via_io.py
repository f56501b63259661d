"""Reading and writing VIA files: the public API.

``load_via(path)`` auto-detects the format (``via1`` | ``via2`` | ``via2-project`` | ``via3`` | ``csv``) and returns
a :class:`~viaseg.core.annotation.project.Project`; ``save_via(project)`` writes it back in the format it came from, or in
``fmt``. A load followed by a save with no edit gives the same JSON value (key order, unknown keys, int vs
float, entries whose image is missing). Only ``ViaFormatError`` escapes the readers; only ``ViaSaveError``
escapes ``save_via``, and a failed save changes nothing in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...base.errors import ViaFormatError, ViaSaveError
from ...base.fsutil import atomic_write
from ..project import ImageEntry, Project
from . import via3, via_csv, via_json
from .via_common import (
    decode_text,
    detect_style,
    dump_json,
    gc_paused,
    image_key,
    key_path,
    parse_json,
    parse_json_stdlib,
    show,
)

FORMATS = ("via1", "via2", "via2-project", "via3", "csv")
MAX_FILE_BYTES = 512 * 1024 * 1024
BIG_FILE_BYTES = (
    1 << 20
)  # from this size on, a load leaves its objects in the oldest GC generation (gc_paused)

__all__ = [
    "FORMATS",
    "detect_format",
    "load_via",
    "loads_via",
    "dumps_via",
    "save_via",
    "new_entry",
]


def _json_kind(data, path) -> str:
    if not isinstance(data, dict):
        raise ViaFormatError(path, "(top level)", f"expected a JSON object (VIA file), got {show(data)}")
    if "_via_img_metadata" in data:
        return "via2-project"
    if isinstance(data.get("project"), dict) and ("metadata" in data or "file" in data or "view" in data):
        return "via3"
    if "images" in data and "annotations" in data and "categories" in data:
        raise ViaFormatError(
            path, "", "this is a COCO file, not a VIA file; import it in VIA 2 and save a VIA project first"
        )
    if set(data) <= {"region", "file"} and data:
        if all(
            isinstance(v, dict) and all(isinstance(d, dict) and "type" in d for d in v.values())
            for v in data.values()
        ):
            raise ViaFormatError(
                path, "", "this is a VIA attribute definition file (_via_attributes), not annotations"
            )
    if "_via_settings" in data or "_via_attributes" in data:
        raise ViaFormatError(path, "_via_img_metadata", "VIA 2 project file without '_via_img_metadata'")
    return "annotations"


def detect_format(text: str | bytes, path=None) -> str:
    """Format of a VIA file's content (parses JSON; use :func:`loads_via` to get the project)."""
    text = decode_text(text, path)
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return "csv"
    data = parse_json(text, path)
    kind = _json_kind(data, path)
    return via_json.guess_annotation_fmt(data) if kind == "annotations" else kind


def loads_via(text: str | bytes, path: str | Path | None = None, fmt: str | None = None) -> Project:
    """Parse VIA file content. ``path`` names the file in errors and sets the folder images resolve against.
    ``fmt`` forces a format (e.g. ``via1`` vs ``via2`` for a file with no regions)."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown VIA format {fmt!r}; expected one of {', '.join(FORMATS)}")
    with gc_paused(big=len(text) > BIG_FILE_BYTES):
        return _loads_via(text, path, fmt)


def _loads_via(content: str | bytes, path, fmt: str | None) -> Project:
    text = decode_text(content, path)
    raw = None
    if isinstance(content, bytes):  # the UTF-8 bytes of `text`: the fast JSON path reads them, no encode
        raw = memoryview(content)[3:] if content.startswith(b"\xef\xbb\xbf") else content
    p = Path(path) if path is not None else None
    base_dir = p.parent if p is not None else None
    stripped = text.lstrip()
    if fmt == "csv" or (fmt is None and not stripped.startswith(("{", "["))):
        if not stripped:
            raise ViaFormatError(path, "", "empty file")
        project = via_csv.read_csv(text, path, base_dir)
        project.path = p
        return project
    data = parse_json(text, path, raw)
    kind = _json_kind(data, path)
    data = _refuse_repeated_entries(text, raw, data, kind, path)
    if kind == "via2-project":
        project = via_json.read_project(data, path, base_dir)
    elif kind == "via3":
        project = via3.read_via3(data, path, base_dir)
    else:
        ann_fmt = fmt if fmt in ("via1", "via2") else None
        project = via_json.read_annotations(data, path, base_dir, ann_fmt)
    if fmt is not None and fmt != project.fmt:
        raise ViaFormatError(path, "", f"is a {project.fmt} file, not {fmt}")
    project.path = p
    project._via_style = detect_style(text)  # reproduce the file's own indentation on save
    return project


def _entry_tables(data: dict, kind: str) -> list[tuple[str, Any, str]]:
    """``(JSON path, object keyed by entry id, the key each entry holds)`` of a file's image-level objects."""
    if kind == "via2-project":
        return [("_via_img_metadata", data.get("_via_img_metadata"), "filename")]
    if kind == "via3":
        return [("file", data.get("file"), "fname"), ("metadata", data.get("metadata"), "vid")]
    return [("", data, "filename")]


def _dropped(entry: Any) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("filename"), str):
        regions = entry.get("regions")
        n = len(regions) if isinstance(regions, (list, dict)) else 0
        return f"the earlier entry of {entry['filename']!r} with {n} region(s)"
    if isinstance(entry, dict) and isinstance(entry.get("fname"), str):
        return f"the earlier file {entry['fname']!r}"
    if isinstance(entry, dict) and "vid" in entry:
        return f"an earlier region or file attribute of view {show(entry['vid'])}"
    return f"the earlier entry {show(entry)}"


def _refuse_repeated_entries(text: str, raw, data: dict, kind: str, path) -> dict:
    """``data``, or ``ViaFormatError`` naming the first image-level key the file writes twice (JSON keeps only
    the last of them: the others would be lost unseen, and gone from the file at the next save). The files are
    parsed again, with every key kept, only when an entry field occurs more often in the text than in the
    entries parsed (a cheap count; never fewer for a repeated entry)."""
    for _, table, field in _entry_tables(data, kind):
        if not isinstance(table, dict):
            continue
        held = sum(1 for e in table.values() if isinstance(e, dict) and field in e)
        quoted = f'"{field}"'
        written = raw.count(quoted.encode()) if isinstance(raw, bytes) else text.count(quoted)
        if written > held:
            break
    else:
        return data
    repeats: dict[int, list] = {}  # id(object) -> [(key, value JSON dropped)...] of an object repeating a key

    def hook(pairs: list) -> dict:
        d = dict(pairs)
        if len(d) != len(pairs):
            last = {k: i for i, (k, _) in enumerate(pairs)}
            repeats[id(d)] = [(k, v) for i, (k, v) in enumerate(pairs) if last[k] != i]
        return d

    data = parse_json_stdlib(text, path, hook)
    for prefix, table, _ in _entry_tables(data, kind):
        dropped = repeats.get(id(table), [])
        if dropped:
            key, entry = dropped[0]
            times = 1 + sum(k == key for k, _ in dropped)
            raise ViaFormatError(
                path,
                key_path(prefix, key),
                f"this key appears {times} times; JSON keeps only the last one, so {_dropped(entry)} would "
                "be lost: give each entry its own key, or merge them (in a text editor)",
            )
    return data


def _name(project: Project, target) -> str:
    p = Path(target) if target is not None else project.path
    return p.stem if p is not None else "via_project"


def load_via(path: str | Path, fmt: str | None = None) -> Project:
    """Read a VIA file. Raises ``ViaFormatError`` (naming the file and the JSON path) and nothing else."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ViaFormatError(p, "", f"file is larger than {MAX_FILE_BYTES >> 20} MiB")
        data = p.read_bytes()
    except ViaFormatError:
        raise
    except OSError as exc:
        raise ViaFormatError(p, "", f"cannot read file: {exc.strerror or exc}") from None
    return loads_via(data, p, fmt)


def dumps_via(project: Project, fmt: str | None = None, target: str | Path | None = None) -> str:
    """The file content of ``project`` in ``fmt`` (default: the format it was read from). Mutates nothing.
    ``target``, the file it will be saved to, names a *new* VIA 2/3 project (default: ``project.path``)."""
    fmt = fmt or project.fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown VIA format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return via_csv.dumps_csv(project)
    style = getattr(project, "_via_style", None) if fmt == project.fmt else None
    if fmt in ("via1", "via2"):
        value = via_json.build_annotations(project, fmt)
    elif fmt == "via2-project":
        value = via_json.build_project_file(project, _name(project, target))
    else:
        value = via3.build_via3(project, _name(project, target))
    return dump_json(value, style)


def save_via(
    project: Project, path: str | Path | None = None, fmt: str | None = None, backup: bool = True
) -> Path:
    """Write ``project`` atomically to ``path`` (default ``project.path``) in ``fmt`` (default ``project.fmt``).

    The first overwrite of an existing file keeps ``NAME.bak``. The project object is not changed (for a
    save-as, set ``project.path`` yourself once this returns). Raises ``ViaSaveError`` naming the file."""
    target = Path(path) if path is not None else project.path
    if target is None:
        raise ViaSaveError("cannot save: the project has no file name yet (use save as)")
    try:
        data = dumps_via(project, fmt, target).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        raise ViaSaveError(f"{target}: cannot encode the project as {fmt or project.fmt}: {exc}") from exc
    try:
        atomic_write(target, data, backup=backup)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ViaSaveError(f"{target}: cannot save ({reason})") from exc
    return target


def new_entry(project: Project, image_path: str | Path) -> ImageEntry:
    """An ``ImageEntry`` for an image file to add to ``project`` (not added here): ``filename`` relative to the
    project's folder when the image is inside it (else absolute, with ``/`` separators), ``size`` in bytes from
    the file (``-1``, VIA's convention, when it cannot be read), key ``filename + size``."""
    p = Path(image_path)
    base = project.base_dir
    try:
        filename = p.resolve().relative_to(base.resolve()).as_posix()
    except (ValueError, OSError):
        filename = p.resolve().as_posix() if p.is_absolute() or project.path is not None else p.as_posix()
    try:
        size = p.stat().st_size
    except OSError:
        size = -1
    return ImageEntry(
        key=image_key(filename, size),
        filename=filename,
        size=size,
        regions=[],
        file_attributes={},
        raw=None,
        base_dir=base,
    )
