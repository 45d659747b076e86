"""The demo loop: capture thread -> Predictor -> overlay -> window and/or recording, with per-frame timings."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.demo.capture import FrameSource
from fcnedge.demo.overlay import blend, draw_legend, draw_stats, palette_bgr
from fcnedge.errors import ConfigError, SourceError
from fcnedge.fsutil import atomic_write_json, tmp_prefix, writing
from fcnedge.protocols import Predictor
from fcnedge.results import versioned

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Options of ``fcnedge demo``."""

    source: str = "0"
    input_size: tuple[int, int] | None = (352, 480)
    alpha: float = 0.5
    record: Path | None = None
    stats: Path | None = None
    headless: bool = False
    max_frames: int | None = None
    live: bool | None = None
    provider: str = "CPUExecutionProvider"
    model_file: str = ""  # the file that ran (tune may have picked the model's fast form)
    snapshot_dir: Path = Path(".")
    pick: dict[str, Any] | None = None  # what --fps / --budget-ms chose (model, scale, engine, tile, ...)


def gui_available() -> bool:
    """Whether this OpenCV build can open windows (the headless wheel cannot)."""
    info = cv2.getBuildInformation()
    for line in info.splitlines():
        if line.strip().startswith("GUI:"):
            return "NONE" not in line.upper()
    return False


def check_window_support(headless: bool) -> None:
    """Raise ConfigError with the fix when a window is asked for on a GUI-less OpenCV.

    Raises:
        ConfigError: no GUI support and not headless.
    """
    if not headless and not gui_available():
        raise ConfigError(
            "this OpenCV build has no GUI support (opencv-python-headless), so no window can open: run with "
            "--headless --record out.mp4, or install the GUI wheel: pip uninstall -y opencv-python-headless && "
            "pip install opencv-python"
        )


class Segmenter:
    """Frame (BGR) -> class ids at frame size, through a Predictor, optionally at a fixed input size."""

    def __init__(self, pred: Predictor, input_size: tuple[int, int] | None) -> None:
        self.pred = pred
        self.input_size = input_size
        self.present: list[int] = []  # classes in the last frame, for the legend

    def __call__(self, bgr: NDArray[np.uint8], times: dict[str, float]) -> NDArray[np.uint8]:
        t0 = time.perf_counter()
        small = bgr
        if self.input_size is not None and bgr.shape[:2] != self.input_size:
            h, w = self.input_size
            # bilinear, then the colour swap on the smaller image: 0.5 ms instead of 3.5 ms (INTER_AREA, full size)
            small = np.asarray(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
        rgb: NDArray[np.uint8] = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        t1 = time.perf_counter()
        ids = self.pred.predict(rgb)
        self.present = np.flatnonzero(np.bincount(ids.ravel(), minlength=len(self.pred.meta.class_names))).tolist()
        t2 = time.perf_counter()
        if ids.shape != bgr.shape[:2]:
            ids = np.asarray(cv2.resize(ids, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST), np.uint8)
        times["resize"] = (t1 - t0) * 1e3
        times["model"] = (t2 - t1) * 1e3
        times["upsample"] = (time.perf_counter() - t2) * 1e3
        return ids


class Recorder:
    """An mp4 writer opened on the first frame, written to a hidden partial file and, on close (also after an
    error or a dropped camera), released so the container is finalised, then renamed into place."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = Path(path), fps if fps > 0 else 15.0
        self.partial = self.path.with_name(f"{tmp_prefix(self.path.stem)}partial{self.path.suffix or '.mp4'}")
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame: NDArray[np.uint8]) -> None:
        if self.writer is None:
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                self.partial.unlink(missing_ok=True)
                raise SourceError(
                    f"cannot write video {self.path}: it needs an existing folder with free space and a .mp4 name"
                )
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        if self.frames and _playable(self.partial):
            os.replace(self.partial, self.path)
            return
        self.partial.unlink(missing_ok=True)
        if self.frames:
            raise SourceError(f"could not write the video {self.path} (disk full?): free space or choose another path")


def _playable(path: Path) -> bool:
    """Whether a finished recording opens and yields a frame (a full disk leaves a file that does not)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return bool(cap.isOpened() and cap.read()[0])
    finally:
        cap.release()


def run_demo(pred: Predictor, cfg: DemoConfig) -> dict[str, Any]:
    """Run until the source ends, ``max_frames`` frames, or q/Esc; returns (and optionally writes) the stats.

    Three stages overlap: capture (its own thread; a live source drops frames there, never queues them), inference
    (its own thread) and drawing, recording and the window (this thread, where GUI calls belong). A file source in
    the default mode hands every frame over, in order. The FPS shown and recorded is end to end: overlays finished
    per second of wall time.

    Raises:
        SourceError: the source cannot be opened or the recording cannot be written.
        ConfigError: a window was requested on a GUI-less OpenCV.
    """
    check_window_support(cfg.headless)
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ConfigError(f"--alpha {cfg.alpha} is invalid: use a value in [0, 1]")
    seg = Segmenter(pred, cfg.input_size)
    if cfg.input_size is not None:  # compile/allocate before the first frame, as a live demo does before it shows
        t0 = time.perf_counter()
        seg(np.zeros((*cfg.input_size, 3), dtype=np.uint8), {})
        log.info("warm-up %.0f ms", (time.perf_counter() - t0) * 1e3)
    src = FrameSource(cfg.source, live=cfg.live).start()
    lut = palette_bgr(pred.meta.palette)
    rec = Recorder(cfg.record, src.fps) if cfg.record else None
    state = {"paused": False, "mask_only": False, "quit": False}
    frames: list[dict[str, Any]] = []
    t_first: float | None = None
    worker = _Inference(src, seg, cfg.max_frames).start()
    try:
        while not state["quit"]:
            item = worker.get()
            if item is None:
                break
            frame, ids, times, t_pick = item
            t_first = t_first or frame.t_capture
            t0 = time.perf_counter()
            shown = blend(frame.bgr, ids, lut, cfg.alpha, mask_only=bool(state["mask_only"]))
            fps = len(frames) / max(1e-9, time.perf_counter() - t_first) if frames else 0.0
            draw_legend(shown, pred.meta.class_names, lut, present=times.pop("present"))  # type: ignore[arg-type]
            draw_stats(shown, fps, {k: times[k] for k in ("model",)}, cfg.provider)
            if rec is not None:
                rec.write(shown)
            times["overlay"] = (time.perf_counter() - t0) * 1e3
            if not cfg.headless:
                _window(shown, state, cfg)
            # e2e: from taking the frame to the finished overlay (written/shown); age: how long the frame waited
            times["e2e"] = (time.perf_counter() - t_pick) * 1e3
            times["age"] = (t_pick - frame.t_capture) * 1e3
            frames.append({"index": frame.index, **{k: round(v, 3) for k, v in times.items()}})
    finally:
        worker.stop()
        src.close()
        if rec is not None:
            rec.close()
        if not cfg.headless:
            cv2.destroyAllWindows()
    if not frames and not state["quit"]:
        why = src.error or (f"{src.skipped} unreadable image file(s)" if src.skipped else "it holds no frames")
        raise SourceError(f"no frame could be read from {cfg.source} ({why}): pass a camera index, a video or images")
    return _finish(frames, src, t_first, cfg)


class _Inference:
    """The inference stage on its own thread: frames from the source, ids out through a two-slot queue (the
    drawing stage works on one result while the next is computed). An error here is raised in the caller."""

    def __init__(self, src: FrameSource, seg: Segmenter, max_frames: int | None) -> None:
        self.src, self.seg, self.max_frames = src, seg, max_frames
        self.results: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="fcnedge-inference", daemon=True)

    def start(self) -> _Inference:
        self.thread.start()
        return self

    def _put(self, item: Any) -> bool:
        while not self.halt.is_set():
            try:
                self.results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        done = 0
        try:
            while not self.halt.is_set() and (self.max_frames is None or done < self.max_frames):
                frame = self.src.get()
                if frame is None:
                    break
                t_pick = time.perf_counter()
                times: dict[str, Any] = {}
                ids = self.seg(frame.bgr, times)
                times["present"] = list(self.seg.present)
                if not self._put((frame, ids, times, t_pick)):
                    return
                done += 1
        except BaseException as exc:  # handed to the caller, which raises it
            self.error = exc
        finally:
            self._put(None)

    def get(self) -> Any:
        """The next (frame, ids, times, t_pick), or None at the end.

        Raises:
            BaseException: what the inference stage raised.
        """
        item = self.results.get()
        if item is None and self.error is not None:
            raise self.error
        return item

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(timeout=10)


def _window(shown: NDArray[np.uint8], state: dict[str, bool], cfg: DemoConfig) -> None:
    cv2.imshow("fcnedge", shown)
    while True:
        key = cv2.waitKey(1 if not state["paused"] else 50) & 0xFF
        if key in (ord("q"), 27):
            state["quit"] = True
        elif key == ord(" "):
            state["paused"] = not state["paused"]
        elif key == ord("m"):
            state["mask_only"] = not state["mask_only"]
        elif key == ord("s"):
            path = cfg.snapshot_dir / f"fcnedge-snapshot-{time.strftime('%Y%m%d-%H%M%S')}.png"
            cv2.imwrite(str(path), shown)
            log.info("snapshot %s", path)
        if not state["paused"] or state["quit"]:
            return


def _finish(frames: list[dict[str, Any]], src: FrameSource, t_first: float | None, cfg: DemoConfig) -> dict[str, Any]:
    wall = (time.perf_counter() - t_first) if t_first else 0.0
    keys = ("model", "e2e", "age", "overlay", "resize", "upsample")
    med = {k: float(np.median([f[k] for f in frames])) for k in keys} if frames else {}
    stats = {
        "source": cfg.source,
        "frames": len(frames),
        "captured": src.captured,
        "dropped": src.dropped,
        "skipped_unreadable": src.skipped,
        "wall_s": wall,
        "fps": len(frames) / wall if wall else 0.0,
        "median_ms": med,
        "ended_because": src.error
        or ("max-frames" if cfg.max_frames and len(frames) >= cfg.max_frames else "end of stream"),
        "record": str(cfg.record) if cfg.record else None,
        "provider": cfg.provider,
        "model_file": cfg.model_file,
        "input_size": list(cfg.input_size) if cfg.input_size else None,
        **(
            {k: cfg.pick[k] for k in ("model", "scale", "tile", "engine")} | {"pick": cfg.pick}
            if cfg.pick is not None
            else {}
        ),
        "per_frame": frames,
    }
    if cfg.stats is not None:
        with writing(cfg.stats):
            atomic_write_json(cfg.stats, versioned("demo-stats", stats), indent=1)
    return stats
