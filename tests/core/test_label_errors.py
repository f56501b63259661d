"""Disagreement areas between an annotation and an out-of-fold map, and the review order."""

from __future__ import annotations

import numpy as np
import pytest
from viaseg.core.checks.label_errors import disagreements, rank


def test_missed_and_extra_areas_largest_first():
    truth = np.zeros((100, 100), np.uint8)
    truth[10:30, 10:30] = 1  # annotated and predicted: agreement, not listed
    truth[60:90, 60:90] = 1  # annotated, the model sees nothing there: "missed"
    probs = np.zeros((100, 100), np.float32)
    probs[10:30, 10:30] = 0.9
    probs[5:15, 70:90] = 0.8  # predicted, not annotated: "extra"
    probs[50, 50] = 0.9  # one pixel: outline noise, left out
    found = disagreements(truth, probs, 0.5)
    assert [d.kind for d in found] == ["missed", "extra"]
    assert found[0].area == 900 and found[0].bbox == (60, 60, 30, 30)
    assert found[1].area == 200 and found[1].bbox == (70, 5, 20, 10)
    xs = [x for x, _ in found[0].polygon]
    assert min(xs) >= 59 and max(xs) <= 90  # the outline is where the area is
    assert found[0].to_dict()["kind"] == "missed"
    assert disagreements(truth, np.where(truth > 0, 0.9, 0.1), 0.5) == []  # full agreement
    with pytest.raises(ValueError):
        disagreements(truth, probs[:50], 0.5)


def test_rank_puts_the_lowest_dice_first_then_the_larger_disagreement():
    order = rank({"a": 0.9, "b": 0.2, "c": 0.2, "d": 0.5}, {"b": 10, "c": 500})
    assert order == ["c", "b", "d", "a"]
