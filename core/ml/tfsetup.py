"""TensorFlow start-up settings shared by every engine path (training, prediction, the GUI's workers).

oneDNN (TensorFlow's default CPU kernels on x86) trains the U-Net about 1.9x faster per epoch on this project's
2-core machine than the plain Eigen kernels (256 px default model: 2.7 s vs 5.1 s). The crashes that made us turn
oneDNN off earlier (glibc "double free or corruption", 3 runs of 3) came right after a "remapper failed" log, so
Grappler's *remapper* pass, which fuses ops into oneDNN kernels, is switched off here: it costs no measurable speed
(2.73 s vs 2.69 s per epoch), and with it off every 10-minute training run and the test suite ran clean.
Training a strided 1x1 convolution on fewer than 16 input channels also crashes oneDNN; the U-Net avoids that
layer (see ``unet.ONEDNN_MIN_STRIDED_1X1_CHANNELS``). ``TF_ENABLE_ONEDNN_OPTS=0`` turns oneDNN off altogether.
"""

from __future__ import annotations

_done = False


def load_tf():
    """Import TensorFlow with viaseg's settings applied (once per process) and return the module."""
    global _done
    import tensorflow as tf_mod

    if not _done:
        _done = True
        try:
            tf_mod.config.optimizer.set_experimental_options({"remapping": False})
        except Exception:  # a TF without this option runs with its defaults
            pass
    return tf_mod
