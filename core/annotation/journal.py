"""Crash-recovery journal: the unsaved state of an open project, written every few seconds by the app.

One recovery file per opened source (a VIA file or a dataset folder), named after a hash of its resolved path:
``$VIASEG_STATE_DIR/recovery/<hash>.json`` (default state dir ``~/.local/state/viaseg``, or
``$XDG_STATE_HOME/viaseg``). It holds the full serialized content of every *changed* VIA file of the source
(``via_io.dumps_via``, in the file's own format) plus metadata. It is removed when the user saves or closes
cleanly; on the next open of the same source the app offers to restore it.

Written atomically (temp + rename), so a crash while journaling leaves the previous journal intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import ViaFormatError
from ..base.fsutil import atomic_write
from .project import Project

VERSION = 1


def state_dir() -> Path:
    env = os.environ.get("VIASEG_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "viaseg"


def recovery_dir() -> Path:
    return state_dir() / "recovery"


def _norm(path: str | Path) -> str:
    p = Path(path)
    try:
        return str(p.resolve())
    except OSError:
        return str(p.absolute())


def recovery_path(source: str | Path) -> Path:
    """Where the journal of ``source`` (the file or folder the user opened) lives."""
    digest = hashlib.sha1(_norm(source).encode("utf-8")).hexdigest()[:20]
    return recovery_dir() / f"{digest}.json"


@dataclass
class RecoveredFile:
    path: str  # the VIA file this content belongs to
    fmt: str
    text: str

    def load(self) -> Project:
        """The recovered project (its ``path`` is the original file, so a save writes there)."""
        from .formats.via_io import loads_via

        return loads_via(self.text, path=self.path, fmt=self.fmt)


@dataclass
class Recovery:
    source: str
    saved_at: float
    files: list[RecoveredFile] = field(default_factory=list)
    journal: Path | None = None

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.saved_at))
        # with its folder: three splits' files are all via_region_data.json
        names = ", ".join(f"{Path(f.path).parent.name}/{Path(f.path).name}" for f in self.files)
        return f"unsaved edits of {self.source} from {when} ({names})"

    def newer_on_disk(self) -> list[str]:
        """The journaled files changed on disk after the journal was written (someone saved them since): a
        restore puts the journal's version in their place."""
        out = []
        for f in self.files:
            try:
                if Path(f.path).stat().st_mtime > self.saved_at:
                    out.append(f.path)
            except OSError:
                continue
        return out


def write_recovery(source: str | Path, projects: list[Project]) -> Path:
    """Journal ``projects`` (each with a ``path``) as the unsaved state of ``source``. Raises OSError."""
    from .formats.via_io import dumps_via

    files = []
    for p in projects:
        if p.path is None:
            continue
        files.append({"path": _norm(p.path), "fmt": p.fmt, "text": dumps_via(p)})
    doc = {"viaseg_recovery": VERSION, "source": _norm(source), "saved_at": time.time(), "files": files}
    target = recovery_path(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, json.dumps(doc).encode("utf-8"), backup=False)
    return target


def find_recovery(source: str | Path) -> Recovery | None:
    """The journal left for ``source`` by a session that did not save, or None.

    A journal that cannot be read (truncated, wrong version) raises ``ViaFormatError`` naming it."""
    path = recovery_path(source)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("viaseg_recovery") != VERSION:
            raise ValueError("not a viaseg recovery file of version 1")
        files = [RecoveredFile(str(f["path"]), str(f["fmt"]), str(f["text"])) for f in doc["files"]]
        return Recovery(str(doc["source"]), float(doc["saved_at"]), files, path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ViaFormatError(path, "", f"unreadable recovery file: {exc}") from None


def discard_recovery(source: str | Path) -> bool:
    """Remove the journal of ``source`` (after a save or a clean close). True if one was removed."""
    try:
        recovery_path(source).unlink()
        return True
    except FileNotFoundError:
        return False
