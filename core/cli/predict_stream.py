"""The streaming engine of ``viaseg predict``: any number of photos in memory that does not grow with them.

Inputs (:func:`gather_inputs`): image files, folders (the images directly inside, natural order; listed with one
``os.scandir``, no ``stat`` per file) and *list files*: an argument ``@FILE`` or any argument ending in ``.txt``
names a text file holding one image path per line (UTF-8; blank lines and lines starting with ``#`` ignored;
relative paths are relative to the list file's own folder, as in a playlist; a line naming a folder adds the
images in it). Paths from a list are not checked up front (that would be a ``stat`` per photo): a missing one is
reported by name when its turn comes, like any unreadable photo. Repeated paths are dropped.

Pipeline (:func:`predict_stream`), one thread pool of ``workers`` threads (OpenCV and NumPy release the GIL):

1. decode, ahead of the network by a bounded window: the photo at the reduced JPEG scale the
   :class:`~viaseg.core.ml.predict.Predictor` asks for (``Predictor._load``), resized to the network input
   (``uint8``);
2. the calling thread stacks ``batch_size`` decoded photos and runs the network once on them
   (:meth:`Predictor.predict_inputs`: the same scaling, mirror and multi-scale averaging as ``predict``);
3. finish, in the pool: probabilities upscaled to full resolution, the mask PNG and the overlay JPEG written
   (each to a temporary name, then renamed), polygons traced; the result is one JSON line.

The lines are appended, in input order, to the journal ``DIR/predictions.jsonl`` (flushed after every batch):
``{"key": VIA key, "stem": output stem, "entry": VIA 2 entry}``. Nothing of a finished photo stays in memory, and
at most the window of photos in flight is held (decoded inputs, and one full-resolution map per worker).
:func:`build_via` turns the journal into ``via_region_data.json`` at the end — streamed into a temporary file,
then written with :func:`viaseg.core.base.fsutil.atomic_write` — so a killed run leaves the journal of every finished
photo (a torn last line is ignored) and ``--resume`` finishes the job and the VIA file.

Resume (:func:`done_stems`): one listing of DIR plus the journal. A photo is done when the journal has its stem
for the same file name and its outputs (mask; overlay unless ``--no-overlay``) are in the listing; no ``stat``
per photo. Leftover temporary files of a killed run are removed.
"""

from __future__ import annotations

import json
import mmap
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..annotation.dataset import PREDICT_JOURNAL, PREDICT_OUTPUTS
from ..base.errors import DatasetError, ImageReadError, ViasegError

# core.annotation.dataset leaves what this writes beside the journal out of a split's unlisted images
JOURNAL_NAME = PREDICT_JOURNAL
MASK_SUFFIX, OVERLAY_SUFFIX = PREDICT_OUTPUTS
VIA_NAME = "via_region_data.json"
_TMP_PREFIX = ".tmp-"  # what predict_cmd._write_image names a file before its rename


# ------------------------------------------------------------------------------------------------ inputs


def _folder_images(folder: str) -> list[str]:
    """Images directly inside ``folder`` (``dataset.list_images``), as ``folder``-joined strings."""
    from ..annotation.dataset import list_images

    return [os.path.join(folder, p.name) for p in list_images(Path(folder))]


def gather_inputs(inputs: list[str | Path], warn: Callable[[str], None]) -> list[str]:
    """Image paths (strings) from files, folders and list files (see the module docstring), in order, repeats
    dropped. Missing command-line paths, unreadable lists and folders without images go to ``warn``."""
    from ..annotation.dataset import IMAGE_EXTS

    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            out.append(path)

    def add_folder(folder: str) -> None:
        try:
            found = _folder_images(folder)
        except DatasetError as exc:  # says "cannot list folder" and why
            warn(str(exc))
            return
        if not found:
            warn(f"{folder}: folder holds no images")
        from ..annotation.dataset import folder_leftovers

        left = folder_leftovers(folder)
        if left:
            warn(f"{folder}: not predicted: {left}")
        for f in found:
            add(f)

    for raw in inputs:
        arg = os.fspath(raw)
        if os.path.isdir(arg):
            add_folder(arg)
        elif (arg.startswith("@") and not os.path.exists(arg)) or arg.lower().endswith(".txt"):
            list_path = arg[1:] if arg.startswith("@") and not os.path.exists(arg) else arg
            try:
                with open(list_path, encoding="utf-8", errors="surrogateescape") as fh:
                    lines = fh.read().splitlines()
            except OSError as exc:
                warn(f"{list_path}: cannot read list of images ({exc.strerror or exc})")
                continue
            base = os.path.dirname(list_path)
            n_before = len(out)
            for line in lines:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                path = line if os.path.isabs(line) else os.path.join(base, line)
                if os.path.splitext(path)[1].lower() in IMAGE_EXTS:
                    add(path)  # no stat: a missing photo is reported when it is decoded
                elif os.path.isdir(path):
                    add_folder(path)
                else:
                    add(path)  # named explicitly: decoded (and reported if it is no image)
            if len(out) == n_before:
                warn(f"{list_path}: list names no images")
        elif os.path.exists(arg):
            add(arg)
        else:
            warn(f"{arg}: no such file or folder")
    return out


def stems_for(paths: list[str]) -> list[str]:
    """Output stems: the file stem, with ``-2``, ``-3``... for repeats (case-insensitive); the same inputs in
    the same order always give the same stems (what ``--resume`` relies on)."""
    used: set[str] = set()
    out = []
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0] or "image"
        cand, n = stem, 1
        while cand.lower() in used:
            n += 1
            cand = f"{stem}-{n}"
        used.add(cand.lower())
        out.append(cand)
    return out


# ------------------------------------------------------------------------------------------------ journal


def _journal_records(path: Path):
    """(line number, record) for every complete, parseable journal line; a torn or foreign line is skipped."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        for i, line in enumerate(fh):
            if not line.endswith(b"\n"):
                return  # torn by a kill mid-write
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(rec, dict)
                and isinstance(rec.get("key"), str)
                and isinstance(rec.get("entry"), dict)
            ):
                yield i, rec


def repair_journal(path: Path) -> None:
    """Cut a torn last line (a run killed while writing it) so appended lines start on a line of their own."""
    try:
        with open(path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            pos = size
            while pos > 0:
                step = min(65536, pos)
                fh.seek(pos - step)
                chunk = fh.read(step)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    fh.truncate(pos - step + nl + 1)
                    return
                pos -= step
            fh.truncate(0)
    except FileNotFoundError:
        return


def done_stems(out_dir: Path, overlays: bool) -> dict[str, str]:
    """``{stem: VIA filename}`` of the photos a previous run in ``out_dir`` finished: in the journal and with
    their outputs in one listing of ``out_dir``. Removes leftover temporary output files of a killed run."""
    names = set()
    with os.scandir(out_dir) as it:
        for e in it:
            names.add(e.name)
    for n in names:
        if n.startswith(_TMP_PREFIX) and (n.endswith(MASK_SUFFIX) or n.endswith(OVERLAY_SUFFIX)):
            try:
                os.unlink(out_dir / n)
            except OSError:
                pass
    done: dict[str, str] = {}
    for _, rec in _journal_records(out_dir / JOURNAL_NAME):
        stem = rec.get("stem")
        if not isinstance(stem, str) or f"{stem}{MASK_SUFFIX}" not in names:
            continue
        if overlays and f"{stem}{OVERLAY_SUFFIX}" not in names:
            continue
        done[stem] = str(rec["entry"].get("filename"))
    return done


def build_via(out_dir: Path, backup: bool = True) -> int:
    """Write ``out_dir/via_region_data.json`` (VIA 2 annotations) from the journal, atomically; a photo in the
    journal more than once keeps its last line. Returns the number of images (0: nothing written)."""
    from ..annotation.formats.via_common import dump_json
    from ..base.fsutil import atomic_write

    journal = out_dir / JOURNAL_NAME
    last: dict[str, int] = {}
    for i, rec in _journal_records(journal):
        last[rec["key"]] = i
    if not last:
        return 0
    target = out_dir / VIA_NAME
    with tempfile.TemporaryFile(dir=out_dir, prefix=".via-build-") as tmp:
        tmp.write(b"{")
        first = True
        for i, rec in _journal_records(journal):
            key = rec["key"]
            if last.get(key) != i:
                continue
            tmp.write(
                (("" if first else ",") + dump_json(key) + ":" + dump_json(rec["entry"])).encode("utf-8")
            )
            first = False
        tmp.write(b"}")
        tmp.flush()
        # the file's pages, not a bytes copy: memory stays flat however many photos the file holds
        with mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                atomic_write(target, data, backup=backup)
            except OSError as exc:
                raise ViasegError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    return len(last)


# ------------------------------------------------------------------------------------------------ pipeline


@dataclass
class StreamOptions:
    threshold: float | None = None
    tolerance: float | None = None
    min_area: float | None = None
    attribute: str = "class"
    batch_size: int = 8
    tile_downscale: float | None = None
    overlays: bool = True
    workers: int = 4


@dataclass
class StreamResult:
    written: int = 0
    problems: list[str] = field(default_factory=list)


class _Failed:
    """A photo that could not be predicted (its error, reported in order)."""

    def __init__(self, error: Exception):
        self.error = error


def predict_stream(
    predictor,
    paths: list[str],
    stems: list[str],
    out_dir: Path,
    opts: StreamOptions,
    journal,
    on_done: Callable[[int], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> StreamResult:
    """Predict ``paths`` (output names ``stems``) into ``out_dir``, appending one line per finished photo to
    ``journal`` (an open text file, flushed after every batch). ``on_done(n)`` after each photo (done or failed),
    ``on_problem(text)`` for each unreadable photo (left out of the journal, so ``--resume`` tries it again) or
    overlay that could not be made."""
    result = StreamResult()
    if not paths:
        return result
    stream = _Stream(predictor, paths, stems, out_dir, opts, journal, on_done, on_problem, result)
    with ThreadPoolExecutor(max_workers=stream.workers, thread_name_prefix="viaseg-predict") as pool:
        stream.pool = pool
        try:
            stream.run()
        finally:
            stream.cancel()
            journal.flush()
    return result


class _Stream:
    """One :func:`predict_stream` run: the photos decoding (at most ``window`` ahead) and finishing in the
    pool, and the count of photos done."""

    def __init__(self, predictor, paths, stems, out_dir, opts, journal, on_done, on_problem, result) -> None:
        self.predictor, self.paths, self.stems, self.out_dir = predictor, paths, stems, out_dir
        self.opts, self.journal, self.on_done, self.on_problem = opts, journal, on_done, on_problem
        self.result: StreamResult = result
        self.bs = max(1, int(opts.batch_size))
        self.workers = max(1, int(opts.workers))
        self.threshold = predictor.threshold if opts.threshold is None else float(opts.threshold)
        self.class_name = predictor.foreground_name
        self.lock = threading.Lock()
        self.decoding: deque[tuple[int, Future]] = deque()
        self.finishing: deque[Future] = deque()
        self.window = 2 * self.bs + self.workers
        self.next_i = 0
        self.done = 0
        self.pool: ThreadPoolExecutor | None = None

    def problem(self, text: str, note: str) -> None:
        with self.lock:
            self.result.problems.append(text)
        if self.on_problem is not None:
            self.on_problem(f"{text} ({note})")

    def decode(self, path: str):
        import cv2

        from ..ml.prediction import _INTERP

        predictor = self.predictor
        ih, iw = predictor.input_hw
        try:
            if self.opts.tile_downscale:
                pred = predictor.predict_tiled(path, downscale=self.opts.tile_downscale)
                return pred.probabilities, (pred.shape[1], pred.shape[0])
            img, size, _ = predictor._load(Path(path))
            if img.shape[0] != ih or img.shape[1] != iw:
                img = cv2.resize(img, (iw, ih), interpolation=_INTERP[predictor.resize])
            return img, size
        except ImageReadError as exc:
            return _Failed(exc)
        except Exception as exc:  # reported per photo, never ends the run
            return _Failed(ImageReadError(path, f"cannot read image ({type(exc).__name__}: {exc})"))

    def finish(self, path: str, stem: str, prob, size) -> str | None:
        return _finish_photo(
            self.predictor,
            path,
            stem,
            prob,
            size,
            self.out_dir,
            self.opts,
            self.threshold,
            self.class_name,
            self.problem,
        )

    def count_done(self) -> None:
        self.done += 1
        if self.on_done is not None:
            self.on_done(self.done)

    def drain(self, limit: int) -> None:
        finishing = self.finishing
        while finishing and (len(finishing) > limit or finishing[0].done()):
            line = finishing.popleft().result()  # an exception here (disk full...) ends the run
            if line is not None:
                self.journal.write(line + "\n")
                self.result.written += 1
            self.count_done()

    def submit_next(self) -> None:
        assert self.pool is not None
        self.decoding.append((self.next_i, self.pool.submit(self.decode, self.paths[self.next_i])))
        self.next_i += 1

    def submit_finish(self, i: int, prob, size) -> None:
        assert self.pool is not None
        self.finishing.append(self.pool.submit(self.finish, self.paths[i], self.stems[i], prob, size))

    def run(self) -> None:
        import numpy as np

        while self.decoding or self.next_i < len(self.paths):
            while self.next_i < len(self.paths) and len(self.decoding) < self.window:
                self.submit_next()
            batch = self.take_batch()
            if batch:
                probs = self.predictor.predict_inputs(np.stack([b[1] for b in batch]), batch_size=len(batch))
                for (i, _, size), prob in zip(batch, probs, strict=True):
                    self.submit_finish(i, prob, size)
                del probs, batch
            self.drain(2 * self.workers + self.bs)
            self.journal.flush()
        self.drain(0)

    def take_batch(self) -> list:
        """Up to a batch of decoded photos for the network, ``(index, input, size)``; failed photos reported
        and tiled ones sent to finish on the way, each replaced in the window by the next photo."""
        batch: list = []
        taken = 0  # photos taken from the window this round (failed and tiled ones too: bounded)
        while self.decoding and taken < self.bs:
            taken += 1
            i, fut = self.decoding.popleft()
            got = fut.result()
            if isinstance(got, _Failed):
                self.problem(str(got.error), "skipped")
                self.count_done()
            elif self.opts.tile_downscale:
                self.submit_finish(i, got[0], got[1])
            else:
                batch.append((i, got[0], got[1]))
            if self.next_i < len(self.paths):
                self.submit_next()
        return batch

    def cancel(self) -> None:
        for _, fut in self.decoding:
            fut.cancel()
        for fut in self.finishing:
            fut.cancel()


def _finish_photo(predictor, path, stem, prob, size, out_dir, opts, threshold, class_name, problem):
    """One photo's outputs from its probabilities; its journal line, or None (the problem reported)."""
    import cv2

    from ..annotation.formats.via_common import dump_json
    from ..annotation.formats.via_json import build_annotations
    from ..annotation.project import ImageEntry, Project
    from ..annotation.raster import mask_to_regions
    from ..imaging.imageio import read_image
    from ..ml.prediction import detail_defaults
    from .predict_cmd import _write_image, overlay_image, relative_filename

    full = predictor._upscale(prob, size)
    del prob
    mask = full > threshold
    del full
    _write_image(out_dir / f"{stem}{MASK_SUFFIX}", ".png", mask.astype("uint8") * 255)
    if opts.overlays:
        try:
            rgb = read_image(path)
        except ViasegError as exc:
            problem(str(exc), "no overlay")  # still journalled (as before); --resume makes the overlay
        else:
            over = cv2.cvtColor(overlay_image(rgb, mask), cv2.COLOR_RGB2BGR)
            del rgb
            _write_image(out_dir / f"{stem}{OVERLAY_SUFFIX}", ".jpg", over, (cv2.IMWRITE_JPEG_QUALITY, 90))
    tol, area = detail_defaults(size, predictor.input_hw)
    tol = tol if opts.tolerance is None else opts.tolerance
    area = area if opts.min_area is None else opts.min_area
    regions = mask_to_regions(mask, tol, area, attributes={opts.attribute: class_name})
    filename = relative_filename(Path(path), out_dir)
    try:
        nbytes = os.stat(path).st_size
    except OSError as exc:
        problem(f"{path}: cannot read image ({exc.strerror or exc})", "not in the VIA file")
        return None
    entry = ImageEntry(key=f"{filename}{nbytes}", filename=filename, size=nbytes, regions=regions)
    ((key, value),) = build_annotations(Project(images=[entry], fmt="via2"), "via2").items()
    return dump_json({"key": key, "stem": stem, "entry": value})
