"""Streaming ``viaseg predict``: lists of images, batches, the journal, ``--resume`` after a kill, bad photos."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from viaseg.core.annotation.formats.via_io import load_via  # noqa: E402
from viaseg.core.cli import main  # noqa: E402
from viaseg.core.ml.modelio import save_model  # noqa: E402
from viaseg.core.ml.predict import Predictor  # noqa: E402

SIZE = 32


def brightness_model() -> keras.Model:
    """prob = sigmoid(10 * mean(rgb01) - 5): white squares on black are predicted exactly."""
    inp = keras.Input((SIZE, SIZE, 3))
    out = keras.layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.Constant(10.0 / 3.0),
        bias_initializer=keras.initializers.Constant(-5.0),
    )(inp)
    return keras.Model(inp, out)


def square_photo(path: Path, i: int) -> tuple[int, int, int, int]:
    """A black photo with one white square whose place depends on ``i``; returns the square (x0, y0, x1, y1)."""
    w, h = 160 + 8 * (i % 3), 120
    img = np.zeros((h, w, 3), np.uint8)
    x0, y0 = 16 + 4 * (i % 5), 16 + 3 * (i % 4)
    img[y0 : y0 + 48, x0 : x0 + 64] = 255
    cv2.imwrite(str(path), img)
    return x0, y0, x0 + 64, y0 + 48


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("model")
    return save_model(brightness_model(), d / "bright.keras", {"input_size": SIZE, "class_names": ["dent"]})


@pytest.fixture
def photos(tmp_path) -> tuple[Path, dict[str, tuple]]:
    folder = tmp_path / "photos"
    folder.mkdir()
    boxes = {}
    for i in range(10):
        name = f"p{i}.png"
        boxes[name] = square_photo(folder / name, i)
    return folder, boxes


def check_region(entry, box) -> None:
    assert len(entry.regions) == 1 and entry.regions[0].kind == "polygon"
    assert entry.regions[0].attributes == {"class": "dent"}
    xs, ys = entry.regions[0].shape["all_points_x"], entry.regions[0].shape["all_points_y"]
    x0, y0, x1, y1 = box
    assert (
        abs(min(xs) - x0) <= 6
        and abs(max(xs) - x1) <= 6
        and abs(min(ys) - y0) <= 6
        and abs(max(ys) - y1) <= 6
    )


def journal_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_list_file_input_gives_outputs_for_every_photo_in_batches(model_file, photos, tmp_path, capsys):
    folder, boxes = photos
    names = sorted(boxes)
    # a list file elsewhere: relative lines resolve against the list's folder; comments, blanks, a folder line
    lists = tmp_path / "lists"
    lists.mkdir()
    sub = tmp_path / "more"
    sub.mkdir()
    boxes["q.png"] = square_photo(sub / "q.png", 11)
    text = "# photos to predict\n\n" + "".join(f"../photos/{n}\n" for n in names[:6]) + "  ../more  \n"
    (lists / "batch.txt").write_text(text)
    # and an @list with absolute paths, overlapping the first (repeats are dropped)
    (tmp_path / "rest.lst").write_text("".join(f"{folder / n}\n" for n in names[4:]))
    out = tmp_path / "out"
    predictor = Predictor.load(model_file)
    calls = predictor.forward_calls
    args = [
        "predict",
        str(model_file),
        str(lists / "batch.txt"),
        f"@{tmp_path / 'rest.lst'}",
        "--out",
        str(out),
    ]
    assert main([*args, "--batch-size", "4"]) == 0
    assert "11 image(s) predicted" in capsys.readouterr().out
    assert predictor.forward_calls - calls == 3  # 11 photos in batches of 4
    for name in boxes:
        stem = Path(name).stem
        src = cv2.imread(str((sub if name == "q.png" else folder) / name))
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == src.shape[:2] and set(np.unique(mask)) == {0, 255}
        assert (out / f"{stem}_overlay.jpg").exists()
    project = load_via(out / "via_region_data.json")
    order = [Path(e.filename).name for e in project.images]
    assert order == names[:6] + ["q.png"] + names[6:]  # input order
    for e in project.images:
        check_region(e, boxes[Path(e.filename).name])
        assert (
            e.path.resolve()
            == ((sub if e.filename.endswith("q.png") else folder) / Path(e.filename).name).resolve()
        )
    assert len(journal_lines(out)) == 11
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no temporary files left


def test_unreadable_photos_are_named_and_the_rest_written(model_file, photos, tmp_path, capsys):
    folder, boxes = photos
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    lst = tmp_path / "list.txt"
    lst.write_text("photos/p0.png\nphotos/gone.jpg\nphotos/broken.jpg\nphotos/p1.png\n")
    out = tmp_path / "out"
    assert main(["predict", str(model_file), str(lst), "--out", str(out), "--batch-size", "2"]) == 1
    err = capsys.readouterr().err
    assert "gone.jpg" in err and "broken.jpg" in err and "Traceback" not in err
    assert "2 of 4 image(s) written" in err
    assert (out / "p0_mask.png").exists() and (out / "p1_mask.png").exists()
    assert not (out / "broken_mask.png").exists() and not (out / "gone_mask.png").exists()
    project = load_via(out / "via_region_data.json")
    assert sorted(Path(e.filename).name for e in project.images) == ["p0.png", "p1.png"]
    for e in project.images:
        check_region(e, boxes[Path(e.filename).name])


def test_resume_after_a_kill_skips_done_photos_and_completes_the_via_file(
    model_file, photos, tmp_path, monkeypatch
):
    from viaseg.core.cli import predict_stream

    folder, boxes = photos
    out = tmp_path / "out"
    real_finish = predict_stream._finish_photo
    finished = []
    lock = threading.Lock()

    def dying_finish(predictor, path, stem, *rest):
        with lock:
            if len(finished) >= 6:
                raise KeyboardInterrupt  # the run is stopped while photos are in flight
            finished.append(stem)
        return real_finish(predictor, path, stem, *rest)

    monkeypatch.setattr(predict_stream, "_finish_photo", dying_finish)
    args = ["predict", str(model_file), str(folder), "--out", str(out), "--batch-size", "2", "--workers", "2"]
    assert main(args) == 130
    monkeypatch.undo()
    assert not (out / "via_region_data.json").exists()
    done = [r["stem"] for r in journal_lines(out)]
    assert 0 < len(done) <= 6 and done == [f"p{i}" for i in range(len(done))]  # in input order
    # the kill also tore the journal's last line and left a temporary output file behind
    with open(out / "predictions.jsonl", "a") as fh:
        fh.write('{"key":"p9.png123","stem":"p9","entry":{"filen')
    (out / ".tmp-999-p9_mask.png").write_bytes(b"half")
    mtimes = {s: os.stat(out / f"{s}_mask.png").st_mtime_ns for s in done}

    predictor = Predictor.load(model_file)
    calls = predictor.forward_calls
    assert main([*args[:-4], "--batch-size", "1", "--resume"]) == 0
    assert predictor.forward_calls - calls == 10 - len(done)  # one call per photo left, none for done ones
    assert {s: os.stat(out / f"{s}_mask.png").st_mtime_ns for s in done} == mtimes
    assert not (out / ".tmp-999-p9_mask.png").exists()
    project = load_via(out / "via_region_data.json")
    assert sorted(Path(e.filename).name for e in project.images) == sorted(boxes)
    for e in project.images:
        check_region(e, boxes[Path(e.filename).name])
    assert len(journal_lines(out)) == 10  # the torn line was cut, every line parses

    # everything done: a resumed run neither loads the model nor predicts, and rebuilds the VIA file
    before = (out / "via_region_data.json").read_bytes()
    (out / "via_region_data.json").unlink()
    gone = tmp_path / "moved.keras"
    os.replace(model_file, gone)
    try:
        assert main([*args[:-4], "--resume"]) == 0
    finally:
        os.replace(gone, model_file)
    assert (out / "via_region_data.json").read_bytes() == before
    assert not (out / "via_region_data.json.bak").exists()  # our own file: no backup copies on resume


def test_resume_redoes_photos_whose_outputs_are_missing(model_file, photos, tmp_path):
    folder, _ = photos
    out = tmp_path / "out"
    args = ["predict", str(model_file), str(folder), "--out", str(out), "--batch-size", "1"]
    assert main(args) == 0
    (out / "p3_mask.png").unlink()
    (out / "p7_overlay.jpg").unlink()
    predictor = Predictor.load(model_file)
    calls = predictor.forward_calls
    assert main([*args, "--resume"]) == 0
    assert predictor.forward_calls - calls == 2
    assert (out / "p3_mask.png").exists() and (out / "p7_overlay.jpg").exists()
    assert len(load_via(out / "via_region_data.json").images) == 10  # p3, p7 once each (last line wins)
    # --no-overlay: a missing overlay does not make a photo undone
    (out / "p5_overlay.jpg").unlink()
    calls = predictor.forward_calls
    assert main([*args, "--resume", "--no-overlay"]) == 0
    assert predictor.forward_calls == calls


def test_a_via_file_that_is_not_ours_is_kept(model_file, photos, tmp_path, capsys):
    folder, _ = photos
    out = tmp_path / "out"
    out.mkdir()
    (out / "via_region_data.json").write_text("{}")  # someone's annotations, no journal of ours
    assert main(["predict", str(model_file), str(folder), "--out", str(out), "--resume"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "via_region_data.json").read_text() == "{}"


def test_build_via_keeps_the_last_line_of_a_photo_and_skips_torn_lines(tmp_path):
    from viaseg.core.cli.predict_stream import build_via, repair_journal

    def line(key, n_regions):
        region = {
            "shape_attributes": {"name": "rect", "x": 1, "y": 2, "width": 3, "height": 4},
            "region_attributes": {"class": "dent"},
        }
        entry = {"filename": key[:-2], "size": 10, "regions": [region] * n_regions, "file_attributes": {}}
        return json.dumps({"key": key, "stem": key[:-6], "entry": entry}) + "\n"

    j = tmp_path / "predictions.jsonl"
    assert build_via(tmp_path) == 0 and not (tmp_path / "via_region_data.json").exists()
    j.write_text(line("a.jpg10", 1) + "not json\n" + line("b.jpg10", 0) + line("a.jpg10", 2) + '{"key": "c.j')
    assert build_via(tmp_path) == 2
    project = load_via(tmp_path / "via_region_data.json")
    assert [(e.filename, len(e.regions)) for e in project.images] == [("b.jpg", 0), ("a.jpg", 2)]
    repair_journal(j)
    assert j.read_text().endswith("}\n")
    assert len(j.read_text().splitlines()) == 4


def test_progress_bar_shows_rate_and_time_left(monkeypatch):
    from viaseg.core.cli import predict_cmd

    now = [100.0]
    monkeypatch.setattr(predict_cmd.time, "monotonic", lambda: now[0])
    buf = io.StringIO()
    bar = predict_cmd.ProgressBar(1000, "predicting", stream=buf, enabled=True, unit="photos", initial=400)
    now[0] = 110.0
    bar.update(450)  # 50 photos in 10 s: 5/s, 550 left -> 110 s
    assert "450/1000" in buf.getvalue() and "5.0 photos/s, 1:50 left" in buf.getvalue()
    assert predict_cmd.format_duration(3725) == "1:02:05"
    bar.close()


def test_gather_inputs_reads_lists_without_touching_each_photo(tmp_path):
    from viaseg.core.cli.predict_stream import gather_inputs, stems_for

    (tmp_path / "d").mkdir()
    for n in ("img10.jpg", "img2.jpg", ".hidden.jpg", "notes.md"):
        (tmp_path / "d" / n).write_bytes(b"x")
    (tmp_path / "l.txt").write_text("d/img2.jpg\nmissing/x.jpg\nd\n\n# c\n")
    warnings = []
    got = gather_inputs(
        [str(tmp_path / "l.txt"), str(tmp_path / "nope.png"), f"@{tmp_path / 'no.txt'}"], warnings.append
    )
    base = str(tmp_path)
    assert got == [
        os.path.join(base, "d/img2.jpg"),
        os.path.join(base, "missing/x.jpg"),
        os.path.join(base, "d", "img10.jpg"),
    ]  # folder in natural order, repeat dropped
    assert len(warnings) == 2 and "nope.png" in warnings[0] and "no.txt" in warnings[1]
    assert stems_for(["a/x.jpg", "b/X.png", "c/y.jpg"]) == ["x", "X-2", "y"]


@pytest.mark.parametrize("extra", [[], ["--tile-downscale", "1.5"]], ids=["batched", "tiled"])
def test_photos_in_flight_are_bounded_and_the_journal_grows_during_the_run(
    model_file, tmp_path, monkeypatch, extra
):
    """Memory cannot be measured cheaply, but its cause can: decoding never runs ahead of the network by more
    than a fixed window, whatever the number of photos, and finished photos reach the journal on disk while the
    run goes on (nothing is kept for the end)."""
    from viaseg.core.cli import predict_stream

    folder = tmp_path / "many"
    folder.mkdir()
    img = np.zeros((40, 48, 3), np.uint8)
    img[10:30, 10:30] = 255
    for i in range(60):
        cv2.imwrite(str(folder / f"m{i:02d}.png"), img)
    out = tmp_path / "out"
    predictor = Predictor.load(model_file)
    lock = threading.Lock()
    state = {"loaded": 0, "finished": 0, "max_in_flight": 0, "on_disk_at_40": -1}
    real_load, real_finish = predictor._load, predict_stream._finish_photo

    def counting_load(*a, **k):
        with lock:
            state["loaded"] += 1
            state["max_in_flight"] = max(state["max_in_flight"], state["loaded"] - state["finished"])
        return real_load(*a, **k)

    def counting_finish(*a, **k):
        line = real_finish(*a, **k)
        with lock:
            state["finished"] += 1
            if state["finished"] == 40:
                state["on_disk_at_40"] = len((out / "predictions.jsonl").read_bytes().splitlines())
        return line

    monkeypatch.setattr(predictor, "_load", counting_load)
    monkeypatch.setattr(predict_stream, "_finish_photo", counting_finish)
    assert (
        main(
            [
                "predict",
                str(model_file),
                str(folder),
                "--out",
                str(out),
                "--batch-size",
                "2",
                "--workers",
                "2",
                "--no-overlay",
                *extra,
            ]
        )
        == 0
    )
    assert state["loaded"] == state["finished"] == 60
    # window 2 * batch + workers decoding, 2 * workers + batch finishing, one batch at the network
    assert 2 <= state["max_in_flight"] <= (2 * 2 + 2) + (2 * 2 + 2) + 2
    assert state["on_disk_at_40"] >= 40 - 16  # flushed batch by batch, not at the end
    assert len(journal_lines(out)) == 60 and len(load_via(out / "via_region_data.json").images) == 60


def test_predicting_into_the_photos_folder_is_refused(model_file, photos, tmp_path, capsys):
    """--out the photos' folder wrote masks and overlays among them; the next run predicted its own outputs
    (image66_mask_mask.png) and listed them as photos in its VIA file."""
    folder, _ = photos
    before = sorted(p.name for p in folder.iterdir())
    for inputs in ([str(folder)], [str(folder / "p3.png")]):
        assert main(["predict", str(model_file), *inputs, "--out", str(folder)]) == 2
        err = capsys.readouterr().err
        assert "holds the photos to predict" in err and "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == before
    assert main(["predict", str(model_file), str(folder / "p3.png"), "--out", str(tmp_path / "out")]) == 0


def test_a_folder_says_what_it_leaves_out(tmp_path):
    """Subfolders, HEIC photos and links to missing photos were left out without a word; .jfif/.jpe photos
    (JPEG) were ignored too."""
    from viaseg.core.cli.predict_stream import gather_inputs

    d = tmp_path / "d"
    (d / "day2").mkdir(parents=True)
    for n in ("a.jpg", "b.jfif", "c.JPE", "phone.heic", "notes.md"):
        (d / n).write_bytes(b"x")
    (d / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    warnings: list[str] = []
    got = gather_inputs([str(d)], warnings.append)
    assert [os.path.basename(p) for p in got] == ["a.jpg", "b.jfif", "c.JPE"]
    assert len(warnings) == 1, warnings
    w = warnings[0]
    assert w.startswith(f"{d}: not predicted: 1 subfolder(s)") and "1 photo(s) in a format" in w
    assert "1 link(s) to missing files" in w
    warnings.clear()
    gather_inputs(
        [str(d / "day2"), str(tmp_path)], warnings.append
    )  # nothing left out of day2: no note for it
    assert not any(str(d / "day2") + ":" in x and "not predicted" in x for x in warnings)
