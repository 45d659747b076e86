"""The bundled default model: it loads, exports, and actually segments CamVid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fcnedge.models.default import default_checkpoint_path, shipped_int8_path


def test_bundled_files_are_shipped_and_small() -> None:
    ckpt = default_checkpoint_path()
    int8 = shipped_int8_path()
    assert int8 is not None
    assert ckpt.stat().st_size + int8.stat().st_size <= 16 * 2**20


def test_load_default_meta() -> None:
    pytest.importorskip("torch")
    from fcnedge.models import load_default

    model, meta = load_default()
    assert meta.arch == "fcn_efficientnet_lite0" and meta.head == "8s" and meta.num_classes == 11
    assert meta.class_names[0] == "Sky" and meta.ignore_index == 11
    assert meta.provenance["val_miou"] >= 0.68
    assert not model.training


def test_shipped_int8_segments_camvid(camvid: Path) -> None:
    """Runs without torch: the shipped int8 ONNX through the runtime, on five real CamVid val frames."""
    from fcnedge.data.datasets import open_dataset
    from fcnedge.evaluation import evaluate_predictor
    from fcnedge.runtime.predictor import TiledPredictor
    from fcnedge.runtime.session import Session

    path = shipped_int8_path()
    assert path is not None
    sess = Session(path)
    pred = TiledPredictor(sess.run, sess.meta, max_batch=sess.max_batch)
    scores = evaluate_predictor(pred, open_dataset(camvid, "camvid", "val"), limit=5)
    assert scores["pixel_accuracy"] > 0.85 and scores["miou"] > 0.5
    road = scores["per_class_iou"]["Road"]
    assert road is not None and road > 0.85


def test_predict_without_a_model_uses_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    import cv2
    from typer.testing import CliRunner

    from fcnedge.cli import app

    monkeypatch.setenv("FCNEDGE_CACHE", str(tmp_path / "cache"))
    img = tmp_path / "street.png"
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[:40] = (128, 160, 220)  # sky-ish
    rgb[40:] = (110, 100, 110)  # road-ish
    cv2.imwrite(str(img), rgb[:, :, ::-1])
    res = CliRunner().invoke(app, ["predict", str(img), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "street.png").exists()
    assert len(list((tmp_path / "cache").glob("default-*-fp32.onnx"))) == 1
