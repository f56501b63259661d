"""Stress: load, predict, switch models and predict again many times while a live window keeps handling
events, in a fresh interpreter under ``python -X faulthandler`` (TensorFlow not imported yet, as in the app).

Before the fix in ``gui/workers.py`` (TensorFlow imported on the GUI thread by ``set_model``), 4 runs of 4 of
this script died with a segmentation fault inside ``tf.function`` tracing on the inference thread."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from ml_helpers import make_model

SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from PySide6.QtWidgets import QApplication, QLabel
    app = QApplication([])
    assert "tensorflow" not in sys.modules
    from viaseg.gui.workers import InferenceService
    models = sys.argv[2:]
    n = int(sys.argv[1])
    svc = InferenceService()
    label = QLabel("live"); label.show()
    img = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    done, failed = [], []
    svc.predicted.connect(lambda j, t, p: done.append(j))
    svc.failed.connect(lambda j, t, m: (failed.append(m), done.append(j)))
    for it in range(n):
        svc.set_model(models[it % len(models)], load=True)   # load at once, then predict: the crashing order
        job = svc.submit(("stress", it), img.copy())
        end = time.time() + 120
        while job not in done and time.time() < end:
            app.processEvents()
            label.setText(str([[k] for k in range(50)][-1]))   # the GUI thread keeps running Python meanwhile
        assert job in done, f"iteration {it}: no answer"
    svc.shutdown()
    print("ok", len(done), "failed", len(failed), failed[:1])
""")


def test_load_predict_switch_many_times_from_a_live_window(tmp_path):
    models = [str(make_model(tmp_path / f"m{i}.keras", size=32 + 16 * i)) for i in range(3)]
    script = tmp_path / "stress.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(script), "9", *models],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, f"exit {proc.returncode} (-11 = segmentation fault):\n{tail}"
    assert "ok 9 failed 0" in proc.stdout, tail


EXIT_ORDER = textwrap.dedent("""
    import atexit
    from viaseg.gui import workers
    atexit.register(lambda: print("tensorflow's exit handler", flush=True))  # one TensorFlow registers later
    workers._LIVE.add("a worker thread")  # stands in for a QThread still running: stopping it is printed
    workers._stop_thread = lambda thread, timeout_ms=0: print("workers stopped", flush=True)
    workers.import_tensorflow()  # the app does this before every model it makes active
""")


def test_at_exit_the_workers_stop_before_tensorflows_exit_handlers_run(tmp_path):
    """A script that ends while a worker still runs (a model's warm-up right after Improve model) must stop its
    workers before the exit handlers TensorFlow registers run: after them, the warm-up's trace failed inside
    Keras (3 runs of 3 of scripts/screenshots_loop.py)."""
    script = tmp_path / "exit_order.py"
    script.write_text(EXIT_ORDER)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln in ("workers stopped", "tensorflow's exit handler")]
    assert lines == ["workers stopped", "tensorflow's exit handler"]
