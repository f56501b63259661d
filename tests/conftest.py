"""Shared test fixtures. Real data lives in ../shared (read-only, never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIASEG_SHARED", REPO.parent / "shared"))
CAR_DAMAGE = SHARED / "datasets" / "car-damage"
CAR_DAMAGE_EXTRA = SHARED / "datasets" / "car-damage-extra"
FIXTURES = SHARED / "via-fixtures"
DEMO = REPO / "data" / "demo"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"shared data not available: {path} is missing (tests read ../shared next to the checkout)"
        )
    return path


@pytest.fixture(autouse=True)
def _undone_imports_in_tmp(tmp_path_factory, monkeypatch):
    """Undone imports keep their copy in the test's temp folder, not the system's (nothing left behind)."""
    from viaseg.core.annotation import edits

    monkeypatch.setattr(edits, "aside_root", tmp_path_factory.mktemp("undone-imports"))


@pytest.fixture
def car_damage() -> Path:
    return _need(CAR_DAMAGE)


@pytest.fixture
def car_damage_extra() -> Path:
    return _need(CAR_DAMAGE_EXTRA)


@pytest.fixture
def via_fixtures() -> Path:
    return _need(FIXTURES)


@pytest.fixture
def labelme_fixtures() -> Path:
    return _need(SHARED / "fixtures-labelme")
