from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fcnedge.errors import CheckpointError, OutputExistsError  # noqa: E402
from fcnedge.models import build, default_meta, load_checkpoint, read_meta, save_checkpoint  # noqa: E402


def test_round_trip_keeps_weights_and_meta(tiny_checkpoint: Path) -> None:
    model, meta = load_checkpoint(tiny_checkpoint)
    assert meta.arch == "fcn_tiny" and meta.num_classes == 5 and meta.stride == 32
    torch.manual_seed(0)
    ref = build("fcn_tiny", num_classes=5).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


def test_half_storage_loads_as_float32(tmp_path: Path) -> None:
    model = build("fcn_tiny", num_classes=3)
    p = tmp_path / "h.pt"
    save_checkpoint(p, model, default_meta("fcn_tiny", num_classes=3), half=True)
    loaded, _ = load_checkpoint(p)
    w = loaded.score32.weight
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, model.score32.weight.half().float())


def test_lite0_checkpoints_leave_out_the_unused_imagenet_classifier(tmp_path: Path) -> None:
    """The backbone's ImageNet classifier (1.28M weights) is never used by the FCN: checkpoints leave it out, load
    to the same outputs, and a checkpoint that still holds it (written before) loads too."""
    from fcnedge.models.checkpoint import FORMAT, FORMAT_VERSION, read_checkpoint

    meta = default_meta("fcn_efficientnet_lite0", num_classes=4, head="8s")
    torch.manual_seed(0)
    model = build("fcn_efficientnet_lite0", num_classes=4, pretrained_backbone=False, head="8s").eval()
    new, old = tmp_path / "new.pt", tmp_path / "old.pt"
    save_checkpoint(new, model, meta, half=True)
    keys = read_checkpoint(new)["state_dict"]
    assert not any(k.startswith("backbone.net._fc.") for k in keys) and "backbone.net._conv_head.weight" in keys
    full = {k: v.half() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta.to_dict(), "state_dict": full}, old)
    assert new.stat().st_size < old.stat().st_size - 2_000_000  # 1280x1000 fp16 weights fewer
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        want = model(x)
        for path in (new, old):
            torch.testing.assert_close(load_checkpoint(path)[0](x), want, atol=2e-2, rtol=1e-2)  # fp16-stored


def test_existing_output_needs_force(tiny_checkpoint: Path) -> None:
    model, meta = load_checkpoint(tiny_checkpoint)
    with pytest.raises(OutputExistsError, match="--force"):
        save_checkpoint(tiny_checkpoint, model, meta)


def test_truncated_and_foreign_files(tiny_checkpoint: Path, tmp_path: Path) -> None:
    data = tiny_checkpoint.read_bytes()
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_meta(empty)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not an fcnedge checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_wrong_architecture_is_named(tiny_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match="holds architecture 'fcn_tiny', not 'fcn_resnet18'"):
        load_checkpoint(tiny_checkpoint, arch="fcn_resnet18")


def test_no_partial_file_on_failure(tmp_path: Path) -> None:
    class Boom(torch.nn.Module):
        def state_dict(self, *a: object, **k: object) -> dict[str, object]:  # type: ignore[override]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "x.pt", Boom(), default_meta("fcn_tiny", num_classes=2))
    assert list(tmp_path.iterdir()) == []


def test_weights_of_another_shape_are_refused_in_one_line(tmp_path: Path) -> None:
    """A 3-class head saved under a 5-class meta: a CheckpointError naming the mismatch, not a torch traceback."""
    save_checkpoint(tmp_path / "k.pt", build("fcn_tiny", num_classes=3), default_meta("fcn_tiny", num_classes=5))
    with pytest.raises(CheckpointError, match=r"does not fit architecture 'fcn_tiny' with 5 classes.*size mismatch"):
        load_checkpoint(tmp_path / "k.pt")


def test_warm_start_keeps_matching_tensors_and_names_the_rest(tiny8s_checkpoint: Path, tmp_path: Path) -> None:
    """An 8s checkpoint starts a 4s model: backbone and shared scores copied, the new skip and the resized final
    upsampling keep their initialisation; another architecture or class count is refused in one line."""
    from fcnedge.models.checkpoint import warm_start

    old, _ = load_checkpoint(tiny8s_checkpoint)
    model = build("fcn_tiny", num_classes=4, head="4s", freeze_upsampling=True)
    report = warm_start(model, tiny8s_checkpoint, arch="fcn_tiny", num_classes=4)
    assert report["skipped"] == ["upsample.weight"]  # x8 kernel 16 -> x4 kernel 8
    assert {"score4.weight", "score4.bias", "up8to4.weight", "up8to4.bias", "upsample.weight"} == set(report["new"])
    for name, value in old.state_dict().items():
        if name in report["loaded"]:
            torch.testing.assert_close(model.state_dict()[name], value)
    assert "backbone.stages.0.0.weight" in report["loaded"] and "score8.weight" in report["loaded"]
    with pytest.raises(CheckpointError, match="not 'fcn_tiny' with 5"):
        warm_start(build("fcn_tiny", num_classes=5, head="4s"), tiny8s_checkpoint, arch="fcn_tiny", num_classes=5)
    with pytest.raises(CheckpointError, match="does not exist"):
        warm_start(model, tmp_path / "none.pt", arch="fcn_tiny", num_classes=4)


def test_warm_start_widens_1x1_scores_into_3x3_with_the_same_function(tmp_path: Path) -> None:
    """2s -> 2s-k3: the 1x1 stride-4/stride-2 score weights go into the centre taps, so the model computes exactly
    what the checkpoint did; other tensors load as they are."""
    from fcnedge.models.checkpoint import warm_start

    torch.manual_seed(0)
    old = build("fcn_tiny", num_classes=3, head="2s", freeze_upsampling=True).eval()
    with torch.no_grad():
        for name, p in old.named_parameters():
            if name.startswith("score"):
                p.normal_(0, 0.5)
    save_checkpoint(tmp_path / "2s.pt", old, default_meta("fcn_tiny", num_classes=3, head="2s"))
    new = build("fcn_tiny", num_classes=3, head="2s-k3", freeze_upsampling=True).eval()
    assert new.score2.weight.shape[2:] == (3, 3) and new.score8.weight.shape[2:] == (1, 1)
    report = warm_start(new, tmp_path / "2s.pt", arch="fcn_tiny", num_classes=3)
    assert report["widened"] == ["score2.weight", "score4.weight"] and report["skipped"] == [] and report["new"] == []
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(new(x), old(x), rtol=1e-5, atol=1e-5)
