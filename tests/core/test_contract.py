"""core never imports Qt: import every viaseg.core module in a fresh interpreter and look at sys.modules."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import viaseg.core


def test_core_modules_do_not_import_pyside6():
    names = sorted(m.name for m in pkgutil.iter_modules(viaseg.core.__path__, "viaseg.core."))
    names = [n for n in names if not n.endswith("__main__")]
    assert "viaseg.core.project" in names
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'shiboken6'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"core pulled in Qt: {proc.stdout} {proc.stderr[-2000:]}"
