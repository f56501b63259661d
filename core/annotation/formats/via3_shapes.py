"""VIA 3.x shapes: the ``xy`` list of a metadata entry (a shape code, then numbers; docs/via-format.md §5) and
the VIA2-style shape dict that ``Region.shape`` holds, both ways (used by :mod:`.via3`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ...base.errors import ViaFormatError
from .via_values import check_number

# xy code -> VIA2 shape name, and how many numbers follow the code (absent: x,y pairs)
XY_CODES = {1: "point", 2: "rect", 3: "circle", 4: "ellipse", 5: "polyline", 6: "polyline", 7: "polygon"}
XY_LEN = {1: 2, 2: 4, 3: 3, 4: 4, 5: 4}


def xy_to_shape(xy: list, where: str, path) -> dict:
    code = xy[0]
    for i, v in enumerate(xy):
        check_number(v, f"{where}[{i}]", path)
    nums = xy[1:]
    if code not in XY_CODES or isinstance(code, float) and not float(code).is_integer():
        return {"name": f"via3_shape_{code}", "xy": xy}  # extreme rectangle/circle...: kept as they are
    code = int(code)
    need = XY_LEN.get(code)
    if need is not None and len(nums) != need:
        raise ViaFormatError(path, where, f"shape code {code} needs {need} numbers, got {len(nums)}")
    if need is None and (len(nums) % 2 or not nums):
        raise ViaFormatError(path, where, f"shape code {code} needs x,y pairs, got {len(nums)} numbers")
    name = XY_CODES[code]
    if code == 1:
        return {"name": name, "cx": nums[0], "cy": nums[1]}
    if code == 2:
        return {"name": name, "x": nums[0], "y": nums[1], "width": nums[2], "height": nums[3]}
    if code == 3:
        return {"name": name, "cx": nums[0], "cy": nums[1], "r": nums[2]}
    if code == 4:
        return {"name": name, "cx": nums[0], "cy": nums[1], "rx": nums[2], "ry": nums[3]}
    return {"name": name, "all_points_x": list(nums[0::2]), "all_points_y": list(nums[1::2])}


def shape_to_xy(shape: dict, old_xy: Any) -> list:
    name = shape.get("name")
    g: Callable[[str], Any] = shape.get
    if isinstance(shape.get("xy"), list) and str(name) not in XY_CODES.values():
        return shape["xy"]
    if name == "point":
        xy = [1, g("cx"), g("cy")]
    elif name == "rect":
        xy = [2, g("x"), g("y"), g("width"), g("height")]
    elif name == "circle":
        xy = [3, g("cx"), g("cy"), g("r")]
    elif name == "ellipse" and not g("theta"):
        xy = [4, g("cx"), g("cy"), g("rx"), g("ry")]
    elif name == "ellipse":  # VIA3 cannot rotate an ellipse: write its outline
        t = float(g("theta"))
        pts: list = []
        for k in range(36):
            a = 2 * math.pi * k / 36
            px, py = g("rx") * math.cos(a), g("ry") * math.sin(a)
            pts += [
                round(g("cx") + px * math.cos(t) - py * math.sin(t), 3),
                round(g("cy") + px * math.sin(t) + py * math.cos(t), 3),
            ]
        xy = [7, *pts]
    elif name in ("polygon", "polyline"):
        xs, ys = list(g("all_points_x") or []), list(g("all_points_y") or [])
        n = min(len(xs), len(ys))
        pts = [0] * (2 * n)
        pts[0::2], pts[1::2] = xs[:n], ys[:n]
        code = 7 if name == "polygon" else 6
        if code == 6 and isinstance(old_xy, list) and old_xy[:1] == [5] and len(pts) == 4:
            code = 5  # a VIA3 line stays a line
        xy = [code, *pts]
    else:
        raise ValueError(f"VIA 3 has no shape {name!r}")
    if isinstance(old_xy, list) and len(old_xy) == len(xy):
        if all(a == b and type(a) is type(b) for a, b in zip(old_xy, xy, strict=True)):
            return old_xy
    return xy
