"""Shared fixtures: tiny seeded models saved/exported once per session, CamVid when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import make_identity_onnx

CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "camvid"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def camvid() -> Path:
    if not (CAMVID / "val").is_dir():
        pytest.skip(f"CamVid not present at {CAMVID}")
    return CAMVID


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded tiny FCN-32s checkpoint with K=5, weights perturbed so logits are not trivial."""
    torch = pytest.importorskip("torch")
    from fcnedge.models import build, default_meta, save_checkpoint

    torch.manual_seed(0)
    model = build("fcn_tiny", num_classes=5)
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, default_meta("fcn_tiny", num_classes=5))
    return path


@pytest.fixture(scope="session")
def tiny8s_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded tiny FCN-8s checkpoint (frozen bilinear upsampling) with K=4 and nonzero skip scores."""
    torch = pytest.importorskip("torch")
    from fcnedge.models import build, default_meta, save_checkpoint

    torch.manual_seed(1)
    model = build("fcn_tiny", num_classes=4, head="8s", freeze_upsampling=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("score8", "score16")):
                p.normal_(0, 0.2)
    model.eval()
    path = tmp_path_factory.mktemp("ckpt8") / "tiny8s.pt"
    save_checkpoint(path, model, default_meta("fcn_tiny", num_classes=4, head="8s", freeze_upsampling=True))
    return path


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def identity_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_identity_onnx(tmp_path_factory.mktemp("id") / "identity.onnx")


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory, tiny8s_checkpoint: Path) -> tuple[Path, dict]:
    """The tiny FCN-8s exported once (simplified, rewritten, verified) with its ExportReport."""
    pytest.importorskip("torch")
    from fcnedge.exporters.pipeline import run
    from fcnedge.models import load_checkpoint
    from fcnedge.specs import ExportSpec

    model, meta = load_checkpoint(tiny8s_checkpoint)
    out = tmp_path_factory.mktemp("onnx") / "tiny8s.onnx"
    report = run(ExportSpec(output=out, export_shape=(64, 96), rewrite_form="resize"), model, meta, threads=2)
    return out, report


@pytest.fixture(scope="session")
def calib_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight generated 'photos' in a plain folder, for int8 calibration."""
    import cv2

    from fcnedge.data.synthetic import synthetic_images

    folder = tmp_path_factory.mktemp("calib")
    for i, img in enumerate(synthetic_images([(64, 96)] * 8, seed=5)):
        cv2.imwrite(str(folder / f"img{i}.png"), img[:, :, ::-1])
    return folder


@pytest.fixture(scope="session")
def lite_int8_onnx(tmp_path_factory: pytest.TempPathFactory, tiny8s_checkpoint: Path, calib_folder: Path) -> Path:
    """The tiny FCN-8s with Lite0's normalisation ((x - 127) / 128: one affine map, a whole zero point), int8 QDQ
    with every conv quantised: a model whose input QuantizeLinear the uint8 dequantize form can drop."""
    pytest.importorskip("torch")
    from dataclasses import replace

    from fcnedge.exporters.pipeline import run
    from fcnedge.meta import LITE_MEAN, LITE_STD
    from fcnedge.models import load_checkpoint
    from fcnedge.specs import ExportSpec, Quantize, QuantSpec

    model, meta = load_checkpoint(tiny8s_checkpoint)
    q = QuantSpec(calib_data=calib_folder, calib_format="images", calib_count=8, calib_shape=(64, 96))
    out = tmp_path_factory.mktemp("lite8") / "lite_int8.onnx"
    spec = ExportSpec(output=out, export_shape=(64, 96), quantize=Quantize.INT8, quant=q, rewrite_form="resize")
    run(spec, model, replace(meta, mean=LITE_MEAN, std=LITE_STD), threads=2)
    return out
