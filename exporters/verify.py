"""Parity: PyTorch vs ONNX Runtime on several shapes, through the runtime's own tile/pad rule."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fcnedge.data.synthetic import synthetic_images
from fcnedge.errors import ParityError
from fcnedge.meta import ModelMeta
from fcnedge.models.infer import torch_runner
from fcnedge.runtime.open import open_predictor, predictor_for
from fcnedge.specs import TileSpec

log = logging.getLogger(__name__)

REL_TOL = 1e-4  # max |torch - ort| relative to the logit scale (max |torch logit|)
MIN_AGREEMENT = 0.9999


@dataclass(frozen=True)
class ShapeParity:
    """Parity on one input shape."""

    shape: tuple[int, int]
    max_abs_diff: float
    logit_scale: float
    argmax_agreement: float

    @property
    def rel_diff(self) -> float:
        return self.max_abs_diff / max(self.logit_scale, 1e-12)


def verify_shapes(export_shape: tuple[int, int], stride: int) -> list[tuple[int, int]]:
    """The export shape, another multiple of the stride, and one whose sides are not multiples of it."""
    h, w = export_shape
    other = (h + 2 * stride, max(stride, w - stride)) if w > stride else (h + stride, w + stride)
    odd = (h + stride + 7, w + 2 * stride + 3)
    return [export_shape, other, odd]


def compare(
    model: Any, onnx_path: Path, meta: ModelMeta, *, shapes: list[tuple[int, int]], tile: TileSpec, threads: int = 0
) -> list[ShapeParity]:
    """Run torch and ORT through the same predictor rule on each shape and measure the differences."""
    ort_pred = open_predictor(
        onnx_path, meta=meta, threads=threads, tile=tile.size, overlap=tile.overlap, blend=tile.blend, batch=tile.batch
    )
    ref_pred = predictor_for(torch_runner(model), meta, tile)
    results = []
    for img in synthetic_images(shapes):
        ref = ref_pred.logits(img)
        got = ort_pred.logits(img)
        for who, out in (("PyTorch", ref), ("ONNX Runtime", got)):
            if not np.isfinite(out).all():
                raise ParityError(
                    f"{who} output holds NaN or infinite logits at {img.shape[0]}x{img.shape[1]}: the weights are "
                    "corrupt or from a diverged run (NaN is never agreement); nothing written"
                )
        agree = float(np.mean(ref.argmax(0) == got.argmax(0)))
        results.append(ShapeParity(img.shape[:2], float(np.abs(ref - got).max()), float(np.abs(ref).max()), agree))
    return results


def check_fp32(results: list[ShapeParity]) -> None:
    """Raise ParityError when fp32 parity misses its bounds.

    Raises:
        ParityError: relative difference > 1e-4 or argmax agreement < 99.99 % on any shape.
    """
    for r in results:
        if not (r.rel_diff <= REL_TOL and r.argmax_agreement >= MIN_AGREEMENT):  # NaN fails both
            raise ParityError(
                f"ONNX output differs from PyTorch at {r.shape[0]}x{r.shape[1]}: max diff {r.max_abs_diff:.3g} "
                f"({r.rel_diff:.2e} of the logit scale, limit {REL_TOL:g}), argmax agreement "
                f"{100 * r.argmax_agreement:.3f} %: export with --no-rewrite / --no-simplify to find the step at fault"
            )


def as_dicts(results: list[ShapeParity]) -> list[dict[str, Any]]:
    """JSON-ready parity rows."""
    return [
        {
            "shape": list(r.shape),
            "max_abs_diff": r.max_abs_diff,
            "logit_scale": r.logit_scale,
            "rel_diff": r.rel_diff,
            "argmax_agreement": r.argmax_agreement,
        }
        for r in results
    ]
