"""Where a model that never saw a photo disagrees with its annotation: the raw material for finding label errors.

Given an image's annotation mask and an out-of-fold probability map (``viaseg crossval`` keeps one per image),
:func:`disagreements` lists the connected areas where they differ, largest first: ``missed`` (annotated, not
predicted: a region the model finds wrong, or damage the annotator traced too generously) and ``extra``
(predicted, not annotated: damage the annotator may have missed). :func:`rank` orders images for review, worst
first. No TensorFlow here: the maps are files or arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Disagreement:
    kind: str  # "missed" (annotated, not predicted) or "extra" (predicted, not annotated)
    area: int  # pixels
    bbox: tuple[int, int, int, int]  # x, y, width, height
    polygon: list[tuple[float, float]] = field(default_factory=list)  # outline, for an edit that applies it

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "area": self.area,
            "bbox": list(self.bbox),
            "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
        }


def disagreements(
    truth: np.ndarray, probs: np.ndarray, threshold: float = 0.5, min_fraction: float = 0.001
) -> list[Disagreement]:
    """Connected areas where ``probs > threshold`` and ``truth`` differ, each at least ``min_fraction`` of the
    image (smaller ones are outline noise), largest first."""
    import cv2

    from ..annotation.raster import mask_to_polygons

    t = np.asarray(truth) > 0
    p = np.asarray(probs) > threshold
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: {t.shape} vs {p.shape}")
    min_area = max(1, int(min_fraction * t.size))
    out: list[Disagreement] = []
    for kind, diff in (("missed", t & ~p), ("extra", p & ~t)):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(diff.astype(np.uint8), connectivity=8)
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area < min_area:
                continue
            polys = mask_to_polygons((labels[y : y + h, x : x + w] == k).astype(np.uint8), 1.0, 0.0)
            outline = [(float(px + x), float(py + y)) for px, py in polys[0]] if polys else []
            out.append(Disagreement(kind, area, (x, y, w, h), outline))
    out.sort(key=lambda d: -d.area)
    return out


def rank(scores: dict[str, float], disagreement_area: dict[str, int] | None = None) -> list[str]:
    """Image names worst first: lowest out-of-fold Dice, ties broken by the larger disagreeing area."""
    areas = disagreement_area or {}
    return sorted(scores, key=lambda name: (scores[name], -areas.get(name, 0), name))
