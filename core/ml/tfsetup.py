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


_threads_set = False


def interactive_threads() -> tuple[int, int] | None:
    """Thread pools for a process that predicts one photo at a time while a user waits (the app's): two
    inter-op threads run the Predictor's two branches (a photo and its mirror image, ``Predictor._function``'s
    ``halves``) at once, each op on half the cores. TensorFlow's defaults spread each op over every core
    instead, which a 288-px network at batch 2 barely uses (twenty-sixth session, 2 cores: the default model's
    app prediction of a 2-MP photo 57 -> 48 ms with the branches, 41 ms with these pools). Must run before
    TensorFlow executes anything in the process; returns ``(inter, intra)``, or None when it is too late (TF's
    own pools stay) or was done already."""
    global _threads_set
    if _threads_set:
        return None
    _threads_set = True
    import os

    tf = load_tf()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    intra = max(1, cores // 2)
    try:
        tf.config.threading.set_inter_op_parallelism_threads(2)
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    except RuntimeError:  # TensorFlow already runs in this process
        return None
    return 2, intra
