"""What every ``scripts/screenshots_*.py`` shares: where screenshots go and how to let Qt settle."""

from __future__ import annotations

import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"


def settle(app, seconds=0.3):
    """Process events for ``seconds`` (paints, queued signals) before a grab."""
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)


def open_window(dataset, size=(1680, 1050), **kwargs):
    """A fresh state folder, the QApplication and the main window on ``dataset``, resized and shown:
    (app, window)."""
    import os
    import sys
    import tempfile

    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    from PySide6.QtWidgets import QApplication
    from viaseg.gui.app import create_window

    app = QApplication.instance() or QApplication(sys.argv[:1])
    w = create_window(dataset, **kwargs)
    w.resize(*size)
    w.show()
    return app, w


def training_form(w) -> Path:
    """The Training dock shown and raised with its settings unfolded, its runs going to a fresh temporary
    folder (returned)."""
    import tempfile

    runs = Path(tempfile.mkdtemp(prefix="viaseg-shots-runs-"))
    w.ml.training.set_runs_root(runs)
    w.ml.dock_training.show()
    w.ml.dock_training.raise_()
    w.ml.training.show_settings(True)
    return runs


def train_and_grab(app, w, ready, out_name, seconds=300):
    """Start the Training panel's run and, while it trains (at most ``seconds``), grab the training dock once as
    ``OUT/out_name`` the first time ``ready(panel)`` is true; print the bar's text and message then. Returns
    whether it grabbed."""
    tp = w.ml.training
    assert tp.start(), tp.message.text()
    taken = False
    t_end = time.time() + seconds
    while tp.is_running() and time.time() < t_end:
        settle(app, 0.5)
        if not taken and ready(tp):
            tp.curves.flush()
            settle(app, 0.5)
            w.ml.dock_training.grab().save(str(OUT / out_name))
            print("live:", tp.progress.format(), "|", tp.message.text())
            taken = True
    return taken
