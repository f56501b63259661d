"""Shared by the labelme and COCO reader tests: where the shared data is, mutations of JSON files for
hypothesis (bytes changed, values swapped for values of another type), and COCO RLE encoding."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

SHARED = Path(os.environ.get("VIASEG_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
LABELME = SHARED / "fixtures-labelme"  # as tests/conftest.py resolves it (needed here at import time)
SWAPS = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e300,
    -1e300,
    "",
    "x",
    "\\",
    "\x00",
    [],
    [1],
    [[1, 2]],
    {},
    {"a": 1},
    "iVBORw0KGgo=",
    [1, 2, 3, 4, 5],
    10**30,
]


def json_paths(value, prefix=()) -> list[tuple]:
    """Every place in a JSON value (the root excluded), as key/index tuples."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out.extend(json_paths(v, (*prefix, k)))
    return out


@st.composite
def type_swaps(draw, corpus: dict[str, bytes]):
    """A corpus file with one to three of its values replaced by a value of another type."""
    name = draw(st.sampled_from(sorted(corpus)))
    value = json.loads(corpus[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = json_paths(value)
        if not paths:
            break
        where = draw(st.sampled_from(paths))
        holder = value
        for k in where[:-1]:
            holder = holder[k]
        if draw(st.booleans()) and isinstance(holder, dict):
            del holder[where[-1]]
        else:
            holder[where[-1]] = copy.deepcopy(draw(st.sampled_from(SWAPS)))  # later swaps may edit it
    return name, json.dumps(value).encode("utf-8")


@st.composite
def byte_mutations(draw, corpus: dict[str, bytes]):
    """A corpus file with a few bytes flipped, inserted, deleted or truncated (digits favoured: the JSON often
    stays valid and the change reaches the readers' checks)."""
    name = draw(st.sampled_from(sorted(corpus)))
    data = bytearray(corpus[name])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "digit", "digit"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(
                st.sampled_from(
                    [b"[", b"{", b'"', b",", b"-", b"\\u", b"\x00", b"9" * 30, b"]", b"}", b"null", b"true"]
                )
                | st.binary(max_size=6)
            )
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[i:]
        else:
            digits = [k for k in range(i, min(len(data), i + 400)) if 48 <= data[k] <= 57]
            if digits:
                data[draw(st.sampled_from(digits))] = draw(st.sampled_from(b"0123456789.-eE"))
    return name, bytes(data)


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE run lengths of a 0/1 mask (column-major, starting with a run of zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).T.reshape(-1)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if flat.size and flat[0] == 1 else counts


def rle_string(counts: list[int]) -> str:
    """Compressed COCO RLE of run lengths (pycocotools' ``rleToString``)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)
