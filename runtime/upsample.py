"""The FCN's final upsampling, done by the runtime for models exported with ``--runtime-upsampling``.

A ConvTranspose(K, K, 2s, stride s, padding s/2) with a bilinear kernel equals: pad the stride-s logits with one
zero on every side, resize x s with half-pixel bilinear interpolation, crop s pixels from every side. OpenCV's
``INTER_LINEAR`` is that half-pixel rule, and every output pixel kept reads only inside the padded array, so
this is the same function as the graph's upsampling (to float rounding), at a fraction of its cost. When only the
class ids are wanted, :func:`upsampled_ids` skips the upsampling wherever it cannot change the argmax.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.runtime.postprocess import argmax_ids


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


def resize_logits(logits: NDArray[np.float32], size: tuple[int, int]) -> NDArray[np.float32]:
    """(K, h, w) -> (K, H, W) bilinear, half-pixel centres (torch's ``align_corners=False``), one plane at a time
    (2x faster than an interleaved HxWxK resize; no BLAS, so no worker threads left spinning after the call)."""
    h, w = size
    out = np.empty((logits.shape[0], h, w), dtype=np.float32)
    for k, plane in enumerate(logits):
        out[k] = cv2.resize(plane, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def resize_across(logits: NDArray[np.float32], w: int) -> NDArray[np.float32]:
    """(K, n, W) -> (K, n, w): each row resized across on its own, the result identical to those rows of
    :func:`resize_logits` on the whole array (OpenCV takes another path, an ulp off, for a single row: it gets
    a twin)."""
    n = logits.shape[1]
    if n > 1:
        return resize_logits(logits, (n, w))
    return resize_logits(np.concatenate([logits, logits], axis=1), (2, w))[:, :1]


# Above this share of boundary cells the whole upsampling + argmax is cheaper than interpolating the boundaries.
# Measured on this project's CPU at stride 2 (K = 11, 320x480): road scenes have ~4 % boundary cells (1.0 ms vs
# 1.8 ms for the plain way); the blobby synthetic benchmark image 15 % (2.0 vs 2.1 ms); pure noise, every cell a
# boundary, 17 ms. The refinement costs ~0.24 us a cell, so the break-even is near 16 %.
BOUNDARY_SHARE_MAX = 0.15


def upsampled_ids(low: NDArray[np.float32], stride: int, *, threads: int = 0) -> NDArray[np.uint8]:
    """(K, h, w) stride-s logits -> (h*s, w*s) uint8 class ids of their bilinear upsampling, without computing it
    at every pixel.

    An output pixel interpolates the four low-resolution pixels around it (its cell) with non-negative weights that
    sum to one, and the transposed conv's zero padding makes a corner outside the image a zero logit vector. When
    every corner inside the image has the same argmax c, c is the argmax of the weighted sum too (each term keeps c
    first, a zero vector changes no order), ties to the first maximum included. So the argmax is taken once at low
    resolution, every uniform cell is filled with its class, and only the cells on a class boundary (a few percent
    of a road scene) are interpolated and compared; past :data:`BOUNDARY_SHARE_MAX` of the cells it does the plain
    upsampling and argmax instead. The result equals ``argmax(upsample_bilinear(...))`` up to float rounding on exact
    ties (the same caveat as OpenCV against the graph's Resize).

    Raises:
        ValueError: more than 255 classes (255 marks the padding here) or an odd stride.
    """
    k, h, w = low.shape
    s = stride
    if k > 255 or s % 2:
        raise ValueError(f"upsampled_ids needs K <= 255 and an even stride (got K={k}, stride={s})")
    cls, boundary = boundary_cells(argmax_ids(np.ascontiguousarray(low), threads=threads))
    # cell i covers output rows s*i - s/2 .. s*i + s/2 - 1: fill whole cells, crop s/2 at the end
    ext = cv2.resize(cls, ((w + 1) * s, (h + 1) * s), interpolation=cv2.INTER_NEAREST)
    ci, cj = np.nonzero(boundary)
    if ci.size > BOUNDARY_SHARE_MAX * cls.size:  # a busy image (noise, texture): the plain way is cheaper
        return argmax_ids(upsample_bilinear(low[None], s)[0], threads=threads)
    if ci.size:
        ext.reshape(h + 1, s, w + 1, s)[ci, :, cj, :] = _boundary_ids(low, ci, cj, s, threads)
    half = s // 2
    return np.ascontiguousarray(ext[half : half + h * s, half : half + w * s])


def boundary_cells(ids: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """(h, w) stride-s class ids -> for each of the (h+1, w+1) cells between them, the smallest class among its
    corners inside the image, and whether those corners disagree (a boundary cell). Cell (i, j) has the corners
    (i-1 .. i, j-1 .. j); corners outside the image are the zero padding and agree with any class."""
    hi = cv2.copyMakeBorder(ids, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=255)  # 255: never the min
    lo = cv2.copyMakeBorder(ids, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)  # 0: never above a real class
    cls = np.minimum(np.minimum(hi[:-1, :-1], hi[:-1, 1:]), np.minimum(hi[1:, :-1], hi[1:, 1:]))
    top = np.maximum(np.maximum(lo[:-1, :-1], lo[:-1, 1:]), np.maximum(lo[1:, :-1], lo[1:, 1:]))
    return cls, top != cls


def _boundary_ids(
    low: NDArray[np.float32], ci: NDArray[np.intp], cj: NDArray[np.intp], s: int, threads: int
) -> NDArray[np.uint8]:
    """(M, s, s) ids of the M boundary cells (ci, cj), each interpolated from its four corners."""
    k, h, w = low.shape
    ys = np.stack([ci - 1, ci - 1, ci, ci])
    xs = np.stack([cj - 1, cj, cj - 1, cj])  # (4, M): corners top-left, top-right, bottom-left, bottom-right
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    vals = np.take(low.reshape(k, h * w), np.where(inside, ys * w + xs, 0), axis=1)  # (K, 4, M)
    vals *= inside  # a corner outside the image is the zero padding
    f = (np.arange(s, dtype=np.float32) + 0.5) / s  # the half-pixel weight of the lower/right corner at offset t
    g = np.float32(1.0) - f
    # separable, with M (the long axis) innermost: rows, then columns. Elementwise numpy only: BLAS (np.tensordot)
    # would leave its worker threads spinning after the call, which halved the next inference's speed on 2 cores
    top = g[None, :, None] * vals[:, 0, None, :] + f[None, :, None] * vals[:, 1, None, :]  # (K, s, M) along x
    bottom = g[None, :, None] * vals[:, 2, None, :] + f[None, :, None] * vals[:, 3, None, :]
    blocks = g[None, :, None, None] * top[:, None] + f[None, :, None, None] * bottom[:, None]  # (K, s_y, s_x, M)
    ids = argmax_ids(np.ascontiguousarray(blocks.reshape(k, s * s, -1)), threads=threads)  # (s*s, M)
    out: NDArray[np.uint8] = np.ascontiguousarray(ids.reshape(s, s, -1).transpose(2, 0, 1))
    return out
