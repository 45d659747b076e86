"""GPU checks: they run where onnxruntime-gpu finds a CUDA device and skip with a reason elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fcnedge.runtime.predictor import TiledPredictor
from fcnedge.runtime.session import Session
from fcnedge.specs import Provider, ProviderSpec, TileSpec

ort = pytest.importorskip("onnxruntime")
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not HAS_CUDA, reason="CUDAExecutionProvider not available (install fcnedge[gpu] on a GPU box)"),
]


def test_cuda_session_matches_cpu(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    gpu = Session(path, ProviderSpec(providers=(Provider.CUDA,)))
    cpu = Session(path)
    assert gpu.provider == "CUDAExecutionProvider" and gpu.use_io_binding
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 96)).astype(np.float32)
    np.testing.assert_allclose(gpu.run(x), cpu.run(x), rtol=1e-3, atol=1e-3)


def test_cuda_tiled_predictor(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    sess = Session(path, ProviderSpec(providers=(Provider.CUDA,)))
    pred = TiledPredictor(sess.run, sess.meta, TileSpec(size=(64, 96)), max_batch=sess.max_batch)
    img = np.random.default_rng(1).integers(0, 256, size=(150, 211, 3), dtype=np.uint8)
    assert pred.predict(img).shape == (150, 211)
