"""Where a training step of the default model spends its time: TensorFlow's profiler, time by op type and by layer.

python tests/perf/profile_train.py --json [--steps 5] [--synthetic]
    {"step_s", "op_s_per_step", "by_op_type", "by_layer_kind", "by_layer"} (shares of the op time): the default preset's
    model and input pipeline on the documented training data (car-damage/train + car-damage-extra-split/train;
    ``--synthetic``: one random batch repeated, when ../shared is absent), ``--steps`` training steps traced
    after a warm-up. Times are the ops' own time summed over TensorFlow's compute threads (the work a kernel hands
    to the thread pool is counted for the op that started it), so shares add up to 1; step_s is the wall time of
    the traced steps (the profiler adds some). The trace is read straight from its XSpace protobuf (no
    TensorBoard plugin needed).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _op_times(xplane_file: Path) -> tuple[collections.Counter, collections.Counter]:
    """(seconds by op type, seconds by layer kind and number) from one profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(xplane_file.read_bytes())
    by_type: collections.Counter = collections.Counter()
    by_layer: collections.Counter = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        meta = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for name, secs in _self_times(line, meta):
                path, op_type = name.rsplit(":", 1)
                if op_type in ("StatefulPartitionedCall", "PartitionedCall"):
                    continue  # the whole function: its ops are counted one by one
                by_type[op_type] += secs
                m = re.search(r"unet_xception[^/]*/([a-z_0-9]+?)_1/", path)
                layer = (
                    m.group(1)
                    if m
                    else ("loss" if "loss" in path else "optimizer" if "adam" in path else "other")
                )
                by_layer[layer] += secs
    return by_type, by_layer


def _self_times(line, meta):
    """(op name, seconds) for each op event of a thread line: its time minus that of the ops nested in it; the
    profiler's own non-op events (ParallelFor, the executor's) count for the op that encloses them."""
    events = sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps))
    out: list[list] = []
    stack: list[tuple[int, int]] = []  # (end, index in out) of the enclosing op events
    for e in events:
        start, dur = e.offset_ps, e.duration_ps
        while stack and stack[-1][0] <= start:
            stack.pop()
        name = meta[e.metadata_id].name
        if ":" not in name:  # not an op: already inside its enclosing op's time
            if not stack:
                out.append(["(executor):" + name, dur])
            continue
        if stack:
            out[stack[-1][1]][1] -= dur
        out.append([name, dur])
        stack.append((start + dur, len(out) - 1))
    return [(n, d / 1e12) for n, d in out]


def _dataset(synthetic: bool):
    from viaseg.core.ml import pipeline as P
    from viaseg.core.ml import tfsetup
    from viaseg.core.ml.presets import preset

    tf = tfsetup.load_tf()
    cfg = preset("default")
    if synthetic:
        import numpy as np

        rng = np.random.default_rng(0)
        x = rng.random((cfg.batch_size, cfg.size, cfg.size, 3), dtype=np.float32)
        y = (x[..., :1] > 0.5).astype("float32")
        return cfg, tf.data.Dataset.from_tensors((x, y)).repeat(), "synthetic"
    from bench_train import _entries

    parts = []
    for k, entries in enumerate(_entries()):
        a = P.load_arrays(entries, cfg.size, resize=cfg.resize)
        a.sources = [k] * len(a)
        parts.append(a)
    arrays = P.Arrays.concat(parts)
    ds = P.train_dataset(arrays, cfg.batch_size, seed=0, augment=cfg.augment, balance=cfg.balance_sources)
    return cfg, ds, f"{len(arrays)} training photos, augmented"


def profile(steps: int, synthetic: bool) -> dict:
    import keras
    from viaseg.core.ml import tfsetup, unet

    tf = tfsetup.load_tf()
    cfg, ds, data = _dataset(synthetic)
    keras.utils.set_random_seed(0)
    model = unet.compile_model(
        unet.build_unet_xception(cfg.size, base_width=cfg.base_width, bn_momentum=cfg.bn_momentum), cfg.loss
    )
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    with tempfile.TemporaryDirectory() as tmp:
        tf.profiler.experimental.start(tmp)
        t0 = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        wall = time.perf_counter() - t0
        tf.profiler.experimental.stop()
        traces = sorted(Path(tmp).rglob("*.xplane.pb"))
        by_type, by_layer = _op_times(traces[-1])
    total = sum(by_type.values())

    def shares(c: collections.Counter, top: int) -> dict:
        return {k: round(v / total, 4) for k, v in c.most_common(top)}

    by_kind: collections.Counter = collections.Counter()
    for layer, secs in by_layer.items():
        by_kind[re.sub(r"_\d+$", "", layer)] += secs

    return {
        "data": data,
        "size": cfg.size,
        "batch_size": cfg.batch_size,
        "steps": steps,
        "step_s": round(wall / steps, 3),
        "op_s_per_step": round(total / steps, 3),
        "by_op_type": shares(by_type, 20),
        "by_layer_kind": shares(by_kind, 20),
        "by_layer": shares(by_layer, 20),
        "tf_version": tf.__version__,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--steps", type=int, default=5, help="training steps traced (after 3 untraced)")
    ap.add_argument(
        "--synthetic", action="store_true", help="one random batch instead of the training photos"
    )
    args = ap.parse_args()
    out = profile(args.steps, args.synthetic)
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
