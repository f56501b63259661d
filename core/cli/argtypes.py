"""Argument types for the commands' numeric options: a value out of range is refused when the command line is
read, with the option's name and the value ("argument --time-limit: -5: must be above 0"), instead of failing
deep in training (a division by zero for ``--batch-size 0``, an OpenCV assertion for ``--size 0``, TensorFlow
aborting the process for ``--threads -2``) or being taken silently (``--time-limit -5`` trained one epoch)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _number(kind: type, text: str):
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def _checked(kind: type, ok: Callable[[float], bool], rule: str, name: str) -> Callable[[str], object]:
    def parse(text: str):
        v = _number(kind, text)
        if v != v or not ok(v):  # NaN fails every rule
            raise argparse.ArgumentTypeError(f"{text}: {rule}")
        return v

    parse.__name__ = name  # argparse names the type in its messages
    return parse


positive_int = _checked(int, lambda v: v > 0, "must be 1 or more", "positive_int")
non_negative_int = _checked(int, lambda v: v >= 0, "must be 0 or more", "non_negative_int")
positive_float = _checked(float, lambda v: 0 < v < float("inf"), "must be above 0", "positive_float")
non_negative_float = _checked(
    float, lambda v: 0 <= v < float("inf"), "must be 0 or more", "non_negative_float"
)
probability = _checked(float, lambda v: 0 < v < 1, "must be between 0 and 1 (not either end)", "probability")
momentum = _checked(float, lambda v: 0 <= v < 1, "must be from 0 to below 1", "momentum")


def share(text: str) -> float:
    """``--calibrate``'s value: a share in [0, 1)."""
    v = _number(float, text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"{text}: a share of the photos, from 0 (off) to below 1")
    return v


def scale_range(text: str) -> tuple[float, float]:
    """``--scale``'s value: MIN,MAX shares of the photo's side, 0.1 <= MIN <= MAX <= 3."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give two numbers, MIN,MAX (e.g. 0.6,1)") from None
    if not 0.1 <= lo <= hi <= 3.0:
        raise argparse.ArgumentTypeError(f"{text}: need 0.1 <= MIN <= MAX <= 3")
    return lo, hi


def jitter(text: str) -> tuple[float, ...]:
    """``--colour-jitter``'s value: B,C,S[,H]."""
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give three or four numbers, B,C,S[,H]") from None
    if len(vals) not in (3, 4) or min(vals) < 0 or max(vals[:3]) > 1 or (len(vals) == 4 and vals[3] > 0.5):
        raise argparse.ArgumentTypeError(f"{text}: need B,C,S in 0..1 and H in 0..0.5")
    return vals


def attribute_name(text: str) -> str:
    """A VIA attribute name: not empty (``--attribute ''`` wrote regions with an attribute named "")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an attribute name cannot be empty")
    return text


attribute_name.__name__ = "attribute name"
