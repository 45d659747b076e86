"""One contract, run against every Predictor implementation fcnedge has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fcnedge.runtime.predictor import Predictor, TiledPredictor
from fcnedge.runtime.session import Session
from fcnedge.specs import Blend, TileSpec


def _ort(path: Path, spec: TileSpec) -> Predictor:
    sess = Session(path)
    return TiledPredictor(sess.run, sess.meta, spec, max_batch=sess.max_batch)


def _torch(checkpoint: Path, spec: TileSpec) -> Predictor:
    pytest.importorskip("torch")
    from fcnedge.models import load_checkpoint
    from fcnedge.models.infer import torch_runner

    model, meta = load_checkpoint(checkpoint)
    return TiledPredictor(torch_runner(model), meta, spec)


@pytest.fixture(params=["ort-identity", "ort-fcn8s", "torch-fcn8s", "ort-fcn8s-hann-batch1"])
def make(request: pytest.FixtureRequest, identity_onnx: Path) -> Callable[[], Predictor]:
    kind = request.param
    spec = TileSpec(size=(64, 96), overlap=0.25)
    if kind == "ort-identity":
        return lambda: _ort(identity_onnx, spec)
    ckpt = request.getfixturevalue("tiny8s_checkpoint")
    if kind == "torch-fcn8s":
        return lambda: _torch(ckpt, spec)
    path, _ = request.getfixturevalue("tiny_onnx")
    if kind == "ort-fcn8s-hann-batch1":
        return lambda: _ort(path, TileSpec(size=(64, 96), overlap=0.5, blend=Blend.HANN, batch=1))
    return lambda: _ort(path, spec)


class TestPredictorContract:
    @pytest.mark.parametrize("hw", [(64, 96), (67, 99), (5, 9), (150, 211)])
    def test_shapes_dtypes_and_argmax_consistency(self, make: Callable[[], Predictor], hw: tuple[int, int]) -> None:
        pred = make()
        img = np.random.default_rng(hw[0]).integers(0, 256, size=(*hw, 3), dtype=np.uint8)
        logits = pred.logits(img)
        ids = pred.predict(img)
        k = pred.meta.num_classes
        assert logits.shape == (k, *hw) and logits.dtype == np.float32 and np.isfinite(logits).all()
        assert ids.shape == hw and ids.dtype == np.uint8 and int(ids.max()) < k
        np.testing.assert_array_equal(ids, logits.argmax(0))

    def test_deterministic_and_input_untouched(self, make: Callable[[], Predictor]) -> None:
        pred = make()
        img = np.random.default_rng(7).integers(0, 256, size=(90, 130, 3), dtype=np.uint8)
        before = img.copy()
        a = pred.logits(img).copy()
        b = pred.logits(img)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(img, before)

    def test_gray_and_rgba_inputs(self, make: Callable[[], Predictor]) -> None:
        pred = make()
        rgb = np.random.default_rng(8).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
        gray = rgb[:, :, 0]
        np.testing.assert_array_equal(pred.predict(gray), pred.predict(np.repeat(gray[:, :, None], 3, axis=2)))
        rgba = np.concatenate([rgb, np.full((40, 50, 1), 255, np.uint8)], axis=2)
        np.testing.assert_array_equal(pred.predict(rgba), pred.predict(rgb))
