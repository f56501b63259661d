"""Regenerate the annotation screenshots: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python
scripts/screenshots_annotate.py ../shared/datasets/car-damage`` (writes PNGs to docs/screenshots/)."""

from __future__ import annotations

import os
import sys
import tempfile

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from shots import OUT, settle


def main(dataset: str) -> int:
    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    app = QApplication(sys.argv[:1])
    from viaseg.gui.app import create_window

    w = create_window(dataset, restore=False)
    w.resize(1600, 1000)
    w.show()
    w.dock_attributes.raise_()
    w.problems.pool.waitForDone()
    settle(app, 1.0)
    row = next(i for i, r in enumerate(w.session.rows) if len(r.entry.regions) >= 2 and r.entry.path.exists())
    w.show_row(row)
    w.canvas.select(0)
    settle(app)
    w.grab().save(str(OUT / "main_window.png"))

    # polygon being drawn on the next image
    w.step(1)
    c = w.canvas
    c.start_drawing()  # what N does (shortcuts need an active window, which Xvfb may not give)
    iw, ih = c.img_size
    for fx, fy in ((0.30, 0.35), (0.45, 0.30), (0.55, 0.42), (0.50, 0.58), (0.33, 0.55)):
        p = c.to_widget(iw * fx, ih * fy)
        QTest.mouseClick(c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p.toPoint())
    cur = c.to_widget(iw * 0.29, ih * 0.47)
    QTest.mouseMove(c, cur.toPoint())
    c._cursor = QPointF(cur)
    settle(app)
    w.grab().save(str(OUT / "polygon_edit.png"))
    c.cancel_drawing()

    # problems panel: jump to the first geometry problem
    probs = w.problems.problems
    target = next((i for i, p in enumerate(probs) if p.region is not None), 0)
    if probs:
        w.problems.table.selectRow(target)
        w.problems.jump.emit(probs[target])
    w.dock_problems.raise_()
    w.resizeDocks([w.dock_problems], [300], Qt.Orientation.Vertical)
    w.statusBar().showMessage(f"problem: {probs[target].message}" if probs else "")
    settle(app)
    w.grab().save(str(OUT / "problems_panel.png"))
    w.session.history.set_clean()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets/car-damage"))
