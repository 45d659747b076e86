"""``fcnedge predict drive.mp4 -o out/``: one class-id PNG per frame, every frame, resumable.

``out/drive/000000.png`` ... hold the ids of frame 0, 1, ... (each published create-exclusive like every fcnedge
output, so a file that exists is complete); ``out/drive/frames.csv`` lists each finished frame with its timestamp;
``--save-video`` also writes ``out/drive.overlay.mp4``. A video that cannot be opened or holds no frame is one
line; one that ends before the frame count its header declares (truncated, corrupt) keeps every finished mask and
says so in one line (exit 2); ``--resume`` skips the frames whose mask exists and does the rest.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import InputImageError, MissingDependencyError, OutputExistsError
from fcnedge.fsutil import atomic_path, atomic_write_text
from fcnedge.protocols import Predictor
from fcnedge.runtime.ray_engine import INSTALL, RayJob, connect, interrupt_flag
from fcnedge.runtime.ray_reaper import start_reaper, stop_reaper

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

__all__ = ["VIDEO_EXTS", "VideoResult", "is_video", "segment_video", "segment_videos_on_ray"]


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video file (by its suffix)."""
    return path.suffix.lower() in VIDEO_EXTS


@dataclass(frozen=True)
class VideoResult:
    """What one video gave: the folder of masks, how many frames were written now and skipped as done."""

    video: Path
    folder: Path
    written: int
    skipped: int
    frames: int
    declared: int  # the frame count the container declares (0: unknown)
    overlay: Path | None = None

    @property
    def complete(self) -> bool:
        """Every declared frame has its mask (a container that declares none: the stream read to its end)."""
        return self.declared <= 0 or self.frames >= self.declared


def _write_png(path: Path, ids: NDArray[np.uint8]) -> None:
    ok, buf = cv2.imencode(".png", ids)
    if not ok:
        raise OSError(5, "PNG encoding failed")
    with atomic_path(path, exclusive=True) as tmp:
        tmp.write_bytes(buf.tobytes())


def segment_video(
    pred: Predictor,
    video: Path,
    output: Path,
    *,
    resume: bool = False,
    force: bool = False,
    save_video: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
) -> VideoResult:
    """Segment every frame of ``video`` into ``output/<stem>/NNNNNN.png`` (and ``frames.csv``).

    Raises:
        InputImageError: the video cannot be opened or holds no frame.
        OutputExistsError: masks of this video exist and neither ``resume`` nor ``force`` was given.
        OSError: an output cannot be written (the CLI says it in one line).
    """
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise InputImageError(f"video {video} cannot be opened (unreadable or an unknown codec): check the file")
    declared = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    folder = output / video.stem
    existing = sorted(folder.glob("[0-9]*.png")) if folder.is_dir() else []
    if existing and not (resume or force):
        raise OutputExistsError(
            f"{folder} already holds {len(existing)} frame masks of {video.name}: pass --resume to finish the rest, "
            "or --force to redo them"
        )
    folder.mkdir(parents=True, exist_ok=True)
    overlay_path = output / f"{video.stem}.overlay.mp4" if save_video else None
    recorder = None
    if overlay_path is not None:
        from fcnedge.demo.loop import Recorder
        from fcnedge.demo.overlay import blend, palette_bgr

        recorder = Recorder(overlay_path, fps)
        lut = palette_bgr(pred.meta.palette)
    rows: list[tuple[int, float]] = []
    written = skipped = 0
    index = 0
    try:
        while True:
            ok, read = cap.read()
            if not ok or read is None:
                break
            bgr: NDArray[np.uint8] = np.asarray(read, dtype=np.uint8)
            t_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC) or (index * 1e3 / fps if fps else 0.0))
            target = folder / f"{index:06d}.png"
            if resume and target.exists() and recorder is None:
                skipped += 1  # finished by an earlier run: untouched
            else:
                rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                ids = pred.predict(rgb)
                if target.exists() and resume:
                    skipped += 1
                else:
                    if force:
                        target.unlink(missing_ok=True)
                    _write_png(target, ids)
                    written += 1
                if recorder is not None:
                    recorder.write(blend(bgr, ids, lut, 0.5))
            rows.append((index, round(t_ms, 3)))
            index += 1
            if on_frame is not None:
                on_frame(index, declared)
    finally:
        cap.release()
        if recorder is not None:
            recorder.close()
        if rows:  # what is finished is listed, whatever ended the run
            _write_frames_csv(folder / "frames.csv", rows)
    if index == 0:
        folder_empty = not any(folder.iterdir())
        if folder_empty:
            folder.rmdir()
        raise InputImageError(f"video {video} holds no readable frame (corrupt or empty): check the file")
    return VideoResult(video, folder, written, skipped, index, declared, overlay_path)


def _write_frames_csv(path: Path, rows: list[tuple[int, float]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["frame", "file", "timestamp_ms"])
    for i, t in rows:
        writer.writerow([i, f"{i:06d}.png", t])
    atomic_write_text(path, buf.getvalue())


def _video_task(
    model: str, options: dict[str, Any], video: str, folder: str, resume: bool, force: bool, save_video: bool
) -> VideoResult | str:
    """One video on a Ray worker: the predictor opened through the seam with the driver's options; an input or
    output problem comes back as its one-line message (the other videos go on)."""
    from fcnedge.errors import FcnEdgeError
    from fcnedge.runtime.open import open_predictor

    try:
        pred = open_predictor(model, **options)
        return segment_video(pred, Path(video), Path(folder), resume=resume, force=force, save_video=save_video)
    except FcnEdgeError as exc:
        return str(exc)
    except OSError as exc:
        return f"could not write the frame masks of {video} into {folder} ({exc.strerror}): free space, then --resume"


def segment_videos_on_ray(job: RayJob, videos: Sequence[Path], *, save_video: bool = False) -> list[VideoResult | str]:
    """Segment each video as one Ray task (``job``'s model, options, resources, outputs folder and --resume);
    returns, per video in order, its :class:`VideoResult` or the one-line reason it failed.

    Raises:
        MissingDependencyError: Ray is not installed.
        ConfigError: the cluster cannot be reached.
        KeyboardInterrupt: Ctrl-C (the finished frame masks stay; ``--resume`` does the rest).
    """
    import os

    try:
        import ray
    except ImportError:
        raise MissingDependencyError(f"--engine ray needs Ray: {INSTALL}") from None
    started = not ray.is_initialized()
    reaper = start_reaper(os.getpid()) if started else None  # ends this driver's Ray processes if it is killed
    try:
        if started:
            connect(job.address)
        task = ray.remote(num_cpus=job.threads, num_gpus=job.gpus, max_retries=0)(_video_task)
        folder = str(job.outputs.folder)
        refs = [
            task.remote(job.model, job.options, str(v), folder, job.resume, job.outputs.force, save_video)
            for v in videos
        ]
        with interrupt_flag() as interrupted:
            results: list[VideoResult | str] = ray.get(refs)
        if interrupted.is_set():  # Ctrl-C reached Ray, which may return quietly: never report success
            raise KeyboardInterrupt
        return results
    finally:
        if started:
            ray.shutdown()
        if reaper is not None:
            stop_reaper(reaper)
