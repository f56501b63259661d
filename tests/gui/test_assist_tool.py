"""The AI region tool in a live window (pytest-qt, offscreen): clicks, box, accept/undo, detail."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from ml_helpers import make_model, make_project
from PySide6.QtCore import QObject, QPoint, Qt, Signal


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.keras")


def _open(window, tmp_path, size=160, net=False):
    """The window on a generated project; the click network off unless ``net`` (these tests are about the map
    and colour paths; the network's own tests are below)."""
    from viaseg.gui.ml_wiring import install

    root = make_project(tmp_path / "proj", n_train=2, n_val=1, size=size)
    assert window.open_path(root)
    ml = getattr(window, "ml", None) or install(window)
    ml.act_clicknet.setChecked(net)
    window.show_row(0)
    return ml


def _ellipse_of(entry):
    """The labelled ellipse of a generated photo as a full-size mask, and its centre."""
    from viaseg.core.annotation.raster import rasterize

    h, w = cv2.imread(str(entry.path)).shape[:2]
    gt = rasterize(entry.regions, (w, h)) > 0
    ys, xs = np.nonzero(gt)
    return gt, (float(xs.mean()), float(ys.mean()))


def _fitted(qtbot, tool):
    """Wait for the region's fit to the photo's edges (GrabCut, on its own thread: gui.assist_fit)."""
    qtbot.waitUntil(lambda: not tool.fit_busy(), timeout=30000)


def _widget_pos(canvas, x, y) -> QPoint:
    p = canvas.to_widget(x, y)
    return QPoint(round(p.x()), round(p.y()))


def test_click_with_the_model_map_adds_one_region_and_undo_removes_it(qtbot, window, tmp_path, model_file):
    ml = _open(window, tmp_path)
    entry = window.current_entry()
    gt, (cx, cy) = _ellipse_of(entry)
    with qtbot.waitSignal(ml.service.model_changed, timeout=60000):
        ml.training.set_active_model(str(model_file))
    tool = ml.assist
    # activating the tool asks the active model for this photo's map, off the GUI thread, and keeps it
    with qtbot.waitSignal(ml.prediction.prediction_ready, timeout=60000):
        ml.act_assist.trigger()
    assert tool.active and window.canvas.cursor().shape() == Qt.CursorShape.CrossCursor
    key = tool.target_key()
    assert (
        key in tool._maps and window.canvas.prediction is not None
    )  # the same map the prediction view shows
    # the untrained model's map is noise: stand in a map that knows the ellipse, through the same entry point
    ml.prediction.probs = cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 3)
    tool.map_ready(ml.prediction.target, ml.prediction.probs)
    n = len(entry.regions)
    qtbot.mouseMove(window.canvas, _widget_pos(window.canvas, cx + 3, cy))
    qtbot.waitUntil(lambda: tool._preview_path is not None, timeout=3000)  # hover preview
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=_widget_pos(window.canvas, cx, cy))
    _fitted(qtbot, tool)
    assert tool.result is not None and tool.result.region is not None
    assert "map" in tool.result.region.source
    area = tool.result.region.area()
    assert 0.7 * gt.sum() < area < 1.4 * gt.sum()
    # Shift+click near the edge: a negative point shrinks the region
    ys, xs = np.nonzero(gt)
    qtbot.mouseClick(
        window.canvas,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ShiftModifier,
        pos=_widget_pos(window.canvas, xs.max() - 2, cy),
    )
    assert tool.result.region is not None and tool.result.region.area() < area
    qtbot.keyClick(window.canvas, Qt.Key.Key_Backspace)  # takes the negative click back
    assert tool.result.region.area() == pytest.approx(area)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert len(entry.regions) == n + 1
    added = entry.regions[-1]
    assert added.kind == "polygon" and len(added.shape["all_points_x"]) >= 4
    assert window.session.is_dirty()
    window.undo()  # one step removes it
    assert len(entry.regions) == n


def test_box_on_a_photo_without_a_model_gives_a_region(qtbot, window, tmp_path):
    ml = _open(window, tmp_path)
    assert not ml.service.has_model()
    entry = window.current_entry()
    gt, _ = _ellipse_of(entry)
    ys, xs = np.nonzero(gt)
    ml.act_assist.trigger()
    c = window.canvas
    a = _widget_pos(c, xs.min() - 2, ys.min() - 2)
    b = _widget_pos(c, xs.max() + 2, ys.max() + 2)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(c, a + QPoint(10, 10))
    qtbot.mouseMove(c, b)
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=b)
    _fitted(qtbot, ml.assist)
    assert tool_box(ml) is not None
    region = ml.assist.result.region
    assert region is not None and region.source.startswith("box")
    full = region.full(c.img_size)
    iou = (full & gt).sum() / (full | gt).sum()
    assert iou > 0.6, iou
    n = len(entry.regions)
    assert ml.assist.accept() is not None and len(entry.regions) == n + 1
    # Esc with nothing pending leaves the tool as it is; the I key's action turns it off
    ml.act_assist.trigger()
    assert not ml.assist.active


def tool_box(ml):
    return ml.assist.box


def test_a_click_on_background_without_a_map_says_so_and_adds_nothing(qtbot, window, tmp_path):
    ml = _open(window, tmp_path)
    tool = ml.assist
    tool.set_active(True)
    tool.map_ready(ml.host.current_target(), np.zeros((20, 20), np.float32))  # an empty map
    entry = window.current_entry()
    n = len(entry.regions)
    messages = []
    window.canvas.message.connect(messages.append)
    tool.segmenter().image = None  # nothing to fall back on: the map alone
    tool.add_click(5, 5)
    assert tool.result.region is None and "no damage" in messages[-1]
    assert tool.accept() is None and len(entry.regions) == n


def _accepted_ai_region(window, tmp_path):
    """The window with one AI region accepted on its photo's ellipse (a map of the ellipse): (ml, region)."""
    ml = _open(window, tmp_path, size=200)
    tool = ml.assist
    gt, (cx, cy) = _ellipse_of(window.current_entry())
    tool.set_active(True)
    tool.map_ready(ml.host.current_target(), cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 2))
    tool.add_click(cx, cy)
    assert tool.wait_fitted()
    return ml, tool.accept()


def test_detail_control_changes_the_vertex_count_and_undoes(qtbot, window, tmp_path):
    ml, region = _accepted_ai_region(window, tmp_path)
    assert region is not None and window.canvas.selected_region() is region
    assert ml.detail_slider.isEnabled()
    n0 = len(region.shape["all_points_x"])
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Plus)  # more detail
    n1 = len(region.shape["all_points_x"])
    assert n1 > n0
    window.undo()
    assert len(region.shape["all_points_x"]) == n0
    ml.detail_slider.setValue(ml.detail_slider.maximum())  # fewest vertices
    assert len(region.shape["all_points_x"]) < n0
    window.undo()
    assert len(region.shape["all_points_x"]) == n0
    # a hand-drawn region has no mask to make again: the slider is off
    window.canvas.select(0)
    assert not ml.detail_slider.isEnabled()


def test_detail_never_undoes_a_move_made_after_the_region_was_accepted(qtbot, window, tmp_path):
    """Accept an AI region, drag it 60 px, press -: the polygon was made again from the mask at its old place,
    so the move was undone without a word. A region changed by hand keeps its shape and the key says why."""
    from viaseg.core.annotation import edits

    ml, region = _accepted_ai_region(window, tmp_path)
    entry = window.current_entry()
    assert region is not None and ml.detail_slider.isEnabled()
    window.session.push(edits.SetShape(region, edits.translated(region.shape, 30, 0), entry))  # a move
    moved = (list(region.shape["all_points_x"]), list(region.shape["all_points_y"]))
    messages = []
    window.canvas.message.connect(messages.append)
    window.canvas.select(window.current_entry().regions.index(region))
    assert not ml.detail_slider.isEnabled()  # the control is off for it
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Minus)
    assert (region.shape["all_points_x"], region.shape["all_points_y"]) == moved
    assert messages and "changed by hand" in messages[-1]
    window.undo()  # the move undone: the mask's polygon again, and its detail with it
    window.canvas.select(window.current_entry().regions.index(region))
    assert ml.detail_slider.isEnabled()


def test_on_a_dropped_photo_the_region_follows_add_photo_to_split(qtbot, window, tmp_path):
    from test_prediction_panel import drop_files

    ml = _open(window, tmp_path)
    photo = tmp_path / "outside" / "new.png"
    photo.parent.mkdir()
    img = np.full((90, 120, 3), 60, np.uint8)
    cv2.circle(img, (60, 45), 25, (230, 200, 60), -1)
    cv2.imwrite(str(photo), img)
    assert drop_files(window, [photo])
    qtbot.waitUntil(lambda: window.external_path == photo, timeout=5000)
    tool = ml.assist
    tool.set_active(True)
    ml.prediction.split_combo.setCurrentText("train")
    tool.add_click(60, 45)
    _fitted(qtbot, tool)
    assert tool.result.region is not None
    rows = len(window.session.rows)
    assert tool.accept() is not None
    assert len(window.session.rows) == rows + 1
    added = window.session.dataset.splits["train"].entries[-1]
    assert added.filename == "new.png" and len(added.regions) == 1


def test_a_region_in_two_pieces_becomes_two_polygon_regions_in_one_undo_step(qtbot, window, tmp_path):
    """A positive click far from the region adds a separate part around it; accepting gives a polygon region
    per part (a VIA polygon holds one outline), both undone together, each with its own detail control."""
    ml = _open(window, tmp_path, size=200)
    tool = ml.assist
    entry = window.current_entry()
    n = len(entry.regions)
    gt, (cx, cy) = _ellipse_of(entry)
    tool.set_active(True)
    tool.map_ready(ml.host.current_target(), cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 2))
    tool.add_click(cx, cy)
    _fitted(qtbot, tool)
    far = max(
        ((6.0, 6.0), (194.0, 6.0), (6.0, 194.0), (194.0, 194.0)), key=lambda p: np.hypot(p[0] - cx, p[1] - cy)
    )
    assert not gt[int(far[1]), int(far[0])]
    tool.add_click(*far)
    assert len(assist_parts(tool.result.region)) == 2
    assert len(tool._result_path.toSubpathPolygons()) == 2  # both parts outlined
    steps = window.session.history.index
    largest = tool.accept()
    assert largest is not None and len(entry.regions) == n + 2
    assert window.session.history.index == steps + 1 and window.canvas.selected_region() is largest
    new = entry.regions[-2:]
    assert largest in new

    def holds(region, x, y) -> bool:
        xs, ys = region.shape["all_points_x"], region.shape["all_points_y"]
        return min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys)

    # one polygon around each click: the damage clicked first, and the part the far click added
    assert sorted([holds(r, cx, cy) for r in new]) == [False, True]
    assert sorted([holds(r, *far) for r in new]) == [False, True]
    assert all(tool.detail_of(r) >= 0 for r in new)  # each keeps its own mask for the detail control
    window.undo()
    assert len(entry.regions) == n


def assist_parts(region):
    from viaseg.core.assist import segment as assist

    return assist.parts(region)


# ------------------------------------------------------------------------------------------------ click network
class _StubNet(QObject):
    """Stands in for gui.workers.ClickNetService: records the questions; the test answers them."""

    answered = Signal(object, object)
    failed = Signal(object, str)
    dropped = Signal(object)

    def __init__(self):
        super().__init__()
        self.asks: list[tuple] = []

    def ask(self, tag, image, size_wh, x, y, hover=False):
        self.asks.append((tag, (x, y), hover))


def _found(mask: np.ndarray):
    """A click network answer (core.ml.clicknet.FirstRegion) holding ``mask`` at the photo's resolution."""
    from viaseg.core.ml.clicknet import FirstRegion

    return FirstRegion(mask.copy(), 0.0, 0.0, 1.0)


def _accept_mask(window, tmp_path, mask, x0, y0, scale, ml=None):
    """The AI region tool (of ``ml``, else of a project opened now) with ``mask`` (a RegionMask's grid at x0, y0,
    scale) as its result, accepted: (ml, the added region or None, the messages said)."""
    from viaseg.core.assist import segment as assist

    ml = ml or _open(window, tmp_path, size=200)
    tool = ml.assist
    tool.set_active(True)
    messages = []
    window.canvas.message.connect(messages.append)
    tool.result = assist.Result(assist.RegionMask(mask, x0, y0, scale, "map"), "")
    return ml, tool.accept(), messages


def test_detail_works_at_every_level_of_a_region_whose_polygon_merges_vertices(qtbot, window, tmp_path):
    """A mask finer than the photo (or any mask whose outline rounds to repeated integer vertices): the full
    outline's polygon has fewer vertices than the mask's outline. + stopped at the 7th step, the region then
    counted as changed by hand, - and the slider stopped working."""
    disc = np.zeros((120, 120), np.uint8)
    cv2.circle(disc, (60, 60), 50, 1, -1)
    ml, region, messages = _accept_mask(window, tmp_path, disc > 0, 40.0, 40.0, 0.45)
    tool = ml.assist
    assert region is not None and tool.detail_of(region) >= 0
    window.canvas.setFocus()
    seen = [len(region.shape["all_points_x"])]
    for _ in range(len(tool._sources[region][1]) + 1):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Plus)
        assert tool.detail_of(region) >= 0 and ml.detail_slider.isEnabled(), messages[-1]
        if messages[-1].startswith("Already at the full outline"):
            break
        seen.append(len(region.shape["all_points_x"]))
    assert messages[-1].startswith("Already at the full outline") and seen == sorted(seen) and len(seen) > 3
    assert tool.detail_of(region) == 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_Minus)  # and back
    assert len(region.shape["all_points_x"]) == seen[-2] and tool.detail_of(region) > 0
    ml.detail_slider.setValue(ml.detail_slider.maximum())  # fewest vertices, by the slider
    assert len(region.shape["all_points_x"]) < seen[0] and tool.detail_of(region) >= 0


def test_an_ai_region_stays_inside_the_photo_and_a_flat_one_is_refused(qtbot, window, tmp_path):
    """Cells larger than a thin part of the photo: the polygon reached past its edges (x -10..10 on a 1-px-wide
    photo, ``viaseg check``'s out_of_bounds); a region one cell thin gave a polygon enclosing no area."""
    from viaseg.core.assist import segment as assist

    block = np.pad(np.ones((6, 4), bool), 1)
    ml, region, _ = _accept_mask(window, tmp_path, block, -25.0, 170.0, 10.0)  # reaches past left and bottom
    assert region is not None
    w, h = window.canvas.img_size
    xs, ys = region.shape["all_points_x"], region.shape["all_points_y"]
    assert 0 <= min(xs) and max(xs) <= w and 0 <= min(ys) and max(ys) <= h, (xs, ys)
    assert assist.shape_area(region.shape) > 0 and ml.assist.detail_of(region) >= 0
    entry = window.current_entry()
    n = len(entry.regions)
    line = np.pad(np.ones((1, 12), bool), 1)  # one cell thin: its outline encloses nothing
    _, flat, messages = _accept_mask(window, tmp_path, line, 30.0, 30.0, 1.0, ml)
    assert flat is None and "too small for a polygon" in messages[-1] and len(entry.regions) == n
    assert all(assist.shape_area(r.shape) > 0 for r in entry.regions if r.kind == "polygon")


def test_the_first_click_is_not_fitted_on_the_gui_thread_while_the_network_finds_it(
    qtbot, window, tmp_path, monkeypatch
):
    """GrabCut (the fit to the photo's edges) took 0.4 s of the GUI thread on each first click, for a region the
    click network's replaces a moment later; it runs only when the network finds nothing (or fails)."""
    from viaseg.core.assist.segment import Segmenter

    fits = []
    original = Segmenter._refine
    monkeypatch.setattr(Segmenter, "_refine", lambda self, *a: fits.append(1) or original(self, *a))
    ml, tool, stub = _tool_with_stub(window, tmp_path)
    gt, (cx, cy) = _ellipse_of(window.current_entry())
    c = window.canvas
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx, cy))
    assert len(stub.asks) == 1 and tool.result is not None and tool.result.region is not None
    assert not fits and "edges" not in tool.result.region.source  # shown until the network answers
    stub.answered.emit(stub.asks[0][0], None)  # the network finds nothing: the region is found, fitted
    _fitted(qtbot, tool)
    assert fits and tool.result.region is not None and tool.result.region.source.endswith("+edges")
    # the network failing instead: the same
    fits.clear()
    tool.cancel()
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx + 2, cy))
    assert not fits and len(stub.asks) == 2
    stub.failed.emit(stub.asks[1][0], "broken")
    _fitted(qtbot, tool)
    assert fits and tool.result.region.source.endswith("+edges")


def test_qimage_rgb_copies_the_canvas_image_exactly():
    from PySide6.QtGui import QImage
    from viaseg.gui.assist_tool import qimage_rgb
    from viaseg.gui.image_cache import to_qimage

    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    q = to_qimage(rgb)
    assert q.format() == QImage.Format.Format_RGB32
    assert np.array_equal(qimage_rgb(q), rgb)
    assert np.array_equal(qimage_rgb(q.convertToFormat(QImage.Format.Format_RGB888)), rgb)


def _tool_with_stub(window, tmp_path):
    from viaseg.gui.assist_tool import AssistTool

    ml = _open(window, tmp_path, size=200)
    stub = _StubNet()
    ml.assist.set_active(False)
    tool = AssistTool(window.canvas, ml.prediction, ml.assist.target_key, net=stub)
    tool.set_active(True)
    return ml, tool, stub


def test_first_click_takes_the_click_networks_region_when_it_arrives(qtbot, window, tmp_path):
    ml, tool, stub = _tool_with_stub(window, tmp_path)
    entry = window.current_entry()
    gt, (cx, cy) = _ellipse_of(entry)
    c = window.canvas
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx, cy))
    # asked once about the first click; until the answer, the region is the photo's own (colours and edges)
    assert len(stub.asks) == 1 and not stub.asks[0][2]
    tag = stub.asks[0][0]
    assert tag[1] == tool.clicks[0]
    assert tool.result is None or tool.result.region is None or "network" not in tool.result.region.source
    # the answer: a region a little larger than the ellipse (the test can then see the correction shrink it)
    grown = cv2.dilate(gt.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    stub.answered.emit(tag, _found(grown))
    assert tool.result.region is not None and tool.result.region.source == "click network"
    full = tool.result.region.full(c.img_size)
    assert (full == grown).mean() > 0.99
    # a negative click just outside the ellipse corrects the network's region there; no new question
    ys, xs = np.nonzero(gt)
    qtbot.mouseClick(
        c, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, pos=_widget_pos(c, xs.max() + 3, cy)
    )
    assert len(stub.asks) == 1
    corrected = tool.result.region.full(c.img_size)
    assert corrected.sum() < full.sum() and not corrected[round(cy), xs.max() + 3]
    n = len(entry.regions)
    qtbot.keyClick(c, Qt.Key.Key_Return)
    assert len(entry.regions) == n + 1
    window.undo()
    assert len(entry.regions) == n


def test_enter_before_the_networks_answer_adds_the_networks_region(qtbot, window, tmp_path):
    ml, tool, stub = _tool_with_stub(window, tmp_path)
    entry = window.current_entry()
    gt, (cx, cy) = _ellipse_of(entry)
    c = window.canvas
    n = len(entry.regions)
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx, cy))
    qtbot.keyClick(c, Qt.Key.Key_Return)
    assert len(entry.regions) == n  # waits: the region on screen is about to be replaced
    square = np.zeros_like(gt)
    square[20:90, 30:110] = True
    stub.answered.emit(stub.asks[0][0], _found(square))
    assert len(entry.regions) == n + 1  # the network's region, added when it came
    xs, ys = entry.regions[-1].shape["all_points_x"], entry.regions[-1].shape["all_points_y"]
    assert 28 <= min(xs) <= 32 and 108 <= max(xs) <= 112 and 18 <= min(ys) <= 22 and 88 <= max(ys) <= 92
    assert tool.result is None  # accepted: the tool starts afresh
    # Esc after Enter, before the answer: nothing is added
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx + 4, cy))
    qtbot.keyClick(c, Qt.Key.Key_Return)
    qtbot.keyClick(c, Qt.Key.Key_Escape)
    stub.answered.emit(stub.asks[1][0], _found(square))
    assert len(entry.regions) == n + 1


def test_resting_cursor_asks_the_network_so_the_preview_shows_its_region(qtbot, window, tmp_path):
    ml, tool, stub = _tool_with_stub(window, tmp_path)
    entry = window.current_entry()
    gt, (cx, cy) = _ellipse_of(entry)
    c = window.canvas
    pos = _widget_pos(c, cx, cy)
    qtbot.mouseMove(c, pos)
    qtbot.waitUntil(lambda: len(stub.asks) == 1, timeout=3000)
    tag, _, hover = stub.asks[0]
    assert hover
    square = np.zeros_like(gt)
    square[10:60, 10:60] = True  # an answer unlike anything the photo's colours give
    stub.answered.emit(tag, _found(square))
    assert tool._preview_path is not None
    r = tool._preview_path.boundingRect()
    assert 8 <= r.left() <= 12 and 58 <= r.right() <= 62
    # a click where the cursor rests takes that answer at once, asking nothing more
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=pos)
    assert len(stub.asks) == 1
    assert tool.result.region.source == "click network"
    assert (tool.result.region.full(c.img_size) == square).all()


def test_network_failure_turns_it_off_and_the_tool_keeps_working(qtbot, window, tmp_path):
    ml, tool, stub = _tool_with_stub(window, tmp_path)
    gt, (cx, cy) = _ellipse_of(window.current_entry())
    said = []
    window.canvas.message.connect(said.append)
    c = window.canvas
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=_widget_pos(c, cx, cy))
    stub.failed.emit(stub.asks[0][0], "clicknet_nomap.npz: cannot read the click network's weights")
    assert not tool.use_net
    assert any("click network is off" in t and "clicknet_nomap.npz" in t for t in said)
    # the next region comes from the photo as before, without asking
    tool.cancel()
    tool.add_click(cx, cy)
    assert len(stub.asks) == 1
    assert tool.result.region is not None and "network" not in tool.result.region.source


def test_the_shipped_click_network_answers_off_the_gui_thread(qtbot, window, tmp_path):
    """The real service: TensorFlow imported on the GUI thread, the network loaded and run on its own."""
    ml = _open(window, tmp_path, size=200, net=True)
    tool = ml.assist
    gt, (cx, cy) = _ellipse_of(window.current_entry())
    with qtbot.waitSignal(ml.clicknet.ready, timeout=120000):  # turning the tool on loads it beforehand
        ml.act_assist.trigger()
    with qtbot.waitSignal(ml.clicknet.answered, timeout=120000) as sig:
        tool.add_click(cx, cy)
    tag, found = sig.args
    assert tag == (tool.target_key(), tool.clicks[0])
    assert found.mask.shape == (512, 512) and found.mask.dtype == bool
    # whatever it found on this synthetic photo, the tool now holds the network's answer for the click
    assert (tool.target_key(), tool.clicks[0]) in tool._net_regions
    assert tool.result is not None


def test_clicknet_service_uses_the_chosen_weights_and_drops_answers_of_the_former_ones(qtbot):
    import threading

    from viaseg.gui.clicknet_service import ClickNetService

    loaded, gate = [], threading.Event()

    class Fake:
        def __init__(self, path):
            self.path = path

        def first_region(self, image, size_wh, x, y):
            gate.wait(10)
            return _found(np.ones((4, 4), bool))

    def loader(path):
        loaded.append(path)
        return Fake(path)

    svc = ClickNetService(loader=loader)
    try:
        img = np.zeros((40, 40, 3), np.uint8)
        gate.set()
        with qtbot.waitSignal(svc.answered, timeout=10000) as sig:
            svc.ask(("k", 1), img, (40, 40), 5, 5)
        assert sig.args[0] == ("k", 1) and loaded == [None]
        # a question in flight when the weights change: its answer is dropped, not delivered
        gate.clear()
        answered = []
        svc.answered.connect(lambda tag, _r: answered.append(tag))
        svc.ask(("k", 2), img, (40, 40), 6, 6)
        with qtbot.waitSignal(svc.weights_changed) as changed:
            svc.set_weights("/some/fine-tuned.npz")
        assert changed.args == ["/some/fine-tuned.npz"]
        with qtbot.waitSignal(svc.dropped, timeout=10000) as dropped:
            gate.set()
        assert dropped.args == [("k", 2)] and answered == []
        with qtbot.waitSignal(svc.answered, timeout=10000) as sig:
            svc.ask(("k", 3), img, (40, 40), 7, 7)
        assert sig.args[0] == ("k", 3) and loaded == [None, "/some/fine-tuned.npz"]
    finally:
        gate.set()
        svc.shutdown()


def test_chosen_click_network_weights_that_cannot_be_used_are_named(qtbot, window, tmp_path):
    ml = _open(window, tmp_path, size=200, net=True)
    said = []
    window.canvas.message.connect(said.append)
    notes = []
    window.notify = lambda text, error=False: notes.append((text, error))
    assert not ml.use_clicknet_weights(str(tmp_path / "absent.npz"))
    assert notes and "absent.npz" in notes[-1][0] and notes[-1][1]
    text = tmp_path / "text.npz"
    text.write_bytes(
        b"not weights"
    )  # refused at once: it was saved for the next session, then failed to load
    assert not ml.use_clicknet_weights(str(text))
    assert "text.npz is not a weights file" in notes[-1][0] and ml.clicknet.weights is None
    broken = tmp_path / "broken.npz"
    np.savez(
        broken, **{"dense_x/0": np.zeros(3, np.float16)}
    )  # weights, of another network: found on loading
    assert ml.use_clicknet_weights(str(broken))
    with qtbot.waitSignal(ml.clicknet.failed, timeout=120000):
        ml.act_assist.trigger()  # turning the tool on warms the network: the file is read then
    assert not ml.assist.use_net and not ml.act_clicknet.isChecked()
    assert any("click network is off" in t and "broken.npz" in t for t in said)
    assert any("broken.npz" in t and error for t, error in notes)
    gt, (cx, cy) = _ellipse_of(window.current_entry())
    assert ml.assist.add_click(cx, cy) is not None  # the tool keeps working without it
    ml._shipped_clicknet()  # Tools ▸ Click network ▸ Use the weights shipped with viaseg
    assert ml.clicknet.weights is None and ml.assist.use_net and ml.act_clicknet.isChecked()
    with qtbot.waitSignal(ml.clicknet.ready, timeout=120000):
        pass  # warmed again with the shipped weights


def test_fine_tuning_the_click_network_on_the_project_puts_its_weights_in_use(qtbot, window, tmp_path):
    ml = _open(window, tmp_path, size=200, net=True)
    ml.training.set_runs_root(tmp_path / "runs")
    notes = []
    window.notify = lambda text, error=False: notes.append((text, error))
    entry = window.current_entry()
    gt, (cx, cy) = _ellipse_of(entry)
    # an unsaved edit counts: a second region on this photo, not on disk
    from viaseg.core.annotation.project import Region

    extra = Region(shape={"name": "rect", "x": 5, "y": 5, "width": 30, "height": 20}, attributes={})
    window.canvas._push(
        __import__("viaseg.core.annotation.edits", fromlist=["AddRegions"]).AddRegions(entry, [extra])
    )
    th = ml.fine_tune_clicknet(steps=2, mode="thread")
    assert th is not None and "Stop" in ml.act_clicknet_tune.text()
    with qtbot.waitSignal(th.done, timeout=300000) as done:
        pass
    res = done.args[0]
    assert res is not None and res.steps == 2 and res.photos == 3 and res.regions == 4
    assert Path(res.path).is_file() and Path(res.path).parent == tmp_path / "runs"
    assert ml.clicknet.weights == res.path and ml.act_clicknet.isChecked()
    assert any("fine-tuned on 3 photos" in t for t, _ in notes)
    assert "Fine-tune" in ml.act_clicknet_tune.text()
    # the tool asks the fine-tuned network now
    ml.act_assist.trigger()
    with qtbot.waitSignal(ml.clicknet.answered, timeout=120000):
        ml.assist.add_click(cx, cy)


def test_fine_tuning_the_click_network_without_regions_says_so(qtbot, window, tmp_path):
    ml = _open(window, tmp_path, size=200)
    notes = []
    window.notify = lambda text, error=False: notes.append((text, error))
    real = ml.training_data

    def unlabelled():  # the project's annotations (a copy) with every region taken away
        ds = real()
        for sp in ds.splits.values():
            for e in sp.entries:
                e.regions.clear()
        return ds

    ml.training_data = unlabelled
    assert ml.fine_tune_clicknet(steps=1, mode="thread") is None
    assert notes[-1][1] and "no annotated region" in notes[-1][0]


def test_a_click_or_box_on_a_photo_that_cannot_be_read_says_why_and_keeps_nothing(qtbot, window, tmp_path):
    ml = _open(window, tmp_path, net=True)
    entry = window.current_entry()
    Path(entry.path).write_bytes(b"")  # the photo emptied on disk
    window.cache.clear()  # decoded before it was emptied
    window.show_row(1)
    window.show_row(0)  # shown again: the canvas says it cannot be read
    messages = []
    window.canvas.message.connect(messages.append)
    tool = ml.assist
    tool.set_active(True)
    assert tool.add_click(5, 5) is None and tool.clicks == []
    assert "nothing to segment" in messages[-1] and "empty file" in messages[-1]
    assert tool.set_box((1, 1, 9, 9)) is None and tool.box is None
    assert tool.accept() is None and len(entry.regions) == 1


def test_maps_of_the_old_model_are_dropped_when_another_is_made_active(window, tmp_path):
    """The tool kept up to 16 photos' maps of the model active when it met them, and went on using them after
    another model (Improve model, a run made active) took over."""
    ml = _open(window, tmp_path, size=120)
    tool = ml.assist
    key = tool.target_key()
    tool._maps[key] = np.zeros((8, 8), np.float32)  # as the old model's prediction left it
    tool._maps["another photo"] = np.zeros((8, 8), np.float32)
    ml.service.model_changed.emit(str(tmp_path / "other.keras"))
    assert key not in tool._maps and not tool._maps
