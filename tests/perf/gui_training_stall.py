"""Main-thread stall while the app trains: a 10 ms heartbeat timer on the GUI thread during a real run.

Used by ``tests/perf/bench_gui.py`` (keys ``stall_p99_ms``, ``stall_max_ms``); runnable alone:

    QT_QPA_PLATFORM=offscreen python tests/perf/gui_training_stall.py [--epochs 3] [--size 128]

The main window (with ``ml_wiring`` installed, curves and sample strip visible) opens car-damage, the Training
panel starts a run; from the ``Started`` event (data decoded, TensorFlow loaded) to the end of the run a
``Qt.PreciseTimer`` fires every 10 ms and records how late each tick is (interval - 10 ms). The stall during
preparation (decoding, TF import, model build) is reported separately as ``stall_prep_max_ms``.
Not a test (no asserts); prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[2]
CAR_DAMAGE = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared")) / "datasets" / "car-damage"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


def measure_training_stall(
    data: Path = CAR_DAMAGE,
    size: int = 128,
    epochs: int = 3,
    batch_size: int = 8,
    timeout_s: float = 900.0,
    idle_s: float = 8.0,
) -> dict:
    """Run a real training in the app and return the heartbeat statistics (milliseconds)."""
    import tempfile

    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-bench-state-"))
    from viaseg.gui.main_window import MainWindow
    from viaseg.gui.ml_wiring import install

    w = MainWindow(settings=None)
    ml = getattr(w, "ml", None) or install(w)
    w.resize(1400, 900)
    w.show()
    if not w.open_path(data):
        raise SystemExit(f"cannot open {data}")
    runs = Path(tempfile.mkdtemp(prefix="viaseg-bench-runs-"))
    tp = ml.training
    tp.set_runs_root(runs)
    tp.preset.setCurrentText("default")
    tp.image_size.setValue(size)
    tp.epochs.setValue(epochs)
    tp.batch_size.setValue(batch_size)
    ml.dock_training.show()
    ml.dock_training.raise_()
    tp.config_overrides = {"sample_every": 1, "patience": 100}

    clock = QElapsedTimer()
    clock.start()
    ticks: list[tuple[float, str]] = []  # (ms since last tick, phase)
    phase = {"now": "prep", "last": None, "started_at": None, "batches": 0, "epochs": 0, "ev": ""}
    worst: list[tuple[float, float, str]] = []  # (ms late, s since start, last event before it)

    def beat():
        t = clock.nsecsElapsed() / 1e6
        if phase["last"] is not None:
            dt = t - phase["last"]
            ticks.append((dt, phase["now"]))
            if dt > 60 and phase["now"] == "train":
                worst.append((round(dt - 10, 1), round(t / 1000, 2), phase["ev"]))
        phase["last"] = t

    def on_event(ev):
        kind = type(ev).__name__
        phase["ev"] = kind
        if kind == "Started":
            phase["now"] = "train"
            phase["started_at"] = time.perf_counter()
        elif kind == "BatchEnd":
            phase["batches"] += 1
        elif kind == "EpochEnd":
            phase["epochs"] += 1
        elif kind in ("Finished", "Failed"):  # ticks still count until the thread has ended
            phase["result"] = getattr(ev, "message", None) or "finished"

    hb = QTimer()
    hb.setTimerType(Qt.TimerType.PreciseTimer)
    hb.setInterval(10)
    hb.timeout.connect(beat)
    hb.start()
    # the same window idle for a few seconds first: what the box's load alone costs the heartbeat
    phase["now"] = "idle"
    t_idle = time.perf_counter()
    while time.perf_counter() - t_idle < idle_s:
        app.processEvents()
        time.sleep(0.001)
    phase["now"] = "prep"
    t0 = time.perf_counter()
    if not tp.start():
        raise SystemExit(f"training did not start: {tp.message.text()}")
    tp.thread.event.connect(on_event)
    while (tp.is_running() or tp.thread is not None) and time.perf_counter() - t0 < timeout_s:
        app.processEvents()
        time.sleep(0.001)
    phase["now"] = "done"
    hb.stop()
    train_s = time.perf_counter() - (phase["started_at"] or t0)
    stalls = [max(0.0, dt - 10.0) for dt, ph in ticks if ph == "train"]
    prep = [max(0.0, dt - 10.0) for dt, ph in ticks if ph == "prep"]
    idle = [max(0.0, dt - 10.0) for dt, ph in ticks if ph == "idle"]
    out = {
        "stall_p99_ms": round(_percentile(stalls, 99), 2),
        "stall_max_ms": round(max(stalls, default=0.0), 2),
        "stall_p50_ms": round(_percentile(stalls, 50), 2),
        "stall_prep_max_ms": round(max(prep, default=0.0), 2),
        "stall_idle_p99_ms": round(_percentile(idle, 99), 2),
        "stall_idle_max_ms": round(max(idle, default=0.0), 2),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "heartbeats": len(stalls),
        "train_seconds": round(train_s, 1),
        "batches": phase["batches"],
        "epochs": phase["epochs"],
        "curve_full_draws": tp.curves.full_draws,
        "curve_blits": tp.curves.blits,
        "image_size": size,
        "worst_stalls": sorted(worst, reverse=True)[:4],  # [ms, s since start, last core event]
        "result": phase.get("result", tp.message.text()),
    }
    ml.shutdown()
    w.session.history.set_clean()
    w.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=CAR_DAMAGE)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument(
        "--json", action="store_true", help="(always JSON; accepted for symmetry with bench_*.py)"
    )
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(json.dumps({"skipped": f"{args.data} is missing"}))
        return 0
    print(json.dumps(measure_training_stall(args.data, args.size, args.epochs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
