"""Inference scale: the image is resized by the model's (or --scale's) factor before the model, the logits resized
back, then the argmax; the meta names the scale and the tile; every command takes --scale."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import make_identity_onnx, write_folder_dataset, write_video
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.errors import ConfigError, ModelMetaError
from fcnedge.meta import ModelMeta
from fcnedge.runtime import open_predictor
from fcnedge.runtime.open import resolve_tile
from fcnedge.runtime.predictor import scaled_size
from fcnedge.runtime.upsample import resize_logits

runner = CliRunner()
MEAN, STD = np.array([0.5, 0.4, 0.3]), np.array([0.2, 0.25, 0.3])


def _norm(img: np.ndarray) -> np.ndarray:
    """What the identity model returns for ``img``: its normalised channels, (3, H, W)."""
    return ((img / 255.0 - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def scaled_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The identity model whose meta asks for scale 1.5 and one 160x224 tile."""
    return make_identity_onnx(tmp_path_factory.mktemp("scaled") / "scaled.onnx", scale=1.5, tile=(160, 224))


def _smooth(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(x / 23.0), 128 + 100 * np.cos(y / 17.0), 60 + (x + y) % 120], axis=2)
    return img.astype(np.uint8)


def test_meta_carries_scale_and_tile_and_refuses_bad_ones() -> None:
    meta = ModelMeta(arch="a", backbone="b", num_classes=3, scale=1.25, tile=(480, 608))
    back = ModelMeta.from_json(meta.to_json())
    assert back.scale == 1.25 and back.tile == (480, 608)
    old = {k: v for k, v in meta.to_dict().items() if k not in ("scale", "tile")}  # a meta written before round 5
    assert ModelMeta.from_dict(old).scale == 1.0 and ModelMeta.from_dict(old).tile is None
    for bad in (0.0, -1.0, 5.0, math.nan):
        with pytest.raises(ModelMetaError, match="scale"):
            ModelMeta(arch="a", backbone="b", num_classes=3, scale=bad)
    for tile in ((480, 600), (0, 32), (32,)):
        with pytest.raises(ModelMetaError, match="tile"):
            ModelMeta(arch="a", backbone="b", num_classes=3, tile=tile)  # type: ignore[arg-type]


def test_resize_logits_is_torchs_half_pixel_bilinear(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    logits = rng.standard_normal((11, 45, 60)).astype(np.float32)
    for size in ((36, 48), (90, 120), (37, 61)):
        want = F.interpolate(torch.from_numpy(logits)[None], size=size, mode="bilinear", align_corners=False)
        np.testing.assert_allclose(resize_logits(logits, size), want[0].numpy(), atol=1e-4)


def test_meta_scale_resizes_the_image_and_the_logits_back(scaled_onnx: Path) -> None:
    pred = open_predictor(scaled_onnx, threads=1)
    assert pred.scale == 1.5 and pred.spec.size == (160, 224)
    img = _smooth(100, 140)
    big = cv2.resize(img, (210, 150), interpolation=cv2.INTER_LINEAR)  # scaled_size(100, 140, 1.5) = (150, 210)
    assert scaled_size(100, 140, 1.5) == (150, 210)
    want = resize_logits(_norm(big), (100, 140))
    got = pred.logits(img)
    assert got.shape == (3, 100, 140)
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_array_equal(pred.predict(img), want.argmax(0))
    assert pred.stats["windows"] == 2  # one 150x210 tile (in a 160x224 window) per call
    # on smooth content, up then down is close to the image itself
    assert np.abs(got - _norm(img)).mean() < 0.02


def test_scale_one_and_explicit_tile_override_the_meta(scaled_onnx: Path, rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    as_given = open_predictor(scaled_onnx, scale=1.0, tile=(64, 64))
    assert as_given.scale == 1.0 and as_given.spec.size == (64, 64)
    np.testing.assert_allclose(as_given.logits(img), _norm(img), atol=1e-5)  # tiled, not resized
    smaller = open_predictor(scaled_onnx, scale=0.5)
    assert smaller.predict(img).shape == (70, 90)
    with pytest.raises(ConfigError, match="--scale"):
        open_predictor(scaled_onnx, scale=0.1)
    for bad in (math.inf, math.nan):
        with pytest.raises(ConfigError, match="--scale"):
            open_predictor(scaled_onnx, scale=bad, default_tile=(352, 480))  # the demo's call


def test_scaled_prediction_tiles_a_large_image(scaled_onnx: Path) -> None:
    img = _smooth(300, 420)  # 450x630 at scale 1.5: several 160x224 tiles, averaged, then resized back
    pred = open_predictor(scaled_onnx)
    got = pred.logits(img)
    big = cv2.resize(img, (630, 450), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(got, resize_logits(_norm(big), (300, 420)), atol=1e-4)
    assert pred.stats["windows"] > 4


def test_the_tile_rule() -> None:
    meta = ModelMeta(arch="a", backbone="b", num_classes=3, scale=1.25, tile=(480, 608))
    assert resolve_tile(meta) == (480, 608)
    assert resolve_tile(meta, tile=(320, 480)) == (320, 480)
    assert resolve_tile(meta, default_tile=(352, 480)) == (448, 608)  # the demo's frame, at scale 1.25, to 32
    assert resolve_tile(meta, default_tile=(352, 480), scale=1.0) == (352, 480)
    assert resolve_tile(ModelMeta(arch="a", backbone="b", num_classes=3)) == (320, 480)


def test_every_command_takes_scale(scaled_onnx: Path, tmp_path: Path) -> None:
    data = write_folder_dataset(tmp_path / "d", classes=3, shapes=[(70, 100), (64, 96)])
    res = runner.invoke(app, ["eval", str(scaled_onnx), "--data", str(data), "--format", "folder", "--scale", "2"])
    assert res.exit_code == 0, res.output
    img = tmp_path / "d" / "val" / "images"
    out = tmp_path / "pred"
    res = runner.invoke(app, ["predict", str(scaled_onnx), str(img), "-o", str(out), "--scale", "1.25"])
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*.png"))) == 2
    video = write_video(tmp_path / "v.mp4", frames=4)
    res = runner.invoke(
        app, ["demo", str(scaled_onnx), "--source", str(video), "--headless", "--max-frames", "3", "--scale", "1.5"]
    )
    assert res.exit_code == 0, res.output
    bad_out = tmp_path / "bad"
    res = runner.invoke(app, ["predict", str(scaled_onnx), str(img), "-o", str(bad_out), "--scale", "0"])
    assert res.exit_code == 2
    assert "--scale" in res.output and "[0.25, 4.0]" in res.output
    assert not bad_out.exists() or not any(bad_out.iterdir())


@pytest.mark.parametrize("scale", [1.5, 0.75])
def test_scaled_predict_streams_and_equals_the_whole_resize(scaled_onnx: Path, scale: float) -> None:
    """predict streams band by band at a scale: the same ids as resizing the whole scaled logits back, with memory
    far below those logits (tracemalloc sees numpy's buffers)."""
    import tracemalloc

    img = _smooth(1600, 300)  # tall: many bands, each a small part of the whole
    pred = open_predictor(scaled_onnx, scale=scale)
    whole_logits = pred.logits(img)
    top2 = np.sort(whole_logits, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4  # not a near-tie: OpenCV's vertical weights round a little differently
    tracemalloc.start()
    got = pred.predict(img)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(got[clear], whole_logits.argmax(0)[clear])
    assert clear.mean() > 0.999
    sh, sw = scaled_size(1600, 300, scale)
    whole = 3 * sh * sw * 4  # the scaled image's float32 logits
    if scale > 1:  # (shrunk, the whole scaled logits are smaller than the output-width bands)
        assert peak < 0.5 * whole + sh * sw * 3, (peak, whole)  # + the scaled image itself


def test_scaled_predict_on_a_wide_image_keeps_its_temporaries_to_a_few_rows(scaled_onnx: Path) -> None:
    """A wide image at a scale: each band of scaled logits (K x tile rows x the scaled width) is resized back a few
    output rows at a time, so the peak stays near one band plus the images, whatever the band's height."""
    import tracemalloc

    img = _smooth(300, 2400)
    pred = open_predictor(scaled_onnx, scale=1.5)
    expected = pred.logits(img).argmax(0)
    tracemalloc.start()
    got = pred.predict(img)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (got == expected).mean() > 0.999
    sh, sw = scaled_size(300, 2400, 1.5)
    th = pred.spec.size[0]  # the tile's rows: the tallest band
    band = 3 * th * sw * 4  # one band of scaled float32 logits (the tiler's accumulator)
    back = 3 * th * 2400 * 4  # the same band resized across to the output width
    images = sh * sw * 3 + 300 * 2400  # the scaled image and the ids
    # measured 24.0 MB: the accumulator (`band`), its weight sums and a batch's input and output tiles (~1 more
    # `band`), `back` and the images; before, also the band concatenated with the row above and two temporaries of
    # all its output rows (33.5 MB)
    assert peak < 2 * band + 2 * back + images, (peak, band, back, images)


@pytest.mark.parametrize("n", [1, 7, 100, 240, 479])
def test_the_tilers_row_shift_is_exact_and_copies_through_no_temporary(n: int) -> None:
    import tracemalloc

    from fcnedge.runtime.predictor import shift_up

    acc = np.random.default_rng(n).random((11, 480, 500)).astype(np.float32)
    want = acc[:, n:].copy()
    tracemalloc.start()
    shift_up(acc, n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(acc[:, : 480 - n], want)
    assert peak < 100_000, peak  # the plain overlapping assignment buffers up to the whole 10.6 MB array
