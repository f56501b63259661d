"""*Predict all* on a split (the image list's Dice or *next* column) and *Label next* (the unannotated photo
that best stands for those not labelled yet): :class:`PredictAllMixin`, a base class of ``PredictionPanel``.

*Label next*'s order: after *Predict all* on photos without regions, one more background job asks the model's
encoder what it makes of each of them and of the project's annotated photos (``core.ml.loop.photo_embeddings``),
and ``core.ml.loop.rank_typical`` puts first the photo that best stands for the others, then the one that best
stands for what that leaves uncovered, and so on, counting the annotated photos as covered already. Measured on
the correct -> improve loop (docs/RESULTS.md, thirty-sixth session), this order beat the most-uncertain-first
order it replaces at 10 and 20 labelled photos on every curve. The model's doubt breaks ties, and is the order
when the features cannot be had.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import Slot
from viaseg.core.ml.loop import rank_typical, rank_uncertain, uncertainty

DROPPED = "Dropped photos"  # the *Whole split* choice that ranks the photos dropped on the window
LABELLED_SAMPLE = 300  # annotated photos at most (spread evenly) that tell Label next what is covered already
log = logging.getLogger(__name__)


class PredictAllMixin:
    """``PredictionPanel``'s *Whole split* group: Predict all, Stop, the ranking behind *Label next*."""

    def _batch_entries(self, split: str) -> list:
        """The images *Predict all* goes through: a split's entries, or the dropped photos as entries without
        regions (one object per photo, kept, so a ranking refers to the same ones)."""
        if split != DROPPED:
            return list(self.host.split_entries(split) or [])
        from viaseg.core.annotation.project import ImageEntry

        cache = self._dropped_entries
        out = []
        for p in self.external:
            if str(p) not in cache:
                cache[str(p)] = ImageEntry(key=str(p), filename=p.name, regions=[], base_dir=p.parent)
            out.append(cache[str(p)])
        return out

    @Slot()
    def predict_all(self) -> int:
        split = self.all_split.currentText()
        entries = self._batch_entries(split)
        if not entries:
            self._say(f"Split {split!r} has no images." if split else "Open a project first.", error=True)
            return 0
        if not self.service.has_model():
            self._say("No active model: train one or choose a run in Training ▸ Runs.", error=True)
            return 0
        self._all_jobs.clear()
        self._all_scores = {}
        self._all_doubt = {}  # unannotated images: how unsure the model is (Label next)
        self._all_order = None  # Label next's order, once the photos' features are in
        self._rank_job = None
        self._all_labelled = any(e.regions for e in entries)
        self._all_failed = []
        self._all_stopped = False
        self._all_total = len(entries)
        for e in entries:  # in the background: a P pressed meanwhile is answered next, not after the split
            job = self.service.submit(("all", id(e)), str(e.path), background=True)
            self._all_jobs[job] = e
        self.all_btn.setEnabled(False)
        self.all_stop_btn.setEnabled(True)
        self._say(f"Predicting {len(entries)} images of {split}…")
        return len(entries)

    @Slot()
    def stop_all(self) -> int:
        """Stop Predict all: the images not started are dropped (the one running finishes); returns how many."""
        if not self._all_total:
            return 0
        dropped = self.service.cancel_background()
        for job in dropped:
            self._all_jobs.pop(job, None)
        if self._rank_job in dropped:
            self._rank_job = None
        self._all_stopped = True
        self.all_stop_btn.setEnabled(False)
        self._maybe_finish_all()
        return len(dropped)

    def project_changed(self) -> None:
        """Another project was opened (or the open one restored): a *Predict all* or Label next ordering still
        running is of the photos before; it is dropped (its answers ignored) and its scores and order forgotten.
        It went on, and its end said "Predicted 100 of 100 images; the image list is sorted by their Dice" over
        the new project."""
        running = bool(self._all_total) or self._rank_job is not None
        if running:
            self.service.cancel_background()
        self._all_jobs.clear()
        self._all_total = 0
        self._rank_job = None
        self._all_scores, self._all_doubt, self._all_order = {}, {}, None
        self._next_after_all = False
        self.all_btn.setEnabled(True)
        self.all_stop_btn.setEnabled(False)
        if running:
            self._say("Predict all stopped: another project was opened (press it again for this one).")

    def _on_all_result(self, job: int, tag: Any, probs: np.ndarray) -> None:
        entry = self._all_jobs.pop(job, None)
        if entry is None:
            return
        from viaseg.core.ml.evaluate import score_entry

        if self._all_labelled:  # a photo without regions in a labelled split is a negative: it has a Dice too
            # full resolution, as `viaseg evaluate` scores (the column and the CLI agree to the last digit)
            self._all_scores[entry.key] = score_entry(
                entry, np.asarray(probs, dtype=np.float32), self.threshold_value
            )[0]
        if not entry.regions:  # how unsure the model is decides what to label next
            self._all_doubt[entry.key] = uncertainty(np.asarray(probs)[::4, ::4])
        done = self._all_total - len(self._all_jobs)
        if done % 8 == 0:
            self._show_all_column()
            self._say(f"Predicted {done}/{self._all_total}…")
        self._maybe_finish_all()

    def _maybe_finish_all(self) -> None:
        if self._all_jobs or not self._all_total:
            return
        self._show_all_column()
        scores = list(self._all_scores.values())
        mean = f"; mean Dice {np.mean(scores):.3f}" if scores else ""
        done = len(scores) if self._all_labelled else len(self._all_doubt)
        text = f"Predicted {done} of {self._all_total} images{mean}"
        if self._all_stopped:
            text = f"Stopped. {text}"
        if self._all_failed:
            named = "; ".join(f"{n}: {m}" for n, m in self._all_failed[:3])
            more = f" and {len(self._all_failed) - 3} more (see the log)" if len(self._all_failed) > 3 else ""
            text += f". {len(self._all_failed)} failed: {named}{more}"
        # unannotated photos get an order even in a split partly labelled already (as the loop goes)
        ranking = bool(self._all_doubt) and self._start_ranking()
        if self._all_labelled:
            hint = ". The image list is sorted by their Dice, worst first (images without one last)."
            if ranking:
                hint += " Ordering the unannotated ones for Label next…"
        elif ranking:
            hint = ". Ordering them for Label next…"
        else:
            hint = ". The doubt column ranks them: L opens the one to label next."
        self._say(text + hint, error=bool(self._all_failed))
        self._all_total = 0
        self.all_btn.setEnabled(True)
        self.all_stop_btn.setEnabled(False)
        if self._next_after_all and not ranking:
            self._next_after_all = False
            self.next_to_label()

    def _labelled_sample(self) -> list:
        """What Label next counts as covered: the annotated photos the active model trained on (its run's
        record; all annotated photos when it has none) and those of the split being ordered (labelled since),
        at most ``LABELLED_SAMPLE``, spread evenly over them."""
        from viaseg.core.ml.loop import read_trained_on

        here = self.all_split.currentText()
        record = read_trained_on(self.service.model_path) if self.service.model_path else None
        out = [
            e
            for n in self.host.split_names() or []
            for e in self.host.split_entries(n) or []
            if e.regions and (record is None or n == here or e.filename in record)
        ]
        if len(out) > LABELLED_SAMPLE:
            out = [out[i] for i in np.linspace(0, len(out) - 1, LABELLED_SAMPLE).round().astype(int)]
        return out

    def _start_ranking(self) -> bool:
        """Queue the job that gets the features of the photos just predicted and of the annotated ones."""
        entries = {e.key: e for e in self._batch_entries(self.all_split.currentText())}
        keys = [k for k in self._all_doubt if k in entries]
        if not keys:
            return False
        cands = [str(entries[k].path) for k in keys]
        known = [str(e.path) for e in self._labelled_sample()]
        self._rank_inputs = (keys, cands, known)
        self._rank_job = self.service.submit_embeddings(("rank", len(keys)), cands + known)
        return True

    def _on_ranked(self, job: int, vectors: dict) -> None:
        if job != self._rank_job:
            return  # a ranking overtaken by a newer Predict all
        self._rank_job = None
        keys, cands, known = self._rank_inputs
        embedded = {k: vectors.get(p) for k, p in zip(keys, cands, strict=True)}
        seen = [v for v in (vectors.get(p) for p in known) if v is not None]
        self._all_order = rank_typical(embedded, np.stack(seen) if seen else None, self._all_doubt)
        self._show_all_column()
        covered = f", counting {len(seen)} annotated photos as covered" if seen else ""
        self._say(
            f"Ordered {len(keys)} photos for Label next: first the one that stands for most of the others, then "
            f"the one that best stands for what that leaves{covered}. L opens the first still unlabelled."
        )
        if self._next_after_all:
            self._next_after_all = False
            self.next_to_label()

    def _on_rank_failed(self, job: int, message: str) -> None:
        if job != self._rank_job:
            return
        self._rank_job = None
        log.warning("Label next: photo features failed: %s", message)
        self._say(f"Label next orders by doubt only: the photos' features failed: {message}", error=True)
        if self._next_after_all:
            self._next_after_all = False
            self.next_to_label()

    def forget_order(self) -> bool:
        """A new active model (*Improve model*, a run made active): the order of unlabelled photos was the old
        model's, so the next L predicts and orders them again with the new one, as the loop was measured
        (``bench_loop.py`` orders the pool again after every *Improve model*). A *Predict all* still running
        is left alone. Returns whether an order was dropped."""
        if self._all_total or not (self._all_doubt or self._all_order is not None):
            return False
        waiting = self._next_after_all  # an L waiting for the ordering dropped here stayed pending, and fired
        self._all_doubt = {}  # at the end of a later Predict all with an unrelated message
        self._all_order = None
        self._rank_job = None  # a features job still running answers for the old model: ignored
        if waiting:
            self._next_after_all = False
            self._say(
                "The active model changed while the photos were being ordered: press L to order them with it."
            )
        return True

    def _order(self) -> list[str]:
        """Label next's order: typical first once ranked, else most uncertain first."""
        return list(self._all_order) if self._all_order is not None else rank_uncertain(self._all_doubt)

    def _show_all_column(self) -> None:
        if self.all_split.currentText() == DROPPED:
            self._rank_dropped_list()
        elif self._all_labelled:
            self.host.set_dice_column(dict(self._all_scores))
        elif self._all_order is not None:
            self.host.set_rank_column(
                "next", {k: i + 1 for i, k in enumerate(self._all_order)}, ascending=True
            )
        else:
            self.host.set_rank_column("doubt", dict(self._all_doubt))

    def _rank_dropped_list(self) -> None:
        """The dropped-photo list in Label next's order, each with its place and doubt."""
        from pathlib import Path

        from PySide6.QtCore import Qt

        order = {k: i for i, k in enumerate(self._order())}
        # signals blocked while the items are taken out and put back: each removal moves the current row, and
        # the list's selection handler would show (and predict) every photo in turn, dropping unreadable ones
        # from under this loop
        self.photos.blockSignals(True)
        try:
            cur = self.photos.currentItem()
            cur_key = cur.data(Qt.ItemDataRole.UserRole) if cur is not None else None
            items = [self.photos.takeItem(0) for _ in range(self.photos.count())]
            items.sort(key=lambda it: order.get(it.data(Qt.ItemDataRole.UserRole), len(order)))
            for it in items:
                key = it.data(Qt.ItemDataRole.UserRole)
                name = Path(key).name
                place = f"#{order[key] + 1}  " if self._all_order is not None and key in order else ""
                it.setText(
                    f"{name}   {place}doubt {self._all_doubt[key]:.3f}" if key in self._all_doubt else name
                )
                self.photos.addItem(it)
                if key == cur_key:
                    self.photos.setCurrentItem(it)
        finally:
            self.photos.blockSignals(False)

    @property
    def doubt(self) -> dict[str, float]:
        """Uncertainty of each unannotated image of the last *Predict all* (entry key -> score)."""
        return dict(self._all_doubt)

    @property
    def order(self) -> list[str]:
        """Label next's order of the last *Predict all*'s unannotated images (entry keys)."""
        return self._order()

    def next_to_label(self) -> Any:
        """*Label next*: open the first unannotated image in Label next's order (of the last *Predict all*,
        skipping those labelled since). Without an order, predicts and orders the chosen split first, then opens
        the first."""
        from pathlib import Path

        dropped = self.all_split.currentText() == DROPPED
        entries = {e.key: e for e in self._batch_entries(self.all_split.currentText())}
        if self._all_total or self._rank_job is not None:
            self._next_after_all = True
            self._say("Ordering the photos… the first to label opens when that is done.")
            return None
        order = self._order()
        todo = [k for k in order if k in entries and not entries[k].regions]
        # photos deleted from disk since the order was made are passed over, and named (L opened the same
        # missing photo again and again)
        gone = [k for k in todo if not Path(entries[k].path).is_file()]
        todo = [k for k in todo if k not in gone]
        skipped = ""
        if gone:
            names = ", ".join(entries[k].filename for k in gone[:3]) + (" …" if len(gone) > 3 else "")
            skipped = f" Passed over {len(gone)} photo(s) no longer on disk: {names}."
        if todo:
            entry = entries[todo[0]]
            if dropped:  # shown (and predicted) as a dropped photo; *Add photo to* puts it in a split
                self.show_photo(Path(entry.key))
            else:
                self.host.open_entry(entry)
            left = len(todo) - 1
            text = (
                f"Next to label: {entry.filename} (#{order.index(todo[0]) + 1} of {len(order)}, doubt "
                f"{self._all_doubt[todo[0]]:.3f}); {left} more unlabelled in the order.{skipped}"
            )
            self._say(text)
            # the photo's own prediction answers next: its message keeps this one (prediction_panel)
            self._next_note = (Path(entry.path).resolve(), text)
            return entry
        split = self.all_split.currentText()
        if gone:
            self._say(f"Nothing left to label in the order.{skipped}", error=True)
            return None
        unlabelled = [k for k, e in entries.items() if not e.regions]
        if not unlabelled:
            self._say(
                f"Every image of {split!r} has regions: nothing left to label there. "
                "Choose an unlabelled split (Predict all on ▸ split).",
                error=True,
            )
            return None
        if any(k in entries for k in order):  # ordered, and what is left could not be (unreadable photos)
            self._say(
                f"The {len(unlabelled)} unlabelled image(s) of {split!r} left could not be ordered (they could not "
                "be predicted: see Predict all's message).",
                error=True,
            )
            return None
        # no order of this split yet (an order of another split said "every image has regions" here before)
        if self.predict_all():
            self._next_after_all = True
        return None
