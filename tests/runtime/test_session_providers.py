from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from helpers import make_identity_onnx
from typer.testing import CliRunner

from fcnedge.errors import ConfigError, ModelMetaError, ProviderUnavailableError
from fcnedge.runtime.predictor import TiledPredictor, fit_tile_to_model
from fcnedge.runtime.providers import parse_providers, provider_options
from fcnedge.runtime.session import Session
from fcnedge.specs import Provider, ProviderSpec, TileSpec


def test_parse_provider_lists() -> None:
    assert parse_providers("tensorrt, cuda,cpu") == (Provider.TENSORRT, Provider.CUDA, Provider.CPU)
    with pytest.raises(ConfigError, match="unknown: choose from cpu, cuda"):
        parse_providers("tpu")


def test_cuda_options_use_heuristic_search() -> None:
    opts = provider_options(Provider.CUDA, ProviderSpec())
    assert opts["cudnn_conv_algo_search"] == "HEURISTIC"
    trt = provider_options(
        Provider.TENSORRT, ProviderSpec(trt_cache=Path("/tmp/c")), tile=(320, 480), input_name="pixels"
    )
    assert trt["trt_profile_opt_shapes"] == "pixels:1x3x320x480" and trt["trt_fp16_enable"]


@pytest.mark.skipif(
    "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(), reason="CUDA is present"
)
def test_missing_cuda_is_an_error_and_fallback_says_so(identity_onnx: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = ProviderSpec(providers=(Provider.CUDA,))
    with pytest.raises(ProviderUnavailableError, match=r"'cuda' is not available .*available: .*CPUExecutionProvider"):
        Session(identity_onnx, spec)
    with caplog.at_level(logging.WARNING):
        sess = Session(identity_onnx, ProviderSpec(providers=(Provider.CUDA,), allow_fallback=True))
    assert sess.provider == "CPUExecutionProvider"
    assert "falling back" in caplog.text or "running on CPUExecutionProvider" in caplog.text


def test_names_and_meta_come_from_the_graph(identity_onnx: Path) -> None:
    sess = Session(identity_onnx)
    assert (sess.input_name, sess.output_name) == ("pixels", "scores")
    assert sess.meta.num_classes == 3 and sess.fixed_hw is None
    out = sess.run(np.zeros((2, 3, 32, 64), np.float32))
    assert out.shape == (2, 3, 32, 64)


def test_bad_model_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelMetaError, match="empty"):
        Session(empty)
    junk = tmp_path / "j.onnx"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelMetaError, match="not a loadable ONNX model"):
        Session(junk)
    no_meta = make_identity_onnx(tmp_path / "nometa.onnx", with_meta=False)
    with pytest.raises(ModelMetaError, match=r"no fcnedge metadata.*--num-classes"):
        Session(no_meta)


def test_fixed_size_models_tile_to_their_size(tmp_path: Path) -> None:
    path = make_identity_onnx(tmp_path / "fixed.onnx", fixed_hw=(64, 64))
    sess = Session(path)
    assert sess.fixed_hw == (64, 64)
    spec = fit_tile_to_model(None, sess.fixed_hw, explicit=False)
    assert spec.size == (64, 64)
    with pytest.raises(ConfigError, match="accepts only 64x64 inputs"):
        fit_tile_to_model(TileSpec(size=(96, 96)), sess.fixed_hw, explicit=True)
    out = TiledPredictor(sess.run, sess.meta, spec).logits(np.zeros((100, 130, 3), np.uint8))
    assert out.shape == (3, 100, 130)


def test_predict_cli_cuda_exit_2_and_fallback(identity_onnx: Path, tmp_path: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is present")
    import cv2

    from fcnedge.cli import app

    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((40, 50, 3), np.uint8))
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(identity_onnx), str(img), "-o", str(tmp_path / "o"), "--provider", "cuda"])
    assert res.exit_code == 2
    assert "'cuda' is not available" in res.stderr and "pip install onnxruntime-gpu==1.31.1" in res.stderr
    res = runner.invoke(
        app,
        ["predict", str(identity_onnx), str(img), "-o", str(tmp_path / "o2"), "--provider", "cuda", "--allow-fallback"],
    )
    assert res.exit_code == 0, res.output
    assert "CPUExecutionProvider" in res.output
    assert (tmp_path / "o2" / "a.png").exists()


def test_two_onnxruntime_wheels_are_named_with_the_fix(
    tmp_path: Path, identity_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip install of onnxruntime-gpu beside onnxruntime: both write the onnxruntime folder and the CPU build
    wins. A real second distribution's metadata on sys.path reproduces what pip leaves behind."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is present")
    dist = tmp_path / "site" / "onnxruntime_gpu-1.31.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.31.1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    from fcnedge.runtime import open_predictor

    with pytest.raises(ProviderUnavailableError) as err:
        open_predictor(identity_onnx, providers="cuda")
    msg = str(err.value)
    assert "onnxruntime-gpu 1.31.1" in msg and "installed together" in msg
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu==1.31.1" in msg
