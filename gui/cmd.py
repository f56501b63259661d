"""``viaseg gui [PATH]``: open the desktop app (``viaseg`` with no arguments does the same).

It lives in ``viaseg.gui`` because it starts the GUI (``viaseg.core`` never imports it); PySide6 is imported
only inside :func:`run`, so ``viaseg check`` and every other subcommand work without PySide6 or a display.
"""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gui",
        help="open the desktop app (the default command)",
        description="Open the viaseg desktop app on a VIA file or a dataset folder. Without PATH it opens "
        "the last project, or the demo project the first time.",
    )
    p.add_argument("path", nargs="?", help="a VIA file (.json/.csv) or a dataset folder")
    p.set_defaults(func=run)


def _display_problem() -> str | None:
    if sys.platform.startswith("linux"):
        platform = os.environ.get("QT_QPA_PLATFORM", "")
        if not platform and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            return (
                "no display: DISPLAY/WAYLAND_DISPLAY is not set. Run it inside a desktop session, "
                "under `xvfb-run -a viaseg gui ...`, or set QT_QPA_PLATFORM=offscreen"
            )
    return None


def run(args: argparse.Namespace) -> int:
    problem = _display_problem()
    if problem:
        print(f"viaseg gui: {problem}", file=sys.stderr)
        return 2
    try:
        from viaseg.gui.app import main as gui_main
    except ImportError as exc:
        print(
            f"viaseg gui: the desktop app needs PySide6 ({exc}). Install it with "
            "`pip install PySide6-Essentials` (or run setup.sh).",
            file=sys.stderr,
        )
        return 2
    return int(gui_main(args.path) or 0)
