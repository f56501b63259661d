"""Menus, toolbar and keyboard shortcuts of the main window (labelme/VIA conventions)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QMessageBox, QSlider

KS = QKeySequence.StandardKey

SHORTCUTS = """Images: D / → next, A / ← previous, Home / End first / last
View: Ctrl+wheel zoom at the cursor, Ctrl+0 fit, Ctrl+1 100 %, wheel / middle-drag / Space+drag pan,
      T regions on/off, M mask view (what training sees)
Select: click inside a region, Tab / Shift+Tab cycle, Esc deselect
Edit: drag a region to move it, drag a vertex or handle; Alt+click or double-click an edge inserts a vertex;
      Alt+Shift+click, or Backspace/Delete on a selected vertex, deletes it (a polygon keeps 3)
Draw: N or Ctrl+N, click points, Backspace removes the last, Enter / double-click / first point closes,
      Esc cancels
AI region: I, click a damage (Shift/right click: not this, drag: box), Enter accepts, Esc cancels;
      + / - change an accepted AI region's detail
Regions: Delete deletes, Ctrl+C / Ctrl+V copy and paste (also to another image or viaseg window; the clipboard
      holds VIA region JSON), Ctrl+Shift+C copies all of the image's regions, Ctrl+D duplicates
Label next: L opens the unlabelled photo that best stands for those not labelled yet (Predict all orders them)
Images: Ctrl+Shift+Delete removes the shown image from its split's VIA file (the photo stays on disk)
Undo: Ctrl+Z, redo Ctrl+Shift+Z or Ctrl+Y (a whole drag is one step; works across images)
File: Ctrl+S save, Ctrl+Shift+S save as, Ctrl+O open file, Ctrl+Shift+O open folder"""


def shortcuts_html(text: str = SHORTCUTS) -> str:
    """The shortcut list as a two-column HTML table (what, keys): easier to scan than the plain block."""
    import html

    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith(" ") and rows:
            rows[-1][1] += " " + line.strip()
        elif ":" in line:
            what, keys = line.split(":", 1)
            rows.append([what.strip(), keys.strip()])
    cells = "".join(
        f"<tr><td style='padding:3px 12px 3px 0'><b>{html.escape(a)}</b></td>"
        f"<td style='padding:3px 0'>{html.escape(b)}</td></tr>"
        for a, b in rows
    )
    return f"<table>{cells}</table>"


def _show_shortcuts(w) -> None:
    box = QMessageBox(w)
    box.setWindowTitle("Keyboard shortcuts")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(shortcuts_html())
    box.exec()


def _act(w, menu, text, slot, keys=(), checkable=False, checked=False, tip=""):
    a = QAction(text, w)
    if keys:
        a.setShortcuts([k if isinstance(k, QKeySequence) else QKeySequence(k) for k in keys])
    a.setCheckable(checkable)
    if checkable:
        a.setChecked(checked)
        a.toggled.connect(slot)
    else:
        a.triggered.connect(lambda _=False: slot())
    if tip:
        a.setToolTip(tip)
    a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    menu.addAction(a)
    w.addAction(a)
    return a


def _open_file(w) -> None:
    path, _ = QFileDialog.getOpenFileName(w, "Open VIA file", "", "VIA files (*.json *.csv);;All files (*)")
    if path:
        w.open_path(path)


def _open_folder(w) -> None:
    path = QFileDialog.getExistingDirectory(w, "Open dataset folder")
    if path:
        w.open_path(path)


def install(w) -> None:
    """The menus (in menu-bar order), the right-click menus and the View toolbar of main window ``w``."""
    _file_menu(w)
    _edit_menu(w)
    _context_menus(w)
    _view_menu(w)
    _go_menu(w)
    _help_menu(w)
    _view_toolbar(w)
    refresh_recent(w)


def _file_menu(w) -> None:
    f = w.menuBar().addMenu("&File")
    _act(w, f, "&Open file…", lambda: _open_file(w), [KS.Open])
    _act(w, f, "Open &folder…", lambda: _open_folder(w), ["Ctrl+Shift+O"])
    w.recent_menu = f.addMenu("Open &recent")
    f.addSeparator()
    w.act_save = _act(w, f, "&Save", w.save, [KS.Save])
    _act(w, f, "Save &as…", lambda: w.save_as(), ["Ctrl+Shift+S"])
    f.addSeparator()
    _act(w, f, "&Quit", w.close, [KS.Quit])


def _edit_menu(w) -> None:
    """Undo/redo and the region and image edits; the right-click menus reuse these actions."""
    c = w.canvas
    e = w.menuBar().addMenu("&Edit")
    w.act_undo = _act(w, e, "&Undo", w.undo, ["Ctrl+Z"])
    w.act_redo = _act(w, e, "&Redo", w.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
    e.addSeparator()
    w.act_new_polygon = _act(w, e, "&New polygon", c.start_drawing, ["N", "Ctrl+N"])
    w.act_copy = _act(w, e, "&Copy region", w.copy_regions, ["Ctrl+C"])
    w.act_copy_all = _act(
        w, e, "Copy &all regions of the image", lambda: w.copy_regions(whole_image=True), ["Ctrl+Shift+C"]
    )
    w.act_paste = _act(w, e, "&Paste regions", w.paste_regions, ["Ctrl+V"])
    w.act_duplicate = _act(w, e, "&Duplicate region", w.duplicate_region, ["Ctrl+D"])
    w.act_delete_region = _act(
        w,
        e,
        "Delete region",
        c.delete_selected_region,
        ["Ctrl+Delete"],
        tip="Delete (with the canvas focused) deletes the selected vertex or region",
    )
    _act(w, e, "Next region", lambda: c.cycle_selection(1), [])
    e.addSeparator()
    w.act_remove_image = _act(
        w,
        e,
        "Remove &image from project",
        w.remove_image,
        ["Ctrl+Shift+Delete"],
        tip="Take the shown image out of its split's VIA file; the photo stays on disk (undo brings it back)",
    )


def _context_menus(w) -> None:
    """Right clicks on the canvas and the image list open :func:`canvas_menu` and :func:`image_menu`."""
    c = w.canvas
    c.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    c.customContextMenuRequested.connect(lambda pos: canvas_menu(w, pos).exec(c.mapToGlobal(pos)))
    view = w.image_list.view
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    view.customContextMenuRequested.connect(
        lambda pos: image_menu(w, pos).exec(view.viewport().mapToGlobal(pos))
    )


def _view_menu(w) -> None:
    c = w.canvas
    v = w.menuBar().addMenu("&View")
    _act(w, v, "&Fit to window", c.fit, ["Ctrl+0"])
    _act(w, v, "&100 %", lambda: c.zoom_to(1.0), ["Ctrl+1"])
    _act(w, v, "Zoom &in", lambda: c.zoom_to(c.scale * 1.25), [KS.ZoomIn, "Ctrl+="])
    _act(w, v, "Zoom &out", lambda: c.zoom_to(c.scale / 1.25), [KS.ZoomOut])
    w.act_overlay = _act(w, v, "Show &regions", c.set_overlay_visible, ["T"], checkable=True, checked=True)
    w.act_mask = _act(w, v, "&Mask view (what training sees)", c.set_mask_view, ["M"], checkable=True)
    v.addSeparator()
    for dock in (w.dock_images, w.dock_attributes, w.dock_problems):
        v.addAction(dock.toggleViewAction())


def _go_menu(w) -> None:
    g = w.menuBar().addMenu("&Go")
    _act(w, g, "&Next image", lambda: w.step(1), ["D", "Right"])
    _act(w, g, "&Previous image", lambda: w.step(-1), ["A", "Left"])
    _act(w, g, "&First image", lambda: w.step(-(10**9)), ["Home"])
    _act(w, g, "&Last image", lambda: w.step(10**9), ["End"])


def _help_menu(w) -> None:
    h = w.menuBar().addMenu("&Help")
    _act(w, h, "&Keyboard shortcuts", lambda: _show_shortcuts(w), ["F1"])


def _view_toolbar(w) -> None:
    """The View toolbar: the region and mask toggles of the View menu, and the overlay opacity."""
    c = w.canvas
    tb = w.addToolBar("View")
    tb.setObjectName("toolbar_view")
    tb.addAction(w.act_overlay)
    tb.addAction(w.act_mask)
    tb.addWidget(QLabel(" opacity "))
    w.opacity_slider = QSlider(Qt.Orientation.Horizontal)
    w.opacity_slider.setRange(0, 100)
    w.opacity_slider.setValue(int(c.opacity * 100))
    w.opacity_slider.setMaximumWidth(140)
    w.opacity_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    w.opacity_slider.valueChanged.connect(lambda val: c.set_opacity(val / 100.0))
    tb.addWidget(w.opacity_slider)


def _item(menu: QMenu, action: QAction, enabled: bool = True) -> QAction:
    """A menu entry that triggers the window's ``action`` (its shortcut shown), enabled for this menu only."""
    keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    item = menu.addAction(action.text() + (f"\t{keys}" if keys else ""))
    item.triggered.connect(action.trigger)
    item.setEnabled(enabled)
    return item


def canvas_menu(w, pos: QPoint) -> QMenu:
    """The canvas's right-click menu: a right click on a region selects it first, as in labelme."""
    c = w.canvas
    if c.drawing is None and c.entry is not None:
        hit = c.region_at(QPointF(pos))
        if hit >= 0:
            c.select(hit)
    selected = c.selected_region() is not None
    menu = QMenu(c)
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    for a in (w.act_copy, w.act_duplicate, w.act_delete_region):
        _item(menu, a, selected)
    menu.addSeparator()
    for a in (w.act_copy_all, w.act_paste, w.act_new_polygon):
        _item(menu, a, c.entry is not None)
    menu.addSeparator()
    _item(menu, w.act_remove_image, c.entry is not None)
    return menu


def image_menu(w, pos: QPoint) -> QMenu:
    """The image list's right-click menu, for the image under the cursor (shown first, as a click does)."""
    view = w.image_list.view
    index = view.indexAt(pos)
    if index.isValid():
        view.setCurrentIndex(index)
    menu = QMenu(view)
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    _item(menu, w.act_remove_image, w.current_entry() is not None)
    return menu


def refresh_recent(w) -> None:
    menu = w.recent_menu
    menu.clear()
    recent = list(w.settings.value("recent", []) or []) if w.settings is not None else []
    if isinstance(recent, str):
        recent = [recent]
    for p in recent:
        a = menu.addAction(str(Path(p)))
        a.triggered.connect(lambda _=False, p=p: w.open_path(p))
    menu.setEnabled(bool(recent))


def remember_recent(w, path: Path) -> None:
    """Put ``path`` first in the recent list (10 kept) and remember it as the last project."""
    if w.settings is None:
        return
    p = str(path.resolve())
    stored = w.settings.value("recent", []) or []
    stored = [stored] if isinstance(stored, str) else list(stored)  # INI gives a str for a one-item list
    w.settings.setValue("recent", [p] + [r for r in stored if r != p][:9])
    w.settings.setValue("last", p)
    refresh_recent(w)
