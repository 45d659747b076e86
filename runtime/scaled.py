"""An image at an inference scale, made band by band: bilinear with half-pixel centres (torch's
``align_corners=False``, as :func:`fcnedge.runtime.upsample.resize_logits` resizes logits), computed in float32
and rounded to uint8.

Memory grows with the band, never with the scaled image: a 12000 x 12000 photo at scale 1.25 would be a 644 MiB
array; its 480-row bands are 21 MiB each. Any band equals the same rows of the whole scaled image exactly (each
output row mixes the same two source rows down, then is resized across on its own), so the tiler may ask for
overlapping bands in any order.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["ScaledImage", "half_pixel_taps"]

# Output rows computed per step: the float32 temporaries stay a few MiB even for a 25000-pixel-wide band.
CHUNK_ROWS = 16


class ScaledImage:
    """Rows of ``image`` (HxWx3 uint8) resized to ``size`` (H', W'). Stateless after construction: shareable
    across threads.

    Args:
        image: the source image.
        size: (height, width) of the scaled image.
    """

    def __init__(self, image: NDArray[np.uint8], size: tuple[int, int]) -> None:
        self.image = image
        self.shape = (int(size[0]), int(size[1]), image.shape[2])
        src_h = image.shape[0]
        self.top, self.bottom, self.frac = half_pixel_taps(src_h, size[0])

    def rows(self, y0: int, y1: int) -> NDArray[np.uint8]:
        """Rows [y0, y1) of the scaled image, (y1 - y0, W', 3) uint8."""
        y1 = min(y1, self.shape[0])
        out = np.empty((max(0, y1 - y0), *self.shape[1:]), dtype=np.uint8)
        for c0 in range(y0, y1, CHUNK_ROWS):
            c1 = min(y1, c0 + CHUNK_ROWS)
            out[c0 - y0 : c1 - y0] = self._chunk(c0, c1)
        return out

    def whole(self) -> NDArray[np.uint8]:
        """The whole scaled image."""
        return self.rows(0, self.shape[0])

    def _chunk(self, c0: int, c1: int) -> NDArray[np.uint8]:
        """Output rows [c0, c1): down (the two source rows of each, mixed), then across, then rounded."""
        fy = self.frac[c0:c1, None, None]
        down = self.image[self.top[c0:c1]].astype(np.float32)
        down += (self.image[self.bottom[c0:c1]].astype(np.float32) - down) * fy
        n, w = c1 - c0, self.shape[1]
        if w != down.shape[1]:
            # OpenCV resizes each row of a float image on its own, identically for any row count but one (a
            # single row takes another code path, off by an ulp): so never hand it a single row
            two = down if n > 1 else np.concatenate([down, down])
            wide = np.asarray(cv2.resize(two, (w, len(two)), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
            down = wide[:n].reshape(n, w, -1)
        np.rint(down, out=down)
        np.clip(down, 0, 255, out=down)
        return down.astype(np.uint8)


def half_pixel_taps(src: int, dst: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """For each of ``dst`` output positions: the two source positions it mixes and the weight of the second
    (half-pixel centres, clamped at the edges)."""
    pos = np.maximum((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0.0)
    first = np.minimum(pos.astype(np.int64), src - 1)  # pos >= 0: truncation is floor
    second = np.minimum(first + 1, src - 1)
    return first, second, (pos - first).astype(np.float32)
