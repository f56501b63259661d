"""File-system helpers: atomic writes that never leave a half-written file behind.

``atomic_write`` writes to a temporary file in the *same folder* (so the final ``os.replace`` is a rename on one
file system), fsyncs it, renames it over the target and fsyncs the folder. The first time an existing file is
overwritten a copy is kept next to it as ``NAME.bak`` (only if no ``NAME.bak`` exists yet), so a file the user
brought is never lost to a bug of ours. ``fresh_backup=True`` (``viaseg convert``) instead copies the file being
replaced to ``NAME.bak`` on every overwrite, so the version just replaced can always be recovered.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def backup_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".bak")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported (e.g. Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: str | Path, data: ReadableBuffer, backup: bool = True, fresh_backup: bool = False
) -> Path:
    """Write ``data`` (bytes, or any buffer such as an mmap) to ``path`` atomically. Raises ``OSError`` on
    failure; the old file is then untouched.

    With ``backup`` and an existing ``path`` without ``NAME.bak``, the old content is first copied to ``NAME.bak``;
    with ``fresh_backup`` too, it is copied there even when a ``NAME.bak`` exists (replacing that older copy).
    The new file keeps the old file's permission bits (a new file gets the umask default).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    existed = path.exists()
    if existed and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder")
    if backup and existed:
        bak = backup_path(path)
        if fresh_backup or not bak.exists():
            fd, tmp_bak = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".bak-tmp", dir=folder)
            os.close(fd)
            try:
                shutil.copyfile(path, tmp_bak)
                shutil.copymode(path, tmp_bak)
                os.replace(tmp_bak, bak)
            finally:
                if os.path.exists(tmp_bak):
                    os.unlink(tmp_bak)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if existed:
            try:
                shutil.copymode(path, tmp)
            except OSError:
                pass
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(folder)
    return path
