"""Segmenting files into outputs: the per-image job that the local engine and the Ray engine share, so both
write the same bytes under the same names (class-id PNG, optional overlay PNG and float16 probabilities)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import FcnEdgeError, InputImageError
from fcnedge.fsutil import atomic_path, check_output
from fcnedge.imagesize import DEFAULT_MAX_PIXELS
from fcnedge.protocols import Predictor

FIELDS = ("path", "output", "status", "error", "ms", "provider", "node", "sha256")


class Status(str, Enum):
    """A manifest row's status (a str: it is written to and read back from JSON as its value)."""

    OK = "ok"
    FAILED = "failed"
    PENDING = "pending"  # listed before a Ray job's work, not done yet


@dataclass(frozen=True)
class OutputSpec:
    """Where and what ``segment_file`` writes."""

    folder: Path
    overlay: bool = False
    probs: bool = False
    color: bool = False
    force: bool = False

    def targets(self, path: Path) -> list[Path]:
        """The files one input writes: its mask first, then the overlay, the probabilities and the colour mask,
        each when asked."""
        stem = Path(path).stem
        out = [self.folder / f"{stem}.png"]
        if self.overlay:
            out.append(self.folder / f"{stem}.overlay.png")
        if self.probs:
            out.append(self.folder / f"{stem}.probs.npy")
        if self.color:
            out.append(self.folder / f"{stem}.color.png")
        return out


def write_png(path: Path, array: NDArray[Any]) -> None:
    """Encode ``array`` as PNG into ``path``.

    Raises:
        InputImageError: OpenCV cannot encode it.
    """
    import cv2

    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise InputImageError(f"could not encode {path.name} as PNG")
    path.write_bytes(buf.tobytes())


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def segment_file(
    pred: Predictor,
    path: Path,
    spec: OutputSpec,
    *,
    provider: str = "",
    node: str = "",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """Segment one image file and write its outputs atomically; returns its manifest row.

    A bad input (unreadable, corrupt, an output that exists without ``force``) gives a ``failed`` row, never an
    exception. Without ``force`` each output is published create-exclusive: of two processes writing the same
    output, the second gets a ``failed`` row and the first one's file stays.

    Raises:
        OSError: writing failed (disk full, folder gone): the caller decides whether to go on.
    """
    from fcnedge.runtime.colors import blend, colorize, draw_legend, palette_bgr
    from fcnedge.runtime.postprocess import argmax_ids
    from fcnedge.runtime.predictor import softmax
    from fcnedge.runtime.preprocess import read_image

    t0 = time.perf_counter()
    targets = spec.targets(path)
    stem = Path(path).stem
    claim = not spec.force
    row: dict[str, Any] = {"path": str(path), "output": str(targets[0]), "provider": provider, "node": node}
    try:
        for t in targets:
            check_output(t, force=spec.force, sweep=False)
        image = read_image(path, max_pixels=max_pixels)
        if spec.probs:  # the full K x H x W logits are needed only here
            logits = pred.logits(image)
            ids = argmax_ids(logits, threads=getattr(pred, "threads", 0))
            with atomic_path(spec.folder / f"{stem}.probs.npy", exclusive=claim) as tmp, tmp.open("wb") as fh:
                np.save(fh, softmax(logits).astype(np.float16))
            del logits
        else:
            ids = pred.predict(image)  # streams: one band of logits at a time
        with atomic_path(targets[0], exclusive=claim) as tmp:
            write_png(tmp, ids)
        lut = palette_bgr(pred.meta.palette)
        if spec.overlay:
            shown = blend(np.ascontiguousarray(image[:, :, ::-1]), ids, lut, 0.5)
            present = np.flatnonzero(np.bincount(ids.ravel(), minlength=pred.meta.num_classes)[: pred.meta.num_classes])
            draw_legend(shown, pred.meta.class_names, lut, present=present.tolist())
            with atomic_path(spec.folder / f"{stem}.overlay.png", exclusive=claim) as tmp:
                write_png(tmp, shown)
        if spec.color:
            with atomic_path(spec.folder / f"{stem}.color.png", exclusive=claim) as tmp:
                write_png(tmp, colorize(ids, lut))
    except FcnEdgeError as exc:
        return {**row, "status": Status.FAILED, "error": str(exc), "ms": _ms(t0), "sha256": ""}
    return {**row, "status": Status.OK, "error": "", "ms": _ms(t0), "sha256": file_sha256(targets[0])}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 2)
