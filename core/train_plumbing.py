"""Training plumbing: which images train and validate, TF threads, distribution strategy."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DatasetError
from .pipeline import split_entries
from .project import ImageEntry, Project

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
        from .dataset import load_dataset

        return load_dataset(obj)
    return obj


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
            (name, sp), = labeled.items()
            return list(sp.entries), f"{obj.root}:{name}", obj
        if not labeled:
            raise DatasetError(f"{obj.root}: no annotated split to train on (splits: {', '.join(obj.splits) or 'none'})")
        raise DatasetError(f"{obj.root}: no split named {split_name!r} among the annotated splits "
                           f"({', '.join(labeled)}); name one with DATASET:split")
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
    train, train_src, ds = _entries_of(cfg.dataset, cfg.train_split, "the dataset")
    sources = [0] * len(train)
    names = [train_src]
    more_val: list[tuple[str, list[ImageEntry]]] = []
    for k, extra in enumerate(cfg.extra_train, start=1):
        more, src, extra_ds = _entries_of(extra, cfg.train_split, "extra training data")
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
    tr, va = split_entries(list(zip(train, sources, strict=True)), cfg.val_fraction, cfg.seed)
    if not any(e.regions for e, _ in tr) and va:
        tr, va = list(zip(train, sources, strict=True)), []  # too few annotated images to hold any back
    src = f"seeded {cfg.val_fraction:.0%} of the training images (seed {cfg.seed})" if va else \
        "none (too few images): metrics are on training images"
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
            return (f"threads={threads} not applied: TensorFlow was already running in this process "
                    f"(it uses {current or 'all'} threads)")
    return None


def make_strategy(name: str):
    """``default`` (one device) or ``mirrored`` (every GPU, else every logical CPU device)."""
    import tensorflow as tf

    if name in ("default", "", None):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    raise DatasetError(f"unknown strategy {name!r} (default, mirrored)")


def resolve_precision(precision: str) -> str:
    """``auto`` -> ``mixed_bfloat16`` on a CPU-only machine whose CPU computes bfloat16 natively (AMX or
    AVX512-BF16: about 2x faster training), else ``float32``."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "float32"
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "float32"
    return "mixed_bfloat16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "float32"
