"""Screenshot of the Training panel's form with its Network field (fifteenth session): ``xvfb-run -a -s
"-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots_network.py`` (opens the demo project; writes
docs/screenshots/training_network.png)."""

from __future__ import annotations

import os
import sys
import tempfile

from PySide6.QtWidgets import QApplication
from shots import OUT, REPO, settle


def main() -> int:
    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    app = QApplication(sys.argv[:1])
    from viaseg.gui.app import create_window

    w = create_window(str(REPO / "data" / "demo"), restore=False)
    w.resize(1600, 1000)
    w.show()
    ml = w.ml
    ml.dock_training.show()
    ml.dock_training.raise_()
    ml.training.show_settings(True)
    settle(app, 0.8)
    tp = ml.training
    print(
        "network:",
        tp.encoder.currentText(),
        "| size",
        tp.image_size.value(),
        "| rate",
        tp.learning_rate.value(),
    )
    ml.dock_training.grab().save(str(OUT / "training_network.png"))
    w.session.history.set_clean()
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
