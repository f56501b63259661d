"""Typed errors raised by viaseg.core. Every message names the file and, where it applies, the JSON path."""

from __future__ import annotations

from pathlib import Path


class ViasegError(Exception):
    """Base class for every error viaseg reports to a user."""


class ViaFormatError(ViasegError):
    """A VIA file (JSON or CSV) that cannot be read: bad syntax, wrong types, unknown layout.

    ``path`` is the file, ``where`` the JSON path of the problem (``regions[2].shape_attributes.all_points_x``)
    or a CSV line (``line 7``), ``problem`` the human explanation.
    """

    def __init__(self, path: str | Path | None, where: str, problem: str):
        self.path = str(path) if path is not None else "<memory>"
        self.where = where
        self.problem = problem
        loc = f"{self.path}: {where}: " if where else f"{self.path}: "
        super().__init__(loc + problem)


class ViaSaveError(ViasegError):
    """Saving failed (read-only folder, disk full...). The in-memory project is untouched."""


class ImageReadError(ViasegError):
    """An image file that is missing, empty, corrupt or too large to decode."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetError(ViasegError):
    """A dataset path or ``DATASET:split`` spec that cannot be used."""


class ModelError(ViasegError):
    """A model file that cannot be loaded or lacks viaseg metadata."""
