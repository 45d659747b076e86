from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fcnedge.benchmarks.roofline import conv_model, model_gflop
from fcnedge.benchmarks.timing import LatencyStats
from fcnedge.cli import app

runner = CliRunner()


def test_latency_stats() -> None:
    s = LatencyStats.from_seconds([0.001 * i for i in range(1, 101)])
    assert s.p50 == pytest.approx(50.5) and s.p90 == pytest.approx(90.1) and s.runs == 100
    assert s.mean == pytest.approx(50.5)


def test_model_gflop_counts_convs(tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "c.onnx"
    onnx.save(conv_model(8, 16), str(path))
    assert model_gflop(path, (10, 20)) == pytest.approx(2 * 8 * 16 * 9 * 10 * 20 / 1e9)


def test_bench_checkpoint_variants_on_identical_inputs(tiny8s_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "bench"
    res = runner.invoke(
        app,
        [
            "bench",
            str(tiny8s_checkpoint),
            "--variants",
            "torch,fp32",
            "--shape",
            "64x96",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {"torch", "fp32"}
    assert rows["fp32"]["provider"] == "CPUExecutionProvider" and rows["torch"]["provider"] == "torch-cpu"
    for r in rows.values():
        assert r["shape"] == "64x96" and r["latency_ms"]["p50"] > 0 and r["throughput"] > 0
    # predict itself is timed, through the seam, in the same three stages for every row
    for r in rows.values():
        assert set(r["stages_ms"]) == {"preprocess", "inference", "postprocess"}
        stages = sum(v["mean"] for v in r["stages_ms"].values())
        assert stages == pytest.approx(r["latency_ms"]["mean"], rel=0.1)
    assert rows["fp32"]["argmax_agreement_vs_torch"] >= 0.9999
    assert rows["fp32"]["speedup_vs_torch"] == pytest.approx(
        rows["torch"]["latency_ms"]["p50"] / rows["fp32"]["latency_ms"]["p50"]
    )
    assert report["roofline"]["gflops"] > 0 and rows["fp32"]["gflop"] > 0
    assert report["machine"]["cores"] >= 1 and "onnxruntime" in report["machine"]["versions"]
    md = (out / "report.md").read_text()
    assert "| tiny8s | fp32 | CPUExecutionProvider | 64x96 |" in md
    assert (report["schema"], report["schema_version"]) == ("fcnedge.bench-report", 1)
    import csv

    lines = list(csv.DictReader((out / "report.csv").open()))  # the figures as CSV, one line per row
    assert [(c["variant"], float(c["p50_ms"])) for c in lines] == [
        (r["variant"], round(r["latency_ms"]["p50"], 3)) for r in report["rows"]
    ]
    assert all(c["cpu"] == report["machine"]["cpu"] for c in lines)
    # the cached export is reused on a second run
    cached = list((out / "cache").glob("*.onnx"))
    assert len(cached) == 1


def test_bench_onnx_file_with_accuracy(tiny_onnx: tuple[Path, dict], tmp_path: Path) -> None:
    import cv2
    import numpy as np

    path, _ = tiny_onnx
    data = tmp_path / "data"
    for sub in ("images", "masks"):
        (data / "val" / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(data / "val" / "images" / f"{i}.png"), rng.integers(0, 255, (70, 100, 3), dtype=np.uint8))
        cv2.imwrite(str(data / "val" / "masks" / f"{i}.png"), rng.integers(0, 4, (70, 100), dtype=np.uint8))
    out = tmp_path / "b"
    res = runner.invoke(
        app,
        [
            "bench",
            str(path),
            "--shape",
            "64x96",
            "--runs",
            "2",
            "--warmup",
            "1",
            "--data",
            str(data),
            "--format",
            "folder",
            "--no-roofline",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    row = json.loads((out / "report.json").read_text())["rows"][0]
    assert row["variant"] == "onnx" and row["eval_images"] == 3
    assert 0.0 <= row["miou"] <= 1.0 and len(row["per_class_iou"]) == 4
    assert (out / "latency_vs_miou.png").exists()


def test_bench_cuda_missing_exit_2(tmp_path: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is present")
    res = runner.invoke(app, ["bench", "--provider", "cuda", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "'cuda' is not available" in res.stderr
    assert not (tmp_path / "x").exists()


def test_miou_axis_shows_differences_without_cliffs() -> None:
    """At least 2 points wide (a 0.02-point drop is no cliff), narrow enough that a 0.2-point drop shows (issue
    26: on 10 points the bench's rows sat on one line)."""
    from fcnedge.benchmarks.report import miou_axis

    lo, hi = miou_axis([70.77, 70.75])
    assert hi - lo >= 2 and lo < 70.75 and hi > 70.77
    lo, hi = miou_axis([75.82, 75.59])
    assert 0.23 / (hi - lo) >= 0.1
    assert miou_axis([99.9])[1] <= 100 and miou_axis([0.5])[0] >= 0
    lo, hi = miou_axis([20.0, 60.0])
    assert lo <= 20 and hi >= 60


def test_openvino_reference_rows(tmp_path: Path, tiny8s_checkpoint: Path, calib_folder: Path) -> None:
    """OpenVINO rows: fcnedge's OpenVINO engine (--provider openvino, through the seam) on the same fp32 and int8
    files a user without fcnedge's fast forms would have, timed as predict runs them."""
    pytest.importorskip("openvino")
    from fcnedge.benchmarks.variants import openvino_bf16_available

    out = tmp_path / "b"
    args = ["bench", str(tiny8s_checkpoint), "--variants", "fp32,int8,openvino,openvino-int8", "--shape", "64x96"]
    args += [
        "--calib-data",
        str(calib_folder),
        "--calib-format",
        "images",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--no-roofline",
        "--out",
        str(out),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = {r["variant"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert set(rows) == {"fp32", "int8", "openvino", "openvino-int8"}
    # fcnedge's rows run the frozen final upsampling in the runtime; the plain-OpenVINO rows read the full graphs,
    # exported with the same recipe (what a user without fcnedge would run)
    assert "-int8-rt-" in rows["int8"]["onnx"] and "runtime" in rows["int8"]["note"]
    assert "-int8-" in rows["openvino-int8"]["onnx"] and "-rt-" not in rows["openvino-int8"]["onnx"]
    assert "-fp32-" in rows["openvino"]["onnx"] and "-rt-" not in rows["openvino"]["onnx"]
    assert rows["openvino"]["provider"].startswith("OpenVINO-CPU") and rows["openvino"]["provider"].endswith("(f32)")
    assert rows["openvino"]["argmax_agreement_vs_torch"] > 0.999
    assert rows["openvino-int8"]["argmax_agreement_vs_torch"] > 0.8
    if not openvino_bf16_available():
        res = runner.invoke(
            app, ["bench", str(tiny8s_checkpoint), "--variants", "openvino-bf16", "--out", str(out / "x")]
        )
        assert res.exit_code == 2 and "AVX512-BF16 or AMX" in res.stderr
        assert not (out / "x").exists()


def test_bench_times_what_predict_does_at_an_inference_scale(tiny8s_checkpoint: Path, tmp_path: Path) -> None:
    """--scale 1.5 on 64x96 images: the model takes 96x160 (96x144 padded to 32), every row times the resize in
    and out, parity with PyTorch holds on that input, and the roofline counts the model's real input."""
    pytest.importorskip("torch")
    out = tmp_path / "bench"
    res = runner.invoke(
        app,
        ["bench", str(tiny8s_checkpoint), "--variants", "torch,fp32", "--shape", "64x96", "--scale", "1.5",
         "--runs", "3", "--warmup", "1", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["scale"] == 1.5
    for r in report["rows"]:
        assert r["shape"] == "64x96" and r["scale"] == 1.5 and r["model_input"] == "96x160"
        assert set(r["stages_ms"]) == {"preprocess", "inference", "postprocess"}
    fp32 = next(r for r in report["rows"] if r["variant"] == "fp32")
    assert fp32["argmax_agreement_vs_torch"] >= 0.999
    import onnx  # noqa: F401  (model_gflop needs it, like the roofline)

    at_input, at_image = model_gflop(Path(fp32["onnx"]), (96, 160)), model_gflop(Path(fp32["onnx"]), (64, 96))
    assert fp32["gflop"] == pytest.approx(at_input, abs=5e-4)  # the report rounds to 3 decimals
    assert fp32["gflop"] != pytest.approx(at_image, abs=5e-4)
    res = runner.invoke(app, ["bench", str(tiny8s_checkpoint), "--scale", "9", "--out", str(tmp_path / "b2")])
    assert res.exit_code == 2 and "--scale 9.0 is invalid" in res.output


def test_bench_onnx_file_uses_its_meta_scale(tmp_path: Path) -> None:
    from helpers import make_identity_onnx

    path = make_identity_onnx(tmp_path / "s.onnx", scale=1.25, tile=(96, 128))
    out = tmp_path / "b"
    res = runner.invoke(
        app,
        ["bench", str(path), "--shape", "64x96", "--runs", "2", "--warmup", "1", "--no-roofline", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    row = json.loads((out / "report.json").read_text())["rows"][0]
    assert row["scale"] == 1.25 and row["model_input"] == "96x128"  # 80x120 padded to 32
    assert row["stages_ms"]["postprocess"]["p50"] > 0  # resizing the logits back and the argmax


def test_a_shape_off_the_stride_is_padded_as_predict_pads_it(identity_onnx: Path, tmp_path: Path) -> None:
    """--shape is the image; the model takes it padded to 32 (its help says so): 72x100 runs as one 96x128 tile."""
    res = CliRunner().invoke(
        app, ["bench", str(identity_onnx), "--shape", "72x100", "--runs", "2", "--warmup", "1", "--no-roofline",
              "--out", str(tmp_path / "b")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "b" / "report.json").read_text())["rows"]
    assert rows and rows[0]["shape"] == "72x100"


def test_batch_times_one_predict_call_holding_n_tiles(identity_onnx: Path, tmp_path: Path) -> None:
    """--batch 3: one predict call on three frames side by side, which the predictor runs as one engine call of
    three tiles; throughput counts three images per call."""
    res = CliRunner().invoke(
        app, ["bench", str(identity_onnx), "--shape", "64x96", "--batch", "3", "--runs", "2", "--warmup", "1",
              "--no-roofline", "--out", str(tmp_path / "b")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / "b" / "report.json").read_text())["rows"][0]
    assert row["batch"] == 3
    assert row["throughput"] == pytest.approx(3e3 / row["latency_ms"]["mean"])
