"""Dataset problems dock: ``core.checks`` results in a table; clicking a row jumps to the image and region.

The full check runs in a worker thread (it may decode every image); after an edit the main window re-checks
only that image with ``check_entry`` and calls :meth:`ProblemsPanel.replace_for`. The user may edit while a
full check runs: the per-image re-checks made meanwhile are newer than what the full check saw, so they are
applied again on top of its result; a check of a project that is no longer open is dropped; a check that
tripped over an edit in progress (the data changed under it) is run again once.
"""

from __future__ import annotations

import logging
from collections import deque

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.annotation.workspace import snapshot

log = logging.getLogger(__name__)
COLUMNS = ("severity", "kind", "split", "image", "region", "message")


def problem_key(p) -> tuple[str, str]:
    return (str(getattr(p, "split", "") or ""), str(getattr(p, "image", "") or ""))


def _cell(p, col: int) -> str:
    if col == 4:
        region = getattr(p, "region", None)
        return "" if region is None else str(region)
    v = getattr(p, COLUMNS[col], "")
    return "" if v is None else str(v)


class ProblemsModel(QAbstractTableModel):
    """Problems as a table model (a dataset of 10,000 images can have tens of thousands)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.problems: list = []

    def set(self, problems: list) -> None:
        self.beginResetModel()
        self.problems = problems
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.problems)

    def columnCount(self, parent=QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        p = self.problems[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return _cell(p, index.column())
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 0:
            sev = getattr(p, "severity", "")
            return (
                QColor(200, 40, 40) if sev == "error" else QColor(200, 120, 0) if sev == "warning" else None
            )
        return None


class _Signals(QObject):
    done = Signal()  # results wait in ``results``: no Python objects through a cross-thread signal


class _CheckJob(QRunnable):
    def __init__(
        self, dataset, decode: bool, signals: _Signals, results: deque, gen: int = 0, file_cache=None
    ):
        super().__init__()
        self.dataset, self.decode, self.signals, self.results = dataset, decode, signals, results
        self.gen, self.file_cache = gen, file_cache

    def run(self) -> None:
        try:
            from viaseg.core.checks.checks import check_dataset

            report = check_dataset(self.dataset, decode=self.decode, file_cache=self.file_cache)
            self.results.append((self.gen, list(report.problems), ""))
        except Exception as exc:  # reported in the panel, never a crash
            log.error("dataset check failed", exc_info=True)
            self.results.append((self.gen, None, f"check failed: {exc}"))
        try:
            self.signals.done.emit()
        except RuntimeError:  # the panel was closed while checking
            pass


class ProblemsPanel(QWidget):
    """Signals: ``jump(problem)`` when a row is activated, ``compare(problem)`` for the Compare button,
    ``changed()`` when the problem list changes."""

    jump = Signal(object)
    compare = Signal(object)
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.problems: list = []
        self.model = ProblemsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.status = QLabel("not checked")
        self.recheck = QPushButton("Re-check")
        self.compare_btn = QPushButton("Compare…")
        self.compare_btn.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.compare_btn)
        top.addWidget(self.recheck)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.table)
        self._signals = _Signals()
        self._results: deque = deque()
        self._signals.done.connect(self._drain)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.dataset = None
        self.decoded = True
        self._gen = 0  # bumped by every run_check: only the newest check's result is shown
        self._waiting = False  # the newest full check has not reported yet
        self._edits_during_check: list[tuple] = []  # replace_for calls made while a full check ran
        self._file_cache = (
            None  # core.checks.FileCache of this dataset: unchanged files are not decoded again
        )
        self.table.clicked.connect(lambda idx: self._clicked(idx.row()))
        self.table.activated.connect(lambda idx: self._clicked(idx.row()))
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self._update_compare(cur.row())
        )
        self.compare_btn.clicked.connect(self._compare_clicked)
        self.recheck.clicked.connect(lambda: self.run_check(self.dataset, fresh=True))

    def run_check(self, dataset, decode: bool = True, wait: bool = False, fresh: bool = False) -> None:
        """Check ``dataset`` in the background (``wait`` blocks until done, for tests and scripts). Files
        unchanged since the last check of the same dataset are not read again, unless ``fresh`` (the
        Re-check button)."""
        if dataset is not self.dataset or fresh:
            self._file_cache = None
        self.dataset = dataset
        if dataset is None:
            return
        try:
            from viaseg.core.checks.checks import FileCache
        except ImportError as exc:
            self.status.setText(f"checks unavailable ({exc})")
            return
        if self._file_cache is None:
            self._file_cache = FileCache()
        self.decoded = decode
        self.status.setText("checking…")
        self._gen += 1
        self._waiting = True
        self._edits_during_check = []
        self.pool.clear()  # checks queued and not started yet are superseded by this one
        # the check reads a copy: the user goes on editing the live dataset while it runs
        job = _CheckJob(snapshot(dataset), decode, self._signals, self._results, self._gen, self._file_cache)
        self.pool.start(job)
        if wait:
            self.pool.waitForDone()
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.processEvents()

    def _drain(self) -> None:
        while self._results:
            self._on_done(*self._results.popleft())

    def _on_done(self, gen: int, problems, err: str) -> None:
        if gen != self._gen:
            return  # an older check (another project, or superseded by a re-check): its result is stale
        if problems is None:
            self._waiting = False
            self.status.setText(err)
            return
        self._waiting = False
        edits, self._edits_during_check = self._edits_during_check, []
        self.problems = list(problems)
        for args in edits:  # the per-image re-checks made while it ran are newer than what it saw
            self._replace(*args)
        self._fill()

    @property
    def checking(self) -> bool:
        return self._waiting

    def set_problems(self, problems: list) -> None:
        self.problems = list(problems)
        self._fill()

    def replace_for(self, split: str, image: str, new: list, aliases=(), kinds=None) -> None:
        """Replace the problems of one image (after an edit re-check). ``aliases`` are other names of it.
        Only problems of ``kinds`` (what the re-check can find; None = all) are replaced: a one-image
        re-check cannot see duplicates or attribute names, so those stay until the next full check."""
        if self._waiting:
            self._edits_during_check.append((split, image, list(new), tuple(aliases), kinds))
        self._replace(split, image, new, aliases, kinds)
        self._fill()

    def _replace(self, split: str, image: str, new: list, aliases=(), kinds=None) -> None:
        names = {image, *aliases}

        def replaced(p) -> bool:
            key = problem_key(p)
            return (
                key[0] == split and key[1] in names and (kinds is None or getattr(p, "kind", None) in kinds)
            )

        self.problems = [p for p in self.problems if not replaced(p)]
        self.problems.extend(new)

    def _fill(self) -> None:
        self.model.set(self.problems)
        if self.problems and len(self.problems) < 2000:
            self.table.resizeColumnsToContents()
            self.table.setColumnWidth(5, max(self.table.columnWidth(5), 400))
        errors = sum(1 for p in self.problems if getattr(p, "severity", "") == "error")
        text = f"{len(self.problems)} problem(s), {errors} error(s)" if self.problems else "no problems"
        if not self.decoded:
            text += " (headers only: Re-check decodes every image)"
        self.status.setText(text)
        self.compare_btn.setEnabled(False)
        self.changed.emit()

    def _problem_at(self, row: int):
        return self.problems[row] if 0 <= row < len(self.problems) else None

    def _clicked(self, row: int) -> None:
        p = self._problem_at(row)
        if p is not None:
            self.jump.emit(p)

    def _update_compare(self, row: int) -> None:
        p = self._problem_at(row)
        self.compare_btn.setEnabled(p is not None and "duplicate" in str(getattr(p, "kind", "")))

    def _compare_clicked(self) -> None:
        p = self._problem_at(self.table.currentIndex().row())
        if p is not None:
            self.compare.emit(p)

    def counts_by_image(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for p in self.problems:
            k = problem_key(p)
            out[k] = out.get(k, 0) + 1
        return out
