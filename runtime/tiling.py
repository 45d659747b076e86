"""Tile geometry and stitching, pure numpy.

Windows cover every pixel; the last window in a row or column is pushed back inside the image; a side shorter than
the tile gets one window of that side rounded up to the stride (the image is padded, the logits cropped back).
Stitched logits = sum(weight * logits) / sum(weight); argmax happens only after stitching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fcnedge.specs import Blend, TileSpec


def ceil_to(n: int, m: int) -> int:
    """Smallest multiple of ``m`` that is >= ``n``."""
    return -(-n // m) * m


def starts_1d(length: int, tile: int, overlap: float) -> list[int]:
    """Window starts along one axis; windows of size ``tile`` cover [0, length) with the given overlap."""
    if length <= tile:
        return [0]
    step = max(1, math.floor(tile * (1.0 - overlap)))
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)  # last window pushed back inside the image
    return starts


@dataclass(frozen=True)
class Grid:
    """The windows that cover an ``height`` x ``width`` image.

    Attributes:
        height, width: image size.
        tile: (th, tw) window size actually used (a side shorter than the tile uses that side rounded up to stride).
        ys, xs: window starts.
    """

    height: int
    width: int
    tile: tuple[int, int]
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def padded(self) -> tuple[int, int]:
        """Canvas size: the image padded so every window fits."""
        return max(self.height, self.tile[0]), max(self.width, self.tile[1])


def make_grid(height: int, width: int, spec: TileSpec, stride: int, *, fixed: bool = False) -> Grid:
    """Lay out windows for an image. ``fixed``: the model takes only ``spec.size``, so a side shorter than the
    tile is padded up to it instead of shrinking the window."""
    th = spec.size[0] if fixed else min(spec.size[0], ceil_to(height, stride))
    tw = spec.size[1] if fixed else min(spec.size[1], ceil_to(width, stride))
    return Grid(
        height, width, (th, tw), tuple(starts_1d(height, th, spec.overlap)), tuple(starts_1d(width, tw, spec.overlap))
    )


def window(tile: tuple[int, int], blend: Blend) -> NDArray[np.float32]:
    """Per-pixel weight of a tile: ones (the seed's mean) or a separable Hann-like window, strictly positive."""
    th, tw = tile
    if blend is Blend.MEAN:
        return np.ones((th, tw), dtype=np.float32)

    def hann(n: int) -> NDArray[np.float64]:
        return 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(n) + 0.5) / n)  # > 0 at every index

    return np.outer(hann(th), hann(tw)).astype(np.float32) + np.float32(1e-3)


def coverage(grid: Grid, blend: Blend) -> NDArray[np.float32]:
    """Sum of window weights at each image pixel (for tests and the non-streaming path)."""
    acc = np.zeros(grid.padded, dtype=np.float32)
    win = window(grid.tile, blend)
    th, tw = grid.tile
    for y in grid.ys:
        for x in grid.xs:
            acc[y : y + th, x : x + tw] += win
    return acc[: grid.height, : grid.width]
