"""Screenshots of the heat map's colour legend and of the Replace / Merge / Add question when a prediction is
accepted onto an annotated image: ``xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python
scripts/screenshots_issue21.py ../shared MODEL`` (writes docs/screenshots/heat_legend.png and
accept_choice.png). Nothing is saved."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication
from shots import OUT, settle


def main(shared: str, model: str, image: str = "image63.jpg") -> int:
    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    app = QApplication(sys.argv[:1])
    from viaseg.gui.app import create_window

    w = create_window(str(Path(shared) / "datasets" / "car-damage"), restore=False)
    w.resize(1600, 1000)
    w.show()
    ml = w.ml
    ml.training.set_active_model(model)
    row = next(i for i, r in enumerate(w.session.rows) if r.entry.filename == image)
    w.show_row(row)
    ml.dock_prediction.show()
    ml.dock_prediction.raise_()
    settle(app, 0.5)
    panel = ml.prediction
    panel.mode.setCurrentIndex(panel.mode.findData("heat"))
    ml.act_predict.trigger()
    end = time.time() + 120
    while panel.probs is None and time.time() < end:
        settle(app, 0.1)
    panel.threshold.setValue(40)
    settle(app, 0.5)
    assert panel.heat_legend.isVisible(), "the legend should show with the heat map"
    w.grab().save(str(OUT / "heat_legend.png"))

    entry = w.current_entry()
    box = panel.accept_mode_box(len(entry.regions), len(panel.predicted_regions()))
    box.show()
    settle(app, 0.5)
    screen = app.primaryScreen()
    geo = w.frameGeometry()
    screen.grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height()).save(str(OUT / "accept_choice.png"))
    box.close()
    print("wrote", [p.name for p in (OUT / "heat_legend.png", OUT / "accept_choice.png")])
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
