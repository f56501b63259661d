"""Type-check ``viaseg.core`` with mypy (``[tool.mypy]`` in pyproject.toml), as ``./setup.sh test`` does.

The installed package maps ``viaseg.core`` -> ``core/`` (setuptools package-dir), which mypy cannot follow, so
this lays the package out as links to the real files in a temporary folder (the same tree
``scripts/lint_imports.py`` checks) and runs ``mypy -p viaseg.core`` there. Exit status: mypy's.

    python scripts/typecheck.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lint_imports import REPO, build_tree  # a sibling script, not a package


def main() -> int:
    exe = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    if exe is None:
        print(
            "typecheck: mypy is not installed (pip install mypy; it comes with ./setup.sh test)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="viaseg-mypy-") as tmp:
        build_tree(Path(tmp))
        return subprocess.call(
            [exe, "--config-file", str(REPO / "pyproject.toml"), "-p", "viaseg.core"], cwd=tmp
        )


if __name__ == "__main__":
    sys.exit(main())
