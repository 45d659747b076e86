from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from fcnedge.cli import app  # noqa: E402
from fcnedge.models import load_checkpoint  # noqa: E402
from fcnedge.specs import DataFormat  # noqa: E402
from fcnedge.train import TrainConfig, train  # noqa: E402


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and val/ splits of 64x96 images made of 32x32 blocks: class 1 where a block is bright."""
    names = {"train": [str(i) for i in range(16)], "val": [str(i) for i in range(4)]}
    return _write_blocks(tmp_path_factory.mktemp("blocks"), names, seed=0)


def _write_blocks(root: Path, names: dict[str, list[str]], *, seed: int) -> Path:
    """Write ``root/<split>/{images,masks}/<name>.png``: 64x96 images of 32x32 blocks, class 1 where bright."""
    rng = np.random.default_rng(seed)
    for split, split_names in names.items():
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True)
        for name in split_names:
            cls = rng.integers(0, 2, size=(2, 3)).astype(np.uint8)
            mask = np.kron(cls, np.ones((32, 32), np.uint8))
            img = (mask[:, :, None] * 180 + rng.integers(0, 60, size=(64, 96, 3))).astype(np.uint8)
            cv2.imwrite(str(root / split / "images" / f"{name}.png"), img)
            cv2.imwrite(str(root / split / "masks" / f"{name}.png"), mask)
    return root


def _cfg(blocks: Path, out: Path, epochs: int, **kw: object) -> TrainConfig:
    options: dict[str, object] = {"lr": 0.05, **kw}
    return TrainConfig(
        data=blocks,
        out=out,
        fmt=DataFormat.FOLDER,
        arch="fcn_tiny",
        pretrained_backbone=False,
        epochs=epochs,
        batch_size=4,
        crop=(64, 96),
        optimizer="adamw",
        threads=2,
        **options,
    )  # type: ignore[arg-type]


def test_training_learns_and_resumes(blocks: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "m.pt"
    summary = train(_cfg(blocks, out, epochs=3))
    hist = summary.history
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert summary.best > 0.5  # two balanced classes: chance is about 0.33
    _, meta = load_checkpoint(out)
    assert meta.provenance["val_miou"] == pytest.approx(summary.best)
    log = json.loads(out.with_suffix(".log.json").read_text())
    assert len(log["history"]) == 3
    assert (log["schema"], log["schema_version"]) == ("fcnedge.train-log", 1)
    from fcnedge.results import TrainResult

    read = TrainResult.from_json(log, out.with_suffix(".log.json"))  # the file is the result, typed again
    assert read.history == summary.history and read.best == summary.best and read.selection is summary.selection
    resumed = train(_cfg(blocks, out, epochs=4, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    # the schedule changed (3 -> 4 epochs): said, with what it does to the learning rate
    assert "resuming after epoch 3 of a 3-epoch run with --epochs 4: the learning rate follows" in caplog.text


def test_train_cli_bad_data_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["train", "--data", str(tmp_path / "none"), "--format", "camvid", "--out", str(tmp_path / "x.pt")]
    )
    assert res.exit_code == 2
    assert "does not exist" in res.stderr
    assert not (tmp_path / "x.pt").exists()


def test_eval_cli_json(blocks: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.pt"
    train(_cfg(blocks, out, epochs=1))
    res = CliRunner().invoke(
        app, ["eval", str(out), "--data", str(blocks), "--format", "folder", "--tile", "64x96", "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) >= {"miou", "pixel_accuracy", "mean_class_accuracy", "per_class_iou"}
    assert 0.0 <= data["miou"] <= 1.0 and len(data["per_class_iou"]) == 2


def test_interrupt_keeps_last_complete_checkpoint(blocks: Path, tmp_path: Path) -> None:
    out = tmp_path / "i.pt"

    def interrupt_in_epoch_two(d: dict[str, object]) -> None:
        if d.get("epoch") == 1 and "step" in d:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(blocks, out, epochs=3), progress=interrupt_in_epoch_two)
    _, meta = load_checkpoint(out.with_suffix(".last.pt"))
    assert meta.provenance["epoch"] == 1
    resumed = train(_cfg(blocks, out, epochs=2, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2]


@pytest.fixture(scope="module")
def sequences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The blocks task with CamVid-style names: train frames of sequences A, B and C (``A_0.png``...), val apart."""
    names = {"train": [f"{s}_{i}" for s in "ABC" for i in range(6)], "val": ["V_0", "V_1", "V_2"]}
    return _write_blocks(tmp_path_factory.mktemp("seq"), names, seed=1)


def test_selection_on_held_out_sequences_scores_val_once(sequences: Path, tmp_path: Path) -> None:
    """Honest selection: whole training sequences choose the checkpoint; val is scored once, at the end."""
    out = tmp_path / "s.pt"
    summary = train(_cfg(sequences, out, epochs=2, select_sequences=("C",)))
    assert all("select" in h and "val" not in h for h in summary.history)
    assert summary.best == max(h["select"]["miou"] for h in summary.history)
    assert 0.0 <= summary.final_val["miou"] <= 1.0
    _, meta = load_checkpoint(out)
    assert meta.provenance["selected_on"] == "held-out training sequences C"
    assert meta.provenance["val_miou"] == pytest.approx(summary.final_val["miou"])
    assert meta.provenance["selection_miou"] == pytest.approx(summary.best)


@pytest.mark.parametrize(("held", "message"), [("Z", "no such sequence"), ("A,B,C", "every training sequence")])
def test_selection_sequences_are_checked(sequences: Path, tmp_path: Path, held: str, message: str) -> None:
    res = CliRunner().invoke(
        app,
        ["train", "--data", str(sequences), "--format", "folder", "--arch", "fcn_tiny", "--no-pretrained-backbone",
         "--epochs", "1", "--crop", "64x96", "--select-on", held, "-o", str(tmp_path / "x.pt")],
    )  # fmt: skip
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_bf16_autocast_trains_and_is_refused_where_emulated(blocks: Path, tmp_path: Path) -> None:
    """--bf16: a real bf16 autocast run learns (emulated here when the CPU lacks bf16, allowed only for this test);
    on such a CPU the option itself is a one-line refusal."""
    from fcnedge.host import bf16_native

    summary = train(_cfg(blocks, tmp_path / "b.pt", epochs=3, bf16=True, allow_emulated_bf16=True))
    hist = summary.history
    assert hist[-1]["loss"] < hist[0]["loss"] and summary.best > 0.5
    if bf16_native():
        pytest.skip("this CPU computes bf16 natively: nothing is refused")
    res = CliRunner().invoke(app, ["train", "--data", str(blocks), "--format", "folder", "--bf16",
                                   "-o", str(tmp_path / "r.pt")])  # fmt: skip
    assert res.exit_code == 2 and "AVX512-BF16 or AMX" in res.output
    assert not (tmp_path / "r.pt").exists()


def test_init_from_warm_starts_a_new_head_and_is_checked(blocks: Path, tmp_path: Path) -> None:
    """--init-from: an 8s run starts a 4s run (fresh schedule); a checkpoint of another architecture is refused
    before training, in one line, exit 2, nothing written."""
    first = tmp_path / "a8.pt"
    train(_cfg(blocks, first, epochs=3, head="8s", freeze_upsampling=True))
    base, _ = load_checkpoint(first)
    out = tmp_path / "a4.pt"
    summary = train(_cfg(blocks, out, epochs=1, head="4s", freeze_upsampling=True, init_from=first, lr=1e-6))
    assert [h["epoch"] for h in summary.history] == [1]
    model, meta = load_checkpoint(out)
    assert meta.head == "4s"
    # at a learning rate of 1e-6 one epoch leaves the copied backbone where the 8s run left it
    torch.testing.assert_close(model.backbone.stages[0][0].weight, base.backbone.stages[0][0].weight, atol=1e-4, rtol=0)
    assert summary.history[0]["val"]["miou"] > 0.5  # starts from the trained 8s model, not from scratch
    res = CliRunner().invoke(
        app,
        ["train", "--data", str(blocks), "--format", "folder", "--arch", "fcn_resnet18", "--no-pretrained-backbone",
         "--epochs", "1", "--crop", "64x96", "--init-from", str(first), "-o", str(tmp_path / "x.pt")],
    )  # fmt: skip
    assert res.exit_code == 2 and "holds 'fcn_tiny', not --arch fcn_resnet18" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.pt").exists()


def test_keep_last_is_a_fixed_schedule_scored_once(blocks: Path, tmp_path: Path) -> None:
    """--keep-last (a refit): nothing is scored per epoch, the checkpoint is the last epoch, val is scored once;
    it cannot be combined with --select-on."""
    out = tmp_path / "k.pt"
    summary = train(_cfg(blocks, out, epochs=2, keep_last=True))
    assert all("val" not in h and "select" not in h for h in summary.history)
    assert summary.schedule == "fixed: epoch 2 of a 2-epoch schedule" and summary.best is None
    _, meta = load_checkpoint(out)
    assert meta.provenance["epoch"] == 2
    assert meta.provenance["selected_on"].startswith("fixed schedule: epoch 2 of a 2-epoch schedule")
    assert meta.provenance["val_miou"] == pytest.approx(summary.final_val["miou"])
    res = CliRunner().invoke(
        app,
        ["train", "--data", str(blocks), "--format", "folder", "--arch", "fcn_tiny", "--no-pretrained-backbone",
         "--epochs", "1", "--crop", "64x96", "--keep-last", "--select-on", "A", "-o", str(tmp_path / "x.pt")],
    )  # fmt: skip
    assert res.exit_code == 2 and "--keep-last and --select-on exclude each other" in res.stderr


def test_ema_weights_are_what_is_saved_and_resume_keeps_the_average(blocks: Path, tmp_path: Path) -> None:
    """--ema: the checkpoint holds the moving average (not the raw weights in .last.pt); --stop-after ends the run
    inside a longer schedule; a resumed run continues the same average."""
    from fcnedge.models.checkpoint import read_checkpoint

    out = tmp_path / "e.pt"
    summary = train(_cfg(blocks, out, epochs=3, ema=0.9, keep_last=True, stop_after=2))
    assert [h["epoch"] for h in summary.history] == [1, 2]
    assert summary.schedule == "fixed: epoch 2 of a 3-epoch schedule"
    ema_model, meta = load_checkpoint(out)
    raw_model, _ = load_checkpoint(out.with_suffix(".last.pt"))
    assert meta.provenance["ema"] == 0.9 and meta.provenance["epoch"] == 2
    ema_sd, raw_sd = ema_model.state_dict(), raw_model.state_dict()
    assert any(not torch.equal(ema_sd[k], raw_sd[k]) for k in raw_sd if raw_sd[k].is_floating_point())
    extra = read_checkpoint(out.with_suffix(".last.pt"))["extra"]
    assert extra["ema_updates"] == 2 * 4  # 16 images, batch 4: every step updates the average
    for key, value in extra["ema"].items():
        if value.is_floating_point():
            torch.testing.assert_close(value.float(), ema_sd[key].float())
    resumed = train(_cfg(blocks, out, epochs=3, ema=0.9, keep_last=True, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert read_checkpoint(out.with_suffix(".last.pt"))["extra"]["ema_updates"] == 3 * 4


def test_infer_scale_is_how_the_model_is_scored_and_what_it_carries(blocks: Path, tmp_path: Path) -> None:
    """--infer-scale/--infer-tile: val is scored through the predictor at that scale and tile, and the checkpoint
    (and so every export of it) carries them."""
    from fcnedge.data.datasets import open_dataset
    from fcnedge.evaluation import evaluate_predictor
    from fcnedge.models.infer import torch_runner
    from fcnedge.runtime.open import predictor_for
    from fcnedge.specs import TileSpec

    out = tmp_path / "s.pt"
    summary = train(_cfg(blocks, out, epochs=1, keep_last=True, infer_scale=1.5, infer_tile=(96, 160)))
    model, meta = load_checkpoint(out)
    assert meta.scale == 1.5 and meta.tile == (96, 160)
    pred = predictor_for(torch_runner(model), meta, TileSpec(size=(96, 160)))
    assert pred.scale == 1.5
    again = evaluate_predictor(pred, open_dataset(blocks, DataFormat.FOLDER, "val"))
    assert again["miou"] == pytest.approx(summary.final_val["miou"], abs=1e-9)
    plain = evaluate_predictor(predictor_for(torch_runner(model), meta, TileSpec(), scale=1.0), open_dataset(
        blocks, DataFormat.FOLDER, "val"))  # fmt: skip
    assert plain["miou"] != pytest.approx(again["miou"], abs=1e-9)  # the scale changed what was scored


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ema": 1.0}, "--ema 1.0 is invalid"),
        ({"stop_after": 4}, "--stop-after 4 is invalid"),
        ({"infer_scale": 0.0}, "--infer-scale 0.0 is invalid"),
        ({"infer_tile": (100, 96)}, "--infer-tile 100x96 must have sides"),
    ],
)
def test_ema_and_stop_after_are_checked(blocks: Path, tmp_path: Path, options: dict, message: str) -> None:
    from fcnedge.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        train(_cfg(blocks, tmp_path / "x.pt", epochs=3, **options))
    assert not (tmp_path / "x.pt").exists()


def test_without_a_terminal_training_prints_progress_before_the_first_epoch_ends(blocks: Path, tmp_path: Path) -> None:
    """A log file or CI gets step lines (loss, img/s, ETA) on stdout during the epoch, not silence until it ends;
    stderr keeps the one-line error rule."""
    res = CliRunner().invoke(
        app,
        ["train", "--data", str(blocks), "--format", "folder", "--arch", "fcn_tiny", "--no-pretrained-backbone",
         "--num-classes", "3", "--epochs", "1", "--crop", "64x96", "--batch-size", "2", "-o", str(tmp_path / "p.pt")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    steps = [ln for ln in res.stdout.splitlines() if ln.startswith("epoch 1: step ")]  # from inside the step loop
    assert steps and steps[0].startswith("epoch 1: step 1/") and steps[-1].startswith("epoch 1: step 8/8"), res.stdout
    assert "img/s" in steps[0] and "ETA" in steps[0]
    assert "epoch 1: loss " in res.stderr and ", val mIoU" in res.stderr  # after each epoch: loss and score
