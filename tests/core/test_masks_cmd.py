"""`viaseg masks`: PNG masks mirroring the splits, right size and values, warnings for bad images."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
from viaseg.core.annotation.raster import rasterize
from viaseg.core.cli import main
from viaseg.core.imaging.imageio import image_size


def _poly(xs, ys, **attrs) -> dict:
    return {
        "shape_attributes": {"name": "polygon", "all_points_x": list(xs), "all_points_y": list(ys)},
        "region_attributes": dict(attrs),
    }


def _write_via(folder: Path, entries: dict[str, list[dict]]) -> None:
    data = {}
    for name, regions in entries.items():
        size = (folder / name).stat().st_size if (folder / name).exists() else 0
        data[f"{name}{size}"] = {"filename": name, "size": size, "regions": regions, "file_attributes": {}}
    (folder / "via_region_data.json").write_text(json.dumps(data))


def _img(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 128, np.uint8))


def _rotated_jpeg(path: Path, w: int, h: int) -> None:
    """A w x h JPEG whose EXIF orientation 6 makes browsers show it h x w."""
    ok, enc = cv2.imencode(".jpg", np.full((h, w, 3), 90, np.uint8))
    tiff = b"II" + struct.pack("<HI", 42, 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHI", 0x0112, 3, 1) + struct.pack("<HH", 6, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    data = enc.tobytes()
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:])


def _dataset(root: Path) -> dict:
    train, val, test = root / "train", root / "val", root / "test"
    _img(train / "a.jpg", 60, 40)
    _img(train / "b.png", 30, 20)
    _img(train / "empty.jpg", 10, 10)
    train_regions = {
        "a.jpg": [_poly([5, 30, 30, 5], [5, 5, 30, 30], **{"class": "dent"})],
        "b.png": [
            _poly([1, 20, 10], [1, 1, 15]),
            {"shape_attributes": {"name": "polyline", "all_points_x": [0, 5], "all_points_y": [0, 5]}},
        ],
        "empty.jpg": [],
        "gone.jpg": [_poly([1, 5, 5], [1, 1, 5])],
    }
    _write_via(train, train_regions)
    val.mkdir()
    _rotated_jpeg(val / "r.jpg", 50, 30)
    _img(val / "dup.jpg", 20, 20)
    _img(val / "dup.png", 20, 20)
    (val / "broken.jpg").write_text("not an image")
    val_regions = {
        "r.jpg": [_poly([2, 20, 20, 2], [2, 2, 40, 40])],
        "dup.jpg": [_poly([1, 9, 9], [1, 1, 9])],
        "dup.png": [_poly([10, 19, 19], [10, 10, 19])],
        "broken.jpg": [_poly([1, 5, 5], [1, 1, 5])],
    }
    _write_via(val, val_regions)
    _img(test / "t.jpg", 16, 16)  # unlabeled split: no masks
    return {"train": train_regions, "val": val_regions}


def _read(p: Path) -> np.ndarray:
    m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert m is not None and m.dtype == np.uint8 and m.ndim == 2, p
    return m


def test_masks_command_end_to_end(tmp_path, capsys):
    regions = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    rc = main(["masks", str(tmp_path / "ds"), "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 1  # gone.jpg and broken.jpg
    assert "gone.jpg" in cap.err and "no such file" in cap.err
    assert "broken.jpg" in cap.err and "not an image" in cap.err
    assert "polyline" in cap.err  # skipped region reported
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["train/a.png", "train/b.png", "val/dup.jpg.png", "val/dup.png.png", "val/r.png"]
    assert not (out / "test").exists()
    assert all(f.endswith(".png") for f in files)
    for f in files:
        assert (out / f).read_bytes().startswith(b"\x89PNG")  # really PNG, lossless

    a = _read(out / "train" / "a.png")
    assert a.shape == (40, 60) and set(np.unique(a)) == {0, 255}
    want = rasterize([r["shape_attributes"] for r in regions["train"]["a.jpg"]], (60, 40)) * 255
    assert np.array_equal(a, want)
    b = _read(out / "train" / "b.png")
    assert b.shape == (20, 30) and b[5, 10] == 255 and b[19, 29] == 0
    r = _read(out / "val" / "r.png")
    assert r.shape == (50, 30)  # displayed size after EXIF rotation: 30 wide, 50 high
    assert r[30, 10] == 255 and r[45, 10] == 0
    assert _read(out / "val" / "dup.jpg.png")[5, 7] == 255 and _read(out / "val" / "dup.png.png")[5, 7] == 0
    assert "wrote 5 masks" in cap.out and "without regions" in cap.out


def test_index_values_single_split_and_empty(tmp_path, capsys):
    _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    rc = main(
        [
            "masks",
            str(tmp_path / "ds" / "train" / "via_region_data.json"),
            "--out",
            str(out),
            "--values",
            "index",
            "--include-empty",
        ]
    )
    assert rc == 1  # gone.jpg still missing
    a = _read(out / "train" / "a.png")
    assert set(np.unique(a)) == {0, 1}
    e = _read(out / "train" / "empty.png")
    assert e.shape == (10, 10) and e.max() == 0
    assert not (out / "val").exists()


def test_clean_dataset_exit_zero_and_split_spec(tmp_path, capsys):
    root = tmp_path / "ds"
    _img(root / "train" / "x.jpg", 32, 24)
    _write_via(root / "train", {"x.jpg": [_poly([1, 20, 20], [1, 1, 20])]})
    _img(root / "val" / "y.jpg", 32, 24)
    _write_via(root / "val", {"y.jpg": [_poly([1, 20, 20], [1, 1, 20])]})
    out = tmp_path / "out"
    assert main(["masks", f"{root}:val", "--out", str(out)]) == 0
    assert [p.name for p in out.rglob("*.png")] == ["y.png"]
    assert capsys.readouterr().err == ""


def test_no_labeled_split_is_an_error(tmp_path, capsys):
    _img(tmp_path / "ds" / "test" / "t.jpg", 8, 8)
    assert main(["masks", str(tmp_path / "ds"), "--out", str(tmp_path / "out")]) == 2
    assert "no labeled split" in capsys.readouterr().err


def test_car_damage_masks_match_images(car_damage, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["masks", f"{car_damage}:val", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    written = sorted(out.rglob("*.png"))
    assert len(written) >= 10
    images = {p.name: p for p in (car_damage / "val").iterdir()}
    for m in written:
        mask = _read(m)
        assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255
        stem = m.name[: -len(".png")]
        src = images.get(stem) or next(p for n, p in images.items() if Path(n).stem == stem)
        assert (mask.shape[1], mask.shape[0]) == image_size(src), m


# ------------------------------------------------------------------------------------------- demo project

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo"


def _load_make_demo():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_demo", REPO / "scripts" / "make_demo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_demo_project_is_sane():
    from viaseg.core.annotation.dataset import load_dataset

    ds = load_dataset(DEMO)
    assert list(ds.splits) == ["train", "val", "test"]
    assert len(ds.splits["train"].entries) == 24 and len(ds.splits["val"].entries) == 8
    assert ds.splits["test"].project is None and len(ds.splits["test"].entries) == 4
    classes = set()
    for name in ("train", "val"):
        for e in ds.splits[name].entries:
            w, h = image_size(e.path)
            assert (w, h) == (320, 240)
            assert e.regions, e.filename
            for r in e.regions:
                xs, ys = r.shape["all_points_x"], r.shape["all_points_y"]
                assert r.shape["name"] == "polygon" and len(xs) == len(ys) >= 3
                assert all(isinstance(v, int) for v in xs + ys)
                assert 0 <= min(xs) and max(xs) < w and 0 <= min(ys) and max(ys) < h
                classes.add(r.attributes["class"])
            assert rasterize(e.regions, (w, h)).sum() > 0
    assert classes == {"scratch", "dent"}
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 3_000_000
    assert "synthetic" in (DEMO / "README.md").read_text().lower()


def test_demo_is_what_the_generator_makes(tmp_path):
    """data/demo is exactly what scripts/make_demo.py writes (annotations byte for byte, pixels within JPEG
    rounding), and the damage is really painted where the polygons are."""
    mod = _load_make_demo()
    counts = mod.generate(tmp_path / "demo", seed=7)
    assert counts == {"train": 24, "val": 8, "test": 4}
    for split in ("train", "val"):
        assert (tmp_path / "demo" / split / "via_region_data.json").read_bytes() == (
            DEMO / split / "via_region_data.json"
        ).read_bytes()
    for p in sorted(DEMO.rglob("*.jpg")):
        a = cv2.imread(str(p)).astype(np.int16)
        b = cv2.imread(str(tmp_path / "demo" / p.relative_to(DEMO))).astype(np.int16)
        assert np.abs(a - b).mean() < 1.0, p
    # damage visible: the painted pixels differ from a fresh panel drawn with the same seed
    rng = np.random.default_rng([7, 0, 0])
    panel = mod._panel(rng)
    img, regions = mod.make_image(np.random.default_rng([7, 0, 0]))
    m = rasterize(regions, (320, 240)).astype(bool)
    diff = np.abs(img.astype(np.float32) / 255.0 - panel).mean(axis=2)
    assert diff[m].mean() > 0.1 and diff[~m].mean() < 0.01


def test_masks_of_demo(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["masks", str(DEMO), "--out", str(out)]) == 0
    assert len(list((out / "train").glob("*.png"))) == 24 and len(list((out / "val").glob("*.png"))) == 8
    assert not (out / "test").exists()


def test_masks_never_go_among_the_photos(tmp_path, capsys):
    """``--out`` the dataset folder (or the folder above a VIA file) wrote b.png's mask over the photo b.png
    and a.jpg's mask a.png beside the photos; now it is refused before anything is written."""
    _dataset(tmp_path / "ds")
    train = tmp_path / "ds" / "train"
    photo = (train / "b.png").read_bytes()
    before = sorted(p.name for p in train.iterdir())
    for out in (tmp_path / "ds", tmp_path / "ds" / "train" / ".."):
        assert main(["masks", str(tmp_path / "ds"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "holding the dataset's photos" in err and "--out" in err
    assert main(["masks", str(train / "via_region_data.json"), "--out", str(tmp_path / "ds")]) == 2
    assert (train / "b.png").read_bytes() == photo
    assert sorted(p.name for p in train.iterdir()) == before
    assert not (tmp_path / "ds" / "val" / "r.png").exists()
    # a folder beside the photos is fine
    assert main(["masks", f"{tmp_path / 'ds'}:train", "--out", str(tmp_path / "ds" / "masks")]) == 1
    assert (tmp_path / "ds" / "masks" / "train" / "b.png").is_file()


def test_mask_names_that_still_meet_get_a_number(tmp_path, capsys):
    """a.jpg and a.png share the stem, so a.jpg's mask is a.jpg.png, the name a.jpg.png's own mask has too:
    one mask replaced the other while the count said 3."""
    root = tmp_path / "ds" / "train"
    _img(root / "a.jpg", 20, 20)
    _img(root / "a.png", 20, 20)
    _img(root / "a.jpg.png", 20, 20)
    _write_via(
        root,
        {
            "a.jpg": [_poly([0, 19, 19, 0], [0, 0, 19, 19])],
            "a.png": [_poly([0, 4, 4], [0, 0, 4])],
            "a.jpg.png": [_poly([10, 19, 19], [10, 10, 19])],
        },
    )
    out = tmp_path / "out"
    assert main(["masks", str(tmp_path / "ds"), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    files = sorted(p.name for p in (out / "train").iterdir())
    assert len(files) == 3 and "wrote 3 masks" in cap.out, files
    areas = sorted(int((_read(out / "train" / f) > 0).sum()) for f in files)
    assert areas[-1] == 400 and areas[0] < 50  # each image's own mask: a.jpg (all), a.png (small), a.jpg.png
    assert "a.jpg.png~2.png" in files or "a.jpg~2.png" in files, files
    assert "mask named" in cap.err
