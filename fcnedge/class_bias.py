"""Per-class logit biases fitted on held-out frames: the thresholding step of an IoU-optimal decision rule.

A model trained with class weights (or any loss that is not IoU) places its decision boundaries where its loss
wants them: thin classes weighted up are over-predicted (recall above precision), and mIoU wants the two balanced.
Adding one bias per class to the logits before the argmax moves those boundaries without retraining. The biases are
fitted by coordinate ascent on mIoU over held-out frames (never the frames the result is reported on) and folded
into the model's finest score convolution, so the exported graph and its latency are unchanged.

Each coordinate step is exact and cheap: with the other biases fixed, pixel p takes class c at bias v exactly when
``v > max_{j != c}(s_pj) - s_pc`` (its margin), so one pass over the pixels bins the margins and the confusion matrix
at every grid value follows by a cumulative sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ConfigError
from fcnedge.fsutil import atomic_write_json
from fcnedge.metrics import ConfusionMatrix


def scores_of(matrix: NDArray[np.int64], names: Sequence[str] | None = None) -> dict[str, Any]:
    """``ConfusionMatrix.scores`` of a confusion matrix (rows truth, columns prediction)."""
    cm = ConfusionMatrix(matrix.shape[0])
    cm.matrix = matrix.astype(np.int64)
    return cm.scores(names)


def miou_of(matrix: NDArray[np.int64]) -> float:
    """mIoU over the classes present in truth or prediction, as ``fcnedge eval`` computes it."""
    return float(scores_of(matrix)["miou"])


def _miou_batch(mats: NDArray[np.int64]) -> NDArray[np.float64]:
    """mIoU of each of J confusion matrices (J, K, K)."""
    m = mats.astype(np.float64)
    tp = np.diagonal(m, axis1=1, axis2=2)
    union = m.sum(1) + m.sum(2) - tp
    present = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
    return np.asarray(iou.sum(1) / np.maximum(present.sum(1), 1), dtype=np.float64)


def confusion(scores: NDArray[np.float32], truth: NDArray[np.int64], bias: NDArray[np.float64]) -> NDArray[np.int64]:
    """Confusion matrix of argmax(scores + bias) against truth: scores (P, K), truth (P,) in [0, K)."""
    k = scores.shape[1]
    pred = (scores + bias.astype(np.float32)).argmax(1)
    return np.bincount(truth * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)


def _sweep_class(
    scores: NDArray[np.float32], truth: NDArray[np.int64], bias: NDArray[np.float64], c: int, grid: NDArray[np.float64]
) -> NDArray[np.float64]:
    """mIoU at every value of ``grid`` for class c's bias, the other biases fixed (exact, one pass)."""
    k = scores.shape[1]
    s = scores + bias.astype(np.float32)
    raw_c = scores[:, c].copy()  # without its bias: the margin is compared with the grid value itself
    s[:, c] = -np.inf
    other = s.argmax(1)
    margin = s[np.arange(len(s)), other] - raw_c
    del s
    # pixel takes c at grid value v iff v > margin: from grid index first = searchsorted(grid, margin, 'right') on
    first = np.searchsorted(grid, margin, side="right")
    j = len(grid)
    base = np.bincount(truth * k + other, minlength=k * k).reshape(k, k).astype(np.int64)
    moved = np.bincount((first * k + truth) * k + other, minlength=(j + 1) * k * k).reshape(j + 1, k, k)[:j]
    moved = np.cumsum(moved, axis=0)  # (J, K truth, K other): pixels that take c at grid index j
    mats = np.broadcast_to(base, (j, k, k)).copy()
    mats -= moved
    mats[:, :, c] += moved.sum(2)
    return _miou_batch(mats)


def bias_grid(lo: float, hi: float, step: float) -> NDArray[np.float64]:
    """The grid lo, lo + step, ..., hi (multiples of step, 0 among them).

    Raises:
        ConfigError: not finite, 0 outside (lo, hi), step <= 0, or over 10,000 values.
    """
    if not (np.isfinite([lo, hi, step]).all() and lo < 0 < hi and step > 0 and (hi - lo) / step <= 10_000):
        raise ConfigError(f"bias grid {lo},{hi},{step} is invalid: use LO,HI,STEP with LO < 0 < HI, e.g. -3,3,0.1")
    return np.asarray(np.round(np.arange(lo, hi + step / 2, step) / step) * step, dtype=np.float64)


@dataclass
class BiasFit:
    """The fitted biases and how the objective moved."""

    bias: NDArray[np.float64]
    miou_before: float
    miou_after: float
    sweeps: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    unfitted: list[int] = field(default_factory=list)  # absent, or never right on these pixels: left at 0


def fit_class_bias(
    scores: NDArray[np.float32],
    truth: NDArray[np.int64],
    *,
    lo: float = -3.0,
    hi: float = 3.0,
    step: float = 0.1,
    max_sweeps: int = 4,
    min_gain: float = 1e-4,
) -> BiasFit:
    """Coordinate ascent on mIoU: for each class in id order, the grid value of its bias (the others fixed) that
    scores best, kept if it gains at least ``min_gain``; sweeps until one changes nothing (at most ``max_sweeps``).
    A class with no pixel in ``truth``, or none the model gets right (IoU 0 at b = 0), keeps bias 0: on such frames
    every prediction of it is a false positive, lowering its bias costs nothing there, and the fit would push it to
    the grid's floor (switching the class off wherever it does occur).

    Args:
        scores: (P, K) float32 logits of labelled pixels (void already left out).
        truth: (P,) their class ids in [0, K).

    Raises:
        ConfigError: no pixels, mismatched shapes, ids outside [0, K), or a bad grid.
    """
    if scores.ndim != 2 or truth.shape != (scores.shape[0],):
        raise ConfigError(f"scores {scores.shape} and truth {truth.shape} do not match: pass (P, K) and (P,)")
    if scores.shape[0] == 0:
        raise ConfigError("no labelled pixels to fit biases on: pass frames whose labels are not all void")
    k = scores.shape[1]
    if truth.min() < 0 or truth.max() >= k:
        raise ConfigError(f"truth ids must lie in [0, {k}): leave void out before fitting")
    grid = bias_grid(lo, hi, step)
    bias = np.zeros(k, dtype=np.float64)
    base = confusion(scores, truth, bias)
    best = miou_of(base)
    before, sweeps, steps = best, 0, []
    seen = np.diag(base) > 0  # in the labels and predicted right somewhere: evidence of where its boundary lies
    for sweeps in range(1, max_sweeps + 1):
        changed = False
        for c in (int(i) for i in np.flatnonzero(seen)):
            curve = _sweep_class(scores, truth, bias, c, grid)
            i = int(np.argmax(curve))
            if curve[i] >= best + min_gain and grid[i] != bias[c]:
                bias[c], best, changed = float(grid[i]), float(curve[i]), True
                steps.append({"sweep": sweeps, "class": c, "bias": bias[c], "miou": best})
        if not changed:
            break
    after = miou_of(confusion(scores, truth, bias))  # the argmax itself, ties as numpy breaks them
    unfitted = [int(c) for c in np.flatnonzero(~seen)]
    return BiasFit(bias=bias, miou_before=before, miou_after=after, sweeps=sweeps, steps=steps, unfitted=unfitted)


def labelled_pixels(
    frames: Iterable[tuple[NDArray[np.float32], NDArray[np.uint8]]],
    num_classes: int,
    ignore_index: int | None,
    *,
    max_per_frame: int | None = None,
    seed: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.int64], list[int]]:
    """Stack (K, H, W) logits and (H, W) labels into (P, K) scores and (P,) ids of the labelled pixels, at most
    ``max_per_frame`` (a uniform sample) from each frame; also each frame's pixel count (for splitting by frame)."""
    rng = np.random.default_rng(seed)
    xs, ys, counts = [], [], []
    for logits, mask in frames:
        t = mask.reshape(-1).astype(np.int64)
        keep = (t >= 0) & (t < num_classes)
        if ignore_index is not None:
            keep &= t != ignore_index
        idx = np.flatnonzero(keep)
        if max_per_frame is not None and len(idx) > max_per_frame:
            idx = np.sort(rng.choice(idx, max_per_frame, replace=False))
        xs.append(np.ascontiguousarray(logits.reshape(num_classes, -1)[:, idx].T, dtype=np.float32))
        ys.append(t[idx])
        counts.append(len(idx))
    if not xs:
        raise ConfigError("no frames to fit biases on: pass a split or sequence with labelled frames")
    return np.concatenate(xs), np.concatenate(ys), counts


def finest_score_conv(model: Any) -> Any:
    """The 1x1 score convolution whose output reaches the logits through the last upsampling only (score32 for a
    32s head, score2 for a 2s one): a bias added to it shifts that class's logits by the bias.

    Raises:
        ConfigError: the model is not one of fcnedge's FCN heads.
    """
    from torch import nn

    from fcnedge.models.fcn import FCN, skip_strides

    if not isinstance(model, FCN):
        raise ConfigError(
            f"class biases fold into fcnedge's FCN heads, not {type(model).__name__}: fit them on an fcn_* model"
        )
    strides = skip_strides(model.head)
    conv = getattr(model, f"score{min(strides)}") if strides else model.score32
    if isinstance(conv, nn.Sequential):
        conv = conv[-1]
    if not isinstance(conv, nn.Conv2d) or conv.bias is None:
        raise ConfigError("the model's last score layer has no bias to fold class biases into: fit on an fcn_* model")
    return conv


def fold_class_bias(model: Any, bias: Sequence[float] | NDArray[np.float64]) -> None:
    """Add ``bias`` (one value per class) to the finest score convolution's bias, in place. Inside the image the
    logits move by exactly ``bias`` (the bilinear upsampling of a constant is that constant); within one upsampling
    step of the border a transposed conv with zero padding passes a fraction of it (the outermost pixel row and
    column get 0.75 of it under the final x2 of a 2s head)."""
    import torch

    conv = finest_score_conv(model)
    b = torch.as_tensor(np.asarray(bias, dtype=np.float64), dtype=conv.bias.dtype)
    if b.shape != conv.bias.shape:
        raise ConfigError(f"{len(b)} biases for a model of {conv.bias.shape[0]} classes: pass one per class")
    with torch.no_grad():
        conv.bias.add_(b)


@dataclass(frozen=True)
class BiasFitSpec:
    """What ``fcnedge fit-bias`` does: fit on ``sequences`` of ``split`` (all of it when empty), write ``output``."""

    checkpoint: Path
    data: Path
    output: Path
    fmt: str = "camvid"
    split: str = "train"
    sequences: tuple[str, ...] = ()
    lo: float = -3.0
    hi: float = 3.0
    step: float = 0.1
    max_sweeps: int = 4
    pixels_per_frame: int | None = 200_000  # a uniform sample above this (memory: 4K bytes a pixel); None: all
    cross_check: bool = True
    threads: int = 0
    force: bool = False


def _halves(counts: list[int]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Pixel masks of the first and the second half of the frames (in file-name order: two stretches of video)."""
    n = len(counts)
    first = np.repeat(np.arange(n) < n // 2, counts)
    return first, ~first


def fit_bias_run(spec: BiasFitSpec) -> dict[str, Any]:
    """Fit per-class biases for a checkpoint on held-out frames (its logits as ``predict`` makes them: its inference
    scale and tile), fold them into a copy of it at ``spec.output`` and return the report (also written beside it as
    ``<output>.fit.json``).

    Raises:
        FcnEdgeError: an unreadable checkpoint, unknown sequences, a non-FCN model, an existing output without
            ``force``; nothing is written then.
    """
    import torch

    from fcnedge.data.datasets import open_dataset
    from fcnedge.data.splits import split_by_sequence
    from fcnedge.fsutil import check_output
    from fcnedge.models import load_checkpoint, save_checkpoint
    from fcnedge.models.infer import torch_runner
    from fcnedge.runtime.open import predictor_for, resolve_tile
    from fcnedge.specs import TileSpec

    bias_grid(spec.lo, spec.hi, spec.step)  # a bad grid fails before the model runs
    if spec.pixels_per_frame is not None and spec.pixels_per_frame < 1:
        raise ConfigError(f"--pixels-per-frame {spec.pixels_per_frame} is invalid: use 1 or more, e.g. 200000")
    check_output(spec.output, force=spec.force)
    report_path = spec.output.with_suffix(".fit.json")
    check_output(report_path, force=spec.force)
    model, meta = load_checkpoint(spec.checkpoint)
    finest_score_conv(model)  # refuse a model it cannot fold into before the slow part
    ds = open_dataset(spec.data, spec.fmt, spec.split, num_classes=meta.num_classes)
    if len(ds.info.class_names) != meta.num_classes:
        raise ConfigError(
            f"dataset {spec.data} has {len(ds.info.class_names)} classes but the model predicts {meta.num_classes}: "
            "fit on data with the model's classes"
        )
    if spec.sequences:
        _, ds = split_by_sequence(ds, spec.sequences)
    ds = replace(ds, pairs=tuple(sorted(ds.pairs)))
    if spec.threads:
        torch.set_num_threads(spec.threads)
    tile = resolve_tile(meta)  # the tile predict uses for this model
    pred = predictor_for(torch_runner(model), meta, TileSpec(size=tile))
    scores, truth, counts = labelled_pixels(
        ((pred.logits(img), mask) for img, mask in ds),
        meta.num_classes,
        meta.ignore_index,
        max_per_frame=spec.pixels_per_frame,
    )

    def fit_on(s: NDArray[np.float32], t: NDArray[np.int64]) -> BiasFit:
        return fit_class_bias(s, t, lo=spec.lo, hi=spec.hi, step=spec.step, max_sweeps=spec.max_sweeps)

    fit = fit_on(scores, truth)
    names = list(meta.class_names)
    report: dict[str, Any] = {
        "checkpoint": str(spec.checkpoint),
        "frames": len(counts),
        "pixels": len(truth),
        "split": spec.split,
        "sequences": list(spec.sequences),
        "scale": meta.scale,
        "tile": list(tile),
        "bias": {names[c]: float(fit.bias[c]) for c in range(len(names))},
        "miou_before": fit.miou_before,
        "miou_after": fit.miou_after,
        "per_class_iou_before": scores_of(confusion(scores, truth, np.zeros(len(names))), names)["per_class_iou"],
        "per_class_iou_after": scores_of(confusion(scores, truth, fit.bias), names)["per_class_iou"],
        "unfitted_classes": [names[c] for c in fit.unfitted],
        "sweeps": fit.sweeps,
        "steps": fit.steps,
    }
    if spec.cross_check and len(counts) >= 2:
        checks = []
        first, second = _halves(counts)
        for on, score_on, label in ((first, second, "first->second"), (second, first, "second->first")):
            part = fit_on(scores[on], truth[on])
            zero = miou_of(confusion(scores[score_on], truth[score_on], np.zeros(len(names))))
            moved = miou_of(confusion(scores[score_on], truth[score_on], part.bias))
            checks.append({"fit_then_score": label, "miou_unbiased": zero, "miou_biased": moved, "gain": moved - zero})
        report["cross_check"] = checks
    del scores
    fold_class_bias(model, fit.bias)
    half = meta.provenance.get("storage") == "float16"  # keep the input's storage
    facts = {k: report[k] for k in ("bias", "split", "sequences", "frames", "miou_before", "miou_after")}
    save_checkpoint(spec.output, model, meta.with_provenance(class_bias=facts), force=spec.force, half=half)
    atomic_write_json(report_path, report)
    return report
