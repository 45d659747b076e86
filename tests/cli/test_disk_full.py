"""A full disk mid-run: one line, exit 2, and no partial file at a final name (a real tmpfs, filled up)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import write_video
from typer.testing import CliRunner

from fcnedge.cli import app

runner = CliRunner()


@pytest.fixture(params=[0])
def full_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A 256 KiB tmpfs with no space left (needs root and mount rights; skipped otherwise)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, check=False
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()[:100]}")
    try:
        (mnt / "out").mkdir()
        st = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - request.param))  # param: bytes left
        yield mnt / "out"
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _check(res, folder: Path) -> None:  # type: ignore[no-untyped-def]
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], res.stderr
    assert list(folder.iterdir()) == []  # no final file, no temporary


def test_predict_on_a_full_disk(full_disk: Path, identity_onnx: Path, tmp_path: Path) -> None:
    img = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)  # noisy ids: a large PNG
    cv2.imwrite(str(tmp_path / "n.png"), img)
    _check(
        runner.invoke(app, ["predict", str(identity_onnx), str(tmp_path / "n.png"), "-o", str(full_disk)]), full_disk
    )


def test_bench_report_on_a_full_disk(full_disk: Path, identity_onnx: Path) -> None:
    res = runner.invoke(app, ["bench", str(identity_onnx), "--runs", "2", "--no-roofline", "--out", str(full_disk)])
    _check(res, full_disk)


@pytest.mark.parametrize("full_disk", [0, 16384], indirect=True, ids=["no-space", "fills-mid-video"])
def test_demo_recording_on_a_full_disk(full_disk: Path, identity_onnx: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", frames=30, size=(192, 256))
    args = ["demo", str(identity_onnx), "--source", str(video), "--headless", "--record", str(full_disk / "r.mp4")]
    res = runner.invoke(app, [*args, "--stats", str(tmp_path / "s.json"), "--input-size", "192x256"])
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "write" in res.stderr and "video" in res.stderr
    assert list(full_disk.iterdir()) == []  # never an unplayable .mp4 at the final name


def test_quantize_on_a_full_disk(full_disk: Path, identity_onnx: Path, tmp_path: Path) -> None:
    """ONNX Runtime's quantiser fails inside its own pre-processing: one line naming the folder, no fallback
    warning, no traceback from its logger, nothing left."""
    imgs = tmp_path / "calib"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    calib = ["--calib-data", str(imgs), "--calib-format", "images", "--calib-count", "1", "--quantize-upsampling"]
    res = runner.invoke(app, ["quantize", str(identity_onnx), "-o", str(full_disk / "q.onnx"), *calib])
    _check(res, full_disk)
    assert f"in {full_disk} (" in res.stderr


def test_a_training_checkpoint_on_a_full_disk(full_disk: Path, tmp_path: Path) -> None:
    """torch's own writer reports a full disk as a RuntimeError without a reason; the checkpoint is written by
    fcnedge, so it is one line naming the file."""
    pytest.importorskip("torch")
    from helpers import write_folder_dataset

    data = write_folder_dataset(tmp_path / "d", classes=3, shapes=[(64, 96)], split="train")
    write_folder_dataset(tmp_path / "d", classes=3, shapes=[(64, 96)], split="val")
    args = ["--arch", "fcn_tiny", "--epochs", "1", "--num-classes", "3", "--no-pretrained-backbone"]
    res = runner.invoke(app, ["train", "--data", str(data), "--format", "folder", *args, "-o", str(full_disk / "t.pt")])
    _check(res, full_disk)
