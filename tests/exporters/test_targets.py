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
    assert odd.exit_code == 2 and "tflite" in odd.stderr and not (tmp_path / "t").exists()


def _one_line(res: object) -> str:
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert res.exit_code == 2 and len(err.splitlines()) == 1, err  # type: ignore[attr-defined]
    return err


def test_export_ort_mobile_is_one_partition_on_nnapi_and_coreml(tiny8s_checkpoint: Path, tmp_path: Path) -> None:
    """--target ort-mobile: fixed shape, upsampling as 3x3 Conv -> DepthToSpace(DCR), one partition on NNAPI and
    both CoreML formats (ORT's checker), an .ort file that fcnedge's predictor runs with the PyTorch model's ids."""
    import cv2
    import numpy as np
    import onnx

    from fcnedge.runtime.open import open_predictor
    from fcnedge.sources import SourceKind, identify

    out = tmp_path / "mobile"
    res = runner.invoke(app, ["export", str(tiny8s_checkpoint), "--target", "ort-mobile", "--shape", "64x96",
                              "-o", str(out), "--threads", "2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "one partition on nnapi, coreml-nn, coreml-mlprogram" in res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["model.onnx", "model.ort", "model.report.json", "required_operators.config", "target.json"]
    rep = json.loads((out / "target.json").read_text())
    assert (rep["schema"], rep["target"], rep["precision"], rep["input"]) == ("fcnedge.target", "ort-mobile", "fp32",
                                                                             [1, 3, 64, 96])  # fmt: skip
    assert set(rep["one_partition_on"]) >= {"nnapi", "coreml-nn", "coreml-mlprogram"}
    assert rep["worst_agreement_vs_reference"] >= 0.995 and rep["worst_agreement_vs_source_onnx"] == 1.0
    proto = onnx.load(str(out / "model.onnx"))
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 96]
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Pad", "Resize", "ConvTranspose", "Slice"} and "DepthToSpace" in ops
    assert all(a.s == b"DCR" for n in proto.graph.node if n.op_type == "DepthToSpace" for a in n.attribute
               if a.name == "mode")  # fmt: skip
    config = (out / "required_operators.config").read_text()
    assert "DepthToSpace" in config and "/tmp" not in config
    assert identify(str(out / "model.ort")).kind is SourceKind.ORT_FORMAT
    img = np.random.default_rng(4).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    ort_ids = open_predictor(out / "model.ort", tile=(64, 96)).predict(img)
    assert np.array_equal(ort_ids, open_predictor(out / "model.onnx", tile=(64, 96)).predict(img))
    cv2.imwrite(str(tmp_path / "a.png"), img[:, :, ::-1])
    pred = runner.invoke(app, ["predict", str(out / "model.ort"), str(tmp_path / "a.png"), "-o", str(tmp_path / "p")])
    assert pred.exit_code == 0, pred.output
    ov = runner.invoke(app, ["predict", str(out / "model.ort"), str(tmp_path / "a.png"), "-o", str(tmp_path / "q"),
                             "--provider", "openvino"])  # fmt: skip
    if ov.exit_code != 0:  # without OpenVINO installed the provider itself is what is missing
        assert "only ONNX Runtime runs" in _one_line(ov) or "OpenVINO" in ov.stderr
    again = runner.invoke(app, ["export", str(tiny8s_checkpoint), "--target", "ort-mobile", "-o", str(out)])
    assert "--force" in _one_line(again)
    # the ONNX tools cannot read ORT's format: one line naming the model.onnx beside it, never a protobuf traceback
    for cmd in (["targets", str(out / "model.ort")], ["convert", str(out / "model.ort"), "--target", "openvino",
                "-o", str(tmp_path / "ir")], ["quantize", str(out / "model.ort"), "-o", str(tmp_path / "q.onnx"),
                "--calib-data", str(tmp_path)]):  # fmt: skip
        assert "pass the model.onnx beside it" in _one_line(runner.invoke(app, cmd))
    tune = runner.invoke(app, ["tune", str(out / "model.ort"), "--dry-run", "--runs", "3", "--rounds", "1",
                               "--threads-list", "1", "--providers", "cpu", "--shape", "64x96"])  # fmt: skip
    assert tune.exit_code == 0 and "an .ort file is timed as it is" in tune.output, tune.output


def test_export_ort_mobile_int8_is_whole_on_nnapi(tiny8s_checkpoint: Path, calib_folder: Path, tmp_path: Path) -> None:
    """int8 QDQ: NNAPI takes it whole; ORT's CoreML EP has no Q/DQ, which target.json and the line say."""
    import onnx

    out = tmp_path / "mobile8"
    res = runner.invoke(app, ["export", str(tiny8s_checkpoint), "--target", "ort-mobile", "--shape", "64x96",
                              "--quantize", "int8", "--calib-data", str(calib_folder), "-o", str(out),
                              "--threads", "2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "target.json").read_text())
    assert rep["precision"] == "int8" and "nnapi" in rep["one_partition_on"] and "coreml" in rep
    assert rep["worst_agreement_vs_source_onnx"] >= 0.995
    assert "for CoreML export fp16" in res.output
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(out / "model.onnx")).graph.node)


def test_convert_to_ort_mobile_rewrites_a_convtranspose_and_refuses_a_resize(
    tiny8s_checkpoint: Path, tiny_onnx: tuple[Path, dict], tmp_path: Path
) -> None:
    resize_form, _ = tiny_onnx
    out = tmp_path / "m"
    err = _one_line(runner.invoke(app, ["convert", str(resize_form), "--target", "ort-mobile", "-o", str(out)]))
    assert "--target ort-mobile" in err and "Pad" in err and not out.exists()
    kept = tmp_path / "ct.onnx"
    exp = runner.invoke(app, ["export", str(tiny8s_checkpoint), "--shape", "64x96", "--rewrite-form", "convtranspose",
                              "-o", str(kept)])  # fmt: skip
    assert exp.exit_code == 0, exp.output
    res = runner.invoke(app, ["convert", str(kept), "--target", "ort-mobile", "--shape", "64x96", "-o", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "target.json").read_text())
    assert set(rep["one_partition_on"]) >= {"nnapi", "coreml-nn", "coreml-mlprogram"}
    assert rep["worst_agreement_vs_reference"] >= 0.995 and rep["reference"] == "the source ct.onnx"
    off = runner.invoke(app, ["convert", str(kept), "--target", "ort-mobile", "--shape", "63x96", "-o",
                              str(tmp_path / "off")])  # fmt: skip
    assert "off the stride" in _one_line(off) and not (tmp_path / "off").exists()


def test_tensorrt_without_cuda_is_one_line_and_writes_nothing(tiny8s_checkpoint: Path, tmp_path: Path) -> None:
    import onnxruntime as ort
    import pytest

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has TensorRT: the refusal does not apply")
    out = tmp_path / "trt"
    for cmd in (["export", str(tiny8s_checkpoint)], ["convert", "default"]):
        err = _one_line(runner.invoke(app, [*cmd, "--target", "tensorrt", "-o", str(out)]))
        assert "no TensorRT" in err and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_ort_mobile_proof_writes_nothing(tiny_onnx: tuple[Path, dict], tmp_path: Path) -> None:
    """The .ort file must match the reference (fp32) before anything appears at the output."""
    import numpy as np
    import onnx
    import pytest

    from fcnedge.errors import ParityError
    from fcnedge.exporters.ort_mobile import to_ort_mobile
    from fcnedge.exporters.rewrite import rewrite_upsampling
    from fcnedge.specs import RewriteForm

    proto = onnx.load(str(tiny_onnx[0]))
    rewrite_upsampling(proto)  # a model without ConvTranspose stays as it is
    src = tmp_path / "src.onnx"
    onnx.save(proto, str(src))

    class Wrong:
        def predict(self, img: np.ndarray) -> np.ndarray:
            return np.full(img.shape[:2], 3, np.uint8)

    frames = [np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)]
    with pytest.raises(ParityError, match="nothing written"):
        to_ort_mobile(src, tmp_path / "out", (64, 96), frames, Wrong(), threads=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.onnx"]
    assert RewriteForm.DENSE_DCR.value == "dense-dcr"
