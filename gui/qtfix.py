"""Work-around for reference-count bugs of some PySide6 builds (seen with 6.12.0 on CPython 3.11 here):
a call to a ``void`` Qt method (``label.setText``, ``widget.update``, ``timer.start``...) returns ``None``
without taking a reference, and ``SignalInstance.emit`` does the same with ``True``. Every such call drops
one reference to the singleton; after enough calls CPython frees ``None``/``True`` and aborts the app
("Fatal Python error: none_dealloc" / "bool_dealloc") - a training run that updates a progress bar per batch
gets there.

:func:`apply` probes both bugs once. When a probe loses references (CPython < 3.12 only: from 3.12 these
singletons are immortal and the probe sees nothing), it adds 2**40 references to ``None``, ``True`` and
``False`` - the singletons are never freed in a healthy process anyway, so this only emulates 3.12's
immortality. Idempotent; a no-op on fixed builds. Import it before the app starts (``viaseg.gui.workers``
does, so the ML docks apply it).
"""

from __future__ import annotations

import ctypes
import sys

_applied = False
_BUMP = 1 << 40


def _leaks() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal(int)

    p = _Probe()
    n0, t0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(16):
        p.setObjectName("probe")  # a void method
        p.sig.emit(1)
    return sys.getrefcount(None) - n0 <= -16 or sys.getrefcount(True) - t0 <= -16


def apply() -> bool:
    """Protect the singletons when this PySide6 leaks them; True when the protection is in place."""
    global _applied
    if _applied:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if not _leaks():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _BUMP  # ob_refcnt is a PyObject's first field
    _applied = True
    return True


apply()
