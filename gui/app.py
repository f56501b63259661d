"""Application entry: QApplication, settings (QSettings), the crash-safe exception hook, ``main(path)``."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import viaseg.core
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from viaseg.core.annotation import edits, journal

from .main_window import MainWindow

log = logging.getLogger("viaseg.gui")


def demo_path() -> Path | None:
    """``data/demo`` of the source checkout, when present."""
    p = Path(viaseg.core.__file__).resolve().parents[1] / "data" / "demo"
    return p if p.is_dir() else None


def make_settings() -> QSettings:
    """Settings live in the state dir (``VIASEG_STATE_DIR`` makes tests and scripts hermetic)."""
    path = journal.state_dir() / "settings.ini"
    return QSettings(str(path), QSettings.Format.IniFormat)


def setup_logging() -> Path | None:
    log_path = journal.state_dir() / "viaseg.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError:
        handler, log_path = logging.StreamHandler(), None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("viaseg")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return log_path


def install_excepthook(window: MainWindow) -> None:
    """An unexpected exception in a slot is logged and shown in the status bar; the app keeps running."""

    def hook(typ, value, tb):
        if issubclass(typ, KeyboardInterrupt):
            sys.__excepthook__(typ, value, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(typ, value, tb)))
        try:
            window.notify(
                f"internal error: {typ.__name__}: {value} (details in {journal.state_dir() / 'viaseg.log'})",
                True,
            )
        except RuntimeError:  # window already gone
            pass

    sys.excepthook = hook


def install_ml(w: MainWindow) -> None:
    """Training and prediction docks (``gui.ml_wiring``); the annotation app works without them."""
    try:
        from .ml_wiring import install
    except ImportError as exc:
        w.notify(f"training/prediction unavailable: {exc}", True)
        return
    try:
        install(w)
    except Exception as exc:  # annotation must stay usable
        log.exception("ml wiring failed")
        w.notify(f"training/prediction unavailable: {exc}", True)


def create_window(path: str | Path | None = None, restore: bool | None = None, ml: bool = True) -> MainWindow:
    """Build the main window and open ``path``, the last project, or the demo (in that order)."""
    settings = make_settings()
    w = MainWindow(settings)
    if ml:
        install_ml(w)
    state = settings.value("state")
    if state is not None:
        w.restoreState(state)  # dock layout of the last session
    geo = settings.value("geometry")
    if geo is not None:
        w.restoreGeometry(geo)
    target = path
    if target is None:
        last = settings.value("last")
        if last and Path(str(last)).exists():
            target = str(last)
        else:
            target = demo_path()
    if target is not None:
        w.open_path(target, restore=restore)
    else:
        w.notify("File → Open a VIA file or a dataset folder (or drop one on the window)")
    return w


def main(path: str | None = None) -> int:
    setup_logging()
    for folder in edits.sweep_undone_imports():  # copies of undone imports from a session that was killed
        log.info("deleted %s: an undone import of an ended session, which nothing can redo", folder)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("viaseg")
    app.setOrganizationName("viaseg")
    w = create_window(path)
    install_excepthook(w)
    w.show()
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
