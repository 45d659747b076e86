"""Issue 27: accuracy at a frame budget (the picker), video in and masks out (resumable)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.errors import ConfigError
from fcnedge.runtime.budget import HEADROOM, Candidate, budget_ms, pick, timed_candidates

runner = CliRunner()


def _cands() -> list[Candidate]:
    return [
        Candidate("m", 0.75, "cpu", 2, 0.70, 10.0),
        Candidate("m", 1.0, "cpu", 2, 0.73, 18.0),
        Candidate("m", 1.25, "cpu", 2, 0.755, 26.0),
        Candidate("m", 1.25, "openvino", 2, 0.755, 22.0),
        Candidate("m", 1.5, "cpu", 2, 0.765, 40.0),
    ]


def test_the_picker_takes_the_most_accurate_that_fits() -> None:
    # several fit: the most accurate, and of equal accuracy the faster engine
    got, line = pick(_cands(), 1e3 / 30, what="--fps 30")
    assert (got.scale, got.engine) == (1.25, "openvino")
    assert "picked m at scale 1.25 on openvino" in line and "scale 1.5" in line and "over the" in line
    # exactly one fits
    got, _ = pick(_cands(), 11.0 / HEADROOM, what="--budget-ms")
    assert got.scale == 0.75
    # everything fits: the most accurate, said so
    got, line = pick(_cands(), 100.0, what="--fps 10")
    assert got.scale == 1.5 and "the most accurate configuration measured" in line
    # nothing fits: one line with the fastest measured time and the fps that would fit
    with pytest.raises(ConfigError, match=r"--fps 1000 \(1.0 ms a frame\) fits nothing.*fastest is m at scale 0.75 "
                       r"on cpu \(2 threads\): 10.0 ms.*at most --fps 85"):  # fmt: skip
        pick(_cands(), 1.0, what="--fps 1000")


def test_budget_values_are_checked() -> None:
    assert budget_ms(25, None) == pytest.approx(40.0) and budget_ms(None, 50) == 50 and budget_ms(None, None) is None
    for fps, ms, msg in ((0, None, "--fps 0 is invalid"), (None, -3, "--budget-ms -3 is invalid"),
                         (30, 33, "give one of them")):  # fmt: skip
        with pytest.raises(ConfigError, match=msg):
            budget_ms(fps, ms)


def test_timings_are_measured_once_per_machine_and_kept(tmp_path: Path) -> None:
    calls: list[Candidate] = []
    said: list[str] = []

    def timer(c: Candidate, hw: tuple[int, int]) -> float:
        calls.append(c)
        return 5.0 * c.scale

    bare = [Candidate("m", s, "cpu", 2, 0.7) for s in (1.0, 1.5)]
    key = {"models": ["abc"], "cpu": "x", "threads": 2}
    first = timed_candidates(bare, (352, 480), cache=tmp_path, key=key, timer=timer, say=said.append)
    assert [c.ms for c in first] == [5.0, 7.5] and len(calls) == 2 and "timing 2 configuration(s)" in said[0]
    again = timed_candidates(bare, (352, 480), cache=tmp_path, key=key, timer=timer, say=said.append)
    assert [c.ms for c in again] == [5.0, 7.5] and len(calls) == 2 and len(said) == 1  # from the cache, silently
    timed_candidates(bare, (480, 640), cache=tmp_path, key=key, timer=timer, say=said.append)
    assert len(calls) == 4  # another frame size is another measurement


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x480 road video: CamVid val frames when the folder is there, else seeded synthetic frames."""
    from fcnedge.data.synthetic import synthetic_images

    root = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "camvid" / "val"
    files = sorted(root.glob("*.png"))[:24] if root.is_dir() else []
    frames = [cv2.imread(str(f)) for f in files] or [im[:, :, ::-1] for im in synthetic_images([(360, 480)] * 24)]
    path = tmp_path_factory.mktemp("road") / "road.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for f in frames:
        writer.write(cv2.resize(f, (640, 480)))
    writer.release()
    return path


def test_demo_fps_picks_a_bundled_configuration_and_records_it(
    road: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real picker: each bundled scale timed here through the seam (once), the pick said in one line and in
    the stats JSON; --fps 1000 refused with the fastest time; without --fps the accurate default stays."""
    monkeypatch.setenv("FCNEDGE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out.mp4"
    cores = str(len(os.sched_getaffinity(0)))
    res = runner.invoke(app, ["demo", "--source", str(road), "--headless", "--record", str(out), "--fps", "5",
                              "--max-frames", "6", "--threads", cores])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "timing" in res.output and "--fps 5: picked fcn_lite0_camvid at scale" in res.output
    stats = json.loads(out.with_suffix(".json").read_text())
    from fcnedge.catalog import get_weights

    table = dict(get_weights().accuracy_at)
    assert stats["model"] == "fcn_lite0_camvid" and stats["engine"] in ("cpu", "openvino")
    assert stats["pick"]["val_miou"] == table[stats["scale"]] and stats["tile"][0] % 32 == 0
    assert stats["pick"]["measured_ms"] <= HEADROOM * 200.0
    res = runner.invoke(app, ["demo", "--source", str(road), "--headless", "--fps", "1000", "--threads", cores])
    assert res.exit_code == 2 and "fits nothing on this machine: the fastest is" in res.stderr
    assert "timing" not in res.output  # measured once, above
    listed = runner.invoke(app, ["models"])  # the table, with this machine's times now
    assert listed.exit_code == 0
    assert "val mIoU by inference scale (ms per 352x480 frame on this machine)" in listed.output
    assert f"{stats['scale']:g}: mIoU {stats['pick']['val_miou']:.4f} (cpu " in listed.output
    res = runner.invoke(app, ["demo", "x.onnx", "--source", str(road), "--headless", "--fps", "30"])
    assert res.exit_code == 2 and "drop MODEL" in res.stderr


def test_video_predict_writes_one_mask_per_frame_and_resumes(identity_onnx: Path, tmp_path: Path) -> None:
    from helpers import write_video

    from fcnedge.demo.video import segment_video
    from fcnedge.runtime.open import open_predictor

    video = write_video(tmp_path / "drive.mp4", frames=12)
    out = tmp_path / "out"
    res = runner.invoke(app, ["predict", str(identity_onnx), str(video), "-o", str(out)])
    assert res.exit_code == 0, res.output
    masks = sorted((out / "drive").glob("*.png"))
    assert [m.name for m in masks] == [f"{i:06d}.png" for i in range(12)]
    ids = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert ids.shape == (96, 128) and ids.dtype == np.uint8
    rows = list(csv.DictReader((out / "drive" / "frames.csv").open()))
    assert [int(r["frame"]) for r in rows] == list(range(12)) and float(rows[-1]["timestamp_ms"]) > 0
    again = runner.invoke(app, ["predict", str(identity_onnx), str(video), "-o", str(out)])
    assert again.exit_code == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1

    # interrupted after 5 frames: the 5 masks stay, --resume does the other 7 and leaves the 5 untouched
    fresh = tmp_path / "fresh"
    pred = open_predictor(identity_onnx)
    calls = {"n": 0}
    real = pred.predict

    def flaky(img: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(img)

    pred.predict = flaky  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        segment_video(pred, video, fresh)
    done = sorted((fresh / "drive").glob("*.png"))
    assert len(done) == 5 and len(list(csv.DictReader((fresh / "drive" / "frames.csv").open()))) == 5
    stamps = {p.name: os.stat(p).st_mtime_ns for p in done}
    res = runner.invoke(app, ["predict", str(identity_onnx), str(video), "-o", str(fresh), "--resume"])
    assert res.exit_code == 0, res.output
    assert "wrote 7 frame masks" in res.output and "5 done before, skipped" in res.output
    assert len(list((fresh / "drive").glob("*.png"))) == 12
    assert all(os.stat(fresh / "drive" / n).st_mtime_ns == t for n, t in stamps.items())
    assert not [p for p in (fresh / "drive").iterdir() if p.name.startswith(".")]  # no temp files left


def test_an_unreadable_video_is_one_line_and_writes_nothing(identity_onnx: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    out = tmp_path / "out"
    res = runner.invoke(app, ["predict", str(identity_onnx), str(bad), "-o", str(out)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "broken.mp4" in res.stderr
    assert not (out / "broken").exists()


def test_a_truncated_video_keeps_its_masks_and_says_so(identity_onnx: Path, tmp_path: Path) -> None:
    from helpers import write_video

    video = write_video(tmp_path / "cut.mp4", frames=30)
    data = video.read_bytes()
    # mp4v from OpenCV writes the moov box last: cut the middle of the media data, keep the index
    head = data.find(b"mdat")
    moov = data.rfind(b"moov") - 4
    mid = head + (moov - head) // 2
    cut = tmp_path / "cut2.mp4"
    cut.write_bytes(data[:mid] + bytes(len(data[mid:moov])) + data[moov:])  # zeroed second half
    out = tmp_path / "out"
    res = runner.invoke(app, ["predict", str(identity_onnx), str(cut), "-o", str(out)])
    masks = list((out / "cut2").glob("*.png")) if (out / "cut2").exists() else []
    if res.exit_code == 0:  # the decoder concealed the damage: every declared frame has a mask
        assert len(masks) == 30
    else:
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
        assert ("ended after" in res.stderr and "--resume" in res.stderr) or "no readable frame" in res.stderr


def test_a_camera_rate_is_read_only_from_a_camera(tmp_path: Path) -> None:
    """--source 0 defaults to --fps of the camera's rate; a file, or a camera that is not there, has none (and
    the demo then keeps its default, or says the camera cannot be opened when it reads it)."""
    from fcnedge.cli.demo_cmd import camera_rate

    assert camera_rate(str(tmp_path / "road.mp4")) is None
    assert camera_rate("97") is None  # no such camera here: no rate, no exception
