"""Training plots (matplotlib, Agg backend only: core never touches a GUI toolkit)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict[str, list[float]], path: str | Path) -> Path:
    """Loss, Dice and accuracy per epoch, train and validation, into one PNG."""
    plt = _pyplot()
    path = Path(path)
    panels = [("loss", "loss"), ("dice", "Dice"), ("accuracy", "pixel accuracy")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (key, title) in zip(axes, panels, strict=True):
        lines = [(key, "-", "train"), (f"val_{key}", "--", "val")]
        if key == "dice":
            lines = [
                (key, "-", "train (soft)"),
                (f"val_{key}", "--", "val (soft)"),
                ("val_hard_dice", ":", "val (hard, per image)"),
            ]
        for k, style, label in lines:
            vals = history.get(k)
            if vals:
                ax.plot(range(1, len(vals) + 1), vals, style, marker=".", label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_samples(
    images, true_masks, pred_masks, path: str | Path, title: str = "", threshold: float = 0.5
) -> Path:
    """A grid: image | true mask | predicted probability | overlay (prediction >= threshold in red)."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(images)
    fig, axes = plt.subplots(max(n, 1), 4, figsize=(10, 2.6 * max(n, 1)), squeeze=False)
    for i in range(n):
        img = np.asarray(images[i])
        if img.dtype != np.uint8:
            img = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        t = np.asarray(true_masks[i]).squeeze()
        p = np.asarray(pred_masks[i]).squeeze()
        over = img.copy()
        hit = p >= threshold
        over[hit] = (0.5 * over[hit] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
        for ax, (pic, cmap, name) in zip(
            axes[i],
            ((img, None, "image"), (t, "gray", "truth"), (p, "magma", "prediction"), (over, None, "overlay")),
            strict=True,
        ):
            ax.imshow(pic, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path


def sample_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``n`` items."""
    if n <= 0 or k <= 0:
        return []
    k = min(k, n)
    return sorted({int(math.floor(i * n / k)) for i in range(k)})
