"""Accuracy at a frame budget: ``--fps N`` / ``--budget-ms N`` pick the most accurate configuration that fits.

The candidates are each bundled model at each inference scale its catalog record measured (val mIoU per scale),
on each engine this machine has (ONNX Runtime's CPU EP; OpenVINO when installed), with the threads asked for.
Their time is ``predict`` itself on a frame of the size the caller runs (median of a few runs after warm-up),
measured on this machine once and kept in fcnedge's cache (keyed on the model files, the frame size, the threads
and the CPU), so the first ``--fps`` on a machine says it is timing and takes some seconds, later ones none.

A candidate fits when its measured time is at most :data:`HEADROOM` of the budget: the rest of a frame's time is
capture, drawing and recording, which the demo overlaps with inference but which share the same cores.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fcnedge.errors import ConfigError
from fcnedge.fsutil import atomic_write_json

log = logging.getLogger(__name__)

HEADROOM = 0.85  # the share of a frame's budget the model may take
BUDGET_VERSION = 1

__all__ = [
    "HEADROOM",
    "Candidate",
    "budget_ms",
    "bundled_timings",
    "choose",
    "known_timings",
    "measure",
    "pick",
    "timed_candidates",
]


@dataclass(frozen=True)
class Candidate:
    """One (model, scale, engine, threads) with its val mIoU (from the catalog) and, once measured, its ms/frame."""

    model: str
    scale: float
    engine: str  # "cpu" (ONNX Runtime) or "openvino"
    threads: int
    miou: float
    ms: float | None = None

    def describe(self) -> str:
        t = f"{self.ms:.1f} ms" if self.ms is not None else "not timed"
        where = f"{self.model} at scale {self.scale:g} on {self.engine} ({self.threads} threads)"
        return f"{where}: {t}, val mIoU {self.miou:.4f}"


def budget_ms(fps: float | None, budget: float | None) -> float | None:
    """The frame budget in ms from ``--fps`` or ``--budget-ms`` (one of them; None when neither).

    Raises:
        ConfigError: both given, or a value that is not positive.
    """
    if fps is not None and budget is not None:
        raise ConfigError("--fps and --budget-ms say the same thing: give one of them")
    if fps is not None:
        if not fps > 0:
            raise ConfigError(f"--fps {fps} is invalid: give frames per second above 0, e.g. --fps 30")
        return 1e3 / fps
    if budget is not None and not budget > 0:
        raise ConfigError(f"--budget-ms {budget} is invalid: give milliseconds per frame above 0, e.g. 33")
    return budget


def pick(cands: Sequence[Candidate], budget: float, *, what: str) -> tuple[Candidate, str]:
    """The most accurate candidate whose time fits ``HEADROOM`` x ``budget`` (the faster on a tie), and one line
    saying what was picked and why.

    Raises:
        ConfigError: nothing fits (the fastest measured time is named).
    """
    timed = [c for c in cands if c.ms is not None]
    if not timed:
        raise ConfigError(f"{what}: no configuration could be timed on this machine")
    allowed = budget * HEADROOM
    fits = [c for c in timed if c.ms is not None and c.ms <= allowed]
    if not fits:
        fastest = min(timed, key=lambda c: c.ms or 0.0)
        raise ConfigError(
            f"{what} ({budget:.1f} ms a frame) fits nothing on this machine: the fastest is {fastest.describe()}, "
            f"and the model may take {100 * HEADROOM:.0f} % of a frame; ask for at most "
            f"--fps {1e3 * HEADROOM / (fastest.ms or 1.0):.0f}"
        )
    best = max(fits, key=lambda c: (round(c.miou, 4), -(c.ms or 0.0)))
    better = [c for c in timed if c.miou > best.miou + 1e-9]
    why = "the most accurate configuration measured"
    if better:
        nxt = min(better, key=lambda c: c.ms or 0.0)
        why = f"the next more accurate, {nxt.describe()}, is over the {allowed:.1f} ms the model may take"
    return best, f"{what}: picked {best.describe()}; {why}"


def _cache_file(cache: Path, key: dict[str, Any]) -> Path:
    import hashlib

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache / f"budget-{digest}.json"


def _read_timings(path: Path) -> dict[str, float]:
    """The ms per configuration a cache file holds (empty when there is none or it is unreadable)."""
    if not path.is_file():
        return {}
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).get("ms", {}).items()}
    except (OSError, ValueError, AttributeError):
        log.warning("ignoring the unreadable budget timings %s: timing again", path)
        return {}


def _full_key(key: dict[str, Any], frame_hw: tuple[int, int]) -> dict[str, Any]:
    return {**key, "frame": list(frame_hw), "version": BUDGET_VERSION}


def timed_candidates(
    cands: Sequence[Candidate],
    frame_hw: tuple[int, int],
    *,
    cache: Path,
    key: dict[str, Any],
    timer: Callable[[Candidate, tuple[int, int]], float],
    say: Callable[[str], None] = log.info,
) -> list[Candidate]:
    """``cands`` with their ms/frame: from the cache when this machine measured them for this key, else timed now
    with ``timer`` (saying so) and cached."""
    full = _full_key(key, frame_hw)
    path = _cache_file(cache, full)
    known = _read_timings(path)
    out: list[Candidate] = []
    todo = [c for c in cands if _name(c) not in known]
    if todo:
        say(
            f"timing {len(todo)} configuration(s) on this machine for a {frame_hw[0]}x{frame_hw[1]} frame (once; "
            f"kept in {path.parent})"
        )
    for c in cands:
        ms = known.get(_name(c))
        if ms is None:
            ms = timer(c, frame_hw)
            known[_name(c)] = ms
        out.append(Candidate(**{**asdict(c), "ms": ms}))
    if todo:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, {"key": full, "ms": known, "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
        except OSError as exc:
            log.warning("could not keep the budget timings in %s (%s): they will be measured again", path, exc)
    return out


def _name(c: Candidate) -> str:
    return f"{c.model}@{c.scale:g}/{c.engine}/{c.threads}"


def measure(
    predict: Callable[[np.ndarray], Any], frame_hw: tuple[int, int], *, runs: int = 9, warmup: int = 2
) -> float:
    """Median ms of ``predict`` on a seeded frame of ``frame_hw`` (after ``warmup`` untimed calls)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (*frame_hw, 3), dtype=np.uint8)
    for _ in range(warmup):
        predict(frame)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        predict(frame)
        samples.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(samples))


def bundled_candidates(threads: int) -> list[Candidate]:
    """Every bundled model x measured scale x engine here (ONNX Runtime CPU; OpenVINO when installed)."""
    from fcnedge.catalog import Catalog
    from fcnedge.runtime.openvino_engine import openvino_available

    engines = ["cpu", *(["openvino"] if openvino_available() else [])]
    records = {m.value.name: m.value for m in Catalog}.values()  # DEFAULT is an alias
    return [
        Candidate(w.name, scale, engine, threads, miou)
        for w in records
        for scale, miou in w.accuracy_at
        for engine in engines
    ]


def time_bundled(c: Candidate, frame_hw: tuple[int, int]) -> float:
    """``predict`` on a frame of ``frame_hw``, through the seam, as the caller will run it (median ms)."""
    from fcnedge.runtime.open import open_predictor

    pred = open_predictor(c.model, providers=c.engine, threads=c.threads, scale=c.scale, default_tile=frame_hw)
    return measure(pred.predict, frame_hw)


def choose(
    fps: float | None,
    budget: float | None,
    frame_hw: tuple[int, int],
    *,
    threads: int,
    say: Callable[[str], None] = log.info,
) -> tuple[Candidate, str] | None:
    """The pick for ``--fps`` / ``--budget-ms`` on frames of ``frame_hw`` (None when neither was given).

    Raises:
        ConfigError: invalid values, or nothing fits (see :func:`pick`).
    """
    ms = budget_ms(fps, budget)
    if ms is None:
        return None
    timed = bundled_timings(frame_hw, threads=threads, say=say)
    what = f"--fps {fps:g}" if fps is not None else f"--budget-ms {budget:g}"
    return pick(timed, ms, what=what)


def bundled_timings(
    frame_hw: tuple[int, int], *, threads: int = 0, say: Callable[[str], None] = log.info
) -> list[Candidate]:
    """Every bundled candidate with this machine's ms per frame of ``frame_hw``, timing what the cache lacks."""
    from fcnedge.sources import cache_dir

    threads = threads or _cores()
    return timed_candidates(
        bundled_candidates(threads), frame_hw, cache=cache_dir() / "budget", key=_machine_key(threads),
        timer=time_bundled, say=say,
    )  # fmt: skip


def _machine_key(threads: int) -> dict[str, Any]:
    from fcnedge.catalog import Catalog
    from fcnedge.host import cpu_model

    return {"models": sorted({m.value.onnx.sha256 for m in Catalog}), "cpu": cpu_model(), "threads": threads}


def known_timings(frame_hw: tuple[int, int], threads: int = 0) -> list[Candidate]:
    """The bundled candidates with the times this machine measured for ``frame_hw`` (``ms`` None where it has
    not: nothing is timed here)."""
    from fcnedge.sources import cache_dir

    threads = threads or _cores()
    known = _read_timings(_cache_file(cache_dir() / "budget", _full_key(_machine_key(threads), frame_hw)))
    return [Candidate(**{**asdict(c), "ms": known.get(_name(c))}) for c in bundled_candidates(threads)]


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
