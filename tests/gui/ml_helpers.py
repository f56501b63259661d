"""Tiny generated data for the training/prediction GUI tests (not a test module)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def make_project(root: Path, n_train: int = 8, n_val: int = 4, size: int = 48, seed: int = 0) -> Path:
    """A dataset folder with ``train/`` and ``val/`` splits: gray noise photos with one bright ellipse each,
    annotated as a VIA 2 polygon. Returns the folder."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for split, n in (("train", n_train), ("val", n_val)):
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        via = {}
        for i in range(n):
            img = rng.integers(40, 90, size=(size, size, 3), dtype=np.uint8)
            cx, cy = (int(v) for v in rng.integers(size // 4, 3 * size // 4, size=2))
            rx, ry = (int(v) for v in rng.integers(size // 8, size // 4, size=2))
            cv2.ellipse(img, (cx, cy), (rx, ry), 0, 0, 360, (230, 200, 60), -1)
            name = f"{split}{i}.png"
            cv2.imwrite(str(d / name), img[..., ::-1])
            t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            xs = np.round(cx + rx * np.cos(t)).astype(int).tolist()
            ys = np.round(cy + ry * np.sin(t)).astype(int).tolist()
            size_b = (d / name).stat().st_size
            via[f"{name}{size_b}"] = {
                "filename": name,
                "size": size_b,
                "regions": [
                    {
                        "shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
                        "region_attributes": {},
                    }
                ],
                "file_attributes": {},
            }
        (d / "via_region_data.json").write_text(json.dumps(via), encoding="utf-8")
    return root


def make_model(path: Path, size: int = 32) -> Path:
    """An untrained tiny U-Net saved as a viaseg model file, the same weights whatever ran before it.

    Unseeded, its weights followed the random state earlier tests left behind, and in one order of the whole
    suite its map reached 0.996 on a photo where it usually stays near 0.5 (a prediction-panel test that expects
    nothing above 0.99 failed in most CI runs and passed alone)."""
    import keras
    from viaseg.core.ml.modelio import save_model
    from viaseg.core.ml.unet import build_unet_xception

    keras.utils.set_random_seed(0)
    model = build_unet_xception(input_size=size, base_width=4)
    return save_model(model, path, {"input_size": size, "threshold": 0.5})


TINY = dict(
    encoder="xception", base_width=4, sample_every=1, n_samples=2, patience=50, lr_schedule="constant"
)


def tiny_settings(panel, epochs: int = 2) -> None:
    """Set a TrainingPanel's form to a tiny, fast run."""
    panel.image_size.setValue(32)
    panel.epochs.setValue(epochs)
    panel.batch_size.setValue(4)
    panel.augment.setChecked(False)
