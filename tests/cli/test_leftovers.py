"""Temporary files: recognisable, removed on SIGTERM, and swept on the next run when a run was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.fsutil import TMP_MARK

ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_leftovers_of_killed_runs_are_swept(tmp_path: Path, identity_onnx: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    pid = dead_pid()
    stale_file = out / f".a.png.{TMP_MARK}{pid}-xyz.tmp"
    stale_dir = out / f".{TMP_MARK}{pid}-export-abc"
    live = out / f".b.png.{TMP_MARK}{os.getpid()}-xyz.tmp"  # a running process's: kept
    foreign = out / ".user-file.tmp"  # not ours: kept
    stale_file.write_bytes(b"x" * 100)
    stale_dir.mkdir()
    (stale_dir / "exported.onnx").write_bytes(b"x")
    live.write_bytes(b"x")
    foreign.write_bytes(b"x")
    cv2.imwrite(str(tmp_path / "i.png"), np.zeros((40, 60, 3), np.uint8))
    res = CliRunner().invoke(app, ["predict", str(identity_onnx), str(tmp_path / "i.png"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and foreign.exists() and (out / "i.png").exists()


def test_sigterm_during_export_leaves_nothing(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FCNEDGE_CACHE": str(tmp_path / "c")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fcnedge",
            "export",
            "fcn_resnet18",
            "--num-classes",
            "3",
            "-o",
            str(out / "r.onnx"),
            "--threads",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(TMP_MARK in p.name for p in out.iterdir()):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    time.sleep(0.5)  # well inside the export: tracing, simplifying or timing
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert list(out.iterdir()) == []
