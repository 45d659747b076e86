"""Latency statistics and a staged timing loop (preprocess -> inference -> stitch+argmax)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class LatencyStats:
    """Summary of timed runs, in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    runs: int

    @classmethod
    def from_seconds(cls, samples: list[float]) -> LatencyStats:
        ms = np.asarray(samples, dtype=np.float64) * 1e3
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(ms.mean()), float(ms.std()), len(samples))

    def as_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p90": self.p90, "p99": self.p99, "mean": self.mean, "std": self.std}


Stage = Callable[[Any], Any]


def time_stages(
    stages: list[tuple[str, Stage]], first_input: Any, *, warmup: int, runs: int, sync: Callable[[], None] | None = None
) -> tuple[LatencyStats, dict[str, LatencyStats]]:
    """Run the stage chain ``warmup`` + ``runs`` times; returns total and per-stage statistics.

    Each stage receives the previous stage's output. ``sync`` is called after each stage (GPU timing).
    """
    totals: list[float] = []
    per: dict[str, list[float]] = {name: [] for name, _ in stages}
    for i in range(warmup + runs):
        value = first_input
        t_start = time.perf_counter()
        for name, fn in stages:
            t0 = time.perf_counter()
            value = fn(value)
            if sync is not None:
                sync()
            if i >= warmup:
                per[name].append(time.perf_counter() - t0)
        if i >= warmup:
            totals.append(time.perf_counter() - t_start)
    return LatencyStats.from_seconds(totals), {k: LatencyStats.from_seconds(v) for k, v in per.items()}


def argmax_u8(logits: NDArray[np.float32], *, threads: int = 0) -> NDArray[np.uint8]:
    """(N, K, H, W) -> (N, H, W) uint8 class ids, with the runtime's argmax."""
    from fcnedge.runtime.postprocess import argmax_ids

    return np.stack([argmax_ids(x, threads=threads) for x in logits])
