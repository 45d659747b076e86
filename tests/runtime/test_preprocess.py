from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fcnedge.errors import InputImageError
from fcnedge.runtime.preprocess import Normalizer, as_rgb_uint8, read_image


def test_png_is_read_as_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 200  # red in BGR order
    cv2.imwrite(str(tmp_path / "r.png"), bgr)
    rgb = read_image(tmp_path / "r.png")
    assert rgb.shape == (4, 5, 3) and rgb[0, 0].tolist() == [200, 0, 0]


def test_gray_rgba_and_16bit(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "g.png"), np.full((6, 7), 90, np.uint8))
    assert read_image(tmp_path / "g.png")[0, 0].tolist() == [90, 90, 90]
    bgra = np.zeros((6, 7, 4), np.uint8)
    bgra[..., 0] = 10  # blue
    bgra[..., 3] = 255
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert read_image(tmp_path / "a.png")[0, 0].tolist() == [0, 0, 10]
    cv2.imwrite(str(tmp_path / "d.png"), np.full((6, 7, 3), 0x8000, np.uint16))
    assert read_image(tmp_path / "d.png")[0, 0].tolist() == [128, 128, 128]
    assert as_rgb_uint8(np.full((3, 3), 5, np.uint8)).shape == (3, 3, 3)
    assert as_rgb_uint8(np.zeros((3, 3, 4), np.uint8)).shape == (3, 3, 3)


def test_exif_orientation_is_respected(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    img = pil.new("RGB", (40, 20), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "o.jpg", exif=exif)
    assert read_image(tmp_path / "o.jpg").shape == (40, 20, 3)


def test_bad_images(tmp_path: Path) -> None:
    (tmp_path / "z.png").write_bytes(b"")
    with pytest.raises(InputImageError, match="empty"):
        read_image(tmp_path / "z.png")
    (tmp_path / "c.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputImageError, match="cannot be decoded"):
        read_image(tmp_path / "c.png")
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(InputImageError, match=r"1x1 \(HxW\): too small"):
        read_image(tmp_path / "one.png")
    with pytest.raises(InputImageError, match="does not exist"):
        read_image(tmp_path / "missing.png")


def test_normalizer_matches_formula() -> None:
    img = np.random.default_rng(0).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ref = ((img / 255.0 - np.array(mean)) / np.array(std)).transpose(2, 0, 1)
    np.testing.assert_allclose(Normalizer(mean, std)(img), ref, rtol=1e-5, atol=1e-5)


def test_shipped_argmax_graph_matches_onnx_helper_and_numpy() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from fcnedge.runtime.postprocess import ARGMAX_MODEL, argmax_ids

    x = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["K", "H", "W"])
    y = helper.make_tensor_value_info("ids", TensorProto.UINT8, ["H", "W"])
    nodes = [
        helper.make_node("ArgMax", ["logits"], ["ids64"], axis=0, keepdims=0),
        helper.make_node("Cast", ["ids64"], ["ids"], to=TensorProto.UINT8),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "argmax", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="fcnedge",
    )
    model.ir_version = 8
    assert model.SerializeToString() == ARGMAX_MODEL
    onnx.checker.check_model(onnx.load_from_string(ARGMAX_MODEL))
    logits = np.random.default_rng(0).normal(size=(11, 37, 53)).astype(np.float32)
    logits[4, :3] = logits[7, :3] = 9.0  # ties: the first maximum wins, like numpy
    np.testing.assert_array_equal(argmax_ids(logits), logits.argmax(0))


def test_a_too_small_image_is_named_once() -> None:
    """It read "image image is 1x1" for an in-memory array."""
    with pytest.raises(InputImageError) as info:
        as_rgb_uint8(np.zeros((1, 1, 3), np.uint8))
    assert str(info.value).startswith("image is 1x1 (HxW)")
