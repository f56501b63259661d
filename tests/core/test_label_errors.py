"""Disagreement areas between an annotation and an out-of-fold map, and the review order."""

from __future__ import annotations

import numpy as np
import pytest
from viaseg.core.checks.label_errors import (
    AREA_RULES,
    RULES,
    area_score,
    disagreements,
    error_score,
    rank,
    rank_by,
)


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


def test_each_area_has_the_models_confidence_and_a_score_of_each_area_rule():
    truth = np.zeros((100, 100), np.uint8)
    truth[10:30, 10:30] = 1  # agreed: 400 px of the union
    truth[60:70, 60:70] = 1  # annotated, the model at 0.1 there: missed, 90 % sure
    probs = np.full((100, 100), 0.1, np.float32)
    probs[10:30, 10:30] = 0.9
    probs[0:5, 80:100] = 0.7  # predicted, not annotated: extra, 70 % sure, 100 px
    union = 400 + 100 + 100
    for rule in AREA_RULES:
        found = {d.kind: d for d in disagreements(truth, probs, 0.5, rule=rule)}
        assert found["missed"].confidence == pytest.approx(0.9) and found[
            "extra"
        ].confidence == pytest.approx(0.7)
        for d in found.values():
            assert d.score == pytest.approx(area_score(rule, d.area, d.confidence, truth.size, union))
            assert d.to_dict()["score"] == pytest.approx(d.score, abs=1e-6)
    rel = {d.kind: d.score for d in disagreements(truth, probs, 0.5, rule="area_relative")}
    assert rel["missed"] == pytest.approx(0.9 * 100 / union) and rel["missed"] > rel["extra"]
    assert area_score("area_mass", 100, 0.5, 10_000, 600) == pytest.approx(0.005)
    assert area_score("area_confidence", 100, 0.5, 10_000, 600) == 0.5
    with pytest.raises(ValueError):
        area_score("biggest", 1, 1.0, 1, 1)


def test_listed_keeps_the_largest_and_the_surest_areas_in_size_order():
    from viaseg.core.checks.label_errors import Disagreement, listed

    found = [
        Disagreement("extra", a, (0, 0, 1, 1), [], c, c)
        for a, c in ((900, 0.5), (500, 0.6), (300, 0.9), (50, 0.99))
    ]
    assert [d.area for d in listed(found, 2)] == [900, 500, 300, 50]
    assert [d.area for d in listed(found, 1)] == [900, 50]
    assert listed(found, 10) == found and listed([], 3) == []


def test_rank_puts_the_lowest_dice_first_then_the_larger_disagreement():
    order = rank({"a": 0.9, "b": 0.2, "c": 0.2, "d": 0.5}, {"b": 10, "c": 500})
    assert order == ["c", "b", "d", "a"]


def _image(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(annotation, map) of a 100x100 image: the model sees one damage at 20x20 surely, and per ``kind``:
    ``clean`` (it half-sees a second annotated damage: p = 0.4 over it), ``deleted`` (a damage it is sure of
    has no annotation), ``spurious`` (an annotated square where it is sure there is nothing)."""
    truth = np.zeros((100, 100), np.uint8)
    probs = np.full((100, 100), 0.02, np.float32)
    truth[10:30, 10:30], probs[10:30, 10:30] = 1, 0.95
    if kind == "clean":
        truth[50:70, 50:70], probs[50:70, 50:70] = 1, 0.4
    elif kind == "deleted":
        probs[50:70, 50:70] = 0.95
    elif kind == "spurious":
        truth[50:70, 50:70] = 1
    return truth, probs


def test_confidence_weighted_rules_put_a_sure_contradiction_before_a_half_seen_damage():
    evidence = {k: _image(k) for k in ("clean", "deleted", "spurious")}
    for rule in ("confident_area", "largest_confident", "relative_confident"):
        order = rank_by(rule, evidence)
        assert order[-1] == "clean", (rule, order)
    # the Dice alone cannot tell them apart: all three have the same overlap
    d = {k: error_score("dice", *v) for k, v in evidence.items()}
    assert d["clean"] == pytest.approx(d["deleted"]) == pytest.approx(d["spurious"])
    assert error_score("confident_missed", *evidence["spurious"]) > error_score(
        "confident_missed", *evidence["deleted"]
    )
    assert error_score("confident_extra", *evidence["deleted"]) > error_score(
        "confident_extra", *evidence["spurious"]
    )
    full = _image("none")
    for rule in RULES:
        assert error_score(rule, *full) == pytest.approx(0.0, abs=1e-9), rule
    with pytest.raises(ValueError, match="unknown ranking rule"):
        error_score("nope", *full)


def test_unannotated_damage_the_model_is_unsure_of_is_listed_and_scored_by_its_share():
    truth = np.zeros((100, 100), np.uint8)
    truth[10:30, 10:30] = 1  # agreed
    truth[60:70, 60:70] = 1  # annotated, the model at 0.4 there: under 0.5, a "missed" area
    probs = np.full((100, 100), 0.05, np.float32)
    probs[10:30, 10:30] = 0.9
    probs[60:70, 60:70] = 0.4
    probs[80:95, 5:25] = 0.4  # a damage left out of the annotation that the model half sees: 300 px
    found = disagreements(truth, probs, 0.5)
    extra = [d for d in found if d.kind == "extra"]
    assert [(d.area, d.bbox) for d in extra] == [(300, (5, 80, 20, 15))]
    missed = [d for d in found if d.kind == "missed"]  # missed areas keep the model's threshold
    assert [d.area for d in missed] == [100]
    union = 400 + 100 + 300
    assert extra[0].score == pytest.approx(0.4 * (300 / union) ** 0.5)
    # at the model's threshold alone the left-out damage is not listed (the twentieth session's behaviour)
    assert [d.kind for d in disagreements(truth, probs, 0.5, extra_threshold=None)] == ["missed"]
    # a model whose threshold is already lower looks from its own threshold
    assert {d.kind for d in disagreements(truth, probs, 0.2)} == {"extra"}
    # the model's soft edge around an annotated region is not looked for below its threshold
    halo = probs.copy()
    halo[8:32, 8:32] = np.maximum(halo[8:32, 8:32], 0.4)  # a 2-px ring at 0.4 around the agreed region
    assert [(d.kind, d.area) for d in disagreements(truth, halo, 0.5) if d.kind == "extra"] == [
        ("extra", 300)
    ]
