"""``viaseg`` command line. Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds an argparse parser and sets ``func(args) -> int`` as its default. Modules are imported lazily
enough that ``viaseg check`` never pays for TensorFlow."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module defining register(subparsers)
COMMANDS = {
    "gui": "viaseg.gui.cmd",  # the one command that may import the GUI: it lives with it
    "check": "viaseg.core.cli.check_cmd",
    "convert": "viaseg.core.cli.convert_cmd",
    "masks": "viaseg.core.cli.masks_cmd",
    "train": "viaseg.core.cli.train_cmd",
    "predict": "viaseg.core.cli.predict_cmd",
    "evaluate": "viaseg.core.cli.evaluate_cmd",
    "crossval": "viaseg.core.cli.crossval_cmd",
    "export": "viaseg.core.cli.export_cmd",
    "clicknet": "viaseg.core.cli.clicknet_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viaseg",
        description="Label, correct and segment damage in photos (VIA projects, U-Net). "
        "With no command, opens the desktop app.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in COMMANDS.values():
        importlib.import_module(modname).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["gui"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ..base.errors import ViasegError

    try:
        return int(args.func(args) or 0)
    except ViasegError as exc:
        print(f"viaseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
