"""int8 calibration sees what users run: the predictor's tiles at the meta's inference scale, not centre crops."""

from __future__ import annotations

import cv2
import numpy as np

from fcnedge.exporters.quantize import ImageReader, calibration_inputs
from fcnedge.meta import ModelMeta
from fcnedge.normalize import Normalizer


def _meta(**kw: object) -> ModelMeta:
    return ModelMeta(arch="a", backbone="b", num_classes=3, **kw)  # type: ignore[arg-type]


def test_calibration_feeds_the_image_at_the_meta_scale_padded_into_its_tile(rng: np.random.Generator) -> None:
    meta = _meta(scale=1.25, tile=(64, 96))
    img = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    (x,) = list(calibration_inputs([img], meta, (320, 480)))
    big = cv2.resize(img, (75, 50), interpolation=cv2.INTER_LINEAR)  # 40x60 at 1.25, as the predictor resizes
    want = np.zeros((1, 3, 64, 96), dtype=np.float32)  # float tiles are padded with 0 (the normalised mean)
    want[0, :, :50, :75] = Normalizer(meta.mean, meta.std)(big)
    np.testing.assert_array_equal(x, want)


def test_calibration_feeds_every_window_of_a_large_image(rng: np.random.Generator) -> None:
    meta = _meta(tile=(64, 96))
    img = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    xs = list(calibration_inputs([img], meta, (320, 480)))
    norm = Normalizer(meta.mean, meta.std)
    windows = [(y, x) for y in (0, 48, 86) for x in (0, 72, 104)]  # 25 % overlap, the last pushed inside
    assert len(xs) == len(windows)
    for got, (y, x) in zip(xs, windows, strict=True):
        np.testing.assert_array_equal(got[0], norm(np.ascontiguousarray(img[y : y + 64, x : x + 96])))


def test_calibration_tiles_by_the_given_shape_when_the_meta_has_no_tile(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    xs = list(calibration_inputs([img], _meta(), (64, 64)))
    assert [x.shape for x in xs] == [(1, 3, 64, 64)] * 4


def test_image_reader_feeds_the_calibration_inputs_and_rewinds(rng: np.random.Generator) -> None:
    meta = _meta(scale=2.0)
    images = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(3)]
    want = list(calibration_inputs(images, meta, (64, 64)))
    reader = ImageReader(images, meta, (64, 64), "input")
    for _ in range(2):
        got = [reader.get_next() for _ in range(4)]
        assert got[-1] is None
        for g, w in zip(got[:3], want, strict=True):
            assert g is not None and list(g) == ["input"]
            np.testing.assert_array_equal(g["input"], w)
            assert g["input"].shape == (1, 3, 64, 64)  # 40x60 at scale 2, in one stride-rounded tile
        reader.rewind()


def test_a_calibration_tile_off_the_stride_is_refused_before_any_image_is_read() -> None:
    import pytest

    from fcnedge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"calibration shape: tile size 100x100 .* pass --shape with multiples of 32"):
        calibration_inputs([], _meta(), (100, 100))
