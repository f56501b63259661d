"""The AI region tool's click network (``core.ml.clicknet``) on a worker thread of its own, one question at a
time, as :class:`gui.workers.InferenceService` runs the segmentation model (TensorFlow imported on the GUI thread
first: see ``gui.workers``). No widgets here; the tool connects to the signals."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from .workers import _LIVE, _failure_text, _stop_thread, import_tensorflow


class _ClickNetWorker(QObject):
    """Lives on the click network's thread; every slot runs there."""

    answered = Signal(object, object)  # tag, core.ml.clicknet.FirstRegion
    failed = Signal(object, str)  # tag, message
    ready = Signal()  # warmed up

    def __init__(self, loader: Callable[[str | None], Any]):
        super().__init__()
        self._loader = loader
        self.net: Any = None
        self.path: str | None = None  # the weights file (None: those shipped with viaseg)
        self._work: tuple[Any, Any, Any] | None = None  # (photo key, image given, its reduced copy)

    @Slot(str)
    def use(self, path: str) -> None:
        """Use the weights of ``path`` ("" : the shipped ones) from the next question on."""
        if (path or None) != self.path:
            self.path, self.net = path or None, None

    @Slot()
    def warm(self) -> None:
        """Load the network and run it once on a blank photo (traces it), so the first click is quick."""
        try:
            if self.net is None:
                self.net = self._loader(self.path)
                import numpy as np

                self.net.first_region(np.zeros((64, 64, 3), np.uint8), (64, 64), 32.0, 32.0)
        except Exception as exc:
            self.failed.emit(None, _failure_text(exc))
            return
        self.ready.emit()

    @Slot(object, object, object, float, float)
    def run(self, tag: Any, image: Any, size_wh: Any, x: float, y: float) -> None:
        try:
            if self.net is None:
                self.net = self._loader(self.path)
            key = tag[1][0]
            if self._work is None or self._work[0] != key or self._work[1] is not image:
                from viaseg.core.ml.clicknet import work_image

                self._work = (key, image, work_image(image))
            region = self.net.first_region(self._work[2], size_wh, x, y)
        except Exception as exc:
            self.failed.emit(tag, _failure_text(exc))
            return
        self.answered.emit(tag, region)


def _default_clicknet(path: str | None = None):
    from viaseg.core.ml.clicknet import WEIGHTS, ClickNet

    return ClickNet.load(path or WEIGHTS)


class ClickNetService(QObject):
    """The click network (``core.ml.clicknet``) on its own worker thread: ``ask(tag, image, size_wh, x, y,
    hover=False)``; the answer is ``answered(tag, FirstRegion)`` or ``failed(tag, message)``. ``tag`` is the
    caller's: ``(photo key, click)``; the image must stay unchanged while asked (the tool passes its
    Segmenter's).

    One question at a time goes to the worker: a click's question waits for at most the one running; a hover's
    (``hover=True``: the cursor resting, asked so that the preview shows what a click there gives) replaces any
    hover question not yet sent, and a click's question drops it. The network is loaded by :meth:`warm` (the tool
    calls it when turned on) or the first question (TensorFlow is imported before, on the calling (GUI) thread:
    see the module docstring). ``failed(None, message)``: the warm-up failed."""

    answered = Signal(object, object)
    failed = Signal(object, str)
    dropped = Signal(object)  # tag: a hover's question replaced before it was sent (never answered)
    ready = Signal()  # the network is loaded and warmed up (warm)
    tensorflow_loading = Signal()
    _run_req = Signal(object, object, object, float, float)
    _warm_req = Signal()

    weights_changed = Signal(str)  # the weights file now used ("" : the shipped ones)
    _use_req = Signal(str)

    def __init__(self, loader: Callable[[str | None], Any] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("viaseg-clicknet")
        self._worker = _ClickNetWorker(loader or _default_clicknet)
        self._needs_tf = loader is None
        self._worker.moveToThread(self._thread)
        self._run_req.connect(self._worker.run)
        self._warm_req.connect(self._worker.warm)
        self._use_req.connect(self._worker.use)
        self.weights: str | None = None
        self._gen = 0  # answers of questions asked before the weights changed are dropped
        self._worker.ready.connect(self.ready)
        self._warmed = False
        self._worker.answered.connect(self._on_answered)
        self._worker.failed.connect(self._on_failed)
        self._thread.start()
        _LIVE.add(self._thread)
        self._queue: deque = deque()  # clicks' questions not yet sent
        self._hover: tuple | None = None  # the latest hover question not yet sent
        self._in_flight: Any = None  # the tag of the question the worker has
        self.asked = 0  # questions sent to the worker

    def set_weights(self, path: str | None) -> None:
        """Use the weights file ``path`` (None: the shipped ones) from now on; answers still coming from the
        former weights are dropped. The network is warmed again by the next :meth:`warm`."""
        path = str(path) if path else None
        if path == self.weights:
            return
        self.weights = path
        self._gen += 1
        self._warmed = False
        self._use_req.emit(path or "")
        self.weights_changed.emit(path or "")

    def ask(self, tag: Any, image: Any, size_wh: Any, x: float, y: float, hover: bool = False) -> None:
        q = ((self._gen, tag), image, (int(size_wh[0]), int(size_wh[1])), float(x), float(y))
        old, self._hover = self._hover, (q if hover else None)
        if not hover:
            self._queue.append(q)
        if old is not None:
            self.dropped.emit(old[0][1])
        self._feed()

    def warm(self) -> None:
        """Get the network ready before the first question (TensorFlow's import here, on the GUI thread, the
        network's load and first run on the worker); once per service."""
        if self._warmed:
            return
        self._warmed = True
        self._import_tf()
        self._warm_req.emit()

    def _import_tf(self) -> None:
        if self._needs_tf and "tensorflow" not in sys.modules:
            self.tensorflow_loading.emit()
            import_tensorflow()  # on the GUI thread, before the worker touches it (module docstring)

    def busy(self) -> bool:
        return self._in_flight is not None or bool(self._queue) or self._hover is not None

    def _feed(self) -> None:
        if self._in_flight is not None:
            return
        if self._queue:
            q = self._queue.popleft()
        elif self._hover is not None:
            q, self._hover = self._hover, None
        else:
            return
        self._import_tf()
        self._in_flight = q[0]
        self.asked += 1
        self._run_req.emit(*q)

    @Slot(object, object)
    def _on_answered(self, tagged: Any, region: Any) -> None:
        self._in_flight = None
        gen, tag = tagged
        if gen == self._gen:
            self.answered.emit(tag, region)
        else:
            self.dropped.emit(tag)
        self._feed()

    @Slot(object, str)
    def _on_failed(self, tagged: Any, message: str) -> None:
        tag = None
        if tagged is not None:  # (None: the warm-up failed; no question was in flight for it)
            self._in_flight = None
            tag = tagged[1]
        self.failed.emit(tag, message)
        self._feed()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        _stop_thread(self._thread, timeout_ms)
