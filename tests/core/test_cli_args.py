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
