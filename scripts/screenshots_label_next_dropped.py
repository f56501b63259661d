"""Screenshot of *Label next* on photos dropped on the window: ``xvfb-run -a -s "-screen 0 1920x1080x24"
.venv/bin/python scripts/screenshots_label_next_dropped.py MODEL FOLDER`` opens the close-up project
(../shared/datasets/car-damage), makes MODEL active (e.g. a run of the README's training command), drops every
photo of FOLDER (e.g. ../shared/datasets/car-damage-extra-split/val, whole cars: a style the close-ups do not
cover), chooses *Dropped photos* and presses L. It waits for the order (the photos' features after *Predict
all*) and writes docs/screenshots/label_next_dropped.png: the dropped list in Label next's order, each photo with
its place and doubt, the first one shown. Nothing in the repository but the screenshot is changed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from shots import OUT, REPO, open_window, settle


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    model, folder = sys.argv[1], Path(sys.argv[2])
    project = REPO.parent / "shared" / "datasets" / "car-damage"
    app, w = open_window(str(project), size=(1600, 1000), restore=False)
    settle(app, 1.0)
    w.ml.training.set_active_model(model)
    pp = w.ml.prediction
    w.ml.dock_prediction.show()
    w.ml.dock_prediction.raise_()
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    pp.open_photos(photos)
    pp.all_split.setCurrentText("Dropped photos")
    t0 = time.time()
    pp.next_to_label()
    end = time.time() + 600
    last = ""
    while not (pp.order and pp._rank_job is None and pp.all_btn.isEnabled()) and time.time() < end:
        settle(app, 0.2)
        if pp.message.text() != last:
            last = pp.message.text()
            print(f"{time.time() - t0:.1f} s: {last}", flush=True)
    print(f"{time.time() - t0:.1f} s:", pp.message.text())
    settle(app, 3.0)
    w.grab().save(str(OUT / "label_next_dropped.png"))
    print([pp.photos.item(i).text() for i in range(min(5, pp.photos.count()))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
