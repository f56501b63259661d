"""``viaseg export MODEL --to savedmodel|tflite|onnx --out PATH [--quantize none|float16|int8]``.

Writes a model that runs without viaseg (see :mod:`viaseg.core.ml.export` and docs/deploy.md): input RGB ``uint8``
images at the model's input size, output the damage probability map; metadata JSON in ``PATH.json`` (or
``PATH/viaseg.json`` for a SavedModel folder). The exported model is run once by its own runtime and compared
with viaseg's Keras predictor; the difference is printed (``--json``: one JSON object on stdout).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..ml.export import FORMATS, QUANTIZE, TTA_MODES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model as TensorFlow SavedModel, TFLite or ONNX (runs without viaseg)",
        description="Export MODEL for deployment: the exported model takes RGB uint8 images at the model's "
        "input size (N x H x W x 3) and returns the damage probability map (N x H x W); scaling and the "
        "model's test-time averages are inside it. Metadata (input size, threshold, class names, training "
        "config) goes to PATH.json, or PATH/viaseg.json for a SavedModel. See docs/deploy.md.",
    )
    p.add_argument("model", help="viaseg .keras model file")
    p.add_argument("--to", dest="fmt", required=True, choices=FORMATS, help="export format")
    p.add_argument("--out", required=True, help="output file (.tflite, .onnx) or SavedModel folder")
    p.add_argument(
        "--quantize",
        choices=QUANTIZE,
        default="none",
        help="TFLite weights: none (float32, default), float16, or int8 (dynamic range)",
    )
    p.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="model",
        help="averages inside the graph: model = as the model's metadata says, like `viaseg predict` "
        "(default); flip = the mirror image only, like the app; none = one network pass (fastest)",
    )
    p.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not run the exported model in its runtime to compare it with the Keras model",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ml.export import export_model

    def status(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr)

    if args.fmt != "savedmodel" and str(args.out).endswith(("/", "\\")):
        from ..ml.export import ExportError

        raise ExportError(f"--out {args.out}: names a folder; give a file name (e.g. model.{args.fmt})")
    res = export_model(
        args.model, args.out, args.fmt, args.quantize, tta=args.tta, check=args.check, on_status=status
    )
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
        return 0
    print(
        f"exported {args.model} -> {res.path} ({res.fmt}"
        + (f", {res.quantize}" if res.quantize != "none" else "")
        + f", {res.size_bytes / 1e6:.2f} MB, {res.seconds:.1f} s)"
    )
    print(f"metadata: {res.meta_path}")
    if res.max_abs_diff is not None:
        print(
            f"checked with {res.runtime}: largest difference from the Keras model {res.max_abs_diff:.2g} "
            f"(mean {res.mean_abs_diff:.2g})"
        )
    return 0
