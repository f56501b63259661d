"""Saving and loading viaseg models: a Keras ``.keras`` file that carries its own metadata.

The metadata (input size, threshold, class names, training config...) is JSON stored *inside* the ``.keras`` zip
as ``viaseg_meta.json``; Keras ignores the extra member, so the file stays a normal Keras model. Loading uses
``safe_mode=True``: every custom object viaseg needs is registered by importing ``viaseg.core.ml.unet``.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ..base.errors import ModelError

META_NAME = "viaseg_meta.json"


def as_umask_allows(path: str | Path) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode a plain new file gets (0666 less the
    umask, usually 0644), so a saved or exported model can be read by whoever reads the run folder."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def save_model(model, path: str | Path, meta: dict[str, Any]) -> Path:
    """Save ``model`` to ``path`` (.keras) with ``meta`` embedded; atomic (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=path.parent, prefix=".tmp-")
    os.close(fd)
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(META_NAME, json.dumps(meta, indent=2, default=str))
        as_umask_allows(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The viaseg metadata of a model file, without loading TensorFlow."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if META_NAME not in zf.namelist():
                return {}
            meta = json.loads(zf.read(META_NAME).decode("utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: no such model file") from exc
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a .keras model file ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: its {META_NAME} is not a JSON object (the model file is damaged)")
    return meta


def load_model(path: str | Path):
    """Return ``(keras_model, meta)``. Raises ``ModelError`` with the file name on any failure."""
    path = Path(path)
    meta = read_meta(path)
    from . import tfsetup

    tfsetup.load_tf()
    import keras

    from . import unet  # noqa: F401  (registers custom objects)

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types; report them as one
        raise ModelError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
    return model, meta
