"""The edit command protocol and the undo stack: :class:`Command` (``do``/``undo``/``merge``/``entries``/
``discard``), :class:`EditError` for an edit that is not allowed, and :class:`History`, the unbounded undo/redo
that applies commands, tracks the saved (clean) state and the images changed since.

Merging: a command with a ``merge_key`` merges into the previous one when the keys are equal and no
:meth:`History.end_drag` came between them, so a whole mouse drag is one undo step. The commands themselves
live in :mod:`.edit_regions`, :mod:`.edit_attributes` and :mod:`.edits` (which re-exports them all).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from .project import ImageEntry


class EditError(ValueError):
    """An edit that is not allowed (e.g. deleting a vertex of a triangle)."""


# -------------------------------------------------------------------------------------------------- commands


class Command:
    """Base class. Subclasses implement :meth:`do` and :meth:`undo`; ``entry`` is the image they change."""

    text = "edit"
    changes_images = False  # True: it adds or removes whole images (the rows of a GUI must be re-indexed)

    def __init__(self, entry: ImageEntry | None = None, merge_key: Hashable | None = None):
        self.entry = entry
        self.merge_key = merge_key

    def do(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def undo(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def merge(self, later: Command) -> bool:
        """Absorb ``later`` (already applied) into this command; True if it could."""
        return False

    def entries(self) -> list[ImageEntry]:
        return [self.entry] if self.entry is not None else []

    def discard(self) -> None:
        """The command leaves the history for good (its redo branch was dropped, or the history cleared):
        release what it keeps outside the project."""

    def saved(self) -> None:
        """The project was saved with this command applied: its effect is now in the files on disk."""


# --------------------------------------------------------------------------------------------------- history


class History:
    """Unbounded undo/redo over commands that may belong to different images.

    ``index`` counts applied commands. The clean index is where the last save happened; when the commands
    leading back to it are discarded (new edit after an undo past the save) the saved state can no longer be
    reached and the history stays dirty until the next :meth:`set_clean`.
    """

    def __init__(self) -> None:
        self._stack: list[Command] = []
        self._index = 0
        self._clean = 0
        self._clean_reachable = True
        self._lost: list[ImageEntry] = []  # entries changed by discarded commands since the last save
        self._merge_open = False

    # state ------------------------------------------------------------------------------------------
    @property
    def index(self) -> int:
        return self._index

    def __len__(self) -> int:
        return len(self._stack)

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._stack)

    def undo_text(self) -> str:
        return self._stack[self._index - 1].text if self.can_undo() else ""

    def redo_text(self) -> str:
        return self._stack[self._index].text if self.can_redo() else ""

    def is_clean(self) -> bool:
        return self._clean_reachable and self._index == self._clean

    def set_clean(self) -> None:
        for cmd in self._stack[: self._index]:
            cmd.saved()
        self._clean = self._index
        self._clean_reachable = True
        self._lost = []
        self._merge_open = False

    def mark_dirty(self, entries: Iterable[ImageEntry]) -> None:
        """Declare ``entries`` changed since the last save by something outside the history (e.g. a restored
        crash journal): the history is dirty until the next :meth:`set_clean`."""
        self._lost.extend(entries)
        self._clean_reachable = False

    def clear(self) -> None:
        for cmd in self._stack:
            cmd.discard()
        History.__init__(self)  # back to the empty history (not self.__init__: a subclass may take arguments)

    def dirty_entries(self) -> list[ImageEntry]:
        """Images whose content differs from the last save (may over-report after edits that cancel out)."""
        lo, hi = sorted((self._index, self._clean))
        seen: dict[int, ImageEntry] = {id(e): e for e in self._lost}
        for cmd in self._stack[lo:hi]:
            for e in cmd.entries():
                seen.setdefault(id(e), e)
        return list(seen.values())

    # operations -------------------------------------------------------------------------------------
    def push(self, cmd: Command) -> Command:
        """Apply ``cmd`` and record it (merged into the previous step when its merge key matches)."""
        cmd.do()
        top = self._stack[self._index - 1] if self._index > 0 else None
        if (
            self._merge_open
            and top is not None
            and cmd.merge_key is not None
            and top.merge_key == cmd.merge_key
            and self._index == len(self._stack)
            and not (self._clean_reachable and self._clean == self._index)
            and top.merge(cmd)
        ):
            return top
        self._truncate()
        self._stack.append(cmd)
        self._index += 1
        self._merge_open = cmd.merge_key is not None
        return cmd

    def end_drag(self) -> None:
        """The current drag is over: the next command starts a new undo step even with the same key."""
        self._merge_open = False

    def undo(self) -> Command | None:
        if not self.can_undo():
            return None
        self._merge_open = False
        self._index -= 1
        cmd = self._stack[self._index]
        cmd.undo()
        return cmd

    def redo(self) -> Command | None:
        if not self.can_redo():
            return None
        self._merge_open = False
        cmd = self._stack[self._index]
        cmd.do()
        self._index += 1
        return cmd

    def _truncate(self) -> None:
        if self._index == len(self._stack):
            return
        if self._clean > self._index:
            for cmd in self._stack[self._index : self._clean]:
                self._lost.extend(cmd.entries())
            self._clean = self._index
            self._clean_reachable = False
        for cmd in self._stack[self._index :]:
            cmd.discard()
        del self._stack[self._index :]
