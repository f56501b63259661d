"""``viaseg train --strategy multiworker``: two worker processes on this machine (localhost ports, TF_CONFIG),
a tiny model, 2 epochs. Both finish, the loss goes down, exactly one run folder (the chief's), and its model
loads and predicts."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("localhost", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _dataset(root: Path, n_train: int = 8, n_val: int = 2, size: int = 32) -> Path:
    """train/ and val/ splits of gray noise photos, each with one bright annotated rectangle."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        d = root / split
        d.mkdir(parents=True)
        via = {}
        for i in range(n):
            img = rng.integers(40, 90, (size, size, 3), dtype=np.uint8)
            x, y = (int(v) for v in rng.integers(2, size // 2, 2))
            w, h = (int(v) for v in rng.integers(8, size // 2, 2))
            img[y : y + h, x : x + w] = (230, 200, 60)
            name = f"{split}{i}.png"
            cv2.imwrite(str(d / name), img[..., ::-1])
            shape = {
                "name": "polygon",
                "all_points_x": [x, x + w - 1, x + w - 1, x],
                "all_points_y": [y, y, y + h - 1, y + h - 1],
            }
            via[name] = {
                "filename": name,
                "size": -1,
                "file_attributes": {},
                "regions": [{"shape_attributes": shape, "region_attributes": {}}],
            }
        (d / "via_region_data.json").write_text(json.dumps(via))
    return root


def _losses(out: str) -> list[float]:
    return [float(m) for m in re.findall(r"^epoch \d+/\d+ .*?\bloss ([0-9.]+)", out, re.M)]


def test_two_workers_on_localhost_train_one_run_folder(tmp_path):
    data = _dataset(tmp_path / "ds")
    runs = tmp_path / "runs"
    runs.mkdir()
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    scratch = tmp_path / "tmp"  # where a non-chief worker's temporary folder goes (and must be gone after)
    scratch.mkdir()
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(tf_config),
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            TMPDIR=str(scratch),
            PYTHONUNBUFFERED="1",
        )
        # the same command on every worker, as on two machines (docs/gpu.md)
        cmd = [
            sys.executable,
            "-m",
            "viaseg.core.cli",
            "train",
            str(data),
            "--out",
            str(runs / "mw"),
            "--strategy",
            "multiworker",
            "--epochs",
            "2",
            "--size",
            "32",
            "--encoder",
            "xception",
            "--base-width",
            "8",
            "--batch-size",
            "4",
            "--seed",
            "0",
            "--no-augment",
            "--lr-schedule",
            "constant",
            "--threads",
            "1",
            "--quiet",
        ]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
            )
        )
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            outs.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, (rc, out, err) in enumerate(outs):
        assert rc == 0, f"worker {i} exit {rc}\n{out}\n{err[-4000:]}"
        assert "x 2 workers" in out, out  # the device line names the cluster
        losses = _losses(out)
        assert len(losses) == 2 and losses[1] < losses[0], out
    # the workers trained one model: the same (globally averaged) losses
    assert _losses(outs[0][1]) == pytest.approx(_losses(outs[1][1]), rel=1e-4)
    assert "writes no run folder" in outs[1][1] and "writes no run folder" not in outs[0][1]
    # exactly one run folder, the chief's; the other worker's temporary folder is gone
    assert [p.name for p in runs.iterdir()] == ["mw"]
    assert not list(scratch.glob("viaseg-worker-*"))
    assert not list(tmp_path.glob("**/checkpoint_best.keras"))
    summary = json.loads((runs / "mw" / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["epochs_run"] == 2 and summary["model_path"] == "model.keras"
    assert summary["device"].endswith("x 2 workers")

    from viaseg.core.ml.predict import Predictor

    pred = Predictor.load(runs / "mw" / "model.keras", cache=False)
    probs = pred.predict(data / "val" / "val0.png")
    assert probs.shape == (32, 32) and probs.dtype == np.float32 and np.isfinite(probs).all()
    assert 0.0 <= float(probs.min()) <= float(probs.max()) <= 1.0


def test_multiworker_without_tf_config_is_a_message(tmp_path, capsys):
    from viaseg.core.cli import main

    data = _dataset(tmp_path / "ds", n_train=2, n_val=1)
    env_before = os.environ.pop("TF_CONFIG", None)
    try:
        rc = main(
            [
                "train",
                str(data),
                "--out",
                str(tmp_path / "run"),
                "--strategy",
                "multiworker",
                "--epochs",
                "1",
                "--size",
                "32",
                "--encoder",
                "xception",
                "--base-width",
                "8",
                "--quiet",
            ]
        )
    finally:
        if env_before is not None:
            os.environ["TF_CONFIG"] = env_before
    assert rc == 1
    assert "needs the TF_CONFIG environment variable" in capsys.readouterr().err
