"""The AI region tool's fit to the photo's edges (GrabCut) off the GUI thread (gui.assist_fit): the click and
the box return at once, Enter during a fit adds the fitted region when it comes, a fit of a state the tool
left (another click, photo, Esc) is dropped, and what is accepted is what ``Segmenter.segment(refine=True)``
gives on the GUI thread."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QObject, Qt, QTimer
from test_assist_tool import _ellipse_of, _fitted, _open, _widget_pos

VAL = Path("/work/shared/datasets/car-damage/val")
REAL = ("image63.jpg", "image64.jpg", "image62.jpg")  # 368x256, 900x599, 1024x768


@pytest.fixture
def fits(monkeypatch):
    """Every fit (``Segmenter._refine``) records its thread and waits for ``gate`` (set: no wait; at most 3 s, so
    that code fitting on the GUI thread fails the tests instead of hanging them)."""
    from viaseg.core.assist.segment import Segmenter

    original = Segmenter._refine
    rec = type("Fits", (), {})()
    rec.threads, rec.gate = [], threading.Event()
    rec.gate.set()

    def refine(self, *a):
        rec.threads.append(threading.current_thread())
        rec.gate.wait(3)
        return original(self, *a)

    monkeypatch.setattr(Segmenter, "_refine", refine)
    return rec


def _expected(tool, canvas, clicks, box=None, prob=None):
    """The polygons (VIA shapes) ``Segmenter.segment(clicks, box, refine=True)`` gives, run here, as Enter
    makes them."""
    from viaseg.core.assist import segment as assist
    from viaseg.gui.assist_tool import qimage_rgb

    thr = float(getattr(tool.panel, "threshold_value", 0.5))
    seg = assist.Segmenter(canvas.img_size, prob, qimage_rgb(canvas.qimage), threshold=thr)
    res = seg.segment(clicks, box, refine=True)
    assert res.region is not None, res.message
    shapes = [
        assist.polygon_shape(assist.polygon(p, assist.default_level(p)), canvas.img_size)
        for p in assist.parts(res.region)
    ]
    return sorted(_xy(s) for s in shapes if assist.usable(s))


def _xy(shape) -> tuple:
    return tuple(shape["all_points_x"]), tuple(shape["all_points_y"])


def _real_project(tmp_path) -> Path:
    """Three car-damage/val photos and their labels as a project (a copy: the tool adds regions to it)."""
    root = tmp_path / "real"
    (root / "val").mkdir(parents=True)
    via = json.loads((VAL / "via_region_data.json").read_text())
    keep = {k: v for k, v in via.items() if v["filename"] in REAL}
    for name in REAL:
        shutil.copy(VAL / name, root / "val" / name)
    (root / "val" / "via_region_data.json").write_text(json.dumps(keep))
    return root


def _inner_point(mask: np.ndarray) -> tuple[float, float]:
    d = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(d)), d.shape)
    return float(c), float(r)


@pytest.mark.skipif(not VAL.is_dir(), reason="needs the car-damage dataset")
def test_regions_accepted_after_the_fit_on_its_thread_are_those_of_the_synchronous_fit(
    qtbot, window, tmp_path, fits
):
    """On real photos: a click, a click and a negative click, a box, and a click on a stand-in map; each fitted
    off the GUI thread, accepted with Enter: the polygons are those ``segment(..., refine=True)`` gives."""
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.assist.segment import Click
    from viaseg.gui.ml_wiring import install

    assert window.open_path(_real_project(tmp_path))
    ml = getattr(window, "ml", None) or install(window)
    ml.act_clicknet.setChecked(False)
    tool, c = ml.assist, window.canvas
    for row, r in enumerate(window.session.rows):
        window.show_row(row)
        qtbot.waitUntil(lambda: c.qimage is not None and c.img_size[0] > 0, timeout=10000)
        entry = window.current_entry()
        tool.set_active(True)
        gt = rasterize(entry.regions[:1], c.img_size) > 0
        x, y = _inner_point(gt)
        ys, xs = np.nonzero(gt)
        neg = Click(float(min(xs.max() + 4, c.img_size[0] - 1)), y, False)
        box = (float(xs.min() - 3), float(ys.min() - 3), float(xs.max() + 3), float(ys.max() + 3))
        cases = [([Click(x, y)], None), ([Click(x, y), neg], None), ([], box)]
        for clicks, b in cases:
            want = _expected(tool, c, clicks, b)
            tool.cancel()
            n = len(entry.regions)
            if b is not None:
                tool.set_box(b)
            for k in clicks:
                tool.add_click(k.x, k.y, k.positive)
            qtbot.keyClick(c, Qt.Key.Key_Return)
            qtbot.waitUntil(lambda n=n, e=entry: len(e.regions) > n, timeout=30000)
            got = sorted(_xy(reg.shape) for reg in entry.regions[n:])
            assert got == want, (r.entry.filename, clicks, b)
        # a stand-in map that knows the region (the map path, fitted unless the fit moved it far)
        tool.map_ready(ml.host.current_target(), cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 3))
        prob = tool._maps[tool.target_key()]
        want = _expected(tool, c, [Click(x, y)], None, prob)
        n = len(entry.regions)
        tool.add_click(x, y)
        qtbot.keyClick(c, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda n=n, e=entry: len(e.regions) > n, timeout=30000)
        assert sorted(_xy(reg.shape) for reg in entry.regions[n:]) == want, r.entry.filename
        tool.set_active(False)
    # every fit of the tool ran on its own thread (those of _expected ran here, on the test's)
    main = threading.main_thread()
    assert sum(t is not main for t in fits.threads) >= 3 * len(REAL), fits.threads


def test_a_click_and_a_box_return_at_once_while_the_fit_runs_on_its_thread(qtbot, window, tmp_path, fits):
    ml = _open(window, tmp_path, size=200)
    tool, c = ml.assist, window.canvas
    tool.set_active(True)
    gt, (cx, cy) = _ellipse_of(window.current_entry())
    ticks = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    fits.gate.clear()
    t0 = time.monotonic()
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx, cy))
    # the fit waits 3 s for the gate on whatever thread it runs: on the GUI thread the click took that long
    assert time.monotonic() - t0 < 2.0
    assert tool.fit_busy() and tool.result is not None and tool.result.region is not None
    assert "edges" not in tool.result.region.source  # the unfitted region, shown at once
    QTimer.singleShot(500, fits.gate.set)
    t1 = time.monotonic()
    _fitted(qtbot, tool)
    assert tool.result.region.source.endswith("+edges")
    during = [t1] + [t for t in ticks if t > t1]  # the GUI thread kept its timers going meanwhile
    assert len(during) >= 10, np.diff(during)
    assert fits.threads and threading.main_thread() not in fits.threads
    # a box drag the same
    tool.cancel()
    ys, xs = np.nonzero(gt)
    fits.gate.clear()
    a, b = _widget_pos(c, xs.min() - 2, ys.min() - 2), _widget_pos(c, xs.max() + 2, ys.max() + 2)
    t0 = time.monotonic()
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(c, b)
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=b)
    assert time.monotonic() - t0 < 2.0 and tool.fit_busy() and tool.box is not None
    fits.gate.set()
    _fitted(qtbot, tool)
    assert tool.result.region.source == "box+edges"
    assert threading.main_thread() not in fits.threads
    timer.stop()


def test_enter_while_the_fit_runs_adds_the_fitted_region_when_it_comes(qtbot, window, tmp_path, fits):
    from viaseg.core.assist.segment import Click

    ml = _open(window, tmp_path, size=200)
    tool, c = ml.assist, window.canvas
    entry = window.current_entry()
    tool.set_active(True)
    gt, (cx, cy) = _ellipse_of(entry)
    n = len(entry.regions)
    said = []
    c.message.connect(said.append)
    fits.gate.clear()
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx, cy))
    click = tool.clicks[0]
    shown = tool.result.region
    qtbot.keyClick(c, Qt.Key.Key_Return)
    assert len(entry.regions) == n and "Waiting" in said[-1]  # not the unfitted region on screen
    window.undo()  # Ctrl+Z meanwhile (of nothing of the tool's): the fit still comes and is added
    fits.gate.set()
    qtbot.waitUntil(lambda: len(entry.regions) == n + 1, timeout=30000)
    assert [_xy(r.shape) for r in entry.regions[n:]] == _expected(tool, c, [click])
    assert shown is not None and "edges" not in shown.source and tool.result is None and not tool.fit_busy()
    window.undo()
    assert len(entry.regions) == n
    # Enter, then Esc or another click before the fit comes: nothing is added
    fits.gate.clear()
    tool.add_click(cx + 3, cy)
    qtbot.keyClick(c, Qt.Key.Key_Return)
    qtbot.keyClick(c, Qt.Key.Key_Escape)
    tool.add_click(cx - 3, cy)
    qtbot.keyClick(c, Qt.Key.Key_Return)
    tool.add_click(cx - 3, cy + 8, False)  # more clicks: the user goes on refining
    fits.gate.set()
    qtbot.waitUntil(lambda: not tool.fitter.busy(), timeout=30000)
    qtbot.wait(50)
    assert len(entry.regions) == n and tool.result is not None
    # ... and the region shown is the fitted one of the clicks made, which Enter adds now
    clicks = [Click(cx - 3, cy), Click(cx - 3, cy + 8, False)]
    assert not tool.fit_busy() and tool.clicks == clicks
    qtbot.keyClick(c, Qt.Key.Key_Return)
    assert sorted(_xy(r.shape) for r in entry.regions[n:]) == _expected(tool, c, clicks)


def test_a_fit_of_a_state_the_tool_left_is_dropped(qtbot, window, tmp_path, fits):
    from viaseg.core.assist import segment as assist
    from viaseg.core.assist.segment import Click

    ml = _open(window, tmp_path, size=200)
    tool, c = ml.assist, window.canvas
    tool.set_active(True)
    gt, (cx, cy) = _ellipse_of(window.current_entry())
    # another click (after Esc) while the first click's fit runs: only the second one's region is shown
    fits.gate.clear()
    tool.add_click(cx, cy)
    assert tool.fit_busy()
    tool.cancel()
    tool.add_click(cx + 5, cy + 2)
    assert tool.fit_busy()
    shown = []
    real_show = tool._show_result
    tool._show_result = lambda *a: shown.append(tool.result) or real_show(*a)
    fits.gate.set()
    _fitted(qtbot, tool)
    qtbot.waitUntil(lambda: not tool.fitter.busy(), timeout=30000)
    assert len(shown) == 1 and tool.result is shown[0]  # the first click's fit came, and was not shown
    want = _expected(tool, c, [Click(cx + 5, cy + 2)])
    got = sorted(
        _xy(assist.polygon_shape(assist.polygon(p, assist.default_level(p)), c.img_size))
        for p in assist.parts(tool.result.region)
    )
    assert got == want
    tool.cancel()  # what the dropped fit found is kept: a click there again needs no fit
    tool.add_click(cx, cy)
    assert not tool.fit_busy() and tool.result.region.source.endswith("+edges")
    # another photo while a fit runs: its answer changes nothing there, nor on the photo left
    fits.gate.clear()
    tool.cancel()
    tool.add_click(cx - 4, cy + 3)  # (the first click's region is known now, fitted: it needs no fit again)
    assert tool.fit_busy()
    left = window.current_entry()
    n_left = len(left.regions)
    qtbot.keyClick(c, Qt.Key.Key_Return)  # Enter too: the photo left gets nothing
    window.show_row(1)
    assert not tool.fit_busy() and tool.result is None
    fits.gate.set()
    qtbot.waitUntil(lambda: not tool.fitter.busy(), timeout=30000)
    qtbot.wait(50)
    assert tool.result is None and not tool.clicks and len(left.regions) == n_left


def test_the_fit_thread_stops_at_exit_and_with_its_window(qtbot, fits):
    from viaseg.core.assist.segment import Click, Segmenter
    from viaseg.gui import workers
    from viaseg.gui.assist_fit import FitService

    img = np.full((120, 160, 3), 90, np.uint8)
    cv2.circle(img, (80, 60), 30, (230, 200, 60), -1)
    seg = Segmenter((160, 120), None, img)

    parent = QObject()
    svc = FitService(parent)
    assert svc._thread is None  # no thread until the first fit
    fits.gate.clear()
    svc.fit("a", seg, [Click(80, 60)], None)
    th = svc._thread
    assert th is not None and th.isRunning() and th in workers._LIVE
    parent.deleteLater()  # the window closing mid-fit: the thread ends after its fit
    qtbot.wait(50)
    fits.gate.set()
    assert th.wait(10000) and not th.isRunning()
    # and the application's exit stops a running one (gui.workers._stop_all)
    svc2 = FitService()
    svc2.fit("b", seg, [Click(80, 60)], None)
    th2 = svc2._thread
    assert th2 in workers._LIVE
    with qtbot.waitSignal(svc2.done, timeout=10000):
        pass
    workers._stop_thread(th2)
    assert not th2.isRunning() and th2 not in workers._LIVE
