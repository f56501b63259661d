"""How far a training run is through its budget: its time limit, its step budget, else its epochs.

A run of the default preset with a time limit (``--time-limit``) is also limited by steps
(``TrainConfig.max_steps``): it ends at whichever comes first, and its learning-rate schedule
(:mod:`.train_callbacks`) and its threshold calibration (:mod:`.train_calibrate`) follow whichever is further
along. The time limit alone made the recipe's length depend on the machine: 52 epochs of the documented command
in 600 s on a 2-core Xeon, 89 on a 2-core AMD EPYC, hundreds on a GPU. Out of fold the EPYC's 1000-step runs
score as its 1600-step ones do (0.565 against 0.562, paired +0.003, s.e. 0.010; docs/RESULTS.md, thirty-fifth
session) in 37 % less time. The step budget never cuts a run below :data:`BUDGET_MIN_EPOCHS` passes over its
photos, so a large project is not stopped after a few epochs when its time limit allows more.

No TensorFlow here: the callbacks that use it pass the run's ``state`` (``t0``, ``batches``, ``steps``)."""

from __future__ import annotations

import time
from typing import Any

BUDGET_MIN_EPOCHS = 40  # the step budget never ends a run before this many passes over its training photos


def step_budget(cfg: Any, steps_per_epoch: int) -> int | None:
    """The number of training steps after which the run ends (None: no step budget). The budget bounds a run
    with a time limit; without one the epochs (and early stopping) bound it, as they always did."""
    if not getattr(cfg, "max_steps", 0) or not cfg.time_limit_s:
        return None
    return max(int(cfg.max_steps), BUDGET_MIN_EPOCHS * max(1, int(steps_per_epoch)))


def progress(cfg: Any, state: dict, epochs_done: int, elapsed: float | None = None) -> float:
    """The share of the run done, 0..1: the largest of the time used over the time limit (when there is one,
    else the epochs done over ``cfg.epochs``) and the steps done over the step budget (when there is one).
    ``elapsed``: the seconds to count (default: since ``state["t0"]``)."""
    limit = cfg.time_limit_s
    if limit:
        used = elapsed if elapsed is not None else time.perf_counter() - state["t0"]
        share = used / float(limit)
    else:
        share = epochs_done / max(1, int(cfg.epochs))
    budget = step_budget(cfg, state.get("steps") or 1)
    if budget:
        share = max(share, state.get("batches", 0) / budget)
    return min(1.0, max(0.0, share))


def budget_spent(cfg: Any, state: dict) -> bool:
    """True once the run has taken its step budget (never without one)."""
    budget = step_budget(cfg, state.get("steps") or 1)
    return bool(budget) and state.get("batches", 0) >= budget
