"""Problem and Report of the dataset checks (:mod:`viaseg.core.checks.checks`), and the catalogue of problem kinds.

``Report.to_json()`` is exactly ``{"images": N, "regions": M, "problems": [{"kind", "severity", "split", "image",
"region", "message"}]}``; ``Report.to_text()`` is the human report grouped by kind with counts and what to do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# kind -> (what it means, what to do); the order here is the order of the text report
KINDS: dict[str, tuple[str, str]] = {
    "not_loaded": (
        "part of an annotation file (or a whole file among labelme files) could not be loaded: it is left out "
        "of checks and training",
        "fix or remove the file named",
    ),
    "missing_file": (
        "listed in the annotation file (VIA, labelme or COCO), but the image file does not exist",
        "put the image where the annotation file says, or delete the entry",
    ),
    "unreadable_image": (
        "the image file cannot be decoded",
        "replace the file with a valid image, or delete the entry",
    ),
    "duplicate_image": (
        "the same image appears more than once (across splits this leaks test data into training)",
        "keep one copy and remove the others from their split",
    ),
    "conflicting_duplicate": (
        "copies of one image carry different annotations",
        "make the annotations agree, then drop the extra copy",
    ),
    "size_mismatch": (
        "the VIA 'size' (file size in bytes) differs from the file on disk",
        "check the image was not replaced or re-encoded after it was annotated",
    ),
    "degenerate_region": ("a region that has no area or invalid numbers", "redraw the region or delete it"),
    "self_intersection": (
        "a polygon whose outline crosses itself (masks get holes or lose parts)",
        "move the vertices so the outline does not cross",
    ),
    "out_of_bounds": (
        "a region reaches outside its image",
        "move it inside the image, or check it is the right image",
    ),
    "repeated_region": (
        "a region that is an exact copy of another of its image",
        "delete one of the two (they count twice, the mask is the same)",
    ),
    "unsupported_shape": (
        "a shape that is not an area (polyline, point, unknown) and adds nothing to masks",
        "redraw it as a polygon, or delete it",
    ),
    "attribute_mismatch": (
        "splits name their region attribute differently",
        "rename the attribute so every split uses the same name",
    ),
    "unannotated_image": (
        "listed with no regions: trains as an all-background image",
        "annotate it, or delete the entry if it is not meant as a negative example",
    ),
    "unlisted_image": (
        "an image file in a labeled split's folder that its annotation file does not list",
        "add it to the project and annotate it, or move it out of the folder",
    ),
}
SEVERITIES = ("error", "warning", "info")
# what check_entry can report: with an image_size only REGION_KINDS; without one also FILE_KINDS. The other
# kinds (duplicates, attribute names, unlisted files) need the whole dataset: after re-checking one image, keep
# them and replace only these.
REGION_KINDS = frozenset(
    {
        "degenerate_region",
        "self_intersection",
        "out_of_bounds",
        "unsupported_shape",
        "unannotated_image",
        "repeated_region",
    }
)
FILE_KINDS = frozenset({"missing_file", "unreadable_image", "size_mismatch"})


@dataclass
class Problem:
    kind: str
    severity: str
    split: str | None
    image: str | None
    region: int | None
    message: str
    key: str | None = field(default=None, repr=False, compare=False)  # VIA key of the entry (not in to_json)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "split": self.split,
            "image": self.image,
            "region": self.region,
            "message": self.message,
        }

    def where(self) -> str:
        parts = "/".join(p for p in (self.split, self.image) if p)
        if self.region is not None:
            parts += f" region {self.region}"
        return parts or "dataset"


@dataclass
class Report:
    images: int
    regions: int
    problems: list[Problem] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for p in self.problems if p.severity == severity)

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    @property
    def exit_code(self) -> int:
        return 1 if self.has_errors else 0

    def for_image(self, split: str | None, key: str) -> list[Problem]:
        """Problems of one entry (``key`` = its VIA key; for unlabeled splits, the file name)."""
        return [p for p in self.problems if p.split == split and p.key == key]

    def to_json(self) -> dict:
        return {
            "images": self.images,
            "regions": self.regions,
            "problems": [p.to_dict() for p in self.problems],
        }

    def to_text(self, limit: int | None = 20, title: str = "") -> str:
        """Human report grouped by kind, with counts and what to do; ``limit`` problems shown per kind."""
        counts = f"{self.count('error')} errors, {self.count('warning')} warnings, {self.count('info')} notes"
        lines = [f"{title + ': ' if title else ''}{self.images} images, {self.regions} regions: {counts}"]
        by_kind: dict[str, list[Problem]] = {}
        for p in self.problems:
            by_kind.setdefault(p.kind, []).append(p)
        order = [k for k in KINDS if k in by_kind] + sorted(k for k in by_kind if k not in KINDS)
        for kind in order:
            probs = by_kind[kind]
            sev = Counter(p.severity for p in probs)
            sevs = ", ".join(f"{sev[s]} {s}" for s in SEVERITIES if sev[s])
            meaning, todo = KINDS.get(kind, ("", ""))
            lines.append("")
            lines.append(
                f"{kind}: {len(probs)} ({sevs})" + (f" - {meaning}; to fix: {todo}" if meaning else "")
            )
            shown = probs if limit is None else probs[:limit]
            for p in shown:
                lines.append(f"  [{p.severity}] {p.where()}: {p.message}")
            if len(shown) < len(probs):
                lines.append(f"  ... and {len(probs) - len(shown)} more (--all or --json lists every one)")
        if not self.problems:
            lines.append("no problems found")
        return "\n".join(lines)
