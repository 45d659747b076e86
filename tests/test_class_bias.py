"""Per-class logit biases: the exact one-pass coordinate step, the fit, folding into the model, ``fcnedge fit-bias``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fcnedge.class_bias import _sweep_class, confusion, fit_class_bias, miou_of
from fcnedge.errors import ConfigError


def _scores(p: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, p)
    s = rng.normal(size=(p, k)).astype(np.float32)
    s[np.arange(p), truth] += 1.0
    return s, truth


def test_one_pass_sweep_equals_the_argmax_at_every_grid_value() -> None:
    s, t = _scores(5000, 4, seed=0)
    bias = np.array([0.2, -0.3, 0.0, 0.5])
    grid = np.round(np.arange(-2, 2.05, 0.1) / 0.1) * 0.1
    for c in range(4):
        brute = []
        for v in grid:
            b = bias.copy()
            b[c] = v
            brute.append(miou_of(confusion(s, t, b)))
        np.testing.assert_allclose(_sweep_class(s, t, bias, c, grid), brute, atol=1e-12)


def test_fit_undoes_an_over_predicted_class_and_leaves_unfitted_classes_alone() -> None:
    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, 20000)  # class 3 never occurs in the labels
    s = rng.normal(size=(20000, 4)).astype(np.float32)
    s[np.arange(20000), t] += 1.5
    s[:, 1] += 1.2  # class 1 over-predicted, as class weights do to thin classes
    fit = fit_class_bias(s, t)
    assert fit.miou_after > fit.miou_before + 0.02
    assert -1.6 <= fit.bias[1] - (fit.bias[0] + fit.bias[2]) / 2 <= -0.8  # about the offset, undone
    assert fit.bias[3] == 0.0 and fit.unfitted == [3]
    # a class in the labels that the model never gets right carries no evidence either: left at 0
    never = t.copy()
    never[:50] = 3
    s_never = s.copy()
    s_never[:50, 3] = -10.0
    s_never[50:, 3] += 0.5  # predicted, wrongly, elsewhere
    fit_never = fit_class_bias(s_never, never)
    assert fit_never.bias[3] == 0.0 and 3 in fit_never.unfitted
    assert fit.miou_after == pytest.approx(miou_of(confusion(s, t, fit.bias)))


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"lo": 1.0, "hi": 3.0}, "LO < 0 < HI"), ({"step": float("nan")}, "invalid"), ({"step": 0.0}, "invalid")],
)
def test_fit_refuses_bad_grids(kw: dict[str, float], message: str) -> None:
    s, t = _scores(100, 3, seed=2)
    with pytest.raises(ConfigError, match=message):
        fit_class_bias(s, t, **kw)


def test_fit_refuses_void_ids_and_empty_input() -> None:
    s, t = _scores(100, 3, seed=3)
    with pytest.raises(ConfigError, match="leave void out"):
        fit_class_bias(s, np.where(t == 0, 255, t))
    with pytest.raises(ConfigError, match="no labelled pixels"):
        fit_class_bias(s[:0], t[:0])


@pytest.mark.parametrize("head", ["32s", "8s", "2s", "2s-k3", "32s-mid128"])
def test_folded_bias_moves_the_logits_by_the_bias_inside_the_image(head: str) -> None:
    torch = pytest.importorskip("torch")
    from fcnedge.class_bias import fold_class_bias
    from fcnedge.models import build

    torch.manual_seed(0)
    model = build("fcn_tiny", num_classes=3, head=head, freeze_upsampling=True).eval()
    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        before = model(x)
        fold_class_bias(model, [0.5, -1.0, 0.25])
        after = model(x)
    diff = (after - before)[0]
    inner = {"32s": 32, "8s": 8, "2s": 2, "2s-k3": 2, "32s-mid128": 32}[head]  # the final upsampling: its border
    want = torch.tensor([0.5, -1.0, 0.25])[:, None, None]
    torch.testing.assert_close(diff[:, inner:-inner, inner:-inner], want.expand(3, 128 - 2 * inner, 160 - 2 * inner))
    assert float(diff.abs().max()) <= 1.0 + 1e-5  # the border gets a fraction, never more


def test_fold_refuses_a_wrong_length() -> None:
    pytest.importorskip("torch")
    from fcnedge.class_bias import fold_class_bias
    from fcnedge.models import build

    with pytest.raises(ConfigError, match="one per class"):
        fold_class_bias(build("fcn_tiny", num_classes=3), [0.1, 0.2])


def _seq_data(root: Path) -> Path:
    import cv2

    rng = np.random.default_rng(4)
    for split, names in {"train": [f"{s}_{i}" for s in "AB" for i in range(4)], "val": ["V_0"]}.items():
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True)
        for name in names:
            mask = np.kron(rng.integers(0, 2, size=(2, 3)), np.ones((32, 32), np.int64)).astype(np.uint8)
            img = (mask[:, :, None] * 150 + rng.integers(0, 90, size=(64, 96, 3))).astype(np.uint8)
            cv2.imwrite(str(root / split / "images" / f"{name}.png"), img)
            cv2.imwrite(str(root / split / "masks" / f"{name}.png"), mask)
    return root


def test_fit_bias_command_writes_a_checkpoint_that_predicts_with_the_biases(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from fcnedge.cli import app
    from fcnedge.models import build, default_meta, load_checkpoint, save_checkpoint

    data = _seq_data(tmp_path / "data")
    torch.manual_seed(1)
    model = build("fcn_tiny", num_classes=2, head="8s").eval()
    with torch.no_grad():
        model.score8.weight.normal_(0, 0.5)
    save_checkpoint(tmp_path / "m.pt", model, default_meta("fcn_tiny", num_classes=2, head="8s"))
    out = tmp_path / "b.pt"
    args = ["fit-bias", str(tmp_path / "m.pt"), "--data", str(data), "--format", "folder", "--select-on", "B"]
    res = CliRunner().invoke(app, [*args, "-o", str(out), "--json", "--threads", "2"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["frames"] == 4 and report["sequences"] == ["B"]
    assert report["miou_after"] >= report["miou_before"]
    assert len(report["cross_check"]) == 2
    saved = json.loads(out.with_suffix(".fit.json").read_text())
    assert saved["bias"] == report["bias"]
    folded, meta = load_checkpoint(out)
    assert meta.provenance["class_bias"]["bias"] == report["bias"]
    moved = (folded.score8.bias - model.score8.bias).detach().numpy()
    np.testing.assert_allclose(moved, list(report["bias"].values()), atol=1e-6)
    # an existing output is refused: one line, exit 2, the file untouched
    stamp = out.read_bytes()
    again = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == stamp


def test_labelled_pixels_leave_void_out_and_sample_per_frame() -> None:
    from fcnedge.class_bias import labelled_pixels

    rng = np.random.default_rng(5)
    frames = []
    for _ in range(3):
        mask = rng.integers(0, 4, (20, 30)).astype(np.uint8)  # 3 = void here
        logits = rng.normal(size=(3, 20, 30)).astype(np.float32)
        frames.append((logits, mask))
    s, t, counts = labelled_pixels(frames, 3, 3)
    assert counts == [int((m != 3).sum()) for _, m in frames] and len(t) == sum(counts) and 3 not in t
    first = frames[0][1].reshape(-1) != 3
    np.testing.assert_array_equal(s[: counts[0]], frames[0][0].reshape(3, -1)[:, first].T)
    s2, t2, counts2 = labelled_pixels(frames, 3, 3, max_per_frame=50)
    assert counts2 == [50, 50, 50] and s2.shape == (150, 3) and 3 not in t2
