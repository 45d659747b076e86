from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.cli import app

runner = CliRunner()


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (70, 90), "b.jpg": (130, 200), "c.png": (5, 7)}.items():
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"")
    return folder


def test_predict_folder_writes_ids_overlays_probs_and_lists_failures(
    identity_onnx: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "predict",
            str(identity_onnx),
            str(images),
            "-o",
            str(out),
            "--tile",
            "64x96",
            "--save-overlay",
            "--save-probs",
        ],
    )
    assert res.exit_code == 2  # one input failed; the others are still written
    assert "broken.png" in res.stderr and "empty" in res.stderr
    assert "wrote 3 of 4 predictions" in res.stdout
    ids = cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED)
    img = cv2.imread(str(images / "b.jpg"))[:, :, ::-1]
    assert ids.shape == (130, 200) and ids.dtype == np.uint8
    mean, std = np.array([0.5, 0.4, 0.3]), np.array([0.2, 0.25, 0.3])
    expected = ((img / 255.0 - mean) / std).argmax(-1)
    assert (ids == expected).mean() > 0.999
    assert (out / "b.overlay.png").exists()
    probs = np.load(out / "a.probs.npy")
    assert probs.shape == (3, 70, 90) and np.allclose(probs.sum(0), 1, atol=1e-2)
    assert not list(out.glob(".*"))  # no temp files left
    res = runner.invoke(app, ["predict", str(identity_onnx), str(images / "a.png"), "-o", str(out)])
    assert res.exit_code == 2 and "--force" in res.stderr


def test_predict_glob_and_bad_inputs(identity_onnx: Path, images: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["predict", str(identity_onnx), str(images / "*.png"), "-o", str(tmp_path / "g")])
    assert "wrote 2 of 3" in res.stdout  # a.png, c.png; broken.png fails
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["predict", str(identity_onnx), str(empty), "-o", str(tmp_path / "e")])
    assert res.exit_code == 2 and "holds no images" in res.stderr
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"\x08\x01garbage")
    res = runner.invoke(app, ["predict", str(bad_model), str(images / "a.png"), "-o", str(tmp_path / "m")])
    assert res.exit_code == 2 and "not a loadable ONNX model" in res.stderr
    res = runner.invoke(app, ["predict", str(identity_onnx), str(images / "a.png"), "--tile", "70x96"])
    assert res.exit_code == 2 and "multiple of the model stride" in res.stderr


def test_info_reads_onnx_meta(tiny_onnx: tuple[Path, dict]) -> None:
    path, _ = tiny_onnx
    res = runner.invoke(app, ["info", str(path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["meta"]["arch"] == "fcn_tiny" and data["kind"] == "onnx"
    assert "image" in data["input"] and "logits" in data["output"]


def test_export_cli_bad_inputs(tiny8s_checkpoint: Path, tiny_onnx: tuple[Path, dict], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    existing, _ = tiny_onnx
    cases = [
        (["export", str(tiny8s_checkpoint), "-o", str(existing)], "exists: pass --force"),
        (
            ["export", str(tiny8s_checkpoint), "-o", str(tmp_path / "x.onnx"), "--opset", "7"],
            "opset 7 is not supported",
        ),
        (["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "y.onnx")], "does not exist"),
        (["export", str(tiny8s_checkpoint), "-o", str(tmp_path / "nodir" / "z.onnx")], "does not exist: create it"),
        (
            [
                "export",
                str(tiny8s_checkpoint),
                "-o",
                str(tmp_path / "q.onnx"),
                "--quantize",
                "int8",
                "--calib-data",
                str(tmp_path),
                "--calib-format",
                "images",
            ],
            "holds no images",
        ),
        (["export", "fcn_resnet18", "-o", str(tmp_path / "r.onnx")], "needs --num-classes"),
    ]
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 truncated")
    cases.append((["export", str(junk), "-o", str(tmp_path / "j.onnx")], "corrupt or truncated"))
    for args, msg in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in res.stderr, (msg, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.onnx"))


def test_export_and_quantize_cli(tiny8s_checkpoint: Path, calib_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "m.onnx"
    res = runner.invoke(app, ["export", str(tiny8s_checkpoint), "-o", str(out), "--shape", "64x96"])
    assert res.exit_code == 0, res.output
    assert "parity_fp32 64x96" in res.stdout
    q = tmp_path / "m.int8.onnx"
    res = runner.invoke(
        app,
        [
            "quantize",
            str(out),
            "-o",
            str(q),
            "--calib-data",
            str(calib_folder),
            "--calib-format",
            "images",
            "--calib-count",
            "4",
            "--shape",
            "64x96",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["info", str(q), "--json"])
    assert json.loads(res.stdout)["meta"]["provenance"]["quantize"] == "int8"


def test_bench_runtime_reports_overhead_and_batching(identity_onnx: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "bench-runtime",
            str(identity_onnx),
            "--tile",
            "64x96",
            "--size",
            "200x300",
            "--runs",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "runtime.json").read_text())
    assert rep["whole_image"][0]["windows"] == 1
    assert {r["batch"] for r in rep["batching"]} == {1, 4, 8}
    assert rep["large"][0]["peak_rss_mb"] > 0 and rep["large"][0]["windows"] > 1


def test_predict_model_without_meta_needs_num_classes(tmp_path: Path) -> None:
    from helpers import make_identity_onnx

    model = make_identity_onnx(tmp_path / "plain.onnx", with_meta=False)
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((40, 60, 3), np.uint8))
    res = runner.invoke(app, ["predict", str(model), str(img), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--num-classes" in res.stderr
    res = runner.invoke(
        app,
        [
            "predict",
            str(model),
            str(img),
            "-o",
            str(tmp_path / "o"),
            "--num-classes",
            "3",
            "--mean",
            "0,0,0",
            "--std",
            "1,1,1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "o" / "a.png"), cv2.IMREAD_UNCHANGED).shape == (40, 60)


def test_color_masks_and_a_legend_on_overlays(tmp_path: Path, identity_onnx: Path) -> None:
    """--save-color writes the ids in the model's palette; overlays carry a legend (a dark box, top-right) of the
    classes present."""
    from fcnedge.data.synthetic import synthetic_images
    from fcnedge.runtime import open_predictor
    from fcnedge.runtime.colors import palette_bgr

    img = synthetic_images([(120, 200)], seed=7)[0]
    cv2.imwrite(str(tmp_path / "a.png"), img[:, :, ::-1])
    res = CliRunner().invoke(
        app,
        [
            "predict",
            str(identity_onnx),
            str(tmp_path / "a.png"),
            "-o",
            str(tmp_path / "o"),
            "--save-color",
            "--save-overlay",
        ],
    )
    assert res.exit_code == 0, res.output
    ids = cv2.imread(str(tmp_path / "o" / "a.png"), cv2.IMREAD_UNCHANGED)
    color = cv2.imread(str(tmp_path / "o" / "a.color.png"), cv2.IMREAD_COLOR)
    lut = palette_bgr(open_predictor(identity_onnx).meta.palette)
    np.testing.assert_array_equal(color, lut[ids, 0])
    overlay = cv2.imread(str(tmp_path / "o" / "a.overlay.png"), cv2.IMREAD_COLOR)
    assert overlay.shape == (120, 200, 3)
    assert (overlay[6, -8] == 0).all()  # the legend's backdrop, top-right
