"""Guard against a PySide6 reference-count bug on CPython < 3.12.

PySide6 6.12 (shiboken) returns ``None`` (and sometimes ``True``/``False``) from wrapped calls without taking a
reference, as if they were immortal (they are only from Python 3.12, PEP 683). On Python 3.11 every such call
lowers the count of ``None`` by one: a repaint costs ~17, so after some minutes of use, or at interpreter exit,
CPython aborts with ``Fatal Python error: none_dealloc``. Measured here: ``QWidget.setMinimumWidth`` x1000 ->
``sys.getrefcount(None)`` drops by 1000.

Workaround: a daemon thread checks the counts of ``None``, ``True`` and ``False`` every half second and, when
one falls under a floor, adds a large margin directly to its ``ob_refcnt`` (these singletons are never freed,
so an over-count is harmless). Nothing is done on Python >= 3.12 or other interpreters. The real fix is
Python >= 3.12 or a PySide6 without the bug.
"""

from __future__ import annotations

import ctypes
import platform
import sys
import threading
import time

FLOOR = 1 << 20
MARGIN = 1 << 26
_started = False


def needed() -> bool:
    return sys.version_info < (3, 12) and platform.python_implementation() == "CPython"


def top_up() -> int:
    """Raise the counts that fell under FLOOR; returns how many were raised."""
    raised = 0
    for obj in (None, True, False):
        if sys.getrefcount(obj) < FLOOR:
            ctypes.c_ssize_t.from_address(id(obj)).value += MARGIN  # ob_refcnt is the first field
            raised += 1
    return raised


def _loop() -> None:
    while True:
        top_up()
        time.sleep(0.5)


def start() -> None:
    global _started
    if _started or not needed():
        return
    _started = True
    top_up()
    threading.Thread(target=_loop, name="viaseg-refguard", daemon=True).start()
