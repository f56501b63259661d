"""The *Check labels* dock's list (a ``QTreeWidget``): the photos worst first, each with its areas of
disagreement, or every photo's areas in one list by score (``label_errors.AREA_RULE``); and the ✓ of the areas
applied. Each area row holds ``("area", image index, area index)`` under ``ROLE``, each photo row
``("image", index, -1)``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QTreeWidgetItemIterator

COLORS = {"missed": QColor(255, 140, 0), "extra": QColor(0, 220, 255)}
GREY = QColor(140, 140, 140)  # a photo that is not in the open project
TIPS = {
    "missed": "annotated, but the model that never saw this photo finds no damage here: Apply removes "
    "this part of the annotation",
    "extra": "the model that never saw this photo finds damage here that is not annotated: Apply adds it "
    "as a region",
}
ROLE = Qt.ItemDataRole.UserRole
ORDERS = ("photos, worst first", "areas, worst first")


def area_text(d: dict, applied: bool = False) -> str:
    return f"{d['kind']} · {int(d.get('area', 0))} px" + ("  ✓ applied" if applied else "")


def _area_item(columns: list[str], i: int, j: int, d: dict, grey: bool) -> QTreeWidgetItem:
    item = QTreeWidgetItem([area_text(d), *columns])
    item.setData(0, ROLE, ("area", i, j))
    item.setToolTip(0, TIPS.get(d["kind"], ""))
    item.setForeground(0, QBrush(GREY if grey else COLORS.get(d["kind"], QColor(128, 128, 128)).darker(130)))
    return item


def _where(im, missing: bool) -> str:
    return (
        f"{im.image} ({im.source}): not in the open project"
        if missing
        else (f"{im.image} ({im.source}), fold {im.fold + 1}")
    )


def fill_photos(tree: QTreeWidget, images: list, entries: list) -> None:
    """The photos worst first (the order of ``images``), each with its areas, largest first; ``entries[i]``
    None greys photo i (not in the open project)."""
    tree.clear()
    tree.setHeaderLabels(["photo / area", "Dice", "missed", "extra"])
    for i, im in enumerate(images):
        top = QTreeWidgetItem([im.image, f"{im.dice:.3f}", str(im.count("missed")), str(im.count("extra"))])
        top.setData(0, ROLE, ("image", i, -1))
        top.setToolTip(0, _where(im, entries[i] is None))
        if entries[i] is None:
            top.setForeground(0, QBrush(GREY))
        for j, d in enumerate(im.disagreements):
            top.addChild(_area_item([], i, j, d, grey=False))
        tree.addTopLevelItem(top)
    tree.expandToDepth(0)


def fill_areas(tree: QTreeWidget, images: list, entries: list) -> None:
    """Every photo's areas in one list, highest score first (``label_errors.AREA_RULE``, stored by crossval);
    results written before areas had a score: largest first, with no score shown."""
    tree.clear()
    tree.setHeaderLabels(["area", "score", "photo Dice", "photo"])
    rows = [(i, j, d) for i, im in enumerate(images) for j, d in enumerate(im.disagreements)]
    scored = all(isinstance(d.get("score"), (int, float)) for _, _, d in rows)

    def worst(r) -> tuple:
        i, j, d = r
        return (-(float(d["score"]) if scored else float(d.get("area", 0))), i, j)

    for i, j, d in sorted(rows, key=worst):
        im = images[i]
        score = f"{float(d['score']):.3f}" if scored else ""
        item = _area_item([score, f"{im.dice:.3f}", im.image], i, j, d, grey=entries[i] is None)
        item.setToolTip(3, _where(im, entries[i] is None))
        tree.addTopLevelItem(item)


def mark_applied(tree: QTreeWidget, images: list, applied: dict) -> None:
    """Every area row's text, with ✓ where its suggestion is applied (``applied[(i, j)]`` an edit not undone)."""
    it = QTreeWidgetItemIterator(tree)
    while it.value() is not None:
        item = it.value()
        it += 1
        role, a, b = item.data(0, ROLE)
        if role == "area":
            cmd = applied.get((a, b))
            item.setText(
                0, area_text(images[a].disagreements[b], cmd is not None and getattr(cmd, "done", False))
            )
