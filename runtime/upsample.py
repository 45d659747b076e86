"""The FCN's final upsampling, done by the runtime for models exported with ``--runtime-upsampling``.

A ConvTranspose(K, K, 2s, stride s, padding s/2) with a bilinear kernel equals: pad the stride-s logits with one
zero on every side, resize x s with half-pixel bilinear interpolation, crop s pixels from every side. OpenCV's
``INTER_LINEAR`` is that half-pixel rule, and every output pixel kept reads only inside the padded array, so
this is the same function as the graph's upsampling (to float rounding), at a fraction of its cost.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def upsample_bilinear(logits: NDArray[np.float32], stride: int) -> NDArray[np.float32]:
    """(N, K, h, w) stride-s logits -> (N, K, h*s, w*s), exactly as the bilinear transposed conv."""
    n, k, h, w = logits.shape
    s = stride
    out = np.empty((n, k, h * s, w * s), dtype=np.float32)
    size = ((w + 2) * s, (h + 2) * s)  # cv2 takes (width, height)
    for i in range(n):
        for c in range(k):
            padded = cv2.copyMakeBorder(logits[i, c], 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0.0)
            up = cv2.resize(padded, size, interpolation=cv2.INTER_LINEAR)
            out[i, c] = up[s:-s, s:-s]
    return out
