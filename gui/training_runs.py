"""The Training panel's *Runs* tab: the runs folder, past runs with their scores and curves, the active
model; :class:`RunsTabMixin` is a base class of ``TrainingPanel``."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.ml.train_calibrate import threshold_line

from .curves import CurvesWidget
from .runs import RunInfo, list_runs, read_history, read_run
from .training_settings import _model_label


class RunsTabMixin:
    """``TrainingPanel``'s Runs tab and the active model."""

    def _build_runs_tab(self, tabs: QTabWidget, runs_root: Path) -> None:
        # --- "Runs" tab
        runs_tab = QWidget()
        rl = QVBoxLayout(runs_tab)
        rrow = QHBoxLayout()
        self.runs_root_edit = QLineEdit(str(runs_root))
        self.runs_root_edit.setToolTip("Folder where runs are written and listed from.")
        self.runs_root_edit.editingFinished.connect(self._runs_root_typed)
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(self._browse_runs_root)
        rrow.addWidget(QLabel("Runs folder"))
        rrow.addWidget(self.runs_root_edit, 1)
        rrow.addWidget(browse)
        rl.addLayout(rrow)
        self.runs = QTreeWidget()
        self.runs.setHeaderLabels(["run", "best val Dice", "best epoch", "active"])
        self.runs.setRootIsDecorated(False)
        self.runs.currentItemChanged.connect(self._show_run)
        self.runs.itemDoubleClicked.connect(lambda *_: self.activate_selected_run())
        rl.addWidget(self.runs, 1)
        brow = QHBoxLayout()
        self.activate_btn = QPushButton("Make active")
        self.activate_btn.clicked.connect(self.activate_selected_run)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_runs)
        brow.addWidget(self.activate_btn)
        brow.addWidget(refresh)
        rl.addLayout(brow)
        self.run_summary = QLabel("")
        self.run_summary.setWordWrap(True)
        self.run_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rl.addWidget(self.run_summary)
        self.run_curves = CurvesWidget()
        rl.addWidget(self.run_curves, 2)
        tabs.addTab(runs_tab, "Runs")
        tabs.currentChanged.connect(lambda i: self.refresh_runs() if i == 1 else None)

    @property
    def runs_root(self) -> Path:
        return Path(self.runs_root_edit.text().strip() or "runs")

    def set_runs_root(self, path: str | Path) -> None:
        self.runs_root_edit.setText(str(path))
        self.refresh_runs()

    def _browse_runs_root(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Runs folder", str(self.runs_root))
        if d:
            self.set_runs_root(d)
            self.runs_root_chosen.emit(str(d))

    def _runs_root_typed(self) -> None:
        self.refresh_runs()
        self.runs_root_chosen.emit(str(self.runs_root))

    # -------------------------------------------------------------------------------------------- runs
    def set_active_model(self, path: str, announce: bool = True) -> bool:
        """Make ``path`` the active model (announced through ``model_activated`` unless ``announce`` is
        false, e.g. when restoring the last session's); False, with a message, for a file that is no model (a
        truncated one was marked active here and saved for the next session while prediction kept the old)."""
        from viaseg.core.base.errors import ModelError
        from viaseg.core.ml.modelio import read_meta

        try:
            read_meta(path)
        except ModelError as exc:
            self._set_message(f"Not made active: {exc}", error=True)
            return False
        self.active_model = str(path)
        self.start_from_active.setEnabled(True)
        if self.thread is None:
            self.improve.set_model(self.active_model)
        self.start_from_active.setText(f"the active model's weights ({_model_label(self.active_model)})")
        if announce:
            self.model_activated.emit(self.active_model)
        self._mark_active()
        return True

    @Slot()
    def refresh_runs(self) -> None:
        cur = self.runs.currentItem()
        keep = cur.data(0, Qt.ItemDataRole.UserRole) if cur else None
        self.runs.clear()
        for run in list_runs(self.runs_root):
            vd = run.best_val_dice
            n = run.ensemble.get("members") if run.ensemble else None
            be = (
                (f"{n} networks" if n != 1 else "1 network")
                if run.ensemble
                else run.summary.get("best_epoch", "")
            )
            it = QTreeWidgetItem([run.folder.name, "" if vd is None else f"{vd:.3f}", str(be), ""])
            it.setData(0, Qt.ItemDataRole.UserRole, str(run.folder))
            it.setToolTip(0, str(run.folder))
            self.runs.addTopLevelItem(it)
            if keep == str(run.folder):
                self.runs.setCurrentItem(it)
        self._mark_active()
        for c in range(4):
            self.runs.resizeColumnToContents(c)

    def _mark_active(self) -> None:
        for i in range(self.runs.topLevelItemCount()):
            it = self.runs.topLevelItem(i)
            run = read_run(Path(it.data(0, Qt.ItemDataRole.UserRole)))
            active = bool(
                run
                and run.model_path
                and self.active_model
                and Path(run.model_path).resolve() == Path(self.active_model).resolve()
            )
            it.setText(3, "●" if active else "")

    def _selected_run(self) -> RunInfo | None:
        it = self.runs.currentItem()
        return read_run(Path(it.data(0, Qt.ItemDataRole.UserRole))) if it else None

    def _show_run(self, *_):
        run = self._selected_run()
        if run is None:
            self.run_summary.setText("")
            return
        s = run.summary
        lines = [f"<b>{run.folder.name}</b>"]
        ens = run.ensemble
        if ens:  # its epochs are its networks'; no one epoch of it is "best"
            raw = ens.get("seeds") or []
            seeds = ", ".join(str(x) for x in (raw if isinstance(raw, list) else [raw]))
            lines.append(f"networks averaged: {ens.get('members')} (seeds {seeds}; each in member_k/)")
        for key in (
            *(() if ens else ("best_epoch",)),
            "epochs_run",
            "stop_reason",
            "n_train",
            "n_val",
            "val_source",
            "val_dice",
            "train_seconds",
            "evaluated_on",
            "device",
            "precision",
        ):
            if key in s:
                v = f"{s[key]:.3f}" if isinstance(s[key], float) else s[key]
                lines.append(f"{key.replace('_', ' ')}: {v}")
        if s.get("init_from"):
            lines.append(f"started from: {html.escape(str(s['init_from']))}")
        lines.append(html.escape(threshold_line(s)))
        for row in s.get("val_sets") or []:
            if isinstance(row, dict) and isinstance(row.get("mean_dice"), (int, float)):
                lines.append(
                    f"scored on {html.escape(str(row.get('name')))} ({row.get('n_images')} images): "
                    f"mean Dice {row['mean_dice']:.3f}, global {row.get('global_dice') or 0:.3f}"
                )
        if isinstance(s.get("best_metrics"), dict) and not ens:
            lines.append(
                ", ".join(f"{k} {v:.3f}" for k, v in s["best_metrics"].items() if isinstance(v, (int, float)))
            )
        lines.append(f"model: {run.model_path.name if run.model_path else 'none'}")
        self.run_summary.setText("<br>".join(lines))
        self.run_curves.set_history(read_history(run.folder))

    @Slot()
    def activate_selected_run(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        if run.model_path is None:
            self.run_summary.setText(f"{run.folder}: this run has no saved model to activate.")
            return
        self.set_active_model(str(run.model_path))
