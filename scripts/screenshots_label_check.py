"""Screenshot of the Check labels dock: ``xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python
scripts/screenshots_label_check.py [SECONDS_PER_FOLD [CHECK_FOLDER]]`` (writes docs/screenshots/label_check.png
and label_check_areas.png; CHECK_FOLDER: show an earlier run's check-labels folder instead of checking again).

Opens a copy of the demo project, deletes the largest region of train_05.jpg in the app (an unsaved edit, as a user
would make a mistake), runs a real 3-fold check in the training process (the Training panel's default preset
at 128 px, SECONDS_PER_FOLD each, default 120), then clicks that photo's largest extra area; then the same
results as every photo's areas in one list, with that photo's first extra area chosen. Nothing is written to
the repository but the PNGs."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication
from shots import OUT, REPO, settle

PHOTO = "train_05.jpg"


def main(seconds: str = "120", results: str | None = None) -> int:
    from viaseg.core.annotation import edits
    from viaseg.core.annotation.raster import rasterize

    tmp = Path(tempfile.mkdtemp(prefix="viaseg-shots-"))
    os.environ.setdefault("VIASEG_STATE_DIR", str(tmp / "state"))
    proj = tmp / "demo"
    shutil.copytree(REPO / "data" / "demo", proj)
    app = QApplication(sys.argv[:1])
    from viaseg.gui.app import create_window

    w = create_window(str(proj), restore=False)
    w.resize(1600, 1000)
    w.show()
    settle(app, 0.5)
    ml = w.ml
    entry = next(r.entry for r in w.session.rows if r.entry.filename == PHOTO)
    biggest = max(entry.regions, key=lambda r: int(rasterize([r], (320, 240)).sum()))
    w.session.push(edits.DeleteRegions(entry, [biggest]))
    ml.training.set_runs_root(tmp / "runs")
    ml.training.image_size.setValue(128)
    panel = ml.label_check
    panel.dock.show()
    panel.dock.raise_()
    panel.folds.setValue(
        3
    )  # the check the docs' pictures show (the dock's default is 5 since the thirtieth session)
    panel.set_budget(int(seconds), "seconds")
    if results:  # the results of an earlier run of this script (its check-labels folder): no new check
        panel.load_results(results)
    elif not panel.start():
        print("could not start:", panel.message.text())
        os._exit(1)
    t0 = time.time()
    while panel.thread is not None:
        settle(app, 1.0)
        if int(time.time() - t0) % 30 == 0:
            print(f"{time.time() - t0:5.0f} s  {panel.progress.format()}", flush=True)
    print("done:", panel.message.text())
    tops = [panel.tree.topLevelItem(i) for i in range(panel.tree.topLevelItemCount())]
    print("order:", [(t.text(0), t.text(1)) for t in tops[:5]])
    rank = next(i for i, t in enumerate(tops) if t.text(0) == PHOTO)
    print(f"{PHOTO} is number {rank + 1} of {len(tops)}")
    top = tops[rank]
    area = next(
        (top.child(j) for j in range(top.childCount()) if top.child(j).text(0).startswith("extra")), top
    )
    panel.tree.setCurrentItem(area)
    panel.tree.scrollToItem(top)
    settle(app, 0.8)
    w.grab().save(str(OUT / "label_check.png"))
    print("wrote", OUT / "label_check.png")
    # the same results as one list of every photo's areas, surest first; the deleted region's area chosen
    panel.order.setCurrentIndex(1)
    items = [panel.tree.topLevelItem(i) for i in range(panel.tree.topLevelItemCount())]
    print("areas order:", [(t.text(3), t.text(0), t.text(1)) for t in items[:6]])
    mine = next((i for i, t in enumerate(items) if t.text(3) == PHOTO and t.text(0).startswith("extra")), 0)
    print(f"{PHOTO}'s first extra area is number {mine + 1} of {len(items)}")
    panel.tree.setCurrentItem(items[mine])
    panel.tree.scrollToItem(items[mine])
    settle(app, 0.8)
    w.grab().save(str(OUT / "label_check_areas.png"))
    print("wrote", OUT / "label_check_areas.png")
    w.session.history.set_clean()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
