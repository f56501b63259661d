"""Screenshots of the training and prediction docks for docs/screenshots (run under Xvfb):

    xvfb-run -a -s "-screen 0 1700x1100x24" .venv/bin/python scripts/screenshots_ml.py [--epochs 12]
        [--model RUN/model.keras]

Opens car-damage (../shared), trains at 128 px in the app (training.png while it runs), then predicts
test/test1.jpg (prediction_test1.png) and a validation image with the agreement view (agreement_val.png).
The predictions use the model just trained (a few epochs: blocky maps), or ``--model``, e.g. the model of a
10-minute ``viaseg train ../shared/datasets/car-damage --time-limit 600`` run, as a user would after training.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from shots import open_window

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared")) / "datasets" / "car-damage"
OUT = REPO / "docs" / "screenshots"


def pump(app, until, timeout_s: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        app.processEvents()
        if until():
            return True
        time.sleep(0.02)
    return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--shot-at-epoch", type=int, default=5)
    ap.add_argument("--model", type=Path, help="make this model active for the prediction screenshots")
    args = ap.parse_args()
    from PySide6.QtCore import Qt

    app, w = open_window(DATA)
    ml = w.ml
    OUT.mkdir(parents=True, exist_ok=True)
    tp = ml.training
    tp.set_runs_root(Path(tempfile.mkdtemp(prefix="viaseg-shot-runs-")))
    tp.image_size.setValue(128)
    tp.epochs.setValue(args.epochs)
    tp.config_overrides = {"sample_every": 2, "patience": 100}
    ml.dock_training.show()
    ml.dock_training.raise_()
    w.resizeDocks([ml.dock_training], [700], Qt.Orientation.Horizontal)
    row = next(i for i, r in enumerate(w.session.rows) if r.split == "val" and r.entry.regions)
    w.show_row(row)
    assert tp.start(), tp.message.text()
    epochs = []
    tp.thread.event.connect(lambda ev: epochs.append(ev) if type(ev).__name__ == "EpochEnd" else None)
    pump(app, lambda: len(epochs) >= args.shot_at_epoch and tp.samples.count > 0, 900)
    pump(app, lambda: False, 1.0)
    w.grab().save(str(OUT / "training.png"))
    print("training.png at epoch", len(epochs), tp.progress.format())
    if not pump(app, lambda: tp.thread is None, 1800):
        tp.stop_and_wait()
    print("finished:", tp.message.text(), tp.result_label.text())
    pp = ml.prediction
    if args.model:
        tp.set_active_model(str(args.model.resolve()))  # as "Make active" on the Runs tab
    ml.dock_prediction.show()
    ml.dock_prediction.raise_()
    w.resizeDocks([ml.dock_prediction], [420], Qt.Orientation.Horizontal)
    pp.open_photos([DATA / "test" / "test1.jpg"])
    pump(app, lambda: pp.probs is not None, 300)
    pp.mode.setCurrentIndex(pp.mode.findData("heat"))
    pump(app, lambda: False, 1.0)
    w.grab().save(str(OUT / "prediction_test1.png"))
    # agreement on a validation image: the one with the most annotated regions
    val_rows = [i for i, r in enumerate(w.session.rows) if r.split == "val" and r.entry.regions]
    w.show_row(max(val_rows, key=lambda i: len(w.session.rows[i].entry.regions)))
    ml.predict_current()
    pump(app, lambda: pp.probs is not None, 300)
    pp.mode.setCurrentIndex(pp.mode.findData("agreement"))
    pump(app, lambda: False, 1.0)
    w.grab().save(str(OUT / "agreement_val.png"))
    print("dice", pp.dice)
    ml.shutdown()
    w.session.history.set_clean()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
