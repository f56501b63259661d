"""Check viaseg's layer rules (``[tool.importlinter]`` in pyproject.toml) with import-linter.

The installed package maps ``viaseg.core`` -> ``core/`` and ``viaseg.gui`` -> ``gui/`` (setuptools
package-dir), which import-linter cannot follow, so this lays the same package out in a temporary folder of
links to the real files and runs ``lint-imports`` there. ``--add MODULE=SOURCE`` adds a module to that tree only
(the contract tests use it to prove a rule fails when broken). Exit status: lint-imports'.

    python scripts/lint_imports.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYOUT = {"viaseg": REPO / "viaseg_pkg", "viaseg/core": REPO / "core", "viaseg/gui": REPO / "gui"}


def build_tree(root: Path) -> None:
    for pkg, src in LAYOUT.items():
        dst = root / pkg
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.rglob("*.py"):
            if "__pycache__" in f.parts:
                continue
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(f, target)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="MODULE=SOURCE",
        help="add (or replace) a module (dotted name under viaseg) in the checked tree only: its source, "
        "with \\n for new lines, or @FILE",
    )
    args = ap.parse_args(argv)
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        print("lint_imports: lint-imports is not installed (pip install import-linter)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="viaseg-lint-") as tmp:
        root = Path(tmp)
        build_tree(root)
        for spec in args.add:
            name, _, source = spec.partition("=")
            path = root / Path(*name.split(".")).with_suffix(".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                path.unlink()  # replace the link, never the real file behind it
            text = Path(source[1:]).read_text() if source.startswith("@") else source.replace("\\n", "\n")
            path.write_text(text)
        env = dict(os.environ, PYTHONPATH=str(root))
        return subprocess.call([exe, str(REPO / "pyproject.toml"), "--no-cache"], cwd=root, env=env)


if __name__ == "__main__":
    sys.exit(main())
