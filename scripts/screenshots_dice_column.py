"""Screenshot of *Predict all*'s Dice column: ``xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python
scripts/screenshots_dice_column.py MODEL`` opens the close-up project (../shared/datasets/car-damage, every split
in the image list), makes MODEL active (e.g. a run of the README's training command), runs *Predict all* on the
validation split and waits for it. The list is then sorted by the Dice column, worst first, the images of the
other splits (no Dice) after the last scored one; the worst is opened. Writes docs/screenshots/dice_column.png
and prints the list's first rows. Nothing in the repository but the screenshot is changed."""

from __future__ import annotations

import sys
import time

from shots import OUT, REPO, open_window, settle


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    project = REPO.parent / "shared" / "datasets" / "car-damage"
    app, w = open_window(str(project), size=(1600, 1000), restore=False)
    settle(app, 1.0)
    w.ml.training.set_active_model(sys.argv[1])
    pp = w.ml.prediction
    w.ml.dock_prediction.show()
    w.ml.dock_prediction.raise_()
    pp.all_split.setCurrentText("val")
    t0 = time.time()
    pp.predict_all()
    end = time.time() + 600
    while not pp.all_btn.isEnabled() and time.time() < end:
        settle(app, 0.2)
    settle(app, 1.0)
    print(f"{time.time() - t0:.1f} s:", pp.message.text())
    il = w.image_list
    col = il.model.columnCount() - 1
    rows = [
        tuple(il.proxy.data(il.proxy.index(r, c)) for c in (1, 2, col)) for r in range(il.proxy.rowCount())
    ]
    il.view.setCurrentIndex(il.proxy.index(0, 2))  # the worst photo, predicted (P): its agreement view
    settle(app, 1.0)
    pp.predict_current()
    end = time.time() + 120
    while pp.probs is None and time.time() < end:
        settle(app, 0.2)
    settle(app, 3.0)
    w.grab().save(str(OUT / "dice_column.png"))
    for r in rows[:14]:
        print(r)
    print("...", rows[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
