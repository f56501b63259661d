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
    # how sure the model is there, on average: its probability over an "extra" area, 1 - it over a "missed" one
    confidence: float = 0.0
    # ``AREA_RULE``'s score: where to look first among every photo's areas (higher first)
    score: float = 0.0

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "area": self.area,
            "bbox": list(self.bbox),
            "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
            "confidence": round(self.confidence, 4),
            "score": round(self.score, 6),
        }


# How a disagreement area is scored for a review of every photo's areas at once, worst first (the *Check
# labels* panel's "areas" order; ``bench_label_errors.py`` compares them): ``area_mass`` the model's confidence
# summed over the area, as a share of the photo; ``area_confidence`` its mean confidence alone; ``area_relative``
# the summed confidence over the photo's annotated-or-predicted area (an area as large as the damage counts
# as much on a close-up as on a whole car); ``area_sqrt_relative`` the mean confidence times the square root of
# that share (a sure speck still counts, a large sure area more).
AREA_RULES = ("area_mass", "area_confidence", "area_relative", "area_sqrt_relative")
# twenty-first session (docs/RESULTS.md), with extra areas apart from the regions looked for at EXTRA_THRESHOLD:
# the first fifth of the areas held 0.714 of the injected errors over five seeds (area_confidence at the model's
# threshold, the twentieth session's order: 0.594), the first 40 areas 0.679 (0.619); on seeds 3-4, not used to
# choose, 0.79 / 0.73 against 0.61 / 0.67; deleted regions found 0.71 against 0.40. Thirty-first session: on the
# EfficientNet-Lite0 folds' maps of two further seeds no other score tried did better (0.56-0.82 against 0.75 / 0.82)
AREA_RULE = "area_sqrt_relative"
# where the model says damage apart from every region, an area is listed from this probability up (or from the
# model's threshold when that is lower): damage an annotator left out is often damage the model is unsure of;
# next to a region (the model's soft edge around it) the model's threshold stays
EXTRA_THRESHOLD = 0.3


def listed(found: list[Disagreement], n: int) -> list[Disagreement]:
    """The areas a results file keeps of one photo: its ``n`` largest and its ``n`` highest scoring (the areas
    order needs the surest, the photos order the largest), largest first."""
    keep = {id(d) for d in found[:n]} | {id(d) for d in sorted(found, key=lambda d: -d.score)[:n]}
    return [d for d in found if id(d) in keep]


def area_score(rule: str, area: int, confidence: float, image_px: int, union_px: int) -> float:
    """``rule``'s score (one of ``AREA_RULES``) of an area of ``area`` pixels at mean ``confidence`` in a photo of
    ``image_px`` pixels whose annotation and prediction together cover ``union_px``."""
    if rule == "area_mass":
        return confidence * area / max(1, image_px)
    if rule == "area_confidence":
        return confidence
    if rule == "area_relative":
        return confidence * area / max(1, union_px)
    if rule == "area_sqrt_relative":
        return confidence * (area / max(1, union_px)) ** 0.5
    raise ValueError(f"unknown area rule {rule!r} ({', '.join(AREA_RULES)})")


def _apart(mask: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` (outside ``truth``) that do not touch ``truth``: damage of its own, not
    the model's soft edge around an annotated region."""
    import cv2

    free = mask & ~truth
    n, labels = cv2.connectedComponents(free.astype(np.uint8), connectivity=8)
    if n <= 1:
        return free
    near = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    touching = np.zeros(n, bool)
    touching[np.unique(labels[near & free])] = True
    touching[0] = True
    return ~touching[labels]


def disagreements(
    truth: np.ndarray,
    probs: np.ndarray,
    threshold: float = 0.5,
    min_fraction: float = 0.001,
    rule: str = AREA_RULE,
    extra_threshold: float | None = EXTRA_THRESHOLD,
) -> list[Disagreement]:
    """Connected areas where ``probs > threshold`` and ``truth`` differ, each at least ``min_fraction`` of the
    image (smaller ones are outline noise), largest first, each with the model's mean confidence there and
    ``rule``'s score (``AREA_RULES``). ``extra`` areas (predicted, not annotated) that touch no annotated
    region are looked for from ``min(threshold, extra_threshold)`` up (``None``: from ``threshold``)."""
    import cv2

    from ..annotation.raster import mask_to_polygons

    t = np.asarray(truth) > 0
    prob = np.asarray(probs, dtype=np.float32)
    p = prob > threshold
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: {t.shape} vs {p.shape}")
    look = p
    if extra_threshold is not None and extra_threshold < threshold:
        look = p | _apart(prob > extra_threshold, t)
    min_area = max(1, int(min_fraction * t.size))
    union = int(np.count_nonzero(t | look))
    out: list[Disagreement] = []
    for kind, diff, sure in (("missed", t & ~p, 1.0 - prob), ("extra", look & ~t, prob)):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(diff.astype(np.uint8), connectivity=8)
        if n <= 1:
            continue
        mass = np.bincount(labels.ravel(), weights=sure.ravel(), minlength=n)
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area < min_area:
                continue
            polys = mask_to_polygons((labels[y : y + h, x : x + w] == k).astype(np.uint8), 1.0, 0.0)
            outline = [(float(px + x), float(py + y)) for px, py in polys[0]] if polys else []
            conf = float(mass[k]) / area
            out.append(
                Disagreement(
                    kind, area, (x, y, w, h), outline, conf, area_score(rule, area, conf, t.size, union)
                )
            )
    out.sort(key=lambda d: -d.area)
    return out


def rank(scores: dict[str, float], disagreement_area: dict[str, int] | None = None) -> list[str]:
    """Image names worst first: lowest out-of-fold Dice, ties broken by the larger disagreeing area."""
    areas = disagreement_area or {}
    return sorted(scores, key=lambda name: (scores[name], -areas.get(name, 0), name))


# ------------------------------------------------------------------------------------------ ranking rules
# How an image's annotation and a probability map it was not trained on are turned into one "look here first"
# number, higher = more likely a label error. ``dice`` is the rule :func:`rank` applies; the others weigh each
# disagreeing pixel by how sure the model is there (|label - probability|), so a confident contradiction counts
# more than the half-believed outline of a damage the model sees poorly. ``bench_label_errors.py`` compares them.
RULES = (
    "dice",
    "confident_area",
    "largest_confident",
    "confident_missed",
    "confident_extra",
    "relative_confident",
)
DEFAULT_RULE = "dice"


def error_score(rule: str, truth: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """``rule``'s score of one image (higher = look first); ``truth`` the annotation mask, ``probs`` the map."""
    t = np.asarray(truth) > 0
    p = np.asarray(probs, dtype=np.float32)
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: {t.shape} vs {p.shape}")
    pred = p > threshold
    n = float(t.size)
    if rule == "dice":
        inter, total = float((t & pred).sum()), float(t.sum() + pred.sum())
        return 1.0 - (2.0 * inter / total if total else 1.0)
    missed = np.where(t & ~pred, 1.0 - p, 0.0)
    extra = np.where(pred & ~t, p, 0.0)
    if rule == "confident_missed":
        return float(missed.sum()) / n
    if rule == "confident_extra":
        return float(extra.sum()) / n
    if rule == "confident_area":
        return float(missed.sum() + extra.sum()) / n
    if rule == "relative_confident":
        return float(missed.sum() + extra.sum()) / max(1.0, float((t | pred).sum()))
    if rule == "largest_confident":
        import cv2

        best = 0.0
        for weights, diff in ((missed, t & ~pred), (extra, pred & ~t)):
            k, labels = cv2.connectedComponents(diff.astype(np.uint8), connectivity=8)
            if k > 1:
                mass = np.bincount(labels.ravel(), weights=weights.ravel(), minlength=k)[1:]
                best = max(best, float(mass.max()))
        return best / n
    raise ValueError(f"unknown ranking rule {rule!r} ({', '.join(RULES)})")


def rank_by(
    rule: str, evidence: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float = 0.5
) -> list[str]:
    """Image names worst first by ``rule``, ties (e.g. several images at Dice 0) broken by the confident
    disagreeing area; ``evidence`` maps each name to (annotation mask, probability map)."""
    key = {
        name: (
            -error_score(rule, t, p, threshold),
            -error_score("confident_area", t, p, threshold),
            name,
        )
        for name, (t, p) in evidence.items()
    }
    return sorted(key, key=key.__getitem__)
