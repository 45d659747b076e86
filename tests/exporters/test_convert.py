"""``fcnedge convert``: an existing fcnedge ONNX file rewritten into the runtime's exact fast forms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from typer.testing import CliRunner  # noqa: E402

from fcnedge.catalog import get_weights  # noqa: E402
from fcnedge.cli import app  # noqa: E402
from fcnedge.data.synthetic import synthetic_images  # noqa: E402
from fcnedge.errors import ExportError  # noqa: E402
from fcnedge.exporters.cut import move_final_upsampling  # noqa: E402
from fcnedge.exporters.standalone import convert_onnx  # noqa: E402
from fcnedge.meta import RUNTIME_UPSAMPLING_KEY  # noqa: E402
from fcnedge.runtime import open_predictor  # noqa: E402


def test_the_bundled_int8_file_converts_with_the_same_ids(tmp_path: Path) -> None:
    """The shipped file's final upsampling (exporter's Resize form) moves into the runtime with the same ids."""
    shipped = get_weights().path()
    out = tmp_path / "fast.onnx"
    rep = convert_onnx(shipped, out, runtime_upsampling=True, uint8_input=False, force=False)
    assert rep["runtime_upsampling"]["stride"] == 2
    assert all(r["argmax_agreement"] >= 0.999 for r in rep["parity"]) and len(rep["parity"]) == 3
    proto = onnx.load(str(out))
    assert [d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim[2:]] == ["H/2", "W/2"]
    assert {n.op_type for n in proto.graph.node}.isdisjoint({"Resize", "Pad"} - _ops_before_tail(shipped))
    a, b = open_predictor(shipped, threads=2, scale=1), open_predictor(out, threads=2, scale=1)
    assert b.ids_runner is not None
    for img in synthetic_images([(320, 480), (200, 300)], seed=11):
        np.testing.assert_allclose(b.logits(img), a.logits(img), atol=1e-4)
        assert np.mean(a.predict(img) == b.predict(img)) >= 0.998  # int8 logits tie often: rounding picks either


def test_an_int8_file_converts_to_uint8_input_and_runtime_upsampling(tmp_path: Path, lite_int8_onnx: Path) -> None:
    out = tmp_path / "fast.onnx"
    rep = convert_onnx(lite_int8_onnx, out, runtime_upsampling=True, uint8_input=True, force=False)
    assert rep["runtime_upsampling"]["stride"] == 8 and rep["uint8_input"]["form"] == "dequantize"
    assert all(r["argmax_agreement"] >= 0.999 for r in rep["parity"])
    assert onnx.load(str(out)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    b = open_predictor(out, threads=2)
    assert b.ids_runner is not None and b.input_dtype == np.uint8


def _ops_before_tail(path: Path) -> set[str]:
    """Op types the model uses apart from its final Pad -> Resize -> Slice (the skip heads' ×2 Resizes stay)."""
    nodes = list(onnx.load(str(path)).graph.node)
    return {n.op_type for n in nodes[:-3]}


def test_the_resize_form_is_recognised_only_when_exact(tmp_path: Path) -> None:
    proto = onnx.load(str(get_weights().path()))
    starts = next(n for n in proto.graph.node if n.op_type == "Slice" and n.output[0] == "logits").input[1]
    init = next(i for i in proto.graph.initializer if i.name == starts)
    init.CopyFrom(onnx.numpy_helper.from_array(np.array([1, 1], np.int64), starts))  # not the transposed conv's crop
    with pytest.raises(ExportError, match="found Slice"):
        move_final_upsampling(proto)


def test_convert_cli_and_its_refusals(tmp_path: Path, tiny8s_checkpoint: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "rt.onnx"
    res = runner.invoke(app, ["convert", "default", "-o", str(out), "--runtime-upsampling"])
    assert res.exit_code == 0, res.output
    assert "agree on" in res.output
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props[RUNTIME_UPSAMPLING_KEY])["stride"] == 2
    cases = [
        (["convert", str(out), "-o", str(tmp_path / "a.onnx"), "--runtime-upsampling"], "already ends at stride"),
        (["convert", "default", "-o", str(tmp_path / "b.onnx")], "nothing to convert"),
        (["convert", str(tiny8s_checkpoint), "-o", str(tmp_path / "c.onnx"), "--uint8-input"], "not an ONNX model"),
        (["convert", "default", "-o", str(out), "--uint8-input"], "exists"),
    ]
    ids_model = tmp_path / "ids.onnx"
    from fcnedge.exporters.pipeline import run
    from fcnedge.models import load_checkpoint
    from fcnedge.specs import ExportSpec

    model, meta = load_checkpoint(tiny8s_checkpoint)
    run(ExportSpec(output=ids_model, export_shape=(64, 96), ids_output=True, verify=False), model, meta, threads=2)
    cases.append((["convert", str(ids_model), "-o", str(tmp_path / "d.onnx"), "--runtime-upsampling"], "ids output"))
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert message in res.output and len(res.output.strip().splitlines()) == 1
    written = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("ids."))
    assert written == ["rt.onnx"]  # nothing partial was written


def test_the_profiler_feeds_a_uint8_input_model_pixels(tmp_path: Path, lite_int8_onnx: Path) -> None:
    from fcnedge.benchmarks.profile import profile_onnx

    out = tmp_path / "u8.onnx"
    convert_onnx(lite_int8_onnx, out, runtime_upsampling=False, uint8_input=True, force=False)
    prof = profile_onnx(out, (64, 96), threads=1, runs=2)
    assert prof["op_share"] and abs(sum(prof["op_share"].values()) - 1.0) < 0.01
    assert "QLinearConv" in prof["op_share"] or "ConvInteger" in prof["op_share"] or "Conv" in prof["op_share"]
