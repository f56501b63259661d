"""The AI region tool's fit to the photo's edges (``Segmenter.segment(..., refine=True)``: OpenCV GrabCut, tenths
of a second on a photo, seconds on some) off the GUI thread.

:class:`FitService` runs the fits on a worker thread of its own, one at a time, as
``gui.clicknet_service.ClickNetService`` asks the click network: each on a ``Segmenter.fork`` made on the GUI
thread when the fit is sent (the worker never touches the tool's Segmenter), the answer a queued signal; a fit
asked while another runs replaces any not sent yet (only the latest state of the tool matters).

:class:`AsyncFitting` (mixed into ``gui.assist_tool.AssistTool``, whose state it reads) shows the unfitted region
at once (``refine=False``, as the preview) and asks for the fit, tagged; the fitted region replaces it when it
comes, unless the tool moved on meanwhile (another click, box, Backspace, photo, Esc: the tag differs; what the
fork found is still kept when it is of the same Segmenter). Enter while a fit is awaited adds the fitted region
when it comes (as for the click network's answer, ``gui.assist_net``), never the one shown before. A state that
needs no fit (later clicks correct a fitted region; a Segmenter's caches hold the rest) is found at once, on the
GUI thread, as before."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QPointF, QThread, Signal, Slot
from PySide6.QtGui import QPainterPath
from viaseg.core.assist import segment as assist

from .workers import _LIVE, _failure_text, _stop_thread

FITS_KEPT = (
    32  # fitted regions kept per Segmenter, by (clicks, box): Backspace back to a box's state is instant
)


def _outline_path(region: assist.RegionMask | None) -> QPainterPath | None:
    """The outline of each of the region's parts (every boundary pixel) in photo coordinates."""
    if region is None:
        return None
    path = QPainterPath()
    for part in assist.parts(region):
        pts = assist.polygon(part, 0)
        if len(pts) < 3:
            continue
        path.moveTo(QPointF(*pts[0]))
        for x, y in pts[1:]:
            path.lineTo(x, y)
        path.closeSubpath()
    return None if path.isEmpty() else path


class _FitWorker(QObject):
    """Lives on the fit thread; its slot runs there, on the fork it is given (and no other Segmenter)."""

    done = Signal(object, object)  # tag, core.assist.segment.Result
    failed = Signal(object, str)  # tag, message

    @Slot(object, object, object, object)
    def run(self, tag: Any, seg: Any, clicks: Any, box: Any) -> None:
        try:
            result = seg.segment(list(clicks), box, refine=True)
        except Exception as exc:
            self.failed.emit(tag, _failure_text(exc))
            return
        self.done.emit(tag, result)


class FitService(QObject):
    """``fit(tag, segmenter, clicks, box)``: ``segmenter.segment(clicks, box, refine=True)`` on a worker thread,
    on a fork of ``segmenter`` made when the fit is sent; the answer is ``done(tag, segmenter, fork, Result)``
    (the fork holds what it found: ``segmenter.learn(fork)``) or ``failed(tag, message)``. The thread starts
    with the first fit and is stopped by :meth:`shutdown`, at the application's exit (``gui.workers._stop_all``)
    or when the service is destroyed."""

    done = Signal(object, object, object, object)
    failed = Signal(object, str)
    _run_req = Signal(object, object, object, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._next: tuple | None = None  # (tag, segmenter, clicks, box) not sent yet
        self._in_flight: tuple | None = None  # (tag, segmenter, fork)
        self.sent = 0  # fits sent to the worker

    def _start(self) -> None:
        th = QThread()
        th.setObjectName("viaseg-assist-fit")
        worker = _FitWorker()
        worker.moveToThread(th)
        th.worker = worker  # type: ignore[attr-defined]  # alive as long as its thread (in _LIVE until stopped)
        self._run_req.connect(worker.run)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        th.start()
        _LIVE.add(th)
        self._thread = th
        # destroyed with its parent (the window closing): the thread ends after the fit it has, waited for at exit
        self.destroyed.connect(th.quit)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(lambda: _stop_thread(th))

    def fit(self, tag: Any, seg: assist.Segmenter, clicks, box) -> None:
        if self._thread is None:
            self._start()
        self._next = (tag, seg, tuple(clicks), box)
        self._feed()

    def drop_pending(self) -> None:
        """Forget the fit not sent yet (the tool no longer needs it)."""
        self._next = None

    def busy(self) -> bool:
        return self._in_flight is not None or self._next is not None

    def _feed(self) -> None:
        if self._in_flight is not None or self._next is None:
            return
        tag, seg, clicks, box = self._next
        self._next = None
        fork = seg.fork()  # here, on the GUI thread: it knows what the fits before it found
        self._in_flight = (tag, seg, fork)
        self.sent += 1
        self._run_req.emit(tag, fork, clicks, box)

    @Slot(object, object)
    def _on_done(self, tag: Any, result: Any) -> None:
        _, seg, fork = self._in_flight or (None, None, None)
        self._in_flight = None
        self.done.emit(tag, seg, fork, result)
        self._feed()

    @Slot(object, str)
    def _on_failed(self, tag: Any, message: str) -> None:
        self._in_flight = None
        self.failed.emit(tag, message)
        self._feed()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        self._next = None
        if self._thread is not None:
            _stop_thread(self._thread, timeout_ms)


class AsyncFitting:
    """The tool's side: which region to show for its clicks and box now, the fit asked for, its answer."""

    def _init_fit(self, fitter: FitService | None = None) -> None:
        self.fitter = fitter or FitService(self)  # type: ignore[arg-type]  # (mixed into a QObject)
        self.fitter.done.connect(self._fit_done)
        self.fitter.failed.connect(self._fit_failed)
        self._fit_tag: tuple | None = None  # (number, clicks, box) of the fit awaited for what is shown
        self._fit_count = 0
        self._fits: tuple[Any, OrderedDict] | None = None  # (Segmenter, (clicks, box) -> fitted Result)

    def fit_busy(self) -> bool:
        """Whether the region shown is still to be replaced by its fit to the photo's edges."""
        return self._fit_tag is not None

    def wait_fitted(self, timeout_s: float = 60.0) -> bool:
        """Run the event loop until the fit awaited (if any) has come (for scripts driving the tool); True if
        nothing is awaited now."""
        end = time.monotonic() + timeout_s
        while self._fit_tag is not None and time.monotonic() < end:
            QCoreApplication.processEvents()
            time.sleep(0.002)
        return self._fit_tag is None

    def _fitted_of(self, seg) -> OrderedDict:
        if self._fits is None or self._fits[0] is not seg:
            self._fits = (seg, OrderedDict())
        return self._fits[1]

    def _segment(self, seg, waiting: bool) -> assist.Result:
        """The region of the tool's clicks and box to show now: fitted when that takes no GrabCut on this
        thread; else the unfitted one, its fit asked for (``waiting``: the click network's region is coming,
        no fit)."""
        clicks, box = tuple(self.clicks), self.box
        self._fit_tag = None
        if waiting:
            self.fitter.drop_pending()
            return seg.segment(self.clicks, box, refine=False)
        known = self._fitted_of(seg).get((clicks, box))
        if known is None and seg.needs_fit(self.clicks, box):
            self._fit_count += 1
            self._fit_tag = (self._fit_count, clicks, box)
            self.fitter.fit(self._fit_tag, seg, clicks, box)
            return seg.segment(self.clicks, box, refine=False)
        self.fitter.drop_pending()
        return known if known is not None else seg.segment(self.clicks, box, refine=True)

    def _fit_done(self, tag, seg, fork, result) -> None:
        if self._seg is not None and self._seg[1] is seg:  # (else another photo, map or decode since)
            seg.learn(fork)
            fitted = self._fitted_of(seg)
            fitted[tag[1:]] = result
            while len(fitted) > FITS_KEPT:
                fitted.popitem(last=False)
            now = self._fit_tag
            if (
                tag != now
                and now is not None
                and (now[1:] in fitted or not seg.needs_fit(list(now[1]), now[2]))
            ):
                self._recompute()  # what it found answers the fit awaited now: no need to wait for that one
                self._accepting()
                return
        if tag != self._fit_tag:
            return  # the tool moved on (another click, box, photo, Esc)
        self._fit_tag = None
        self.result = result
        self._show_result()
        self._accepting()

    def _accepting(self) -> None:
        if self._accept_pending and self._fit_tag is None:
            self.accept()

    def _fit_failed(self, tag, message: str) -> None:
        if tag is None or tag != self._fit_tag:
            return
        self._fit_tag = None
        self._accept_pending = False  # Enter adds the region as shown only when pressed again, knowing it
        self._say(
            f"AI region: fitting the region to the photo's edges failed ({message}); Enter adds it as shown."
        )

    def _wait_to_accept(self) -> bool:
        """True (and Enter is remembered) while the region on screen is about to be replaced: by the click
        network's, or by its fit to the photo's edges."""
        first = self._first_click()
        if first is not None and (self.target_key(), first) in self._net_asked:
            self._accept_pending = True
            self._say("Waiting for the click network's region, then adding it…")
            return True
        if self._fit_tag is not None:
            self._accept_pending = True
            self._say("Waiting for the region's fit to the photo's edges, then adding it…")
            return True
        self._accept_pending = False
        return False

    def _show_result(self, waiting: bool = False) -> None:
        """The outline and the status line of ``self.result``."""
        res = self.result
        self._result_path = _outline_path(res.region) if res is not None else None
        if res is None:
            pass
        elif res.region is None:
            self._say(res.message if not waiting else "The click network is finding the region…")
        else:
            n = len(self.clicks)
            self._say(
                f"AI region from the {res.region.source} ({n} click{'s' * (n != 1)}"
                f"{', box' if self.box else ''}): Enter accepts, more clicks refine, Esc cancels."
                + (" The click network is finding the region…" if waiting else "")
                + (" Fitting it to the photo's edges…" if self._fit_tag is not None else "")
            )
        self.canvas.update()
