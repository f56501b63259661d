"""Screenshot of *Steps at most* (thirty-fifth session): ``xvfb-run -a -s "-screen 0 1920x1080x24"
.venv/bin/python scripts/screenshots_steps.py`` opens the demo project, trains the default preset with a 3-minute
time limit and a budget of 150 steps (the demo's 3 steps an epoch: 50 epochs), and writes
docs/screenshots/training_steps_form.png (the form: *Steps at most* under *Time limit*) and
training_steps_at_most.png while it trains (the form folded; the bar counting steps), then prints how the run
ended. ``--form-only``: the form's screenshot alone, no training."""

from __future__ import annotations

import json
import sys

from shots import OUT, REPO, open_window, settle, train_and_grab, training_form


def main() -> int:
    app, w = open_window(str(REPO / "data" / "demo"), size=(1600, 1000), restore=False)
    tp = w.ml.training
    runs = training_form(w)
    tp.time_limit.setValue(3)
    tp.max_steps.setValue(150)
    settle(app, 0.8)
    w.ml.dock_training.grab().save(str(OUT / "training_steps_form.png"))
    if "--form-only" in sys.argv:
        w.session.history.set_clean()
        w.close()
        return 0
    train_and_grab(
        app,
        w,
        lambda p: "step" in p.progress.format() and len(p.curves.points("val_dice")) >= 20,
        "training_steps_at_most.png",
    )
    settle(app, 2.0)
    print("result:", tp.result_label.text(), "| error:", tp.last_error)
    for summary in runs.glob("*/summary.json"):
        s = json.loads(summary.read_text())
        print("summary:", s.get("stop_reason"), s.get("epochs_run"), s.get("train_seconds"))
    w.session.history.set_clean()
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
