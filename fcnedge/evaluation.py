"""Whole-image evaluation of any Predictor on a labelled dataset (shared by eval, export's gate and bench)."""

from __future__ import annotations

from typing import Any

from fcnedge.data.datasets import SegDataset
from fcnedge.errors import ConfigError
from fcnedge.metrics import ConfusionMatrix
from fcnedge.protocols import Predictor


def evaluate_predictor(pred: Predictor, ds: SegDataset, *, limit: int | None = None) -> dict[str, Any]:
    """mIoU, pixel accuracy, mean class accuracy and per-class IoU over ``ds`` (labels are never resized).

    Raises:
        ConfigError: the dataset's classes do not match the model's, or a limit under 1.
        DatasetError: unreadable or inconsistent samples.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit} is invalid: evaluate at least 1 image (omit it for the whole split)")
    meta = pred.meta
    if len(ds.info.class_names) != meta.num_classes:
        raise ConfigError(
            f"dataset {ds.root} has {len(ds.info.class_names)} classes but the model predicts {meta.num_classes}: "
            "evaluate on data with the model's classes"
        )
    cm = ConfusionMatrix(meta.num_classes, ds.info.ignore_index)
    for i, (img, mask) in enumerate(ds):
        if limit is not None and i >= limit:
            break
        cm.update(mask, pred.predict(img))
    scores = cm.scores(meta.class_names)
    scores["images"] = min(len(ds), limit) if limit is not None else len(ds)
    return scores
