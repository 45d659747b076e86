"""--uint8-input: the model takes pixels and normalises them itself; same class ids as the float-input model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from fcnedge.data.synthetic import synthetic_images  # noqa: E402
from fcnedge.exporters.uint8_input import to_uint8_input  # noqa: E402
from fcnedge.runtime import open_predictor  # noqa: E402
from fcnedge.runtime.session import read_onnx_meta  # noqa: E402


def test_dequantize_form_on_a_lite_normalised_int8_gives_the_same_logits(tmp_path: Path, lite_int8_onnx: Path) -> None:
    """Lite0's (x - 127) / 128 is one affine map with a whole zero point: the input QuantizeLinear goes, the
    DequantizeLinear reads the pixels; tiles that need padding (mean pixel vs 0) included."""
    src = lite_int8_onnx
    meta, _ = read_onnx_meta(src)
    assert meta is not None
    proto = onnx.load(str(src))
    n_q = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    facts = to_uint8_input(proto, meta)
    assert facts["form"] == "dequantize" and facts["zero_point"] == 127
    assert sum(n.op_type == "QuantizeLinear" for n in proto.graph.node) == n_q - 1
    dst = tmp_path / "u8.onnx"
    onnx.save(proto, str(dst))
    ref, u8 = open_predictor(src, threads=2), open_predictor(dst, threads=2)
    assert u8.input_dtype == np.uint8 and ref.input_dtype == np.float32
    for img in synthetic_images([(360, 480), (200, 300)], seed=1):  # several tiles; one padded tile
        np.testing.assert_allclose(u8.logits(img), ref.logits(img), rtol=1e-5, atol=1e-4)
        assert np.array_equal(u8.predict(img), ref.predict(img))


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_export_uint8_input_cast_form(
    tmp_path: Path, tiny8s_checkpoint: Path, calib_folder: Path, quantize: str
) -> None:
    """ImageNet mean/std differ per channel: Cast -> Sub -> Mul in front; the export proves the ids agree."""
    pytest.importorskip("torch")
    from fcnedge.exporters.pipeline import run
    from fcnedge.models import load_checkpoint
    from fcnedge.specs import ExportSpec, QuantSpec

    model, meta = load_checkpoint(tiny8s_checkpoint)
    q = QuantSpec(calib_data=calib_folder, calib_format="images", calib_count=8, calib_shape=(64, 96))
    out = tmp_path / "u8.onnx"
    spec = ExportSpec(output=out, export_shape=(64, 96), quantize=quantize, quant=q, uint8_input=True)
    rep = run(spec, model, meta, threads=2)
    assert rep.uint8_input["form"] == "cast"
    assert all(r["argmax_agreement"] >= 0.999 for r in rep.uint8_input["parity"])
    proto = onnx.load(str(out))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    pred = open_predictor(out, threads=2)
    img = synthetic_images([(70, 100)], seed=4)[0]
    assert pred.predict(img).shape == (70, 100)


def test_openvino_engine_runs_a_uint8_input_model(tmp_path: Path, lite_int8_onnx: Path) -> None:
    pytest.importorskip("openvino")
    src = lite_int8_onnx
    meta, _ = read_onnx_meta(src)
    assert meta is not None
    proto = onnx.load(str(src))
    to_uint8_input(proto, meta)
    dst = tmp_path / "u8.onnx"
    onnx.save(proto, str(dst))
    img = synthetic_images([(320, 480)], seed=2)[0]
    u8 = open_predictor(dst, providers="openvino", threads=2).logits(img)
    ref = open_predictor(src, providers="openvino", threads=2).logits(img)  # the same engine on the float-input file
    np.testing.assert_allclose(u8, ref, rtol=1e-5, atol=1e-4)
