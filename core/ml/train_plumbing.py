"""Training plumbing: which images train and validate, TF threads, distribution strategy."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..annotation.project import ImageEntry, Project
from ..base.errors import DatasetError
from .pipeline import split_entries

log = logging.getLogger("viaseg.train")


@dataclass
class Data:
    train: list[ImageEntry]
    val: list[ImageEntry] = field(default_factory=list)
    train_source: str = ""
    val_source: str = ""
    # the source (0 = the dataset, k = the k-th extra) of each training entry, and a name for each source
    train_sources: list[int] = field(default_factory=list)
    source_names: list[str] = field(default_factory=list)
    # more validation sets, scored and reported separately at the end of the run (never used to pick weights)
    more_val: list[tuple[str, list[ImageEntry]]] = field(default_factory=list)


def _labeled(split) -> bool:
    return getattr(split, "project", None) is not None


def _as_dataset(obj: Any):
    """A path / spec -> Dataset; Dataset, Split, Project, list of entries returned as they are."""
    if isinstance(obj, (str, Path)):
        from ..annotation.dataset import load_dataset

        ds = load_dataset(obj)
        for sp in ds.splits.values():
            for message in sp.warnings:  # what the readers left out (a broken labelme file...) is said
                log.warning("not trained on: %s", message)
        return ds
    return obj


def _nothing_annotated(obj: Any) -> bool:
    """Whether a Dataset / Split / Project / list of entries holds no region at all (a folder of photos)."""
    if hasattr(obj, "splits"):
        entries = [e for sp in obj.splits.values() for e in sp.entries]
    elif isinstance(obj, list):
        entries = obj
    else:
        entries = list(getattr(obj, "entries", None) or getattr(obj, "images", None) or [])
    return not any(getattr(e, "regions", None) for e in entries)


def _entries_of(obj: Any, split_name: str, what: str) -> tuple[list[ImageEntry], str, Any]:
    """Training entries of ``obj`` and a description; also returns the Dataset (or None)."""
    obj = _as_dataset(obj)
    if isinstance(obj, list):
        return list(obj), f"{len(obj)} in-memory images", None
    if isinstance(obj, Project):
        base = obj.base_dir
        for e in obj.images:
            if e.base_dir is None:
                e.base_dir = base
        return list(obj.images), f"project {obj.path or '<unsaved>'}", None
    if hasattr(obj, "entries") and hasattr(obj, "image_dir"):  # a Split
        if not _labeled(obj):
            raise DatasetError(f"{obj.image_dir}: split {obj.name!r} has no VIA annotations to train on")
        return list(obj.entries), f"split {obj.name!r}", None
    if hasattr(obj, "splits"):  # a Dataset
        labeled = {n: s for n, s in obj.splits.items() if _labeled(s)}
        if split_name in labeled:
            return list(labeled[split_name].entries), f"{obj.root}:{split_name}", obj
        if len(labeled) == 1:
            ((name, sp),) = labeled.items()
            return list(sp.entries), f"{obj.root}:{name}", obj
        if not labeled:
            raise DatasetError(
                f"{obj.root}: no annotated split to train on (splits: {', '.join(obj.splits) or 'none'})"
            )
        raise DatasetError(
            f"{obj.root}: no split named {split_name!r} among the annotated splits "
            f"({', '.join(labeled)}); name one with DATASET:split"
        )
    raise DatasetError(f"cannot train on {what} of type {type(obj).__name__}")


def _val_split_of(ds, cfg, train_src: str) -> list[ImageEntry] | None:
    """The annotated ``val`` split of dataset ``ds`` (None when it has none, or when it is what trains)."""
    if ds is None:
        return None
    sp = ds.splits.get(cfg.val_split)
    if sp is not None and _labeled(sp) and sp.entries and train_src != f"{ds.root}:{cfg.val_split}":
        return list(sp.entries)
    return None


def resolve_data(cfg) -> Data:
    """Training and validation entries as the config asks (see ``TrainConfig``).

    ``cfg.val`` may be one data spec or a list: the first is validated on during training, every one is
    scored at the end. An extra training dataset given as a folder with its own annotated ``val`` split adds
    that split as a further validation set (reported, never used to choose weights)."""
    if cfg.dataset is None:
        raise DatasetError("no dataset given")
    main = _as_dataset(cfg.dataset)
    if cfg.extra_train and _nothing_annotated(main):
        # a project of photos not labelled yet, trained on other datasets only (what the app's advice says):
        # the first extra dataset takes the dataset's place; its photos are what the model learns from
        log.warning("the dataset has no annotated photos: training on the extra datasets alone")
        main, extras = cfg.extra_train[0], list(cfg.extra_train[1:])
    else:
        extras = list(cfg.extra_train)
    train, train_src, ds = _entries_of(main, cfg.train_split, "the dataset")
    sources = [0] * len(train)
    names = [train_src]
    more_val: list[tuple[str, list[ImageEntry]]] = []
    seen = {os.path.realpath(e.path) for e in train}
    for k, extra in enumerate(extras, start=1):
        more, src, extra_ds = _entries_of(extra, cfg.train_split, "extra training data")
        if not isinstance(
            extra, (str, Path)
        ):  # entries in memory: copies on purpose (Improve model's weight)
            fresh = more
        else:
            fresh = [e for e in more if os.path.realpath(e.path) not in seen]
        if len(fresh) < len(more):  # --extra naming the dataset itself doubled every photo, unsaid
            log.warning(
                "extra training data %s: %d of its %d photos are already in the training data; each trains once",
                src,
                len(more) - len(fresh),
                len(more),
            )
        more = fresh
        seen.update(os.path.realpath(e.path) for e in more)
        train += more
        sources += [k] * len(more)
        names.append(src)
        train_src += f" + {src}"
        extra_val = _val_split_of(extra_ds, cfg, src)
        if extra_val:
            more_val.append((f"{extra_ds.root}:{cfg.val_split}", extra_val))
    if cfg.val is None:
        vals = []
    elif isinstance(cfg.val, (list, tuple)) and not any(isinstance(v, ImageEntry) for v in cfg.val):
        vals = list(cfg.val)  # several validation sets
    else:
        vals = [cfg.val]  # one: a spec, a dataset object or a list of entries
    if vals:
        first, *rest = vals
        val, val_src, _ = _entries_of(first, cfg.val_split, "the validation data")
        for v in rest:
            entries, src, _ = _entries_of(v, cfg.val_split, "the validation data")
            more_val.append((src, entries))
        return Data(train, val, train_src, val_src, sources, names, more_val)
    own_val = _val_split_of(ds, cfg, train_src)
    if own_val is not None:
        return Data(train, own_val, train_src, f"split {cfg.val_split!r}", sources, names, more_val)
    # no validation split: a seeded split by image of the *annotated* training data
    va: list[tuple[ImageEntry, int]]
    if cfg.val_fraction <= 0:  # asked for none (it held out one photo all the same, and said 0%)
        tr, va = list(zip(train, sources, strict=True)), []
    else:
        tr, va = split_entries(list(zip(train, sources, strict=True)), cfg.val_fraction, cfg.seed)
    if not any(e.regions for e, _ in tr) and va:
        tr, va = list(zip(train, sources, strict=True)), []  # too few annotated images to hold any back
    src = (
        f"seeded {cfg.val_fraction:.0%} of the training images (seed {cfg.seed})"
        if va
        else "none (validation split 0): metrics are on training images"
        if cfg.val_fraction <= 0
        else "none (too few images): metrics are on training images"
    )
    return Data([e for e, _ in tr], [e for e, _ in va], train_src, src, [k for _, k in tr], names, more_val)


def configure_threads(threads: int | None) -> str | None:
    """Set TF's thread pools; must run before TF executes anything. Returns a warning text or None."""
    if not threads:
        return None
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(min(2, int(threads)))
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        if current != int(threads):
            return (
                f"threads={threads} not applied: TensorFlow was already running in this process "
                f"(it uses {current or 'all'} threads)"
            )
    return None


def make_strategy(name: str):
    """``default`` (one device), ``mirrored`` (every GPU, else every logical CPU device) or ``multiworker``
    (``tf.distribute.MultiWorkerMirroredStrategy`` over the machines the ``TF_CONFIG`` environment variable
    names: each worker runs the same command; see docs/gpu.md). Create it before TensorFlow runs any op:
    a multi-worker strategy must configure the collective ops at start-up."""
    import tensorflow as tf

    if name in ("default", "", None):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        tf_config = read_tf_config()  # DatasetError when missing or malformed
        n = len(tf_config["cluster"].get("worker", [])) + len(tf_config["cluster"].get("chief", []))
        log.info(
            "multi-worker training: %s %s of %d", tf_config["task"]["type"], tf_config["task"]["index"], n
        )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise DatasetError(f"unknown strategy {name!r} (default, mirrored, multiworker)")


def read_tf_config(environ=None) -> dict:
    """The ``TF_CONFIG`` environment variable as a dict (``cluster`` and ``task``), checked."""
    import json
    import os

    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        raise DatasetError(
            "--strategy multiworker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}} (see docs/gpu.md)'
        )
    try:
        cfg = json.loads(text)
        cluster, task = cfg["cluster"], cfg["task"]
        ttype, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"TF_CONFIG is not valid: {exc} (want {{'cluster': {{...}}, 'task': "
            "{'type': 'worker', 'index': N}})"
        ) from None
    if not isinstance(cluster, dict) or not cluster.get(ttype) or index >= len(cluster[ttype]):
        raise DatasetError(f"TF_CONFIG: task {ttype} {index} is not in its cluster {cluster}")
    return cfg


def is_chief(environ=None) -> bool:
    """Whether this process is the one that writes the run folder: the ``chief`` task, else worker 0 of a
    cluster without a chief (Keras' multi-worker convention). True without ``TF_CONFIG``."""
    import json
    import os

    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        return True
    cfg = json.loads(text)
    task = cfg.get("task") or {}
    ttype, index = task.get("type"), int(task.get("index", 0))
    if ttype == "chief":
        return True
    return ttype == "worker" and index == 0 and "chief" not in (cfg.get("cluster") or {})


def agree(strategy, value: float, chief_only: bool = False) -> float:
    """The sum of ``value`` over every replica of a multi-worker ``strategy`` (every worker must call this at
    the same point), or the global replica 0's value with ``chief_only``; ``value`` as it is with one worker."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return float(value)

    def local():
        ctx = tf.distribute.get_replica_context()
        v = tf.constant(float(value), tf.float32)
        if chief_only:
            v = tf.where(tf.equal(ctx.replica_id_in_sync_group, 0), v, tf.zeros_like(v))
        return v

    out = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(local), axis=None)
    return float(out.numpy())


def resolve_precision(precision: str) -> str:
    """``auto`` -> ``mixed_float16`` where TensorFlow sees a GPU (float16 tensor cores, float32 weights, the
    sigmoid head and the loss), else ``float32`` (bfloat16 on a CPU was no faster in full runs here:
    docs/RESULTS.md)."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def describe_device(gpus: list[str], cpu_name: str, threads: int) -> str:
    """What runs a model, in words: ``GPU: NVIDIA H200`` (``2 GPUs: ...`` for several) or
    ``CPU (AMD EPYC 7B13, 2 threads)``."""
    if gpus:
        names = sorted(set(gpus), key=gpus.index)
        label = ", ".join(names)
        return f"GPU: {label}" if len(gpus) == 1 else f"{len(gpus)} GPUs: {label}"
    return f"CPU ({cpu_name or 'unknown model'}, {threads} thread{'' if threads == 1 else 's'})"


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (else ``platform.processor()``)."""
    import platform
    import re

    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if m:
            return " ".join(m.group(1).split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(threads: int | None = None) -> str:
    """The device TensorFlow trains on in this process, in words (``describe_device``). ``threads``: the
    intra-op threads asked for (None: TensorFlow's own choice, the CPUs this process may use)."""
    import os

    import tensorflow as tf

    gpus = []
    for dev in tf.config.list_physical_devices("GPU"):
        try:
            name = tf.config.experimental.get_device_details(dev).get("device_name") or dev.name
        except Exception:  # a name is only for display
            name = dev.name
        gpus.append(name)
    if not threads:
        threads = tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))
    return describe_device(gpus, cpu_model_name(), int(threads))
