"""The bundled models: a typed catalog whose files exist, match their hashes and their records, and segment."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fcnedge.catalog import Catalog, Weights, get_weights, names
from fcnedge.errors import ConfigError, ModelMetaError


def test_bundled_files_are_shipped_small_and_hashed() -> None:
    w = get_weights()
    assert w is Catalog.DEFAULT.value and w.name in names()
    total = 0
    for kind, wf in (("checkpoint", w.checkpoint), ("onnx", w.onnx)):
        path = w.path(kind)
        assert path.stat().st_size == wf.bytes
        total += wf.bytes
    assert total <= 16 * 2**20


def test_unknown_bundled_name_lists_the_names() -> None:
    with pytest.raises(ConfigError, match="fcn_lite0_camvid"):
        get_weights("nope")


def test_a_corrupt_bundled_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sha256 is checked on load: a flipped byte is an error, never a silent wrong model."""
    import fcnedge.catalog as catalog

    w = get_weights()
    bad = tmp_path / w.onnx.name
    shutil.copy(w.path(), bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(catalog.resources, "files", lambda pkg: tmp_path)
    with pytest.raises(ModelMetaError, match="corrupt"):
        w.path()
    bad.unlink()
    with pytest.raises(ModelMetaError, match="missing"):
        w.path()


def test_record_meta_matches_the_shipped_onnx() -> None:
    from fcnedge.runtime.session import read_onnx_meta

    w: Weights = get_weights()
    meta, _ = read_onnx_meta(w.path())
    assert meta is not None
    assert meta.to_dict() | {"provenance": {}} == w.meta.to_dict()


def test_load_default_meta_matches_the_record() -> None:
    pytest.importorskip("torch")
    from fcnedge.models import load_default

    model, meta = load_default()
    assert meta.to_dict() | {"provenance": {}} == get_weights().meta.to_dict()
    assert meta.provenance["val_miou"] >= 0.68
    assert not model.training


def test_shipped_int8_segments_camvid(camvid: Path) -> None:
    """Runs without torch: the shipped int8 ONNX through the one seam, on five real CamVid val frames."""
    from fcnedge.data.datasets import open_dataset
    from fcnedge.evaluation import evaluate_predictor
    from fcnedge.runtime import open_predictor

    pred = open_predictor(threads=2)
    scores = evaluate_predictor(pred, open_dataset(camvid, "camvid", "val"), limit=5)
    assert scores["pixel_accuracy"] > 0.85 and scores["miou"] > 0.5
    road = scores["per_class_iou"]["Road"]
    assert road is not None and road > 0.85


def test_predict_without_a_model_uses_the_bundled_int8(tmp_path: Path) -> None:
    import cv2
    from typer.testing import CliRunner

    from fcnedge.cli import app

    img = tmp_path / "street.png"
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[:40] = (128, 160, 220)  # sky-ish
    rgb[40:] = (110, 100, 110)  # road-ish
    cv2.imwrite(str(img), rgb[:, :, ::-1])
    res = CliRunner().invoke(app, ["predict", str(img), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert get_weights().onnx.name in res.stdout
    ids = cv2.imread(str(tmp_path / "out" / "street.png"), cv2.IMREAD_UNCHANGED)
    assert ids.shape == (96, 128) and ids.max() < 11
