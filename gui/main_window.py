"""Main window: wires the session and the panels together (no editing logic lives here).

Opening, saving, closing and drops are in ``main_window_files`` (a base class); menus and shortcuts in
``actions``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from PySide6.QtCore import QMimeData, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMenu, QMessageBox, QSlider
from viaseg.core.annotation import edits
from viaseg.core.annotation.formats.via_json import regions_from_json, regions_to_json
from viaseg.core.annotation.project import class_attribute
from viaseg.core.base.errors import ImageReadError, ViasegError

from . import actions
from .attributes_panel import AttributesPanel
from .canvas import Canvas
from .docks import Banner, add_dock, with_banner
from .image_cache import ImageCache, frame_for_regions
from .image_list import ImageList
from .main_window_files import CANNOT_SHOW, DECODE_CHECK_LIMIT, VIA_SUFFIXES, FileFlowsMixin
from .problem_links import ProblemLinks
from .problems_panel import ProblemsPanel
from .session import Session
from .text_keys import keep_editing_keys_within

log = logging.getLogger(__name__)
REGIONS_MIME = "application/x-viaseg-regions+json"  # the clipboard's own copy of VIA region JSON
__all__ = ["DECODE_CHECK_LIMIT", "REGIONS_MIME", "VIA_SUFFIXES", "MainWindow"]


class MainWindow(FileFlowsMixin, QMainWindow):
    # what actions.install adds (menus, toolbar): declared here so the rest of the app reads them as typed
    # attributes of the window, never by name
    act_save: QAction
    act_undo: QAction
    act_redo: QAction
    act_copy: QAction
    act_copy_all: QAction
    act_paste: QAction
    act_duplicate: QAction
    act_delete_region: QAction
    act_remove_image: QAction
    act_new_polygon: QAction
    act_overlay: QAction
    act_mask: QAction
    opacity_slider: QSlider
    recent_menu: QMenu

    image_shown = Signal()  # after another project image or outside photo is shown (readable or not)

    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings
        self.session = Session(self)
        self.cache = ImageCache(parent=self)
        self.canvas = Canvas(self)
        self.image_list = ImageList(self.session, self)
        self.attributes = AttributesPanel(self)
        self.problems = ProblemsPanel(self)
        self.current = -1
        self.class_attr: str | None = None
        self.last_class = None
        self.external_path: Path | None = None
        self.ask = self._ask  # (title, text, buttons) -> button; replaced in tests
        self.banner = Banner()
        self.setCentralWidget(with_banner(self.banner, self.canvas))
        self.setAcceptDrops(True)
        self.resize(1500, 950)
        self._docks()
        self._status_bar()
        self.canvas.pusher = self.session.push
        self.canvas.end_drag = self.session.end_drag
        self.canvas.default_attributes = self._new_region_attributes
        self.attributes.pusher = self.session.push
        self.attributes.projects_fn = self.session.projects
        self._timers()
        self._connect()
        actions.install(self)
        keep_editing_keys_within(self)  # Ctrl+D, Ctrl+N... stay with whichever text field has the focus
        self._update_title()

    # ------------------------------------------------------------------------------------------- layout
    def _docks(self) -> None:
        # side docks run full height; the problems dock sits under the canvas only (tall side panels do not
        # squeeze it)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock_images = add_dock(self, "Images", self.image_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.dock_attributes = add_dock(
            self, "Attributes", self.attributes, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.dock_problems = add_dock(self, "Problems", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.dock_images], [330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.dock_problems], [210], Qt.Orientation.Vertical)

    def _status_bar(self) -> None:
        sb = self.statusBar()
        self.lbl_size, self.lbl_zoom, self.lbl_pos, self.lbl_regions = (QLabel() for _ in range(4))
        for lbl in (self.lbl_regions, self.lbl_pos, self.lbl_size, self.lbl_zoom):
            sb.addPermanentWidget(lbl)

    def _timers(self) -> None:
        self.journal_timer = QTimer(self, singleShot=True, interval=2000)
        self.journal_timer.timeout.connect(self.write_journal)
        self.recheck_timer = QTimer(self, singleShot=True, interval=600)
        self.recheck_timer.timeout.connect(lambda: self.problem_links.recheck_current())
        # an image added or removed: leaks and duplicates between images can change, so the whole check runs
        self.full_check_timer = QTimer(self, singleShot=True, interval=1500)
        self.full_check_timer.timeout.connect(self.run_full_check)

    def _connect(self) -> None:
        s = self.session
        s.changed.connect(self._on_changed)
        s.rows_changed.connect(self._on_rows_changed)
        s.dirty_changed.connect(lambda _d: self._on_dirty())
        self.image_list.activated.connect(self.show_row)
        self.canvas.selection_changed.connect(self._on_selection)
        self.canvas.cursor_moved.connect(self._on_cursor)
        self.canvas.view_changed.connect(self._on_view)
        self.canvas.message.connect(self.notify)
        self.canvas.drawing_changed.connect(self._on_drawing_changed)
        self.attributes.edited.connect(self.canvas.refresh)
        self.attributes.message.connect(self.notify)
        self.problem_links = ProblemLinks(self)
        self.cache.loaded.connect(self._on_background_image)

    # ---------------------------------------------------------------------------------------- messages
    def notify(self, text: str, error: bool = False) -> None:
        """Non-blocking message in the status bar (errors stay longer and are logged)."""
        (log.warning if error else log.info)("%s", text)
        self.statusBar().showMessage(text, 15000 if error else 6000)

    def open_failed(self, text: str) -> None:
        """A file that cannot be opened: said in a banner over the canvas (where the user looks; it stays
        until closed or the next project opens) as well as in the status bar and the log."""
        self.notify(text, True)
        self.banner.show_message(text)

    def _on_drawing_changed(self, drawing: bool) -> None:
        """The drawing prompt goes when the polygon is finished or cancelled (it is not news any more)."""
        if not drawing and self.statusBar().currentMessage().startswith("Draw:"):
            self.statusBar().clearMessage()

    def _ask(self, title: str, text: str, buttons):
        return QMessageBox.question(self, title, text, buttons)

    def _update_title(self) -> None:
        self.setWindowTitle(self.session.display_title())

    # ----------------------------------------------------------------------------------------- images
    def current_entry(self):
        return self.session.rows[self.current].entry if 0 <= self.current < len(self.session.rows) else None

    def show_row(self, row: int) -> None:
        if not 0 <= row < len(self.session.rows):
            return
        if self.canvas.drawing is not None:
            self.canvas.cancel_drawing()
        self.current = row
        self.external_path = None
        self.clear_cannot_show()
        entry = self.session.rows[row].entry
        self.class_attr = class_attribute(self.session.attributes(entry), entry.regions)
        attr = self.class_attr
        self.canvas.class_of = (lambda r: r.attributes.get(attr, "")) if attr else (lambda r: "")
        qimage, size, msg = None, None, ""
        try:
            d = self.cache.get(str(entry.path))
            qimage, size = d.qimage, d.size
        except ImageReadError as exc:
            msg = str(exc)
            self.notify(f"{CANNOT_SHOW}{exc}", True)
            size = frame_for_regions(entry)
        self.canvas.set_entry(entry, qimage, size, placeholder=msg)
        self.image_list.set_current(row)
        self.attributes.set_definitions(self.session.attributes(entry))
        self.attributes.show_for(entry, None)
        self.lbl_size.setText(f"{size[0]}×{size[1]}" if size else "no image")
        self._update_region_label()
        nxt = [self.image_list.neighbour(row, s) for s in (1, -1, 2)]
        self.cache.prefetch([self.session.rows[r].entry.path for r in nxt if r >= 0 and r != row])
        self.image_shown.emit()

    def _on_background_image(self, d) -> None:
        e = self.current_entry()
        if e is not None and str(e.path) == d.path and self.canvas.qimage is not None and d.full:
            self.canvas.replace_image(d.qimage)

    def step(self, n: int) -> None:
        r = self.image_list.neighbour(self.current, n)
        if r >= 0:
            self.show_row(r)

    # ---------------------------------------------------------------------------------------- editing
    def _on_changed(self, entry) -> None:
        row = self.session.row_of(entry) if entry is not None else -1
        if entry is not None and entry is not self.current_entry() and row >= 0:
            self.show_row(row)  # an undo/redo of another image: go there
        elif entry is self.current_entry() and self.canvas.dragging():
            pass  # the canvas updates the dragged region itself; a full refresh per mouse move is waste
        elif entry is self.current_entry():
            self.canvas.refresh()
            self.attributes.show_for(entry, self.canvas.selected_region())
        self.image_list.entry_changed(row)
        self._update_region_label()
        self.journal_timer.start()
        self.recheck_timer.start()

    def run_full_check(self) -> None:
        # decoding every image of a big dataset costs minutes of CPU: check headers only, Re-check decodes
        self.problems.run_check(self.session.dataset, decode=len(self.session.rows) <= DECODE_CHECK_LIMIT)

    def _on_rows_changed(self) -> None:
        """An image was added or removed (or brought back by undo): the rows were re-indexed."""
        self.image_list.model.reset()
        shown = self.canvas.entry
        row = self.session.row_of(shown) if shown is not None else -1
        if row >= 0:
            self.current = row
            self.image_list.set_current(row)
        elif self.external_path is None and self.session.rows:
            self.show_row(min(max(self.current, 0), len(self.session.rows) - 1))
        elif not self.session.rows:
            self.current = -1
            self.canvas.set_entry(None, None, None, placeholder="this project has no images")
        self.full_check_timer.start()

    def remove_image(self) -> bool:
        """Take the shown image out of its split's VIA file (undoable; the photo stays on disk, as in VIA)."""
        e = self.current_entry()
        if e is None:
            self.notify("no image to remove")
            return False
        sp = self.session.split_of(e)
        if sp is None or sp.project is None:
            self.notify(
                f"{e.filename}: split {sp.name if sp else '?'!r} is a folder of photos without a VIA "
                "file: there is nothing to remove it from",
                True,
            )
            return False
        self.session.push(edits.RemoveImage(e, self.session.image_lists(sp)))
        self.notify(f"removed {e.filename} from {sp.name} (the photo stays on disk; Ctrl+Z brings it back)")
        return True

    def _on_dirty(self) -> None:
        e = self.current_entry()
        if self.canvas.dragging() and e is not None and id(e) in self.image_list.model.dirty:
            return  # mid-drag: nothing new to mark (keeps a mouse move O(1) however long the history)
        self.image_list.set_dirty(self.session.dirty_entry_ids())
        self._update_title()

    def undo(self) -> None:
        if self.canvas.drawing is not None:
            self.canvas.cancel_drawing()
            return
        if self.session.undo() is None:
            self.notify("nothing to undo")

    def redo(self) -> None:
        try:
            cmd = self.session.redo()
        except edits.EditError as exc:  # e.g. an import whose file name was taken meanwhile
            self.notify(str(exc), True)
            return
        if cmd is None:
            self.notify("nothing to redo")

    def _new_region_attributes(self) -> dict:
        if self.class_attr and self.last_class not in (None, ""):
            return {self.class_attr: self.last_class}
        e = self.current_entry()
        if self.class_attr:
            for row in ([e] if e else []) + [r.entry for r in self.session.rows[:200]]:
                for r in row.regions:
                    v = r.attributes.get(self.class_attr)
                    if v not in (None, ""):
                        return {self.class_attr: v}
        return {}

    def _on_selection(self, index: int) -> None:
        region = self.canvas.selected_region()
        if region is not None and self.class_attr:
            self.last_class = region.attributes.get(self.class_attr, self.last_class)
        self.attributes.show_for(self.current_entry(), region)

    def copy_regions(self, whole_image: bool = False) -> None:
        """Copy the selected region (``whole_image``: all of the image's) to the system clipboard, as VIA region
        JSON: it pastes into another image, another viaseg window, or a text editor."""
        e = self.current_entry()
        if whole_image:
            regions = list(e.regions) if e is not None else []
            if not regions:
                self.notify("this image has no regions to copy")
                return
        else:
            r = self.canvas.selected_region()
            if r is None:
                self.notify("select a region to copy (Ctrl+Shift+C copies all of the image's regions)")
                return
            regions = [r]
        text = regions_to_json(regions)
        md = QMimeData()
        md.setData(REGIONS_MIME, text.encode("utf-8"))
        md.setText(text)
        QApplication.clipboard().setMimeData(md)
        self.notify(f"{len(regions)} region{'s' if len(regions) != 1 else ''} copied")

    def paste_regions(self) -> None:
        e = self.current_entry()
        if e is None:
            self.notify("no image")
            return
        md = QApplication.clipboard().mimeData()
        if md is not None and md.hasFormat(REGIONS_MIME):
            text = bytes(md.data(REGIONS_MIME)).decode("utf-8", "replace")
        elif md is not None and md.hasText() and md.text().lstrip()[:1] in ("[", "{"):
            text = md.text()  # VIA region JSON copied from a text editor or another tool
        else:
            self.notify("the clipboard holds no regions (select one and press Ctrl+C)")
            return
        try:
            regions = regions_from_json(text)
        except ViasegError as exc:
            self.notify(f"cannot paste: {exc}", True)
            return
        if not regions:
            self.notify("the clipboard holds no regions")
            return
        self.session.push(edits.AddRegions(e, regions))
        self.canvas.select(len(e.regions) - 1)
        text = f"pasted {len(regions)} region{'s' if len(regions) != 1 else ''}"
        flawed = _shape_issues(regions)
        if flawed:  # pasted JSON from elsewhere: a 2-point polygon or an unknown shape shows as nothing
            k, message = flawed[0]
            self.canvas.select(e.regions.index(regions[k]))
            more = f" (and {len(flawed) - 1} more)" if len(flawed) > 1 else ""
            self.notify(f"{text}; pasted region {k + 1}: {message}{more}; Ctrl+Z takes the paste back", True)
            return
        outside = self._outside_photo(regions)
        if outside:
            w, h = self.canvas.img_size
            self.canvas.select(e.regions.index(outside[0]))
            self.notify(
                f"{text}; {len(outside)} reach outside this {w}×{h} photo (the first is selected): move "
                "or trim them, or Ctrl+Z",
                True,
            )
            return
        self.notify(text)

    def _outside_photo(self, regions) -> list:
        """The regions with a point outside the shown photo (e.g. pasted from a larger or rotated one)."""
        from viaseg.core.annotation.raster import shape_polygon

        w, h = self.canvas.img_size
        out = []
        for r in regions:
            pts = shape_polygon(r)
            if (
                pts is not None
                and len(pts)
                and (pts[:, 0].min() < 0 or pts[:, 1].min() < 0 or pts[:, 0].max() > w or pts[:, 1].max() > h)
            ):
                out.append(r)
        return out

    def duplicate_region(self) -> None:
        e, r = self.current_entry(), self.canvas.selected_region()
        if r is None:
            self.notify("select a region to duplicate")
            return
        c = r.clone()
        c.shape.update(edits.translated(c.shape, 10, 10))
        self.session.push(edits.AddRegions(e, [c]))
        self.canvas.select(len(e.regions) - 1)

    # ------------------------------------------------------------------------------------------ status
    def _update_region_label(self) -> None:
        e = self.current_entry()
        n = len(e.regions) if e is not None else 0
        self.lbl_regions.setText(f"{n} region{'' if n == 1 else 's'}" if e is not None else "")

    def _on_cursor(self, x: float, y: float) -> None:
        self.lbl_pos.setText("" if math.isnan(x) else f"x {int(x)}, y {int(y)}")

    def _on_view(self) -> None:
        pct = self.canvas.scale * 100
        self.lbl_zoom.setText(f"{pct:.0f} %" if pct >= 10 else f"{pct:.2g} %")  # not "0 %" far out
        e = self.current_entry()
        if e is not None and self.canvas.needs_full_resolution():
            self.cache.request_full(str(e.path))


def _shape_issues(regions) -> list[tuple[int, str]]:
    """``(index, message)`` of the regions whose shape the checks find degenerate or unsupported."""
    from viaseg.core.checks.check_geometry import analyze_shapes

    _boxes, issues = analyze_shapes([r.shape for r in regions])
    return [(i, found[0].message) for i, found in sorted(issues.items()) if found]
