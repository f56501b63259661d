"""TensorFlow start-up settings shared by every engine path (training, prediction, the GUI's workers).

oneDNN (TensorFlow's default CPU kernels on x86) trains the U-Net about 1.9x faster per epoch on this project's
2-core machine than the plain Eigen kernels (256 px default model: 2.7 s vs 5.1 s). The crashes that made us turn
oneDNN off earlier (glibc "double free or corruption", 3 runs of 3) came right after a "remapper failed" log, so
Grappler's *remapper* pass, which fuses ops into oneDNN kernels, is switched off here: it costs no measurable speed
(2.73 s vs 2.69 s per epoch), and with it off every 10-minute training run and the test suite ran clean.
One-image training steps still crash oneDNN (see :func:`guard_single_image_batches`). ``TF_ENABLE_ONEDNN_OPTS=0``
turns oneDNN off altogether.
"""

from __future__ import annotations

import os
import sys

_done = False


def load_tf():
    """Import TensorFlow with viaseg's settings applied (once per process) and return the module."""
    global _done
    import tensorflow as tf_mod

    if not _done:
        _done = True
        try:
            tf_mod.config.optimizer.set_experimental_options({"remapping": False})
        except Exception:  # noqa: BLE001 - a TF without this option runs with its defaults
            pass
    return tf_mod


def onednn_enabled() -> bool:
    """Whether TensorFlow in this process uses (or, not yet imported, will use) oneDNN's CPU kernels."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false", "off")


def guard_single_image_batches(batch_size: int) -> str | None:
    """oneDNN's CPU kernels (TF 2.21) abort the process with heap corruption on training steps of one image
    (measured: batch 1 at 32 and 64 px crashed, batch 2 and oneDNN off did not). Call before TensorFlow is
    imported: with ``batch_size`` 1, oneDNN is switched off for this process (slower, but it runs) and a note is
    returned. If TensorFlow is already running with oneDNN, raises ``RuntimeError`` with a message for the user
    instead of letting the process die."""
    if batch_size >= 2 or not onednn_enabled():
        return None
    if "tensorflow" not in sys.modules:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
        return ("batch size 1: TensorFlow's oneDNN kernels are off for this run (they crash on one-image "
                "training steps), so it trains more slowly; batch size 2 or more is faster")
    raise RuntimeError("batch size 1 cannot train in this process: TensorFlow's oneDNN kernels crash on "
                       "one-image training steps; choose a batch size of 2 or more")
