"""Latency statistics and a staged timing loop (preprocess -> inference -> stitch+argmax)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
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


class StageTimer:
    """A chain of stages (each receives the previous stage's output) whose runs can be recorded or not."""

    def __init__(self, stages: list[tuple[str, Stage]], first_input: Any, sync: Callable[[], None] | None = None):
        self.stages, self.first_input, self.sync = stages, first_input, sync
        self.totals: list[float] = []
        self.per: dict[str, list[float]] = {name: [] for name, _ in stages}

    def run(self, *, record: bool) -> None:
        value = self.first_input
        t_start = time.perf_counter()
        for name, fn in self.stages:
            t0 = time.perf_counter()
            value = fn(value)
            if self.sync is not None:
                self.sync()
            if record:
                self.per[name].append(time.perf_counter() - t0)
        if record:
            self.totals.append(time.perf_counter() - t_start)

    def stats(self) -> tuple[LatencyStats, dict[str, LatencyStats]]:
        return LatencyStats.from_seconds(self.totals), {k: LatencyStats.from_seconds(v) for k, v in self.per.items()}


def time_interleaved(timers: Mapping[Any, StageTimer], *, warmup: int, runs: int, block: int = 5) -> None:
    """Warm every chain up, then time them in interleaved blocks of ``block`` runs until each has ``runs``.

    A shared machine drifts (other tenants, clock changes); interleaving makes every variant see the same drift, so
    ratios from one run stay honest. The first run of each block is not recorded: it absorbs the worker threads
    that the previous variant's runtime leaves spinning.
    """
    for t in timers.values():
        for _ in range(warmup):
            t.run(record=False)
    done = 0
    while done < runs:
        n = min(block, runs - done)
        for t in timers.values():
            t.run(record=False)
            for _ in range(n):
                t.run(record=True)
        done += n


def median_ms(calls: Mapping[str, Callable[[], Any]], *, runs: int, warmup: int = 5) -> dict[str, float]:
    """Median milliseconds of each no-argument call, timed interleaved (:func:`time_interleaved`): the scripts'
    A/B comparisons (models, input forms, argmax ways) in one process on one machine minute."""

    def stage(fn: Callable[[], Any]) -> Stage:
        return lambda _: fn()

    timers = {k: StageTimer([(k, stage(fn))], None) for k, fn in calls.items()}
    time_interleaved(timers, warmup=warmup, runs=runs)
    return {k: t.stats()[0].p50 for k, t in timers.items()}


def argmax_u8(logits: NDArray[np.float32], *, threads: int = 0) -> NDArray[np.uint8]:
    """(N, K, H, W) -> (N, H, W) uint8 class ids, with the runtime's argmax."""
    from fcnedge.runtime.postprocess import argmax_ids

    return np.stack([argmax_ids(x, threads=threads) for x in logits])
