"""``fcnedge predict --engine ray``: batch segmentation on a Ray cluster with Ray Data.

Workers are actors (``ray.data.ActorPoolStrategy``) whose constructor opens the predictor once through
``fcnedge.runtime.open_predictor`` and whose ``__call__`` segments a batch of *paths*: images are decoded inside
the worker, so a huge photo costs one worker's memory, not the object store's, and no image is resized. Outputs
are written atomically by the workers (the same bytes and names as the local engine); the driver collects one row
per input and writes the manifest (JSON lines) once, so a task Ray retries leaves neither a half-written file nor
a duplicate row. ``--resume`` skips inputs whose manifest row is ``ok`` and whose output still has the recorded
sha256.

Nothing is lost when the driver dies. Before any work the manifest lists every input, those to do as
``pending``; each worker appends the row of every image it finishes to its own journal
(``<folder>/.fcnedge-journal/``) right after publishing the outputs, so a driver killed by SIGKILL leaves, between
manifest and journals, a row for every finished mask (Ray blocks reach the driver only whole, hundreds of rows
late). Ctrl-C or SIGTERM writes the manifest merged with the journals before the process ends. ``--resume``
merges both; an input still ``pending`` whose output exists was written by the interrupted job (the exists check
ran before it started) and is redone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fcnedge.errors import ConfigError, MissingDependencyError, OutputError, OutputExistsError
from fcnedge.fsutil import atomic_write_text
from fcnedge.imagesize import DEFAULT_MAX_PIXELS
from fcnedge.runtime.batch import FIELDS, OutputSpec, Status, file_sha256, segment_file
from fcnedge.runtime.ray_reaper import start_reaper, stop_reaper

log = logging.getLogger(__name__)

INSTALL = "pip install 'fcnedge[ray]'"
MANIFEST = "manifest.jsonl"
JOURNAL = ".fcnedge-journal"
PENDING = Status.PENDING


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
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.actors < 0 or self.threads < 1 or self.batch_size < 1:
            raise ConfigError(
                f"--actors {self.actors}, --threads-per-actor {self.threads}, --batch-size {self.batch_size}: "
                "use actors >= 0 (0: automatic), threads and batch size >= 1"
            )


class Segmenter:
    """The Ray Data worker: one predictor per actor, a batch of paths per call."""

    def __init__(self, model: str, options: dict[str, Any], outputs: OutputSpec, max_pixels: int) -> None:
        import os

        import ray

        from fcnedge.runtime.open import open_predictor

        self.pred = open_predictor(model, **options)
        self.outputs = outputs
        self.max_pixels = max_pixels
        self.node = ray.get_runtime_context().get_node_id()[:12]
        self.journal = outputs.folder / JOURNAL / f"{self.node}-{os.getpid()}.jsonl"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for p in batch["path"]:
            try:
                row = segment_file(
                    self.pred, Path(str(p)), self.outputs, provider=self.pred.provider, node=self.node,
                    max_pixels=self.max_pixels,
                )  # fmt: skip
            except OSError as exc:  # a worker's disk: that input fails, the job goes on
                row = _failed(str(p), self.outputs, f"could not write its outputs ({exc.strerror})", self.node)
            self._record(row)
            rows.append(row)
        return {k: np.array([r[k] for r in rows], dtype=object) for k in FIELDS}

    def _record(self, row: dict[str, Any]) -> None:
        """Append ``row`` to this worker's journal, flushed: it survives the driver (a lost journal line only
        means that image is redone on --resume)."""
        try:
            self.journal.parent.mkdir(exist_ok=True)
            with self.journal.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
        except OSError as exc:
            log.warning("could not journal %s (%s): --resume would redo it", row["path"], exc.strerror)


def _failed(path: str, outputs: OutputSpec, error: str, node: str = "") -> dict[str, Any]:
    out = str(outputs.targets(Path(path))[0])
    row = {
        "path": path,
        "output": out,
        "status": Status.FAILED,
        "error": error,
        "ms": 0.0,
        "provider": "",
        "node": node,
    }
    return {**row, "sha256": ""}


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


def read_journals(folder: Path) -> dict[str, dict[str, Any]]:
    """The rows the workers journalled in ``folder`` (the output folder), by input path."""
    rows: dict[str, dict[str, Any]] = {}
    for journal in sorted((folder / JOURNAL).glob("*.jsonl")):
        rows.update(read_manifest(journal))
    return rows


def write_manifest(manifest: Path, paths: Sequence[Path], rows: dict[str, dict[str, Any]]) -> None:
    """The manifest, atomically: one row per input in input order."""
    atomic_write_text(manifest, "".join(json.dumps(rows[str(p)]) + "\n" for p in paths if str(p) in rows))


def still_done(row: dict[str, Any]) -> bool:
    """An ``ok`` row whose output exists with the recorded hash: nothing to redo."""
    out = Path(row.get("output", ""))
    return row.get("status") == Status.OK and out.is_file() and file_sha256(out) == row.get("sha256")


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
    folder = job.outputs.folder
    manifest = folder / MANIFEST
    if manifest.exists() and not (job.resume or job.outputs.force):
        raise OutputExistsError(f"{manifest} exists: pass --resume to continue that job or --force to start anew")
    if job.resume:
        previous = {**read_manifest(manifest), **read_journals(folder)}
    else:
        previous = {}
        shutil.rmtree(folder / JOURNAL, ignore_errors=True)  # an earlier job's, replaced with --force
    rows, todo, blocked = plan_rows(job, paths, previous)
    started = not ray.is_initialized()
    reaper = start_reaper(os.getpid()) if started else None  # it ends only this process's descendants
    t0 = time.perf_counter()
    done: list[dict[str, Any]] = []
    try:
        if started:
            connect(job.address)  # an unreachable cluster fails here, before anything is written
        folder.mkdir(parents=True, exist_ok=True)
        write_manifest(manifest, paths, rows)  # every input listed before any work: the to-do ones as pending
        try:
            if todo:
                with interrupt_flag() as interrupted:
                    _map(job, todo, done)
                if interrupted.is_set():  # Ctrl-C reached Ray's iterator, which may end quietly: never exit 0
                    raise KeyboardInterrupt
        finally:  # finished, failed or interrupted: what the workers finished is recorded either way
            rows.update(read_journals(folder))
            rows.update({r["path"]: r for r in done})
            write_manifest(manifest, paths, rows)
        left = [p for p in todo if rows[p].get("status") == PENDING]
        if left:  # the stream ended without them: a job that says done must have done everything
            raise OutputError(
                f"the Ray job ended with {len(left)} of {len(todo)} inputs not processed (first: {left[0]}): run the "
                "same command with --resume to finish them"
            )
    finally:
        if started:
            ray.shutdown()
        if reaper is not None:  # Ray is down: the watcher has nothing to end
            stop_reaper(reaper)
    if not any(r.get("status") == PENDING for r in rows.values()):
        shutil.rmtree(folder / JOURNAL, ignore_errors=True)
    wall = time.perf_counter() - t0
    ran = [rows[p] for p in todo + blocked]
    failed = [r for r in ran if r["status"] != Status.OK]
    return {
        "done": len(ran) - len(failed),
        "failed": len(failed),
        "skipped": len(rows) - len(ran),
        "images_per_s": len(todo) / wall if wall > 0 and todo else 0.0,
        "manifest": str(manifest),
        "failures": [(r["path"], r["error"]) for r in failed],
    }


def check_reachable(address: str | None, *, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when a cluster address (``ray://host:port`` or ``host:port``) does not answer:
    Ray itself retries for tens of seconds and then raises a traceback.

    Raises:
        ConfigError: the address does not accept a connection within ``timeout`` seconds.
    """
    import socket

    if not address or address in ("auto", "local", "none"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r} is invalid: give auto, ray://HOST:PORT or HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"the Ray cluster at {address} is unreachable ({exc.strerror or type(exc).__name__}): check that it "
            "runs (ray start --head) and the address, or drop --address to run on a local Ray"
        ) from None


def connect(address: str | None) -> None:
    """Start a local Ray (address None) or join a cluster.

    Raises:
        ConfigError: the cluster cannot be reached.
    """
    import ray

    check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, TimeoutError) as exc:
        raise ConfigError(
            f"could not join the Ray cluster at {address or 'auto'} ({type(exc).__name__}: {str(exc)[:120]}): "
            "start it (ray start --head) or drop --address to run on a local Ray"
        ) from None


def plan_rows(
    job: RayJob, paths: Sequence[Path], previous: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    """Each input's starting row, the inputs to run and those blocked: done ones keep their row, outputs that
    exist before the job fail their row (without --force), the rest are ``pending``.

    Outputs that exist before the job are refused here (without --force); so whatever a worker finds later was
    written by this job (by a task Ray retried after its worker died, or by the interrupted job a --resume
    continues: its row is still pending): the workers may replace it.
    """
    exists = "output exists: pass --force to replace it (or --resume to skip what the manifest has done)"
    rows: dict[str, dict[str, Any]] = {}
    todo: list[str] = []
    blocked: list[str] = []
    for p in map(str, paths):
        before = previous.get(p, {})
        if before and still_done(before):
            rows[p] = before
        elif (
            not job.outputs.force
            and before.get("status") != PENDING
            and any(t.exists() for t in job.outputs.targets(Path(p)))
        ):
            rows[p] = _failed(p, job.outputs, exists)
            blocked.append(p)
        else:
            rows[p] = {**_failed(p, job.outputs, "not run yet"), "status": PENDING}
            todo.append(p)
    return rows, todo, blocked


@contextlib.contextmanager
def interrupt_flag() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (SIGINT) while inside, which still raises KeyboardInterrupt as usual: a library that
    catches the interrupt cannot make the job look finished. Only the main thread installs the handler."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        flag.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _map(job: RayJob, todo: list[str], done: list[dict[str, Any]]) -> None:
    """Run ``todo`` on the actor pool; each row, as it reaches the driver, is appended to ``done``."""
    import ray
    import ray.data

    actors = plan_actors(job, float(ray.cluster_resources().get("CPU", 1)))
    ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=max(1, min(len(todo), 4 * actors)))
    out = ds.map_batches(
        Segmenter,
        fn_constructor_kwargs={
            "model": job.model,
            "options": job.options,
            "outputs": replace(job.outputs, force=True),
            "max_pixels": job.max_pixels,
        },
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=job.threads,
        num_gpus=job.gpus or None,
        batch_size=job.batch_size,
        batch_format="numpy",
    )
    for r in out.iter_rows():
        done.append({k: _plain(r[k]) for k in FIELDS})
    log.info("ray: %d inputs on %d actors of %d threads", len(done), actors, job.threads)


def _plain(v: Any) -> Any:
    """numpy scalars from Ray's blocks as plain JSON values."""
    return v.item() if hasattr(v, "item") else v
