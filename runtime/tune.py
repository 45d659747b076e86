"""``fcnedge tune``: time the runtime configurations this machine offers for one model and keep the fastest.

The configurations are the engine (ONNX Runtime's CPU provider; the native OpenVINO engine when installed), the
thread count, for images that take several tiles the tiles per call, and the model's form: the file as it is, or
its exact fast form (``fcnedge convert --runtime-upsampling --uint8-input``, made into the cache by ``fcnedge tune``
where the ``onnx`` package is installed; its class ids are proven equal when it is written). Each is opened through
the one seam, checked to give the same class ids as the first (a configuration that disagrees on more than 0.1 %
of pixels is dropped, and the report says so), and timed end to end (``predict``: preprocessing, inference,
stitching, argmax) in interleaved rounds so that a noisy minute hurts every configuration alike; the median decides.

The result is a small JSON file beside the model (``<model>.tune.json``), or in the cache when that folder is not
writable, holding the model's SHA-256 and the host (CPU model, instruction-set flags, cores). ``open_predictor``
uses it for whatever the caller leaves unset (``providers``/``threads``/``batch`` of None, which is what
``fcnedge predict`` and ``fcnedge demo`` pass without ``--provider``/``--threads``/``--batch``), and ignores it, with
a log line, when the model file or the machine differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fcnedge import __version__
from fcnedge.errors import ConfigError
from fcnedge.fsutil import atomic_write_json, writing
from fcnedge.host import cpu_flags, cpu_model
from fcnedge.results import versioned
from fcnedge.sources import cache_dir

log = logging.getLogger(__name__)

TUNE_VERSION = 1
AGREEMENT_MIN = 0.999  # float models: engines differ by rounding only
AGREEMENT_MIN_QUANTISED = 0.98  # int8 models: engines round int8 arithmetic differently (real frames ~99 %)


@dataclass(frozen=True)
class Tuned:
    """The configuration ``fcnedge tune`` picked for one model on one machine."""

    provider: str
    threads: int
    batch: int
    p50_ms: float
    path: Path
    file: Path | None = None  # the fast form to open instead of the model (form "fast"), checked by its SHA-256


def host_fingerprint() -> dict[str, Any]:
    """What makes a timing valid only on this machine: CPU model, its int8/bf16 flags, cores."""
    return {"cpu": cpu_model(), "flags": cpu_flags(), "cores": os.cpu_count() or 1}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tune_locations(model: Path) -> tuple[Path, Path]:
    """(beside the model, in the cache) for ``model``'s tune file."""
    model = Path(model)
    beside = model.with_name(model.name + ".tune.json")
    key = hashlib.sha256(str(model.resolve()).encode()).hexdigest()[:20]  # by path: no hashing of big models
    cached = cache_dir() / "tune" / f"{model.name}-{key}.tune.json"
    return beside, cached


def tune_target(model: Path) -> Path:
    """Where ``fcnedge tune`` writes: beside the model when that folder is writable, else the cache."""
    beside, cached = tune_locations(model)
    return beside if os.access(beside.parent, os.W_OK) else cached


def read_tuned(model: Path) -> Tuned | None:
    """The tuned configuration for ``model`` on this machine, or None (no file, another model or machine, or an
    unreadable file: each logged, none an error: the defaults then apply)."""
    sha = None
    for path in tune_locations(model):
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text())
            pick = doc["pick"]
            sha = sha or file_sha256(model)
            if doc.get("version") != TUNE_VERSION or doc.get("model_sha256") != sha:
                log.warning("%s was tuned for another version of the model: ignored (run fcnedge tune again)", path)
                continue
            if doc.get("host") != host_fingerprint():
                log.warning("%s was tuned on another machine: ignored (run fcnedge tune on this one)", path)
                continue
            tuned = Tuned(
                str(pick["provider"]),
                int(pick["threads"]),
                int(pick["batch"]),
                float(pick["p50_ms"]),
                path,
                _tuned_file(pick, path),
            )
            check_pick(tuned)
            return tuned
        except ConfigError as exc:
            log.warning("%s holds an invalid pick (%s): ignored (run fcnedge tune again)", path, exc)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s is unreadable (%s): ignored (run fcnedge tune again)", path, type(exc).__name__)
    return None


def check_pick(tuned: Tuned) -> None:
    """Validate a tune file's pick as the options it stands for are validated, so a bad value is blamed on
    the file, never on a --threads or --provider the user did not give.

    Raises:
        ConfigError: an unknown provider, a thread count out of range, or a batch under 1.
    """
    from fcnedge.runtime.providers import parse_providers
    from fcnedge.specs import max_threads

    if tuned.batch < 1:
        raise ConfigError(f"batch {tuned.batch} is under 1")
    if not 0 <= tuned.threads <= max_threads():
        raise ConfigError(f"threads {tuned.threads} is outside 0..{max_threads()}")
    try:
        parse_providers(tuned.provider)
    except ConfigError:
        raise ConfigError(f"provider {tuned.provider!r} is unknown") from None


def _tuned_file(pick: dict[str, Any], path: Path) -> Path | None:
    """The fast-form file a pick names, if it is still there with the bytes that were timed (else logged, None:
    the model itself is opened, with the rest of the pick)."""
    if pick.get("form", "as-is") != "fast":
        return None
    file = Path(pick["file"])
    if not file.is_file() or file_sha256(file) != pick["file_sha256"]:
        log.warning("%s picked the fast form %s, which is missing or changed: the model itself is used", path, file)
        return None
    return file


@dataclass(frozen=True)
class Candidate:
    provider: str
    threads: int
    batch: int
    form: str = "as-is"  # or "fast": the model's exact fast form (runtime upsampling, uint8 input)

    @property
    def label(self) -> str:
        threads = "default threads" if self.threads == 0 else f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"{self.provider}, {threads}, batch {self.batch}, {self.form}"


DEFAULT = Candidate("cpu", 0, 4)  # what predict runs without tuning or options


def candidates(
    providers: list[str], threads: list[int], batches: list[int], *, openvino: bool, fast: bool = False
) -> tuple[list[Candidate], list[str]]:
    """The grid to time, the untuned default first, and notes on what was left out (OpenVINO not installed);
    ``fast``: every configuration also on the model's fast form."""
    notes = []
    if "openvino" in providers and not openvino:
        providers = [p for p in providers if p != "openvino"]
        notes.append("openvino: not installed (pip install 'fcnedge[openvino]'), not timed")
    forms = ["as-is", "fast"] if fast else ["as-is"]
    grid = [Candidate(p, t, b, f) for f in forms for p in providers for t in threads for b in batches]
    return [DEFAULT, *(c for c in grid if c != DEFAULT)], notes


def default_threads_list() -> list[int]:
    """1, half the cores and all cores (deduplicated)."""
    n = os.cpu_count() or 1
    return sorted({1, max(1, n // 2), n})


def check_tune_args(providers: list[str], threads: list[int], runs: int, rounds: int) -> None:
    """Raises ConfigError for a provider other than cpu/openvino, a bad thread count, or too few runs."""
    bad = [p for p in providers if p not in ("cpu", "openvino")]
    if bad or not providers:
        raise ConfigError(f"--providers {','.join(providers)!r} is invalid: tune times cpu and/or openvino")
    cores = os.cpu_count() or 1
    if not threads or any(t < 1 or t > 4 * cores for t in threads):
        raise ConfigError(f"--threads-list {threads} is invalid: use counts from 1 to {4 * cores}, e.g. 1,2")
    if runs < 3 or rounds < 1:
        raise ConfigError(f"--runs {runs} / --rounds {rounds} is invalid: use at least 3 runs and 1 round")


def tune(
    model_path: Path,
    image: np.ndarray,
    cands: list[Candidate],
    *,
    runs: int = 20,
    rounds: int = 3,
    tile: tuple[int, int] | None = None,
    fast_path: Path | None = None,
) -> dict[str, Any]:
    """Time every candidate on ``image`` (interleaved rounds of ``runs // rounds`` calls after one warm-up) and
    return the report, pick included; the first candidate is the reference for the agreement check. Candidates of
    form ``fast`` open ``fast_path``.

    Raises:
        ConfigError: a fast candidate without ``fast_path``.
        FcnEdgeError: a candidate cannot be opened (a provider missing is an error here, not a fallback).
    """
    from fcnedge.runtime.open import open_predictor

    if fast_path is None and any(c.form == "fast" for c in cands):
        raise ConfigError("fast-form candidates need the fast form's file (fcnedge convert makes it)")

    def file_of(c: Candidate) -> Path:
        return fast_path if c.form == "fast" and fast_path is not None else model_path

    preds = {
        c: open_predictor(file_of(c), providers=c.provider, threads=c.threads, batch=c.batch, tile=tile) for c in cands
    }
    ref = None
    quantised = _is_quantised(model_path)
    need = AGREEMENT_MIN_QUANTISED if quantised else AGREEMENT_MIN
    agreement: dict[Candidate, float] = {}
    for c, p in preds.items():
        ids = p.predict(image)  # warm-up and the agreement check
        ref = ids if ref is None else ref
        agreement[c] = float((ids == ref).mean())
    times: dict[Candidate, list[float]] = {c: [] for c in cands}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for c, p in preds.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                p.predict(image)
                times[c].append((time.perf_counter() - t0) * 1e3)
    rows = []
    for c in cands:
        ok = agreement[c] >= need
        rows.append(
            {
                **asdict(c),
                "p50_ms": float(np.median(times[c])),
                "p90_ms": float(np.percentile(times[c], 90)),
                "agreement": agreement[c],
                "kept": ok,
                **({} if ok else {"why": f"class ids agree on {agreement[c]:.2%} < {need:.1%} of pixels"}),
            }
        )
    kept = [r for r in rows if r["kept"]]
    best = min(kept, key=lambda r: r["p50_ms"])
    pick = {k: best[k] for k in ("provider", "threads", "batch", "p50_ms", "form")}
    if best["form"] == "fast" and fast_path is not None:
        pick |= {"file": str(fast_path), "file_sha256": file_sha256(fast_path)}
    return {
        "version": TUNE_VERSION,
        "fcnedge": __version__,
        "model": str(model_path),
        "model_sha256": file_sha256(model_path),
        "host": host_fingerprint(),
        "shape": list(image.shape[:2]),
        "runs": per_round * rounds,
        "agreement_min": need,
        "rows": rows,
        "pick": pick,
        "reference": asdict(cands[0]),
        "reference_p50_ms": rows[0]["p50_ms"],
    }


def _is_quantised(path: Path) -> bool:
    """Whether the graph holds int8 ops, QDQ or QOperator (read without running it). The edge install has no
    ``onnx`` package: there the op types are found as the length-prefixed strings protobuf stores them as
    (field 4 of NodeProto), which float models do not contain."""
    from fcnedge.runtime.session import QUANT_OPS, quantised_ops
    from fcnedge.sources import is_ort_format

    data = Path(path).read_bytes()
    if is_ort_format(path, data[:8]):  # ONNX Runtime's own format (a flatbuffer): op types are plain strings in it
        return any(op.encode() in data for op in QUANT_OPS)
    try:
        import onnx
    except ImportError:
        return any(b"\x22" + bytes([len(op)]) + op.encode() in data for op in QUANT_OPS)
    return bool(quantised_ops(onnx.load_from_string(data)))


def write_tuned(target: Path, report: dict[str, Any]) -> None:
    """Write the report atomically (a full disk or read-only folder is one line, nothing at the final name)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with writing(target):
        atomic_write_json(target, versioned("tune", report))
