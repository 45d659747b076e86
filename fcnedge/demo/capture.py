"""Frame sources on their own thread: a camera, a video file, or a folder/glob of images.

Live sources (cameras, or files with ``live=True``) keep a one-frame queue where the newest frame wins, so a slow
model drops frames instead of falling behind; file sources in the default mode hand over every frame in order.
"""

from __future__ import annotations

import glob
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.data.datasets import IMAGE_EXTS
from fcnedge.errors import SourceError

log = logging.getLogger(__name__)


@dataclass
class Frame:
    """One captured frame (BGR, as OpenCV delivers it) with its index and capture time."""

    index: int
    bgr: NDArray[np.uint8]
    t_capture: float


class FrameSource:
    """A capture thread feeding a one-slot mailbox.

    Args:
        source: camera index (``"0"``), video file, folder of images, or a glob.
        live: newest frame wins (drops frames when the consumer is slow). Cameras are always live; files are read
            at their own frame rate when live.

    Raises:
        SourceError: the source cannot be opened.
    """

    def __init__(self, source: str, *, live: bool | None = None) -> None:
        self.source = source
        self.is_camera = source.isdigit()
        self.images = self._image_list(source) if not self.is_camera else None
        self.cap: cv2.VideoCapture | None = None
        if self.images is None:
            self.cap = cv2.VideoCapture(int(source) if self.is_camera else source)
            if not self.cap.isOpened():
                what = f"camera {source}" if self.is_camera else f"video {source}"
                fix = "check that a camera is connected and not in use" if self.is_camera else "check the path/codec"
                raise SourceError(f"{what} cannot be opened: {fix}, or pass --source video.mp4 / a folder of images")
        self.live = True if self.is_camera else bool(live)
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) if self.cap is not None else 0.0
        self.dropped = 0
        self.captured = 0
        self.ended = False
        self.error: str | None = None
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fcnedge-capture", daemon=True)

    @staticmethod
    def _image_list(source: str) -> list[Path] | None:
        p = Path(source)
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS)
            if not files:
                raise SourceError(f"folder {p} holds no images: pass a folder with .png/.jpg frames")
            return files
        if any(ch in source for ch in "*?["):
            files = sorted(Path(m) for m in glob.glob(source))
            if not files:
                raise SourceError(f"pattern {source!r} matches no files: check the pattern")
            return files
        if p.suffix.lower() in IMAGE_EXTS:
            if not p.is_file():
                raise SourceError(f"image {p} does not exist: check the path")
            return [p]
        if not p.exists():
            raise SourceError(f"source {source} does not exist: pass a camera index, a video file or a folder")
        return None

    skipped = 0  # unreadable image files passed over

    def start(self) -> FrameSource:
        self._thread.start()
        return self

    def _frames(self) -> Iterator[NDArray[np.uint8]]:
        if self.images is not None:
            for path in self.images:
                img = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if img is None:
                    log.info("skipping unreadable frame %s", path)
                    self.skipped += 1
                    continue
                yield np.asarray(img, dtype=np.uint8)
            return
        assert self.cap is not None
        while True:
            ok, frame = self.cap.read()
            if not ok:
                if self.is_camera:
                    self.error = f"camera {self.source} stopped delivering frames"
                return
            yield np.asarray(frame, dtype=np.uint8)

    def _run(self) -> None:
        period = 1.0 / self.fps if (self.live and not self.is_camera and self.fps > 0) else 0.0
        t_next = time.perf_counter()
        try:
            for bgr in self._frames():
                if self._stop.is_set():
                    break
                if period:
                    t_next += period
                    time.sleep(max(0.0, t_next - time.perf_counter()))
                self._put(Frame(self.captured, bgr, time.perf_counter()))
                self.captured += 1
        except cv2.error as exc:  # a device error mid-stream
            self.error = f"capture failed: {exc}"
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if not self.live:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif self._slot is not None:
                self.dropped += 1  # the newest frame wins
            self._slot = frame
            self._cond.notify_all()

    def get(self, timeout: float = 5.0) -> Frame | None:
        """The next frame, or None when the stream has ended (or nothing arrived within ``timeout``)."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while self._slot is None:
                if self.ended:
                    return None
                left = deadline - time.perf_counter()
                if left <= 0:
                    self.error = self.error or f"no frame from {self.source} within {timeout:.0f}s"
                    return None
                self._cond.wait(left)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self.cap is not None:
            self.cap.release()
