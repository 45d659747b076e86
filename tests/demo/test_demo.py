from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.demo.loop import gui_available

runner = CliRunner()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames of 96x128: left half red, right half green (BGR written)."""
    path = tmp_path_factory.mktemp("vid") / "in.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (128, 96))
    assert writer.isOpened()
    for _ in range(12):
        frame = np.zeros((96, 128, 3), np.uint8)
        frame[:, :64] = (0, 0, 255)  # red
        frame[:, 64:] = (0, 255, 0)  # green
        writer.write(frame)
    writer.release()
    return path


def test_headless_demo_records_overlay_with_class_colours(identity_onnx: Path, video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    res = runner.invoke(
        app,
        [
            "demo",
            str(identity_onnx),
            "--source",
            str(video),
            "--headless",
            "--max-frames",
            "8",
            "--record",
            str(out),
            "--alpha",
            "1.0",
            "--input-size",
            "64x96",
        ],
    )
    assert res.exit_code == 0, res.output
    stats = json.loads(out.with_suffix(".json").read_text())
    assert stats["frames"] == 8 and len(stats["per_frame"]) == 8 and stats["dropped"] == 0
    assert stats["ended_because"] == "max-frames"
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened()
    n = 0
    last = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        last = frame
    assert n == 8 and last is not None
    # identity model: red pixels -> class 0 (VOC colour black), green -> class 1 (RGB 128,0,0 = BGR 0,0,128)
    left = last[70:90, 10:50].reshape(-1, 3).mean(0)
    right = last[70:90, 80:120].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(left, [0, 0, 0], atol=12)
    np.testing.assert_allclose(right, [0, 0, 128], atol=12)


def test_demo_bad_source_and_window_without_gui(identity_onnx: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", str(identity_onnx), "--source", str(tmp_path / "nope.mp4"), "--headless"])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    res = runner.invoke(app, ["demo", str(identity_onnx), "--source", str(bad), "--headless"])
    assert res.exit_code == 2 and "cannot be opened" in res.stderr
    if not gui_available():
        res = runner.invoke(app, ["demo", str(identity_onnx), "--source", str(bad)])
        assert res.exit_code == 2
        assert "--headless" in res.stderr and "opencv-python" in res.stderr


def test_stream_end_finalises_recording(identity_onnx: Path, video: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.mp4"
    res = runner.invoke(
        app,
        [
            "demo",
            str(identity_onnx),
            "--source",
            str(video),
            "--headless",
            "--record",
            str(out),
            "--input-size",
            "64x96",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "end of stream" in res.output
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert not list(tmp_path.glob(".*partial*"))


def test_live_mode_drops_frames_for_a_slow_model(video: Path) -> None:
    """The newest frame wins: a consumer slower than the source sees fewer frames than were captured."""
    import time

    from fcnedge.demo.capture import FrameSource

    src = FrameSource(str(video), live=True).start()
    got = 0
    while src.get(timeout=3) is not None:
        got += 1
        time.sleep(0.25)  # 4 FPS consumer, 10 FPS source
    src.close()
    assert src.captured == 12 and got < 12 and src.dropped == src.captured - got
