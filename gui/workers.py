"""Background work for the desktop app: inference off the GUI thread, and the exit order of worker threads.

* ``gui.train_thread.TrainThread`` runs training in a ``QThread`` (a spawned process by default).
* :class:`InferenceService` owns one worker thread that loads a model once (``Predictor.load``) and runs
  ``predict`` jobs for the GUI; results come back as signals. Loading a new model replaces the old one.
* ``gui.clicknet_service.ClickNetService`` runs the AI region tool's click network the same way.

Neither class touches widgets; panels connect to their signals.

TensorFlow is imported on the GUI thread (:func:`import_tensorflow`, called by ``InferenceService.set_model``)
before the inference thread uses it. Imported first on the inference thread while the GUI thread kept running,
it crashed the process later, inside ``tf.function`` tracing (segmentation fault in ``ops.graph_def_versions``;
4 runs of 4 of the stress test ``tests/gui/test_inference_stress.py`` before the fix). Imported while every
other thread waited — on the GUI thread, or on a helper thread the GUI thread joined — 0 crashes in 6 runs.
"""

from __future__ import annotations

import atexit
import itertools
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot


def import_tensorflow() -> float:
    """Import TensorFlow on the calling thread (the GUI thread: see the module docstring); seconds it took, 0
    when it was imported already."""
    from viaseg.core.ml import tfsetup

    already = "tensorflow" in sys.modules
    t = time.perf_counter()
    tfsetup.interactive_threads()  # imports TensorFlow once, with the app's thread pools (core.ml.tfsetup)
    _wait_for_workers_first()
    return 0.0 if already else time.perf_counter() - t


def wait_responsive(thread: QThread, timeout_ms: int) -> bool:
    """Wait up to ``timeout_ms`` for ``thread`` to end while the GUI thread keeps repainting and delivering
    queued signals (not the user's input): a training process ending after a Stop saves and scores its model
    first, 4-15 s in which a plain ``wait`` left a frozen window. True when it ended."""
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout_ms / 1000
    flags = QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents
    while not thread.wait(50) and time.monotonic() < end:
        QApplication.processEvents(flags)
    return thread.wait(0)


def _wait_for_workers_first() -> None:
    """Register :func:`_stop_all` again: exit handlers run last registered first, so the worker threads finish
    their job (a model's warm-up, a prediction, an export) before the exit handlers registered so far run:
    TensorFlow registers nine at its import, and more as it traces. Registered only at this module's import,
    it ran after them: a process that ended while a freshly activated model warmed up made the warm-up's trace
    fail inside Keras ("Only input tensors may be passed as positional arguments"), which the twenty-sixth to
    thirty-sixth sessions saw after screenshot scripts and could not explain: 3 runs of 3 of
    ``scripts/screenshots_loop.py`` (which ends right after *Improve model*) before this change, none of 4
    after. Called at every :func:`import_tensorflow` (each model made active, each export). The app itself
    stops its workers before it exits (``aboutToQuit``); scripts that end without ``app.exec()`` rely on this."""
    atexit.unregister(_stop_all)
    atexit.register(_stop_all)


def _failure_text(exc: BaseException) -> str:
    """A one-paragraph message for a user: typed viaseg errors as they are, others with their type."""
    from viaseg.core.base.errors import ViasegError

    if isinstance(exc, ViasegError):
        return str(exc)
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "ResourceExhausted" in name or "out of memory" in text.lower() or isinstance(exc, MemoryError):
        return f"Out of memory during training ({name}). Try a smaller image size or batch size. {text}"
    return f"{name}: {text}" if text else name


class _InferenceWorker(QObject):
    """Lives on the inference thread; every slot runs there."""

    loaded = Signal(str, object)  # path, meta dict
    load_failed = Signal(str, str)  # path, message
    predicted = Signal(int, object, object)  # job id, tag, probabilities (HxW float32)
    predict_failed = Signal(int, object, str)  # job id, tag, message
    embedded = Signal(int, object, object)  # job id, tag, {photo path: unit feature vector or None}

    def __init__(self, loader: Callable[[str], Any]):
        super().__init__()
        self._loader = loader
        self.predictor: Any = None
        self.path: str | None = None

    def _ensure(self, path: str) -> str | None:
        """Load ``path`` unless it is the model held; None when ready, else the error message."""
        if self.predictor is not None and self.path == path:
            return None
        try:
            pred = self._loader(path)
        except Exception as exc:
            msg = _failure_text(exc)
            self.load_failed.emit(path, msg)
            return msg
        self.predictor, self.path = pred, path
        self.loaded.emit(path, getattr(pred, "meta", {}) or {})
        return None

    @Slot(str)
    def load(self, path: str) -> None:
        fresh = self.path != path or self.predictor is None
        if self._ensure(path) is None and fresh:
            self._warm()

    def _warm(self) -> None:
        """One prediction of a blank picture: traces the network function now, so the user's first prediction
        does not pay for it."""
        import numpy as np

        try:
            self.predictor.predict(np.zeros((256, 256, 3), np.uint8))
        except Exception:  # a real prediction will report the problem
            log_exc = traceback.format_exc(limit=2)
            print(f"viaseg: warm-up prediction failed: {log_exc}", file=sys.stderr)
            # seen once, not reproduced: a freshly activated model failing its first trace. Load it afresh for
            # the next prediction instead of keeping a predictor whose traced function may be broken
            self._forget()

    def _forget(self) -> None:
        if self.path:
            try:
                from viaseg.core.ml.predict import Predictor

                Predictor.forget(self.path)
            except Exception:  # a stand-in loader in tests has no cache
                pass
        self.predictor, self.path = None, None

    @Slot(int, object, object, str)
    def predict(self, job: int, tag: Any, image: Any, path: str) -> None:
        if not path:
            self.predict_failed.emit(
                job, tag, "No active model: train one or choose a run in the Training panel."
            )
            return
        err = self._ensure(path)
        if err is not None:
            self.predict_failed.emit(job, tag, f"cannot load the model: {err}")
            return
        try:
            # a path goes to the predictor as it is: it decodes JPEGs reduced to what the network needs (a
            # full-resolution decode here cost 40-130 ms of a 2-12 MP prediction for nothing)
            probs = _probabilities(self.predictor.predict(str(image) if isinstance(image, Path) else image))
        except Exception as exc:
            self.predict_failed.emit(job, tag, _failure_text(exc))
            return
        self.predicted.emit(job, tag, probs)

    @Slot(int, object, object, str)
    def embed(self, job: int, tag: Any, paths: Any, path: str) -> None:
        """What the model's encoder makes of each photo (``core.ml.loop.photo_embeddings``; a stand-in
        predictor may bring its own ``embeddings(paths)``), for *Label next*'s typical-first order."""
        err = self._ensure(path) if path else "No active model"
        if err is not None:
            self.predict_failed.emit(job, tag, f"cannot load the model: {err}")
            return
        try:
            own = getattr(self.predictor, "embeddings", None)
            if own is not None:
                result = own(list(paths))
            else:
                from viaseg.core.ml.loop import photo_embeddings

                result = photo_embeddings(self.predictor, list(paths))
        except Exception as exc:
            self.predict_failed.emit(job, tag, _failure_text(exc))
            return
        self.embedded.emit(job, tag, result)


class _Embed(tuple):
    """A background job's photos to embed rather than predict (see ``InferenceService.submit_embeddings``)."""


def _probabilities(result: Any):
    """core.predict returns a ``Prediction`` (an ndarray carrying ``.probabilities``); plain arrays work too."""
    import numpy as np

    result = getattr(result, "probabilities", result)
    arr = np.asarray(result, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[-1] == 1 else arr.max(axis=-1)
    return arr


def _default_loader(path: str):
    from viaseg.core.ml.predict import Predictor, interactive

    # every prediction in the app is one a user waits for: see core.predict.interactive
    return interactive(Predictor.load(path))


class InferenceService(QObject):
    """One model, loaded once on a worker thread, reused for every prediction.

    ``set_model(path, load=False)`` makes ``path`` the active model at once (``model_changed(path)``; its
    metadata is read from the file without TensorFlow). The network itself is loaded on the worker thread by
    the first prediction, or right away with ``load=True`` (``model_loaded(path)`` / ``model_failed(path, msg)``).
    Loading lazily keeps TensorFlow's import and the model build off the moment a training run finishes.
    ``submit(tag, image_or_path) -> job id``; the answer is ``predicted(job, tag, probs)`` or
    ``failed(job, tag, message)``. ``forward_passes`` counts model runs.

    ``submit(..., background=True)`` queues a job of a long batch (Predict all): background jobs go to the
    worker one at a time, so a prediction the user asks for meanwhile waits for at most one of them, not for
    the whole batch; ``cancel_background()`` drops the ones not started yet. A background job keeps the model
    that was active when it was submitted. ``submit_embeddings(tag, paths)`` queues the same way a job that
    returns the encoder's features of each photo (*Label next*'s order), answered by ``embedded``."""

    model_changed = Signal(str)
    tensorflow_loading = (
        Signal()
    )  # TensorFlow is about to be imported on the GUI thread (a few seconds, once)
    model_loaded = Signal(str)
    model_failed = Signal(str, str)
    predicted = Signal(int, object, object)
    failed = Signal(int, object, str)
    embedded = Signal(int, object, object)
    _load_req = Signal(str)
    _predict_req = Signal(int, object, object, str)
    _embed_req = Signal(int, object, object, str)

    def __init__(self, loader: Callable[[str], Any] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("viaseg-inference")
        self._worker = _InferenceWorker(loader or _default_loader)
        self._needs_tf = loader is None  # a custom loader (tests) may not use TensorFlow
        self._worker.moveToThread(self._thread)
        self._load_req.connect(self._worker.load)
        self._predict_req.connect(self._worker.predict)
        self._embed_req.connect(self._worker.embed)
        self._worker.embedded.connect(self._on_embedded)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.load_failed.connect(self.model_failed)
        self._worker.predicted.connect(self._on_predicted)
        self._worker.predict_failed.connect(self._on_failed)
        self._thread.start()
        _LIVE.add(self._thread)
        self._ids = itertools.count(1)
        self.model_path: str | None = None
        self.loaded_path: str | None = None
        self.meta: dict = {}
        self.forward_passes = 0
        self.pending = 0
        self._background: deque = deque()  # (job, tag, image, model path) not yet sent to the worker
        self._bg_in_flight: int | None = None  # the background job the worker has

    def set_model(self, path: str | Path, load: bool = False) -> None:
        from viaseg.core.ml.modelio import read_meta

        path = str(path)
        try:
            self.meta = dict(read_meta(path) or {})
        except Exception as exc:  # ModelError names the file
            self.model_failed.emit(path, _failure_text(exc))
            return
        self.model_path = path
        self.model_changed.emit(path)
        if self._needs_tf:
            self.tensorflow_loading.emit()
            import_tensorflow()  # here, before the inference thread touches it (module docstring)
        if load:
            self._load_req.emit(path)

    def has_model(self) -> bool:
        return self.model_path is not None

    def submit(self, tag: Any, image: Any, background: bool = False) -> int:
        job = next(self._ids)
        self.pending += 1
        if background:
            self._background.append((job, tag, image, self.model_path or ""))
            self._feed()
        else:
            self._predict_req.emit(job, tag, image, self.model_path or "")
        return job

    def submit_embeddings(self, tag: Any, paths: list) -> int:
        """A background job (after the ones queued): the encoder's feature vector of each photo of ``paths``;
        answered by ``embedded(job, tag, {path: vector or None})`` or ``failed(job, tag, message)``."""
        job = next(self._ids)
        self.pending += 1
        self._background.append((job, tag, _Embed(str(p) for p in paths), self.model_path or ""))
        self._feed()
        return job

    def _feed(self) -> None:
        if self._bg_in_flight is None and self._background:
            job, tag, image, path = self._background.popleft()
            self._bg_in_flight = job
            if isinstance(image, _Embed):
                self._embed_req.emit(job, tag, tuple(image), path)
            else:
                self._predict_req.emit(job, tag, image, path)

    def _answered(self, job: int) -> None:
        self.pending = max(0, self.pending - 1)
        if job == self._bg_in_flight:
            self._bg_in_flight = None
            self._feed()

    @property
    def background_queued(self) -> int:
        """Background jobs not yet sent to the worker."""
        return len(self._background)

    def cancel_background(self) -> list[int]:
        """Drop the background jobs not started yet (the one running still answers); returns their ids."""
        dropped = [job for job, *_ in self._background]
        self._background.clear()
        self.pending = max(0, self.pending - len(dropped))
        return dropped

    @Slot(str, object)
    def _on_loaded(self, path: str, meta: dict) -> None:
        self.loaded_path = path
        if path == self.model_path:
            self.meta = dict(meta or {})
        self.model_loaded.emit(path)

    @Slot(int, object, object)
    def _on_predicted(self, job: int, tag: Any, probs: Any) -> None:
        self.forward_passes += 1
        self._answered(job)
        self.predicted.emit(job, tag, probs)

    @Slot(int, object, object)
    def _on_embedded(self, job: int, tag: Any, vectors: Any) -> None:
        self._answered(job)
        self.embedded.emit(job, tag, vectors)

    @Slot(int, object, str)
    def _on_failed(self, job: int, tag: Any, message: str) -> None:
        self._answered(job)
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


EXIT_WAITS: list[Callable[[], None]] = []  # more background work to wait for at exit (e.g. exports)


@atexit.register
def _stop_all() -> None:
    for th in list(_LIVE):
        _stop_thread(th)
    for wait in list(EXIT_WAITS):
        wait()
