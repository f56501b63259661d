"""Export a viaseg model for use without viaseg: TensorFlow SavedModel, TFLite or ONNX.

``export_model(model_path, out, fmt, quantize="none", tta="model")`` writes one artifact whose graph takes
**RGB ``uint8`` images at the model's input size** (``N x H x W x 3``, NHWC, any batch size) and returns the
**damage probability map** at that size (``N x H x W`` ``float32``, 0..1). Everything between is inside the
graph, built from the same rules as :class:`~viaseg.core.ml.predict.Predictor`:

* scaling as the model's ``input_scale`` says (``rgb/255`` for every model viaseg trains);
* the foreground channel (sigmoid output, or 1 - background for a softmax);
* the test-time averages the model's metadata asks for (``tta="model"``, the default: the mirror image, and with
  ``tta_scales`` the input resized by those factors, exactly as ``viaseg predict`` / ``evaluate`` run it),
  only the mirror (``tta="flip"``, what the app does while a user waits) or none (``tta="none"``: one network
  pass, the cheapest; the default preset's 3 scales x mirror cost about 6 passes).

The caller resizes the photo to the input size (stretch, no letterbox; the model's ``resize`` method, ``area``
= ``cv2.INTER_AREA``) and resizes the returned map back to the photo's size (bilinear), then thresholds it with
``threshold``. ``docs/deploy.md`` shows this with onnxruntime, the TFLite runtime and TensorFlow Serving.

Formats (``fmt``):

* ``savedmodel`` — a folder; signature ``serving_default``: input ``image`` (``uint8 [-1, H, W, 3]``), output
  ``probabilities`` (``float32 [-1, H, W]``); what TensorFlow Serving loads.
* ``tflite`` — one ``.tflite`` file (input ``image``, output ``probabilities``), weights ``float32``
  (``quantize="none"``), ``float16`` or dynamic-range ``int8`` (weights stored as int8, activations float).
* ``onnx`` — one ``.onnx`` file converted with tf2onnx (what Keras 3's own ``model.export(format="onnx")`` uses
  on TensorFlow), opset :data:`ONNX_OPSET`; input ``image``, output ``probabilities``.

Metadata: a JSON file (:func:`meta_path`): ``PATH.json`` beside a ``.tflite`` / ``.onnx`` file (and, for ONNX,
the same JSON in the model's ``metadata_props`` under ``viaseg``), ``PATH/viaseg.json`` inside a SavedModel
folder. It holds the input and output description, ``input_size`` ``[H, W]``, ``threshold``, ``class_names``,
``resize``, the averaging baked in, the training ``config`` (from the model, else the run folder's
``config.json``), the whole model metadata as ``model_meta`` and ``check``: the largest difference between the
exported model, run by its own runtime, and viaseg's Keras predictor on two test images.

Errors are :class:`ExportError` / :class:`~viaseg.core.base.errors.ModelError` (both ``ViasegError``), naming the
file. Every artifact is written to a temporary name next to ``out`` and renamed into place.

This module checks the options and paths, writes the metadata and runs an export (:func:`export_model`); the
graph is built in :mod:`.export_graph`, each format written and run by :mod:`.export_formats` (their names are
re-exported here).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import ModelError, ViasegError
from .export_formats import (
    FORMATS,
    ONNX_OPSET,
    RUNNERS,
    ExportError,
    _runtime_name,
    _tflite_interpreter,
    _write_onnx,
    _write_savedmodel,
    _write_tflite,
    load_runner,
    run_onnx,
    run_savedmodel,
    run_tflite,
)
from .export_graph import (
    INPUT_NAME,
    OUTPUT_NAME,
    _predictor,
    check_images,
    full_resolution,
    network_input,
    serving_module,
)
from .modelio import as_umask_allows

__all__ = [
    "FLOAT32_TOLERANCE",
    "FORMATS",
    "INPUT_NAME",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "QUANTIZE",
    "RUNNERS",
    "SAVEDMODEL_META",
    "TTA_MODES",
    "ExportError",
    "ExportResult",
    "check_images",
    "export_meta",
    "export_model",
    "full_resolution",
    "load_runner",
    "meta_path",
    "network_input",
    "run_onnx",
    "run_savedmodel",
    "run_tflite",
    "serving_module",
    "_predictor",
    "_tflite_interpreter",  # private, but tests and tests/perf/bench_export.py use them
]

QUANTIZE = ("none", "float16", "int8")
TTA_MODES = ("model", "flip", "none")
SAVEDMODEL_META = "viaseg.json"
# the largest |exported - Keras| a float32 export may show on the check images; float16 / int8 only report it
FLOAT32_TOLERANCE = 1e-4


@dataclass
class ExportResult:
    """What :func:`export_model` wrote. ``max_abs_diff``: largest difference of the exported model (run by
    ``runtime``) from viaseg's Keras predictor on the check images; ``None`` when no runtime was at hand."""

    path: Path
    meta_path: Path
    fmt: str
    quantize: str
    size_bytes: int
    seconds: float
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    runtime: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "meta_path": str(self.meta_path),
            "format": self.fmt,
            "quantize": self.quantize,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "runtime": self.runtime,
        }


def meta_path(out: str | Path, fmt: str) -> Path:
    """Where the metadata JSON of an export to ``out`` goes: ``out/viaseg.json`` for a SavedModel folder,
    ``out.json`` (``model.onnx`` -> ``model.onnx.json``) beside a file."""
    out = Path(out)
    return out / SAVEDMODEL_META if fmt == "savedmodel" else out.with_name(out.name + ".json")


# ------------------------------------------------------------------------------------------- checks


def _check_options(fmt: str, quantize: str, tta: str) -> tuple[str, str, str]:
    fmt = str(fmt).lower()
    quantize = str(quantize or "none").lower()
    tta = str(tta or "model").lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (choose {', '.join(FORMATS)})")
    if quantize not in QUANTIZE:
        raise ExportError(f"unknown quantization {quantize!r} (choose {', '.join(QUANTIZE)})")
    if quantize != "none" and fmt != "tflite":
        raise ExportError(f"--quantize {quantize} applies to --to tflite only, not {fmt}")
    if tta not in TTA_MODES:
        raise ExportError(f"unknown tta mode {tta!r} (choose {', '.join(TTA_MODES)})")
    return fmt, quantize, tta


def _check_model_file(path: Path) -> dict[str, Any]:
    """The model's viaseg metadata; ``ModelError`` naming the file unless it is a viaseg ``.keras`` model."""
    from .modelio import read_meta

    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a .keras model file")
    meta = read_meta(path)  # ModelError naming the file when it is no zip
    if not meta:
        raise ModelError(
            f"{path}: not a viaseg model (no viaseg_meta.json inside; models from `viaseg train` have one)"
        )
    return meta


def _check_out(out: Path, fmt: str, model_path: Path | None = None) -> None:
    """Refuse an output path that cannot be written, or whose writing would destroy a file that is not an
    earlier export (the model itself, an annotation file, a photo), before anything slow runs."""
    if model_path is not None and out.resolve() == model_path.resolve():
        raise ExportError(
            f"{out}: is the model being exported; give the export another name (e.g. {out.stem}.{fmt})"
        )
    parent = out.parent
    there = parent.absolute()  # missing folders are made, as `viaseg predict` makes its --out (docs/deploy.md
    while not there.exists() and there != there.parent:  # exports straight into serving/damage/1)
        there = there.parent
    if not there.is_dir():
        raise ExportError(f"{out}: {there} is not a folder")
    if not os.access(there, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: cannot write into {there} (permission denied)")
    if fmt == "savedmodel":
        if out.exists() and not out.is_dir():
            raise ExportError(f"{out}: exists and is a file; a SavedModel is a folder")
        if out.is_dir() and any(out.iterdir()) and not (out / "saved_model.pb").exists():
            raise ExportError(f"{out}: a folder that is not empty and holds no SavedModel; not replaced")
    elif out.is_dir():
        raise ExportError(f"{out}: is a folder; give a file name (e.g. model.{fmt})")
    elif out.exists() and out.suffix.lower() != f".{fmt}":
        raise ExportError(
            f"{out}: exists and is not a .{fmt} file; not replaced (give a new name, e.g. model.{fmt})"
        )
    m = meta_path(out, fmt)
    if fmt != "savedmodel" and m.is_dir():
        raise ExportError(f"{m}: is a folder; the metadata JSON cannot be written there")
    if fmt != "savedmodel" and m.exists() and not _is_export_meta(m):
        raise ExportError(
            f"{m}: exists and is not the metadata of an earlier export; not replaced (give the export another name)"
        )


def _is_export_meta(path: Path) -> bool:
    """Whether ``path`` is the metadata JSON an earlier export wrote (so replacing it loses nothing)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "format" in meta and "source_model" in meta


# ------------------------------------------------------------------------------------------- the graph


# ------------------------------------------------------------------------------------------- export


def _training_config(model_path: Path, meta: dict[str, Any]) -> dict | None:
    cfg = meta.get("config")
    if isinstance(cfg, dict):
        return cfg
    run_cfg = model_path.parent / "config.json"  # a run folder's copy
    try:
        data = json.loads(run_cfg.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def export_meta(model_path: Path, predictor, fmt: str, quantize: str, tta: str, artifact: str) -> dict:
    """The metadata JSON written beside an export (see the module docs)."""
    h, w = predictor.input_hw
    meta = predictor.meta
    try:
        from importlib.metadata import version

        viaseg_version = version("viaseg")
    except Exception:  # a source checkout without installed metadata
        viaseg_version = meta.get("viaseg_version")
    return {
        "format": fmt,
        "quantize": quantize,
        "file": artifact,
        "input": {
            "name": INPUT_NAME,
            "dtype": "uint8",
            "shape": [None, h, w, 3],
            "layout": "NHWC",
            "color": "RGB",
            "how": f"resize the photo to {w}x{h} (width x height, stretched, no letterbox) with "
            f"{predictor.resize!r} interpolation; scaling ({meta.get('input_scale', 'rgb/255')}) is in the graph",
        },
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": [None, h, w],
            "meaning": f"probability of {predictor.foreground_name!r} per pixel at the input size; resize it "
            "bilinearly to the photo's size, then pixel is damage where probability > threshold",
        },
        "input_size": [h, w],
        "resize": predictor.resize,
        "input_scale": meta.get("input_scale", meta.get("normalize", "rgb/255")),
        "threshold": predictor.threshold,
        "class_names": predictor.class_names or ["damage"],
        "foreground": predictor.foreground_name,
        "tta": tta,
        "mirror_average": bool(predictor.tta),
        "scales": [list(hw) for hw in predictor.scale_sizes()],
        "config": _training_config(model_path, meta),
        "source_model": str(model_path),
        "model_meta": meta,
        "viaseg_version": viaseg_version,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` artifact to ``out`` (a file, or a SavedModel folder replacing an older one)."""
    if tmp.is_dir():
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        as_umask_allows(tmp)  # mkstemp made it 0600: a model on a server was unreadable to other users
        os.replace(tmp, out)


def export_model(
    model_path: str | Path,
    out: str | Path,
    fmt: str,
    quantize: str = "none",
    tta: str = "model",
    check: bool = True,
    on_status: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export the viaseg model ``model_path`` to ``out`` as ``fmt`` (:data:`FORMATS`), TFLite weights as
    ``quantize`` (:data:`QUANTIZE`), with the averages ``tta`` (:data:`TTA_MODES`) in the graph. With ``check``
    the exported model is run by its own runtime on :func:`check_images` and compared with the Keras predictor
    (``ExportError`` when a float32 export differs by more than :data:`FLOAT32_TOLERANCE`). ``on_status`` gets
    short progress lines. Raises ``ModelError`` / ``ExportError`` naming the file."""
    say = on_status or (lambda _msg: None)
    t0 = time.perf_counter()
    fmt, quantize, tta = _check_options(fmt, quantize, tta)
    model_path, out = Path(model_path), Path(out)
    _check_model_file(model_path)
    _check_out(out, fmt, model_path)

    say(f"loading {model_path.name}")
    predictor = _predictor(model_path, tta)
    module = serving_module(predictor, batch=1 if fmt == "tflite" else None)
    mpath = meta_path(out, fmt)
    meta = export_meta(model_path, predictor, fmt, quantize, tta, out.name)

    say(f"converting to {fmt}" + (f" ({quantize})" if quantize != "none" else ""))
    out.parent.mkdir(parents=True, exist_ok=True)  # _check_out found where it can be made
    tmp = _temp_path(out, fmt)
    try:
        _convert(module, tmp, fmt, quantize, meta, model_path, out)
        result = ExportResult(out, mpath, fmt, quantize, 0, 0.0, meta=meta)
        if check:
            _check_export(tmp, fmt, quantize, predictor, out, result, say)
        _install(tmp, out, mpath, meta)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    result.size_bytes = _size(out)
    result.seconds = time.perf_counter() - t0
    say(f"wrote {out} ({result.size_bytes / 1e6:.2f} MB)")
    return result


def _temp_path(out: Path, fmt: str) -> Path:
    """A free name beside ``out`` to convert into (a SavedModel is a folder, the converter makes it)."""
    if fmt == "savedmodel":
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        shutil.rmtree(tmp)
        return tmp
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    os.close(fd)
    return Path(name)


def _convert(module, tmp: Path, fmt: str, quantize: str, meta: dict, model_path: Path, out: Path) -> None:
    try:
        if fmt == "savedmodel":
            _write_savedmodel(module, tmp)
        elif fmt == "tflite":
            _write_tflite(module, tmp, quantize)
        else:
            _write_onnx(module, tmp, meta)
    except ViasegError:
        raise
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None
    except Exception as exc:  # converters raise many types; the user needs the file
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{model_path}: {fmt} conversion failed ({type(exc).__name__}: {msg})") from exc


def _check_export(
    tmp: Path, fmt: str, quantize: str, predictor, out: Path, result: ExportResult, say
) -> None:
    """Run the exported model ``tmp`` in its own runtime and compare it with the Keras predictor; the
    differences go into ``result`` and its metadata."""
    runtime = _runtime_name(fmt)
    if runtime is None:
        say(f"not checked: the {fmt} runtime is not installed")
        return
    say(f"checking with {runtime}")
    images = check_images(predictor.input_hw)
    want = predictor.predict_inputs(images)
    try:
        got = RUNNERS[fmt](tmp, images)
    except Exception as exc:  # the runtime's own error types
        raise ExportError(f"{out}: the exported model does not run in {runtime} ({exc})") from exc
    if got.shape != want.shape:
        raise ExportError(f"{out}: exported output shape {got.shape}, expected {want.shape}")
    if not np.isfinite(got).all():
        raise ExportError(f"{out}: the exported model gives NaN or infinite values in {runtime}")
    diff = np.abs(got.astype(np.float64) - want)
    result.max_abs_diff = float(diff.max())
    result.mean_abs_diff = float(diff.mean())
    result.runtime = runtime
    result.meta["check"] = {
        "runtime": runtime,
        "images": int(len(images)),
        "max_abs_diff": result.max_abs_diff,
        "mean_abs_diff": result.mean_abs_diff,
    }
    if quantize == "none" and result.max_abs_diff > FLOAT32_TOLERANCE:
        raise ExportError(
            f"{out}: the exported model differs from the Keras model by up to "
            f"{result.max_abs_diff:.2g} (more than {FLOAT32_TOLERANCE:g}); not written"
        )
    if fmt == "onnx":  # the embedded copy carries the check too
        import onnx

        proto = onnx.load(str(tmp))
        for entry in proto.metadata_props:
            if entry.key == "viaseg":
                entry.value = json.dumps(result.meta, default=str)
        onnx.save(proto, str(tmp))


def _install(tmp: Path, out: Path, mpath: Path, meta: dict) -> None:
    """Put the checked export in place of ``out`` and write its metadata file beside it."""
    try:
        _replace(tmp, out)
        text = json.dumps(meta, indent=2, default=str) + "\n"
        fd, mtmp = tempfile.mkstemp(prefix=f".{mpath.name}.tmp-", dir=mpath.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        as_umask_allows(mtmp)
        os.replace(mtmp, mpath)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
