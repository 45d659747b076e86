"""The bad-input catalogue: each case gives the right answer, or one line on stderr, exit code 2 and nothing
partial left behind. One parametrised case per row; each checks the exit code, that stderr is a single line
without a traceback, and the output folder afterwards."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import make_identity_onnx, write_folder_dataset, write_video
from typer.testing import CliRunner

from fcnedge.catalog import get_weights
from fcnedge.cli import app
from fcnedge.data.synthetic import synthetic_images

runner = CliRunner()


SPLITS = ("train", "val")


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    message: str  # a fragment the one stderr line must hold
    needs_torch: bool = False
    setup: Callable[[Path], None] | None = None


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Path:
    """Inputs every case may use: images, a video, a labelled folder, an identity model, bad checkpoints."""
    root = tmp_path_factory.mktemp("catalogue")
    for i, img in enumerate(synthetic_images([(70, 90), (64, 96)], seed=3)):
        cv2.imwrite(str(root / f"img{i}.png"), img[:, :, ::-1])
    (root / "text.jpg").write_text("not an image")
    (root / "a.png").write_bytes((root / "img0.png").read_bytes())
    (root / "a.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((40, 50, 3), np.uint8))[1].tobytes())
    (root / "afile").write_text("x")
    write_video(root / "v.mp4", frames=4)
    write_folder_dataset(root / "data", classes=3, shapes=[(64, 96)])
    make_identity_onnx(root / "id.onnx")
    (root / "junk.onnx").write_bytes(b"hello, not a model")
    shutil.copy(tiny_checkpoint, root / "tiny.pt")
    return root


def _nan_checkpoint(root: Path) -> None:
    import torch

    from fcnedge.models import build, default_meta, save_checkpoint

    model = build("fcn_tiny", num_classes=3)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_checkpoint(root / "nan.pt", model, default_meta("fcn_tiny", num_classes=3), force=True)


def _random_block_checkpoint(root: Path) -> None:
    data = bytearray((root / "tiny.pt").read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (root / "rand.pt").write_bytes(bytes(data[: len(data)]))


def _fp16_model(root: Path) -> None:
    from fcnedge.exporters.pipeline import run
    from fcnedge.models import load_checkpoint
    from fcnedge.specs import ExportSpec, Quantize

    if not (root / "fp16.onnx").exists():
        model, meta = load_checkpoint(root / "tiny.pt")
        run(ExportSpec(output=root / "fp16.onnx", export_shape=(64, 96), quantize=Quantize.FP16), model, meta)
        (root / "fp16.report.json").unlink()


def _existing(name: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("keep me")

    return make


def _fifo(root: Path) -> None:
    if not (root / "pipe").exists():
        os.mkfifo(root / "pipe")


def _model_named_folder(root: Path) -> None:
    (root / "x.onnx").mkdir(exist_ok=True)


def _empty_list(root: Path) -> None:
    (root / "empty.txt").write_text("# nothing yet\n")


def _two_inputs(root: Path) -> None:
    import onnx

    m = onnx.load(str(root / "id.onnx"))
    m.graph.input.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"]))
    onnx.save(m, str(root / "two_in.onnx"))


def _fixed(root: Path) -> None:
    if not (root / "fixed.onnx").exists():
        make_identity_onnx(root / "fixed.onnx", fixed_hw=(128, 128))


LONG = "n" * 300


CASES = [
    # predict
    Case("predict -o is a file", ["predict", "id.onnx", "img0.png", "-o", "afile"], "is a file, not a folder"),
    Case("predict same stems", ["predict", "id.onnx", "a.png", "a.jpg", "-o", "o"], "would both write a.png"),
    Case("predict K mismatch", ["predict", "id.onnx", "img0.png", "-o", "o", "--num-classes", "4"], "says 4 classes"),
    Case(
        "predict std 0",
        ["predict", "id.onnx", "img0.png", "-o", "o", "--num-classes", "3", "--std", "0,0,0"],
        "std must be finite and > 0",
    ),
    Case("predict threads -1", ["predict", "id.onnx", "img0.png", "-o", "o", "--threads", "-1"], "--threads -1"),
    Case("predict threads huge", ["predict", "id.onnx", "img0.png", "-o", "o", "--threads", "100000"], "4 per core"),
    Case("predict blend choice", ["predict", "id.onnx", "img0.png", "-o", "o", "--blend", "foo"], "'foo' is not one"),
    Case("predict junk model", ["predict", "junk.onnx", "img0.png", "-o", "o"], "neither an ONNX model"),
    Case("predict folder as model", ["info", "data"], "is a folder, not a model file"),
    Case("predict a URI input", ["predict", "id.onnx", "s3://bucket/frames", "-o", "o"], "object storage is not read"),
    Case("predict missing model", ["predict", "nope.onnx", "img0.png", "-o", "o"], "does not exist"),
    Case("predict bad tile", ["predict", "id.onnx", "img0.png", "-o", "o", "--tile", "33x47"], "multiple of"),
    Case("predict scale 0", ["predict", "id.onnx", "img0.png", "-o", "o", "--scale", "0"], "--scale 0.0 is invalid"),
    Case("predict scale nan", ["predict", "id.onnx", "img0.png", "-o", "o", "--scale", "nan"], "--scale nan"),
    Case("eval scale 9", ["eval", "id.onnx", "--data", "data", "--format", "folder", "--scale", "9"], "[0.25, 4.0]"),
    Case(
        "predict overlay exists",
        ["predict", "id.onnx", "img1.png", "-o", "ov", "--save-overlay"],
        "pass --force",
        setup=_existing("ov/img1.overlay.png"),
    ),
    # eval
    Case("eval limit 0", ["eval", "id.onnx", "--data", "data", "--format", "folder", "--limit", "0"], "--limit 0"),
    Case("eval images format", ["eval", "id.onnx", "--data", "data", "--format", "images"], "has no labels"),
    # bench / bench-runtime
    Case("bench runs 0", ["bench", "id.onnx", "--runs", "0", "--out", "b"], "--runs 0"),
    Case("bench runs -1", ["bench", "id.onnx", "--runs", "-1", "--out", "b"], "--runs -1"),
    Case("bench batch 0", ["bench", "id.onnx", "--batch", "0", "--out", "b"], "--batch 0"),
    Case("bench batch -1", ["bench", "id.onnx", "--batch", "-1", "--out", "b"], "--batch -1"),
    Case("bench threads -1", ["bench", "id.onnx", "--threads", "-1", "--out", "b"], "--threads -1"),
    Case("bench-runtime threads -1", ["bench-runtime", "id.onnx", "--threads", "-1", "--out", "br"], "--threads -1"),
    Case("eval threads huge", ["eval", "id.onnx", "--data", "data", "--threads", "99999"], "4 per core"),
    Case("bench eval-limit 0", ["bench", "id.onnx", "--eval-limit", "0", "--out", "b"], "--eval-limit 0"),
    Case("bench shape 0x480", ["bench", "id.onnx", "--shape", "0x480", "--no-roofline", "--out", "b"], "positive"),
    Case(
        "bench report exists",
        ["bench", "id.onnx", "--out", "rep"],
        "pass --force",
        setup=_existing("rep/report.json"),
    ),
    Case("bench out is a file", ["bench", "id.onnx", "--out", "afile"], "is a file, not a folder"),
    Case("bench-runtime out is a file", ["bench-runtime", "id.onnx", "--out", "afile"], "is a file, not a folder"),
    Case("bench-runtime runs 0", ["bench-runtime", "id.onnx", "--runs", "0", "--out", "br"], "--runs 0"),
    Case(
        "bench-runtime exists",
        ["bench-runtime", "id.onnx", "--out", "rt"],
        "pass --force",
        setup=_existing("rt/runtime.json"),
    ),
    # demo
    Case("demo text as image", ["demo", "id.onnx", "--source", "text.jpg", "--headless"], "no frame could be read"),
    Case(
        "demo stats folder missing",
        ["demo", "id.onnx", "--source", "v.mp4", "--headless", "--stats", "nodir/x.json"],
        "does not exist",
    ),
    Case(
        "demo threads -1",
        ["demo", "id.onnx", "--source", "v.mp4", "--headless", "--threads", "-1"],
        "--threads -1",
    ),
    Case(
        "demo record folder missing",
        ["demo", "id.onnx", "--source", "v.mp4", "--headless", "--record", "nodir/r.mp4"],
        "does not exist",
    ),
    Case(
        "demo record exists",
        ["demo", "id.onnx", "--source", "v.mp4", "--headless", "--record", "r.mp4"],
        "pass --force",
        setup=_existing("r.mp4"),
    ),
    # export / quantize
    Case("export NaN weights", ["export", "nan.pt", "-o", "n.onnx"], "NaN", True, _nan_checkpoint),
    Case("export random block", ["export", "rand.pt", "-o", "r.onnx"], "corrupt", True, _random_block_checkpoint),
    Case("export dynamo opset", ["export", "tiny.pt", "-o", "d.onnx", "--dynamo"], "opset 18", True),
    Case("export threads -1", ["export", "tiny.pt", "-o", "t.onnx", "--threads", "-1"], "--threads -1", True),
    Case("export int4", ["export", "tiny.pt", "-o", "q.onnx", "--quantize", "int4"], "'int4' is not one", True),
    Case(
        "export eval-data not a dataset",
        ["export", "tiny.pt", "-o", "g.onnx", "--quantize", "fp16", "--eval-data", "afile"],
        "is not a dataset fcnedge recognises",
        True,
    ),
    Case(
        "export report exists",
        ["export", "tiny.pt", "-o", "e.onnx"],
        "pass --force",
        True,
        _existing("e.report.json"),
    ),
    Case(
        "quantize an int8 model",
        ["quantize", str(get_weights().path()), "-o", "qq.onnx", "--calib-data", "data", "--calib-format", "images"],
        "is already int8",
        True,
    ),
    Case(
        "quantize an fp16 model",
        ["quantize", "fp16.onnx", "-o", "q16.onnx", "--quantize", "fp16"],
        "is already fp16",
        True,
        lambda root: _fp16_model(root),
    ),
    # train
    Case(
        "train lr nan", ["train", "--data", "data", "--format", "folder", "--lr", "nan", "-o", "t.pt"], "--lr nan", True
    ),
    Case("train lr -1", ["train", "--data", "data", "--format", "folder", "--lr", "-1", "-o", "t.pt"], "--lr -1", True),
    Case(
        "train weight decay -1",
        ["train", "--data", "data", "--format", "folder", "--weight-decay", "-1", "-o", "t.pt"],
        "--weight-decay -1",
        True,
    ),
    Case("train workers -1", ["train", "--data", "data", "--workers", "-1", "-o", "t.pt"], "--threads -1", True),
    Case("train scale 2,1", ["train", "--data", "data", "--scale", "2,1", "-o", "t.pt"], "--scale 2.0,1.0", True),
    Case(
        "export weight type",
        ["export", "fcn_tiny", "--num-classes", "3", "-o", "w.onnx", "--quantize", "int8", "--weight-type", "int4"],
        "--weight-type 'int4'",
        True,
    ),
    Case("train rotate 90", ["train", "--data", "data", "--rotate", "90", "-o", "t.pt"], "--rotate 90.0", True),
    Case("train jitter 1.5", ["train", "--data", "data", "--jitter", "1.5", "-o", "t.pt"], "--jitter 1.5", True),
    Case("train lovasz -1", ["train", "--data", "data", "--lovasz", "-1", "-o", "t.pt"], "--lovasz -1.0", True),
    Case(
        "train no loss",
        ["train", "--data", "data", "--ce-weight", "0", "--lovasz", "0", "-o", "t.pt"],
        "leaves no loss",
        True,
    ),
    Case(
        "train ce-weight nan", ["train", "--data", "data", "--ce-weight", "nan", "-o", "t.pt"], "--ce-weight nan", True
    ),
    Case("train init-from missing", ["train", "--data", "data", "--init-from", "no.pt", "-o", "t.pt"], "no.pt", True),
    Case("train out folder missing", ["train", "--data", "data", "-o", "missing/x.pt"], "does not exist", True),
    Case("train format choice", ["train", "--data", "data", "--format", "wrong"], "'wrong' is not one", True),
    # issue 24: the classes that still escaped the one-line rule
    Case(
        "predict empty list file", ["predict", "id.onnx", "empty.txt", "-o", "o"], "names no images", setup=_empty_list
    ),
    Case("bench empty variants", ["bench", "--variants", "", "--out", "b"], "--variants '' names nothing"),
    Case("tune empty threads list", ["tune", "id.onnx", "--threads-list", ""], "--threads-list '' is invalid"),
    Case("tune empty providers", ["tune", "id.onnx", "--providers", ""], "--providers '' names nothing"),
    Case(
        "predict FIFO as model",
        ["predict", "pipe", "img0.png", "-o", "o"],
        "is a named pipe (FIFO), not a model",
        setup=_fifo,
    ),
    Case("predict device as model", ["predict", "/dev/null", "img0.png", "-o", "o"], "is a character device"),
    Case(
        "predict folder named x.onnx",
        ["predict", "x.onnx", "img0.png", "-o", "o"],
        "folder named like a model",
        setup=_model_named_folder,
    ),
    Case(
        "predict two-input model", ["predict", "two_in.onnx", "img0.png", "-o", "o"], "has 2 inputs", setup=_two_inputs
    ),
    Case(
        "bench fixed model, other shape",
        ["bench", "fixed.onnx", "--shape", "64x64", "--out", "b"],
        "pass --shape 128x128",
        setup=_fixed,
    ),
    Case("predict output name too long", ["predict", "id.onnx", "img0.png", "-o", LONG], "File name too long"),
    Case(
        "predict unreachable ray address",
        ["predict", "id.onnx", "img0.png", "-o", "o", "--engine", "ray", "--address", "ray://127.0.0.1:1"],
        "is unreachable",
    ),
]


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    case: Case, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.needs_torch:
        pytest.importorskip("torch")
    monkeypatch.chdir(work)
    monkeypatch.setenv("FCNEDGE_CACHE", str(work / ".cache"))
    if case.setup is not None:
        case.setup(work)
    before = _snapshot(work)
    kept = {p: p.read_bytes() for p in work.rglob("*") if p.is_file() and p.read_bytes() == b"keep me"}
    res = runner.invoke(app, case.args)
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert _snapshot(work) == before  # nothing new: no partial output, no temp file, no empty folder
    assert all(p.read_bytes() == b"keep me" for p in kept)  # nothing replaced without --force


def test_one_unreadable_file_fails_its_row_only(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    res = runner.invoke(app, ["predict", "id.onnx", "img0.png", "text.jpg", "img1.png", "-o", "rows"])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip().splitlines()[0]]
    assert "text.jpg" in res.stderr and "cannot be decoded" in res.stderr
    assert sorted(p.name for p in (work / "rows").iterdir()) == ["img0.png", "img1.png"]


def test_a_fixed_size_model_takes_a_smaller_image(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    make_identity_onnx(work / "fixed.onnx", fixed_hw=(128, 128))
    res = runner.invoke(app, ["predict", "fixed.onnx", "img0.png", "-o", "fx"])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(work / "fx" / "img0.png"), cv2.IMREAD_UNCHANGED).shape == (70, 90)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    res = runner.invoke(app, ["predict", "id.onnx", "img0.png", "-o", "ro/out"])
    assert res.exit_code == 2 and "cannot be written" in res.stderr


def test_unusual_images_are_converted_with_a_warning(work: Path) -> None:
    """A real process (the CLI's logging goes to its own stderr): one warning line at the default level."""
    import subprocess
    import sys

    cv2.imwrite(str(work / "gray.png"), np.full((40, 60), 128, np.uint8))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run(
        [sys.executable, "-m", "fcnedge", "predict", "id.onnx", "gray.png", "-o", "gr"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "grayscale" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_diverging_training_run_stops_with_one_line(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN is never 'best': a loss that turns non-finite stops training before anything is saved from it."""
    pytest.importorskip("torch")
    monkeypatch.chdir(work)
    write_folder_dataset(work / "tr", classes=3, shapes=[(64, 96)] * 4, split="train")
    write_folder_dataset(work / "tr", classes=3, shapes=[(64, 96)] * 2, split="val")
    args = ["train", "--data", "tr", "--format", "folder", "--num-classes", "3", "--arch", "fcn_tiny"]
    args += ["--no-pretrained-backbone", "--epochs", "2", "--batch-size", "2", "--crop", "64x96", "--lr", "1e30"]
    res = runner.invoke(app, [*args, "--optimizer", "sgd", "-o", "div.pt"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "diverged" in lines[0], res.stderr
    assert not (work / "div.pt").exists()
