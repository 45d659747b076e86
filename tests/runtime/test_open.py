"""The one seam: open_predictor applies every option, fits fixed-size models, and is safe to share by threads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import make_identity_onnx, write_folder_dataset, write_video
from typer.testing import CliRunner

from fcnedge.cli import app
from fcnedge.errors import ConfigError, ProviderUnavailableError
from fcnedge.runtime import open_predictor
from fcnedge.specs import Blend

runner = CliRunner()


def test_every_option_reaches_the_predictor(identity_onnx: Path) -> None:
    pred = open_predictor(identity_onnx, threads=1, tile=(64, 96), overlap=0.5, blend="hann", batch=2)
    assert pred.spec.size == (64, 96) and pred.spec.overlap == 0.5 and pred.spec.blend is Blend.HANN
    assert pred.batch == 2 and pred.threads == 1 and pred.provider == "CPUExecutionProvider"
    assert pred.session.spec.threads == 1
    with pytest.raises(ProviderUnavailableError, match="not available"):
        open_predictor(identity_onnx, providers="cuda")
    with pytest.raises(ConfigError, match="--threads"):
        open_predictor(identity_onnx, threads=-1)
    with pytest.raises(ConfigError, match="blend"):
        open_predictor(identity_onnx, blend="foo")


@pytest.fixture(scope="module")
def fixed_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_identity_onnx(tmp_path_factory.mktemp("fixed") / "fixed.onnx", fixed_hw=(64, 96))


def test_fixed_size_model_tiles_any_image(fixed_onnx: Path, rng: np.random.Generator) -> None:
    pred = open_predictor(fixed_onnx)
    assert pred.spec.size == (64, 96) and pred.fixed
    for shape in ((64, 96), (100, 130), (40, 50), (30, 200)):  # bigger, smaller, mixed: all padded to 64x96 tiles
        img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        ids = pred.predict(img)
        norm = (img / 255.0 - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.25, 0.3])
        np.testing.assert_array_equal(ids, norm.argmax(2))
    with pytest.raises(ConfigError, match="accepts only 64x96"):
        open_predictor(fixed_onnx, tile=(96, 96))


def test_demo_and_eval_run_a_fixed_size_model(fixed_onnx: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", frames=5)
    res = runner.invoke(app, ["demo", str(fixed_onnx), "--source", str(video), "--headless", "--max-frames", "4"])
    assert res.exit_code == 0, res.output
    assert "4 frames" in res.stdout
    data = write_folder_dataset(tmp_path / "d", classes=3, shapes=[(70, 100), (64, 96)])
    res = runner.invoke(app, ["eval", str(fixed_onnx), "--data", str(data), "--format", "folder", "--json"])
    assert res.exit_code == 0, res.output
    assert '"images": 2' in res.stdout


def test_one_predictor_shared_by_threads_matches_a_sequential_run() -> None:
    """4 threads x 20 calls on one predictor (the bundled int8 model), images of different sizes (single- and
    multi-tile, padded): bit for bit equal to a sequential run. Shared input buffers failed this."""
    from fcnedge.data.synthetic import synthetic_images

    pred = open_predictor(tile=(160, 224), threads=1, batch=2)
    shapes = [(160, 224), (260, 300), (100, 130), (200, 150), (90, 500)]
    images = synthetic_images(shapes * 4, seed=11)
    expected_ids = [pred.predict(img) for img in images]
    expected_logits = [pred.logits(img) for img in images]
    got: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                k = (t * 7 + i) % len(images)
                got[(t, i)] = (pred.predict(images[k]), pred.logits(images[k]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(got) == 80
    for (t, i), (ids, logits) in got.items():
        k = (t * 7 + i) % len(images)
        np.testing.assert_array_equal(ids, expected_ids[k])
        np.testing.assert_array_equal(logits, expected_logits[k])
    assert pred.stats["windows"] > 0
