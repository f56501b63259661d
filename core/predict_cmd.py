"""``viaseg predict MODEL IMAGES_OR_FOLDERS... --out DIR``: masks, overlays and a VIA file from a model.

For every image (files given directly, or the images directly inside a given folder) it writes into ``DIR``:

* ``<stem>_mask.png`` — the full-resolution mask, 0 = background, 255 = predicted;
* ``<stem>_overlay.jpg`` — the photo with the prediction tinted red and outlined (``--no-overlay`` to skip);
* one ``via_region_data.json`` (VIA 2 annotations) holding every image's predicted polygons, with region
  attribute ``{ATTRIBUTE: CLASS}`` (default ``{"class": <the model's class name>}``).

The VIA file references the ORIGINAL images — nothing is copied — by their path *relative to DIR* (``filename``;
a plain file name when DIR is the image folder), with ``size`` = the file's byte size and key =
``filename + size``. So ``viaseg`` (and ``load_via``) open it with the images; in VIA, load the JSON with
"Annotation > Import" after adding the images from that folder, or set the project's default path.

Polygon detail: ``--tolerance`` (Douglas-Peucker, pixels) and ``--min-area`` (pixels²) default to one quarter
of a network pixel at the image's resolution (at least 1 px) and one network pixel's area (at least 10 px²),
since the mask cannot hold detail finer than the network's input grid. Two inputs with the same file stem get
``<stem>-2_mask.png``... Unreadable images get a warning naming the file; the others are still written and
the exit status is 1. An existing ``via_region_data.json`` in DIR (perhaps hand-made annotations) is only
replaced with ``--overwrite`` (and then kept as ``.bak``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import ViasegError

MASK_SUFFIX = "_mask.png"
OVERLAY_SUFFIX = "_overlay.jpg"
VIA_NAME = "via_region_data.json"
TINT = (255, 40, 40)  # RGB of the overlay tint and outline


class ProgressBar:
    """A one-line stderr progress bar (``label [#####.....] 12/40``), drawn only on a terminal unless
    ``enabled`` says otherwise; :meth:`message` prints a line above it (warnings)."""

    def __init__(
        self, total: int, label: str = "", stream=None, enabled: bool | None = None, width: int = 30
    ):
        self.total = max(0, int(total))
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)()) and self.total > 1
        self.enabled = enabled
        self.width = width
        self.done = 0
        self._last = 0.0
        self._drawn = False

    def _line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        return f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"

    def update(self, done: int) -> None:
        self.done = min(int(done), self.total) if self.total else int(done)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        self.stream.write("\r" + self._line())
        self.stream.flush()
        self._drawn = True

    def message(self, text: str) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * (len(self._line()) + 2) + "\r")
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
    """Image files from files and folders (a folder contributes the images directly inside it, in natural
    order). Missing paths and folders without images are reported through ``warn`` and give nothing;
    duplicates are dropped."""
    from .dataset import list_images

    out: list[Path] = []
    seen: set[str] = set()
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = list_images(p)
            if not found:
                warn(f"{p}: folder holds no images")
        elif p.exists():
            found = [p]
        else:
            warn(f"{p}: no such file or folder")
            found = []
        for f in found:
            key = os.path.normcase(os.path.abspath(f))
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def unique_stems(paths: list[Path]) -> list[str]:
    """Output stems: the file stem, with ``-2``, ``-3``... for repeats (case-insensitive)."""
    used: set[str] = set()
    out = []
    for p in paths:
        stem = p.stem or "image"
        cand, n = stem, 1
        while cand.lower() in used:
            n += 1
            cand = f"{stem}-{n}"
        used.add(cand.lower())
        out.append(cand)
    return out


def relative_filename(image: Path, out_dir: Path) -> str:
    """``image`` as VIA ``filename`` relative to ``out_dir`` (forward slashes); absolute when no relative
    path exists (another drive)."""
    try:
        rel = os.path.relpath(os.path.abspath(image), os.path.abspath(out_dir))
    except ValueError:
        return Path(os.path.abspath(image)).as_posix()
    return Path(rel).as_posix()


def auto_detail(size: tuple[int, int], input_hw: tuple[int, int]) -> tuple[float, float]:
    """Default (tolerance, min_area) for a ``(w, h)`` image predicted at ``input_hw``."""
    w, h = size
    cell = max(w / input_hw[1], h / input_hw[0])  # full-res pixels per network pixel
    return max(1.0, cell / 4.0), max(10.0, cell * cell)


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
    try:
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
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
        help="also run the network on the image resized by these factors and average (e.g. 0.875,1,1.125: 3x "
        "compute; 1 = off; default: what the model's training chose)",
    )


def parse_scales(text: str) -> tuple[float, ...]:
    from .predict import scale_factors

    try:
        return scale_factors([v for v in text.split(",") if v.strip()])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected factors between 0.25 and 4 separated by commas, got {text!r}") from None


def apply_tta_options(predictor, args) -> None:
    """``--tta`` / ``--tta-scales`` given on the command line override what the model's metadata says."""
    if args.tta is not None:
        predictor.tta = args.tta
    if args.tta_scales is not None:
        predictor.scales = args.tta_scales


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict damage masks, overlays and a VIA file for images",
        description="Predict with MODEL on image files and folders; write full-size PNG masks, overlay JPEGs "
        f"and {VIA_NAME} (VIA 2, referencing the original images by their path relative to --out) into --out.",
    )
    p.add_argument("model", help="viaseg .keras model file")
    p.add_argument("images", nargs="+", help="image files and/or folders of images")
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
        "--attribute", default="class", help="region attribute name for the class (default: class)"
    )
    p.add_argument("--batch-size", type=int, default=4, help="images per network call (default 4)")
    p.add_argument(
        "--tile-downscale",
        type=float,
        default=None,
        metavar="F",
        help="sliding-window prediction over the photo shrunk F times (for very large photos)",
    )
    add_tta_option(p)
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay JPEGs")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an existing {VIA_NAME} in --out (it may be hand-made annotations; a .bak copy is kept)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    check_threshold(args.threshold)
    if args.tolerance is not None and args.tolerance < 0:
        raise ViasegError(f"--tolerance must be >= 0, got {args.tolerance:g}")
    if args.min_area is not None and args.min_area < 0:
        raise ViasegError(f"--min-area must be >= 0, got {args.min_area:g}")
    if args.batch_size < 1:
        raise ViasegError(f"--batch-size must be >= 1, got {args.batch_size}")
    problems: list[str] = []

    def warn(text: str) -> None:
        problems.append(text)
        print(f"warning: {text}", file=sys.stderr)

    images = gather_images(args.images, warn)
    if not images:
        raise ViasegError("no images to predict (give image files or folders holding images)")
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ViasegError(f"{out_dir}: cannot create output folder ({exc.strerror or exc})") from exc
    if not out_dir.is_dir():
        raise ViasegError(f"{out_dir}: not a folder")
    if (out_dir / VIA_NAME).exists() and not args.overwrite:
        raise ViasegError(
            f"{out_dir / VIA_NAME} already exists (annotations?); choose another --out folder or pass "
            "--overwrite to replace it"
        )

    from .predict import Predictor

    predictor = Predictor.load(args.model)
    apply_tta_options(predictor, args)
    written = _predict_all(predictor, images, out_dir, args, problems)
    if problems:
        print(
            f"viaseg predict: {written} of {len(images)} image(s) written to {out_dir}; "
            f"{len(problems)} problem(s), see the warnings above",
            file=sys.stderr,
        )
        return 1
    print(f"{written} image(s) predicted; masks, overlays and {VIA_NAME} in {out_dir}")
    return 0


def _predict_all(predictor, images: list[Path], out_dir: Path, args, problems: list[str]) -> int:
    import cv2

    from .imageio import read_image
    from .project import ImageEntry, Project
    from .raster import mask_to_regions
    from .via_io import save_via

    class_name = predictor.foreground_name
    threshold = args.threshold
    stems = dict(zip(images, unique_stems(images), strict=True))
    entries: list[ImageEntry] = []
    bar = ProgressBar(len(images), "predicting")
    done = 0
    try:
        for item in predictor.predict_many(images, args.batch_size, tile_downscale=args.tile_downscale):
            done += 1
            if not item.ok:
                problems.append(str(item.error))
                bar.message(f"warning: {item.error} (skipped)")
                bar.update(done)
                continue
            path, pred = item.path, item.prediction
            h, w = pred.shape
            mask = pred.mask(threshold)
            stem = stems[path]
            _write_image(out_dir / f"{stem}{MASK_SUFFIX}", ".png", mask.astype("uint8") * 255)
            if not args.no_overlay:
                try:
                    rgb = read_image(path)
                except ViasegError as exc:
                    problems.append(str(exc))
                    bar.message(f"warning: {exc} (no overlay)")
                else:
                    over = overlay_image(rgb, mask)
                    bgr = cv2.cvtColor(over, cv2.COLOR_RGB2BGR)
                    _write_image(
                        out_dir / f"{stem}{OVERLAY_SUFFIX}", ".jpg", bgr, (cv2.IMWRITE_JPEG_QUALITY, 90)
                    )
            tol, area = auto_detail((w, h), predictor.input_hw)
            tol = tol if args.tolerance is None else args.tolerance
            area = area if args.min_area is None else args.min_area
            regions = mask_to_regions(mask, tol, area, attributes={args.attribute: class_name})
            filename = relative_filename(path, out_dir)
            size = path.stat().st_size
            entries.append(ImageEntry(key=f"{filename}{size}", filename=filename, size=size, regions=regions))
            bar.update(done)
    finally:
        bar.close()
    if entries:
        attrs = {
            "region": {
                args.attribute: {"type": "text", "description": "predicted by viaseg", "default_value": ""}
            },
            "file": {},
        }
        project = Project(images=entries, fmt="via2", path=out_dir / VIA_NAME, attributes=attrs)
        save_via(project, out_dir / VIA_NAME)
    return len(entries)
