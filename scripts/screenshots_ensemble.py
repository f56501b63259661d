"""Screenshots of *Networks averaged* (twenty-sixth session): ``xvfb-run -a -s "-screen 0 1920x1080x24"
.venv/bin/python scripts/screenshots_ensemble.py`` opens the demo project, trains two networks for a minute in
all (the default preset, 30 s each) and writes docs/screenshots/training_ensemble.png (the form),
training_ensemble_live.png (the second network training, its curves going on from the first's) and
training_ensemble_runs.png (the run in the Runs tab); then predicts the photo shown with the averaged model."""

from __future__ import annotations

from shots import OUT, REPO, open_window, settle, train_and_grab, training_form


def main() -> int:
    app, w = open_window(str(REPO / "data" / "demo"), size=(1600, 1000), restore=False)
    tp = w.ml.training
    training_form(w)
    tp.time_limit.setValue(1)
    tp.ensemble.setValue(2)
    settle(app, 0.8)
    w.ml.dock_training.grab().save(str(OUT / "training_ensemble.png"))
    train_and_grab(
        app,
        w,
        lambda p: "network 2 of 2" in p.progress.format() and len(p.curves.points("val_dice")) >= 3,
        "training_ensemble_live.png",
        seconds=240,
    )
    w.ml.prediction.status.connect(lambda text: print("prediction status:", text, flush=True))
    settle(app, 15.0)
    w.ml.predict_current()
    settle(app, 15.0)
    print("result:", tp.result_label.text(), "| error:", tp.last_error)
    tp.tabs.setCurrentIndex(1)
    tp.refresh_runs()
    if tp.runs.topLevelItemCount():
        tp.runs.setCurrentItem(tp.runs.topLevelItem(0))
    settle(app, 0.8)
    w.ml.dock_training.grab().save(str(OUT / "training_ensemble_runs.png"))
    print("run:", tp.run_summary.text()[:400])
    w.session.history.set_clean()
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
