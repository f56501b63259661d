"""The *Check labels* dock: find label errors with out-of-fold predictions.

Start trains K short models in the training process (``core.check_labels``: each model without one fold of the
annotated photos, the Training panel's recipe, every fold trained for a number of epochs or seconds) on a
snapshot of the annotations as they are in the app, unsaved edits included. The results
(``RUNS/check-labels-TIME/crossval.json``, or one opened from ``viaseg crossval``) list the photos worst first by
out-of-fold Dice; each photo's rows are the areas where the model that never saw it disagrees: *missed*
(annotated, the model sees no damage) and *extra* (the model sees damage nobody annotated). Clicking a photo
shows it with those areas outlined; clicking an area zooms to it; Apply (or a double click) makes the
annotation the model's there, as one undo step (``core.label_fix``). *Order* lists every photo's areas in one
list instead, the surest large ones first. Photos are matched to the open project by split and file name; one
that is no longer there is greyed and says so. The list itself (both orders, the ✓ of applied areas) is
:mod:`.label_check_list`.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QRectF, Qt, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.annotation.edits import EditError
from viaseg.core.base.errors import ViasegError
from viaseg.core.imaging.imageio import image_size
from viaseg.core.ml.check_labels import (
    MIN_PER_FOLD,
    CheckResults,
    FoldFailed,
    FoldProgress,
    job_problem,
    make_job,
    most_folds,
    read_results,
    split_hint,
    usable,
)
from viaseg.core.ml.train_events import BatchEnd, EpochEnd, Failed

from .label_check_budget import DEFAULT_UNIT, OVERHEAD_S, UNITS, BudgetMixin
from .label_check_list import COLORS, ORDERS, ROLE, fill_areas, fill_photos, mark_applied
from .train_thread import TrainThread
from .training_panel import _fmt_secs, build_config
from .workers import wait_responsive


class LabelCheckPanel(BudgetMixin, QWidget):
    def __init__(
        self,
        window,
        training,
        data_provider,
        train_fn=None,
        train_mode: str = "process",
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.w, self.training, self.data_provider = window, training, data_provider
        self.train_fn, self.train_mode = train_fn, train_mode
        self.config_overrides: dict = {}
        self.thread: TrainThread | None = None
        self.job = None
        self.results: CheckResults | None = None
        self.results_path: Path | None = None
        self.entries: list = []  # the open project's entry of each result image (None: not in it)
        self.applied: dict[tuple[int, int], object] = {}  # (image, area) -> the edit that applied it
        self.last_error = ""
        self._fold, self._epoch, self._t0, self._fold_t0 = 0, 0, 0.0, 0.0
        self._notes: list[str] = []
        self._build()
        window.session.changed.connect(lambda _e: self._refresh_marks())
        window.session.opened.connect(self._project_opened)

    # ------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self._build_form(lay)
        self._build_run_controls(lay)
        self._build_results(lay)
        self._update_estimate()

    def _build_form(self, lay: QVBoxLayout) -> None:
        """What the check does, and its folds and time with the time it takes in all."""
        intro = QLabel(
            "Trains a few short models, each without some of the photos, so every annotated photo "
            "is predicted by a model that never saw it. Photos listed first disagree most with "
            "their annotation."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        # 5: each model learns from four fifths of the photos; on car-damage/train with injected errors the
        # first fifth of the areas list held 0.61 of them against 0.55 with 3 folds (seeds 0-2); 0.728 over
        # seeds 0-12 with three sizes (docs/RESULTS.md, thirtieth to thirty-second sessions)
        self.folds = QSpinBox(minimum=2, maximum=5, value=5)
        self.folds.setToolTip(
            "How many models: each is trained without one share (fold) of the photos. More folds: each "
            "model learns from more photos and finds more errors, and the check takes longer."
        )
        self.per_fold = QSpinBox()
        self.per_fold.setToolTip(
            "How long each model trains (the Training panel's other settings apply): a number of epochs "
            "(passes over its photos; the same models on any computer) or seconds. On a CPU, 45 s made "
            "models too weak to rank a deleted region high (docs/gui.md)."
        )
        self.unit = QComboBox()
        self.unit.addItems(list(UNITS))
        self.unit.setToolTip("Bound each model's training by epochs or by seconds.")
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.folds.valueChanged.connect(self._update_estimate)
        self.per_fold.valueChanged.connect(self._update_estimate)
        self.unit.currentTextChanged.connect(self._unit_changed)
        self.unit.setCurrentText(DEFAULT_UNIT)
        self._unit_changed(DEFAULT_UNIT)
        budget = QHBoxLayout()
        budget.addWidget(self.per_fold, 1)
        budget.addWidget(self.unit)
        form.addRow("Folds", self.folds)
        form.addRow("Training per fold", budget)
        form.addRow("In all", self.estimate)
        lay.addLayout(form)

    def _build_run_controls(self, lay: QVBoxLayout) -> None:
        row = QHBoxLayout()
        self.start_btn = QPushButton("Check labels")
        self.start_btn.clicked.connect(self.start)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.setToolTip("Ends the check after the current batch; the folds already done are listed.")
        self.stop_btn.clicked.connect(self.stop)
        self.open_btn = QPushButton("Open results…")
        self.open_btn.setToolTip(
            "Show a crossval.json: an earlier check, or the output of `viaseg crossval`."
        )
        self.open_btn.clicked.connect(self._choose_results)
        for b in (self.start_btn, self.stop_btn, self.open_btn):
            row.addWidget(b)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        lay.addWidget(self.progress)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.message)

    def _build_results(self, lay: QVBoxLayout) -> None:
        """The photos worst first with their areas (or every area worst first), and Apply for the chosen
        area."""
        row = QHBoxLayout()
        row.addWidget(QLabel("Order"))
        self.order = QComboBox()
        self.order.addItems(list(ORDERS))
        self.order.setToolTip(
            "Photos worst first, each with its areas; or every photo's areas in one list, the largest "
            "disagreements the model that never saw the photo is surest of first: on car-damage with injected "
            "errors, the first fifth of the areas held 73 % of them, the first fifth of the photos about 40 % "
            "(docs/gui.md)."
        )
        self.order.currentIndexChanged.connect(lambda _i: self._rematch())
        row.addWidget(self.order, 1)
        lay.addLayout(row)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["photo / area", "Dice", "missed", "extra"])
        self.tree.setToolTip("Worst first: out-of-fold Dice of each photo, and its areas of disagreement.")
        self.tree.currentItemChanged.connect(lambda cur, _prev: self.show_item(cur))
        self.tree.itemDoubleClicked.connect(
            lambda it, _c: self.apply_item(it) if it.data(0, ROLE)[0] == "area" else None
        )
        lay.addWidget(self.tree, 1)
        self.apply_btn = QPushButton("Apply the model's version of this area")
        self.apply_btn.setEnabled(False)
        self.apply_btn.clicked.connect(lambda: self.apply_item(self.tree.currentItem()))
        lay.addWidget(self.apply_btn)

    def _set_message(self, text: str, error: bool = False) -> None:
        if error:
            self.last_error = text
        self.message.setStyleSheet("color: #b00020; font-weight: bold;" if error else "")
        self.message.setText(text)

    # ------------------------------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    @Slot()
    def start(self) -> bool:
        """Start a check in the background; False (and a message) when it cannot start."""
        self.last_error = ""
        if self.thread is not None:
            self._set_message("A label check is already running; stop it first.", error=True)
            return False
        if self.training.is_running():
            self._set_message("A training run is in progress; check labels when it has finished.", error=True)
            return False
        try:
            data = self.data_provider()
            root = Path(self.training.runs_root)
            cfg = build_config(
                self.training.settings(),
                None,
                root,
                {**self.training.config_overrides, **self.config_overrides},
            )
            base = out = root / f"check-labels-{datetime.now():%Y%m%d-%H%M%S}"
            n = 2
            while out.exists():
                out, n = base.with_name(f"{base.name}-{n}"), n + 1
            seconds, epochs = self.budget()
            job = make_job(cfg, data, out, self.folds.value(), seconds, epochs)
        except Exception as exc:  # any set-up problem becomes a message
            self._set_message(f"Cannot check labels: {exc}", error=True)
            return False
        problem, fewer = job_problem(job), ""
        k = most_folds(job) if problem else 0
        if 2 <= k < job.folds:  # a small project: as many folds as its photos allow, and say so
            fewer = (
                f"{k} folds instead of {job.folds}: each must hold out {MIN_PER_FOLD} of the "
                f"{len(usable(job.sources, job.config.include_empty))} photos. "
            )
            job = dataclasses.replace(job, folds=k)
            self.folds.setValue(k)
            problem = job_problem(job)
        if problem:
            self._set_message(problem, error=True)
            return False
        self.job = job
        self._fold, self._epoch, self._notes = 0, 0, []
        self._t0 = self._fold_t0 = time.monotonic()
        self.thread = TrainThread(job, train_fn=self.train_fn, mode=self.train_mode)
        self.thread.event.connect(self._on_event)
        self.thread.finished.connect(self._on_thread_finished)
        self.start_btn.setEnabled(False)
        self.stop_btn.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._set_message(
            f"{fewer}Preparing {job.folds} folds of {sum(len(e) for _, e in job.sources)} photos…"
        )
        self.thread.start()
        return True

    @Slot()
    def stop(self) -> None:
        if self.is_running():
            self.thread.stop()
            self.stop_btn.setEnabled(False)
            self._set_message("Stopping after the current batch…")

    def stop_and_wait(self, timeout_ms: int = 120000, responsive: bool = False) -> bool:
        """Stop the check and wait for its thread (the window closing); ``responsive``: the window repaints and
        says so meanwhile (``workers.wait_responsive``; it froze for 11-16 s)."""
        th = self.thread
        if th is None:
            return True
        th.stop()
        if responsive:
            self._set_message("Stopping the check…")
            ok = wait_responsive(th, timeout_ms)
        else:
            ok = th.wait(timeout_ms)
        if ok:
            self._on_thread_finished()
        return ok

    @Slot(object)
    def _on_event(self, ev) -> None:
        if self.sender() is not None and self.sender() is not self.thread:
            return
        match ev:
            case FoldProgress():
                self._fold, self._epoch, self._fold_t0 = ev.fold, 0, time.monotonic()
                self._set_message(ev.message[:1].upper() + ev.message[1:])
            case FoldFailed():
                self._notes.append(f"fold {ev.fold + 1} failed: {ev.message} (its photos are not listed)")
            case EpochEnd():
                self._epoch = int(ev.epoch) + 1
            case Failed():  # the check itself (not one fold) failed; the thread's error says why
                self.last_error = f"Check labels failed: {ev.message}"
        if isinstance(ev, (FoldProgress, BatchEnd, EpochEnd)):
            self._show_progress()

    def _show_progress(self) -> None:
        k, s, e = self.job.folds, self.job.fold_seconds, self.job.fold_epochs
        now = time.monotonic()
        if e:  # by epochs: the share done is known; the total follows from the time it took
            frac = min(1.0, (self._fold + min(1.0, self._epoch / e)) / k)
            total = (now - self._t0) / frac if frac > 0 else None
            of = f"{self._epoch}/{e}"
        else:
            frac = min(1.0, (self._fold + min(1.0, (now - self._fold_t0) / (s + OVERHEAD_S))) / k)
            total, of = k * (s + OVERHEAD_S), f"{self._epoch}"
        self.progress.setValue(int(frac * 1000))
        self.progress.setFormat(
            f"fold {self._fold + 1}/{k} · epoch {of} · {_fmt_secs(now - self._t0)}"
            + (f" of about {_fmt_secs(total)}" if total else "")
        )

    @Slot()
    def _on_thread_finished(self) -> None:
        th = self.thread
        if th is None:
            return
        self.thread = None
        self.start_btn.setEnabled(True)
        self.stop_btn.setEnabled(False)
        res = th.result
        th.deleteLater()
        if res is None or th.error:
            why = th.error or self.last_error or "the training process gave no result"
            if th.stop_requested:
                why = "Stopped before the first model had trained: there is nothing to show."
            self.progress.setFormat("failed" if not th.stop_requested else "stopped")
            self._set_message(
                why if why.startswith(("Stopped", "Check")) else f"Check labels failed: {why}", error=True
            )
            return
        if getattr(res, "problem", ""):
            self.progress.setFormat("not run")
            self._set_message(res.problem, error=True)
            return
        self.progress.setValue(1000)
        self.progress.setFormat("stopped" if res.stopped else "finished")
        if res.cut_fold is not None:
            self._notes.append(
                f"fold {res.cut_fold + 1} was stopped before it finished: its photos are not listed"
            )
        self.load_results(res.results, notes=self._notes)

    # ------------------------------------------------------------------------------------------ results
    def _choose_results(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open label check results",
            str(self.training.runs_root),
            "Cross-validation results (crossval.json *.json)",
        )
        if path:
            self.load_results(path)

    def load_results(self, path, notes: list[str] | None = None) -> bool:
        """Show ``crossval.json`` (or a folder holding one); False with a message when it cannot be read."""
        try:
            res = read_results(path)
        except ValueError as exc:
            self._set_message(str(exc), error=True)
            return False
        self.results, self.results_path, self.applied = res, Path(path), {}
        self._rematch()
        lines = []
        n_missing = sum(1 for e in self.entries if e is None)
        if res.images:
            mean = f", out-of-fold mean Dice {res.mean_dice:.3f}" if isinstance(res.mean_dice, float) else ""
            lines.append(
                f"{len(res.images)} photos checked with {res.folds} folds{mean}. Worst first; click one "
                "to see it, click an area to zoom to it."
            )
        else:
            lines.append("No photo could be checked.")
        if n_missing and n_missing == len(res.images):
            lines.append(
                "None of these photos is in the open project (greyed): they were checked in another project, "
                "or changed since; open that project to use them."
            )
        elif n_missing:
            lines.append(f"{n_missing} of them are not in the open project (greyed).")
        lines += [*(notes or []), *(f"error: {e}" for e in res.errors[:5])]
        if res.stopped and not notes:
            lines.append("The check was stopped: only the folds finished before are listed.")
        self._set_message("\n".join(lines), error=not res.images)
        return True

    def _match(self, im):
        """The open project's entry of result image ``im``: same name, same split when there is a choice, and
        the same photo (a label check started on one project and finished after another was opened matched
        that project's photos of the same names, and Apply added regions to them)."""
        image, source = im.image, im.source
        rows = [
            r
            for r in self.w.session.rows
            if image in (r.entry.filename, r.entry.key, Path(r.entry.filename).name)
            and im.is_photo(r.entry.path)
        ]
        same = [r for r in rows if r.split == split_hint(source)]
        pick = same or rows
        return pick[0].entry if pick else None

    @Slot()
    def _project_opened(self) -> None:
        self.applied = {}  # the history of the project they were applied to is gone
        self._rematch()
        self._update_estimate()  # its photos

    def _rematch(self) -> None:
        """Match the result photos to the open project's entries and refill the list in the chosen order."""
        images = self.results.images if self.results else []
        self.entries = [self._match(im) for im in images]
        fill = fill_areas if self.order.currentIndex() == 1 else fill_photos
        fill(self.tree, images, self.entries)
        self._refresh_marks()
        for c in range(4):
            self.tree.resizeColumnToContents(c)

    def _refresh_marks(self) -> None:
        if self.results is not None:
            mark_applied(self.tree, self.results.images, self.applied)
        self._update_apply()

    def _update_apply(self) -> None:
        it = self.tree.currentItem()
        key = it.data(0, ROLE) if it is not None else None
        ok = bool(
            key
            and key[0] == "area"
            and self.entries[key[1]] is not None
            and not getattr(self.applied.get((key[1], key[2])), "done", False)
        )
        self.apply_btn.setEnabled(ok)

    def _show_image(self, i: int) -> bool:
        entry = self.entries[i]
        row = self.w.session.row_of(entry) if entry is not None else -1
        if row < 0:
            self.w.notify(
                f"{self.results.images[i].image}: not in the open project (removed since the check?)", True
            )
            return False
        if self.w.current != row:
            self.w.show_row(row)
        return True

    def show_item(self, it) -> None:
        """Show the photo of ``it`` with its areas outlined; an area row also zooms to that area."""
        self._update_apply()
        if it is None or self.results is None:
            return
        kind, i, j = it.data(0, ROLE)
        if not self._show_image(i):
            return
        areas = self.results.images[i].disagreements
        chosen = areas if kind == "image" else [areas[j]]
        self.w.canvas.set_highlight(
            [(d.get("polygon") or [], COLORS.get(d["kind"], QColor("white"))) for d in chosen]
        )
        if kind == "area":
            x, y, bw, bh = (float(v) for v in areas[j]["bbox"])
            self.w.canvas.show_rect(QRectF(x, y, bw, bh))
        else:
            self.w.canvas.fit()

    def apply_item(self, it) -> bool:
        """Apply the area of row ``it`` as one undoable edit; False with a message when it cannot."""
        from viaseg.core.checks.label_fix import fix_command

        key = it.data(0, ROLE) if it is not None else None
        if not key or key[0] != "area":
            self.w.notify("choose an area (a row under a photo) to apply", True)
            return False
        _, i, j = key
        if getattr(self.applied.get((i, j)), "done", False):
            self.w.notify("this suggestion is applied already (Ctrl+Z takes it back)")
            return False
        if not self._show_image(i):
            return False
        entry = self.entries[i]
        try:
            size = image_size(entry.path)
            cmd = fix_command(
                entry, self.results.images[i].disagreements[j], size, self.w.canvas.default_attributes() or {}
            )
            self.w.session.push(cmd)
        except (EditError, ViasegError) as exc:
            self.w.notify(f"cannot apply: {exc}", True)
            return False
        self.applied[(i, j)] = cmd
        self._refresh_marks()
        self.w.notify(f"{cmd.text} (Ctrl+Z undoes it)")
        return True
