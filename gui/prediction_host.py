"""What the Prediction panel asks of the window it sits in: :class:`PanelHost`, whose defaults are those of a
panel on its own (no image shown, nothing to add regions to). The main window's adapter (``window_host.WindowHost``)
and test hosts subclass it and override what they can do; the panel calls these methods directly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .prediction_photos import Target


class PanelHost:
    shows_targets = False  # True: current_target() says which image is on screen (None: none is)
    can_set_regions = False  # True: set_regions replaces an image's regions as one undo step
    problem = ""  # why the last add_external could not add the photo
    added_as = ""  # the file name the last add_external gave the photo in its split

    def current_target(self) -> Target | None:
        return None

    def set_overlay(self, img: Any) -> None:
        """Show the rendered prediction (an RGBA QImage) over the photo; None takes it away."""

    def agreement_shown(self, on: bool) -> None:
        """The TP/FP/FN view is (no longer) on: the host may fade its own region fills meanwhile."""

    def show_external(self, path: Path) -> bool:
        """Show a photo from outside the project; False when it cannot."""
        return True

    def add_regions(self, entry: Any, regions: list) -> None:
        """Add ``regions`` to ``entry`` as one undo step."""

    def set_regions(self, entry: Any, regions: list, fresh: list, text: str) -> None:
        """Replace ``entry``'s regions by ``regions`` (``fresh`` of them new) as one undo step named ``text``."""
        raise NotImplementedError("this host cannot replace regions (can_set_regions is False)")

    def split_names(self) -> list[str]:
        return []

    def split_entries(self, name: str) -> list:
        return []

    def set_dice_column(self, mapping: dict) -> None:
        """Per-image Dice of *Predict all* for the image list (key -> score)."""

    def set_rank_column(self, title: str, mapping: dict, ascending: bool = False) -> None:
        """Per-image ranking for the image list (*Label next*'s place, 1 first, ``ascending``; or its doubt)."""

    def open_entry(self, entry: Any) -> None:
        """Show that project image."""

    def add_external(self, path: Path, split_name: str, regions: list) -> bool:
        """Copy a dropped photo into ``split_name`` with ``regions``; False when it cannot."""
        return False
