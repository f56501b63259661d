"""Events a training run reports, and its result: plain dataclasses, no Qt (the GUI wraps them in signals).

Order: ``Started``, then per epoch any number of ``BatchEnd``, one ``EpochEnd`` and every few epochs one
``SamplePredictions``; last exactly one of ``Finished`` or ``Failed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Started:
    run_dir: Path
    n_train: int
    n_val: int
    epochs: int  # the most epochs the run may take
    steps_per_epoch: int
    excluded_duplicates: list[str] = field(default_factory=list)  # validation images also in training
    skipped: list[str] = field(default_factory=list)  # "<file>: <problem>" for images left out
    val_source: str = ""  # "split 'val'", "seeded 20% of train (seed 0)", ...
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how the run differs from what was asked, and why
    device: str = (
        ""  # what trains: "GPU: NVIDIA H200", "CPU (AMD EPYC, 2 threads)" (train_plumbing.describe_device)
    )
    precision: str = ""  # the precision the run computes in: float32, mixed_float16, mixed_bfloat16
    part: tuple[int, int] | None = (
        None  # (k, n): network k (from 0) of an ensemble of n (core/ml/ensemble.py)
    )
    step_budget: int | None = (
        None  # the steps after which the run ends, if its time limit allows (train_budget)
    )


@dataclass
class BatchEnd:
    step: int  # batch index within the epoch, from 0
    epoch: int  # from 0
    loss: float
    dice: float
    steps: int = 0  # batches per epoch (for a progress bar)


@dataclass
class EpochEnd:
    epoch: int  # from 0
    metrics: dict[str, float]  # loss, accuracy, dice, iou and val_* of each
    seconds: float = 0.0  # wall time of this epoch, validation included
    epochs: int = 0  # the most epochs the run may take


@dataclass
class SamplePredictions:
    epoch: int
    images: np.ndarray  # N x H x W x 3 uint8
    true_masks: np.ndarray  # N x H x W uint8 0/1
    pred_masks: np.ndarray  # N x H x W float32 probabilities
    names: list[str] = field(default_factory=list)


@dataclass
class Finished:
    best_epoch: int  # from 0; -1 when no epoch was evaluated
    best_metrics: dict[str, float]
    run_dir: Path
    model_path: Path | None
    reason: str = "completed"  # completed | early_stopping | stopped | time_limit | step_budget


@dataclass
class Failed:
    message: str
    run_dir: Path | None = None
    model_path: Path | None = None  # the best model kept before the failure, if any


Event = Started | BatchEnd | EpochEnd | SamplePredictions | Finished | Failed


@dataclass
class TrainResult:
    ok: bool
    run_dir: Path | None = None
    model_path: Path | None = None
    best_epoch: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None
    reason: str = ""
