"""Shared test helper: strict JSON value comparison (types, key order, NaN)."""

from __future__ import annotations


def same_json(a, b, where="$"):
    """Equal JSON values with the same types (1 vs 1.0 vs True) and the same key order at every level."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} {a!r:.60} != {type(b).__name__} {b!r:.60}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: key order {list(a)[:5]} != {list(b)[:5]}"
        for k in a:
            same_json(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_json(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b, f"{where}: {a!r:.60} != {b!r:.60}"
