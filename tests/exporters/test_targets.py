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
