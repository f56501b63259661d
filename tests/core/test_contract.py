"""core never imports Qt: import every viaseg.core module in a fresh interpreter and look at sys.modules."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import viaseg.core


def test_core_modules_do_not_import_pyside6():
    names = sorted(m.name for m in pkgutil.walk_packages(viaseg.core.__path__, "viaseg.core."))
    names = [n for n in names if not n.endswith("__main__")]
    assert {"viaseg.core.annotation.project", "viaseg.core.ml.train", "viaseg.core.cli.train_cmd"} <= set(
        names
    )
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'shiboken6'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"core pulled in Qt: {proc.stdout} {proc.stderr[-2000:]}"


def _lint(*adds: str) -> subprocess.CompletedProcess:
    import shutil as _sh

    if (
        _sh.which("lint-imports", path=str(Path(sys.executable).parent)) is None
        and _sh.which("lint-imports") is None
    ):
        pytest.skip("import-linter is not installed (it comes with the test extras: ./setup.sh test)")
    script = Path(__file__).resolve().parents[2] / "scripts" / "lint_imports.py"
    cmd = [sys.executable, str(script)] + [a for spec in adds for a in ("--add", spec)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_the_layer_contracts_hold_and_each_fails_when_broken(tmp_path):
    ok = _lint()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 broken" in ok.stdout
    qt = _lint("viaseg.core.zz_bad=import PySide6.QtCore")
    assert qt.returncode != 0 and "viaseg.core is not allowed to import PySide6" in qt.stdout
    gui = _lint("viaseg.core.zz_bad=def f():\\n    from viaseg.gui import app\\n")  # hidden in a function
    assert gui.returncode != 0 and "not allowed to import viaseg.gui" in gui.stdout
    real = Path(__file__).resolve().parents[2] / "core" / "annotation" / "formats" / "via_json.py"
    late = tmp_path / "via_json.py"
    late.write_text(real.read_text() + "\n\ndef _late():\n    import tensorflow\n")
    before = real.read_text()
    tf = _lint(f"viaseg.core.annotation.formats.via_json=@{late}")
    assert real.read_text() == before  # the real module is untouched
    assert tf.returncode != 0 and "viaseg.core.annotation.formats.via_json -> tensorflow" in tf.stdout
    # the layers: a lower layer importing a higher one (annotation -> ml, checks -> cli), even inside a function
    up = _lint("viaseg.core.annotation.zz_bad=def f():\\n    from viaseg.core.ml import train\\n")
    assert (
        up.returncode != 0 and "viaseg.core.annotation is not allowed to import viaseg.core.ml:" in up.stdout
    )
    cmd = _lint("viaseg.core.checks.zz_bad=from viaseg.core.cli import check_cmd\\n")
    assert (
        cmd.returncode != 0 and "viaseg.core.checks is not allowed to import viaseg.core.cli:" in cmd.stdout
    )
    # ml and assist are independent of each other
    side = _lint("viaseg.core.assist.zz_bad=from viaseg.core.ml import unet\\n")
    assert (
        side.returncode != 0 and "viaseg.core.assist is not allowed to import viaseg.core.ml:" in side.stdout
    )
