"""Attribute edit commands: set or remove one region or file attribute value (:class:`SetRegionAttribute`,
:class:`SetFileAttribute`, merged while typing), and the project-wide :class:`RenameAttribute` (rename or delete
an attribute's definition and every value) and :class:`DefineAttribute` (a new text/dropdown/radio/checkbox
attribute), each one undo step.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .edit_history import Command, EditError
from .project import ImageEntry, Region


class RenameAttribute(Command):
    """Rename a region or file attribute (``new``), or delete it (``new`` None), in every project given: its
    definition and its value on every region (or image), as one undo step. Refused (``EditError``) when a region
    or image already holds both names. ``changes_images``: the dataset-level checks (attribute names that differ
    between splits) must run again."""

    changes_images = True

    def __init__(self, projects: Iterable[Any], scope: str, old: str, new: str | None):
        if scope not in ("region", "file"):
            raise EditError(f"attribute scope must be 'region' or 'file', not {scope!r}")
        new = new.strip() if isinstance(new, str) else None
        if new == "" or new == old:
            raise EditError("give the attribute a new, non-empty name")
        super().__init__(None)
        self.projects = list(projects)
        self.scope, self.old, self.new = scope, old, new
        self.text = f"rename attribute {old!r} to {new!r}" if new else f"delete attribute {old!r}"
        targets: list[dict] = []
        touched: list[ImageEntry] = []
        for proj in self.projects:
            defs = proj.attributes.setdefault(scope, {})
            n_touched = len(touched)
            for e in proj.images:
                dicts = [e.file_attributes] if scope == "file" else [r.attributes for r in e.regions]
                hit = [d for d in dicts if old in d]
                if hit:
                    touched.append(e)
                    targets.extend(hit)
            if old in defs:
                targets.append(defs)
                if len(touched) == n_touched and proj.images:
                    touched.append(
                        proj.images[0]
                    )  # only the definition changes: the file must still be saved
        if new is not None:
            both = sum(1 for d in targets if new in d)
            if both:
                raise EditError(
                    f"{both} region(s)/image(s) or definition(s) already have an attribute {new!r}: "
                    f"rename or delete one of the two first"
                )
        self.targets = targets
        self.touched = touched
        self._before = [list(d.items()) for d in targets]

    def do(self) -> None:
        for d in self.targets:
            items = [
                (self.new, v) if k == self.old else (k, v)
                for k, v in d.items()
                if k != self.old or self.new is not None
            ]
            d.clear()
            d.update(items)  # a rename keeps the attribute's place

    def undo(self) -> None:
        for d, items in zip(self.targets, self._before, strict=True):
            d.clear()
            d.update(items)

    def entries(self) -> list[ImageEntry]:
        return list(self.touched)


class DefineAttribute(Command):
    """Define a new region or file attribute (VIA 2 ``_via_attributes`` style: ``kind`` text, dropdown, radio
    or checkbox, with ``options`` for the last three) in every project given, as one undo step; ``target``
    (the selected region's attributes or the image's file attributes) gets an empty value for it, so the name
    is kept even by formats that store only values. Refused (``EditError``) for an empty name, a name a project
    already defines or ``target`` already holds, an unknown type, or a choice type without options."""

    changes_images = True
    KINDS = ("text", "dropdown", "radio", "checkbox")

    def __init__(
        self,
        projects: Iterable[Any],
        scope: str,
        name: str,
        kind: str = "text",
        options: Iterable[str] = (),
        target: dict | None = None,
        entry: ImageEntry | None = None,
    ):
        if scope not in ("region", "file"):
            raise EditError(f"attribute scope must be 'region' or 'file', not {scope!r}")
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            raise EditError("give the new attribute a name")
        if kind not in self.KINDS:
            raise EditError(f"attribute type must be one of {', '.join(self.KINDS)}, not {kind!r}")
        opts = list(dict.fromkeys(o.strip() for o in options if isinstance(o, str) and o.strip()))
        if kind != "text" and not opts:
            raise EditError(f"a {kind} attribute needs at least one option")
        super().__init__(entry)
        self.projects = list(projects)
        self.scope, self.name, self.kind = scope, name, kind
        clash = [p for p in self.projects if name in (p.attributes.get(scope) or {})]
        if clash or (target is not None and name in target):
            raise EditError(
                f"there is already a {scope} attribute {name!r}: pick another name (right-click an "
                f"attribute's name to rename or delete it)"
            )
        if kind == "text":
            self.definition: dict = {"type": "text", "description": "", "default_value": ""}
        else:
            self.definition = {
                "type": kind,
                "description": "",
                "options": {o: "" for o in opts},
                "default_options": {},
            }
        self.target = target
        self.value: Any = {} if kind == "checkbox" else ""
        self.text = f"add {kind} attribute {name!r}"
        touched = [entry] if entry is not None else []
        for p in self.projects:  # the definition alone changes a file: it must be saved
            if p.images and not any(e in p.images for e in touched):
                touched.append(p.images[0])
        self.touched = touched

    def do(self) -> None:
        for p in self.projects:
            p.attributes.setdefault(self.scope, {})[self.name] = copy.deepcopy(self.definition)
        if self.target is not None:
            self.target[self.name] = copy.deepcopy(self.value)

    def undo(self) -> None:
        for p in self.projects:
            (p.attributes.get(self.scope) or {}).pop(self.name, None)
        if self.target is not None:
            self.target.pop(self.name, None)

    def entries(self) -> list[ImageEntry]:
        return list(self.touched)


_ABSENT = object()


class _SetKey(Command):
    def __init__(self, target: dict, name: str, value: Any, entry=None, merge_key=None):
        super().__init__(entry, merge_key)
        self.target = target
        self.name = name
        self.value = copy.deepcopy(value)
        self.old = copy.deepcopy(target[name]) if name in target else _ABSENT

    def do(self) -> None:
        if self.value is None:
            self.target.pop(self.name, None)
        else:
            self.target[self.name] = copy.deepcopy(self.value)

    def undo(self) -> None:
        if self.old is _ABSENT:
            self.target.pop(self.name, None)
        else:
            self.target[self.name] = copy.deepcopy(self.old)

    def merge(self, later: Command) -> bool:
        if type(later) is not type(self) or later.target is not self.target or later.name != self.name:
            return False
        self.value = later.value
        return True


class SetRegionAttribute(_SetKey):
    """Set (``value=None``: remove) a region attribute, e.g. the class."""

    text = "set attribute"

    def __init__(self, region: Region, name: str, value: Any, entry=None, merge_key=None):
        super().__init__(region.attributes, name, value, entry, merge_key)
        self.region = region


class SetFileAttribute(_SetKey):
    """Set (``value=None``: remove) a file attribute of an image."""

    text = "set file attribute"

    def __init__(self, entry: ImageEntry, name: str, value: Any, merge_key=None):
        super().__init__(entry.file_attributes, name, value, entry, merge_key)
