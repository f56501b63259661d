"""Numeric options out of range are refused when the command line is read, naming the option and the value: before,
``--batch-size 0`` ended in a division by zero, ``--size 0`` in an OpenCV assertion, ``--threads -2`` aborted the
process inside TensorFlow, and ``--time-limit -5`` trained one epoch as if nothing were wrong."""

from __future__ import annotations

import pytest
from viaseg.core.cli import build_parser, main

BAD = [
    (["train", "DS", "--out", "R"], "--time-limit", "-5", "must be above 0"),
    (["train", "DS", "--out", "R"], "--time-limit", "nan", "must be above 0"),
    (["train", "DS", "--out", "R"], "--batch-size", "0", "must be 1 or more"),
    (["train", "DS", "--out", "R"], "--size", "0", "must be 1 or more"),
    (["train", "DS", "--out", "R"], "--threads", "-2", "must be 1 or more"),
    (["train", "DS", "--out", "R"], "--epochs", "2.5", "is not a whole number"),
    (["train", "DS", "--out", "R"], "--max-steps", "-1", "must be 0 or more"),
    (["train", "DS", "--out", "R"], "--seed", "-1", "must be 0 or more"),
    (["train", "DS", "--out", "R"], "--threshold", "1", "between 0 and 1"),
    (["train", "DS", "--out", "R"], "--ema", "1", "from 0 to below 1"),
    (["train", "DS", "--out", "R"], "--blur", "-1", "must be 0 or more"),
    (["train", "DS", "--out", "R"], "--ensemble", "0", "must be 1 or more"),
    (["train", "DS", "--out", "R"], "--calibrate", "1", "from 0 (off) to below 1"),
    (["crossval", "DS", "--out", "CV"], "--time-limit", "0", "must be above 0"),
    (["crossval", "DS", "--out", "CV"], "--worst", "-1", "must be 0 or more"),
    (["evaluate", "M.keras", "DS"], "--batch-size", "0", "must be 1 or more"),
    (["clicknet", "DS", "--out", "C.npz"], "--steps", "0", "must be 1 or more"),
    (["predict", "M.keras", "PHOTOS", "--out", "P"], "--tile-downscale", "0", "must be above 0"),
    (["clicknet", "DS", "--out", "C.npz"], "--lr", "-1e-4", "must be above 0"),
    (["predict", "M.keras", "PHOTOS", "--out", "P"], "--attribute", " ", "cannot be empty"),
]


@pytest.mark.parametrize(
    ("argv", "option", "value", "rule"), BAD, ids=[f"{a[0]} {o} {v}" for a, o, v, _ in BAD]
)
def test_an_out_of_range_number_is_refused_naming_the_option_and_value(capsys, argv, option, value, rule):
    with pytest.raises(SystemExit) as exc:
        main([*argv, f"{option}={value}"])  # the = form: argparse takes "-1e-4" alone for an option
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and value in err and rule in err


def test_values_in_range_parse_to_numbers():
    args = build_parser().parse_args(
        [
            "train",
            "DS",
            "--out",
            "R",
            "--time-limit",
            "600",
            "--max-steps",
            "0",
            "--batch-size",
            "8",
            "--seed",
            "0",
        ]
        + ["--threshold", "0.4", "--ema", "0", "--blur", "0", "--calibrate", "0.2", "--crop", "0"]
    )
    assert (args.time_limit, args.max_steps, args.batch_size, args.seed) == (600.0, 0, 8, 0)
    assert (args.threshold, args.ema, args.blur, args.calibrate, args.crop) == (0.4, 0.0, 0.0, 0.2, 0)
    assert isinstance(args.max_steps, int) and isinstance(args.time_limit, float)


def test_a_refused_option_never_reaches_training(tmp_path):
    """The check happens before the command runs: no run folder is made."""
    with pytest.raises(SystemExit):
        main(["train", str(tmp_path), "--out", str(tmp_path / "run"), "--batch-size", "0"])
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_earlier_runs_folder_a_file_and_a_size_it_cannot_use(tmp_path, capsys):
    """--out an earlier run replaced its model silently (and a run that then failed left a config.json naming
    another dataset beside the old model); --out a file and --size 50 ended in tracebacks. All are refused
    before any data is read, and the earlier run is left as it was."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"the earlier model")
    (run / "config.json").write_text('{"dataset": "mine"}')
    (tmp_path / "afile").write_text("x")
    cases = [
        (["--out", str(run)], "holds an earlier run (model.keras, config.json)"),
        (["--out", str(tmp_path / "afile")], "exists and is a file"),
        (["--out", str(tmp_path / "new"), "--size", "50"], "must be a multiple of 16"),
        (["--out", str(tmp_path / "new"), "--cache-dir", str(tmp_path / "afile")], "give a folder"),
    ]
    for extra, words in cases:
        assert main(["train", str(tmp_path / "no-such-dataset"), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
    assert (run / "model.keras").read_bytes() == b"the earlier model"
    assert (run / "config.json").read_text() == '{"dataset": "mine"}'
    assert not (tmp_path / "new").exists()
    # --overwrite goes on, here to a dataset that does not exist: the run fails before it writes anything
    assert main(["train", str(tmp_path / "no-such-dataset"), "--out", str(run), "--overwrite"]) == 1
    assert "no-such-dataset" in capsys.readouterr().err
    assert (run / "config.json").read_text() == '{"dataset": "mine"}'
    # a multi-worker run's other worker does not write the run folder, so the chief's files are no matter
    from viaseg.core.cli.outputs import other_worker

    args = build_parser().parse_args(["train", "DS", "--out", str(run), "--strategy", "multiworker"])
    tf_config = '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": %d}}'
    import os

    for index, other in ((0, False), (1, True)):
        os.environ["TF_CONFIG"] = tf_config % index
        try:
            assert other_worker(args) is other
        finally:
            del os.environ["TF_CONFIG"]
