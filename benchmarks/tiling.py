"""Runtime figures: tiled-predictor overhead against the raw session on the same pixels, latency and peak RSS for
large images, and the speedup from batching tiles."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.benchmarks.machine import machine_facts, peak_rss_mb, reset_peak_rss
from fcnedge.errors import ConfigError
from fcnedge.runtime.open import open_predictor
from fcnedge.runtime.predictor import TiledPredictor
from fcnedge.runtime.tiling import make_grid
from fcnedge.specs import Blend, ProviderSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeBenchConfig:
    """Options of ``fcnedge bench-runtime``."""

    model: str | Path | None = None
    providers: ProviderSpec = field(default_factory=lambda: ProviderSpec(threads=2))
    tile: tuple[int, int] | None = None
    overlap: float = 0.25
    blend: Blend = Blend.MEAN
    sizes: tuple[tuple[int, int], ...] = ((1024, 2048), (10000, 10000))
    batches: tuple[int, ...] = (1, 4, 8)
    runs: int = 5

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ConfigError(f"--runs {self.runs} is invalid: use 1 or more")

    @property
    def threads(self) -> int:
        return self.providers.threads

    def open(self, batch: int) -> TiledPredictor:
        """The predictor under test, through the one seam."""
        return open_predictor(
            self.model, providers=self.providers, tile=self.tile, overlap=self.overlap, blend=self.blend, batch=batch
        )


def _image(h: int, w: int) -> NDArray[np.uint8]:
    """A large seeded image, made by tiling a smooth random patch (cheap to build at 10000x10000)."""
    from fcnedge.data.synthetic import synthetic_images

    patch = synthetic_images([(min(h, 512), min(w, 512))], seed=3)[0]
    reps = (-(-h // patch.shape[0]), -(-w // patch.shape[1]), 1)
    return np.ascontiguousarray(np.tile(patch, reps)[:h, :w])


def _median_time(fn: Any, runs: int) -> float:
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def raw_time(pred: TiledPredictor, img: NDArray[np.uint8], batch: int, runs: int) -> float:
    """Time of the session alone on exactly the tiles the predictor runs (pre-normalised, same batches)."""
    sess = pred.session
    grid = make_grid(img.shape[0], img.shape[1], pred.spec, pred.meta.stride, fixed=pred.fixed)
    norm = pred.norm  # float planes, or pixel planes for a --uint8-input model
    th, tw = grid.tile
    tiles = np.empty((grid.count, 3, th, tw), dtype=pred.input_dtype)
    norm.pad(tiles)
    i = 0
    for y in grid.ys:
        for x in grid.xs:
            norm.into(img[y : y + th, x : x + tw], tiles[i])
            i += 1
    chunks = [tiles[j : j + batch] for j in range(0, grid.count, batch)]

    def run() -> None:
        for c in chunks:
            sess.run(c)

    return _median_time(run, runs)


def overhead(cfg: RuntimeBenchConfig, pred: TiledPredictor, size: tuple[int, int], batch: int) -> dict[str, Any]:
    """Tiled logits() (normalise, tile, run, stitch) and predict() (+ argmax) vs the raw session on the same
    pre-normalised tiles in the same batches."""
    img = _image(*size)
    tiled = _median_time(lambda: pred.logits(img), cfg.runs)
    with_ids = _median_time(lambda: pred.predict(img), cfg.runs)
    raw = raw_time(pred, img, batch, cfg.runs)
    grid = make_grid(size[0], size[1], pred.spec, pred.meta.stride, fixed=pred.fixed)
    return {
        "size": f"{size[0]}x{size[1]}",
        "batch": batch,
        "windows": grid.count,
        "tiled_ms": tiled * 1e3,
        "predict_ms": with_ids * 1e3,
        "raw_session_ms": raw * 1e3,
        "overhead_pct": 100 * (tiled - raw) / raw,
        "predict_overhead_pct": 100 * (with_ids - raw) / raw,
    }


def large(pred: TiledPredictor, size: tuple[int, int], batch: int) -> dict[str, Any]:
    """One predict() on a large image: latency and peak RSS (the image itself included)."""
    img = _image(*size)
    reset_peak_rss()
    base = peak_rss_mb()
    t = time.perf_counter()
    ids = pred.predict(img)
    sec = time.perf_counter() - t
    grid = make_grid(size[0], size[1], pred.spec, pred.meta.stride, fixed=pred.fixed)
    band_mb = pred.meta.num_classes * grid.tile[0] * grid.padded[1] * 4 / 2**20
    return {
        "size": f"{size[0]}x{size[1]}",
        "batch": batch,
        "windows": grid.count,
        "latency_s": sec,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": base,
        "image_mb": img.nbytes / 2**20,
        "ids_mb": ids.nbytes / 2**20,
        "logit_band_mb": band_mb,
    }


def run_runtime_bench(cfg: RuntimeBenchConfig) -> dict[str, Any]:
    """All runtime figures in one report."""
    preds = {b: cfg.open(b) for b in sorted({1, *cfg.batches})}
    first = preds[1]
    rows_overhead = [overhead(cfg, first, first.spec.size, 1)]
    rows_batch = []
    for s in cfg.sizes:
        if s[0] * s[1] <= 4096 * 4096:
            rows_batch += [overhead(cfg, preds[b], s, b) for b in cfg.batches]
    rows_large = [large(preds[max(cfg.batches)], s, max(cfg.batches)) for s in cfg.sizes]
    base = {r["size"]: r["tiled_ms"] for r in rows_batch if r["batch"] == 1}
    for r in rows_batch:
        if r["size"] in base:
            r["speedup_vs_batch1"] = base[r["size"]] / r["tiled_ms"]
    return {
        "machine": machine_facts(),
        "model": str(first.session.path),
        "provider": first.provider,
        "tile": list(first.spec.size),
        "overlap": cfg.overlap,
        "threads": cfg.threads,
        "whole_image": rows_overhead,
        "batching": rows_batch,
        "large": rows_large,
    }
