"""``viaseg predict MODEL INPUTS... --out DIR``: masks, overlays and a VIA file from a model, for a few
photos or a few hundred thousand.

INPUTS are image files, folders (the images directly inside them) and lists of images: ``@FILE`` or any
argument ending in ``.txt`` is a text file with one image path per line (UTF-8; blank lines and ``#`` comments
ignored; relative paths are relative to the list file's folder; a line may also name a folder). For every
photo it writes into ``DIR``:

* ``<stem>_mask.png`` — the full-resolution mask, 0 = background, 255 = predicted;
* ``<stem>_overlay.jpg`` — the photo with the prediction tinted red and outlined (``--no-overlay`` to skip);
* one ``via_region_data.json`` (VIA 2 annotations) holding every photo's predicted polygons, with region
  attribute ``{ATTRIBUTE: CLASS}`` (default ``{"class": <the model's class name>}``).

The VIA file references the ORIGINAL images — nothing is copied — by their path *relative to DIR* (``filename``;
a plain file name when DIR is the image folder), with ``size`` = the file's byte size and key =
``filename + size``. So ``viaseg`` (and ``load_via``) open it with the images; in VIA, load the JSON with
"Annotation > Import" after adding the images from that folder, or set the project's default path.

Streaming (:mod:`viaseg.core.cli.predict_stream`): photos are decoded in parallel (``--workers`` threads, JPEGs at
the reduced scale the network needs), run through the network ``--batch-size`` at a time, and each photo's
mask and overlay are written as soon as it is done; its polygons go as one line to the journal
``DIR/predictions.jsonl`` (flushed after every batch), from which ``via_region_data.json`` is written
atomically at the end. Memory does not grow with the number of photos. A killed run loses at most the photos
in flight: ``--resume`` skips every photo whose journal line and output files exist (one listing of DIR, no
``stat`` per photo), predicts the rest and writes the complete VIA file. On a terminal a progress bar shows
photos/s and the time left.

Polygon detail: ``--tolerance`` (Douglas-Peucker, pixels) and ``--min-area`` (pixels²) default to one quarter
of a network pixel at the image's resolution (at least 1 px) and one network pixel's area (at least 10 px²),
since the mask cannot hold detail finer than the network's input grid. Two inputs with the same file stem get
``<stem>-2_mask.png``... (so a resumed run must be given the same inputs in the same order). Unreadable
images get a warning naming the file; the others are still written and the exit status is 1. An existing
``via_region_data.json`` in DIR (perhaps hand-made annotations) is only replaced with ``--overwrite`` (and then
kept as ``.bak``) or, when it is this command's own (a journal is next to it), with ``--resume``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..base.errors import ViasegError
from .argtypes import attribute_name, positive_float
from .predict_stream import JOURNAL_NAME, MASK_SUFFIX, OVERLAY_SUFFIX, VIA_NAME  # noqa: F401 - re-exported

TINT = (255, 40, 40)  # RGB of the overlay tint and outline


class ProgressBar:
    """A one-line stderr progress bar (``label [#####.....] 12/40``), drawn only on a terminal unless
    ``enabled`` says otherwise; :meth:`message` prints a line above it (warnings). With ``unit`` (e.g.
    ``"photos"``) it also shows the rate and the time left (``12.5 photos/s, 3:20 left``), both measured over
    the items done since the bar was made: ``initial`` items (already done before, e.g. skipped by
    ``--resume``) count towards the total but not the rate."""

    def __init__(
        self,
        total: int,
        label: str = "",
        stream=None,
        enabled: bool | None = None,
        width: int = 30,
        unit: str | None = None,
        initial: int = 0,
    ):
        self.total = max(0, int(total))
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)()) and self.total > 1
        self.enabled = enabled
        self.width = width
        self.unit = unit
        self.initial = max(0, int(initial))
        self.done = self.initial
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._width_drawn = 0  # length of the line last drawn

    def rate(self) -> float | None:
        """Items per second since the bar was made (None before the first item)."""
        n = self.done - self.initial
        elapsed = time.monotonic() - self._start
        return n / elapsed if n > 0 and elapsed > 0 else None

    def _line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
        if self.unit:
            rate = self.rate()
            if rate is not None:
                left = max(0, self.total - self.done) / rate
                line += f"  {rate:.1f} {self.unit}/s, {format_duration(left)} left"
        return line

    def update(self, done: int) -> None:
        self.done = min(int(done), self.total) if self.total else int(done)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        line = self._line()
        pad = " " * max(0, self._width_drawn - len(line))  # the rate text may get shorter
        self._width_drawn = len(line)
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._drawn = True

    def message(self, text: str) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * (self._width_drawn + 2) + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()
        if self._drawn:
            self._drawn = False
            self._last = 0.0
            self.update(self.done)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def format_duration(seconds: float) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``."""
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def probability(text: str) -> float:
    """argparse type: a threshold strictly between 0 and 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be between 0 and 1 (exclusive), got {v:g}")
    return v


def check_threshold(value: float | None) -> None:
    if value is not None and not 0.0 < value < 1.0:
        raise ViasegError(f"threshold must be between 0 and 1 (exclusive), got {value:g}")


def gather_images(inputs: list[str | Path], warn) -> list[Path]:
    """Image files from files, folders and lists of images (see the module docstring), in order. Missing
    command-line paths and folders without images are reported through ``warn`` and give nothing; duplicates
    are dropped."""
    from .predict_stream import gather_inputs

    return [Path(p) for p in gather_inputs(inputs, warn)]


def unique_stems(paths: list[Path]) -> list[str]:
    """Output stems: the file stem, with ``-2``, ``-3``... for repeats (case-insensitive)."""
    from .predict_stream import stems_for

    return stems_for([str(p) for p in paths])


def relative_filename(image: Path, out_dir: Path) -> str:
    """``image`` as VIA ``filename`` relative to ``out_dir`` (forward slashes); absolute when no relative
    path exists (another drive)."""
    try:
        rel = os.path.relpath(os.path.abspath(image), os.path.abspath(out_dir))
    except ValueError:
        return Path(os.path.abspath(image)).as_posix()
    return Path(rel).as_posix()


def overlay_image(rgb, mask, alpha: float = 0.45):
    """``rgb`` photo with ``mask`` tinted (``alpha``) and its outline drawn; returns RGB uint8."""
    import cv2
    import numpy as np

    out = rgb.copy()
    m = mask.astype(bool)
    if m.any():
        tint = np.array(TINT, np.float32)
        out[m] = (out[m].astype(np.float32) * (1 - alpha) + tint * alpha + 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        thick = max(1, round(max(rgb.shape[:2]) / 600))
        cv2.drawContours(out, contours, -1, TINT, thick, cv2.LINE_AA)
    return out


def _write_image(path: Path, ext: str, img, params=()) -> None:
    import cv2

    ok, buf = cv2.imencode(ext, img, list(params))
    if not ok:
        raise ViasegError(f"{path}: cannot encode image")
    from ..base.fsutil import atomic_write

    try:
        atomic_write(path, buf.tobytes(), backup=False)
    except OSError as exc:
        raise ViasegError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def add_tta_option(p) -> None:
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average the prediction of each image and its mirror image (2x compute; default: what the model's "
        "training chose)",
    )
    p.add_argument(
        "--tta-scales",
        type=parse_scales,
        default=None,
        metavar="S,S,...",
        help="run the network on the image resized by each of these factors and average (1 = the network's "
        "own size; e.g. 1,1.25: 2.6x the compute of 1 alone; default: what the model's training chose)",
    )


def parse_scales(text: str) -> tuple[float, ...]:
    from ..ml.predict import scale_factors

    try:
        return scale_factors([v for v in text.split(",") if v.strip()])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected factors between 0.25 and 4 separated by commas, got {text!r}"
        ) from None


def apply_tta_options(predictor, args) -> None:
    """``--tta`` / ``--tta-scales`` given on the command line override what the model's metadata says."""
    if args.tta is not None:
        predictor.tta = args.tta
    if args.tta_scales is not None:
        predictor.scales = args.tta_scales


def default_workers() -> int:
    return max(2, min(8, os.cpu_count() or 2))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict damage masks, overlays and a VIA file for images",
        description="Predict with MODEL on image files, folders and lists of images; write full-size PNG masks, "
        f"overlay JPEGs and {VIA_NAME} (VIA 2, referencing the original images by their path relative to "
        "--out) into --out. Streams: any number of photos in constant memory; --resume finishes a stopped run.",
    )
    p.add_argument("model", help="viaseg .keras model file")
    p.add_argument(
        "images",
        nargs="+",
        metavar="INPUT",
        help="image files, folders of images, and lists of images: @FILE or FILE.txt, one image path per line "
        "(relative paths relative to the list file's folder; blank lines and # comments ignored)",
    )
    p.add_argument("--out", "-o", required=True, help="output folder (created if needed)")
    p.add_argument(
        "--threshold", type=probability, default=None, help="probability threshold (default: model's)"
    )
    p.add_argument(
        "--tolerance", type=float, default=None, help="polygon simplification in pixels (default: auto)"
    )
    p.add_argument(
        "--min-area", type=float, default=None, help="smallest polygon area in pixels² (default: auto)"
    )
    p.add_argument(
        "--attribute",
        type=attribute_name,
        default="class",
        help="region attribute name for the class (default: class)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="images per network call (default 8)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="threads decoding photos and writing outputs (default: the CPU count, 2 to 8)",
    )
    p.add_argument(
        "--tile-downscale",
        type=positive_float,
        default=None,
        metavar="F",
        help="sliding-window prediction over the photo shrunk F times (for very large photos)",
    )
    add_tta_option(p)
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay JPEGs")
    p.add_argument(
        "--resume",
        action="store_true",
        help=f"skip photos whose outputs and {JOURNAL_NAME} line exist (a stopped run), predict the rest and "
        f"write the complete {VIA_NAME}",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an existing {VIA_NAME} in --out (it may be hand-made annotations; a .bak copy is kept)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    workers = _checked_workers(args)
    resume = bool(getattr(args, "resume", False))
    problems: list[str] = []

    def warn(text: str) -> None:
        problems.append(text)
        print(f"warning: {text}", file=sys.stderr)

    from . import predict_stream as ps

    images = ps.gather_inputs(args.images, warn)
    if not images:
        raise ViasegError("no images to predict (give image files, folders or lists of images)")
    out_dir = Path(args.out)
    _refuse_out_among_photos(out_dir, images)
    ours = _prepare_out(out_dir, args.overwrite, resume)
    todo, skipped, mode = _todo(images, out_dir, resume, overlays=not args.no_overlay)
    result = ps.StreamResult()
    if todo:
        result = _predict_todo(args, todo, len(images), skipped, out_dir, mode, workers)
        problems.extend(result.problems)
    in_via = ps.build_via(out_dir, backup=not ours)
    written = result.written
    if problems:
        print(
            f"viaseg predict: {written + skipped} of {len(images)} image(s) written to {out_dir}"
            + (f" ({skipped} already done)" if skipped else "")
            + f"; {len(problems)} problem(s), see the warnings above",
            file=sys.stderr,
        )
        return 1
    what = f"masks, overlays and {VIA_NAME}" if not args.no_overlay else f"masks and {VIA_NAME}"
    extra = f", {skipped} already done (--resume)" if skipped else ""
    print(f"{written} image(s) predicted{extra}; {what} ({in_via} image(s)) in {out_dir}")
    return 0


def _checked_workers(args) -> int:
    """The number of worker threads, once every numeric option is checked."""
    check_threshold(args.threshold)
    if args.tolerance is not None and args.tolerance < 0:
        raise ViasegError(f"--tolerance must be >= 0, got {args.tolerance:g}")
    if args.min_area is not None and args.min_area < 0:
        raise ViasegError(f"--min-area must be >= 0, got {args.min_area:g}")
    if args.batch_size < 1:
        raise ViasegError(f"--batch-size must be >= 1, got {args.batch_size}")
    workers = default_workers() if getattr(args, "workers", None) is None else args.workers
    if workers < 1:
        raise ViasegError(f"--workers must be >= 1, got {workers}")
    return workers


def _refuse_out_among_photos(out_dir: Path, images: list[str]) -> None:
    """``--out`` the photos' own folder mixed the masks and overlays with the photos, and the next run there
    predicted them too (``image66_mask_mask.png``, listed as photos in its VIA file)."""
    out = out_dir.resolve()
    for image in images:
        if Path(image).resolve().parent == out:
            raise ViasegError(
                f"--out {out_dir}: holds the photos to predict ({Path(image).name}); the masks and overlays "
                "would mix with them (and a later run would predict them too): choose another output folder"
            )


def _prepare_out(out_dir: Path, overwrite: bool, resume: bool) -> bool:
    """Create the output folder, refusing to replace a VIA file that is not this tool's; whether the VIA file
    there is ours to rebuild (no backup needed)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViasegError(f"{out_dir}: cannot create output folder ({exc.strerror or exc})") from exc
    if not out_dir.is_dir():
        raise ViasegError(f"{out_dir}: not a folder")
    via_path, journal_path = out_dir / VIA_NAME, out_dir / JOURNAL_NAME
    ours = resume and journal_path.exists()  # a VIA file next to our journal is ours to rebuild
    if via_path.exists() and not (overwrite or ours):
        raise ViasegError(
            f"{via_path} already exists (annotations?); choose another --out folder or pass "
            + (
                "--resume to finish the run that wrote it, or --overwrite to replace it"
                if journal_path.exists() and not resume
                else "--overwrite to replace it"
            )
        )
    return ours


def _todo(images: list[str], out_dir: Path, resume: bool, overlays: bool) -> tuple[list, int, str]:
    """The ``(path, stem)`` pairs still to predict, how many are already done, and the journal's open mode."""
    from . import predict_stream as ps

    stems = ps.stems_for(images)
    if not resume:
        return list(zip(images, stems, strict=True)), 0, "w"
    skipped = 0
    done = ps.done_stems(out_dir, overlays=overlays)
    todo = []
    for path, stem in zip(images, stems, strict=True):
        if stem in done and done[stem] == relative_filename(Path(path), out_dir):
            skipped += 1
        else:
            todo.append((path, stem))
    ps.repair_journal(out_dir / JOURNAL_NAME)
    return todo, skipped, "a"


def _predict_todo(args, todo: list, n_images: int, skipped: int, out_dir: Path, mode: str, workers: int):
    """Predict the photos of ``todo`` into ``out_dir`` and its journal, with a progress bar over all of them."""
    from ..ml.predict import Predictor
    from . import predict_stream as ps

    journal_path = out_dir / JOURNAL_NAME
    predictor = Predictor.load(args.model)
    apply_tta_options(predictor, args)
    opts = ps.StreamOptions(
        threshold=args.threshold,
        tolerance=args.tolerance,
        min_area=args.min_area,
        attribute=args.attribute,
        batch_size=args.batch_size,
        tile_downscale=args.tile_downscale,
        overlays=not args.no_overlay,
        workers=workers,
    )
    bar = ProgressBar(n_images, "predicting", unit="photos", initial=skipped)
    try:
        with open(journal_path, mode, encoding="utf-8", newline="\n") as journal:
            return ps.predict_stream(
                predictor,
                [t[0] for t in todo],
                [t[1] for t in todo],
                out_dir,
                opts,
                journal,
                on_done=lambda n: bar.update(skipped + n),
                on_problem=lambda text: bar.message(f"warning: {text}"),
            )
    except OSError as exc:
        raise ViasegError(f"{journal_path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        bar.close()
