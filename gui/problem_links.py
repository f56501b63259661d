"""Links between the problems panel and the rest of the window: jump to an image/region, compare duplicates,
re-check the edited image, and problem counts in the image list."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject
from viaseg.core.base.errors import ViasegError
from viaseg.core.checks.check_report import FILE_KINDS, REGION_KINDS
from viaseg.core.imaging.imageio import image_size

from .compare_dialog import CompareDialog
from .problems_panel import problem_key

log = logging.getLogger(__name__)


class ProblemLinks(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.w = window
        window.problems.jump.connect(self.jump_to_problem)
        window.problems.compare.connect(self.compare_problem)
        window.problems.changed.connect(self._problems_changed)

    def _problems_changed(self) -> None:
        counts = self.w.problems.counts_by_image()
        by_id = {}
        for row in self.w.session.rows:
            for name in (row.entry.filename, row.entry.key, Path(row.entry.filename).name):
                n = counts.get((row.split, name))
                if n:
                    by_id[id(row.entry)] = n
                    break
        self.w.image_list.set_problems(by_id)

    def find_row(self, split: str, image: str, key: str | None = None) -> int:
        for i, row in enumerate(self.w.session.rows):
            if split and row.split != split:
                continue
            if (key and row.entry.key == key) or (
                not key and image in (row.entry.key, row.entry.filename, Path(row.entry.filename).name)
            ):
                return i
        return -1

    def jump_to_problem(self, p) -> None:
        split, image = problem_key(p)
        if not image:  # a problem of the dataset as a whole (e.g. attribute names that differ between splits)
            self.w.notify(str(getattr(p, "message", "")) or "this problem concerns the whole dataset")
            return
        row = self.find_row(split, image, getattr(p, "key", None))
        if row < 0:
            row = self.find_row(split, image)
        if row < 0:
            self.w.notify(f"{image}: not an image of the project")
            return
        self.w.show_row(row)
        region = getattr(p, "region", None)
        if isinstance(region, int):
            self.w.canvas.select(region)
            self.w.canvas.show_region(region)  # zoomed to it, not only selected

    def compare_problem(self, p) -> None:
        """Show the problem's image next to the copy its message names (``split/filename``)."""
        split, image = problem_key(p)
        own = self.find_row(split, image, getattr(p, "key", None))
        msg = str(getattr(p, "message", ""))
        others = [
            i
            for i, r in enumerate(self.w.session.rows)
            if i != own and f"{r.split}/{r.entry.filename}" in msg
        ]
        if own < 0 or not others:
            self.w.notify(f"{image}: cannot find the other copy to compare with")
            return
        rows = [self.w.session.rows[own], self.w.session.rows[others[0]]]
        self._compare = CompareDialog(self.w, rows, self.w.cache, self.w.canvas.class_of)
        self._compare.show()

    def recheck_current(self) -> None:
        e = self.w.current_entry()
        if e is None:
            return
        try:
            from viaseg.core.checks.checks import check_entry
        except ImportError:
            return
        split = self.w.session.rows[self.w.current].split
        d = self.w.cache.cached(str(e.path))
        try:
            size = d.size if d is not None else image_size(e.path)
        except ViasegError:
            size = None
        try:
            sp = self.w.session.split_of(e)
            new = check_entry(split, e, size, labeled=sp is None or sp.labeled)
        except Exception as exc:  # a checker bug must not stop editing
            log.exception("check_entry failed")
            self.w.notify(f"re-check failed: {exc}", True)
            return
        kinds = REGION_KINDS if size is not None else REGION_KINDS | FILE_KINDS
        self.w.problems.replace_for(
            split, e.filename, new, aliases=(e.key, Path(e.filename).name), kinds=kinds
        )
