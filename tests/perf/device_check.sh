#!/usr/bin/env bash
# GPU numbers of viaseg itself (its TensorFlow pipeline and models), as ONE JSON line on stdout.
#
#   tests/perf/device_check.sh            # from anywhere; uses the repo's .venv (or $PYTHON)
#
# No NVIDIA GPU, or TensorFlow sees none (the CPU build: run ./setup.sh on the GPU machine):
#   {"gpu": false, "reason": "..."} and exit 0.
# With one (TensorFlow sees it), measured with the default preset (mixed_float16 there):
#   epoch_s / images_per_s of a default-model epoch on car-damage/train and on the combined 149 photos
#   (car-damage/train + car-damage-extra-split/train): the median of the epochs after the first, the training
#   steps alone (train_epoch_s) and the epoch as the app reports it, validation included (epoch_s);
#   seconds_to_050: training seconds until car-damage:val (and car-damage-extra-split:val) first reach 0.50 mean
#   hard Dice (tests/perf/bench_train.py --time-to-dice, the documented recipe over DEVICE_CHECK_TIME_LIMIT s);
#   predict_p50_ms_12mp / _2mp: one photo end to end (tests/perf/bench_predict.py, the default preset's model,
#   as the app predicts); *_batch as `viaseg predict` does (mirror and 7/8, 9/8 sizes averaged).
# Knobs: DEVICE_CHECK_EPOCHS (timed epochs, default 3), DEVICE_CHECK_TIME_LIMIT (default 600, as docs/RESULTS.md),
#   DEVICE_CHECK_PREDICT_RUNS (default 20), DEVICE_CHECK_FORCE=1 (measure even without a GPU: a smoke test).
# Everything but the JSON line goes to stderr. Takes about 12 minutes on a GPU with the defaults.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

no_gpu() {  # $1: why; a JSON line, exit 0
  "$PY" -c 'import json, sys; print(json.dumps({"gpu": False, "reason": sys.argv[1]}))' "$1" 2>/dev/null \
    || printf '{"gpu": false, "reason": "%s"}\n' "${1//\"/\'}"
  exit 0
}

if [ "${DEVICE_CHECK_FORCE:-0}" != 1 ]; then
  command -v nvidia-smi >/dev/null 2>&1 || no_gpu "no NVIDIA GPU: nvidia-smi not found"
  nvidia-smi -L >/dev/null 2>&1 || no_gpu "no NVIDIA GPU: nvidia-smi -L failed ($(nvidia-smi -L 2>&1 | head -1))"
  seen=$("$PY" -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")), tf.__version__)' \
         2>/dev/null) || no_gpu "TensorFlow does not import with $PY"
  [ "${seen%% *}" -gt 0 ] 2>/dev/null || no_gpu "nvidia-smi sees a GPU but TensorFlow ${seen#* } does not \
(a CPU build, or CUDA libraries missing: ./setup.sh installs tensorflow[and-cuda])"
fi

cd "$REPO" && exec "$PY" - <<'PY'
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path("tests/perf").resolve()))
real_stdout = sys.stdout
sys.stdout = sys.stderr  # only the JSON line goes to stdout

import bench_predict  # noqa: E402
import bench_train  # noqa: E402

epochs = int(os.environ.get("DEVICE_CHECK_EPOCHS", "3"))
limit = float(os.environ.get("DEVICE_CHECK_TIME_LIMIT", "600"))
runs = os.environ.get("DEVICE_CHECK_PREDICT_RUNS", "20")
out = {"gpu": True}
if not bench_train.DATA.exists() or not bench_train.EXTRA.exists():
    out.update(gpu=None, reason=f"{bench_train.DATA} or {bench_train.EXTRA} not found")
    print(json.dumps(out), file=real_stdout)
    sys.exit(0)


def epochs_of(datasets: list) -> dict:
    """viaseg's own training (train(), the default preset) for 1 + ``epochs`` epochs; times after the first."""
    import keras
    from viaseg.core.ml.train import preset, train

    marks = {"train": [], "first": None, "last": None}

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks["first"] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            marks["last"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # after validation: the training part ends at the last batch
            marks["train"].append(marks["last"] - marks["first"])

    events = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = preset("default", dataset=str(datasets[0]), extra_train=[str(d) for d in datasets[1:]], out_dir=tmp,
                     epochs=1 + epochs, sample_every=0, patience=1000, lr_schedule="constant")
        result = train(cfg, on_event=events.append, callbacks=[Clock()])
    if not result.ok:
        return {"error": result.error}
    started = events[0]
    per_epoch = [e.seconds for e in events if type(e).__name__ == "EpochEnd"]
    train_s = statistics.median(marks["train"][1:])
    return {"images": started.n_train, "steps": started.steps_per_epoch, "batch_size": cfg.batch_size,
            "train_epoch_s": round(train_s, 3), "epoch_s": round(statistics.median(per_epoch[1:]), 3),
            "images_per_s": round(started.steps_per_epoch * cfg.batch_size / train_s, 1),
            "first_epoch_s": round(per_epoch[0], 2), "device": started.device, "precision": started.precision}


from viaseg.core import tfsetup  # noqa: E402
from viaseg.core.ml.train_plumbing import device_description, resolve_precision  # noqa: E402

tf = tfsetup.load_tf()
out.update(gpu=bool(tf.config.list_physical_devices("GPU")), device=device_description(), tensorflow=tf.__version__,
           precision=resolve_precision("auto"))
if os.environ.get("DEVICE_CHECK_FORCE") == "1":
    out["forced"] = True  # measured without a GPU check (a smoke test of this script)
t0 = time.perf_counter()
out["car_damage"] = epochs_of([bench_train.DATA])
out["combined_149"] = epochs_of([bench_train.DATA, bench_train.EXTRA])
for key in ("car_damage", "combined_149"):
    for k in ("epoch_s", "train_epoch_s", "images_per_s"):
        out[f"{k}_{key}"] = out[key].get(k)
ttd = bench_train.time_to_dice(limit, seed=0)
out["seconds_to_050"] = ttd["seconds_to_target"]
out["seconds_to_050_car_damage_val"] = ttd["seconds_to_target"].get("car-damage:val")
out["time_to_dice"] = {"time_limit_s": limit, "ok": ttd["ok"], "curve": ttd["curve"][-3:], "note": ttd["note"]}
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    bench_predict.main(["--json", "--runs", runs])
pred = json.loads(buf.getvalue().strip().splitlines()[-1])
out["predict_p50_ms_12mp"] = pred["p50_ms_12mp_default"]
out["predict_p50_ms_2mp"] = pred["p50_ms_2mp_default"]
out["predict_p50_ms_12mp_batch"] = pred["p50_ms_12mp_default_batch"]
out["predict_p50_ms_2mp_batch"] = pred["p50_ms_2mp_default_batch"]
out["predict_many_img_per_s_2mp"] = pred["throughput_2mp"]["predict_many_img_per_s"]
out["predict_note"] = "bench_predict: the default preset's model (float32), decode + forward + full-size map"
out["check_seconds"] = round(time.perf_counter() - t0, 1)
print(json.dumps(out), file=real_stdout)
PY
