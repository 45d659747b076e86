"""Issue 28, the readiness report: per target, the nodes it takes, partitions, refused operators and a verdict."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fcnedge.cli import app

runner = CliRunner()


def test_targets_report_on_a_tiny_model(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    res = runner.invoke(app, ["targets", str(path), "--shape", "64x96", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["schema"], doc["shape"]) == ("fcnedge.targets", "64x96")
    rows = {r["target"]: r for r in doc["targets"]}
    assert {"nnapi", "coreml-nn", "coreml-mlprogram", "onnx-cpu"} <= set(rows)
    for r in rows.values():
        assert 0 <= r["supported"] <= r["nodes"] and r["verdict"] in ("YES", "MAYBE", "NO")
    cpu = rows["onnx-cpu"]
    assert cpu["supported"] == cpu["nodes"] == rows["nnapi"]["nodes"] and cpu["partitions"] == 1
    # a float FCN with its upsampling rewritten to Resize: NNAPI takes nodes, CoreML's checker names what it refuses
    assert rows["nnapi"]["supported"] > 0
    assert all(op.startswith("ai.onnx:") for r in rows.values() for op in r["unsupported_ops"])


def test_targets_without_a_shape_says_why_mobile_refuses(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    res = runner.invoke(app, ["targets", str(path), "--json"])
    assert res.exit_code == 0, res.output
    nnapi = next(r for r in json.loads(res.stdout)["targets"] if r["target"] == "nnapi")
    assert "dynamic shapes: check with --shape HxW" in nnapi["note"]
    table = runner.invoke(app, ["targets", str(path)])
    assert table.exit_code == 0 and "--shape HxW" in table.output


def test_a_shape_off_the_stride_is_one_line(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    res = runner.invoke(app, ["targets", str(path), "--shape", "63x96"])
    assert res.exit_code == 2 and "off the stride" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_convert_to_an_openvino_ir_that_runs_through_the_seam(tiny_onnx: tuple[Path, dict], tmp_path: Path) -> None:
    """--target openvino: model.xml/.bin with the meta in rt_info and target.json; proven exact against the ONNX
    file on OpenVINO before it is published; predict, info and the seam open the .xml on OpenVINO."""
    import pytest

    pytest.importorskip("openvino")
    import cv2
    import numpy as np

    from fcnedge.runtime.open import open_predictor

    path, _ = tiny_onnx
    out = tmp_path / "ir"
    res = runner.invoke(app, ["convert", str(path), "--target", "openvino", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "model.xml", "target.json"]
    report = json.loads((out / "target.json").read_text())
    assert (report["schema"], report["target"], report["precision"]) == ("fcnedge.target", "openvino", "fp32")
    assert report["worst_agreement_vs_onnx_on_openvino"] == 1.0 and len(report["parity"]) == 4
    assert any(d["device"] == "CPU" and d["supported"] == d["operations"] for d in report["devices"])
    ir = open_predictor(out / "model.xml")  # the default provider: OpenVINO's CPU device for an IR
    assert ir.provider.startswith("OpenVINO-CPU") and ir.meta == open_predictor(path).meta
    img = np.random.default_rng(3).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    assert np.array_equal(ir.predict(img), open_predictor(path, providers="openvino").predict(img))
    info = runner.invoke(app, ["info", str(out / "model.xml")])
    assert info.exit_code == 0 and "openvino-ir" in info.output
    cv2.imwrite(str(tmp_path / "a.png"), img[:, :, ::-1])
    pred = runner.invoke(app, ["predict", str(out / "model.xml"), str(tmp_path / "a.png"), "-o", str(tmp_path / "p")])
    assert pred.exit_code == 0, pred.output
    bad = runner.invoke(app, ["predict", str(out / "model.xml"), str(tmp_path / "a.png"), "-o", str(tmp_path / "q"),
                              "--provider", "cuda"])  # fmt: skip
    assert bad.exit_code == 2 and "only OpenVINO runs" in bad.stderr
    again = runner.invoke(app, ["convert", str(path), "--target", "openvino", "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.stderr
    odd = runner.invoke(app, ["convert", str(path), "--target", "tflite", "-o", str(tmp_path / "t")])
    assert odd.exit_code == 2 and "--target 'tflite' is unknown" in odd.stderr and not (tmp_path / "t").exists()
