"""Seeded synthetic photos for tests, parity checks and benchmarks (no data set needed)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def synthetic_images(shapes: list[tuple[int, int]], seed: int = 0) -> list[NDArray[np.uint8]]:
    """Seeded smooth random RGB images (structure at several scales, like photos)."""

    rng = np.random.default_rng(seed)
    out = []
    for h, w in shapes:
        base = rng.integers(0, 256, size=(max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
        img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
        noise = rng.integers(-12, 13, size=img.shape)
        out.append(np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return out
