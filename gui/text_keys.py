"""While a text field has the keyboard focus, the window's editing shortcuts that a text field does not use
(Ctrl+D duplicate region, Ctrl+N new polygon, Ctrl+Shift+C copy all regions, Ctrl+Shift+Delete remove the
image) stay with the field: typing in the image search box and pressing Ctrl+D duplicated a region, and
Ctrl+Shift+Delete took the image out of its split."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QLineEdit, QPlainTextEdit, QTextEdit

KEPT_BY_TEXT_FIELDS = frozenset(
    QKeySequence(k)[0].toCombined() for k in ("Ctrl+D", "Ctrl+N", "Ctrl+Shift+C", "Ctrl+Shift+Delete")
)
TEXT_FIELDS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)


class TextFieldKeys(QObject):
    """An application event filter: a ShortcutOverride of :data:`KEPT_BY_TEXT_FIELDS` sent to a text field is
    accepted, so Qt gives the key to the field (which ignores it) instead of firing the window's action."""

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.ShortcutOverride and isinstance(obj, TEXT_FIELDS):
            combo = ev.keyCombination().toCombined()  # type: ignore[attr-defined]
            if combo in KEPT_BY_TEXT_FIELDS:
                ev.accept()
        return False


def keep_editing_keys(*fields: QObject) -> None:
    """Give each text field the filter (one shared per thread; per field, not on the whole application, where
    Python would see every event of the app)."""
    for w in fields:
        w.installEventFilter(_shared())


def keep_editing_keys_within(root: QObject) -> None:
    """:func:`keep_editing_keys` for every text field and spin box under ``root`` (a window with its docks):
    given to two fields only, the Training form's spin boxes, the runs folder line, the Folds and Minimum area
    boxes still let Ctrl+Shift+Delete take the shown image out of its split."""
    for cls in TEXT_FIELDS:
        keep_editing_keys(*root.findChildren(cls))


_FILTER: list[TextFieldKeys] = []


def _shared() -> TextFieldKeys:
    if not _FILTER:
        _FILTER.append(TextFieldKeys())
    return _FILTER[0]
