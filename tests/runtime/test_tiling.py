from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcnedge.meta import ModelMeta
from fcnedge.runtime.predictor import TiledPredictor
from fcnedge.runtime.preprocess import Normalizer
from fcnedge.runtime.session import Session
from fcnedge.runtime.tiling import coverage, make_grid, starts_1d
from fcnedge.specs import Blend, TileSpec

tiles = st.tuples(st.integers(1, 8), st.integers(1, 8)).map(lambda t: (32 * t[0], 32 * t[1]))


@settings(max_examples=200, deadline=None)
@given(
    h=st.integers(2, 700),
    w=st.integers(2, 700),
    tile=tiles,
    overlap=st.floats(0.0, 0.9),
    blend=st.sampled_from(list(Blend)),
)
def test_grid_covers_every_pixel_inside_the_canvas(
    h: int, w: int, tile: tuple[int, int], overlap: float, blend: Blend
) -> None:
    grid = make_grid(h, w, TileSpec(size=tile, overlap=overlap, blend=blend), 32)
    th, tw = grid.tile
    assert th % 32 == 0 and tw % 32 == 0 and th <= tile[0] and tw <= tile[1]
    cov = coverage(grid, blend)
    assert cov.shape == (h, w)
    assert (cov > 0).all()
    # the last window is pushed back inside the image (or the image is padded up to one window)
    assert grid.ys[-1] + th == max(h, th) and grid.xs[-1] + tw == max(w, tw)
    assert list(grid.ys) == sorted(set(grid.ys)) and grid.ys[0] == 0


def test_starts_have_the_requested_overlap() -> None:
    assert starts_1d(100, 64, 0.5) == [0, 32, 36]
    assert starts_1d(64, 64, 0.5) == [0]
    assert starts_1d(128, 64, 0.0) == [0, 64]


def _identity_pred(path: Path, spec: TileSpec) -> tuple[TiledPredictor, Normalizer]:
    sess = Session(path)
    return TiledPredictor(sess.run, sess.meta, spec, max_batch=sess.max_batch), Normalizer(
        sess.meta.mean, sess.meta.std
    )


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(2, 300),
    w=st.integers(2, 300),
    overlap=st.sampled_from([0.0, 0.25, 0.5]),
    blend=st.sampled_from(list(Blend)),
    batch=st.integers(1, 5),
)
def test_identity_model_reproduces_the_input_through_the_tiler(
    identity_onnx: Path, h: int, w: int, overlap: float, blend: Blend, batch: int
) -> None:
    rng = np.random.default_rng(h * 1000 + w)
    img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    pred, norm = _identity_pred(identity_onnx, TileSpec(size=(64, 96), overlap=overlap, blend=blend, batch=batch))
    logits = pred.logits(img)
    assert logits.shape == (3, h, w)
    np.testing.assert_allclose(logits, norm(img), rtol=1e-6, atol=1e-6)
    ids = pred.predict(img)
    assert ids.dtype == np.uint8 and ids.shape == (h, w)
    np.testing.assert_array_equal(ids, norm(img).argmax(0))


def test_zero_overlap_tiles_are_independent_whole_image_runs(tiny_onnx: tuple[Path, dict]) -> None:
    """With zero overlap on a multiple-of-32 image, each tile of the stitched logits is exactly a whole-image run
    of that tile (a conv net's receptive field makes the full-image run differ near seams, so that is the rule)."""
    path, _ = tiny_onnx
    sess = Session(path)
    img = np.random.default_rng(1).integers(0, 256, size=(128, 192, 3), dtype=np.uint8)
    tiled = TiledPredictor(sess.run, sess.meta, TileSpec(size=(64, 96), overlap=0.0)).logits(img)
    single = TiledPredictor(sess.run, sess.meta, TileSpec(size=(64, 96)))
    for y in (0, 64):
        for x in (0, 96):
            ref = single.logits(np.ascontiguousarray(img[y : y + 64, x : x + 96]))
            np.testing.assert_allclose(tiled[:, y : y + 64, x : x + 96], ref, rtol=1e-5, atol=1e-6)


def test_identity_zero_overlap_equals_whole_image(identity_onnx: Path) -> None:
    img = np.random.default_rng(2).integers(0, 256, size=(128, 192, 3), dtype=np.uint8)
    whole, _ = _identity_pred(identity_onnx, TileSpec(size=(128, 192)))
    tiled, _ = _identity_pred(identity_onnx, TileSpec(size=(64, 96), overlap=0.0))
    np.testing.assert_array_equal(whole.logits(img), tiled.logits(img))


def test_whole_image_mode_runs_once_and_small_images_are_padded(identity_onnx: Path) -> None:
    pred, norm = _identity_pred(identity_onnx, TileSpec(size=(64, 96)))
    img = np.full((64, 96, 3), 7, dtype=np.uint8)
    pred.logits(img)
    assert pred.stats == {"runs": 1, "windows": 1}
    small = np.random.default_rng(3).integers(0, 256, size=(5, 9, 3), dtype=np.uint8)
    np.testing.assert_allclose(pred.logits(small), norm(small), atol=1e-6)


def test_batching_reduces_session_calls(identity_onnx: Path) -> None:
    img = np.zeros((64, 400, 3), dtype=np.uint8)
    one, _ = _identity_pred(identity_onnx, TileSpec(size=(64, 96), overlap=0.25, batch=1))
    many, _ = _identity_pred(identity_onnx, TileSpec(size=(64, 96), overlap=0.25, batch=8))
    one.logits(img)
    many.logits(img)
    assert one.stats["windows"] == many.stats["windows"] == 6
    assert one.stats["runs"] == 6 and many.stats["runs"] == 1


def test_stitching_averages_overlapping_logits() -> None:
    """A runner that adds a per-call constant shows the mean rule: overlap pixels get the average."""
    meta = ModelMeta(arch="x", backbone="y", num_classes=2, mean=(0, 0, 0), std=(1, 1, 1))
    calls = iter(range(100))

    def runner(batch: np.ndarray) -> np.ndarray:
        return np.full((batch.shape[0], 2, *batch.shape[2:]), float(next(calls)), dtype=np.float32)

    pred = TiledPredictor(runner, meta, TileSpec(size=(32, 64), overlap=0.5, batch=1))
    out = pred.logits(np.zeros((32, 96, 3), dtype=np.uint8))  # windows at x=0 (value 0) and x=32 (value 1)
    np.testing.assert_allclose(out[0, 0, :32], 0.0)
    np.testing.assert_allclose(out[0, 0, 32:64], 0.5)
    np.testing.assert_allclose(out[0, 0, 64:], 1.0)


def test_flip_tta_averages_the_mirrored_run(tiny_onnx: tuple[Path, dict]) -> None:
    """--flip-tta: each tile also runs mirrored; for a one-tile image that is the mean of the image's logits and
    the mirrored image's logits mirrored back (real ORT session)."""
    from fcnedge.data.synthetic import synthetic_images
    from fcnedge.runtime import open_predictor

    img = synthetic_images([(64, 96)])[0]
    plain = open_predictor(tiny_onnx[0], tile=(64, 96))
    flip = open_predictor(tiny_onnx[0], tile=(64, 96), flip=True)
    want = (plain.logits(img) + plain.logits(np.ascontiguousarray(img[:, ::-1]))[:, :, ::-1]) / 2
    np.testing.assert_allclose(flip.logits(img), want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(flip.logits(img), plain.logits(img))
    big = synthetic_images([(150, 200)])[0]  # several tiles: each tile mirrored, stitched as usual
    assert open_predictor(tiny_onnx[0], tile=(64, 96), flip=True).predict(big).shape == (150, 200)


def test_predict_timed_is_predict_with_its_stages(identity_onnx: Path) -> None:
    """What the bench times: the same ids as predict, the three stages adding up to the call, inference the engine
    calls only (here counted: three frames side by side at batch 3 are one call of three tiles)."""
    import time

    from fcnedge.runtime.predictor import STAGES

    sess = Session(identity_onnx)
    calls: list[int] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape[0])
        time.sleep(0.02)  # a slow engine: inference must hold these 20 ms, not the other stages
        return sess.run(batch)

    pred = TiledPredictor(runner, sess.meta, TileSpec(size=(64, 96), overlap=0.0, batch=3))
    img = np.random.default_rng(0).integers(0, 255, (64, 96 * 3, 3), dtype=np.uint8)
    ref = pred.predict(img)
    calls.clear()
    t0 = time.perf_counter()
    ids, stages = pred.predict_timed(img)
    wall = time.perf_counter() - t0
    assert np.array_equal(ids, ref) and calls == [3]
    assert tuple(stages) == STAGES and all(v >= 0 for v in stages.values())
    assert sum(stages.values()) == pytest.approx(wall, rel=0.05, abs=2e-3)
    assert 0.02 <= stages["inference"] < 0.02 + 0.5 * wall
    _, again = pred.predict_timed(img[:, :96])  # another call starts from zero; predict itself records nothing
    assert again["inference"] < 0.03
    pred.predict(img)
    assert getattr(pred._local, "clock", None) is None
