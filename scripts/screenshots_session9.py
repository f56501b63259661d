"""Screenshots of the screens changed in the ninth session: ``xvfb-run -a -s "-screen 0 1920x1080x24"
.venv/bin/python scripts/screenshots_session9.py ../shared`` (writes PNGs to docs/screenshots/):
the main window with every dock at 1366x768 and 1920x1080, the banner after a file that cannot be opened, the
training panel's "Also train on", and a labelme example opened in viaseg."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication
from shots import OUT, settle


def main(shared: str) -> int:
    shared_dir = Path(shared)
    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    app = QApplication(sys.argv[:1])
    from viaseg.gui.app import create_window

    dataset = shared_dir / "datasets" / "car-damage"
    w = create_window(str(dataset), restore=False)
    w.show()
    w.problems.pool.waitForDone()
    ml = getattr(w, "ml", None)
    for size, name in (((1366, 768), "window_1366x768.png"), ((1920, 1080), "window_1920x1080.png")):
        w.resize(*size)
        settle(app, 0.8)
        row = next(
            i for i, r in enumerate(w.session.rows) if len(r.entry.regions) >= 2 and r.entry.path.exists()
        )
        w.show_row(row)
        settle(app, 0.5)
        w.grab().save(str(OUT / name))
    if ml is not None:
        ml.dock_training.raise_()
        ml.training.show_settings(True)
        ml.training.add_extra_data(shared_dir / "datasets" / "car-damage-extra-split" / "train")
        w.resize(1920, 1080)
        settle(app, 0.8)
        w.grab().save(str(OUT / "training_also_train_on.png"))
    bad = Path(tempfile.mkdtemp()) / "broken.json"
    bad.write_text('{"a.jpg1": {"filename": "a.jpg", "regions": [')
    w.open_path(bad)
    settle(app, 0.5)
    w.grab().save(str(OUT / "open_failed_banner.png"))
    w.banner.hide()
    w.open_path(shared_dir / "fixtures-labelme" / "instance_segmentation")
    settle(app, 0.8)
    w.show_row(0)
    w.dock_attributes.raise_()
    w.canvas.select(0)
    settle(app, 0.5)
    w.grab().save(str(OUT / "labelme_opened.png"))
    w.session.history.set_clean()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared"))
