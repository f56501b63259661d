"""What every ``scripts/screenshots_*.py`` shares: where screenshots go and how to let Qt settle."""

from __future__ import annotations

import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"


def settle(app, seconds=0.3):
    """Process events for ``seconds`` (paints, queued signals) before a grab."""
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)
