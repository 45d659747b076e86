"""Segmentation metrics from one confusion matrix (the single implementation eval and bench share)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass
class ConfusionMatrix:
    """Accumulates a K x K confusion matrix (rows: truth, columns: prediction), skipping the ignore id."""

    num_classes: int
    ignore_index: int | None = None
    matrix: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, truth: NDArray[np.integer[Any]], pred: NDArray[np.integer[Any]]) -> None:
        """Add one (truth, prediction) pair of equal-shape id maps."""
        if truth.shape != pred.shape:
            raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
        t = truth.ravel().astype(np.int64)
        p = pred.ravel().astype(np.int64)
        keep = (t >= 0) & (t < self.num_classes)
        if self.ignore_index is not None:
            keep &= t != self.ignore_index
        k = self.num_classes
        self.matrix += np.bincount(t[keep] * k + p[keep], minlength=k * k).reshape(k, k)

    def scores(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """mIoU, pixel accuracy, mean class accuracy and per-class IoU (classes absent from truth and
        prediction are left out of the means)."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        gt = m.sum(1)
        pr = m.sum(0)
        union = gt + pr - tp
        present = union > 0
        iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
        acc = np.divide(tp, gt, out=np.zeros_like(tp), where=gt > 0)
        names = list(class_names) if class_names else [f"class_{i}" for i in range(self.num_classes)]
        total = m.sum()
        return {
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
            "mean_class_accuracy": float(acc[gt > 0].mean()) if (gt > 0).any() else 0.0,
            "per_class_iou": {names[i]: (float(iou[i]) if present[i] else None) for i in range(self.num_classes)},
            "pixels": int(total),
        }
