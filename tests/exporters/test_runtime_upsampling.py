"""--runtime-upsampling: the model ends at stride s and the runtime's OpenCV interpolation is the same function as
the bilinear transposed conv it replaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from fcnedge.data.synthetic import synthetic_images  # noqa: E402
from fcnedge.errors import ExportError  # noqa: E402
from fcnedge.exporters.pipeline import run  # noqa: E402
from fcnedge.models import bilinear_kernel, build, default_meta, load_checkpoint  # noqa: E402
from fcnedge.runtime import open_predictor  # noqa: E402
from fcnedge.runtime.upsample import upsample_bilinear  # noqa: E402
from fcnedge.specs import ExportSpec, Quantize, QuantSpec  # noqa: E402


@pytest.mark.parametrize("s", [2, 8, 32])
def test_opencv_interpolation_is_the_bilinear_transposed_conv(s: int) -> None:
    k = 3
    x = torch.randn(2, k, 5, 7)
    ref = torch.nn.functional.conv_transpose2d(x, bilinear_kernel(k, 2 * s), stride=s, padding=s // 2)
    got = upsample_bilinear(x.numpy(), s)
    assert got.shape == tuple(ref.shape)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_export_moves_the_final_upsampling_and_stays_exact(tmp_path: Path, tiny8s_checkpoint: Path) -> None:
    model, meta = load_checkpoint(tiny8s_checkpoint)
    cut, full = tmp_path / "cut.onnx", tmp_path / "full.onnx"
    rep = run(ExportSpec(output=cut, export_shape=(64, 96), runtime_upsampling=True), model, meta, threads=2)
    run(ExportSpec(output=full, export_shape=(64, 96)), model, meta, threads=2)
    assert rep.runtime_upsampling["stride"] == 8
    proto = onnx.load(str(cut))
    dims = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert dims[2:] == ["H/8", "W/8"]
    assert all(r["rel_diff"] <= 1e-4 and r["argmax_agreement"] >= 0.9999 for r in rep.parity_fp32)
    a, b = open_predictor(cut), open_predictor(full)
    assert a.session.upsample_stride == 8 and b.session.upsample_stride == 1
    assert a.ids_runner is not None and b.ids_runner is None  # one tile: ids straight from the stride-8 logits
    for img in synthetic_images([(64, 96), (131, 203), (40, 50)], seed=2):
        np.testing.assert_allclose(a.logits(img), b.logits(img), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(a.predict(img), b.predict(img))


def test_int8_keeps_the_runtime_upsampling(tmp_path: Path, tiny8s_checkpoint: Path, calib_folder: Path) -> None:
    model, meta = load_checkpoint(tiny8s_checkpoint)
    q = QuantSpec(calib_data=calib_folder, calib_format="images", calib_count=4, calib_shape=(64, 96))
    out = tmp_path / "q.onnx"
    spec = ExportSpec(output=out, export_shape=(64, 96), quantize=Quantize.INT8, quant=q, runtime_upsampling=True)
    rep = run(spec, model, meta, threads=2)
    assert all(r["argmax_agreement"] > 0.8 for r in rep.parity_int8)
    pred = open_predictor(out)
    assert pred.session.upsample_stride == 8
    assert pred.predict(synthetic_images([(70, 100)])[0]).shape == (70, 100)


def test_a_trained_upsampling_cannot_move(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build("fcn_tiny", num_classes=3)  # 32s, trainable upsampling, perturbed away from bilinear
    with torch.no_grad():
        model.upsample.weight.add_(0.01 * torch.randn_like(model.upsample.weight))
    with pytest.raises(ExportError, match="--freeze-upsampling"):
        run(ExportSpec(output=tmp_path / "t.onnx", export_shape=(64, 96), runtime_upsampling=True), model,
            default_meta("fcn_tiny", num_classes=3))  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_ids_output_gives_the_same_ids_without_the_logits(tmp_path: Path, tiny8s_checkpoint: Path) -> None:
    model, meta = load_checkpoint(tiny8s_checkpoint)
    ids_model, plain = tmp_path / "ids.onnx", tmp_path / "plain.onnx"
    run(ExportSpec(output=ids_model, export_shape=(64, 96), ids_output=True), model, meta, threads=2)
    run(ExportSpec(output=plain, export_shape=(64, 96)), model, meta, threads=2)
    proto = onnx.load(str(ids_model))
    assert [o.name for o in proto.graph.output] == ["logits", "ids"]
    a, b = open_predictor(ids_model), open_predictor(plain)
    assert a.ids_runner is not None and b.ids_runner is None
    for img in synthetic_images([(64, 96), (50, 70), (131, 203)], seed=4):  # one tile, padded, several tiles
        np.testing.assert_array_equal(a.predict(img), b.predict(img))
        np.testing.assert_allclose(a.logits(img), b.logits(img), rtol=1e-5, atol=1e-6)


def test_ids_output_survives_int8_and_refuses_runtime_upsampling(
    tmp_path: Path, tiny8s_checkpoint: Path, calib_folder: Path
) -> None:
    from fcnedge.errors import ConfigError

    model, meta = load_checkpoint(tiny8s_checkpoint)
    q = QuantSpec(calib_data=calib_folder, calib_format="images", calib_count=4, calib_shape=(64, 96))
    out = tmp_path / "q.onnx"
    rep = run(ExportSpec(output=out, export_shape=(64, 96), quantize=Quantize.INT8, quant=q, ids_output=True),
              model, meta, threads=2)  # fmt: skip
    assert {"fcnedge/ids/ArgMax", "fcnedge/ids/Cast"} <= set(rep.int8["excluded_nodes"])
    pred = open_predictor(out)
    img = synthetic_images([(64, 96)], seed=5)[0]
    from fcnedge.runtime.postprocess import argmax_ids

    np.testing.assert_array_equal(pred.predict(img), argmax_ids(pred.logits(img)))
    with pytest.raises(ConfigError, match="exclude each other"):
        ExportSpec(output=tmp_path / "x.onnx", ids_output=True, runtime_upsampling=True)
