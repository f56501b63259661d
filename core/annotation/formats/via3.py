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
from pathlib import Path
from typing import Any

from ...base.errors import ViaFormatError
from ..project import ImageEntry, Project, Region
from .via3_shapes import shape_to_xy, xy_to_shape
from .via_common import key_path, show
from .via_values import check_dict, is_number

TYPE_TO_VIA2 = {1: "text", 2: "checkbox", 3: "radio", 4: "dropdown", 5: "image"}
VIA2_TO_TYPE: dict[str | None, int] = {v: k for k, v in TYPE_TO_VIA2.items()}
REGION_ANCHOR = "FILE1_Z0_XY1"
FILE_ANCHOR = "FILE1_Z0_XY0"
CREATOR = "VGG Image Annotator (http://www.robots.ox.ac.uk/~vgg/software/via)"


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


def _read_tables(data: dict, path) -> dict[str, dict]:
    check_dict(data["project"], "project", path)
    tables = {}
    for k in ("config", "attribute", "file", "view", "metadata"):
        tables[k] = check_dict(data.get(k, {}), k, path)
        if k != "config":
            for ik, item in tables[k].items():
                check_dict(item, key_path(k, ik), path)
    return tables


def _read_images(files: dict, config: dict, path, base_dir: Path | None) -> dict[str, ImageEntry]:
    """An entry per image file (``type`` 2 or none), keyed by file id; other files stay in ``Project.raw``."""
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
                base_dir=_image_dir(f, fname, config, base_dir),
            )
    return images


def _image_views(views: dict, images: dict[str, ImageEntry], path) -> dict[str, str]:
    """view id -> file id of the views that show one image alone (only their metadata becomes regions)."""
    vid_to_fid: dict[str, str] = {}
    for vid, v in views.items():
        fl = v.get("fid_list")
        if not isinstance(fl, list):
            raise ViaFormatError(
                path, f"{key_path('view', vid)}.fid_list", f"expected a list, got {show(fl)}"
            )
        if len(fl) == 1 and isinstance(fl[0], (str, int)) and str(fl[0]) in images:
            vid_to_fid[str(vid)] = str(fl[0])
    return vid_to_fid


def _named(av: Any, where: str, path, id2name: dict) -> dict:
    check_dict(av, where, path)
    return {id2name.get(k, k): v for k, v in av.items()}


def _read_metadata(
    metadata: dict, vid_to_fid: dict[str, str], images: dict[str, ImageEntry], id2name: dict, path
) -> dict[str, str]:
    """Fill the images' regions and file attributes; returns file id -> id of its file-attribute entry."""
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
            shape = xy_to_shape(xy, f"{w}.xy", path)
            im.regions.append(
                Region(shape=shape, attributes=_named(m.get("av", {}), f"{w}.av", path, id2name), raw=m)
            )
        elif fid not in fa_mid:
            fa_mid[fid] = mid
            im.file_attributes = _named(m.get("av", {}), f"{w}.av", path, id2name)
    return fa_mid


def read_via3(data: dict, path, base_dir: Path | None) -> Project:
    tables = _read_tables(data, path)
    attr_table = tables["attribute"]
    id2name, _ = _name_maps(attr_table)
    images = _read_images(tables["file"], tables["config"], path, base_dir)
    vid_to_fid = _image_views(tables["view"], images, path)
    fa_mid = _read_metadata(tables["metadata"], vid_to_fid, images, id2name, path)
    others = sum(1 for f in tables["file"].values() if f.get("type", 2) != 2)
    unread = sum(
        1 for m in tables["metadata"].values() if str(m.get("vid")) not in vid_to_fid or m.get("z", []) != []
    )
    project = Project(
        images=list(images.values()), fmt="via3", path=None, attributes=_attributes_via2(attr_table), raw=data
    )
    project._via3 = {
        "vid_to_fid": vid_to_fid,
        "fa_mid": fa_mid,
        "image_fids": list(images),
        "attrs_read": copy.deepcopy(project.attributes),
        "not_loaded": (others, unread),
    }
    return project


def check_images(project: Project) -> None:
    """``ViaFormatError`` for a VIA 3 project of video/audio files only: nothing of it is an image to annotate
    (:func:`read_via3` reads it, for a lossless VIA 3 round trip, as a project of no images)."""
    others, unread = (project._via3 or {}).get("not_loaded") or (0, 0)
    if others and not project.images:
        raise ViaFormatError(
            project.path,
            "file",
            f"VIA 3 project with video/audio files ({others} files, {unread} regions): not supported "
            "(viaseg reads annotations of images)",
        )


def not_loaded(project: Project) -> str | None:
    """What of a VIA 3 project's file is not among its images and regions (video/audio files, their
    annotations, regions of views of several files), in words; None when everything was loaded. The VIA 3
    writer keeps it all; any other format leaves it out."""
    others, unread = (project._via3 or {}).get("not_loaded") or (0, 0)
    if not others and not unread:
        return None
    what = [f"{others} video/audio file(s)"] if others else []
    what += [f"{unread} annotation(s) of video/audio or of views of several files"] if unread else []
    return f"{project.path}: not loaded: {' and '.join(what)} (viaseg reads annotations of images)"


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


def _new_project_block(name: str) -> dict:
    return {
        "pid": "__VIA_PROJECT_ID__",
        "rev": "__VIA_PROJECT_REV_ID__",
        "rev_timestamp": "__VIA_PROJECT_REV_TIMESTAMP__",
        "pname": name,
        "creator": CREATOR,
        "created": 0,
        "data_format_version": "3.1.1",
        "vid_list": [],
    }


class _AttrTable:
    """The VIA3 attribute table being written, and the ids of attribute names."""

    def __init__(self, raw: dict, same: bool):
        self.table = dict(raw.get("attribute") or {})
        self.new_id = _Ids(self.table)
        # names as they were read, to tell an unchanged ``av`` from an edited one
        self.id2name_read = _name_maps(raw.get("attribute") or {})[0] if same else {}
        self.name2id = _name_maps(self.table)[1]

    def update_definitions(self, attrs: Any, read_defs: dict) -> None:
        """Write the definitions added or changed in ``Project.attributes`` (VIA2-shaped) since reading."""
        table, name2id = self.table, self.name2id
        attrs = attrs if isinstance(attrs, dict) else {}
        for level, anchor in (("region", REGION_ANCHOR), ("file", FILE_ANCHOR)):
            for name, d in (attrs.get(level) or {}).items():
                if not isinstance(d, dict) or (read_defs.get(level) or {}).get(name) == d:
                    continue
                opts = o if isinstance(o := d.get("options"), dict) else {}
                dflt = ",".join(k for k, v in (d.get("default_options") or {}).items() if v)
                aid = name2id.get(name)
                if aid is None:
                    aid = name2id[name] = self.new_id()
                table[aid] = {
                    **table.get(aid, {}),
                    "aname": name,
                    "anchor_id": table.get(aid, {}).get("anchor_id", anchor),
                    "type": VIA2_TO_TYPE.get(d.get("type"), 1),
                    "desc": d.get("description", ""),
                    "options": dict(opts),
                    "default_option_id": dflt or d.get("default_value", ""),
                }

    def av(self, attrs: dict, anchor: str, old_av: Any) -> dict:
        """The ``av`` of ``attrs`` (names -> ids; unknown names become text attributes); ``old_av`` itself
        when nothing changed, so the file's own dict (and key order) is written back."""
        if isinstance(old_av, dict):  # unchanged since read (compared the way it was read): the file's own av
            id2name = self.id2name_read
            if list(attrs.items()) == list({id2name.get(k, k): v for k, v in old_av.items()}.items()):
                return old_av
        table, name2id = self.table, self.name2id
        av = {}
        for name, value in attrs.items():
            aid = name2id.get(name) or (name if name in table else None)
            if aid is None:
                aid = self.new_id()
                table[aid] = {
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


class _Writer:
    """One :func:`build_via3`: the tables being written, and what was read from the file they came from (the
    file's own objects are reused wherever nothing changed)."""

    def __init__(self, project: Project):
        same = project.fmt == "via3" and isinstance(project.raw, dict)
        raw: dict = project.raw if same else {}
        self.same, self.raw = same, raw
        state = getattr(project, "_via3", None) if same else None
        self.state: dict = state or {"vid_to_fid": {}, "fa_mid": {}}
        self.attrs = _AttrTable(raw, same)
        self.attrs.update_definitions(
            project.attributes, self.state.get("attrs_read") or {"region": {}, "file": {}}
        )
        self.old_meta: dict = raw.get("metadata") or {}
        self.files = dict(raw.get("file") or {})
        self.files_before = set(self.files)
        self.views = dict(raw.get("view") or {})
        self.new_fid, self.new_vid = _Ids(self.files), _Ids(self.views)
        self.fid_to_vid = {f: v for v, f in self.state["vid_to_fid"].items()}
        self.new_vids: list[str] = []
        self.kept_fids: set[str] = set()
        self.region_meta: dict[str, dict] = {}  # mid -> new metadata entry, for regions still present
        self.fa_out: dict[str, dict] = {}  # mid -> new file-attribute entry
        self.fresh: list[tuple[str, dict]] = []  # (mid, entry) of new metadata
        self.used_mids = set(self.old_meta.keys())
        self.counter = 0
        self.id_of = {id(m): mid for mid, m in self.old_meta.items()}

    def new_mid(self, vid: str) -> str:
        while True:
            self.counter += 1
            mid = f"{vid}_{self.counter:06d}"
            if mid not in self.used_mids:
                self.used_mids.add(mid)
                return mid

    def add_image(self, im: ImageEntry) -> None:
        files = self.files
        fid = str(im.key) if self.same and str(im.key) in files and im.raw is files.get(str(im.key)) else None
        if fid is None:
            fid = self.new_fid()
            loc = 2 if im.filename.startswith(("http://", "https://")) else 3
            files[fid] = {"fid": fid, "fname": im.filename, "type": 2, "loc": loc, "src": im.filename}
        elif files[fid].get("fname") != im.filename:
            files[fid] = {**files[fid], "fname": im.filename}
        self.kept_fids.add(fid)
        new_file = fid not in self.files_before
        vid = self.fid_to_vid.get(fid)
        if vid is None and (new_file or im.regions or im.file_attributes):  # a file VIA3 shows needs a view
            vid = self.new_vid()
            self.views[vid] = {"fid_list": [fid]}
            self.new_vids.append(vid)
        self.add_regions(im, vid)
        self.add_file_attributes(im, fid, vid)

    def add_regions(self, im: ImageEntry, vid: str | None) -> None:
        same, id_of, region_meta, av_of = self.same, self.id_of, self.region_meta, self.attrs.av
        for r in im.regions:
            m = r.raw if same and isinstance(r.raw, dict) and id(r.raw) in id_of else None
            old_xy = m.get("xy") if m else None
            xy = shape_to_xy(r.shape, old_xy)
            av = av_of(r.attributes, REGION_ANCHOR, m.get("av") if m else None)
            if m is not None and id_of[id(m)] not in region_meta:
                entry = m if (xy is old_xy and av is m.get("av")) else {**m, "xy": xy, "av": av}
                region_meta[id_of[id(m)]] = entry
            else:
                assert vid is not None  # im.regions is not empty: the image has a view
                self.fresh.append((self.new_mid(vid), {"vid": vid, "flg": 0, "z": [], "xy": xy, "av": av}))

    def add_file_attributes(self, im: ImageEntry, fid: str, vid: str | None) -> None:
        mid = self.state["fa_mid"].get(fid)
        old = self.old_meta.get(mid) if mid else None
        av = self.attrs.av(im.file_attributes, FILE_ANCHOR, old.get("av") if old else None)
        if old is not None:
            self.fa_out[mid] = old if av is old.get("av") else {**old, "av": av}
        elif av:
            assert vid is not None  # im.file_attributes is not empty: the image has a view
            self.fresh.append((self.new_mid(vid), {"vid": vid, "flg": 0, "z": [], "xy": [], "av": av}))

    def drop_removed(self) -> set[str]:
        """Drop the images that were removed: their file and their single-file views; returns those views."""
        vid_to_fid = self.state["vid_to_fid"]
        gone_fids = {f for f in self.state.get("image_fids", ()) if f not in self.kept_fids}
        gone_vids = {v for v, f in vid_to_fid.items() if f in gone_fids}
        for f in gone_fids:
            self.files.pop(f, None)
        for v in gone_vids:
            self.views.pop(v, None)
        return gone_vids

    def metadata(self, gone_vids: set[str]) -> dict:
        """The metadata table in the file's order: kept and edited entries, then the new ones; the metadata of
        removed views and deleted regions is left out."""
        vid_to_fid = self.state["vid_to_fid"]
        metadata = {}
        for mid, m in self.old_meta.items():
            vid = str(m.get("vid"))
            if vid in gone_vids:
                continue
            fid = vid_to_fid.get(vid)
            is_image_meta = fid is not None and m.get("z", []) == []
            if is_image_meta and m.get("xy"):
                if mid in self.region_meta:
                    metadata[mid] = self.region_meta[mid]
                continue  # a deleted region
            if is_image_meta and mid in self.fa_out:
                metadata[mid] = self.fa_out[mid]
                continue
            metadata[mid] = m
        for mid, m in self.fresh:
            metadata[mid] = m
        return metadata

    def set_vid_list(self, out: dict, proj_block: dict, gone_vids: set[str]) -> dict:
        """Update the view list (in the project block, or at the top level where the file has it there);
        returns the project block."""
        same, raw = self.same, self.raw
        vid_list = proj_block.get("vid_list") if "vid_list" in proj_block else raw.get("vid_list")
        if vid_list is not None and not isinstance(vid_list, list):
            return proj_block  # not ours to fix: written back as it was
        if vid_list is not None or not same:
            vl = [v for v in (vid_list or []) if str(v) not in gone_vids] + self.new_vids
            if same and vl == vid_list:
                vl = vid_list
            if "vid_list" in proj_block or not same:
                proj_block = {**proj_block, "vid_list": vl}
            else:
                out["vid_list"] = vl
        return proj_block

    def set_tables(self, out: dict, metadata: dict) -> None:
        same, raw = self.same, self.raw
        tables = (
            ("attribute", self.attrs.table),
            ("file", self.files),
            ("view", self.views),
            ("metadata", metadata),
        )
        for k, new in tables:
            old = raw.get(k)
            if same and k not in raw and not new:
                continue  # a table the file did not have stays absent
            if isinstance(old, dict) and list(old) == list(new) and all(old[i] is new[i] for i in old):
                out[k] = old
            else:
                out[k] = new


def build_via3(project: Project, name: str = "via_project") -> dict:
    w = _Writer(project)
    raw = w.raw
    out = dict(raw)
    proj_block = dict(raw.get("project") or {})
    if not w.same:
        proj_block = out["project"] = _new_project_block(name)
        out["config"] = {
            "file": {"loc_prefix": {"1": "", "2": "", "3": "", "4": ""}},
            "ui": {"file_content_align": "center"},
        }
    for im in project.images:
        w.add_image(im)
    gone_vids = w.drop_removed()
    metadata = w.metadata(gone_vids)
    proj_block = w.set_vid_list(out, proj_block, gone_vids)
    if proj_block != raw.get("project"):
        out["project"] = proj_block
    w.set_tables(out, metadata)
    if not w.same:  # VIA's own key order
        out = {k: out[k] for k in ("project", "config", "attribute", "file", "metadata", "view")}
    return out
