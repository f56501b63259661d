"""VIA 3.x project files (placeholder until the reader lands)."""

from __future__ import annotations

from .errors import ViaFormatError


def read_via3(data, path, base_dir):
    raise ViaFormatError(path, "", "VIA 3 projects are not supported yet")


def build_via3(project):
    raise ValueError("writing VIA 3 projects is not supported yet")
