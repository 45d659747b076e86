"""Test helpers importable from any test module (tests/ is on sys.path via conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest


def make_identity_onnx(
    path: Path,
    *,
    fixed_hw: tuple[int, int] | None = None,
    with_meta: bool = True,
    scale: float = 1.0,
    tile: tuple[int, int] | None = None,
) -> Path:
    """An ONNX model whose logits are its 3 input channels (K=3), built with onnx.helper (no torch); ``scale`` and
    ``tile``: the inference scale and tile its meta names."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from fcnedge.meta import META_KEY, ModelMeta

    h, w = fixed_hw if fixed_hw else ("H", "W")
    inp = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, h, w])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3, h, w])
    graph = helper.make_graph([helper.make_node("Identity", ["pixels"], ["scores"])], "identity", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_meta:
        meta = ModelMeta(
            arch="identity",
            backbone="none",
            num_classes=3,
            mean=(0.5, 0.4, 0.3),
            std=(0.2, 0.25, 0.3),
            scale=scale,
            tile=tile,
        )
        model.metadata_props.add(key=META_KEY, value=meta.to_json())
    onnx.save(model, str(path))
    return path


def write_video(path: Path, *, frames: int = 12, size: tuple[int, int] = (96, 128)) -> Path:
    """A small mp4 (mp4v): left half red, right half green."""
    import cv2
    import numpy as np

    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    assert writer.isOpened()
    for _ in range(frames):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, : w // 2] = (0, 0, 255)
        frame[:, w // 2 :] = (0, 255, 0)
        writer.write(frame)
    writer.release()
    return path


def write_folder_dataset(root: Path, *, classes: int, shapes: list[tuple[int, int]], split: str = "val") -> Path:
    """An images/ + masks/ data set (fcnedge's folder layout) of seeded photos with random class-id masks."""
    import cv2
    import numpy as np

    from fcnedge.data.synthetic import synthetic_images

    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(synthetic_images(shapes, seed=4)):
        cv2.imwrite(str(root / split / "images" / f"{i}.png"), img[:, :, ::-1])
        mask = rng.integers(0, classes, img.shape[:2], dtype=np.uint8)
        cv2.imwrite(str(root / split / "masks" / f"{i}.png"), mask)
    return root
