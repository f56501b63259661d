"""Annotation files that are not VIA files (labelme, COCO): what their readers share, and ``load_input``,
the one entry point that opens any annotation file viaseg reads.

An imported project is held exactly like a VIA one (``Region.shape`` VIA 2 style) but has ``path=None`` and
``fmt="via2"``: nothing in viaseg writes VIA content over the user's labelme or COCO files; saving one needs a
VIA file name first (``save_via`` refuses a project without a path; the app's *Save as* gives it one). ``ImageEntry.base_dir`` is the folder the foreign file
names its images from (the labelme JSON's folder, the COCO file's folder), so ``entry.path`` finds them.

When an image is not found, the entry keeps its file name and, if the file said how big the image is,
``file_attributes`` ``width``/``height`` (text, as VIA attributes are): the COCO export and the checks can
still use the size. A COCO import keeps them for every image, as VIA 2's own COCO import does, so a VIA file
made from it still knows the sizes where the photos are not beside it. Masks (labelme ``mask`` shapes, COCO RLE) become polygons through
:func:`viaseg.core.annotation.raster.mask_to_polygons` (holes bridged) with a tolerance that only drops collinear
contour vertices, so the polygons fill back to the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...base.errors import ViaFormatError
from ..project import ImageEntry, Project
from .via_common import decode_text, derive_attributes, parse_json

CLASS_ATTR = (
    "name"  # the region attribute imported labels / category names go to (project.CLASS_NAMES has it)
)
MASK_TOLERANCE = 0.01  # px: Douglas-Peucker removes only collinear vertices, the mask comes back pixel-exact
MAX_MASK_PIXELS = 1 << 27  # a decoded mask above this is refused (a corrupt size must not exhaust memory)

__all__ = [
    "CLASS_ATTR",
    "image_entry",
    "foreign_project",
    "load_input",
    "mask_shapes",
    "parse_file",
    "read_file",
    "via_checked",
]


def read_file(path: str | Path) -> bytes:
    """The bytes of an annotation file; ``ViaFormatError`` naming it when it cannot be read or is huge."""
    from .via_io import MAX_FILE_BYTES

    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ViaFormatError(p, "", f"file is larger than {MAX_FILE_BYTES >> 20} MiB")
        return p.read_bytes()
    except OSError as exc:
        raise ViaFormatError(p, "", f"cannot read file: {exc.strerror or exc}") from None


def parse_file(data: bytes | str, path) -> Any:
    """The JSON value of a file's content (strict: ``ViaFormatError`` for anything that is not JSON)."""
    return parse_json(decode_text(data, path), path)


def image_entry(
    filename: str, base_dir: Path | None, width: Any = None, height: Any = None, keep_size: bool = False
) -> ImageEntry:
    """An entry for an image named by a foreign file: key ``filename + size`` as VIA makes it (size ``-1``
    when the image is not there), and the size the file gave when the image cannot be found (always with
    ``keep_size``)."""
    from .via_common import image_key

    entry = ImageEntry(key="", filename=filename, size=-1, base_dir=base_dir)
    try:
        entry.size = entry.path.stat().st_size if entry.path.is_file() else -1
    except (OSError, ValueError):  # ValueError: a NUL in the name
        entry.size = -1
    if (entry.size == -1 or keep_size) and width and height:
        entry.file_attributes = {"width": str(width), "height": str(height)}
    entry.key = image_key(filename, entry.size)
    return entry


def foreign_project(images: list[ImageEntry]) -> Project:
    """An imported project: no file of its own (``path=None``), saved as VIA 2 once given a name."""
    return Project(images=images, fmt="via2", path=None, attributes=derive_attributes(images), raw=None)


def mask_shapes(mask: np.ndarray, x0: int = 0, y0: int = 0) -> list[dict]:
    """VIA polygons (integer vertices) of the non-zero pixels of ``mask`` placed with its top-left pixel at
    ``(x0, y0)``; one per connected component, holes bridged, no component dropped for being small."""
    from ..raster import mask_to_polygons

    shapes = []
    for poly in mask_to_polygons(mask, MASK_TOLERANCE, 0.0):
        p = np.round(poly).astype(np.int64)
        shapes.append(
            {
                "name": "polygon",
                "all_points_x": (p[:, 0] + x0).tolist(),
                "all_points_y": (p[:, 1] + y0).tolist(),
            }
        )
    return shapes


def load_input(
    path: str | Path, messages: list[str] | None = None, class_attr: str | None = None
) -> tuple[Project, str]:
    """Read any annotation input: a VIA file (JSON or CSV), a COCO file, a labelme JSON file or a folder of
    labelme files. Returns the project and the input's format (a VIA format name, ``coco`` or ``labelme``).

    VIA is tried first, so a VIA file is parsed once; a file VIA refuses is looked at again as labelme or
    COCO, and when it is neither the VIA error is raised. Only ``ViasegError`` subclasses escape. Each of the
    ``messages`` added names something of the input that is not in the project (and why)."""
    from . import coco_io, labelme_io
    from .via_io import loads_via

    p = Path(path)
    if p.is_dir():
        return labelme_io.load_labelme_folder(p, messages, class_attr), "labelme"
    data = read_file(p)
    if labelme_io.sniff(data):  # parse it once as labelme rather than fail once as VIA
        value = parse_file(data, p)
        if labelme_io.is_labelme(value):
            return labelme_io.labelme_project(value, p, messages, class_attr), "labelme"
    try:
        project = loads_via(data, p)
    except ViaFormatError as exc:
        try:
            value = parse_file(data, p)
        except ViaFormatError:
            raise exc from None
        if coco_io.is_coco(value):
            return coco_io.coco_project(value, p, messages, class_attr), "coco"
        if labelme_io.is_labelme(value):
            return labelme_io.labelme_project(value, p, messages, class_attr), "labelme"
        raise
    return via_checked(project, messages), project.fmt


def via_checked(project: Project, messages: list[str] | None = None) -> Project:
    """A project :func:`~viaseg.core.annotation.formats.via_io.load_via` read, or ``ViaFormatError`` when it is
    a VIA 3 project of video/audio files only; what of a VIA 3 file is not loaded is described in ``messages``."""
    if project.fmt == "via3":
        from .via3 import check_images, not_loaded

        check_images(project)
        note = not_loaded(project)
        if note and messages is not None:
            messages.append(note)
    return project
