"""--engine ray on a real local Ray (2 CPUs, like this machine): the same masks as the local engine, a manifest
with one row per input, a bad image failing its row only, and --resume doing no work twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.data.synthetic import synthetic_images

ray = pytest.importorskip("ray")
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    """Mixed sizes (smaller than a tile, several tiles), a grayscale image and a corrupt one in the middle."""
    d = tmp_path / "in"
    d.mkdir()
    for i, img in enumerate(synthetic_images([(70, 90), (200, 300), (150, 520)], seed=12)):
        cv2.imwrite(str(d / f"a{i}.png"), img[:, :, ::-1])
    (d / "b_corrupt.jpg").write_text("not an image")
    cv2.imwrite(str(d / "c_gray.png"), np.full((60, 80), 90, np.uint8))
    return d


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_ray_matches_the_local_engine(local_ray: None, inputs: Path, identity_onnx: Path, tmp_path: Path) -> None:
    args = ["predict", str(identity_onnx), str(inputs), "--tile", "64x96"]
    local = runner.invoke(app, [*args, "-o", str(tmp_path / "local")])
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "ray"), "--engine", "ray", "--batch-size", "2"])
    assert local.exit_code == 2 and res.exit_code == 2, res.output  # the corrupt image fails its row only
    assert "ray: 4 done, 1 failed, 0 skipped" in res.stdout
    rows = _manifest(tmp_path / "ray")
    assert [Path(r["path"]).name for r in rows] == sorted(p.name for p in inputs.iterdir())
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "failed", "ok"]
    assert "cannot be decoded" in rows[3]["error"] and all(r["provider"] == "CPUExecutionProvider" for r in rows)
    for r in rows:
        if r["status"] == "ok":
            got = Path(r["output"]).read_bytes()
            assert got == (tmp_path / "local" / Path(r["output"]).name).read_bytes()  # byte-identical masks


def test_resume_does_no_work_twice(local_ray: None, inputs: Path, identity_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["predict", str(identity_onnx), str(inputs), "-o", str(out), "--engine", "ray"]
    assert runner.invoke(app, args).exit_code == 2
    (out / "a1.png").unlink()  # lost
    (out / "a2.png").write_bytes(b"tampered")  # no longer what the manifest recorded
    res = runner.invoke(app, [*args, "--resume", "--force"])
    assert res.exit_code == 2  # the corrupt image is retried and fails again
    assert "ray: 2 done, 1 failed, 2 skipped" in res.stdout
    rows = _manifest(out)
    assert len(rows) == 5 and len({r["path"] for r in rows}) == 5  # one row per input, no duplicates
    assert (out / "a1.png").exists() and (out / "a2.png").read_bytes() != b"tampered"


def test_without_ray_it_says_what_to_install(identity_onnx: Path, inputs: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ray':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from typer.testing import CliRunner\nimport fcnedge.cli\n"
        f"r = CliRunner().invoke(fcnedge.cli.app, ['predict', {str(identity_onnx)!r}, {str(inputs)!r}, '-o',"
        f" {str(tmp_path / 'o')!r}, '--engine', 'ray'])\n"
        "print(r.exit_code, r.stderr.strip())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "2 error: --engine ray needs Ray Data: pip install 'fcnedge[ray]'"


def test_actor_plan_leaves_a_cpu_for_ray_data() -> None:
    from fcnedge.runtime.batch import OutputSpec
    from fcnedge.runtime.ray_engine import RayJob, plan_actors

    job = RayJob("m.onnx", OutputSpec(Path("o")), threads=1)
    assert plan_actors(job, 2.0) == 1 and plan_actors(job, 16.0) == 15
    assert plan_actors(RayJob("m.onnx", OutputSpec(Path("o")), threads=4), 16.0) == 3
    assert plan_actors(RayJob("m.onnx", OutputSpec(Path("o")), actors=2), 2.0) == 2


def test_a_killed_worker_leaves_nothing_half_done(local_ray: None, tmp_path: Path) -> None:
    """SIGKILL the Ray worker mid-run: Ray retries its task, and the job still ends with every mask written once,
    whole, one manifest row per input, no temporary file left, the same bytes as the local engine."""
    import signal
    import threading
    import time

    d = tmp_path / "in"
    d.mkdir()
    for i, img in enumerate(synthetic_images([(360, 480)] * 24, seed=13)):
        cv2.imwrite(str(d / f"f{i:02d}.png"), img[:, :, ::-1])
    out = tmp_path / "out"
    result: dict = {}

    def job() -> None:
        result["r"] = runner.invoke(app, ["predict", str(d), "-o", str(out), "--engine", "ray", "--batch-size", "2"])

    thread = threading.Thread(target=job)
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        if out.exists() and len(list(out.glob("f*.png"))) >= 4:
            pids = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
            if pids:
                killed = int(pids[0])
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    thread.join(timeout=300)
    assert killed is not None, "the job ended before a worker could be killed"
    res = result["r"]
    assert res.exit_code == 0, res.output
    rows = _manifest(out)
    assert len(rows) == 24 and len({r["path"] for r in rows}) == 24 and all(r["status"] == "ok" for r in rows)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    local = runner.invoke(app, ["predict", str(d), "-o", str(tmp_path / "local")])
    assert local.exit_code == 0
    for r in rows:
        assert Path(r["output"]).read_bytes() == (tmp_path / "local" / Path(r["output"]).name).read_bytes()


def test_lists_of_paths_and_an_existing_manifest(
    local_ray: None, inputs: Path, identity_onnx: Path, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = sorted(p for p in inputs.iterdir() if "corrupt" not in p.name)
    (tmp_path / "list.txt").write_text("# inputs\n" + "\n".join(str(p) for p in good[:2]) + "\n")
    pq.write_table(pa.table({"path": [str(p) for p in good[2:]]}), tmp_path / "list.parquet")
    out = tmp_path / "out"
    args = ["predict", str(identity_onnx), str(tmp_path / "list.txt"), str(tmp_path / "list.parquet"), "-o", str(out)]
    res = runner.invoke(app, [*args, "--engine", "ray"])
    assert res.exit_code == 0, res.output
    assert [Path(r["path"]).name for r in _manifest(out)] == [p.name for p in good]
    again = runner.invoke(app, [*args, "--engine", "ray"])  # the manifest is an output too
    assert again.exit_code == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_a_torn_manifest_line_is_ignored(tmp_path: Path) -> None:
    from fcnedge.runtime.ray_engine import read_manifest

    m = tmp_path / "manifest.jsonl"
    m.write_text('{"path": "a", "status": "ok"}\n{"path": "b", "sta')  # a driver killed mid-write
    assert list(read_manifest(m)) == ["a"]


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_an_interrupted_driver_loses_nothing_and_resume_finishes(how: str, tmp_path: Path) -> None:
    """A real driver process stopped by Ctrl-C (SIGINT) or SIGKILL mid-job: every mask a worker finished is in
    the manifest or a worker's journal, Ray's processes do not outlive the driver (SIGKILL), and --resume writes
    each remaining mask once, skips the finished ones untouched, and leaves a complete manifest in input order."""
    import signal
    import time

    from fcnedge.runtime.ray_engine import JOURNAL, read_journals, read_manifest
    from fcnedge.runtime.ray_reaper import descendants

    d = tmp_path / "in"
    d.mkdir()
    for i, img in enumerate(synthetic_images([(360, 480)] * 60, seed=14)):
        cv2.imwrite(str(d / f"f{i:02d}.png"), img[:, :, ::-1])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fcnedge", "predict", str(d), "-o", str(out), "--engine", "ray", "--batch-size", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None and len(list(out.glob("f*.png"))) < 6:
        time.sleep(0.05)
    assert driver.poll() is None, "the job ended before it could be interrupted"
    tree = descendants(driver.pid)
    driver.send_signal(getattr(signal, how))
    _, stderr = driver.communicate(timeout=120)
    if how == "SIGINT":
        assert driver.returncode == 2 and stderr.strip().splitlines() == [stderr.strip()]
        assert "--resume" in stderr
    else:
        gone = time.monotonic() + 30  # Ray's agents lived on for a minute before the reaper
        while time.monotonic() < gone and any(_running(p) for p in tree):
            time.sleep(0.2)
        assert not [p for p in tree if _running(p)], "Ray processes outlived the killed driver"
    time.sleep(1.0)  # a worker of the interrupted job may finish the image it holds
    recorded = {**read_manifest(out / "manifest.jsonl"), **read_journals(out)}
    assert len(read_manifest(out / "manifest.jsonl")) == 60  # every input listed from the start
    finished = {p: r for p, r in recorded.items() if r["status"] == "ok"}
    assert len(finished) >= 6 and len(finished) >= len(list(out.glob("f*.png"))) - 2  # at most a mask in flight
    stamps = {p: (os.stat(r["output"]).st_ino, os.stat(r["output"]).st_mtime_ns) for p, r in finished.items()}

    res = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert f"{len(finished)} skipped" in res.stdout
    # no noise; the one line allowed says a worker killed mid-write left a temporary file, now swept
    assert all("leftover temporary file(s) of killed fcnedge runs" in ln for ln in res.stderr.splitlines()), res.stderr
    rows = _manifest(out)
    assert [Path(r["path"]).name for r in rows] == [f"f{i:02d}.png" for i in range(60)]  # complete, in order
    assert all(r["status"] == "ok" for r in rows)
    for p, stamp in stamps.items():  # finished masks were not written again
        assert (os.stat(finished[p]["output"]).st_ino, os.stat(finished[p]["output"]).st_mtime_ns) == stamp
    assert sorted(p.name for p in out.iterdir()) == sorted([f"f{i:02d}.png" for i in range(60)] + ["manifest.jsonl"])
    assert not (out / JOURNAL).exists()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ray_takes_videos_one_task_each(local_ray: None, inputs: Path, identity_onnx: Path, tmp_path: Path) -> None:
    """Issue 27: --engine ray accepts videos (one Ray task per video) beside images: the same masks as the local
    engine, one per frame; a corrupt video fails its own line only; --resume skips finished frames."""
    from helpers import write_video

    a = write_video(tmp_path / "a.mp4", frames=6)
    b = write_video(tmp_path / "b.mp4", frames=4)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    local = runner.invoke(app, ["predict", str(identity_onnx), str(a), str(b), "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    out = tmp_path / "ray"
    args = ["predict", str(identity_onnx), str(a), str(b), str(bad), str(inputs / "a0.png"), "-o", str(out),
            "--engine", "ray"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output  # the corrupt video fails, nothing else
    assert "ray: wrote 6 frame masks of a.mp4" in res.stdout and "ray: wrote 4 frame masks of b.mp4" in res.stdout
    assert "ray: 1 done, 0 failed" in res.stdout
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("failed:")] == [
        ln for ln in res.stderr.splitlines() if "bad.mp4" in ln
    ]
    for name, n in (("a", 6), ("b", 4)):
        masks = sorted((out / name).glob("*.png"))
        assert [m.name for m in masks] == [f"{i:06d}.png" for i in range(n)]
        assert all(m.read_bytes() == (tmp_path / "local" / name / m.name).read_bytes() for m in masks)
    (out / "a" / "000003.png").unlink()
    again = runner.invoke(app, ["predict", str(identity_onnx), str(a), "-o", str(out), "--engine", "ray", "--resume"])
    assert again.exit_code == 0, again.output
    assert "ray: wrote 1 frame masks of a.mp4" in again.stdout and "5 done before, skipped" in again.stdout
