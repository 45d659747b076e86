"""Whole-image evaluation of any Predictor on a labelled dataset (shared by eval, export's gate and bench)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fcnedge.data.datasets import SegDataset
from fcnedge.errors import ConfigError
from fcnedge.metrics import ConfusionMatrix
from fcnedge.protocols import Predictor


def evaluate_predictor(pred: Predictor, ds: SegDataset, *, limit: int | None = None) -> dict[str, Any]:
    """mIoU, pixel accuracy, mean class accuracy, per-class IoU (labels are never resized) and the median time of
    one ``predict`` call (``ms_per_image_p50``) over ``ds``.

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
    times = []
    for i, (img, mask) in enumerate(ds):
        if limit is not None and i >= limit:
            break
        t0 = time.perf_counter()
        ids = pred.predict(img)
        times.append((time.perf_counter() - t0) * 1e3)
        cm.update(mask, ids)
    scores = cm.scores(meta.class_names)
    scores["images"] = min(len(ds), limit) if limit is not None else len(ds)
    scores["ms_per_image_p50"] = float(np.median(times)) if times else 0.0
    return scores
