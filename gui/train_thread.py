"""Training off the GUI thread: :class:`TrainThread` runs ``viaseg.core.ml.train.train`` (or a job object such as
``core.loop.ImproveJob``) in a spawned process by default (``gui.train_child``), or inline in its ``QThread``.
Core delivers plain dataclass events through a callback; each one is forwarded as the Qt signal ``event(object)``,
which Qt queues to receivers living on the GUI thread. ``stop()`` only sets a flag that core's ``should_stop``
reads between batches, so a stop ends the run within a batch and core keeps the best model. Split out of
``gui.workers``, which keeps the inference service."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from viaseg.core.ml.train_events import Failed, Finished

from .workers import _failure_text


def _default_train_fn():
    from viaseg.core.ml.train import train

    return train


class TrainThread(QThread):
    """Runs one training. Emits ``event(obj)`` for every core event, and after the run ``done(obj)`` with the
    ``TrainResult`` (or ``None`` when it failed). A ``Failed`` event is synthesized when ``train`` raises, so the
    panel has a single path for failures."""

    event = Signal(object)
    done = Signal(object)

    def __init__(
        self,
        config: Any,
        train_fn: Callable | None = None,
        parent: QObject | None = None,
        mode: str = "process",
    ):
        super().__init__(parent)
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', got {mode!r}")
        self.config = config
        self.mode = "thread" if train_fn is not None else mode
        self._train_fn = train_fn
        self._stop = threading.Event()
        self.result: Any = None
        self.error: str | None = None
        self.terminal: Any = None  # the Finished/Failed event, for a caller that waits instead of listening
        self.setObjectName("viaseg-train")

    # called from the GUI thread
    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _forward(self, ev: Any) -> None:
        if isinstance(ev, (Failed, Finished)):
            self.terminal = ev
        self.event.emit(ev)

    def _fail(self, message: str) -> None:
        self.error = message
        if not isinstance(self.terminal, Failed):  # train raised instead of reporting: say it as core would
            self._forward(Failed(message))
        self.result = None

    # runs on the training thread
    def run(self) -> None:
        if self.mode == "process":
            self._run_process()
        else:
            self._run_inline()
        self.done.emit(self.result)

    def _run_inline(self) -> None:
        _lower_priority()
        job_run = getattr(self.config, "run", None) if self._train_fn is None else None
        fn = self._train_fn or _default_train_fn()
        try:
            if job_run is not None:  # a job object (core.loop.ImproveJob) runs itself
                self.result = job_run(on_event=self._forward, should_stop=self._stop.is_set)
            else:
                self.result = fn(self.config, on_event=self._forward, should_stop=self._stop.is_set)
        except BaseException as exc:  # anything that escapes core becomes a message
            traceback.print_exc()
            self._fail(_failure_text(exc))

    def _run_process(self, poll_s: float = 0.1, grace_s: float = 300.0) -> None:
        """Spawn the training process, forward its events, pass Stop on; a crash becomes a message."""
        import multiprocessing as mp
        import queue as queue_mod

        from .train_child import child_main

        ctx = mp.get_context("spawn")  # never fork a process that runs Qt and TensorFlow threads
        q = ctx.Queue()
        stop = ctx.Event()
        proc = ctx.Process(target=child_main, args=(self.config, q, stop), name="viaseg-train", daemon=True)
        try:
            proc.start()
        except Exception as exc:  # e.g. the config cannot be pickled
            self._fail(f"cannot start the training process: {type(exc).__name__}: {exc}")
            return
        self.process = proc
        stop_sent_at = None
        got_answer = False
        seen_batch = False
        while not got_answer:
            if self._stop.is_set() and not seen_batch:
                # nothing trained yet (TF still loading, data decoding): no model to keep, end it now
                proc.terminate()
                self._fail("stopped before the first batch: no model was trained")
                break
            if self._stop.is_set() and stop_sent_at is None:
                stop.set()
                stop_sent_at = time.monotonic()
            try:
                kind, payload = q.get(timeout=poll_s)
            except queue_mod.Empty:
                if not proc.is_alive():
                    try:  # its last words may still be in the pipe
                        kind, payload = q.get(timeout=1.0)
                    except queue_mod.Empty:
                        code = proc.exitcode
                        why = " (killed: probably out of memory)" if code is not None and code < 0 else ""
                        self._fail(f"the training process ended unexpectedly, exit code {code}{why}")
                        break
                elif stop_sent_at is not None and time.monotonic() - stop_sent_at > grace_s:
                    proc.terminate()
                    self._fail("training did not stop in time and was terminated")
                    break
                else:
                    continue
            if kind == "event":
                seen_batch = seen_batch or type(payload).__name__ == "BatchEnd"
                self._forward(payload)
            elif kind == "result":
                self.result, got_answer = payload, True
            else:
                self._fail(str(payload))
                got_answer = True
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


def _lower_priority(nice: int = 10) -> None:
    """Run this thread (and the TensorFlow pool threads it starts, which inherit it) at a lower CPU priority
    than the GUI thread, so painting stays smooth on a busy machine. Linux: nice is per thread."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except OSError:
        pass


# ----------------------------------------------------------------------------------------------- inference
