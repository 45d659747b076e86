"""Drawing: class colours blended over the frame, a legend, FPS and per-stage latency."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.runtime.colors import blend, draw_legend, palette_bgr

__all__ = ["blend", "draw_legend", "draw_stats", "palette_bgr"]


def draw_stats(img: NDArray[np.uint8], fps: float, stages_ms: dict[str, float], provider: str) -> None:
    """FPS, provider and per-stage latency, top-left, on a dark band for legibility."""
    lines = [f"{fps:5.1f} FPS  {provider}"] + [f"{k} {v:5.1f} ms" for k, v in stages_ms.items()]
    cv2.rectangle(img, (0, 0), (190, 8 + 16 * len(lines)), (0, 0, 0), -1)
    for i, text in enumerate(lines):
        cv2.putText(img, text, (6, 18 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
