"""Per-format code of ``viaseg export``: the writers that turn the serving module into a SavedModel folder, a
``.tflite`` file (float32, float16 or dynamic-range int8 weights) or an ``.onnx`` file (tf2onnx, opset
:data:`ONNX_OPSET`), and the runners that load an exported file in its own runtime (TensorFlow, LiteRT or
``tf.lite``, onnxruntime) to check it against the Keras model (:func:`load_runner`, :data:`RUNNERS`).
:class:`ExportError` is the error of an export that cannot be done.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..base.errors import ViasegError
from .export_graph import INPUT_NAME, OUTPUT_NAME

FORMATS = ("savedmodel", "tflite", "onnx")
ONNX_OPSET = 17


class ExportError(ViasegError):
    """An export that cannot be done: unknown format, output path not writable, converter missing or failing."""


# ------------------------------------------------------------------------------------------- runners


def load_runner(fmt: str, path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """The exported model at ``path`` loaded once in its own runtime, as a function ``uint8 [N, H, W, 3]`` ->
    ``float32 [N, H, W]`` probabilities: the ``serving_default`` signature of a SavedModel (TensorFlow), a
    ``.tflite`` file in LiteRT's interpreter (else ``tf.lite``; one image per call: its batch size is 1), an
    ``.onnx`` file in onnxruntime (CPU)."""
    if fmt == "savedmodel":
        from . import tfsetup

        tf = tfsetup.load_tf()
        sig = tf.saved_model.load(str(path)).signatures["serving_default"]
        return lambda images: sig(**{INPUT_NAME: tf.constant(np.asarray(images, np.uint8))})[
            OUTPUT_NAME
        ].numpy()
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: sess.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(images, np.uint8)})[0]
    if fmt != "tflite":
        raise ExportError(f"unknown export format {fmt!r} (choose {', '.join(FORMATS)})")
    interp, _ = _tflite_interpreter(str(path))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]

    def run(images: np.ndarray) -> np.ndarray:
        probs = []
        for img in np.asarray(images, np.uint8):
            interp.set_tensor(inp, img[None])
            interp.invoke()
            probs.append(np.array(interp.get_tensor(out)[0]))
        return (
            np.stack(probs)
            if probs
            else np.zeros((0, *interp.get_output_details()[0]["shape"][1:]), np.float32)
        )

    return run


def run_savedmodel(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Probabilities from an exported SavedModel's ``serving_default`` signature (TensorFlow)."""
    return load_runner("savedmodel", path)(images)


def _tflite_interpreter(path: str):
    try:
        from ai_edge_litert.interpreter import Interpreter  # the TFLite runtime (LiteRT)

        return Interpreter(model_path=path), "ai-edge-litert"
    except ImportError:
        from . import tfsetup

        tf = tfsetup.load_tf()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated in favour of LiteRT
            return tf.lite.Interpreter(model_path=path), "tensorflow.lite"


def run_tflite(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Probabilities from an exported ``.tflite`` file, one image per interpreter call."""
    return load_runner("tflite", path)(images)


def run_onnx(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Probabilities from an exported ``.onnx`` file (onnxruntime, CPU)."""
    return load_runner("onnx", path)(images)


RUNNERS: dict[str, Callable[[str | Path, np.ndarray], np.ndarray]] = {
    "savedmodel": run_savedmodel,
    "tflite": run_tflite,
    "onnx": run_onnx,
}


def _runtime_name(fmt: str) -> str | None:
    """The runtime that checks ``fmt``, or ``None`` when it is not installed."""
    if fmt == "savedmodel":
        return "tensorflow"
    if fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return None
        return "onnxruntime"
    try:
        import ai_edge_litert  # noqa: F401

        return "ai-edge-litert"
    except ImportError:
        return "tensorflow.lite"


# ------------------------------------------------------------------------------------------- writers


def _write_savedmodel(module, tmp: Path) -> None:
    from . import tfsetup

    tf = tfsetup.load_tf()
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})


def _write_tflite(module, tmp: Path, quantize: str) -> None:
    from . import tfsetup

    tf = tfsetup.load_tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # weights frozen into constants first: converted with the module's variables, TFLite kept them as resource
    # variables that its runtime reads uninitialised (NaN under XNNPACK); nothing is left for the (required)
    # trackable object to track
    fn = convert_variables_to_constants_v2(module.serve.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], tf.Module())
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":  # dynamic range: int8 weights, float activations, no calibration data
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    tmp.write_bytes(converter.convert())


def _write_onnx(module, tmp: Path, meta: dict[str, Any]) -> None:
    try:
        import onnx
        import tf2onnx
    except ImportError as exc:
        raise ExportError(
            f"ONNX export needs tf2onnx and onnx ({exc.name} is not installed): pip install 'viaseg[export]'"
        ) from None
    try:  # Keras 3 applies the same numpy-2 fixes to tf2onnx before its own ONNX export
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        patch_tf2onnx()
    except Exception:  # an older/newer Keras without the patch: tf2onnx as it is
        pass
    fn = module.serve.get_concrete_function()
    spec = fn.structured_input_signature[0]
    model_proto, _ = tf2onnx.convert.from_function(module.serve, input_signature=spec, opset=ONNX_OPSET)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = "viaseg", json.dumps(meta, default=str)
    onnx.save(model_proto, str(tmp))
