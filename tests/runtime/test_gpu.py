"""GPU checks: they run where onnxruntime-gpu finds a CUDA device and skip with a reason elsewhere
(``bash scripts/gpu_check.sh`` runs them on a CUDA machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fcnedge.runtime import open_predictor

ort = pytest.importorskip("onnxruntime")
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not HAS_CUDA,
        reason="CUDAExecutionProvider not available (pip uninstall -y onnxruntime && pip install "
        "onnxruntime-gpu==1.31.1, on a GPU box)",
    ),
]


def test_cuda_session_matches_cpu(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    gpu = open_predictor(path, providers="cuda", tile=(64, 96))
    cpu = open_predictor(path, tile=(64, 96))
    assert gpu.provider == "CUDAExecutionProvider" and gpu.session.use_io_binding
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 96)).astype(np.float32)
    np.testing.assert_allclose(gpu.session.run(x), cpu.session.run(x), rtol=1e-3, atol=1e-3)


def test_cuda_tiled_predictor_matches_cpu(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    gpu = open_predictor(path, providers="cuda", tile=(64, 96))
    cpu = open_predictor(path, tile=(64, 96))
    img = np.random.default_rng(1).integers(0, 256, size=(150, 211, 3), dtype=np.uint8)
    ids = gpu.predict(img)
    assert ids.shape == (150, 211)
    assert np.mean(ids == cpu.predict(img)) > 0.999


def test_bundled_model_on_cuda_matches_cpu() -> None:
    gpu, cpu = open_predictor(providers="cuda"), open_predictor()
    img = np.random.default_rng(2).integers(0, 256, size=(360, 480, 3), dtype=np.uint8)
    assert np.mean(gpu.predict(img) == cpu.predict(img)) > 0.99
