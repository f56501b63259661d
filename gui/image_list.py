"""Image list: a table model over the session's rows (10,000+ images, no item widgets), a filter/sort proxy,
and a small widget with a filter combo and a search box.

Columns: status, split, file, regions, and optionally one extra column set with :meth:`set_extra_column`
(e.g. a per-image Dice from the ML side), sortable numerically.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.annotation.project import natural_sort_key

from .session import Session
from .text_keys import keep_editing_keys

COL_STATUS, COL_SPLIT, COL_NAME, COL_REGIONS, COL_EXTRA = range(5)
FILTERS = ("all", "annotated", "unannotated", "problems", "edited")


class ImageTableModel(QAbstractTableModel):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.problems: dict[int, int] = {}  # id(entry) -> number of problems
        self.dirty: set[int] = set()
        self.extra_title: str | None = None
        self.extra: dict = {}
        self.extra_missing: float = float("-inf")  # the sort key of a row without a value

    def reset(self) -> None:
        self.beginResetModel()
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.session.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 5 if self.extra_title else 4

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ("", "split", "image", "regions", self.extra_title or "")[section]
        return None

    def extra_value(self, row) -> object:
        e = row.entry
        for k in ((row.split, e.key), e.key, (row.split, e.filename), e.filename):
            if k in self.extra:
                return self.extra[k]
        return None

    def status(self, row) -> str:
        marks = []
        if id(row.entry) in self.dirty:
            marks.append("✎")
        if self.problems.get(id(row.entry)):
            marks.append("⚠")
        if not row.entry.regions:
            marks.append("○")
        return "".join(marks)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.session.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_STATUS:
                return self.status(row)
            if col == COL_SPLIT:
                return row.split
            if col == COL_NAME:
                return row.entry.filename
            if col == COL_REGIONS:
                return len(row.entry.regions)
            if col == COL_EXTRA:
                v = self.extra_value(row)
                return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))
        elif role == Qt.ItemDataRole.UserRole:  # sort key
            if col == COL_NAME:
                return natural_sort_key(row.entry.filename)  # image2 before image10
            if col == COL_REGIONS:
                return len(row.entry.regions)
            if col == COL_EXTRA:
                v = self.extra_value(row)
                # as a float always: Qt compared a whole number against an infinite float the wrong way round
                return float(v) if isinstance(v, (int, float)) else self.extra_missing
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        elif role == Qt.ItemDataRole.ToolTipRole and col == COL_STATUS:
            tips = []
            if id(row.entry) in self.dirty:
                tips.append("edited since save")
            if self.problems.get(id(row.entry)):
                tips.append(f"{self.problems[id(row.entry)]} problem(s)")
            if not row.entry.regions:
                tips.append("unannotated")
            return ", ".join(tips)
        elif (
            role == Qt.ItemDataRole.ForegroundRole and col == COL_STATUS and self.problems.get(id(row.entry))
        ):
            return QColor(200, 90, 0)
        return None

    def row_changed(self, row: int) -> None:
        if 0 <= row < len(self.session.rows):
            self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))


class ImageFilterProxy(QSortFilterProxyModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.mode = "all"
        self.split = ""
        self.text = ""
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def filterAcceptsRow(self, source_row, source_parent) -> bool:
        m: ImageTableModel = self.sourceModel()
        row = m.session.rows[source_row]
        if self.split and row.split != self.split:
            return False
        if self.text and self.text not in row.entry.filename.lower():
            return False
        mode = self.mode
        if mode == "annotated":
            return bool(row.entry.regions)
        if mode == "unannotated":
            return not row.entry.regions
        if mode == "problems":
            return bool(m.problems.get(id(row.entry)))
        if mode == "edited":
            return id(row.entry) in m.dirty
        return True


class ImageList(QWidget):
    """Emits ``activated(int)`` with a session row when the user picks an image."""

    activated = Signal(int)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.model = ImageTableModel(session, self)
        self.proxy = ImageFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.filter = QComboBox()
        self.search = QLineEdit()
        keep_editing_keys(self.search)  # Ctrl+D while typing here duplicated a region
        self.search.setPlaceholderText("search file name…")
        self.search.setClearButtonEnabled(True)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setSortingEnabled(True)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.view.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        top = QHBoxLayout()
        top.addWidget(self.filter)
        top.addWidget(self.search, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.view)
        self.filter.currentIndexChanged.connect(self._filter_changed)
        self.search.textChanged.connect(self._search_changed)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        self._silent = False

    def reload(self) -> None:
        self.model.problems = {}
        self.model.dirty = set()
        self.model.reset()
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.addItems(list(FILTERS))
        splits = list(self.session.dataset.splits) if self.session.dataset else []
        if len(splits) > 1:
            self.filter.addItems([f"split: {s}" for s in splits])
        self.filter.blockSignals(False)
        self.proxy.mode, self.proxy.split = "all", ""
        self.proxy.invalidate()
        self.view.setColumnWidth(COL_STATUS, 34)
        self.view.setColumnWidth(COL_SPLIT, 50)
        self.view.setColumnWidth(COL_NAME, 170)
        self.view.setColumnWidth(COL_REGIONS, 56)

    def _filter_changed(self, _i) -> None:
        text = self.filter.currentText()
        if text.startswith("split: "):
            self.proxy.mode, self.proxy.split = "all", text[7:]
        else:
            self.proxy.mode, self.proxy.split = text or "all", ""
        self.proxy.invalidate()

    def _search_changed(self, text: str) -> None:
        self.proxy.text = text.strip().lower()
        self.proxy.invalidate()

    def _current_changed(self, current, _previous) -> None:
        if self._silent or not current.isValid():
            return
        self.activated.emit(self.proxy.mapToSource(current).row())

    # API -------------------------------------------------------------------------------------------------
    def set_current(self, row: int) -> None:
        """Highlight session row ``row`` without emitting ``activated``."""
        src = self.model.index(row, COL_NAME)
        idx = self.proxy.mapFromSource(src)
        self._silent = True
        try:
            if idx.isValid():
                self.view.setCurrentIndex(idx)
                self.view.scrollTo(idx)
            else:
                self.view.clearSelection()
        finally:
            self._silent = False

    def neighbour(self, row: int, step: int) -> int:
        """Session row ``step`` visible rows away from ``row`` (clamped), in the current sort/filter order.
        ``step`` of ±10**9 means first/last."""
        n = self.proxy.rowCount()
        if n == 0:
            return -1
        idx = self.proxy.mapFromSource(self.model.index(row, 0)) if row >= 0 else None
        pos = idx.row() if idx is not None and idx.isValid() else (-1 if step > 0 else n)
        new = min(max(pos + step, 0), n - 1)
        return self.proxy.mapToSource(self.proxy.index(new, 0)).row()

    def set_problems(self, counts: dict[int, int]) -> None:
        self.model.problems = counts
        self._changed_all()

    def set_dirty(self, ids: set[int]) -> None:
        changed = ids ^ self.model.dirty
        self.model.dirty = set(ids)
        if len(changed) > 200:
            self._changed_all()
            return
        for i in changed:
            self.model.row_changed(self.session.row_of_id(i))

    def entry_changed(self, row: int) -> None:
        self.model.row_changed(row)

    def set_extra_column(
        self, title: str | None, values: dict | None = None, missing_last_ascending: bool = False
    ) -> None:
        """Add (or with ``title=None`` remove) an extra sortable column. ``values`` maps an entry key,
        ``(split, key)``, a filename or ``(split, filename)`` to a value (floats shown with 3 decimals). Rows
        without a value sort as the lowest, or with ``missing_last_ascending`` as the highest (last when the
        column is sorted ascending, as a rank 1, 2, 3 is)."""
        self.model.beginResetModel()
        self.model.extra_title = title
        self.model.extra = dict(values or {})
        self.model.extra_missing = float("inf") if missing_last_ascending else float("-inf")
        self.model.endResetModel()
        if title:
            self.view.setColumnWidth(COL_EXTRA, 60)
            # the new column must be seen without scrolling: the name column gives up what it must
            spare = self.view.viewport().width() - sum(self.view.columnWidth(c) for c in range(COL_EXTRA + 1))
            if spare < 0:
                self.view.setColumnWidth(COL_NAME, max(80, self.view.columnWidth(COL_NAME) + spare))

    def _changed_all(self) -> None:
        n = self.model.rowCount()
        if n:
            self.model.dataChanged.emit(
                self.model.index(0, 0), self.model.index(n - 1, self.model.columnCount() - 1)
            )
        self.proxy.invalidate()
