"""The edge install: every command that only runs ONNX models works with torch blocked (as after
``pip install fcnedge`` without extras), on the bundled default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import write_folder_dataset, write_video

from fcnedge.data.synthetic import synthetic_images

BLOCK = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'torchvision', 'onnx', 'onnxsim', 'onnxslim'):\n"
    "            raise ImportError(name + ' blocked: the edge install has no torch or onnx')\n"
    "sys.meta_path.insert(0, Block())\n"
    "import json\n"
    "from typer.testing import CliRunner\n"
    "import fcnedge.cli\n"
    "results = []\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    r = CliRunner().invoke(fcnedge.cli.app, args)\n"
    "    import traceback\n"
    "    tb = ''.join(traceback.format_exception(*r.exc_info)) if r.exit_code not in (0, 2) and r.exc_info else None\n"
    "    results.append({'args': args, 'code': r.exit_code, 'stdout': r.stdout, 'stderr': r.stderr, 'exc': tb})\n"
    "assert 'torch' not in sys.modules\n"
    "print(json.dumps(results))\n"
)


def run_blocked(commands: list[list[str]], cwd: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "FCNEDGE_CACHE": str(cwd / "c")}
    res = subprocess.run(
        [sys.executable, "-c", BLOCK, json.dumps(commands)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def edge_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edge")
    imgs = synthetic_images([(200, 300), (96, 128), (360, 480)], seed=1)
    cv2.imwrite(str(root / "street.png"), imgs[0][:, :, ::-1])
    (root / "photos").mkdir()
    for i, img in enumerate(imgs[1:]):
        cv2.imwrite(str(root / "photos" / f"p{i}.jpg"), img[:, :, ::-1])
    write_video(root / "video.mp4", frames=12)
    write_folder_dataset(root / "data", classes=11, shapes=[(96, 128), (130, 170)])
    return root


def test_readme_edge_commands_work_without_torch(edge_inputs: Path) -> None:
    from fcnedge.catalog import get_weights

    r = edge_inputs
    default_onnx = str(get_weights().path())
    commands = [
        ["predict", "street.png", "-o", "out1"],
        ["predict", "photos", "-o", "out2", "--save-overlay"],
        ["demo", "--source", "video.mp4", "--headless", "--max-frames", "10", "--record", "rec.mp4"],
        ["info"],
        ["eval", default_onnx, "--data", "data", "--format", "folder", "--json"],
        ["bench", default_onnx, "--runs", "3", "--warmup", "1", "--no-roofline", "--out", "b1"],
        ["bench", "--runs", "3", "--warmup", "1", "--no-roofline", "--out", "b2"],
        ["bench-runtime", "--size", "400x700", "--runs", "1", "--out", "br"],
        ["tune", "--shape", "96x128", "--runs", "3", "--rounds", "1", "--threads-list", "1", "--dry-run"],
        ["models"],
    ]
    results = run_blocked(commands, r)
    for res in results:
        assert res["code"] == 0, (res["args"], res["stderr"], res["exc"])
    _, _, demo, info, ev, _, _, _, tuned, models = results
    ids = cv2.imread(str(r / "out1" / "street.png"), cv2.IMREAD_UNCHANGED)
    assert ids.shape == (200, 300) and ids.max() < 11
    assert sorted(p.name for p in (r / "out2").iterdir()) == [
        "p0.overlay.png",
        "p0.png",
        "p1.overlay.png",
        "p1.png",
    ]
    assert "10 frames" in demo["stdout"] and (r / "rec.mp4").stat().st_size > 0
    assert "fcn_efficientnet_lite0" in info["stdout"] and "CamVid" not in info["stderr"]
    scores = json.loads(ev["stdout"])
    assert scores["images"] == 2 and 0.0 <= scores["miou"] <= 1.0
    for out in ("b1", "b2"):
        report = json.loads((r / out / "report.json").read_text())
        assert report["rows"][0]["variant"] == "onnx" and report["rows"][0]["latency_ms"]["p50"] > 0
    assert json.loads((r / "br" / "runtime.json").read_text())["large"][0]["windows"] >= 2
    assert "fcn_lite0_camvid" in models["stdout"]
    assert "pick:" in tuned["stdout"] and "needs the onnx package" in tuned["stdout"]  # as-is forms only
    assert not (r / "c").exists()  # nothing was exported: the shipped int8 model ran


def test_checkpoints_say_what_to_install_without_torch(edge_inputs: Path, tiny_checkpoint: Path) -> None:
    results = run_blocked(
        [
            ["predict", str(tiny_checkpoint), "street.png", "-o", "o3"],
            ["export", "fcn_tiny", "--num-classes", "3", "-o", "x.onnx"],
            ["eval", "fcn_resnet18", "--data", "data"],
        ],
        edge_inputs,
    )
    for res in results:
        assert res["code"] == 2, (res["args"], res["exc"])
        assert "pip install 'fcnedge[torch]'" in res["stderr"] and len(res["stderr"].strip().splitlines()) == 1
    assert not (edge_inputs / "o3").exists() or not any((edge_inputs / "o3").iterdir())
    assert not (edge_inputs / "x.onnx").exists()


def test_identity_masks_are_right(edge_inputs: Path, identity_onnx: Path) -> None:
    """Not only 'it ran': the identity model's class ids are the argmax of the normalised channels."""
    img = np.zeros((70, 90, 3), np.uint8)
    img[:, :30] = (255, 0, 0)
    img[:, 30:60] = (0, 255, 0)
    img[:, 60:] = (0, 0, 255)
    cv2.imwrite(str(edge_inputs / "rgb.png"), img[:, :, ::-1])
    (res,) = run_blocked([["predict", str(identity_onnx), "rgb.png", "-o", "o4"]], edge_inputs)
    assert res["code"] == 0, res
    ids = cv2.imread(str(edge_inputs / "o4" / "rgb.png"), cv2.IMREAD_UNCHANGED)
    assert (ids[:, :30] == 0).all() and (ids[:, 30:60] == 1).all() and (ids[:, 60:] == 2).all()
