"""The viaseg U-Net *architecture* on whatever Keras 3 backend and device are present: one JSON line.

    KERAS_BACKEND=jax python tests/perf/gpu_arch_probe.py [--size 256] [--batches 8,16] [--steps 30]

What it measures, with synthetic data (random images, random masks), warm-up (compilation) excluded:
train-step images/s at each batch size in float32 and mixed_float16, the forward pass in ms for one image and
for a batch of 8. The model is ``core/ml/unet.py``'s ``build_unet_xception`` with the default preset's settings
(``core/ml/presets.py``: size, base width, BatchNorm momentum, loss, learning rate), compiled by
``unet.compile_model`` (Adam, the default metrics; loss scaling in mixed_float16), trained by ``model.fit``.

This is NOT viaseg's training pipeline: no TensorFlow (no tf.data decode/augmentation, no Grappler), and on
Keras-JAX, not the TensorFlow backend viaseg trains with. It tells what the network itself costs on a device
(e.g. a GPU machine that has JAX but no TensorFlow); ``tests/perf/device_check.sh`` measures the real thing.

It loads ``core/ml/unet.py`` and ``core/ml/presets.py`` by file path (both import only keras / the standard
library), so it runs without viaseg installed: only keras, its small dependencies and a backend are needed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"viaseg_probe_{name}", CORE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _device(backend: str) -> dict:
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return {
            "platform": d.platform,
            "name": getattr(d, "device_kind", str(d)),
            "count": len(jax.devices()),
            "jax": jax.__version__,
        }
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
            return {"platform": "gpu", "name": name, "count": len(gpus), "tensorflow": tf.__version__}
        return {
            "platform": "cpu",
            "name": platform.processor() or platform.machine(),
            "count": 1,
            "tensorflow": tf.__version__,
        }
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return {
                "platform": "gpu",
                "name": torch.cuda.get_device_name(0),
                "count": torch.cuda.device_count(),
            }
        return {"platform": "cpu", "name": platform.machine(), "count": 1}
    return {"platform": "unknown", "name": "", "count": 0}


def _sync(x):
    """Block until ``x`` (a backend tensor or array) is computed; return it as numpy."""
    import keras

    return keras.ops.convert_to_numpy(x)


def train_images_per_s(
    unet, cfg, precision: str, batch: int, steps: int, size: int, seed: int = 0, steps_per_execution: int = 1
) -> dict:
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = unet.build_unet_xception(
        size, base_width=cfg.base_width, bn_momentum=cfg.bn_momentum, norm=cfg.norm, precision=precision
    )
    unet.compile_model(model, cfg.loss, learning_rate=cfg.learning_rate)
    if (
        steps_per_execution > 1
    ):  # several steps per compiled call: less per-step host overhead than viaseg has
        model.compile(
            optimizer=model.optimizer,
            loss=model.loss,
            metrics=unet.default_metrics(),
            steps_per_execution=steps_per_execution,
        )
    rng = np.random.default_rng(seed)
    n = batch * steps
    x = rng.random((n, size, size, 3), dtype=np.float32)
    y = (rng.random((n, size, size, 1)) < 0.1).astype(np.float32)
    # warm-up: compiles the train step (and the first transfers); one full epoch of the same shapes
    t0 = time.perf_counter()
    warm = 2 * batch * steps_per_execution
    model.fit(x[:warm], y[:warm], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(2):  # two timed epochs; fit returns after the last step's logs are read (synchronised)
        t0 = time.perf_counter()
        hist = model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "images_per_s": round(n / best, 1),
        "step_ms": round(1000 * best / steps, 2),
        "epoch_s": [round(t, 3) for t in times],
        "warmup_s": round(compile_s, 2),
        "final_loss": round(float(hist.history["loss"][-1]), 4),
    }


def forward_ms(unet, cfg, precision: str, batch: int, size: int, runs: int = 30) -> dict:
    import keras
    import numpy as np

    model = unet.build_unet_xception(
        size, base_width=cfg.base_width, bn_momentum=cfg.bn_momentum, norm=cfg.norm, precision=precision
    )
    x = np.random.default_rng(1).random((batch, size, size, 3), dtype=np.float32)
    xs = keras.ops.convert_to_tensor(x)  # on the device: the forward alone, no host-to-device copy
    if keras.backend.backend() == "jax":
        import jax

        fn = jax.jit(lambda v, inp: model.stateless_call(v[0], v[1], inp, training=False)[0])
        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )

        def call():
            return fn(state, xs).block_until_ready()
    else:

        def call():
            return _sync(model(xs, training=False))

    for _ in range(5):
        call()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        ts.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(ts), 3), "min_ms": round(min(ts), 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=None, help="input size (default: the default preset's, 256)")
    ap.add_argument("--batches", default="8,16", help="train-step batch sizes")
    ap.add_argument("--steps", type=int, default=30, help="train steps per timed epoch")
    ap.add_argument("--precisions", default="float32,mixed_float16")
    ap.add_argument("--forward-runs", type=int, default=30)
    ap.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="train steps per compiled call (viaseg trains with 1)",
    )
    args = ap.parse_args(argv)

    import keras

    backend = keras.backend.backend()
    unet = _load("unet")
    presets = _load("presets")
    cfg = presets.preset("default")
    size = args.size or cfg.size
    out = {
        "what": "viaseg's U-Net architecture (core/ml/unet.py, default preset settings) on Keras "
        f"{keras.__version__} with the {backend} backend, synthetic data; NOT viaseg's TensorFlow "
        "training pipeline (no tf.data decoding or augmentation)",
        "backend": backend,
        "device": _device(backend),
        "size": size,
        "base_width": cfg.base_width,
        "params": int(unet.build_unet_xception(size, base_width=cfg.base_width).count_params()),
        "python": platform.python_version(),
        "steps_per_execution": args.steps_per_execution,
        "train": {},
        "forward": {},
    }
    for precision in args.precisions.split(","):
        for b in (int(v) for v in args.batches.split(",")):
            key = f"{precision}_b{b}"
            try:
                out["train"][key] = train_images_per_s(
                    unet, cfg, precision, b, args.steps, size, steps_per_execution=args.steps_per_execution
                )
            except Exception as exc:  # one failing setting is reported, the rest still run
                out["train"][key] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        for b in (1, 8):
            key = f"{precision}_b{b}"
            try:
                out["forward"][key] = forward_ms(unet, cfg, precision, b, size, args.forward_runs)
            except Exception as exc:
                out["forward"][key] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    out["env"] = {
        k: os.environ[k] for k in ("KERAS_BACKEND", "XLA_PYTHON_CLIENT_PREALLOCATE") if k in os.environ
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
