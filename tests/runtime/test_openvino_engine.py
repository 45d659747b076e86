"""--provider openvino: the native OpenVINO engine behind the one seam, same answers as ONNX Runtime."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from fcnedge.data.synthetic import synthetic_images
from fcnedge.runtime import open_predictor

ov = pytest.importorskip("openvino")
ROOT = Path(__file__).resolve().parents[2]


def test_fp32_matches_onnx_runtime(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    a = open_predictor(path, providers="openvino", tile=(64, 96), threads=1)
    b = open_predictor(path, tile=(64, 96), threads=1)
    assert a.provider.startswith("OpenVINO-CPU") and "(f32)" in a.provider
    for img in synthetic_images([(64, 96), (131, 203), (40, 50)], seed=6):  # one tile, several, padded
        np.testing.assert_allclose(a.logits(img), b.logits(img), rtol=1e-4, atol=1e-4)
        assert np.mean(a.predict(img) == b.predict(img)) > 0.999


def test_runtime_upsampling_and_ids_models_run_on_openvino(tmp_path: Path, tiny8s_checkpoint: Path) -> None:
    pytest.importorskip("torch")
    from fcnedge.exporters.pipeline import run
    from fcnedge.models import load_checkpoint
    from fcnedge.specs import ExportSpec

    model, meta = load_checkpoint(tiny8s_checkpoint)
    img = synthetic_images([(64, 96)], seed=7)[0]
    for name, extra in (("rt", {"runtime_upsampling": True}), ("ids", {"ids_output": True})):
        out = tmp_path / f"{name}.onnx"
        run(ExportSpec(output=out, export_shape=(64, 96), **extra), model, meta, threads=2)  # type: ignore[arg-type]
        a, b = open_predictor(out, providers="openvino"), open_predictor(out)
        assert a.ids_runner is not None  # the graph's ArgMax, or the boundary-only argmax of the runtime upsampling
        np.testing.assert_allclose(a.logits(img), b.logits(img), rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(a.predict(img), b.predict(img))


def test_shared_by_threads_like_a_sequential_run(tiny_onnx: tuple[Path, dict]) -> None:
    pred = open_predictor(tiny_onnx[0], providers="openvino", tile=(64, 96), threads=1)
    images = synthetic_images([(64, 96), (131, 203), (70, 99)] * 3, seed=8)
    expected = [pred.predict(i) for i in images]
    bad: list[int] = []

    def work(t: int) -> None:
        for i in range(12):
            k = (t + i) % len(images)
            if not np.array_equal(pred.predict(images[k]), expected[k]):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert bad == []


def test_without_openvino_it_says_what_to_install(identity_onnx: Path) -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'openvino':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from typer.testing import CliRunner\nimport fcnedge.cli\n"
        f"m = {str(identity_onnx)!r}\n"
        "r = CliRunner().invoke(fcnedge.cli.app, ['bench', m, '--provider', 'openvino', '--out', 'never'])\n"
        "print(r.exit_code, r.stderr.strip())\n"
        "from fcnedge.runtime import open_predictor\n"
        "p = open_predictor(m, providers='openvino,cpu', allow_fallback=True)\n"
        "print(p.provider)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    first, second = res.stdout.strip().splitlines()
    assert first.startswith("2 error: provider 'openvino' needs the openvino package: pip install 'fcnedge[openvino]'")
    assert second == "CPUExecutionProvider"
