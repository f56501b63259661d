"""Side panel editing the selected region's attributes and the image's file attributes.

Widgets follow the VIA ``_via_attributes`` definitions (``text``, ``dropdown``, ``radio``, ``checkbox``; other
types are edited as text). Attribute names present on the region but not defined are shown as text too, and
"+ attribute" defines a new one (name, type, options) in every open project: one ``DefineAttribute`` command.
Each change of a value is one ``SetRegionAttribute``/``SetFileAttribute`` command.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)
from viaseg.core.annotation import edits
from viaseg.core.annotation.project import ImageEntry, Region

from .text_keys import keep_editing_keys

ATTRIBUTE_TYPES = ("text", "dropdown", "radio", "checkbox")  # what "+ attribute" offers (VIA 2 types)


def attribute_definitions(path) -> dict | None:
    """The definitions of a VIA ``_via_attributes`` export file (``{"region": {...}, "file": {...}}``), or None
    when ``path`` is not one (then it is opened as a project as usual)."""
    if path.suffix.lower() != ".json":
        return None
    try:
        if path.stat().st_size > 50 << 20:
            return None
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and "_via_attributes" in data and "_via_img_metadata" not in data:
        data = data["_via_attributes"]
    if (
        isinstance(data, dict)
        and data
        and set(data) <= {"region", "file"}
        and all(isinstance(v, dict) and all(isinstance(d, dict) for d in v.values()) for v in data.values())
    ):
        return data
    return None


def _value_text(v) -> str:
    if isinstance(v, dict):
        return ", ".join(k for k, on in v.items() if on)
    return "" if v is None else str(v)


class _Form(QGroupBox):
    """One form of attributes (region or file) bound to a dict through a command factory."""

    def __init__(self, title: str, parent=None):
        super().__init__(title, parent)
        self.form = QFormLayout()
        self.add_btn = QPushButton("+ attribute")
        lay = QVBoxLayout(self)
        lay.addLayout(self.form)
        lay.addWidget(self.add_btn)
        self.empty = QLabel("")

    def clear(self) -> None:
        """Empty the form. Its widgets are deleted later, not now: a rebuild runs inside a widget's own signal
        (a field's editingFinished when it loses focus, a combo's change), and deleting that widget there
        crashed the app (typing a value, then clicking the canvas: a segmentation fault)."""
        while self.form.rowCount():
            row = self.form.takeRow(0)
            for item in (row.labelItem, row.fieldItem):
                w = item.widget() if item is not None else None
                if w is not None:
                    w.hide()  # stays a child of the box until Qt deletes it
                    w.deleteLater()


class AttributesPanel(QWidget):
    """``pusher(cmd)`` applies commands; ``edited`` fires after each change (to refresh the canvas)."""

    edited = Signal()
    message = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pusher = None
        self.projects_fn = list  # callable -> the open projects (rename/delete act on every split)
        self.definitions: dict = {"region": {}, "file": {}}
        self.entry: ImageEntry | None = None
        self.region: Region | None = None
        self.region_box = _Form("Region")
        self.file_box = _Form("Image")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.region_box)
        lay.addWidget(self.file_box)
        lay.addStretch(1)
        self.region_box.add_btn.clicked.connect(lambda: self._add_attribute("region"))
        self.file_box.add_btn.clicked.connect(lambda: self._add_attribute("file"))
        self.widgets: dict[tuple[str, str], QWidget] = {}
        self.show_for(None, None)

    def set_definitions(self, definitions: dict) -> None:
        self.definitions = definitions if isinstance(definitions, dict) else {"region": {}, "file": {}}

    def show_for(self, entry: ImageEntry | None, region: Region | None) -> None:
        self.entry, self.region = entry, region
        self.widgets = {}
        self._build(self.region_box, "region", region.attributes if region is not None else None)
        self._build(self.file_box, "file", entry.file_attributes if entry is not None else None)

    def _build(self, box: _Form, scope: str, values: dict | None) -> None:
        box.clear()
        box.setEnabled(values is not None)
        box.add_btn.setEnabled(values is not None)
        if values is None:
            box.form.addRow(QLabel("no region selected" if scope == "region" else "no image"))
            return
        defs = dict(self.definitions.get(scope) or {})
        for k in values:
            defs.setdefault(k, {"type": "text"})
        if not defs:
            box.form.addRow(QLabel("(no attributes)"))
        for name, d in defs.items():
            d = d if isinstance(d, dict) else {"type": "text"}
            w = self._editor(scope, name, d, values.get(name))
            self.widgets[(scope, name)] = w
            label = QLabel(name)
            label.setToolTip("Right-click: rename or delete this attribute in every split")
            label.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            label.customContextMenuRequested.connect(
                lambda pos, lb=label, sc=scope, nm=name: self._attribute_menu(sc, nm).exec(
                    lb.mapToGlobal(pos)
                )
            )
            box.form.addRow(label, w)

    def _editor(self, scope: str, name: str, d: dict, value) -> QWidget:
        typ = d.get("type", "text")
        options = list((d.get("options") or {}).keys())
        if typ == "dropdown" or (typ == "radio" and len(options) > 4):
            w = QComboBox()
            w.addItems([""] + options)
            if value not in (None, "") and str(value) not in options:  # "" is the blank first item
                w.addItem(str(value))
            w.setCurrentText("" if value is None else str(value))
            w.currentTextChanged.connect(lambda t, n=name: self._set(scope, n, t or None))
            return w
        if typ == "radio":
            holder = QWidget()
            lay = QHBoxLayout(holder)
            lay.setContentsMargins(0, 0, 0, 0)
            group = QButtonGroup(holder)
            for opt in options:
                b = QRadioButton(opt)
                b.setChecked(str(value) == opt)
                group.addButton(b)
                lay.addWidget(b)
                b.toggled.connect(lambda on, n=name, o=opt: on and self._set(scope, n, o))
            return holder
        if typ == "checkbox":
            holder = QWidget()
            lay = QHBoxLayout(holder)
            lay.setContentsMargins(0, 0, 0, 0)
            current = dict(value) if isinstance(value, dict) else {}
            for opt in options:
                b = QCheckBox(opt)
                b.setChecked(bool(current.get(opt)))
                lay.addWidget(b)
                b.toggled.connect(lambda on, n=name, o=opt: self._toggle(scope, n, o, on))
            return holder
        w = QLineEdit(_value_text(value))
        keep_editing_keys(w)
        w.editingFinished.connect(lambda n=name, w=w: self._text_done(scope, n, w))
        return w

    def _target_dict(self, scope: str) -> dict | None:
        if scope == "region":
            return self.region.attributes if self.region is not None else None
        return self.entry.file_attributes if self.entry is not None else None

    def _text_done(self, scope: str, name: str, w: QLineEdit) -> None:
        target = self._target_dict(scope)
        if target is None:
            return
        old = target.get(name)
        text = w.text()
        if isinstance(old, dict) or _value_text(old) == text:
            return
        self._set(scope, name, text)

    def _toggle(self, scope: str, name: str, opt: str, on: bool) -> None:
        target = self._target_dict(scope)
        if target is None:
            return
        cur = dict(target.get(name) or {}) if isinstance(target.get(name), dict) else {}
        if on:
            cur[opt] = True
        else:
            cur.pop(opt, None)
        self._set(scope, name, cur)

    def _set(self, scope: str, name: str, value) -> None:
        if scope == "region":
            if self.region is None:
                return
            cmd = edits.SetRegionAttribute(self.region, name, value, entry=self.entry)
        else:
            if self.entry is None:
                return
            cmd = edits.SetFileAttribute(self.entry, name, value)
        if self.pusher is not None:
            self.pusher(cmd)
        else:
            cmd.do()
        self.edited.emit()

    def import_definitions(self, defs: dict, projects, notify, name: str) -> bool:
        """Merge imported attribute definitions into every open project (VIA's "Import attributes")."""
        if not projects:
            notify(f"{name}: attribute definitions need an open project first", True)
            return False
        for proj in projects:
            for scope in ("region", "file"):
                proj.attributes.setdefault(scope, {}).update(defs.get(scope, {}))
        n = sum(len(v) for v in defs.values())
        notify(
            f"{name}: {n} attribute definition(s) imported (saved with the project in VIA 2 project files)"
        )
        self.set_definitions(projects[0].attributes)
        self.show_for(self.entry, self.region)
        return True

    # renaming and deleting (every split at once, one undo step)
    def _attribute_menu(self, scope: str, name: str) -> QMenu:
        menu = QMenu(self)
        menu.addAction(f"Rename {name!r} in every split…", lambda: self._ask_rename(scope, name))
        menu.addAction(f"Delete {name!r} from every split", lambda: self.delete_attribute(scope, name))
        return menu

    def _ask_rename(self, scope: str, name: str) -> None:
        new, ok = QInputDialog.getText(
            self, "Rename attribute", f"new name for the {scope} attribute {name!r}:", text=name
        )
        if ok:
            self.rename_attribute(scope, name, new)

    def rename_attribute(self, scope: str, old: str, new: str | None) -> bool:
        """Rename (``new`` None: delete) an attribute in every open project; False with a message if refused."""
        from viaseg.core.annotation.edits import EditError, RenameAttribute

        try:
            cmd = RenameAttribute(self.projects_fn(), scope, old, new)
            self.pusher(cmd) if self.pusher is not None else cmd.do()
        except EditError as exc:
            self.message.emit(str(exc))
            return False
        self.message.emit(f"{cmd.text} in {len(cmd.touched)} image(s); Ctrl+Z undoes it")
        self.show_for(self.entry, self.region)
        self.edited.emit()
        return True

    def delete_attribute(self, scope: str, name: str) -> bool:
        return self.rename_attribute(scope, name, None)

    def _add_attribute(self, scope: str) -> None:
        dlg = NewAttributeDialog(scope, self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.add_attribute(scope, *dlg.values())

    def add_attribute(self, scope: str, name: str, kind: str = "text", options=()) -> bool:
        """Define a new ``scope`` attribute of type ``kind`` (``ATTRIBUTE_TYPES``; ``options`` for a dropdown,
        radio or checkbox) in every open project, the selected region (or image) getting an empty value, as one
        undo step. False with a message when refused (a name already used, no options)."""
        from viaseg.core.annotation.edits import DefineAttribute, EditError

        target = self._target_dict(scope)
        try:
            cmd = DefineAttribute(
                self.projects_fn(), scope, name, kind, options, target=target, entry=self.entry
            )
            self.pusher(cmd) if self.pusher is not None else cmd.do()
        except EditError as exc:
            self.message.emit(str(exc))
            return False
        lost = sorted({p.fmt for p in cmd.projects if p.fmt not in ("via2-project", "via3")})
        note = ""
        if kind != "text" and lost:
            note = (
                f" ({', '.join(lost)} files store only the values, not the type: File ▸ Save as, type "
                f"'VIA 2 project', keeps it)"
            )
        self.message.emit(f"{cmd.text}{note}; Ctrl+Z undoes it")
        self.show_for(self.entry, self.region)
        self.edited.emit()
        return True


class NewAttributeDialog(QDialog):
    """Name, type and (for a dropdown, radio or checkbox) the options of a new attribute."""

    def __init__(self, scope: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"New {scope} attribute")
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.kind = QComboBox()
        for kind in ATTRIBUTE_TYPES:
            self.kind.addItem(kind, kind)
        self.options = QLineEdit()
        self.options.setPlaceholderText("e.g. dent, scratch, crack")
        self.options.setToolTip("The choices, separated by commas")
        form.addRow("Name", self.name)
        form.addRow("Type", self.kind)
        form.addRow("Options", self.options)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.kind.currentIndexChanged.connect(self._update)
        self.name.textChanged.connect(self._update)
        self.options.textChanged.connect(self._update)
        self._update()

    def values(self) -> tuple[str, str, list[str]]:
        """``(name, type, options)`` as entered."""
        opts = [o.strip() for o in self.options.text().split(",") if o.strip()]
        return self.name.text().strip(), self.kind.currentData(), opts

    def _update(self, *_args) -> None:
        name, kind, opts = self.values()
        self.options.setEnabled(kind != "text")
        ok = bool(name) and (kind == "text" or bool(opts))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
