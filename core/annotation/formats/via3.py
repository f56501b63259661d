"""VIA 3.x project files (docs/via-format.md §5): reader and writer.

In memory a VIA3 project looks like any other: one ``ImageEntry`` per *image* file (``file.type`` 2, or no type)
shown alone in a view, its key the file id; each image-region metadata entry (``z == []``, non-empty ``xy``) of that
view becomes a ``Region`` whose ``shape`` is a VIA2-style dict converted from ``xy`` and whose ``attributes`` map
attribute *names* to values (VIA3 stores attribute ids); ``Region.raw`` is the metadata entry. The first file-level
entry (``z == []``, ``xy == []``) gives ``file_attributes``. Everything else (videos, audio, temporal segments,
multi-file views, config) stays in ``Project.raw`` and is written back unchanged. ``Project.attributes`` is a
VIA2-shaped copy of the VIA3 attribute table.

Writing converts shapes back to ``xy`` (reusing the file's own list when the geometry is unchanged, so ints stay
ints); new attribute names get new VIA3 text attributes; new images get a file and a view. Shapes VIA3 cannot
hold: a rotated ellipse becomes a 36-gon; an unknown VIA2 shape raises ``ValueError`` (a ``ViaSaveError`` in
``save_via``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...base.errors import ViaFormatError
from ..project import ImageEntry, Project, Region
from .via_common import check_dict, check_number, is_number, key_path, show

# xy code -> (VIA2 shape name, number count or None for "pairs")
XY_CODES = {1: "point", 2: "rect", 3: "circle", 4: "ellipse", 5: "polyline", 6: "polyline", 7: "polygon"}
XY_LEN = {1: 2, 2: 4, 3: 3, 4: 4, 5: 4}
TYPE_TO_VIA2 = {1: "text", 2: "checkbox", 3: "radio", 4: "dropdown", 5: "image"}
VIA2_TO_TYPE: dict[str | None, int] = {v: k for k, v in TYPE_TO_VIA2.items()}
REGION_ANCHOR = "FILE1_Z0_XY1"
FILE_ANCHOR = "FILE1_Z0_XY0"
CREATOR = "VGG Image Annotator (http://www.robots.ox.ac.uk/~vgg/software/via)"


def _xy_to_shape(xy: list, where: str, path) -> dict:
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


def _shape_to_xy(shape: dict, old_xy: Any) -> list:
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


def _attributes_via2(attr_table: dict) -> dict:
    out: dict = {"region": {}, "file": {}}
    for aid, a in attr_table.items():
        level = "file" if str(a.get("anchor_id", "")).endswith("XY0") else "region"
        name = a.get("aname") if isinstance(a.get("aname"), str) else aid
        t = a.get("type")
        d: dict = {
            "type": TYPE_TO_VIA2.get(t, "text") if is_number(t) else "text",
            "description": a.get("desc", ""),
        }
        if isinstance(a.get("options"), dict) and a["options"]:
            d["options"] = dict(a["options"])
            dflt = a.get("default_option_id")
            d["default_options"] = {k: True for k in str(dflt).split(",") if k} if dflt else {}
        elif a.get("default_option_id"):
            d["default_value"] = a.get("default_option_id")
        out[level].setdefault(name, d)
    return out


def _name_maps(attr_table: dict) -> tuple[dict, dict]:
    names = [a.get("aname") for a in attr_table.values()]
    id2name, name2id = {}, {}
    for aid, a in attr_table.items():
        n = a.get("aname")
        if isinstance(n, str) and names.count(n) == 1 and n not in attr_table:
            id2name[aid] = n
            name2id[n] = aid
    return id2name, name2id


def _image_dir(f: dict, fname: str, config: dict, base_dir: Path | None) -> Path | None:
    """Folder an image file resolves against: for ``loc`` 3 (file URI) ``loc_prefix[3] + src``, when that ends
    with the file name (VIA3's debug projects use ``"../../data/sample_img/"``); else the project's folder."""
    src = f.get("src")
    prefixes = (config.get("file") or {}).get("loc_prefix") if isinstance(config.get("file"), dict) else None
    if f.get("loc") != 3 or not isinstance(src, str) or not isinstance(prefixes, dict) or not fname:
        return base_dir
    prefix = prefixes.get("3", "")
    location = (prefix if isinstance(prefix, str) else "") + src
    if location.startswith("file://"):
        location = location[len("file://") :]
    if not location.endswith(fname):
        return base_dir
    folder = Path(location[: len(location) - len(fname)] or ".")
    if not folder.is_absolute() and base_dir is not None:
        folder = base_dir / folder
    return folder


def read_via3(data: dict, path, base_dir: Path | None) -> Project:
    check_dict(data["project"], "project", path)
    tables = {}
    for k in ("config", "attribute", "file", "view", "metadata"):
        tables[k] = check_dict(data.get(k, {}), k, path)
        if k != "config":
            for ik, item in tables[k].items():
                check_dict(item, key_path(k, ik), path)
    attr_table, files, views, metadata = (tables[k] for k in ("attribute", "file", "view", "metadata"))
    id2name, _ = _name_maps(attr_table)

    def named(av: Any, where: str) -> dict:
        check_dict(av, where, path)
        return {id2name.get(k, k): v for k, v in av.items()}

    images: dict[str, ImageEntry] = {}
    for fid, f in files.items():
        fname = f.get("fname")
        if not isinstance(fname, str):
            raise ViaFormatError(
                path, f"{key_path('file', fid)}.fname", f"expected a string, got {show(fname)}"
            )
        if f.get("type", 2) == 2:
            images[str(fid)] = ImageEntry(
                key=str(fid),
                filename=fname,
                size=None,
                raw=f,
                base_dir=_image_dir(f, fname, tables["config"], base_dir),
            )
    vid_to_fid: dict[str, str] = {}
    for vid, v in views.items():
        fl = v.get("fid_list")
        if not isinstance(fl, list):
            raise ViaFormatError(
                path, f"{key_path('view', vid)}.fid_list", f"expected a list, got {show(fl)}"
            )
        if len(fl) == 1 and isinstance(fl[0], (str, int)) and str(fl[0]) in images:
            vid_to_fid[str(vid)] = str(fl[0])
    fa_mid: dict[str, str] = {}
    for mid, m in metadata.items():
        w = key_path("metadata", mid)
        fid = vid_to_fid.get(str(m.get("vid")))
        z, xy = m.get("z", []), m.get("xy", [])
        if not isinstance(xy, list):
            raise ViaFormatError(path, f"{w}.xy", f"expected a list, got {show(xy)}")
        if fid is None or z != []:
            continue
        im = images[fid]
        if xy:
            if not is_number(xy[0]):
                raise ViaFormatError(path, f"{w}.xy[0]", f"expected a shape code, got {show(xy[0])}")
            shape = _xy_to_shape(xy, f"{w}.xy", path)
            im.regions.append(Region(shape=shape, attributes=named(m.get("av", {}), f"{w}.av"), raw=m))
        elif fid not in fa_mid:
            fa_mid[fid] = mid
            im.file_attributes = named(m.get("av", {}), f"{w}.av")
    project = Project(
        images=list(images.values()), fmt="via3", path=None, attributes=_attributes_via2(attr_table), raw=data
    )
    project._via3 = {
        "vid_to_fid": vid_to_fid,
        "fa_mid": fa_mid,
        "image_fids": list(images),
        "attrs_read": copy.deepcopy(project.attributes),
    }
    return project


# --------------------------------------------------------------------------------------------------- writing


class _Ids:
    """Next free integer-like id of a table ("1", "2"...), O(1) per id."""

    def __init__(self, table: dict):
        self.table = table
        self.n = max([int(k) for k in map(str, table) if k.isascii() and k.isdigit() and len(k) < 16] + [0])

    def __call__(self) -> str:
        self.n += 1
        while str(self.n) in self.table:
            self.n += 1
        return str(self.n)


def build_via3(project: Project, name: str = "via_project") -> dict:
    same = project.fmt == "via3" and isinstance(project.raw, dict)
    raw = project.raw if same else {}
    state = getattr(project, "_via3", None) if same else None
    state = state or {"vid_to_fid": {}, "fa_mid": {}}
    out = dict(raw)
    proj_block = dict(raw.get("project") or {})
    if not same:
        proj_block = {
            "pid": "__VIA_PROJECT_ID__",
            "rev": "__VIA_PROJECT_REV_ID__",
            "rev_timestamp": "__VIA_PROJECT_REV_TIMESTAMP__",
            "pname": name,
            "creator": CREATOR,
            "created": 0,
            "data_format_version": "3.1.1",
            "vid_list": [],
        }
        out["project"] = proj_block
        out["config"] = {
            "file": {"loc_prefix": {"1": "", "2": "", "3": "", "4": ""}},
            "ui": {"file_content_align": "center"},
        }
    attr_table = dict(raw.get("attribute") or {})
    new_aid = _Ids(attr_table)
    id2name_read, _ = _name_maps(raw.get("attribute") or {}) if same else ({}, {})
    _, name2id = _name_maps(attr_table)
    # attribute definitions added or changed in Project.attributes (VIA2-shaped) since reading
    read_defs = state.get("attrs_read") or {"region": {}, "file": {}}
    attrs = project.attributes if isinstance(project.attributes, dict) else {}
    for level, anchor in (("region", REGION_ANCHOR), ("file", FILE_ANCHOR)):
        for name, d in (attrs.get(level) or {}).items():
            if not isinstance(d, dict) or (read_defs.get(level) or {}).get(name) == d:
                continue
            opts = o if isinstance(o := d.get("options"), dict) else {}
            dflt = ",".join(k for k, v in (d.get("default_options") or {}).items() if v)
            aid = name2id.get(name)
            if aid is None:
                aid = name2id[name] = new_aid()
            attr_table[aid] = {
                **attr_table.get(aid, {}),
                "aname": name,
                "anchor_id": attr_table.get(aid, {}).get("anchor_id", anchor),
                "type": VIA2_TO_TYPE.get(d.get("type"), 1),
                "desc": d.get("description", ""),
                "options": dict(opts),
                "default_option_id": dflt or d.get("default_value", ""),
            }

    def av_of(attrs: dict, anchor: str, old_av: Any) -> dict:
        if isinstance(old_av, dict):  # unchanged since read (compared the way it was read): the file's own av
            if list(attrs.items()) == list({id2name_read.get(k, k): v for k, v in old_av.items()}.items()):
                return old_av
        av = {}
        for name, value in attrs.items():
            aid = name2id.get(name) or (name if name in attr_table else None)
            if aid is None:
                aid = new_aid()
                attr_table[aid] = {
                    "aname": name,
                    "anchor_id": anchor,
                    "type": 1,
                    "desc": "",
                    "options": {},
                    "default_option_id": "",
                }
                name2id[name] = aid
            av[aid] = value
        if isinstance(old_av, dict) and list(old_av.items()) == list(av.items()):
            return old_av
        return av

    files = dict(raw.get("file") or {})
    files_before = set(files)
    views = dict(raw.get("view") or {})
    new_fid, new_vid = _Ids(files), _Ids(views)
    fid_to_vid = {f: v for v, f in state["vid_to_fid"].items()}
    vid_list = proj_block.get("vid_list") if "vid_list" in proj_block else raw.get("vid_list")
    if vid_list is not None and not isinstance(vid_list, list):
        vid_list = None  # not ours to fix: written back as it was
    new_vids: list[str] = []
    kept_fids = set()
    region_meta: dict[str, dict] = {}  # mid -> new metadata entry, for regions still present
    fresh: list[tuple[str, dict]] = []
    used_mids = set((raw.get("metadata") or {}).keys())
    counter = [0]

    def new_mid(vid: str) -> str:
        while True:
            counter[0] += 1
            mid = f"{vid}_{counter[0]:06d}"
            if mid not in used_mids:
                used_mids.add(mid)
                return mid

    id_of = {id(m): mid for mid, m in (raw.get("metadata") or {}).items()}
    fa_out: dict[str, dict] = {}
    for im in project.images:
        fid = str(im.key) if same and str(im.key) in files and im.raw is files.get(str(im.key)) else None
        if fid is None:
            fid = new_fid()
            loc = 2 if im.filename.startswith(("http://", "https://")) else 3
            files[fid] = {"fid": fid, "fname": im.filename, "type": 2, "loc": loc, "src": im.filename}
        elif files[fid].get("fname") != im.filename:
            files[fid] = {**files[fid], "fname": im.filename}
        kept_fids.add(fid)
        new_file = fid not in files_before
        vid = fid_to_vid.get(fid)
        if vid is None and (new_file or im.regions or im.file_attributes):  # a file VIA3 shows needs a view
            vid = new_vid()
            views[vid] = {"fid_list": [fid]}
            new_vids.append(vid)
        for r in im.regions:
            m = r.raw if same and isinstance(r.raw, dict) and id(r.raw) in id_of else None
            old_xy = m.get("xy") if m else None
            xy = _shape_to_xy(r.shape, old_xy)
            av = av_of(r.attributes, REGION_ANCHOR, m.get("av") if m else None)
            if m is not None and id_of[id(m)] not in region_meta:
                entry = m if (xy is old_xy and av is m.get("av")) else {**m, "xy": xy, "av": av}
                region_meta[id_of[id(m)]] = entry
            else:
                assert vid is not None  # im.regions is not empty: the image has a view
                fresh.append((new_mid(vid), {"vid": vid, "flg": 0, "z": [], "xy": xy, "av": av}))
        mid = state["fa_mid"].get(fid)
        old = (raw.get("metadata") or {}).get(mid) if mid else None
        av = av_of(im.file_attributes, FILE_ANCHOR, old.get("av") if old else None)
        if old is not None:
            fa_out[mid] = old if av is old.get("av") else {**old, "av": av}
        elif av:
            assert vid is not None  # im.file_attributes is not empty: the image has a view
            fresh.append((new_mid(vid), {"vid": vid, "flg": 0, "z": [], "xy": [], "av": av}))

    # drop images that were removed: their file, their single-file views and those views' metadata
    gone_fids = {f for f in state.get("image_fids", ()) if f not in kept_fids}
    gone_vids = {v for v, f in state["vid_to_fid"].items() if f in gone_fids}
    for f in gone_fids:
        files.pop(f, None)
    for v in gone_vids:
        views.pop(v, None)
    metadata = {}
    for mid, m in (raw.get("metadata") or {}).items():
        vid = str(m.get("vid"))
        if vid in gone_vids:
            continue
        fid = state["vid_to_fid"].get(vid)
        is_image_meta = fid is not None and m.get("z", []) == []
        if is_image_meta and m.get("xy"):
            if mid in region_meta:
                metadata[mid] = region_meta[mid]
            continue  # a deleted region
        if is_image_meta and mid in fa_out:
            metadata[mid] = fa_out[mid]
            continue
        metadata[mid] = m
    for mid, m in fresh:
        metadata[mid] = m

    if vid_list is not None or not same:
        vl = [v for v in (vid_list or []) if str(v) not in gone_vids] + new_vids
        if same and vl == vid_list:
            vl = vid_list
        if "vid_list" in proj_block or not same:
            proj_block = {**proj_block, "vid_list": vl}
        else:
            out["vid_list"] = vl
    if proj_block != raw.get("project"):
        out["project"] = proj_block
    for k, new in (("attribute", attr_table), ("file", files), ("view", views), ("metadata", metadata)):
        old = raw.get(k)
        if same and k not in raw and not new:
            continue  # a table the file did not have stays absent
        if isinstance(old, dict) and list(old) == list(new) and all(old[i] is new[i] for i in old):
            out[k] = old
        else:
            out[k] = new
    if not same:  # VIA's own key order
        out = {k: out[k] for k in ("project", "config", "attribute", "file", "metadata", "view")}
    return out
