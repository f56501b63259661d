"""Screenshots of the annotate -> improve -> predict loop on the demo project: ``xvfb-run -a -s "-screen 0
1920x1080x24" .venv/bin/python scripts/screenshots_loop.py`` writes docs/screenshots/label_next.png (Predict all
on the unlabelled split orders its photos in the *next* column, typical first; L opened the first) and
improve_result.png (Improve model's verdict after a photo was edited). It trains a demo model for 30 epochs, then
improves it for 2 minutes (``screenshots_loop.py MODEL`` starts from an earlier run's model instead), on a copy of data/demo; nothing in the repository is changed."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget
from shots import OUT, REPO, settle


def wait(app, cond, timeout=600):
    end = time.time() + timeout
    while not cond() and time.time() < end:
        settle(app, 0.1)
    if not cond():
        raise SystemExit("timed out")


def main() -> int:
    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    work = Path(tempfile.mkdtemp(prefix="viaseg-loop-shots-"))
    demo = work / "demo"
    shutil.copytree(REPO / "data" / "demo", demo)
    app = QApplication(sys.argv[:1])
    from viaseg.gui.app import create_window

    w = create_window(str(demo), restore=False)
    w.resize(1600, 1000)
    w.show()
    ml = w.ml
    tp = ml.training
    tp.set_runs_root(work / "runs")
    tp.time_limit.setValue(0)
    tp.epochs.setValue(30)  # a demo model that finds something (about 3 minutes here)
    ml.dock_training.show()
    ml.dock_training.raise_()
    if len(sys.argv) > 1:  # a model of an earlier run of this script (its run folder records its photos)
        tp.set_active_model(sys.argv[1])
    else:
        assert tp.start()
        wait(app, lambda: not tp.is_running() and tp.active_model is not None, 900)
    settle(app, 1.0)

    # Label next: L on the unlabelled split orders it (Predict all, then the photos' features) and opens the first
    ml.prediction.refresh_splits()
    ml.prediction.all_split.setCurrentText("test")
    ml.prediction.next_to_label()
    wait(app, lambda: "Next to label" in ml.prediction.message.text(), 300)
    docks = [d for d in w.findChildren(QDockWidget) if d.windowTitle() == "Images"]
    w.resizeDocks(docks, [330], Qt.Orientation.Horizontal)  # room for the next column
    settle(app, 2.0)
    w.grab().save(str(OUT / "label_next.png"))

    # Improve model after an edit: one training photo's region moved
    first = next(r.entry for r in w.session.rows if r.entry.regions)
    row = w.session.row_of(first)
    w.show_row(row)
    from viaseg.core.annotation import edits

    reg = first.regions[0]
    moved = dict(reg.shape)
    if "all_points_x" in moved:
        moved["all_points_x"] = [x + 3 for x in moved["all_points_x"]]
    elif "x" in moved:
        moved["x"] = moved["x"] + 3
    w.session.push(edits.SetShape(reg, moved, entry=first))
    tp.improve.budget.setValue(2)
    assert tp.start_improve()
    wait(app, lambda: not tp.is_running() and bool(tp.last_improve), 900)
    settle(app, 1.0)
    tp.tabs.setCurrentIndex(0)
    w.grab().save(str(OUT / "improve_result.png"))
    print(tp.result_label.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
