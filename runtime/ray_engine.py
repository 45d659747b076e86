"""``fcnedge predict --engine ray``: batch segmentation on a Ray cluster with Ray Data.

Workers are actors (``ray.data.ActorPoolStrategy``) whose constructor opens the predictor once through
``fcnedge.runtime.open_predictor`` and whose ``__call__`` segments a batch of *paths*: images are decoded inside
the worker, so a huge photo costs one worker's memory, not the object store's, and no image is resized. Outputs
are written atomically by the workers (the same bytes and names as the local engine); the driver collects one row
per input and writes the manifest (JSON lines) once, so a task Ray retries leaves neither a half-written file nor
a duplicate row. ``--resume`` skips inputs whose manifest row is ``ok`` and whose output still has the recorded
sha256.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fcnedge.errors import ConfigError, MissingDependencyError, OutputExistsError
from fcnedge.fsutil import atomic_write_text
from fcnedge.runtime.batch import FIELDS, OutputSpec, file_sha256, segment_file

log = logging.getLogger(__name__)

INSTALL = "pip install 'fcnedge[ray]'"
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class RayJob:
    """A Ray batch job: the model (an .onnx path), the predictor options, the outputs and the resources.

    Attributes:
        options: keyword arguments of ``open_predictor`` (providers, tile, overlap, blend, batch, meta...).
        actors: size of the actor pool (0: as many as fit, leaving one CPU for Ray Data's own tasks).
        threads: ONNX Runtime threads per actor, also the CPUs Ray reserves for each.
        gpus: GPUs per actor (1 for cuda/tensorrt).
    """

    model: str
    outputs: OutputSpec
    options: dict[str, Any] = field(default_factory=dict)
    address: str | None = None
    actors: int = 0
    threads: int = 1
    gpus: float = 0.0
    batch_size: int = 4
    resume: bool = False

    def __post_init__(self) -> None:
        if self.actors < 0 or self.threads < 1 or self.batch_size < 1:
            raise ConfigError(
                f"--actors {self.actors}, --threads-per-actor {self.threads}, --batch-size {self.batch_size}: "
                "use actors >= 0 (0: automatic), threads and batch size >= 1"
            )


class Segmenter:
    """The Ray Data worker: one predictor per actor, a batch of paths per call."""

    def __init__(self, model: str, options: dict[str, Any], outputs: OutputSpec) -> None:
        import ray

        from fcnedge.runtime.open import open_predictor

        self.pred = open_predictor(model, **options)
        self.outputs = outputs
        self.node = ray.get_runtime_context().get_node_id()[:12]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for p in batch["path"]:
            try:
                rows.append(
                    segment_file(self.pred, Path(str(p)), self.outputs, provider=self.pred.provider, node=self.node)
                )
            except OSError as exc:  # a worker's disk: that input fails, the job goes on
                rows.append(_failed(str(p), self.outputs, f"could not write its outputs ({exc.strerror})", self.node))
        return {k: np.array([r[k] for r in rows], dtype=object) for k in FIELDS}


def _failed(path: str, outputs: OutputSpec, error: str, node: str = "") -> dict[str, Any]:
    out = str(outputs.targets(Path(path))[0])
    return {"path": path, "output": out, "status": "failed", "error": error, "ms": 0.0, "provider": "", "node": node,
            "sha256": ""}  # fmt: skip


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The manifest's rows by input path (the last row of a path wins)."""
    rows: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the last line of a job killed while writing it
                continue
            if isinstance(row, dict) and "path" in row:
                rows[row["path"]] = row
    return rows


def still_done(row: dict[str, Any]) -> bool:
    """An ``ok`` row whose output exists with the recorded hash: nothing to redo."""
    out = Path(row.get("output", ""))
    return row.get("status") == "ok" and out.is_file() and file_sha256(out) == row.get("sha256")


def plan_actors(job: RayJob, cluster_cpus: float) -> int:
    """How many actors to run: the user's number, or as many as fit while one CPU stays free for Ray Data's
    own tasks (two one-CPU actors on a two-CPU machine starve them and the job stalls, backpressured)."""
    if job.actors:
        return job.actors
    return max(1, int((cluster_cpus - 1) // job.threads))


def run_job(job: RayJob, paths: Sequence[Path]) -> dict[str, Any]:
    """Segment ``paths`` on Ray; writes the outputs and ``<folder>/manifest.jsonl``; returns the summary.

    Raises:
        MissingDependencyError: Ray is not installed.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError(f"--engine ray needs Ray Data: {INSTALL}") from None
    manifest = job.outputs.folder / MANIFEST
    if manifest.exists() and not (job.resume or job.outputs.force):
        raise OutputExistsError(f"{manifest} exists: pass --resume to continue that job or --force to start anew")
    previous = read_manifest(manifest) if job.resume else {}
    skipped, blocked, todo = [], [], []
    for p in map(str, paths):
        if p in previous and still_done(previous[p]):
            skipped.append(p)
        # outputs that exist before the job are refused here (without --force); so whatever a worker finds later
        # was written by this job, by a task that Ray retried after its worker died: the workers may replace it
        elif not job.outputs.force and any(t.exists() for t in job.outputs.targets(Path(p))):
            blocked.append(p)
        else:
            todo.append(p)
    exists = "output exists: pass --force to replace it (or --resume to skip what the manifest has done)"
    pre = [_failed(p, job.outputs, exists) for p in blocked]
    started = not ray.is_initialized()
    if started:
        ray.init(address=job.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    t0 = time.perf_counter()
    job.outputs.folder.mkdir(parents=True, exist_ok=True)
    # rows are appended as they arrive, so a driver killed mid-job leaves a manifest that --resume can use;
    # the complete manifest, in input order, replaces it atomically at the end
    with manifest.open("a" if job.resume else "w") as sink:
        try:
            rows = pre + (_map(job, todo, sink) if todo else [])
        finally:
            if started:
                ray.shutdown()
    wall = time.perf_counter() - t0
    merged = {**{p: previous[p] for p in skipped}, **{r["path"]: r for r in rows}}
    ordered = [merged[str(p)] for p in paths if str(p) in merged]
    atomic_write_text(manifest, "".join(json.dumps(r) + "\n" for r in ordered))
    failed = [r for r in rows if r["status"] != "ok"]
    return {
        "done": len(rows) - len(failed),
        "failed": len(failed),
        "skipped": len(skipped),
        "images_per_s": len(rows) / wall if wall > 0 and rows else 0.0,
        "manifest": str(manifest),
        "failures": [(r["path"], r["error"]) for r in failed],
    }


def _map(job: RayJob, todo: list[str], sink: Any) -> list[dict[str, Any]]:
    import ray
    import ray.data

    actors = plan_actors(job, float(ray.cluster_resources().get("CPU", 1)))
    ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=max(1, min(len(todo), 4 * actors)))
    out = ds.map_batches(
        Segmenter,
        fn_constructor_kwargs={"model": job.model, "options": job.options, "outputs": replace(job.outputs, force=True)},
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=job.threads,
        num_gpus=job.gpus or None,
        batch_size=job.batch_size,
        batch_format="numpy",
    )
    rows = []
    for r in out.iter_rows():
        row = {k: _plain(r[k]) for k in FIELDS}
        rows.append(row)
        sink.write(json.dumps(row) + "\n")
        sink.flush()
    log.info("ray: %d inputs on %d actors of %d threads", len(rows), actors, job.threads)
    return rows


def _plain(v: Any) -> Any:
    """numpy scalars from Ray's blocks as plain JSON values."""
    return v.item() if hasattr(v, "item") else v
