"""``viaseg convert IN OUT [--to FORMAT]``: any annotation input (VIA, COCO, labelme) written in another format
(the conversion itself: :mod:`viaseg.core.annotation.formats.convert`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..annotation.formats.convert import TARGETS, convert_input


def _run(args) -> int:
    messages: list[str] = []
    try:
        result = convert_input(args.input, args.output, args.to, args.class_attr, messages)
    finally:  # what was skipped is said even when nothing was written
        for m in messages:
            print(f"viaseg convert: {m}", file=sys.stderr)
    counts = (
        (result.skipped_images, "image(s)"),
        (result.skipped_regions, "region(s)"),
        (result.unread, "item(s) not read"),
    )
    skipped = ", ".join(f"{n} {what}" for n, what in counts if n)
    skipped = f"; skipped: {skipped}, see above" if skipped else ""
    print(
        f"{args.output}: {result.fmt} from {result.kind} ({result.images} images, "
        f"{result.regions} regions{skipped})"
    )
    src = Path(args.input).resolve()
    src_dir = src if src.is_dir() else src.parent
    project = result.project
    if result.fmt not in ("coco", "labelme") and Path(args.output).resolve().parent != src_dir:
        if any(not Path(im.filename).is_absolute() and "://" not in im.filename for im in project.images):
            print(
                f"note: image file names are kept as written; they are relative to {src_dir}", file=sys.stderr
            )
    if result.kind == result.fmt and result.fmt in ("coco", "labelme"):
        # not a lossless round trip, unlike VIA's: said, as ids changed and objects split without a word
        print(
            f"note: {result.fmt} is written afresh from what viaseg read (one region per polygon): ids are "
            "numbered anew, an object of several polygons becomes several, and fields viaseg does not read "
            f"are not kept; the {result.fmt} file read is unchanged",
            file=sys.stderr,
        )
    return 1 if result.skipped else 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert annotations (VIA, COCO, labelme) to another format (or round-trip a VIA file)",
        description="Read a VIA 1/2/3 JSON or CSV file, a COCO file, or labelme files (one JSON, or a folder "
        "of them) and write it in another format. Without --to the input is written back in its own format "
        "(a lossless round trip for VIA). An existing OUT file is replaced atomically and first copied to "
        "OUT.bak (every time: the version replaced can always be recovered); OUT may be IN itself only without "
        "a change of format. Exit status: 0 everything converted, 1 written but some images or regions were "
        "skipped (each one is listed), 2 nothing written (unreadable input, or the output would have lost "
        "every image or every region).",
    )
    p.add_argument(
        "input",
        metavar="IN",
        help="file or labelme folder to read (VIA JSON/CSV, COCO, labelme; format auto-detected)",
    )
    p.add_argument("output", metavar="OUT", help="file to write (a folder for --to labelme)")
    p.add_argument("--to", choices=TARGETS, default=None, help="output format (default: the input's own)")
    p.add_argument(
        "--class-attr",
        default=None,
        metavar="NAME",
        help="coco/labelme: region attribute giving the category or label (default: guessed, and a region "
        "without a value of it is 'damage'; else one 'damage'; a region without a value of a NAME given here is "
        "skipped); on import from COCO/labelme, the attribute their labels go to (default: name)",
    )
    p.set_defaults(func=_run)
