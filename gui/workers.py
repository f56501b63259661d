"""Background work for the desktop app: training and inference off the GUI thread.

* :class:`TrainThread` runs ``viaseg.core.train.train`` in a ``QThread``. Core delivers plain dataclass events
  through a callback (called on the training thread); each one is forwarded as the Qt signal ``event(object)``,
  which Qt queues to receivers living on the GUI thread. ``stop()`` only sets a flag that core's
  ``should_stop`` reads between batches, so a stop ends the run within a batch and core keeps the best model.
* :class:`InferenceService` owns one worker thread that loads a model once (``Predictor.load``) and runs
  ``predict`` jobs for the GUI; results come back as signals. Loading a new model replaces the old one.

Neither class touches widgets; panels connect to their signals.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot


def _default_train_fn():
    from viaseg.core.train import train

    return train


def _failure_text(exc: BaseException) -> str:
    """A one-paragraph message for a user: typed viaseg errors as they are, others with their type."""
    from viaseg.core.errors import ViasegError

    if isinstance(exc, ViasegError):
        return str(exc)
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "ResourceExhausted" in name or "out of memory" in text.lower() or isinstance(exc, MemoryError):
        return f"Out of memory during training ({name}). Try a smaller image size or batch size. {text}"
    return f"{name}: {text}" if text else name


class TrainThread(QThread):
    """Runs one training. Emits ``event(obj)`` for every core event, and after the run ``done(obj)`` with the
    ``TrainResult`` (or ``None`` when it failed). A ``Failed`` event is synthesized when ``train`` raises, so the
    panel has a single path for failures."""

    event = Signal(object)
    done = Signal(object)

    def __init__(self, config: Any, train_fn: Callable | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.config = config
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

    # runs on the training thread
    def run(self) -> None:  # noqa: D102
        fn = self._train_fn or _default_train_fn()
        failed_seen = False

        def on_event(ev):
            nonlocal failed_seen
            if type(ev).__name__ == "Failed":
                failed_seen = True
            if type(ev).__name__ in ("Failed", "Finished"):
                self.terminal = ev
            self.event.emit(ev)

        try:
            self.result = fn(self.config, on_event=on_event, should_stop=self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - anything that escapes core becomes a message
            self.error = _failure_text(exc)
            traceback.print_exc()
            if not failed_seen:
                self.terminal = _SyntheticFailed(self.error)
                self.event.emit(self.terminal)
            self.result = None
        self.done.emit(self.result)


class _SyntheticFailed:
    """Stands in for core's ``Failed`` when ``train`` raised instead of reporting (same ``message`` field)."""

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return f"Failed(message={self.message!r})"


def event_kind(ev: Any) -> str:
    """``'Started'``, ``'BatchEnd'``... for core events and the synthesized failure."""
    if isinstance(ev, _SyntheticFailed):
        return "Failed"
    return type(ev).__name__


# ----------------------------------------------------------------------------------------------- inference


class _InferenceWorker(QObject):
    """Lives on the inference thread; every slot runs there."""

    loaded = Signal(str, object)  # path, meta dict
    load_failed = Signal(str, str)  # path, message
    predicted = Signal(int, object, object)  # job id, tag, probabilities (HxW float32)
    predict_failed = Signal(int, object, str)  # job id, tag, message

    def __init__(self, loader: Callable[[str], Any]):
        super().__init__()
        self._loader = loader
        self.predictor: Any = None
        self.path: str | None = None

    @Slot(str)
    def load(self, path: str) -> None:
        try:
            pred = self._loader(path)
        except Exception as exc:  # noqa: BLE001
            self.load_failed.emit(path, _failure_text(exc))
            return
        self.predictor, self.path = pred, path
        self.loaded.emit(path, getattr(pred, "meta", {}) or {})

    @Slot(int, object, object)
    def predict(self, job: int, tag: Any, image: Any) -> None:
        if self.predictor is None:
            self.predict_failed.emit(job, tag, "No active model: train one or choose a run in the Training panel.")
            return
        try:
            if isinstance(image, (str, Path)):
                from viaseg.core.imageio import read_image

                image = read_image(image)
            probs = _probabilities(self.predictor.predict(image))
        except Exception as exc:  # noqa: BLE001
            self.predict_failed.emit(job, tag, _failure_text(exc))
            return
        self.predicted.emit(job, tag, probs)


def _probabilities(result: Any):
    """core.predict may return the array itself or an object carrying it (``.probabilities``/``.probs``)."""
    import numpy as np

    for name in ("probabilities", "probs", "prob"):
        if hasattr(result, name):
            result = getattr(result, name)
            break
    arr = np.asarray(result, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[-1] == 1 else arr.max(axis=-1)
    return arr


def _default_loader(path: str):
    from viaseg.core.predict import Predictor

    return Predictor.load(path)


class InferenceService(QObject):
    """One model, loaded once on a worker thread, reused for every prediction.

    ``set_model(path)`` loads (asynchronously) and emits ``model_changed(path)`` when ready or
    ``model_failed(path, message)``. ``submit(tag, image_or_path) -> job id``; the answer is
    ``predicted(job, tag, probs)`` or ``failed(job, tag, message)``. ``forward_passes`` counts model runs."""

    model_changed = Signal(str)
    model_failed = Signal(str, str)
    predicted = Signal(int, object, object)
    failed = Signal(int, object, str)
    _load_req = Signal(str)
    _predict_req = Signal(int, object, object)

    def __init__(self, loader: Callable[[str], Any] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("viaseg-inference")
        self._worker = _InferenceWorker(loader or _default_loader)
        self._worker.moveToThread(self._thread)
        self._load_req.connect(self._worker.load)
        self._predict_req.connect(self._worker.predict)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.load_failed.connect(self.model_failed)
        self._worker.predicted.connect(self._on_predicted)
        self._worker.predict_failed.connect(self._on_failed)
        self._thread.start()
        _LIVE.add(self._thread)
        self._ids = itertools.count(1)
        self.model_path: str | None = None
        self.meta: dict = {}
        self.forward_passes = 0
        self.pending = 0

    def set_model(self, path: str | Path) -> None:
        self._load_req.emit(str(path))

    def has_model(self) -> bool:
        return self.model_path is not None

    def submit(self, tag: Any, image: Any) -> int:
        job = next(self._ids)
        self.pending += 1
        self._predict_req.emit(job, tag, image)
        return job

    @Slot(str, object)
    def _on_loaded(self, path: str, meta: dict) -> None:
        self.model_path, self.meta = path, dict(meta or {})
        self.model_changed.emit(path)

    @Slot(int, object, object)
    def _on_predicted(self, job: int, tag: Any, probs: Any) -> None:
        self.forward_passes += 1
        self.pending = max(0, self.pending - 1)
        self.predicted.emit(job, tag, probs)

    @Slot(int, object, str)
    def _on_failed(self, job: int, tag: Any, message: str) -> None:
        self.pending = max(0, self.pending - 1)
        self.failed.emit(job, tag, message)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        _stop_thread(self._thread, timeout_ms)


_LIVE: set = set()  # inference threads still running; stopped at exit so Qt never destroys a running QThread


def _stop_thread(thread: QThread, timeout_ms: int = 30000) -> None:
    _LIVE.discard(thread)
    try:
        if thread.isRunning():
            thread.quit()
            thread.wait(timeout_ms)
    except RuntimeError:  # the C++ object is already gone
        pass


@atexit.register
def _stop_all() -> None:
    for th in list(_LIVE):
        _stop_thread(th)
