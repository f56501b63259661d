"""Screenshot of the training dock's Runs tab (docs/screenshots/runs_threshold.png), run under Xvfb:

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots_runs.py RUNS_DIR [RUN_NAME]

Opens car-damage (../shared), points the Runs tab at RUNS_DIR (folders written by `viaseg train`), selects
RUN_NAME (default: the first) and saves the window: the run's summary, its threshold and how it was chosen
(calibrated on held-out training photos, or why not), and its curves.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shots import OUT, REPO, open_window, settle

DATA = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared")) / "datasets" / "car-damage"


def main() -> int:
    runs_dir = Path(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else None
    from PySide6.QtCore import Qt

    app, w = open_window(DATA)
    ml = w.ml
    tp = ml.training
    tp.set_runs_root(runs_dir)
    ml.dock_training.show()
    ml.dock_training.raise_()
    w.resizeDocks([ml.dock_training], [760], Qt.Orientation.Horizontal)
    tp.tabs.setCurrentIndex(next(i for i in range(tp.tabs.count()) if tp.tabs.tabText(i) == "Runs"))
    items = [tp.runs.topLevelItem(i) for i in range(tp.runs.topLevelItemCount())]
    pick = next((it for it in items if it.text(0) == name), items[0] if items else None)
    if pick is None:
        print(f"{runs_dir}: no runs", file=sys.stderr)
        return 1
    tp.runs.setCurrentItem(pick)
    settle(app, 2.0)
    OUT.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(OUT / "runs_threshold.png"))
    print(tp.run_summary.text())
    w.session.history.set_clean()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
