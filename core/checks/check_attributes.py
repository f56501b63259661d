"""Dataset-level attribute checks (``attribute_mismatch``): region attribute names that differ between splits,
and within a split two names never used together on one region but holding the same values (one attribute under
two names, e.g. after merging files).
"""

from __future__ import annotations

import json
from collections import Counter

from ..annotation.dataset import Dataset, Split
from .check_report import Problem


def _value_text(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)


def _attribute_names(split: Split) -> tuple[dict[str, set[str]], Counter, Counter]:
    """Per region-attribute name: its values; how many regions use it; how often two names share a region."""
    values: dict[str, set[str]] = {}
    uses: Counter = Counter()
    together: Counter = Counter()
    for e in split.entries:
        for r in e.regions:
            attrs = r.attributes if isinstance(r.attributes, dict) else {}
            keys = sorted(str(k) for k in attrs)
            for k, v in attrs.items():
                values.setdefault(str(k), set()).add(_value_text(v))
            uses.update(keys)
            if len(keys) > 1:
                together.update((a, b) for i, a in enumerate(keys) for b in keys[i + 1 :])
    return values, uses, together


def _names(ns) -> str:
    return ", ".join(f"'{n}'" for n in ns)


def _attribute_problems(dataset: Dataset) -> list[Problem]:
    """Across splits: different attribute name sets. Within a split: two names never used together on one
    region but holding the same values (one attribute under two names, e.g. after merging files)."""
    out: list[Problem] = []
    ref: tuple[str, dict[str, set[str]]] | None = None
    for sp in dataset.splits.values():
        if not sp.labeled:
            continue
        values, uses, together = _attribute_names(sp)
        names = sorted(values)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                common = values[a] & values[b]
                if common and not together[(a, b)]:
                    out.append(
                        Problem(
                            "attribute_mismatch",
                            "warning",
                            sp.name,
                            None,
                            None,
                            f"{uses[a]} region(s) use '{a}' and {uses[b]} use '{b}' for the same values "
                            f"({', '.join(sorted(common)[:5])}): one attribute under two names; rename one of them",
                        )
                    )
        if not names:
            continue
        if ref is None:
            ref = (sp.name, values)
            continue
        rname, rvalues = ref
        if set(values) == set(rvalues):
            continue
        only_here, only_ref = sorted(set(values) - set(rvalues)), sorted(set(rvalues) - set(values))
        if only_here and only_ref:
            msg = f"region attributes differ: {rname} uses {_names(only_ref)} where {sp.name} uses {_names(only_here)}"
        elif only_here:
            msg = f"region attributes differ: {sp.name} also uses {_names(only_here)}, which {rname} does not"
        else:
            msg = f"region attributes differ: {sp.name} lacks {_names(only_ref)}, which {rname} uses"
        here = set().union(*(values[n] for n in only_here)) if only_here else set()
        there = set().union(*(rvalues[n] for n in only_ref)) if only_ref else set()
        common = here & there
        if common:
            msg += (
                f"; both hold the same values ({', '.join(sorted(common)[:5])}), so this is one attribute under "
                f"two names: rename it in one VIA file so all splits agree (training by class reads one "
                f"attribute)"
            )
        else:
            msg += "; make every split use the same attribute names, or classes will not match between splits"
        out.append(Problem("attribute_mismatch", "warning", sp.name, None, None, msg))
    return out
