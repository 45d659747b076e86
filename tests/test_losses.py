from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fcnedge.losses import SegLoss, lovasz_softmax  # noqa: E402


def _hard_logits(pred: torch.Tensor, k: int) -> torch.Tensor:
    """Logits whose softmax is one-hot at ``pred`` (to float precision)."""
    return torch.nn.functional.one_hot(pred, k).permute(0, 3, 1, 2).float() * 40.0


def test_lovasz_equals_one_minus_iou_on_hard_predictions() -> None:
    """At 0/1 predictions the Lovasz extension is the Jaccard loss itself: mean over present classes of 1 - IoU,
    ignored pixels left out."""
    rng = np.random.default_rng(0)
    k, ignore = 4, 9
    labels = torch.from_numpy(rng.integers(0, k, size=(2, 16, 24)))
    labels[0, :4] = ignore
    pred = torch.from_numpy(rng.integers(0, k, size=(2, 16, 24)))
    pred[labels == 1] = 1  # some overlap per class
    keep = labels != ignore
    ious = []
    for c in range(k):
        t, p = (labels == c) & keep, (pred == c) & keep
        if t.any():
            ious.append(float((t & p).sum()) / float((t | p).sum()))
    expected = 1.0 - float(np.mean(ious))
    got = lovasz_softmax(_hard_logits(pred, k), labels, ignore_index=ignore)
    assert float(got) == pytest.approx(expected, abs=1e-5)
    perfect = lovasz_softmax(_hard_logits(labels.clamp(max=k - 1), k), labels, ignore_index=ignore)
    assert float(perfect) == pytest.approx(0.0, abs=1e-5)


def test_lovasz_sampling_and_gradient() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 32, 48, requires_grad=True)
    labels = torch.randint(0, 5, (2, 32, 48))
    full = lovasz_softmax(logits, labels)
    sampled = lovasz_softmax(logits, labels, max_pixels=1024)
    assert abs(float(full.detach()) - float(sampled.detach())) < 0.05  # a uniform sample estimates the same surrogate
    sampled.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and float(logits.grad.abs().sum()) > 0


def test_seg_loss_is_cross_entropy_plus_weighted_lovasz() -> None:
    torch.manual_seed(1)
    logits, labels = torch.randn(1, 3, 8, 8), torch.randint(0, 3, (1, 8, 8))
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert float(SegLoss(None, -100)(logits, labels)) == pytest.approx(float(ce))
    both = SegLoss(None, -100, lovasz=0.5, max_pixels=10_000)(logits, labels)
    assert float(both) == pytest.approx(float(ce) + 0.5 * float(lovasz_softmax(logits, labels)), rel=1e-5)


def test_seg_loss_without_cross_entropy_is_the_lovasz_term() -> None:
    torch.manual_seed(1)
    logits, labels = torch.randn(2, 4, 8, 8, requires_grad=True), torch.randint(0, 4, (2, 8, 8))
    only = SegLoss(None, -100, lovasz=1.0, max_pixels=10_000, ce=0.0)(logits, labels)
    assert float(only.detach()) == pytest.approx(float(lovasz_softmax(logits, labels).detach()), rel=1e-6)
    only.backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
